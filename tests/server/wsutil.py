"""Helpers for the sidecar tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from livestream_compliance_server.app import App
from livestream_compliance_server.protocol import server_adapter
from livestream_compliance_server.sinks import AuditRecord
from websockets.asyncio.client import ClientConnection

RULES_DIR = Path(__file__).parent / "fixtures" / "rules"
TOKEN = "test-token-0123456789abcdef"


class RecordingSink:
    """An AuditSink that keeps what it is given and where it was called from."""

    def __init__(self) -> None:
        self.records: list[AuditRecord] = []
        self.threads: set[int] = set()
        self.closed = False

    def write(self, records: Sequence[AuditRecord]) -> None:
        self.threads.add(threading.get_ident())
        self.records.extend(records)

    def close(self) -> None:
        self.threads.add(threading.get_ident())
        self.closed = True


class Client:
    """A websocket client that checks every frame it receives against the server schema."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, msg: dict[str, Any] | str | bytes) -> None:
        if isinstance(msg, dict):
            msg = json.dumps(msg, ensure_ascii=False)
        await self.ws.send(msg)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(raw, str), "the server sends text frames"
        frame = json.loads(raw)
        server_adapter.validate_python(frame)
        return frame

    async def request(self, msg: dict[str, Any] | str | bytes, timeout: float = 5.0) -> dict[str, Any]:
        await self.send(msg)
        return await self.recv(timeout)

    async def ping(self, seq: int = 0) -> None:
        """Assert that the next frame is the pong: nothing else was pending."""
        frame = await self.request({"type": "ping", "seq": seq})
        assert frame["type"] == "pong" and frame["seq"] == seq, frame

    async def close(self) -> None:
        await self.ws.close()


async def http(
    app: App, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP/1.1 request to the app (no body); returns status, headers, body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{app.port}", "Content-Length: 0"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for line in header_lines:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(status_line.split()[1]), hdrs, body


def sample(app: App, name: str, labels: dict[str, str] | None = None) -> float:
    value = app.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


Connect = Callable[..., Awaitable[Client]]

"""The OBS overlay (server/overlay/), end to end in a real headless Chromium.

The server runs in-process on 127.0.0.1; Chromium (Debian's, installed by scripts/ensure-packages.sh
when missing) opens /overlay?stream=...&token=... and is driven over the DevTools protocol
(Runtime.evaluate reads the DOM, Page.captureScreenshot saves a PNG). A test client sends
transcripts and chat lines with violations over the websocket; the page must show them.

Set OVERLAY_SCREENSHOT=docs/overlay-screenshot.png to also keep the screenshot there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from livestream_compliance_server.app import App
from procutil import die_with_parent
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from wsutil import TOKEN, Connect, http

ROOT = Path(__file__).resolve().parents[2]
ENSURE = ROOT / "scripts" / "ensure-packages.sh"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
]


# ------------------------------------------------------------------------------------ Chromium
def ensure_chromium() -> str:
    """Chromium's path, installing Chromium (and the CJK fonts for the screenshot) when missing."""
    proc = subprocess.run(
        ["bash", str(ENSURE), "chromium", "pkg:fonts-noto-cjk"],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    exe = shutil.which("chromium")
    if exe is None:
        if os.geteuid() != 0 and (proc.returncode == 3 or "sudo:" in proc.stderr):  # no root, no sudo
            pytest.skip(f"chromium is not installed and cannot be installed without root: {proc.stderr.strip()}")
        raise RuntimeError(f"cannot install chromium (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return exe


class Chromium:
    def __init__(self, exe: str, profile: Path) -> None:
        self.profile = profile
        self.log = (profile.parent / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its helpers share our process group id: stopped together
            preexec_fn=die_with_parent,  # and it dies with the test process, even a killed one
        )
        self.ws_url = self._wait_for_port(30.0)

    def _wait_for_port(self, timeout: float) -> str:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                port, path = marker.read_text().split("\n")[:2]
                if port.strip() and path.strip():
                    return f"ws://127.0.0.1:{port.strip()}{path.strip()}"
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.stop()
        log = (self.profile.parent / "chromium.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"chromium did not open its DevTools port: {log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # helpers (renderer, zygote) still alive in the group go too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    exe = ensure_chromium()
    base = tmp_path_factory.mktemp("chromium")
    browser = Chromium(exe, base / "profile")
    yield browser
    browser.stop()


class Page:
    """One tab, driven over the browser's DevTools websocket (flattened target sessions)."""

    def __init__(self, ws: ClientConnection, session: str, target: str) -> None:
        self.ws = ws
        self.session = session
        self.target = target


class CDP:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console: list[str] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            msg = json.loads(raw)
            fut = self._pending.pop(msg.get("id", -1), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
            elif msg.get("method") == "Runtime.consoleAPICalled":
                args = msg["params"].get("args", [])
                self.console.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
            elif msg.get("method") == "Runtime.exceptionThrown":
                self.console.append("exception: " + json.dumps(msg["params"]["exceptionDetails"])[:500])

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        mid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[mid] = fut
        frame: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            frame["sessionId"] = session
        await self.ws.send(json.dumps(frame))
        msg = await asyncio.wait_for(fut, 20)
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg.get("result", {})

    async def new_page(self, width: int = 1920, height: int = 1080) -> Page:
        target = (await self.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))["sessionId"]
        page = Page(self.ws, session, target)
        await self.send("Runtime.enable", session=session)
        await self.send("Page.enable", session=session)
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        return page

    async def navigate(self, page: Page, url: str) -> None:
        await self.send("Page.navigate", {"url": url}, session=page.session)

    async def evaluate(self, page: Page, expression: str) -> Any:
        res = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=page.session
        )
        if "exceptionDetails" in res:
            raise RuntimeError(f"page error: {res['exceptionDetails']}")
        return res["result"].get("value")

    async def wait_for(self, page: Page, expression: str, timeout: float = 15.0) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = await self.evaluate(page, expression)
            except RuntimeError:  # the page is still loading: no execution context yet
                last = None
            if last:
                return last
            await asyncio.sleep(0.05)
        state = await self.evaluate(page, "document.body ? document.body.dataset.state : 'no body'")
        raise AssertionError(f"timed out waiting for {expression!r} (page state {state!r}; console {self.console})")

    async def screenshot(self, page: Page, path: Path) -> bytes:
        data = base64.b64decode(
            (await self.send("Page.captureScreenshot", {"format": "png"}, session=page.session))["data"]
        )
        path.write_bytes(data)
        return data

    async def close(self) -> None:
        self._reader.cancel()
        await self.ws.close()


@pytest.fixture
async def cdp(chromium: Chromium) -> AsyncIterator[CDP]:
    ws = await ws_connect(chromium.ws_url, max_size=None, compression=None)
    client = CDP(ws)
    yield client
    await client.close()


def overlay_url(app: App, **query: str) -> str:
    from urllib.parse import urlencode

    return f"{app.http_url}/overlay?{urlencode(query)}"


CARDS_JS = """JSON.stringify(Array.from(document.querySelectorAll('#warnings .card')).map(c => ({
  severity: c.dataset.severity, seq: Number(c.dataset.seq), source: c.dataset.source,
  badge: c.querySelector('.badge').textContent, who: c.querySelector('.who').textContent,
  text: c.querySelector('.text').textContent,
  marks: Array.from(c.querySelectorAll('.text mark')).map(m => [m.textContent, m.className]),
  carried: (c.querySelector('.text .carried') || {}).textContent || null,
  terms: Array.from(c.querySelectorAll('.finding .term')).map(m => m.textContent),
  messages: Array.from(c.querySelectorAll('.finding .message')).map(m => m.textContent),
  suggestions: Array.from(c.querySelectorAll('.suggestion')).map(m => m.textContent),
  images: c.querySelectorAll('img').length,
})))"""


async def cards(cdp: CDP, page: Page) -> list[dict[str, Any]]:
    return json.loads(await cdp.evaluate(page, CARDS_JS))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ------------------------------------------------------------------------------------ tests
async def test_overlay_files_are_served(app: App) -> None:
    status, headers, body = await http(app, "GET", "/overlay?stream=room-1")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"/overlay/overlay.js" in body and b"/overlay/overlay.css" in body
    status, headers, body = await http(app, "GET", "/overlay/overlay.js")
    assert status == 200 and "javascript" in headers["content-type"] and b"WebSocket" in body
    status, headers, _ = await http(app, "GET", "/overlay/overlay.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    for bad in ("/overlay/../audit.py", "/overlay/missing.js", "/overlay/.hidden"):
        assert (await http(app, "GET", bad))[0] == 404, bad


async def test_overlay_shows_warnings(app: App, connect: Connect, cdp: CDP, tmp_path: Path) -> None:
    page = await cdp.new_page()
    await cdp.navigate(page, overlay_url(app, stream="room-1", token=TOKEN, fade="120"))
    await cdp.wait_for(page, "document.body && document.body.dataset.state === 'subscribed'")
    # the page itself is transparent: OBS composites it over the scene
    assert await cdp.evaluate(page, "getComputedStyle(document.body).backgroundColor") == "rgba(0, 0, 0, 0)"

    client = await connect(app)
    host_text = "家人们，今天这款面膜全网最低价，加微信还能领券！"
    w = await client.request({"type": "transcript", "stream_id": "room-1", "seq": 1, "text": host_text})
    assert w["type"] == "warning" and w["text"] == host_text and len(w["findings"]) == 3
    w = await client.request(
        {"type": "chat", "stream_id": "room-1", "seq": 2, "text": "主播能加vx吗，想买三盒", "user": "viewer-1093"}
    )
    assert w["type"] == "warning"
    # another stream's warning must not show
    await client.request({"type": "chat", "stream_id": "room-2", "seq": 3, "text": "加微信", "user": "x"})

    await cdp.wait_for(page, "document.querySelectorAll('#warnings .card').length === 2")
    chat, host = await cards(cdp, page)  # newest first
    assert host["seq"] == 1 and host["source"] == "host" and host["severity"] == "high"
    assert host["badge"] == "高风险" and host["who"] == "主播"
    assert host["text"] == host_text
    assert host["marks"] == [["家人们", "sev-info"], ["全网最低价", "sev-high"], ["加微信", "sev-warning"]]
    assert host["messages"] == ["口头禅。", "“全网最低价”无法证实。", "引导站外交易。"]
    assert host["terms"] == ["「家人们」", "「全网最低价」", "「加微信」"]
    assert host["suggestions"] == ["可以改为“大家”。", "改为“直播间专属价”。", "请在平台内沟通。"]
    assert chat["seq"] == 2 and chat["severity"] == "warning" and chat["who"] == "弹幕 · viewer-1093"
    assert chat["marks"] == [["加vx", "sev-warning"]] and chat["suggestions"] == ["请在平台内沟通。"]
    assert chat["text"] == "主播能加vx吗，想买三盒"
    assert await cdp.evaluate(page, "document.body.dataset.received") == "2"
    font = await cdp.evaluate(page, "getComputedStyle(document.querySelector('.card .text')).fontFamily")
    assert "Noto Sans CJK SC" in font and "WenQuanYi" in font and font.endswith("sans-serif")

    # the screenshot, over a dark backdrop standing in for the video behind the transparent page
    await cdp.send(
        "Emulation.setDefaultBackgroundColorOverride", {"color": {"r": 38, "g": 44, "b": 56, "a": 1}}, page.session
    )
    await asyncio.sleep(0.5)  # let the cards' entry animation finish
    shot = tmp_path / "overlay.png"
    data = await cdp.screenshot(page, shot)
    assert png_size(data) == (1920, 1080) and len(data) > 20_000
    if os.environ.get("OVERLAY_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["OVERLAY_SCREENSHOT"])

    # chat text is attacker-controlled: it is shown as text, never parsed as HTML
    evil = "加微信<img src=x onerror=\"document.title='pwned'\"><b>x</b>"
    assert (await client.request({"type": "chat", "stream_id": "room-1", "seq": 4, "text": evil, "user": "<i>u</i>"}))[
        "type"
    ] == "warning"
    await cdp.wait_for(page, "document.querySelectorAll('#warnings .card').length === 3")
    newest = (await cards(cdp, page))[0]
    assert newest["text"] == evil and newest["who"] == "弹幕 · <i>u</i>" and newest["images"] == 0
    assert await cdp.evaluate(page, "document.querySelectorAll('#warnings b, #warnings i').length") == 0
    assert await cdp.evaluate(page, "document.title") != "pwned"
    assert not [c for c in cdp.console if c.startswith("exception")], cdp.console


async def test_overlay_reconnects_and_fades(app: App, connect: Connect, cdp: CDP) -> None:
    page = await cdp.new_page()
    await cdp.navigate(page, overlay_url(app, stream="room-9", token=TOKEN, fade="1", sources="host"))
    await cdp.wait_for(page, "document.body && document.body.dataset.state === 'subscribed'")

    # the server drops the overlay's connection: the page reconnects (with backoff) and subscribes again
    subscribers = [c for c in app._conns if c.outbox is not None]
    assert len(subscribers) == 1
    await subscribers[0].ws.close(1011, "test drops the overlay")
    await cdp.wait_for(
        page,
        "complianceOverlay.state.reconnects >= 1 && document.body.dataset.state === 'subscribed'",
        timeout=10,
    )
    assert len([c for c in app._conns if c.outbox is not None]) == 1

    client = await connect(app)
    # a term split over two transcripts: shown on the second, the earlier part carried in front
    assert (await client.request({"type": "ping", "seq": 0}))["type"] == "pong"
    await client.send({"type": "transcript", "stream_id": "room-9", "seq": 1, "text": "今天给大家的是全网"})
    # after an emoji (1 code point, 2 UTF-16 units) the page must still mark the right characters
    w = await client.request({"type": "transcript", "stream_id": "room-9", "seq": 2, "text": "最低价哦🔥🔥加微信"})
    assert w["findings"][0]["carry"] == 2 and [f["start"] for f in w["findings"]] == [0, 6]
    # sources=host: chat warnings are not shown
    await client.request({"type": "chat", "stream_id": "room-9", "seq": 3, "text": "加微信", "user": "u"})
    await cdp.wait_for(page, "document.querySelectorAll('#warnings .card').length === 1")
    (card,) = await cards(cdp, page)
    assert card["seq"] == 2 and card["carried"] == "…全网"
    assert card["marks"] == [["全网", "sev-high"], ["最低价", "sev-high"], ["加微信", "sev-warning"]]
    assert card["text"] == "…全网最低价哦🔥🔥加微信"
    # fade=1: gone after about two seconds (1 s shown, 1 s fading)
    t0 = time.monotonic()
    await cdp.wait_for(page, "document.querySelectorAll('#warnings .card').length === 0", timeout=6)
    assert 0.5 < time.monotonic() - t0 + 0.2 < 6
    assert await cdp.evaluate(page, "document.body.dataset.received") == "1"


async def test_overlay_without_stream_says_so(app: App, cdp: CDP) -> None:
    page = await cdp.new_page()
    await cdp.navigate(page, overlay_url(app, token=TOKEN))
    await cdp.wait_for(page, "document.body && document.body.dataset.state === 'unconfigured'")
    text = await cdp.evaluate(page, "document.getElementById('config-error').textContent")
    assert "?stream=" in text

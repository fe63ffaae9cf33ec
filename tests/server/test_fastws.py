"""server/fastws.py: plain text frames read without websockets' parser, everything else left to websockets.

A raw client (handshake by hand, frames written in arbitrary pieces) sends the same byte stream to a
server with the fast reader and to one without it; the answers must be the same.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import struct
from typing import Any

import orjson
import pytest
from livestream_compliance_server.app import App, Conn
from livestream_compliance_server.fastws import FastServerConnection
from websockets.asyncio.server import ServerConnection
from wsutil import TOKEN, Connect


def frame(payload: bytes, opcode: int = 1, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, app: App) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{app.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def write_in_pieces(self, data: bytes, rng: random.Random) -> None:
        pos = 0
        while pos < len(data):
            k = rng.choice([1, 1, 2, 3, 7, 50, 400, 5000])
            self.writer.write(data[pos : pos + k])
            await self.writer.drain()
            pos += k
            if rng.random() < 0.3:
                await asyncio.sleep(0.002)  # the server reads what has arrived so far

    async def read_frame(self) -> tuple[int, bytes]:
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), 10)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(n)

    async def answers(self, until_pong_seq: int) -> list[Any]:
        out = []
        while True:
            op, data = await self.read_frame()
            if op == 1:
                d = orjson.loads(data)
                out.append(d)
                if d.get("type") == "pong" and d.get("seq") == until_pong_seq:
                    return out
            elif op == 8:
                out.append(("close", data[:2]))
                return out
            else:
                out.append(("op", op, data))

    def close(self) -> None:
        self.writer.close()


def _stream(rng: random.Random) -> bytes:
    """A client's byte stream: hello, chat/transcript (clean, violating, bad), pings, fragments, big frames."""
    out = [frame(orjson.dumps({"type": "hello", "stream_id": "raw", "acks": True}))]
    for i in range(120):
        r = rng.random()
        if r < 0.35:
            out.append(frame(orjson.dumps({"type": "chat", "seq": i, "text": "主播好", "user": f"u{i % 5}"})))
        elif r < 0.5:
            out.append(frame(orjson.dumps({"type": "transcript", "seq": i, "text": "全网最低价", "segment": i})))
        elif r < 0.6:
            out.append(frame(orjson.dumps({"type": "chat", "seq": i, "text": "x" * rng.choice([200, 70_000])})))
        elif r < 0.65:
            out.append(frame(b'{"type": "chat", "seq": ' + str(i).encode() + b', "text": 5}'))
        elif r < 0.7:
            out.append(frame(b"\xff\xfe not utf-8"))
        elif r < 0.75:
            out.append(frame(b"ping-payload", opcode=9))  # a websocket ping: websockets answers with a pong
        elif r < 0.8:  # a fragmented text message
            whole = orjson.dumps({"type": "chat", "seq": i, "text": "谁能加微信", "user": "frag"})
            out.append(frame(whole[:10], fin=False) + frame(whole[10:20], opcode=0, fin=False)
                       + frame(whole[20:], opcode=0))
        elif r < 0.85:
            out.append(frame(orjson.dumps({"type": "chat", "seq": i, "text": "好"}), opcode=2))  # binary
        else:
            out.append(frame(orjson.dumps({"type": "ping", "seq": i})))
    out.append(frame(orjson.dumps({"type": "ping", "seq": 10**6})))
    return b"".join(out)


async def _answers(app: App, data: bytes, seed: int) -> tuple[list[Any], list[Any]]:
    """The answers to ``data`` and, per open connection, (its class, whether it still reads fast)."""
    c = await RawClient.open(app)
    try:
        await c.write_in_pieces(data, random.Random(seed))
        answers = await c.answers(10**6)
        conns = [(type(conn.ws), getattr(conn.ws, "_rx_fast", None)) for conn in app._conns]
        return answers, conns
    finally:
        c.close()


def _record_direct_answers(app: Any, direct: list[bool]) -> None:
    """Wrap ``app._answer_now`` so that ``direct`` records whether each frame took the direct path."""
    answer_now = app._answer_now

    def counting(conn: Any, raw: bytes) -> bool:
        done = answer_now(conn, raw)
        direct.append(done)
        return done

    app._answer_now = counting


@pytest.mark.parametrize("seed", range(4))
async def test_fast_reader_gives_websockets_answers(make_app, seed: int) -> None:
    data = _stream(random.Random(seed))
    got = {}
    direct: list[bool] = []
    for fast in (True, False):
        app = await make_app(fast_reads=fast)
        _record_direct_answers(app, direct)
        got[fast], conns = await _answers(app, data, seed)
        # the fast reader stayed on through pings, fragments, binary, bad and oversized frames
        assert conns == ([(FastServerConnection, True)] if fast else [(ServerConnection, None)]), conns
    assert got[True] == got[False]
    assert direct  # offered to the direct path (in this mix most frames queue behind one that is not)
    assert any(isinstance(a, tuple) and a[:2] == ("op", 10) for a in got[True])  # pongs to websocket pings
    assert any(isinstance(a, dict) and a.get("type") == "warning" and a.get("speaker") == "frag" for a in got[True])


async def test_unmasked_frame_fails_the_connection_as_before(make_app) -> None:
    for fast in (True, False):
        app = await make_app(fast_reads=fast)
        c = await RawClient.open(app)
        try:
            c.writer.write(frame(orjson.dumps({"type": "ping", "seq": 1}), mask=False))
            op, data = await c.read_frame()
            assert op == 8 and struct.unpack("!H", data[:2])[0] == 1002, (fast, op, data)
        finally:
            c.close()


async def test_oversized_frame_header_fails_the_connection_as_before(make_app) -> None:
    for fast in (True, False):
        app = await make_app(fast_reads=fast)
        c = await RawClient.open(app)
        try:
            # only the header of a frame over the hard limit: websockets refuses it without the payload
            c.writer.write(bytes([0x81, 0x80 | 127]) + struct.pack("!Q", app.config.hard_max_frame_bytes + 1))
            op, data = await c.read_frame()
            assert op == 8 and struct.unpack("!H", data[:2])[0] == 1009, (fast, op, data)
        finally:
            c.close()


async def test_websockets_client_keepalive_and_close(app: App, connect: Connect) -> None:
    assert app.fast_reads
    c = await connect(app, hello={"stream_id": "ka"})
    for i in range(5):
        pong = await c.ws.ping()
        await asyncio.wait_for(pong, 5)
        await c.ping(i)
    await c.ws.close()
    assert c.ws.close_code == 1000


async def test_frames_one_at_a_time_are_answered_from_data_received(make_app) -> None:
    """A client that waits for each answer: every chat/transcript frame takes the direct path, same answers."""
    texts = ["主播好", "谁能加微信", "全网最低价", "x" * 300, "好看"]
    got = {}
    direct: list[bool] = []
    for fast in (True, False):
        app = await make_app(fast_reads=fast)
        _record_direct_answers(app, direct)
        c = await RawClient.open(app)
        try:
            c.writer.write(frame(orjson.dumps({"type": "hello", "stream_id": "one", "acks": True})))
            out = [(await c.read_frame())[1]]
            for i in range(40):
                kind = "chat" if i % 3 else "transcript"
                msg = {"type": kind, "seq": i, "text": texts[i % len(texts)], "user": f"u{i % 4}"}
                if i == 17:
                    msg["seq"] = -1  # an invalid frame: answered with the model's error frame
                c.writer.write(frame(orjson.dumps(msg)))
                out.append((await c.read_frame())[1])
            got[fast] = [orjson.loads(x) for x in out]
        finally:
            c.close()
    assert got[True] == got[False]
    assert any(a["type"] == "warning" for a in got[True]) and any(a["type"] == "error" for a in got[True])
    assert direct.count(True) == 39 and direct.count(False) == 2  # the hello and the invalid frame go to recv()


async def test_the_fast_path_switch_uses_only_websockets_public_api(make_app) -> None:
    """``websocket_fast_path = false`` (``--no-fast-path``): plain connections, awaited sends, same answers."""
    data = _stream(random.Random(11))
    fast_app = await make_app()
    fast_answers, fast_conns = await _answers(fast_app, data, 11)
    app = await make_app(websocket_fast_path=False)
    assert app.fast_reads is False
    seen: list[bool] = []
    real_write = Conn.write

    def spy(self: Conn, payload: bytes) -> bool:
        seen.append(self.fast)
        return real_write(self, payload)

    Conn.write = spy  # type: ignore[method-assign]
    try:
        answers, conns = await _answers(app, data, 11)
    finally:
        Conn.write = real_write  # type: ignore[method-assign]
    assert conns == [(ServerConnection, None)] and fast_conns == [(FastServerConnection, True)]
    assert seen and not any(seen)  # every answer went through an awaited ws.send
    assert answers == fast_answers

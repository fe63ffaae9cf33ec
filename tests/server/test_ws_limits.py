"""Safety and limits: auth, floods, slow subscribers, connection limit, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from livestream_compliance.errors import UsageError
from livestream_compliance_server.app import App, TokenBucket
from livestream_compliance_server.config import ServerConfig
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from wsutil import TOKEN, Client, Connect, RecordingSink, sample


# ------------------------------------------------------------------------------------ auth
async def test_websocket_needs_the_token(app: App, connect: Connect) -> None:
    with pytest.raises(InvalidStatus) as exc:
        await ws_connect(app.url)
    assert exc.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        await ws_connect(app.url, additional_headers={"Authorization": "Bearer not-the-token-at-all"})
    with pytest.raises(InvalidStatus):
        await ws_connect(app.url + "?token=wrong")
    # header or query parameter (browsers cannot set headers on a websocket)
    c = await connect(app)
    await c.ping()
    async with ws_connect(app.url + f"?token={TOKEN}") as ws:
        await ws.send('{"type": "ping", "seq": 1}')
        assert json.loads(await ws.recv())["type"] == "pong"
    assert sample(app, "compliance_errors_total", {"kind": "unauthorized"}) == 3


async def test_no_token_on_loopback_is_allowed(make_app) -> None:
    app = await make_app(token=None)
    async with ws_connect(app.url) as ws:
        await ws.send('{"type": "ping"}')
        assert json.loads(await ws.recv())["type"] == "pong"


def test_binding_beyond_loopback_needs_a_token() -> None:
    for host in ("0.0.0.0", "192.0.2.10", "::", "example.org"):
        with pytest.raises(UsageError, match="token"):
            ServerConfig(host=host).validate()
    ServerConfig(host="0.0.0.0", token="a-long-enough-shared-secret").validate()  # not started: validation only
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        ServerConfig(host=host).validate()
    with pytest.raises(UsageError, match="16"):
        ServerConfig(token="short").validate()


async def test_connection_limit(make_app, connect: Connect) -> None:
    app = await make_app(max_connections=1)
    first = await connect(app)
    with pytest.raises(InvalidStatus) as exc:
        await connect(app)
    assert exc.value.response.status_code == 503
    await first.ping()


# ------------------------------------------------------------------------------------ floods
def test_token_bucket() -> None:
    b = TokenBucket(rate=10, burst=5, now=0.0)
    assert [b.take(1, 0.0) for _ in range(5)] == [0.0] * 5
    assert b.take(1, 0.0) == pytest.approx(0.1)
    assert b.take(1, 0.05) == pytest.approx(0.05)  # refused: nothing taken
    assert b.take(1, 0.1) == 0.0
    assert b.take(3, 10.0) == 0.0 and b.tokens == pytest.approx(2.0)  # refilled only up to burst


async def test_flood_gets_rate_limited_error_frames_not_a_disconnect(make_app, connect: Connect) -> None:
    rate, burst, n = 5.0, 10, 300
    app = await make_app(rate=rate, burst=burst, acks=True)  # acks: every message is answered
    c = await connect(app)  # no hello: it would take a token too
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for seq in range(n):
        await c.send(
            {"type": "chat", "stream_id": "s", "text": "加微信" if seq % 2 else "哈哈", "seq": seq, "user": f"u{seq}"}
        )
    answers: dict[int, dict] = {}
    while len(answers) < n:
        frame = await c.recv()
        assert frame["seq"] not in answers  # exactly one answer per message
        answers[frame["seq"]] = frame
    elapsed = loop.time() - t0
    limited = [f for f in answers.values() if f["type"] == "error"]
    accepted = n - len(limited)
    assert all(f["code"] == "rate_limited" and 0 < f["retry_after"] <= 1 / rate + 1e-3 for f in limited)
    assert burst <= accepted <= burst + rate * elapsed + 1
    assert all(answers[seq]["type"] != "error" for seq in range(burst))  # the burst goes through
    assert sample(app, "compliance_errors_total", {"kind": "rate_limited"}) == len(limited)
    assert c.ws.state.name == "OPEN"
    # once the bucket has a token again, the same connection works again
    await asyncio.sleep(1 / rate)
    await c.ping()


async def test_batch_counts_every_item_against_the_rate(make_app, connect: Connect) -> None:
    app = await make_app(rate=1, burst=5)
    c = await connect(app)
    e = await c.request(
        {"type": "batch", "stream_id": "s", "seq": 1, "items": [{"seq": i, "text": "x"} for i in range(6)]}
    )
    assert e["code"] == "rate_limited" and e["seq"] == 1


# ------------------------------------------------------------------------------------ slow subscribers
async def _raw_subscriber(app: App, stream_id: str) -> tuple[Client, socket.socket]:
    """A subscriber that stops reading: tiny receive buffer, client queue of one frame."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", app.port))
    ws = await ws_connect(
        app.url, sock=sock, additional_headers={"Authorization": f"Bearer {TOKEN}"}, max_queue=1, compression=None
    )
    slow = Client(ws)
    assert (await slow.request({"type": "subscribe", "stream_id": stream_id}))["type"] == "subscribed"
    return slow, sock


async def test_slow_subscriber_never_stalls_ingestion(make_app, connect: Connect) -> None:
    app = await make_app(subscriber_queue=8, rate=1e6, burst=100_000, drain_timeout=1.0)
    slow, _sock = await _raw_subscriber(app, "live")
    fast = await connect(app)
    assert (await fast.request({"type": "subscribe", "stream_id": "live"}))["type"] == "subscribed"
    producer = await connect(app, hello={"stream_id": "live"})
    text = "全网最低价" * 60  # 60 findings: a warning frame of ~25 kB
    sent = 0
    while sample(app, "compliance_dropped_frames_total", {"reason": "slow_subscriber"}) == 0 and sent < 2000:
        w = await producer.request({"type": "transcript", "text": text, "seq": sent, "speaker": f"h{sent}"}, timeout=5)
        assert w["type"] == "warning" and w["seq"] == sent  # ingestion answers at once
        got = await fast.recv(timeout=5)  # the reading subscriber gets every frame
        assert got["seq"] == sent
        sent += 1
    assert sample(app, "compliance_dropped_frames_total", {"reason": "slow_subscriber"}) > 0
    # and keeps going: many more messages, every one answered promptly while the slow one stays stuck
    for seq in range(sent, sent + 50):
        assert (await producer.request({"type": "transcript", "text": text, "seq": seq, "speaker": f"h{seq}"}))[
            "seq"
        ] == seq
        assert (await fast.recv())["seq"] == seq
    queued = [c.outbox for c in app._conns if c.outbox is not None]
    assert max(len(ob) for ob in queued) <= 8  # bounded
    # shutdown does not wait for the stuck subscriber beyond drain_timeout
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.wait_for(app.stop(), 10)
    assert loop.time() - t0 < app.config.drain_timeout + 1
    slow.ws.transport.abort()  # it never reads its close frame


# ------------------------------------------------------------------------------------ shutdown
async def test_graceful_shutdown_answers_everything_already_sent(make_app, connect: Connect) -> None:
    sink = RecordingSink()
    app = await make_app(sink=sink, drain_idle=0.3)
    c = await connect(app, hello={"stream_id": "s", "acks": True})
    n = 200
    for seq in range(n):
        await c.send(
            {"type": "transcript", "text": "全网最低价" if seq % 4 == 0 else "你好", "seq": seq, "speaker": f"h{seq}"}
        )
    stop = asyncio.create_task(app.stop())
    answered: set[int] = set()
    notices = 0
    with pytest.raises(ConnectionClosed):
        while True:
            frame = await c.recv()
            if frame["type"] == "shutdown":
                notices += 1
            else:
                assert frame["seq"] not in answered
                answered.add(frame["seq"])
    await stop
    assert answered == set(range(n))
    assert notices == 1
    assert c.ws.close_code == 1001
    assert sink.closed and len(sink.records) == n // 4  # the audit queue was drained, then closed
    with pytest.raises(OSError):
        await ws_connect(app.url, additional_headers={"Authorization": f"Bearer {TOKEN}"}, open_timeout=2)


async def test_readyz_reports_draining(make_app) -> None:
    from wsutil import http

    app = await make_app()
    status, _h, body = await http(app, "GET", "/readyz")
    assert status == 200 and json.loads(body)["ready"] is True
    app.draining = True  # what stop() sets first
    status, _h, body = await http(app, "GET", "/readyz")
    assert status == 503 and json.loads(body)["draining"] is True
    app.draining = False

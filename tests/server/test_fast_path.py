"""The sidecar's fast paths give exactly what the slow ones give.

* ``protocol.fast_parse`` (chat/transcript frames read without pydantic) against ``parse_client``;
* error frames for bad frames are the pydantic path's, over the real server;
* ``Conn.write`` (answers queued without awaiting) keeps every answer in order;
* the batched per-message metrics against prometheus-client's own histogram and counter;
* ``tune_gc`` (run in a child process: it freezes the interpreter's heap).
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from livestream_compliance_server.app import App, Conn
from livestream_compliance_server.metrics import CHECK_BUCKETS, BatchedCounter, BatchedHistogram, Metrics
from livestream_compliance_server.protocol import (
    MAX_ID_CHARS,
    MAX_SEQ,
    Chat,
    FastChat,
    FastTranscript,
    ProtocolError,
    Transcript,
    fast_parse,
    parse_client,
)
from prometheus_client import CollectorRegistry, Counter, Histogram
from wsutil import Connect

PRODUCTS = ["food", "cosmetics", "general", "weapons", "Food", ""]


def _slow(data: Any) -> tuple[str, Any]:
    try:
        return "ok", parse_client(data)
    except ProtocolError as exc:
        return "error", (exc.code, exc.detail, exc.seq)


def _same_as_model(fast: FastChat | FastTranscript, model: Any) -> None:
    fields = [f for f in type(model).model_fields if f != "type"]
    assert set(fields) == set(type(fast).__slots__)
    for f in fields:
        a, b = getattr(fast, f), getattr(model, f)
        assert a == b and type(a) is type(b), (f, a, b)
    assert fast.type == model.type


def _check(data: dict[str, Any]) -> None:
    fast = fast_parse(data)
    kind, slow = _slow(data)
    if fast is not None:
        assert kind == "ok", (data, slow)  # the fast path never accepts what the model refuses
        assert isinstance(slow, Chat if isinstance(fast, FastChat) else Transcript)
        _same_as_model(fast, slow)


# values around every limit, of every JSON type
def _ints() -> st.SearchStrategy[Any]:
    return st.sampled_from([0, 1, -1, MAX_SEQ, MAX_SEQ + 1, 2**63, -(2**63), True, False, 1.0, 0.5, "5", None])


def _strs(limit: int = MAX_ID_CHARS) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(["", "a", "x" * limit, "x" * (limit + 1), "中" * limit, "中" * (limit + 1), "🙂" * limit,
                         "🙂" * (limit + 1), 5, 1.5, True, None, [], {}]),
        st.text(max_size=limit + 2),
    )


_OPTIONAL = object()


def _field(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(_OPTIONAL), values)


@st.composite
def frames(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["chat", "transcript", "chat", "transcript", "hello", "Chat", 5, None]))
    candidates: dict[str, st.SearchStrategy[Any]] = {
        "stream_id": _strs(),
        "seq": _ints(),
        "text": st.one_of(st.text(max_size=30), st.sampled_from([5, None, ["x"], b"x".decode()])),
        "user": _strs(),
        "speaker": _strs(),
        "final": st.sampled_from([True, False, 0, 1, "true", None]),
        "segment": st.one_of(_ints(), _strs()),
        "start_ms": _ints(),
        "end_ms": _ints(),
        "sent_at": st.sampled_from([1.5, 0.0, -1.0, 1733400000.123, 1733400000, 0, True, "1.5", None, math.inf]),
        "product": st.one_of(st.sampled_from(PRODUCTS), st.sampled_from([None, 5])),
        "extra": st.one_of(st.integers(), st.text(max_size=3)),
    }
    data: dict[str, Any] = {}
    if kind is not None:
        data["type"] = kind
    for name, values in candidates.items():
        v = draw(_field(values))
        if v is not _OPTIONAL:
            data[name] = v
    return data


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
@example({"type": "chat", "seq": 1, "text": "x"})
@example({"type": "chat", "seq": MAX_SEQ, "text": "", "stream_id": "s" * MAX_ID_CHARS, "user": "u" * MAX_ID_CHARS})
@example({"type": "transcript", "seq": 0, "text": "x", "segment": MAX_SEQ, "final": False, "start_ms": 0})
@example({"type": "transcript", "seq": 0, "text": "x", "segment": "s" * MAX_ID_CHARS, "speaker": None})
@example({"type": "chat", "seq": 1, "text": "x", "sent_at": 5})  # an int sent_at: the model converts, fast declines
@example({"type": "chat", "seq": True, "text": "x"})
@example({"type": "chat", "seq": 1, "text": "x", "product": "food"})
def test_fast_parse_agrees_with_the_models(data: dict[str, Any]) -> None:
    _check(data)


def test_fast_parse_takes_the_common_frames() -> None:
    common = [
        {"type": "chat", "stream_id": "room-1", "seq": 5, "text": "主播好", "user": "v1", "sent_at": 1733400000.5},
        {"type": "chat", "seq": 5, "text": "主播好"},
        {"type": "chat", "seq": 5, "text": "x", "user": None, "product": "food", "unknown_field": [1]},
        {"type": "transcript", "stream_id": "room-1", "seq": 9, "text": "全网最低价", "final": False, "segment": 3,
         "speaker": "host", "start_ms": 10, "end_ms": 2000, "sent_at": 1.0},
        {"type": "transcript", "seq": 9, "text": "x", "segment": "utt-1"},
    ]
    for data in common:
        fast = fast_parse(data)
        assert fast is not None, data
        _same_as_model(fast, parse_client(data))
    # anything else goes to the models
    for data in (
        {"type": "hello"},
        {"type": "batch", "items": [{"seq": 1, "text": "x"}]},
        {"type": "chat", "seq": "5", "text": "x"},
        {"type": "chat", "seq": 1, "text": "x", "sent_at": 5},
        {"type": "chat", "seq": 1, "text": "x", "product": "weapons"},
        {"type": "transcript", "seq": 1, "text": "x", "segment": -1},
        {"type": "chat", "seq": 1, "text": "x", "user": "u" * (MAX_ID_CHARS + 1)},
    ):
        assert fast_parse(data) is None, data


BAD_FRAMES = [
    {"type": "chat", "stream_id": "s", "text": "x", "seq": "5"},
    {"type": "chat", "stream_id": "s", "text": "x", "seq": -1},
    {"type": "chat", "stream_id": "s", "text": "x", "seq": MAX_SEQ + 1},
    {"type": "chat", "stream_id": "s", "text": "x", "seq": True},
    {"type": "chat", "stream_id": "s", "text": 5, "seq": 5},
    {"type": "chat", "stream_id": "s", "seq": 5},
    {"type": "chat", "stream_id": "", "text": "x", "seq": 1},
    {"type": "chat", "stream_id": "s" * (MAX_ID_CHARS + 1), "text": "x", "seq": 1},
    {"type": "chat", "stream_id": "s", "text": "x", "seq": 1, "user": 7},
    {"type": "chat", "stream_id": "s", "text": "x", "seq": 1, "sent_at": "now"},
    {"type": "chat", "stream_id": "s", "text": "x", "seq": 1, "product": "weapons"},
    {"type": "transcript", "stream_id": "s", "text": "x", "seq": 5, "final": "yes"},
    {"type": "transcript", "stream_id": "s", "text": "x", "seq": 5, "segment": -3},
    {"type": "transcript", "stream_id": "s", "text": "x", "seq": 5, "segment": 1.5},
    {"type": "transcript", "stream_id": "s", "text": "x", "seq": 5, "start_ms": -1},
    {"type": "transcript", "stream_id": "s", "text": "x", "seq": 5, "speaker": "h" * (MAX_ID_CHARS + 1)},
]


async def test_bad_frames_get_the_models_error_frames(app: App, connect: Connect) -> None:
    c = await connect(app)
    for data in BAD_FRAMES:
        assert fast_parse(data) is None
        kind, (code, detail, seq) = _slow(data)
        assert kind == "error"
        e = await c.request(data)
        assert e == {"type": "error", "code": code, "detail": detail, "seq": seq}, e
    await c.ping()  # the connection still works


async def test_pipelined_answers_keep_their_order(app: App, connect: Connect) -> None:
    """Many frames in flight at once: acks, warnings, errors and pongs come back in the order sent."""
    c = await connect(app, hello={"stream_id": "order", "acks": True})
    expected: list[tuple[str, int | None]] = []
    for i in range(300):
        if i % 7 == 3:
            await c.ws.send(orjson.dumps({"type": "chat", "text": "x", "seq": -i}).decode())
            expected.append(("error", -i))
        elif i % 11 == 5:
            await c.ws.send(orjson.dumps({"type": "ping", "seq": i}).decode())
            expected.append(("pong", i))
        elif i % 5 == 1:
            await c.ws.send(orjson.dumps({"type": "chat", "text": "谁能加微信", "seq": i, "user": f"u{i}"}).decode())
            expected.append(("warning", i))
        else:
            await c.ws.send(orjson.dumps({"type": "transcript", "text": "大家好", "seq": i}).decode())
            expected.append(("ack", i))
    got = []
    for _ in expected:
        f = orjson.loads(await asyncio.wait_for(c.ws.recv(), 10))
        got.append((f["type"], f.get("seq")))
    assert got == expected
    await c.ping()


def test_write_needs_a_websockets_connection() -> None:
    class FakeWs:  # not websockets' ServerConnection: never written to directly
        pass

    conn = Conn(FakeWs(), None, acks=False)  # type: ignore[arg-type]
    assert conn.fast is False and conn.write(b"{}") is False


async def test_write_falls_back_when_not_open_or_paused(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "s"})
    await c.ping()
    (conn,) = app._conns
    assert conn.fast
    conn.ws.paused = True  # the transport's buffer is over its high-water mark: flow control applies
    try:
        assert conn.write(b'{"type":"pong","seq":1,"rule_version":"x"}') is False
    finally:
        conn.ws.paused = False
    assert conn.write(b'{"type":"pong","seq":2,"rule_version":"x"}') is True
    f = orjson.loads(await asyncio.wait_for(c.ws.recv(), 5))
    assert f["seq"] == 2



@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
async def test_raw_frames_are_websockets_frames(app: App, connect: Connect, size: int) -> None:
    """``Conn._queue`` frames a text payload byte for byte as websockets' ``send_text`` would, at every length form."""
    c = await connect(app, hello={"stream_id": "raw"})
    await c.ping()
    (conn,) = app._conns
    assert conn.raw
    protocol = conn.ws.protocol
    payload = orjson.dumps({"type": "pong", "seq": 7, "rule_version": "x" * max(0, size - 40)})[: max(size, 2)]
    if size < 2:
        payload = b"x" * size
    assert not protocol.writes
    conn._queue(payload)
    ours = protocol.writes.pop()
    protocol.send_text(payload)
    theirs = protocol.writes.pop()
    assert ours == theirs


async def test_several_queued_frames_go_out_in_one_write(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "one-write"})
    await c.ping()
    (conn,) = app._conns
    writes: list[bytes] = []
    transport = conn.ws.transport
    real_write = transport.write
    transport.write = lambda data: (writes.append(bytes(data)), real_write(data))[1]  # type: ignore[method-assign]
    try:
        for i in range(3):
            conn.queue_frame(orjson.dumps({"type": "pong", "seq": i, "rule_version": "x"}))
        conn.write_queued()
    finally:
        del transport.write
    assert len(writes) == 1
    for i in range(3):
        f = orjson.loads(await asyncio.wait_for(c.ws.recv(), 5))
        assert f["seq"] == i

# ----------------------------------------------------------------------------- metrics
VALUES = [0.0, 1e-6, *CHECK_BUCKETS, *(b * 1.0000001 for b in CHECK_BUCKETS), 0.3, 10.0, 1e9, 4e-5, 7e-4]


@pytest.mark.parametrize("seed", range(3))
def test_batched_histogram_matches_prometheus(seed: int) -> None:
    import random

    rng = random.Random(seed)
    values = [rng.choice(VALUES) for _ in range(500)]
    ours = Metrics(CollectorRegistry())
    ref_registry = CollectorRegistry()
    ref = Histogram("compliance_check_seconds", "x", ["source"], buckets=CHECK_BUCKETS, registry=ref_registry)
    ref_count = Counter("compliance_messages_checked", "x", ["source"], registry=ref_registry)
    for i, v in enumerate(values):
        ours.check_by_source["chat"].observe(v)
        ours.messages_by_source["chat"].inc()
        ref.labels("chat").observe(v)
        ref_count.labels("chat").inc()
        if i % 97 == 0:  # scrapes in between
            ours.registry.get_sample_value("compliance_messages_checked_total", {"source": "chat"})

    def samples(registry: CollectorRegistry) -> dict[tuple[str, str | None], float]:
        return {
            (s.name, s.labels.get("le")): s.value
            for mf in registry.collect()
            if mf.name in ("compliance_check_seconds", "compliance_messages_checked")
            for s in mf.samples
            if s.labels.get("source") == "chat" and not s.name.endswith("_created")
        }

    a, b = samples(ours.registry), samples(ref_registry)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == pytest.approx(b[k], rel=1e-9), k


def test_batched_children_flush_on_exposition() -> None:
    m = Metrics(CollectorRegistry())
    m.messages_by_source["host"].inc()
    m.check_by_source["host"].observe(0.00002)
    text = m.exposition().decode()
    assert 'compliance_messages_checked_total{source="host"} 1.0' in text
    assert 'compliance_check_seconds_bucket{le="2.5e-05",source="host"} 1.0' in text
    assert 'compliance_check_seconds_bucket{le="1e-05",source="host"} 0.0' in text
    assert isinstance(m.messages_by_source["host"], BatchedCounter)
    assert isinstance(m.check_by_source["host"], BatchedHistogram)


def test_tune_gc_freezes_the_start_up_heap() -> None:
    code = (
        "import gc\n"
        "from livestream_compliance_server.app import GC_THRESHOLDS, tune_gc\n"
        "tune_gc()\n"
        "assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold()\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


YOUNG_CHILD = """
import asyncio, collections, gc, sys
from livestream_compliance_server.app import YoungCollections

async def run(timer):
    loop = asyncio.get_running_loop()
    # a steady state as a server's: each new object that survives replaces an old one that dies, so
    # allocations minus deallocations stay flat and CPython never starts a young collection itself
    window = collections.deque(([i] for i in range(20000)), maxlen=20000)
    gc.collect()
    collector = YoungCollections(loop, interval=0.005) if timer else None
    if collector is not None:
        collector.start()
    middle = []
    for r in range(40):
        for i in range(2000):
            window.append([i])
        await asyncio.sleep(0.02)
        middle.append(gc.get_count()[1])
    young = len(gc.get_objects(0))
    if collector is not None:
        collector.stop()
        n = len(gc.get_objects(0))
        for i in range(2000):
            window.append([i])
        await asyncio.sleep(0.02)
        assert len(gc.get_objects(0)) >= n + 2000, "stopped, yet collected"
    return young, max(middle), gc.get_threshold()[1]

gc.freeze()
print(*asyncio.run(run(sys.argv[1] == "timer")))
"""


@pytest.mark.parametrize("timer", [False, True])
def test_young_collections_keep_the_young_generation_small(timer: bool) -> None:
    """server/app.py, YoungCollections: without it, the survivors of a steady state pile up young
    (the control: ~20,000 objects); with it, the young generation holds what survived since the last
    tick, and the middle generation is collected every threshold-th time as CPython would."""
    out = subprocess.run(
        [sys.executable, "-c", YOUNG_CHILD, "timer" if timer else "none"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    young, middle, threshold = map(int, out.stdout.split())
    if timer:
        assert young < 4000, young  # at most the 2,000 of one round and what the loop made since
        assert middle <= threshold + 1, (middle, threshold)
    else:
        assert young >= 15000, young

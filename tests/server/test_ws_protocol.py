"""The websocket protocol against the real server on loopback."""

from __future__ import annotations

import pytest
from livestream_compliance import Checker, Source
from livestream_compliance_server.app import App, rewrite_without
from wsutil import Connect


async def test_hello_is_answered_with_welcome(app: App, connect: Connect) -> None:
    c = await connect(app)
    w = await c.request({"type": "hello", "stream_id": "room-1", "source": "chat", "product": "food", "acks": True})
    assert w["type"] == "welcome"
    assert w["stream_id"] == "room-1" and w["source"] == "chat" and w["product"] == "food" and w["acks"] is True
    assert w["rule_version"] == app.rule_version
    assert w["limits"]["max_frame_bytes"] == app.config.max_frame_bytes


async def test_transcript_with_findings_gets_exactly_one_warning(
    app: App, connect: Connect, live_checker: Checker
) -> None:
    c = await connect(app)
    text = "今天全网最低价，加微信领券"
    w = await c.request({"type": "transcript", "stream_id": "s1", "text": text, "seq": 7})
    assert w["type"] == "warning" and w["seq"] == 7 and w["stream_id"] == "s1" and w["source"] == "host"
    assert w["rule_version"] == live_checker.version
    expected = [f.to_dict() for f in live_checker.check(text, Source.HOST)]
    assert len(expected) == 2
    for got, exp in zip(w["findings"], expected, strict=True):
        assert {k: got[k] for k in exp} == exp  # every Finding.to_dict() field, same values
        assert got["carry"] == 0 and got["from_seq"] is None
        assert text[got["start"] : got["end"]] == got["text"]
    await c.ping()  # nothing else was sent


async def test_chat_warning_and_clean_lines_get_no_answer(app: App, connect: Connect) -> None:
    c = await connect(app)
    await c.send({"type": "chat", "stream_id": "s1", "text": "主播好漂亮", "seq": 1, "user": "u1"})
    w = await c.request({"type": "chat", "stream_id": "s1", "text": "谁能加微信", "seq": 2, "user": "u2"})
    assert w["type"] == "warning" and w["seq"] == 2 and w["source"] == "chat" and w["speaker"] == "u2"
    assert [f["rule_id"] for f in w["findings"]] == ["T-WECHAT"]
    # host-only rules do not fire on chat
    await c.send({"type": "chat", "stream_id": "s1", "text": "全网最低价吗", "seq": 3, "user": "u3"})
    await c.ping()


async def test_acks_answer_every_message(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "s1", "acks": True})
    a = await c.request({"type": "transcript", "text": "大家好", "seq": 1})
    assert a == {"type": "ack", "seq": 1, "rule_version": app.rule_version}
    w = await c.request({"type": "transcript", "text": "全网最低价", "seq": 2})
    assert w["type"] == "warning" and w["stream_id"] == "s1"


async def test_server_default_acks(make_app, connect: Connect) -> None:
    app = await make_app(acks=True)
    c = await connect(app)
    assert (await c.request({"type": "chat", "stream_id": "s", "text": "hi", "seq": 4}))["type"] == "ack"
    c2 = await connect(app, hello={"acks": False})
    await c2.send({"type": "chat", "stream_id": "s", "text": "hi", "seq": 5})
    await c2.ping()


async def test_missing_stream_id_is_an_error(app: App, connect: Connect) -> None:
    c = await connect(app)
    e = await c.request({"type": "transcript", "text": "全网最低价", "seq": 3})
    assert e["type"] == "error" and e["code"] == "missing_stream_id" and e["seq"] == 3


async def test_batch_items_are_answered_like_single_messages(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "s1", "source": "chat", "acks": True})
    await c.send(
        {
            "type": "batch",
            "seq": 100,
            "items": [
                {"seq": 1, "text": "你好"},  # chat (hello's source)
                {"seq": 2, "text": "加微信", "user": "u1"},  # chat warning
                {"seq": 3, "text": "全网最低价", "source": "host"},  # host warning
                {"seq": 4, "text": "全网最低价"},  # chat: host-only rule -> ack
            ],
        }
    )
    frames = [await c.recv() for _ in range(4)]
    assert [(f["type"], f["seq"]) for f in frames] == [("ack", 1), ("warning", 2), ("warning", 3), ("ack", 4)]
    assert frames[1]["source"] == "chat" and frames[2]["source"] == "host"
    await c.ping()


async def test_batch_over_the_item_limit(make_app, connect: Connect) -> None:
    app = await make_app(max_batch_items=3)
    c = await connect(app, hello={"stream_id": "s"})
    e = await c.request({"type": "batch", "seq": 9, "items": [{"seq": i, "text": "x"} for i in range(4)]})
    assert e["code"] == "bad_message" and e["seq"] == 9


async def test_script_block_has_rewrite_and_suggestions(app: App, connect: Connect) -> None:
    c = await connect(app)
    v = await c.request({"type": "script", "seq": 1, "text": "家人们，今天全网最低价，加微信领券！"})
    assert v["type"] == "verdict" and v["seq"] == 1 and v["verdict"] == "block"
    assert [f["rule_id"] for f in v["findings"]] == ["T-FAMILY", "T-LOWEST", "T-WECHAT"]
    assert v["rewrite"] == "今天，领券！"
    assert v["suggestions"] == ["可以改为“大家”。", "改为“直播间专属价”。", "请在平台内沟通。"]
    assert v["rule_version"] == app.rule_version


async def test_script_is_always_answered(app: App, connect: Connect) -> None:
    c = await connect(app)
    clean = await c.request({"type": "script", "seq": 2, "text": "欢迎来到直播间"})
    assert clean["verdict"] == "pass" and clean["findings"] == [] and clean["rewrite"] == "欢迎来到直播间"
    info = await c.request({"type": "script", "seq": 3, "text": "家人们好"})  # info is below the block level
    assert info["verdict"] == "pass" and [f["severity"] for f in info["findings"]] == ["info"]


async def test_script_block_level_is_configurable(make_app, connect: Connect) -> None:
    app = await make_app(block_severity="high")
    c = await connect(app)
    assert (await c.request({"type": "script", "seq": 1, "text": "加微信"}))["verdict"] == "pass"
    assert (await c.request({"type": "script", "seq": 2, "text": "全网最低价"}))["verdict"] == "block"


def test_rewrite_without_tidies_punctuation(live_checker: Checker) -> None:
    text = "全网最低价，快来买"
    assert rewrite_without(text, live_checker.check(text)) == "快来买"
    assert rewrite_without("没问题", ()) == "没问题"


async def test_subscribers_get_their_streams_warnings(app: App, connect: Connect) -> None:
    overlay = await connect(app)
    assert await overlay.request({"type": "subscribe", "stream_id": "s1"}) == {"type": "subscribed", "stream_id": "s1"}
    producer = await connect(app)
    await producer.send({"type": "transcript", "stream_id": "s2", "text": "全网最低价", "seq": 1})
    mine = await producer.recv()
    assert mine["stream_id"] == "s2"
    w = await producer.request({"type": "transcript", "stream_id": "s1", "text": "史上最低价", "seq": 2})
    got = await overlay.recv()
    assert got == w  # the same frame, and nothing from s2 before it
    assert await overlay.request({"type": "unsubscribe", "stream_id": "s1"}) == {
        "type": "unsubscribed",
        "stream_id": "s1",
    }
    await producer.request({"type": "transcript", "stream_id": "s1", "text": "全网最低价", "seq": 3})
    await overlay.ping()


async def test_subscription_limit(make_app, connect: Connect) -> None:
    app = await make_app(max_subscriptions=2)
    c = await connect(app)
    for sid in ("a", "b", "a"):
        assert (await c.request({"type": "subscribe", "stream_id": sid}))["type"] == "subscribed"
    e = await c.request({"type": "subscribe", "stream_id": "c"})
    assert e["code"] == "too_many_subscriptions"


async def test_audit_sink_is_called_off_the_loop_for_every_warning(make_app, connect: Connect) -> None:
    import threading

    from wsutil import RecordingSink

    sink = RecordingSink()
    app = await make_app(sink=sink)
    c = await connect(app, hello={"stream_id": "s1"})
    await c.request({"type": "chat", "text": "加微信", "seq": 1, "user": "u9"})
    await c.request({"type": "transcript", "text": "全网最低价", "seq": 4, "start_ms": 1000, "end_ms": 2500})
    await c.request({"type": "script", "seq": 2, "text": "全网最低价"})
    await c.send({"type": "chat", "text": "clean", "seq": 3})
    await c.ping()
    await app.stop()  # drains the audit queue and closes the sink
    assert sink.closed
    assert threading.get_ident() not in sink.threads
    assert [(r.kind, r.seq, r.stream_id, r.speaker, r.start_ms) for r in sink.records] == [
        ("warning", 1, "s1", "u9", None),
        ("warning", 4, "s1", "host", 1000),
        ("script", 2, "s1", None, None),
    ]
    assert sink.records[0].findings[0]["rule_id"] == "T-WECHAT"
    assert sink.records[0].rule_version == app.rule_version


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ('{"type": "chat", "text": "x", "seq": 1', "bad_json"),
        ("[1, 2]", "bad_message"),
        ('"hello"', "bad_message"),
        ("{}", "bad_message"),
        ('{"type": "shout", "seq": 4}', "unknown_type"),
        ('{"type": 5}', "unknown_type"),
        ('{"type": "chat", "stream_id": "s", "text": "x", "seq": "5"}', "bad_message"),
        ('{"type": "chat", "stream_id": "s", "text": 5, "seq": 5}', "bad_message"),
        ('{"type": "transcript", "stream_id": "s", "text": "x", "seq": 5, "final": "yes"}', "bad_message"),
        ('{"type": "transcript", "stream_id": "s", "text": "x", "seq": -1}', "bad_message"),
        ('{"type": "chat", "stream_id": "", "text": "x", "seq": 1}', "bad_message"),
        ('{"type": "hello", "product": "weapons"}', "bad_message"),
        ('{"type": "chat", "stream_id": "s", "text": "\\ud800", "seq": 1}', "bad_json"),
        ('{"type": "batch", "stream_id": "s", "items": []}', "bad_message"),
        ('{"type": "subscribe"}', "bad_message"),
    ],
)
async def test_bad_frames_get_error_frames(app: App, connect: Connect, frame: str, code: str) -> None:
    c = await connect(app)
    e = await c.request(frame)
    assert e["type"] == "error" and e["code"] == code, e
    await c.ping()
    # and the connection still checks text
    w = await c.request({"type": "transcript", "stream_id": "s", "text": "全网最低价", "seq": 8})
    assert w["type"] == "warning"


async def test_error_frames_echo_a_readable_seq(app: App, connect: Connect) -> None:
    c = await connect(app)
    e = await c.request({"type": "chat", "stream_id": "s", "text": 1, "seq": 42})
    assert e["seq"] == 42 and "text" in e["detail"]


async def test_invalid_utf8_gets_an_error_frame(app: App, connect: Connect) -> None:
    c = await connect(app)
    bad = b'{"type": "chat", "stream_id": "s", "text": "\xff\xfe", "seq": 1}'
    await c.ws.send(bad, text=True)  # a text frame whose payload is not UTF-8
    e = await c.recv()
    assert e["code"] == "invalid_utf8"
    await c.ws.send(bad)  # the same as a binary frame
    assert (await c.recv())["code"] == "invalid_utf8"
    # a binary frame with valid JSON is accepted like a text frame
    await c.ws.send('{"type": "chat", "stream_id": "s", "text": "加微信", "seq": 2}'.encode())
    assert (await c.recv())["type"] == "warning"


async def test_text_over_the_limit(make_app, connect: Connect) -> None:
    app = await make_app(max_text_chars=10)
    c = await connect(app)
    e = await c.request({"type": "chat", "stream_id": "s", "text": "哈" * 11, "seq": 3})
    assert e["code"] == "bad_message" and e["seq"] == 3
    e = await c.request({"type": "script", "text": "哈" * 11, "seq": 4})
    assert e["code"] == "bad_message" and e["seq"] == 4
    await c.ping()


async def test_oversized_frames(make_app, connect: Connect) -> None:
    from websockets.exceptions import ConnectionClosed

    app = await make_app(max_frame_bytes=1024, hard_max_frame_bytes=4096)
    c = await connect(app)
    e = await c.request({"type": "chat", "stream_id": "s", "text": "x" * 2000, "seq": 1})
    assert e["code"] == "too_large"  # over the soft limit: an error frame, the connection lives on
    await c.ping()
    await c.send({"type": "chat", "stream_id": "s", "text": "x" * 5000, "seq": 2})
    with pytest.raises(ConnectionClosed):
        await c.recv()
    assert c.ws.close_code == 1009  # over the hard limit: the websocket layer closes (message too big)

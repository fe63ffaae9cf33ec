"""Stream sessions through the real server: split terms, partial -> final."""

from __future__ import annotations

from livestream_compliance_server.app import App
from wsutil import Connect


async def test_host_term_split_across_segments_is_caught_once(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "room", "acks": True})
    first = await c.request({"type": "transcript", "text": "今天给大家的是全网", "seq": 1})
    assert first["type"] == "ack"
    w = await c.request({"type": "transcript", "text": "最低价哦", "seq": 2})
    assert w["type"] == "warning" and w["seq"] == 2
    (f,) = w["findings"]
    assert f["rule_id"] == "T-LOWEST"
    assert (f["start"], f["end"], f["text"], f["carry"], f["from_seq"]) == (0, 3, "全网最低价", 2, 1)
    assert "最低价哦"[f["start"] : f["end"]] == f["text"][f["carry"] :]
    # the next segment does not report it again
    assert (await c.request({"type": "transcript", "text": "快下单", "seq": 3}))["type"] == "ack"


async def test_chat_term_typed_over_three_lines_is_caught_once(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "room", "acks": True})
    frames = []
    for seq, (user, text) in enumerate([("u1", "加"), ("u2", "加"), ("u1", "微"), ("u2", "哈"), ("u1", "信")]):
        frames.append(await c.request({"type": "chat", "text": text, "seq": seq, "user": user}))
    assert [f["type"] for f in frames] == ["ack", "ack", "ack", "ack", "warning"]
    (f,) = frames[-1]["findings"]
    assert (f["rule_id"], f["text"], f["carry"], f["from_seq"]) == ("T-WECHAT", "加微信", 2, 0)
    assert frames[-1]["speaker"] == "u1"
    assert (await c.request({"type": "chat", "text": "好", "seq": 9, "user": "u1"}))["type"] == "ack"


async def test_chat_lines_without_user_are_not_joined(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "room", "acks": True})
    for seq, text in enumerate("加微信"):
        assert (await c.request({"type": "chat", "text": text, "seq": seq}))["type"] == "ack"


async def test_partial_then_final_warns_once(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "room", "acks": True})
    p1 = await c.request({"type": "transcript", "text": "今天全网", "seq": 10, "final": False})
    assert p1["type"] == "ack"
    p2 = await c.request({"type": "transcript", "text": "今天全网最低价", "seq": 10, "final": False})
    assert p2["type"] == "warning" and p2["final"] is False and p2["findings"][0]["rule_id"] == "T-LOWEST"
    p3 = await c.request({"type": "transcript", "text": "今天全网最低价啊", "seq": 10, "final": False})
    assert p3["type"] == "ack"
    final = await c.request({"type": "transcript", "text": "今天全网最低价啊", "seq": 10, "final": True})
    assert final["type"] == "ack"  # already warned while it was partial


async def test_final_revision_reports_only_what_is_new(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "room", "acks": True})
    # a client numbering every frame uses "segment" to tie the revisions together
    p = await c.request({"type": "transcript", "text": "全网最低价", "seq": 1, "segment": "utt-1", "final": False})
    assert p["type"] == "warning" and p["segment"] == "utt-1"
    f = await c.request(
        {"type": "transcript", "text": "全网最低价，加微信", "seq": 2, "segment": "utt-1", "final": True}
    )
    assert f["type"] == "warning" and f["seq"] == 2 and f["final"] is True
    assert [x["rule_id"] for x in f["findings"]] == ["T-WECHAT"]


async def test_sessions_are_per_stream_and_survive_reconnects(app: App, connect: Connect) -> None:
    a = await connect(app, hello={"acks": True})
    assert (await a.request({"type": "transcript", "stream_id": "A", "text": "全网", "seq": 1}))["type"] == "ack"
    assert (await a.request({"type": "transcript", "stream_id": "B", "text": "最低价", "seq": 2}))["type"] == "ack"
    await a.close()
    b = await connect(app, hello={"acks": True})
    w = await b.request({"type": "transcript", "stream_id": "A", "text": "最低价", "seq": 3})
    assert w["type"] == "warning" and w["findings"][0]["from_seq"] == 1

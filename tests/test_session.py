"""compliance/session.py: the sans-I/O stream state (time is passed in)."""

from __future__ import annotations

from pathlib import Path

import pytest
from livestream_compliance import Checker, Source, load_rule_set
from livestream_compliance.session import SessionConfig, SessionStore, StreamSession

RULES = Path(__file__).parent / "server" / "fixtures" / "rules"
H, C = Source.HOST, Source.CHAT


@pytest.fixture(scope="module")
def small() -> Checker:
    """The server test rules without jieba (none of them asks for word boundaries): builds in ms."""
    return Checker(load_rule_set([RULES], defaults=False))


def spans(reported) -> list[tuple[str, int, int, str, int, int | None]]:
    return [(r.finding.rule_id, r.finding.start, r.finding.end, r.finding.text, r.carry, r.from_seq) for r in reported]


def test_a_message_alone(small: Checker) -> None:
    s = StreamSession("s")
    out = s.feed(small, "今天全网最低价", source=H, seq=1, now=0.0, speaker="host")
    assert spans(out) == [("T-LOWEST", 2, 7, "全网最低价", 0, None)]
    assert out[0].finding == small.check("今天全网最低价", H)[0]


def test_split_host_term_is_reported_once_with_carry(small: Checker) -> None:
    s = StreamSession("s")
    assert s.feed(small, "这是全网", source=H, seq=1, now=0.0, speaker="host") == ()
    out = s.feed(small, "最低价了", source=H, seq=2, now=1.0, speaker="host")
    assert spans(out) == [("T-LOWEST", 0, 3, "全网最低价", 2, 1)]
    r = out[0]
    assert "最低价了"[r.finding.start : r.finding.end] == r.finding.text[r.carry :]
    d = r.to_dict()
    assert d["carry"] == 2 and d["from_seq"] == 1 and d["rule_id"] == "T-LOWEST"
    # the next message does not repeat it
    assert s.feed(small, "大家快买", source=H, seq=3, now=2.0, speaker="host") == ()


def test_term_over_three_chat_lines_of_one_user(small: Checker) -> None:
    s = StreamSession("s")
    assert s.feed(small, "加", source=C, seq=1, now=0.0, speaker="u1") == ()
    assert s.feed(small, "加", source=C, seq=2, now=0.5, speaker="u2") == ()  # another user between
    assert s.feed(small, "微", source=C, seq=3, now=1.0, speaker="u1") == ()
    out = s.feed(small, "信", source=C, seq=4, now=2.0, speaker="u1")
    assert spans(out) == [("T-WECHAT", 0, 1, "加微信", 2, 1)]
    assert s.feed(small, "信", source=C, seq=5, now=2.5, speaker="u2") == ()  # u2 typed 加 then 信


def test_no_speaker_means_no_join(small: Checker) -> None:
    s = StreamSession("s")
    assert s.feed(small, "加微", source=C, seq=1, now=0.0) == ()
    assert s.feed(small, "信", source=C, seq=2, now=0.1) == ()


def test_the_tail_expires_after_the_window(small: Checker) -> None:
    s = StreamSession("s", SessionConfig(host_window=5.0, chat_window=3.0))
    s.feed(small, "全网", source=H, seq=1, now=0.0, speaker="host")
    assert s.feed(small, "最低价", source=H, seq=2, now=5.5, speaker="host") == ()
    s.feed(small, "加微", source=C, seq=3, now=10.0, speaker="u")
    assert s.feed(small, "信", source=C, seq=4, now=13.5, speaker="u") == ()
    s.feed(small, "加微", source=C, seq=5, now=20.0, speaker="u")
    assert len(s.feed(small, "信", source=C, seq=6, now=22.9, speaker="u")) == 1


def test_sources_do_not_join(small: Checker) -> None:
    s = StreamSession("s")
    s.feed(small, "加微", source=H, seq=1, now=0.0, speaker="x")
    assert s.feed(small, "信", source=C, seq=2, now=0.1, speaker="x") == ()


def test_partial_results_then_final_report_once(small: Checker) -> None:
    s = StreamSession("s")
    assert s.feed(small, "今天全网", source=H, seq=7, now=0.0, speaker="host", final=False) == ()
    out = s.feed(small, "今天全网最低价", source=H, seq=7, now=0.2, speaker="host", final=False)
    assert spans(out) == [("T-LOWEST", 2, 7, "全网最低价", 0, None)]
    assert s.feed(small, "今天全网最低价呀", source=H, seq=7, now=0.4, speaker="host", final=False) == ()
    # the final revision repeats the phrase once more: only the new occurrence is reported
    out = s.feed(small, "今天全网最低价呀全网最低价", source=H, seq=7, now=0.6, speaker="host", final=True)
    assert spans(out) == [("T-LOWEST", 8, 13, "全网最低价", 0, None)]
    # a duplicate final (client retry) neither reports again nor extends the tail twice
    assert s.feed(small, "今天全网最低价呀全网最低价", source=H, seq=7, now=0.7, speaker="host", final=True) == ()


def test_partials_are_not_joined_into_the_tail(small: Checker) -> None:
    s = StreamSession("s")
    s.feed(small, "全网", source=H, seq=1, now=0.0, speaker="host", final=False)
    # the partial never became final: its text is not context for the next segment
    assert s.feed(small, "最低价", source=H, seq=2, now=0.1, speaker="host") == ()


def test_segment_key_ties_revisions_with_distinct_seqs(small: Checker) -> None:
    s = StreamSession("s")
    assert len(s.feed(small, "全网最低价", source=H, seq=1, segment="u1", now=0.0, speaker="host", final=False)) == 1
    assert s.feed(small, "全网最低价。", source=H, seq=2, segment="u1", now=0.1, speaker="host", final=True) == ()
    # a new segment with the same words is a new utterance
    assert len(s.feed(small, "全网最低价", source=H, seq=3, segment="u2", now=0.2, speaker="host")) == 1


def test_partial_of_a_segment_after_a_carried_finding(small: Checker) -> None:
    s = StreamSession("s")
    s.feed(small, "全网", source=H, seq=1, now=0.0, speaker="host")
    out = s.feed(small, "最低价", source=H, seq=2, now=0.1, speaker="host", final=False)
    assert spans(out) == [("T-LOWEST", 0, 3, "全网最低价", 2, 1)]
    assert s.feed(small, "最低价哦", source=H, seq=2, now=0.2, speaker="host", final=True) == ()


def test_same_rule_already_reported_over_the_join_is_not_repeated(small: Checker) -> None:
    s = StreamSession("s")
    assert len(s.feed(small, "全网最低价", source=H, seq=1, now=0.0, speaker="host")) == 1
    # 全网最低价价 (a doubled character) also matches, across the join: the same rule over the same words
    assert s.feed(small, "价", source=H, seq=2, now=0.1, speaker="host") == ()


def test_a_finding_wholly_in_the_tail_is_not_repeated(small: Checker) -> None:
    s = StreamSession("s")
    assert len(s.feed(small, "加微信", source=C, seq=1, now=0.0, speaker="u")) == 1
    assert s.feed(small, "好的", source=C, seq=2, now=0.1, speaker="u") == ()


def test_tail_is_bounded_and_pieces_follow_it(small: Checker) -> None:
    s = StreamSession("s", SessionConfig(tail_chars=4))
    s.feed(small, "哈哈哈哈哈哈哈全", source=H, seq=1, now=0.0, speaker="host")
    s.feed(small, "网", source=H, seq=2, now=0.1, speaker="host")
    sp = s._speakers[(H, "host")]
    assert sp.tail == "哈哈全网" and len(sp.tail) <= 4
    out = s.feed(small, "最低价", source=H, seq=3, now=0.2, speaker="host")
    assert spans(out) == [("T-LOWEST", 0, 3, "全网最低价", 2, 1)]  # began in seq 1
    # longer than the tail: a term split with more than tail_chars before the cut is still caught
    s2 = StreamSession("s", SessionConfig(tail_chars=2))
    s2.feed(small, "全网最", source=H, seq=1, now=0.0, speaker="host")
    assert s2.feed(small, "低价", source=H, seq=2, now=0.1, speaker="host") == ()  # needs 3 chars of tail


def test_bounded_speakers_and_segments(small: Checker) -> None:
    s = StreamSession("s", SessionConfig(max_speakers=3, max_open_segments=2))
    for i in range(10):
        s.feed(small, "加", source=C, seq=i, now=float(i), speaker=f"u{i}")
    assert len(s) == 3
    for i in range(10):
        s.feed(small, "哈", source=H, seq=100 + i, now=20.0, speaker="host", final=False)
    assert len(s._speakers[(H, "host")].segments) == 2


def test_store_evicts_idle_and_least_recently_used(small: Checker) -> None:
    store = SessionStore(SessionConfig(max_streams=3, idle_timeout=10.0))
    for i in range(4):
        store.feed(f"s{i}", small, "你好", source=C, seq=i, now=float(i), speaker="u")
    assert len(store) == 3 and "s0" not in store and store.evicted == 1
    store.session("s1", now=9.0)  # s1 used again
    assert store.evict_idle(now=12.5) == ["s2"]  # idle since 2.0; s1 (9.0) and s3 (3.0 > 2.5) stay
    assert store.evict_idle(now=19.5) == ["s3", "s1"]
    assert len(store) == 0 and store.evicted == 4


def test_store_keeps_streams_apart(small: Checker) -> None:
    store = SessionStore()
    store.feed("a", small, "全网", source=H, seq=1, now=0.0, speaker="host")
    assert store.feed("b", small, "最低价", source=H, seq=2, now=0.1, speaker="host") == ()
    assert len(store.feed("a", small, "最低价", source=H, seq=3, now=0.2, speaker="host")) == 1


def test_checker_errors_propagate_and_state_is_kept(small: Checker) -> None:
    from livestream_compliance import UsageError

    s = StreamSession("s")
    s.feed(small, "全网", source=H, seq=1, now=0.0, speaker="host")
    with pytest.raises(UsageError):
        s.feed(small, "最低价", source=H, seq=2, now=0.1, speaker="host", product="nonsense")
    assert len(s.feed(small, "最低价", source=H, seq=3, now=0.2, speaker="host")) == 1


def test_an_earlier_message_does_not_negate_the_next(small: Checker) -> None:
    """The negation look-back stops at the join: 没 in the previous line does not cancel 加微信."""
    s = StreamSession("s")
    assert small.check("好几天没来了加微信", C) == ()  # one line: 没 … 加微信 reads as a negation
    assert s.feed(small, "好几天没来了", source=C, seq=1, now=0.0, speaker="u1") == ()
    out = s.feed(small, "加微信", source=C, seq=2, now=1.0, speaker="u1")
    assert spans(out) == [("T-WECHAT", 0, 3, "加微信", 0, None)]


def test_a_crossing_match_supersedes_the_shorter_one_in_the_new_text(small: Checker) -> None:
    s = StreamSession("s")
    assert s.feed(small, "真的是全网", source=H, seq=1, now=0.0, speaker="host") == ()
    out = s.feed(small, "最低价，史上最低价", source=H, seq=2, now=1.0, speaker="host")
    assert spans(out) == [("T-LOWEST", 0, 3, "全网最低价", 2, 1), ("T-LOWEST", 4, 9, "史上最低价", 0, None)]


def test_a_clean_message_resent_enters_the_tail_once(small: Checker) -> None:
    """The no-findings path remembers the segment too: the same seq again does not extend the tail."""
    s = StreamSession("s")
    assert s.feed(small, "加", source=C, seq=1, now=0.0, speaker="u1") == ()
    assert s.feed(small, "加", source=C, seq=1, now=0.1, speaker="u1") == ()
    sp = s._speakers[(C, "u1")]
    assert sp.tail == "加" and sp.pieces == [1, 0]
    out = s.feed(small, "微信", source=C, seq=2, now=0.2, speaker="u1")
    assert spans(out) == [("T-WECHAT", 0, 2, "加微信", 1, 1)]


class _NoCrossing:
    """The checker without ``check(crossing=)``: the session then checks the whole join."""

    def __init__(self, checker: Checker) -> None:
        self._checker = checker

    def check(self, text: str, source: Source | str = H, product: str | None = None):
        return self._checker.check(text, source, product)

    def __getattr__(self, name: str):  # everything else (classifier_rule_ids) is the checker's
        return getattr(self._checker, name)


@pytest.mark.parametrize("source", [H, C])
def test_join_checked_with_crossing_reports_the_same(checker: Checker, source: Source) -> None:
    # every rule example split in two messages (at its hit's middle and one character in), with a
    # clean line and an earlier example from the same speaker between them: the join check that
    # verifies only hits crossing the join reports exactly what the full join check reports
    assert type(checker).supports_crossing
    texts: list[str] = []
    for rule in checker.rules.rules:
        for ex in rule.must_match:
            texts.append(ex.text)
    messages: list[tuple[str, str]] = []
    for i, t in enumerate(texts):
        speaker = f"v{i % 7}"
        hit_at = max(1, len(t) // 2)
        messages += [(t[:hit_at], speaker), (t[hit_at:], speaker), ("大家晚上好", speaker), (t[:1], speaker), (t[1:], speaker)]

    def run(ck) -> list:
        store = SessionStore(SessionConfig())
        return [
            spans(store.session("s", i * 0.01).feed(ck, text, source=source, seq=i, now=i * 0.01, speaker=who))
            for i, (text, who) in enumerate(messages)
        ]

    with_crossing = run(checker)
    assert with_crossing == run(_NoCrossing(checker))
    assert sum(1 for r in with_crossing if any(x[4] > 0 for x in r)) > 100  # many findings do cross a join


def test_join_check_skips_lines_where_nothing_can_cross(checker: Checker) -> None:
    # a finding wholly inside the tail (and no pattern trigger near the join): the join check
    # verifies nothing
    tail, head = "垃圾主播滚", "今天天气不错"
    assert checker.check(tail, C)
    text = tail + head
    ftext = text.translate(checker._ftable)
    hits = checker._scan[C][0](ftext, True)
    assert hits
    assert not checker._join_relevant(checker._join_at(text, ftext, len(tail)), C, hits)
    assert checker.check(text, C, crossing=len(tail)) == ()
    # the same term split by the join is relevant, and found
    text = "加我微" + "信好吗"
    ftext = text.translate(checker._ftable)
    assert checker._join_relevant(checker._join_at(text, ftext, 3), C, checker._scan[C][0](ftext, True))
    assert any(f.start < 3 < f.end for f in checker.check(text, C, crossing=3))
    # a phone-number trigger in the tail whose pattern can reach across the join is relevant
    text = "138" + "12345678"
    ftext = text.translate(checker._ftable)
    assert checker._join_relevant(checker._join_at(text, ftext, 3), C, checker._scan[C][0](ftext, True))
    assert any(f.rule_id == "DIV-PHONE" and f.start < 3 < f.end for f in checker.check(text, C, crossing=3))


def test_a_clean_message_leaves_no_object_for_the_collector(small: Checker) -> None:
    """In a steady state (speakers known, tails full) a clean message makes no object that outlives it.

    Survivors that replace dying old objects never trigger a young collection (CPython counts
    allocations minus deallocations), so they would pile up in the young generation until one long
    collection stops the server's event loop (server/app.py, YoungCollections).
    """
    import gc

    store = SessionStore(SessionConfig(tail_chars=8))
    lines = ["今天天气不错", "主播好", "这个多少钱", "已拍", "什么时候发货呀"]

    def feed(n: int, seq0: int) -> None:
        for i in range(n):
            store.session("s", 0.0).feed(
                small, lines[i % len(lines)], source=C, seq=seq0 + i, now=i * 0.001, speaker=f"u{i % 500}"
            )

    feed(5000, 0)  # every speaker exists and every tail has been cut
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects(0))
        feed(2000, 5000)
        survivors = len(gc.get_objects(0)) - before
    finally:
        if was_enabled:
            gc.enable()
    assert survivors < 20, survivors  # 0 here; with a (seq, start) tuple per message, ~1,300
    sp = store.session("s", 0.0)._speakers[(C, "u0")]
    assert sp.pieces[-2] == 6500 and all(type(x) is int for x in sp.pieces)

"""Checker behaviour on a small fixture rule set, plus properties over the default rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance import (
    Checker,
    ComplianceError,
    Finding,
    InputError,
    Severity,
    Source,
    UsageError,
    build_checker,
    check_many,
    load_rule_set,
)
from livestream_compliance.engine import MAX_TEXT_LENGTH
from livestream_compliance.normalize import VECTOR_MIN_CHARS

FIXTURE = Path(__file__).parent / "fixtures" / "rules" / "engine"


@pytest.fixture(scope="module")
def small() -> Checker:
    """The fixture rules with their own taught jieba (a segmenter belongs to one rule set)."""
    return build_checker(load_rule_set([FIXTURE], defaults=False))


def spans(findings) -> list[tuple[str, int, int, str]]:
    return [(f.rule_id, f.start, f.end, f.text) for f in findings]


def test_finding_fields_and_immutability(small: Checker) -> None:
    (f,) = small.check("这款是全网最好的", "host")
    assert (f.rule_id, f.category, f.severity, f.source, f.start, f.end, f.text) == (
        "T-ABS", "absolute_terms", Severity.HIGH, Source.HOST, 5, 7, "最好")
    assert f.rule_version.startswith("engine-fixture@1#")
    assert f.legal_basis[0].law == "中华人民共和国广告法"
    with pytest.raises(AttributeError):
        f.start = 0  # type: ignore[misc]
    d = f.to_dict()
    assert d["severity"] == "high" and d["source"] == "host" and d["legal_basis"] == ["中华人民共和国广告法 第九条第（三）项"]
    # every field, in declaration order (the wire format), and nothing else
    assert list(d) == [fl.name for fl in dataclasses.fields(f)]
    assert {k: v for k, v in d.items() if k not in ("severity", "source", "legal_basis")} == {
        k: v for k, v in dataclasses.asdict(f).items() if k not in ("severity", "source", "legal_basis")}


def test_severity_is_ordered() -> None:
    assert Severity.INFO < Severity.WARNING < Severity.HIGH < Severity.CRITICAL
    assert Severity.parse("High") is Severity.HIGH
    with pytest.raises(UsageError):
        Severity.parse("fatal")


def test_offsets_index_the_original_text_through_evasions(small: Checker) -> None:
    text = "加 我 薇😀微 信"  # noise between every character
    (f,) = small.check(text, "chat")
    assert (f.rule_id, f.text) == ("T-DIV", "微 信") and text[f.start:f.end] == "微 信"
    (f,) = small.check("ＶＸ号多少", "chat")
    assert (f.start, f.end, f.text) == (0, 2, "ＶＸ")


def test_repeated_characters_are_caught(small: Checker) -> None:
    assert spans(small.check("加微微信", "chat")) == [("T-DIV", 1, 4, "微微信")]
    assert spans(small.check("最最最好", "host")) == [("T-ABS", 0, 4, "最最最好")]
    assert spans(small.check("私聊 聊天", "chat")) == [("T-DIV", 0, 2, "私聊")]  # 私聊聊 needs adjacency
    assert spans(small.check("全网网最低", "host")) == [("T-ABS", 0, 5, "全网网最低")]
    assert spans(small.check("全网 网最低", "host")) == [("T-ABS", 4, 6, "最低")]  # not adjacent: no doubled form


def test_exceptions_and_boundaries(small: Checker) -> None:
    assert small.check("大家最好先量尺码", "host") == ()
    assert small.check("今天第一次来", "host") == ()
    assert spans(small.check("第一次来的都说这是第一", "host")) == [("T-ABS", 9, 11, "第一")]
    # Latin terms do not fire inside longer words
    assert small.check("i love xbox", "chat") == ()
    assert spans(small.check("加vx", "chat")) == [("T-DIV", 1, 3, "vx")]


def test_speaker_scope(small: Checker) -> None:
    assert small.check("这是最好的", "chat") == ()
    assert spans(small.check("这是最好的", "host")) == [("T-ABS", 2, 4, "最好")]
    assert spans(small.check("私聊我", "chat")) == [("T-DIV", 0, 2, "私聊")]


def test_product_scope(small: Checker) -> None:
    assert small.check("喝了能降血压", "host", "drug") == ()
    assert spans(small.check("喝了能降血压", "host", "food")) == [("T-MED", 3, 6, "降血压")]
    assert spans(small.check("喝了能降血压", "host")) == [("T-MED", 3, 6, "降血压")]  # undeclared: strictest
    with pytest.raises(UsageError):
        small.check("x", "host", "spaceships")


def test_negation_and_warnings(small: Checker) -> None:
    assert small.check("本品不能治愈疾病", "host") == ()
    assert small.check("小心叫你加微信的人", "chat") == ()
    assert small.check("直播间禁止私聊交易", "host") == ()
    # a negation in an earlier clause does not reach the hit
    assert spans(small.check("不用担心，加我微信", "chat")) == [("T-DIV", 7, 9, "微信")]
    # questions are not negations
    assert spans(small.check("主播有没有微信", "chat")) == [("T-DIV", 5, 7, "微信")]


def test_longest_overlapping_hit_wins(small: Checker) -> None:
    assert spans(small.check("全网最低价", "host")) == [("T-ABS", 0, 4, "全网最低")]


def test_patterns(small: Checker) -> None:
    assert spans(small.check("电话 138 1234 5678", "chat")) == [("T-DIV", 3, 16, "138 1234 5678")]
    assert spans(small.check("①③⑧12345678", "chat")) == [("T-DIV", 0, 11, "①③⑧12345678")]
    assert small.check("订单号 2138123456789", "chat") == ()


def test_explain_shows_each_decision(small: Checker) -> None:
    ex = small.explain("大家最好先量尺码，这是最好的", "host")
    verdicts = [(c.rule_id, c.verdict, c.start) for c in ex.candidates]
    assert ("T-ABS", "exception", 2) in verdicts and ("T-ABS", "kept", 11) in verdicts
    assert ex.normalized == "大家最好先量尺码\u2029这是最好的"
    assert spans(ex.findings) == [("T-ABS", 11, 13, "最好")]
    ex = small.explain("这是最好的", "chat")
    assert [c.verdict for c in ex.candidates] == ["speaker"]
    ex = small.explain("喝了能降血压", "host", "drug")
    assert [c.verdict for c in ex.candidates] == ["product"]
    ex = small.explain("本品不能治愈疾病", "host")
    assert [c.verdict for c in ex.candidates] == ["negation"]


def test_bad_input_raises_documented_errors(small: Checker) -> None:
    with pytest.raises(InputError):
        small.check(b"bytes", "host")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        small.check("好" * (MAX_TEXT_LENGTH + 1), "host")
    with pytest.raises(UsageError):
        small.check("最好", "audience")
    assert issubclass(InputError, ComplianceError) and issubclass(UsageError, ComplianceError)


def test_batch_equals_per_line(small: Checker) -> None:
    lines = ["全网最好的", "", "加 微 信", "今天第一次来", "138 1234 5678", "最最好", "ＶＸ", "本品不能治愈疾病"]
    for source in Source:
        assert small.check_batch(lines, source) == [small.check(t, source) for t in lines]
    assert small.check_batch([], "host") == []
    # a text containing a newline falls back to per-line checks
    assert small.check_batch(["最好\n的", "微信"], "chat") == [small.check("最好\n的", "chat"), small.check("微信", "chat")]


def test_check_many_groups_by_source_and_product(small: Checker) -> None:
    items = [("全网最好的", Source.HOST, None), ("全网最好的", Source.CHAT, None), ("能降血压", Source.HOST, "drug"), ("能降血压", Source.HOST, "food")]
    got = check_many(small, items)
    assert [len(x) for x in got] == [1, 0, 0, 1]


_weird = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
_evasive = st.text(alphabet=list("最好佳第一次全网低价微信薇vxVX加私聊 ＊#❤\u200b國家級降血压治愈本品不能代替药物138０１２①"), max_size=80)


@given(_weird | _evasive, st.sampled_from(list(Source)), st.sampled_from([None, "food", "drug", "cosmetics"]))
@settings(max_examples=300, deadline=None)
def test_any_string_is_checked_or_raises_our_error(checker: Checker, text: str, source: Source, product) -> None:
    try:
        findings = checker.check(text, source, product)
    except ComplianceError:
        return
    assert isinstance(findings, tuple)
    for f in findings:
        assert isinstance(f, Finding)
        assert 0 <= f.start < f.end <= len(text)
        assert f.text == text[f.start:f.end]
    assert list(findings) == sorted(findings, key=lambda f: (f.start, f.end, f.rule_id))
    assert checker.check_batch([text], source, product) == [findings]


@given(st.lists(_evasive, max_size=20), st.sampled_from(list(Source)))
@settings(max_examples=100, deadline=None)
def test_batch_equals_per_line_on_default_rules(checker: Checker, lines: list[str], source: Source) -> None:
    assert checker.check_batch(lines, source) == [checker.check(t, source) for t in lines]


@given(st.lists(_weird | _evasive, min_size=1, max_size=20), st.sampled_from(list(Source)))
@settings(max_examples=60, deadline=None)
def test_long_batch_equals_per_line(checker: Checker, lines: list[str], source: Source) -> None:
    # long enough for the vectorised normaliser (VECTOR_MIN_CHARS)
    lines = lines * (VECTOR_MIN_CHARS // (sum(map(len, lines)) + len(lines)) + 1)
    assert checker.check_batch(lines, source) == [checker.check(t, source) for t in lines]


@given(st.one_of(st.integers(), st.none(), st.binary(), st.lists(st.text())))
def test_non_text_is_an_input_error(checker: Checker, value) -> None:
    with pytest.raises(InputError):
        checker.check(value, "host")  # type: ignore[arg-type]


def test_latin_boundary_is_judged_on_the_original_text(small: Checker) -> None:
    # a separator deleted by normalisation still separates words
    assert spans(small.check("加我vx：abc123", "chat")) == [("T-DIV", 2, 4, "vx")]
    assert spans(small.check("加我vx abc123", "chat")) == [("T-DIV", 2, 4, "vx")]
    assert small.check("lovexbox", "chat") == ()
    assert small.check("ＬＯＶＥＸＢＯＸ", "chat") == ()


def test_negation_inside_a_relative_clause_does_not_cancel(small: Checker) -> None:
    assert spans(small.check("全网没有的降血压好茶", "host")) == [("T-MED", 5, 8, "降血压")]
    assert small.check("不能降血压", "host") == ()
    assert spans(small.check("不方便说的都私聊", "chat")) == [("T-DIV", 6, 8, "私聊")]


def test_terms_do_not_run_across_sentences(small: Checker) -> None:
    assert spans(small.check("好嘞私聊。我跟你说", "chat")) == [("T-DIV", 2, 4, "私聊")]


def test_patterns_run_only_when_their_trigger_occurs(small: Checker) -> None:
    # the phone pattern's required literals (13..19) are automaton keys
    ex = small.explain("随便说点什么", "chat")
    assert ex.candidates == ()


def test_negation_does_not_cross_spaces_but_warnings_reach_further(small: Checker) -> None:
    assert spans(small.check("这个价格不便宜 加我微信", "chat")) == [("T-DIV", 10, 12, "微信")]
    assert small.check("小心那些叫你加微信私下交易的人", "chat") == ()
    assert small.check("谨防有人冒充客服让你加vx", "chat") == ()


def test_deleted_separators_cut_jieba_words(small: Checker) -> None:
    # jieba reads 最好看 as one word; a space the normaliser deleted still separates words
    assert small.check("这个最好看", "host") == ()
    assert spans(small.check("这个最好 看", "host")) == [("T-ABS", 2, 4, "最好")]


def test_words_that_only_look_negated(small: Checker) -> None:
    assert spans(small.check("这价格不如加我微信", "chat")) == [("T-DIV", 7, 9, "微信")]
    assert spans(small.check("不粘锅降血压", "host")) == [("T-MED", 3, 6, "降血压")]


def test_pinyin_and_homophone_spellings(small: Checker) -> None:
    assert spans(small.check("zui hao的面霜", "host")) == [("T-ABS", 0, 7, "zui hao")]
    assert spans(small.check("全网zui di价", "host")) == [("T-ABS", 0, 8, "全网zui di")]
    assert spans(small.check("醉好的面霜", "host")) == [("T-ABS", 0, 2, "醉好")]
    assert small.check("喝醉好几次了", "host") == ()  # jieba: 喝醉 / 好几次
    assert small.check("izuihaox", "host") == ()  # Latin boundaries still apply


def test_pinyin_table() -> None:
    from livestream_compliance.tables import pinyin_table

    assert pinyin_table("最低绿x") == {"最": "zui", "低": "di", "绿": "lv"}


def test_one_finding_per_rule_per_region(checker: Checker) -> None:
    # overlapping hits of one rule are one warning over their union, in check and check_batch
    got = checker.check("加v信", Source.HOST)
    assert [(f.rule_id, f.start, f.end, f.text) for f in got] == [("DIV-WECHAT-ALIAS", 0, 3, "加v信")]
    got = checker.check("保本理财 加我微信详聊", Source.HOST)
    assert ("DIV-WECHAT", 5, 11, "加我微信详聊") in [(f.rule_id, f.start, f.end, f.text) for f in got]
    texts = [ex.text for r in checker.rules.rules for ex in r.must_match]
    for source in Source:
        for text, batch in zip(texts, checker.check_batch(texts, source)):
            for fs in (checker.check(text, source), batch):
                for i, f in enumerate(fs):
                    assert not any(g.rule_id == f.rule_id and g.start < f.end and f.start < g.end for g in fs[i + 1:]), (text, fs)


def test_batch_equals_per_line_on_the_labelled_sets(checker: Checker) -> None:
    # whole findings (rule, span, text, matched…) on every labelled line: one rule with two patterns
    # over one span once reported a different `matched` per path
    import json

    groups: dict[tuple[str, str | None], list[str]] = {}
    for f in sorted((Path(__file__).parent.parent / "benchmarks" / "labelled").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                groups.setdefault((row["source"], row["product"]), []).append(row["text"])
    assert sum(map(len, groups.values())) > 5000
    for (source, product), texts in groups.items():
        assert checker.check_batch(texts, source, product) == [checker.check(t, source, product) for t in texts]


_REBUS_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from("⚕⛽🐘🍬💊🧠🇦😀👋☀…“中a1 \ud800"),  # rebus emoji, other emoji, symbols, a lone surrogate
        st.characters(),
    ),
    max_size=40,
)


@given(_REBUS_TEXT)
@settings(max_examples=400, deadline=None)
def test_rebus_absence_test_agrees_with_the_set_test(text: str) -> None:
    from livestream_compliance.engine import _absence_test

    chars = frozenset("⚕⛽🐘🍬💊🧠🇦")
    assert _absence_test(chars)(text) == chars.isdisjoint(text)


def test_rebus_absence_test_of_the_default_checker(checker) -> None:
    absent = checker._rebus_absent
    assert absent is not checker._rebus_chars.isdisjoint  # the fast test is in use for the default packs
    for ch in checker._rebus_chars:
        assert not absent(f"降血{ch}了") and not absent(ch)
    assert absent("大家好，今天的衣服很好看！[捂脸]") and absent("😀😀 好看")


def test_warm_builds_what_a_first_check_would_and_changes_nothing(checker) -> None:
    line = "喝了降血🍬的茶"
    before = checker.check(line, Source.HOST)
    assert checker.warm() is checker
    assert checker._rebus_view is not None and checker._stand_in
    assert checker.check(line, Source.HOST) == before


def test_check_verifies_fewer_candidates_and_finds_what_explain_finds(
    checker: Checker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """check() does not verify a hit strictly inside a kept hit of its own rule (it would merge into
    it) and asks the negation look-around once per span; explain() verifies every candidate. The
    findings are the same on every rule example, on pairs of them joined (overlapping and nested
    hits of several rules), under every product, and check() asks the look-around less often."""
    import random

    from livestream_compliance import engine
    from livestream_compliance.rules import PRODUCT_CATEGORIES

    examples = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    rng = random.Random(4)
    texts = examples + [rng.choice(examples) + rng.choice(["", "，", " "]) + rng.choice(examples) for _ in range(1500)]
    calls = {"n": 0}
    real = engine.negation_before

    def counted(text: str, start: int) -> str | None:
        calls["n"] += 1
        return real(text, start)

    monkeypatch.setattr(engine, "negation_before", counted)
    asked = {}
    for mode in ("check", "explain"):
        calls["n"] = 0
        for i, text in enumerate(texts):
            product = (None, *PRODUCT_CATEGORIES)[i % (len(PRODUCT_CATEGORIES) + 1)]
            for source in Source:
                if mode == "check":
                    got = checker.check(text, source, product)
                else:
                    got = checker.explain(text, source, product).findings
                if mode == "check":
                    asked[(text, source, product)] = got
                else:
                    assert asked[(text, source, product)] == got, (text, source, product)
        calls[mode] = calls["n"]
    assert sum(map(bool, asked.values())) > 2000
    assert calls["check"] < 0.95 * calls["explain"], calls


def test_a_pattern_is_not_searched_where_its_guard_is_absent(
    checker: Checker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_verify runs a triggered pattern only on a line holding a string of its guard (one of which
    every match holds): searching every triggered pattern on every line finds the same, on every rule
    example and pairs of them, while the guard does skip searches."""
    import random

    from livestream_compliance import engine
    from livestream_compliance.matcher import _native

    def holds_any(text: str, strings: tuple[str, ...]) -> bool:
        return any(s in text for s in strings)

    assert _native is not None and engine._has_any is _native.has_any
    cases = (("全网最低价", ("最低", "x")), ("全网最低价", ("最高",)), ("", ("a",)), ("abc", ()), ("abc", ("",)))
    for text, strings in cases:
        assert _native.has_any(text, strings) is holds_any(text, strings)
    for bad in ((b"abc", ("a",)), ("abc", (1,)), ("abc", None)):
        with pytest.raises(TypeError):
            _native.has_any(*bad)
    examples = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    rng = random.Random(8)
    texts = examples + [rng.choice(examples) + rng.choice(["", "，"]) + rng.choice(examples) for _ in range(1000)]
    asked = {"n": 0, "absent": 0}

    def counted(text: str, strings: tuple[str, ...]) -> bool:
        asked["n"] += 1
        found = holds_any(text, strings)
        asked["absent"] += not found
        return found

    monkeypatch.setattr(engine, "_has_any", counted)
    guarded = {(t, s): checker.check(t, s) for t in texts for s in Source}
    assert asked["absent"] > 1000, asked
    monkeypatch.setattr(engine, "_has_any", engine._may_hold_any)  # as without the C extension
    assert {(t, s): checker.check(t, s) for t, s in guarded} == guarded


_FOLD_KEYS = st.lists(st.text(alphabet="为位味微薇信心新abc\U0001f600\u00e9x", max_size=6), max_size=40)


@settings(max_examples=300, deadline=None)
@given(keys=_FOLD_KEYS)
def test_fold_groups_in_c_equals_the_python_loop(keys: list[str]) -> None:
    from livestream_compliance import engine
    from livestream_compliance.tables import fold_table

    if engine._native is None:
        pytest.skip("the C extension is not built")
    table = list(range(0xA000))
    for ch, rep in fold_table().items():
        if len(ch) == 1 and len(rep) == 1 and ord(ch) < 0xA000:
            table[ord(ch)] = ord(rep)
    table[ord("x")] = ord("\u00e9")  # a Latin fold too, and characters beyond the table (emoji) kept
    fast = engine._fold_groups(keys, table)
    native, engine._native = engine._native, None
    try:
        slow = engine._fold_groups(keys, table)
    finally:
        engine._native = native
    assert fast == slow
    assert list(fast[2]) == sorted(fast[2])  # ordered by folded-key index, as the loop makes it
    fkeys, first, more, index = fast
    assert fkeys == list(dict.fromkeys(k.translate(table) for k in keys)) and index == {f: i for i, f in enumerate(fkeys)}
    grouped = sorted([first[fi], *more.get(fi, ())] for fi in range(len(fkeys)))
    assert sorted(ki for g in grouped for ki in g) == list(range(len(keys)))


def test_fold_groups_rejects_bad_arguments() -> None:
    from livestream_compliance import engine

    if engine._native is None:
        pytest.skip("the C extension is not built")
    with pytest.raises(TypeError):
        engine._native.fold_groups(["a"], (1, 2))
    with pytest.raises(TypeError):
        engine._native.fold_groups(["a", 3], [0])
    with pytest.raises(ValueError):
        engine._native.fold_groups(["a"], [0, -5])
    with pytest.raises(TypeError):
        engine._native.fold_groups(["a"])

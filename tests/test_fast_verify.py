"""The no-finding fast path of verification (trigger windows, glued Latin terms) agrees with the full
verification (``explain`` always takes the full path) on random and planted text."""

from __future__ import annotations

import random

import pytest

from livestream_compliance import Checker, Source

ALPHABET = "1234567890bcdefghiJKLMNOPQRSTUVWXYZqwvx "
PLANTS = ["13812345678", "一三八一二三四五六七八", "vx", "wx", "qq", "tb", "jd", "sb", "2b", "加我vx abc12345", "qq 123456789",
          "电话 010-12345678", "原价 199", "这个价格别的直播间拿不到", "全网最低价", "最好", "第一", "VX：abcdef1", "V信"]


def _random_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 6)):
            r = rng.random()
            if r < 0.4:
                parts.append("".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 30))))
            elif r < 0.7:
                parts.append("".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(1, 8))))
            else:
                parts.append(rng.choice(PLANTS))
        out.append("".join(parts))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_path_agrees_with_full_verification(checker: Checker, py_checker: Checker, seed: int) -> None:
    for text in _random_lines(400, seed):
        for source in Source:
            full = checker.explain(text, source).findings
            assert checker.check(text, source) == full, (text, source)
            assert py_checker.check(text, source) == full, (text, source)


def _joins(checker: Checker, n: int, seed: int) -> list[tuple[str, int]]:
    """Two utterances joined as a session joins them (the tail of one + the head of the next), from
    the rule examples (violations, lawful look-alikes) and random planted text."""
    rng = random.Random(seed)
    examples = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    pool = examples + _random_lines(200, seed)
    out = []
    for _ in range(n):
        a, b = rng.choice(pool), rng.choice(pool)
        tail = a[-rng.randint(1, 24):]
        out.append((tail + b[: rng.randint(1, 24)], len(tail)))
    # a violation split between the two messages, at every place inside its hit
    for r in checker.rules.rules:
        for e in r.must_match:
            span = e.span()
            for k in range(span[0] + 1, span[1]) if span else ():
                out.append((e.text, k))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_join_check_skips_verification_only_where_nothing_crosses(
    checker: Checker, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """check(crossing=) verifies a join only where a hit, or a match of a pattern a hit triggers,
    crosses it (_may_cross); forcing the full verification everywhere gives the same crossing findings."""
    from livestream_compliance import engine

    joins = _joins(checker, 1500, seed)

    def crossing(text: str, n: int, source: Source) -> tuple[tuple[str, int, int], ...]:
        return tuple((f.rule_id, f.start, f.end) for f in checker.check(text, source, crossing=n) if f.start < n < f.end)

    fast = {(t, n, s): crossing(t, n, s) for t, n in joins for s in Source}
    assert sum(map(bool, fast.values())) > 100  # the joins do make crossing findings
    monkeypatch.setattr(engine, "_may_cross", lambda *a: True)
    assert {(t, n, s): crossing(t, n, s) for t, n, s in fast} == fast


def test_the_c_trigger_verdict_is_the_python_one(checker: Checker) -> None:
    """_native.only_unmatched_triggers gives engine._only_unmatched_triggers' verdict on every line,
    source and branch (glued Latin edges, dropped-character forms with and without deletions, the
    guard test on and off, the prefilter)."""
    from livestream_compliance import engine

    native = pytest.importorskip("livestream_compliance._native")
    rng = __import__("random").Random(3)
    # the houbb benchmark's shape: its Latin runs hold trigger keys (15, vx, cm, jd...), whose
    # patterns' guards are tested (on a line of random CJK, mostly absent)
    houbb = ["".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(9))
             + "".join(rng.choice("1234567890bcdefghiJKLMNOPQRSTUVWXYZ") for _ in range(100))
             + rng.choice(["", "去", "上", "长高", "淘宝", "加我"]) + "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(11))
             for _ in range(150)]
    texts = (_random_lines(600, 4) + houbb
             + [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)])
    verdicts = {True: 0, False: 0}
    for source in Source:
        auto = checker._automata[source]
        scan = checker._scan[source][6]
        prefilter = checker._patterns[source][0]
        for text in texts:
            hits = scan(text)[0]
            if not hits:
                continue
            norm = checker.normalize(text)
            for same_length in (len(norm) == len(text), False):
                for stand_in in (checker._stand_ins(), None):
                    for guard_min in (0, 64, 10**9):
                        args = (auto.trigger_only, hits, norm, prefilter, same_length, text, stand_in, guard_min)
                        want = engine._only_unmatched_triggers(*args)
                        assert native.only_unmatched_triggers(*args) is want, (text, source, args[4:])
                        verdicts[want] += 1
    assert verdicts[True] > 1000 and verdicts[False] > 1000


def test_the_c_trigger_verdict_rejects_bad_arguments() -> None:
    native = pytest.importorskip("livestream_compliance._native")
    rx = __import__("re").compile("a")
    good = [(0, ((rx, None, None, None, False),))]
    assert native.only_unmatched_triggers(good, [(0, 0, 1)], "bb", None, True, "bb", None, 64) is True
    assert native.only_unmatched_triggers(good, [(0, 0, 1)], "ba", None, True, "ba", None, 64) is False
    assert native.only_unmatched_triggers(good, [(-1, 0, 1)], "bb", None, True, "bb", None, 64) is True  # as list indexing
    with pytest.raises(IndexError):
        native.only_unmatched_triggers(good, [(1, 0, 1)], "bb", None, True, "bb", None, 64)
    with pytest.raises(TypeError):
        native.only_unmatched_triggers(good, [(0, 0)], "bb", None, True, "bb", None, 64)
    with pytest.raises(TypeError):
        native.only_unmatched_triggers([(0, "x")], [(0, 0, 1)], "bb", None, True, "bb", None, 64)
    with pytest.raises(TypeError):
        native.only_unmatched_triggers(good, [(0, 0, 1)], b"bb", None, True, "bb", None, 64)
    with pytest.raises(TypeError):
        native.only_unmatched_triggers(good, [(0, 0, 1)], "bb", None, True, "bb", None)


def _without_fast_check(checker: Checker) -> dict[Source, tuple[object, ...]]:
    """The checker's per-source scan tuples with check()'s one-call path (_fast_check) removed."""
    return {s: (*checker._scan[s][:7], None) for s in Source}


def test_the_one_call_check_is_the_full_check(checker: Checker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checker.check's one-C-call path (_fast_check: scan, trigger verdict, rebus test and the model's
    reach in one call) answers "no finding" only where the full path finds nothing, and otherwise
    hands the full path the same hits: the same findings with and without it, on the rule examples,
    random planted text, houbb-shaped strings, rebus emoji and deleted stand-ins."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_common import houbb_strings

    rebus = [chr(cp) for cp in sorted(checker.normalizer.rebus)[:40]]
    rng = random.Random(9)
    texts = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    texts += _random_lines(600, 5) + houbb_strings(600)
    texts += [t[:k] + rng.choice(rebus) + t[k:] for t in rng.sample(texts, 400) for k in [rng.randint(0, len(t))]]
    texts += [t[:k] + rng.choice("*＊ ~…·") + t[k:] for t in rng.sample(texts, 400) for k in [rng.randint(0, len(t))]]
    fast = {s: checker._scan[s][7] for s in Source}
    assert fast[Source.HOST] is not None and fast[Source.CHAT] is not None  # the default packs take it
    clean = {s: sum(fast[s](t) is None for t in texts) for s in fast if fast[s]}  # type: ignore[misc]
    assert all(n > 300 for n in clean.values()), clean
    with_fast = {(t, s): checker.check(t, s) for t in texts for s in Source}
    assert sum(map(bool, with_fast.values())) > 500
    monkeypatch.setattr(checker, "_scan", _without_fast_check(checker))
    assert {(t, s): checker.check(t, s) for t, s in with_fast} == with_fast


def test_the_one_call_check_rejects_bad_configurations(checker: Checker) -> None:
    fast = checker._scan[Source.HOST][7]
    assert fast is not None
    scanner = fast.func.__self__  # type: ignore[attr-defined]
    cfg = list(fast.args[0])  # type: ignore[attr-defined]
    assert scanner.check(cfg, "今天天气不错") is None
    text = "全网最低价，加我薇信"
    hits, fold_hits, n, verdict = scanner.check(cfg, text)
    assert (hits, fold_hits, n) == checker._scan[Source.HOST][6](text) and hits
    assert verdict == (-1 if fold_hits else 0)  # the trigger verdict is asked only without folded long terms
    # the verdict each answer carries: failed (0), passed but the model may reach (1), not asked (-1)
    verdicts = {found[3] for e in checker.rules.rules for x in (*e.must_match, *e.must_not_match)
                for found in [scanner.check(cfg, x.text)] if found is not None}
    assert verdicts == {-1, 0, 1}
    for i, bad in ((3, "model"), (5, "abc"), (5, b"abc"), (2, "64"), (7, None)):
        broken = list(cfg)
        broken[i] = bad
        with pytest.raises(TypeError):
            scanner.check(broken, "全网最低价")
    with pytest.raises(TypeError):
        scanner.check(cfg[:7], "全网最低价")
    assert scanner.check(cfg, b"bytes") is False  # for check() to report
    assert scanner.check(cfg, "x" * (cfg[7] + 1)) is False
    assert scanner.check(cfg, "x" * cfg[7]) is None
    with pytest.raises(TypeError):
        scanner.check(tuple(cfg), "全网最低价")


def test_the_batch_one_call_check_lists_what_check_does_not_clear(checker: Checker) -> None:
    """FoldedScanner.check_many (check_batch on the model's sources) lists exactly the lines that
    check(cfg, text) does not clear, with the same hits, and hands over non-str and over-long items."""
    from livestream_compliance import InputError
    from livestream_compliance.engine import MAX_TEXT_LENGTH

    fast = checker._scan[Source.HOST][7]
    assert fast is not None
    scanner, cfg = fast.func.__self__, fast.args[0]  # type: ignore[attr-defined]
    texts = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)] + _random_lines(300, 6)
    want = [(i, *found) for i, t in enumerate(texts) for found in [scanner.check(cfg, t)] if found is not None]
    assert 100 < len(want) < len(texts) - 100
    assert scanner.check_many(cfg, texts, MAX_TEXT_LENGTH) == want
    odd = ["今天天气不错", 42, "x" * 11, "加我薇信"]
    listed = scanner.check_many(cfg, odd, 10)
    assert [row[0] for row in listed] == [1, 2, 3] and listed[0][1:] == listed[1][1:] == (None, None, -1, -1)
    with pytest.raises(TypeError):
        scanner.check_many(cfg, tuple(odd), 10)
    with pytest.raises(InputError):
        checker.check_batch(["今天天气不错", "x" * (MAX_TEXT_LENGTH + 1)], Source.HOST)
    with pytest.raises(InputError):
        checker.check_batch(["今天天气不错", 42], Source.HOST)  # type: ignore[list-item]
    assert checker.check_batch(texts, Source.HOST) == [checker.check(t, Source.HOST) for t in texts]


def test_an_exception_alone_makes_no_candidate(checker: Checker, py_checker: Checker) -> None:
    """A key that is only an exception (第一次 for 第一) makes no candidate of its own, only keeps its
    rule's hits inside it from firing: the trigger verdict lets it pass (_trigger_only gives it no
    term edges), so a line holding it and nothing else is cleared without the full path, and check()
    still equals the full verification around every exception phrase of every rule."""
    from livestream_compliance.engine import _EXCEPTION, _TRIGGER

    auto = checker._automata[Source.HOST]
    only = [i for i, group in enumerate(auto.entries)
            if any(e.kind == _EXCEPTION for e in group) and all(e.kind in (_EXCEPTION, _TRIGGER) for e in group)]
    assert len(only) > 100
    assert all(auto.trigger_only[i] is not None and auto.trigger_only[i][0] == 0 for i in only)  # type: ignore[index]
    rng = random.Random(11)
    phrases = sorted({x for r in checker.rules.rules for x in r.exceptions})
    texts = [t for p in phrases
             for t in (p, f"我{p}了", p + rng.choice(PLANTS), rng.choice(PLANTS) + p, f"{p}，{rng.choice(phrases)}")]
    for text in texts:
        for source in Source:
            full = checker.explain(text, source).findings
            assert checker.check(text, source) == full, (text, source)
            assert py_checker.check(text, source) == full, (text, source)
    fast = checker._scan[Source.HOST][7]
    assert fast is not None
    cleared = [p for p in phrases if fast(p) is None]
    # most phrases hold a term of their rule (最好不 holds 最好), which takes the full path
    assert len(cleared) > 50, (len(cleared), len(phrases))
    assert fast("第一次见面") is None and fast("我第一次来") is None

"""Required literals: every match of a pattern contains one of them (so triggers are safe)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance import load_rule_set
from livestream_compliance.literals import required_literals


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        # the run continues into the repeat's required copies while the set stays small
        (r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])", {f"1{a}{b}{c}" for a in "3456789" for b in "0123456789" for c in "0123456789"}),
        (r"(?:电话|座机)(?:号码|号)?(?:是|打)?(?P<hit>0[1-9](?:元|块)*)", {"电话", "座机"}),  # scored on the minimal form
        (r"(?:原价|专柜价)(?:是|要)?[0-9]+(?:元|块)", {f"{a}{b}{d}" for a in ("原价", "专柜价") for b in ("", "是", "要") for d in "0123456789"}),
        (r"(?:原价|专柜价)[0-9]+元(?:今天|现在)只要", {"元今天只要", "元现在只要"}),  # the most selective
        (r"加(?:我)?(?:v|vx|微信)", {"加v", "加我v", "加微信", "加我微信"}),
        (r"abc|de", {"abc", "de"}),
        (r"a*", None),
        (r".+", None),
        (r"(?P<hit>最低)价", {"最低价"}),
    ],
)
def test_examples(pattern: str, expected) -> None:
    assert required_literals(pattern) == expected


_RULES = [r for r in load_rule_set().rules if r.patterns]
_PATTERNS = [p for r in _RULES for p in r.patterns] + [
    r"(?:\d+|[一二三]+)天(?:就能)?(?:瘦|见效)",
    r"加(?:我)?(?:v|vx|微信)(?:号)?[:：]?[a-z0-9_-]{6,20}",
]


@pytest.mark.parametrize("rule", _RULES, ids=[r.id for r in _RULES])
def test_pattern_matches_in_rule_examples_contain_a_trigger(rule, checker) -> None:
    texts = [checker.normalize(ex.text) for ex in rule.must_match] + [
        checker.normalize(ex.text) for ex in rule.must_not_match
    ]
    for pattern in rule.patterns:
        lits = required_literals(pattern)
        if lits is None:
            continue
        for text in texts:
            for m in re.finditer(pattern, text):
                assert any(lit in m.group() for lit in lits), (pattern, text, m.group())


@given(st.text(alphabet=list("加我vx微信号:：abc0123456789天瘦见效一二三就能"), max_size=30))
@settings(max_examples=300)
def test_random_text_matches_always_contain_a_literal(text: str) -> None:
    for pattern in _PATTERNS[-2:]:
        lits = required_literals(pattern)
        assert lits
        for m in re.finditer(pattern, text):
            assert any(lit in m.group() for lit in lits)


def test_analyse_width_and_reach() -> None:
    from livestream_compliance.literals import analyse

    lits, width, reach = analyse(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
    assert lits is not None and all(x[:2] in {f"1{d}" for d in "3456789"} for x in lits) and width == 11 and reach == 11 + 1 + 1
    assert analyse(r"(?:微信|vx)(?:号|是)*[a-z0-9]{6}")[1:] == (None, None)  # unbounded
    assert analyse(r"最好(?=[^看]{300})")[1:] == (None, None)  # unbounded lookahead
    assert analyse(r"第一(?!次|名)")[1:] == (2, 2 + 1 + 1)


def test_prepare_shares_one_compile_and_finds_a_guard() -> None:
    import re

    from livestream_compliance.literals import prepare

    p = r"(?:\d+|[一二三]+)(?:天|周)(?:瘦|减)(?:\d+)(?:斤|kg)"
    prep = prepare(p)
    assert prep is prepare(p)  # once per process
    assert prep.rx.pattern == p and prep.rx.search("7天瘦10斤") is not None
    assert prep.width is None  # unbounded: the checker searches the whole line
    # every match contains one of the triggers and one of the guard's strings
    assert prep.literals == {"天瘦", "天减", "周瘦", "周减"}
    assert prep.guard == ("kg", "斤")
    with pytest.raises(re.error, match="missing"):
        prepare("(?:ab")


def test_prepare_anchored_patterns_start_with_a_trigger() -> None:
    from livestream_compliance.literals import prepare

    # every match begins with one of the triggers (look-behinds consume nothing)
    phone = prepare(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
    assert phone.anchored
    assert prepare(r"(?<![a-z])(?:vx|微信)(?:号)?[a-z0-9]{6,}").anchored
    # a trigger that sits later in the match, or an optional lead: not anchored
    assert not prepare(r"(?:\d+|[一二三]+)(?:天|周)(?:瘦|减)").anchored
    assert not prepare(r"(?:全网)?最低价").anchored


def test_seeded_preparations_equal_fresh_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """export_prepared -> seed_prepared (the loader's pattern file, across processes) gives prepare()
    the very analysis and compiled pattern a fresh preparation gives, for every default pattern."""
    from livestream_compliance import literals, load_rule_set

    patterns = sorted({p for r in load_rule_set().rules for p in r.patterns})
    monkeypatch.setattr(literals, "_PREPARED", {})
    monkeypatch.setattr(literals, "_SEEDS", {})
    monkeypatch.setattr(literals, "_PENDING", [])
    fresh = {p: literals.prepare(p) for p in patterns}
    exported = literals.export_prepared(patterns)
    assert len(exported) == len(patterns) > 500
    monkeypatch.setattr(literals, "_PREPARED", {})
    monkeypatch.setattr(literals, "_SEEDS", {})
    monkeypatch.setattr(literals, "_PENDING", [])
    assert literals.seed_prepared(exported) == len(patterns)
    monkeypatch.setattr(literals, "_analyse_tree", lambda *a: pytest.fail("analysed despite the seed"))
    for p in patterns:
        got, want = literals.prepare(p), fresh[p]
        assert got.rx.pattern == want.rx.pattern and got.rx.flags == want.rx.flags and got.rx.groupindex == want.rx.groupindex
        assert got[1:] == want[1:], p
        for probe in ("最好的", "加我微信 13812345678", "全网最低价", "abc 100% 有效"):
            assert [m.span() for m in got.rx.finditer(probe)] == [m.span() for m in want.rx.finditer(probe)]

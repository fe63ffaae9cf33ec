"""Both automaton backends give identical hits."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance import Checker, Source
from livestream_compliance.errors import UsageError
from livestream_compliance.matcher import available_backends, build_matcher

KEYS = ["最好", "最佳", "好的", "全网最低", "最低", "微信", "vx", "第一", "第一次", "a", "ab", "abc", "bc"]


def test_both_backends_are_installed() -> None:
    assert set(available_backends()) == {"ahocorasick-rs", "pyahocorasick"}


@pytest.mark.parametrize("text", ["", "全网最低价最好的", "abcabc", "第一次第一", "没有", "vxvx微信"])
def test_backends_identical_on_examples(text: str) -> None:
    rs = sorted(build_matcher(KEYS, "ahocorasick-rs").find(text))
    py = sorted(build_matcher(KEYS, "pyahocorasick").find(text))
    assert rs == py
    for i, s, e in rs:
        assert text[s:e] == KEYS[i]


@given(st.text(alphabet=list("最好佳的全网低微信vxabc第一次 "), max_size=40))
@settings(max_examples=300)
def test_backends_identical_on_random_text(text: str) -> None:
    rs = sorted(build_matcher(KEYS, "ahocorasick-rs").find(text))
    py = sorted(build_matcher(KEYS, "pyahocorasick").find(text))
    assert rs == py
    # every occurrence of every key is reported (overlapping)
    expected = sorted((i, s, s + len(k)) for i, k in enumerate(KEYS) for s in range(len(text)) if text.startswith(k, s))
    assert rs == expected


def test_empty_key_list_finds_nothing() -> None:
    for backend in ("ahocorasick-rs", "pyahocorasick"):
        assert build_matcher([], backend).find("任何文本") == []


def test_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        build_matcher(KEYS, "regex")


def test_checkers_on_both_backends_agree_on_real_text(checker: Checker, py_checker: Checker) -> None:
    lines = [ex.text for r in checker.rules.rules for ex in r.must_match] + [
        (ex.text if isinstance(ex.text, str) else ex) for r in checker.rules.rules for ex in r.must_not_match
    ]
    for source in Source:
        a = checker.check_batch(lines, source)
        b = py_checker.check_batch(lines, source)
        assert a == b

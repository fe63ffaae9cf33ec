"""Every example of every default rule, run automatically: exact rule id and exact span."""

from __future__ import annotations

import pytest

from livestream_compliance import Checker, Source, load_rule_set

_RULES = load_rule_set().rules
_MATCH = [(r, i, ex) for r in _RULES for i, ex in enumerate(r.must_match)]
_NO_MATCH = [(r, i, ex) for r in _RULES for i, ex in enumerate(r.must_not_match)]


def _source(rule, example) -> Source:
    if example.source is not None:
        return example.source
    return Source.HOST if Source.HOST in rule.sources else Source.CHAT


@pytest.mark.parametrize(("rule", "index", "example"), _MATCH, ids=[f"{r.id}-match{i}" for r, i, _ in _MATCH])
@pytest.mark.parametrize("backend", ["checker", "py_checker"])
def test_must_match(rule, index, example, backend, request) -> None:
    checker: Checker = request.getfixturevalue(backend)
    findings = checker.check(example.text, _source(rule, example), example.product)
    spans = [(f.start, f.end) for f in findings if f.rule_id == rule.id]
    assert example.span() in spans, (
        f"{rule.id} should flag {example.hit!r} at {example.span()} in {example.text!r}; "
        f"got {[(f.rule_id, f.start, f.end, f.text) for f in findings]}"
    )


@pytest.mark.parametrize(("rule", "index", "example"), _NO_MATCH, ids=[f"{r.id}-nomatch{i}" for r, i, _ in _NO_MATCH])
def test_must_not_match(rule, index, example, checker: Checker) -> None:
    findings = checker.check(example.text, _source(rule, example), example.product)
    mine = [(f.start, f.end, f.text) for f in findings if f.rule_id == rule.id]
    assert mine == [], f"{rule.id} must not flag {example.text!r}; flagged {mine}"


def test_pack_is_large_enough() -> None:
    terms = sum(len(r.terms) + len(r.patterns) for r in _RULES)
    assert terms >= 1500, f"only {terms} terms and patterns in the default packs"


def test_every_rule_has_examples_both_ways() -> None:
    for r in _RULES:
        assert len(r.must_match) >= 2 and len(r.must_not_match) >= 2, r.id

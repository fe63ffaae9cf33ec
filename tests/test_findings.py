"""Findings are frozen values; the engine makes them without the frozen dataclass's __init__ (the C
extension's SlotMaker), which must give the very object Finding(*values) gives."""

from __future__ import annotations

import copy
import pickle
from dataclasses import FrozenInstanceError, dataclass, fields

import pytest

from livestream_compliance import Source
from livestream_compliance.engine import _new_finding
from livestream_compliance.findings import Finding, LegalBasis, Severity
from livestream_compliance.matcher import _native

VALUES = ("ABS-FIRST", "absolute_terms", Severity.HIGH, Source.HOST, 3, 5, "第一", "第一", "消息", "改说法",
          (LegalBasis("中华人民共和国广告法", "第九条第（三）项", ""),), "absolute-terms@1#abc")


def test_the_engine_makes_findings_in_c() -> None:
    assert _native is not None and type(_new_finding) is _native.SlotMaker
    # the maker stores the values only: that is all Finding's own __init__ may do
    assert not hasattr(Finding, "__post_init__")
    assert all(f.init and f.default is f.default_factory for f in fields(Finding))  # no defaults to fill


def test_a_made_finding_is_the_finding() -> None:
    made, built = _new_finding(*VALUES), Finding(*VALUES)
    assert type(made) is Finding
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert made.to_dict() == built.to_dict() and made.fingerprint("x") == built.fingerprint("x")
    assert [getattr(made, f.name) for f in fields(Finding)] == list(VALUES)
    assert pickle.loads(pickle.dumps(made)) == built
    assert copy.deepcopy(made) == built
    with pytest.raises(FrozenInstanceError):
        made.start = 0  # type: ignore[misc]
    assert made != _new_finding(*VALUES[:4], 4, *VALUES[5:])


def test_the_slot_maker_checks_its_class_and_arguments() -> None:
    assert _native is not None
    names = [f.name for f in fields(Finding)]
    with pytest.raises(TypeError, match="12 positional arguments"):
        _new_finding(*VALUES[:-1])
    with pytest.raises(TypeError):
        _new_finding(*VALUES[:-1], rule_version="x")
    with pytest.raises(TypeError, match="not a slot"):
        _native.SlotMaker(Finding, [*names, "to_dict"])
    with pytest.raises(AttributeError):
        _native.SlotMaker(Finding, ["nonexistent"])
    with pytest.raises(TypeError, match="names"):
        _native.SlotMaker(Finding, [1])
    with pytest.raises(TypeError, match="__new__"):
        _native.SlotMaker(int, [])

    @dataclass(frozen=True)
    class NoSlots:
        a: int = 0  # a class attribute, not a slot

    with pytest.raises(TypeError, match="not a slot"):
        _native.SlotMaker(NoSlots, ["a"])

    @dataclass(frozen=True, slots=True)
    class Other:
        a: int

    with pytest.raises(ValueError, match="not initialised"):
        _native.SlotMaker.__new__(_native.SlotMaker)()
    maker = _native.SlotMaker(Other, ["a"])
    assert maker(7) == Other(7)

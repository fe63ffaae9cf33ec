from __future__ import annotations

import pytest

from livestream_compliance import Checker, build_checker, load_checker, load_rule_set
from livestream_compliance.rules import RuleSet


@pytest.fixture(scope="session")
def default_rules() -> RuleSet:
    return load_rule_set()


@pytest.fixture(scope="session")
def checker() -> Checker:
    """The default rules with the default backend (built once per test session)."""
    return load_checker()


@pytest.fixture(scope="session")
def py_checker(default_rules: RuleSet, checker: Checker) -> Checker:
    """The same rules on the pyahocorasick backend, sharing the taught segmenter."""
    return build_checker(default_rules, segmenter=checker.segmenter, backend="pyahocorasick")

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from livestream_compliance import Checker, build_checker, load_checker, load_rule_set
from livestream_compliance.rules import RuleSet


_CACHE_HOME: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """The loader's state cache (and anything else that honours XDG_CACHE_HOME, subprocesses
    included) goes to a directory of this test session, never the user's ~/.cache."""
    global _CACHE_HOME
    _CACHE_HOME = tempfile.mkdtemp(prefix="compliance-tests-cache-")
    os.environ["XDG_CACHE_HOME"] = _CACHE_HOME


def pytest_unconfigure(config: pytest.Config) -> None:
    if _CACHE_HOME:
        shutil.rmtree(_CACHE_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def default_rules() -> RuleSet:
    return load_rule_set()


@pytest.fixture(scope="session")
def checker() -> Checker:
    """The default rules with the default backend (built once per test session)."""
    return load_checker()


@pytest.fixture(scope="session")
def rs_checker(default_rules: RuleSet, checker: Checker) -> Checker:
    """The same rules on the ahocorasick-rs backend (what an install without a C compiler runs)."""
    return build_checker(default_rules, segmenter=checker.segmenter, backend="ahocorasick-rs", model=checker.model)


@pytest.fixture(scope="session")
def py_checker(default_rules: RuleSet, checker: Checker) -> Checker:
    """The same rules on the pyahocorasick backend, sharing the taught segmenter."""
    return build_checker(default_rules, segmenter=checker.segmenter, backend="pyahocorasick", model=checker.model)

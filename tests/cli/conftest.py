"""Shared helpers for the CLI tests.

Every test runs from the repository root, so file names in the CLI's output are the relative
paths given on the command line. Rules come from the small fixture packs in
``tests/fixtures/rules/basic`` (never the default packs, which change), and the jieba segmenter
the loader builds is memoised per vocabulary so that each ``main()`` call does not reload
jieba's dictionary (the subprocess tests still exercise the real, uncached path).
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from livestream_compliance import loader
from livestream_compliance.cli import main

ROOT = Path(__file__).resolve().parents[2]
BASIC = "tests/fixtures/rules/basic"
CLI_FX = "tests/fixtures/cli"
INPUTS_FX = "tests/fixtures/inputs"
RULES_FX = "tests/fixtures/rules"
#: the options that make a run use only the fixture rules
BASIC_RULES = ["--no-default-rules", "--rules", BASIC]

_SEGMENTERS: dict[tuple, object] = {}
_RealSegmenter = loader.JiebaSegmenter


def _cached_segmenter(terms=(), protected=(), *, cache_dir=None, dictionary=None):
    key = (tuple(terms), tuple(protected), cache_dir)  # the base dictionary is jieba's, always the same
    if key not in _SEGMENTERS:
        _SEGMENTERS[key] = _RealSegmenter(terms, protected, cache_dir=cache_dir, dictionary=dictionary)
    return _SEGMENTERS[key]


@pytest.fixture(autouse=True)
def _cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(loader, "JiebaSegmenter", _cached_segmenter)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("COMPLIANCE_BACKEND", raising=False)


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()

    def __repr__(self) -> str:  # shown by pytest when an assertion fails
        return f"Result(code={self.code!r}, out={self.out!r}, err={self.err!r})"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``cli("check", ...)`` runs ``main(argv)`` in-process; argparse exits become exit codes."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: usage errors, --help, --version
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def stdin_bytes(monkeypatch: pytest.MonkeyPatch) -> Callable[[bytes], None]:
    """``stdin_bytes(b"...")`` makes ``sys.stdin.buffer`` read those bytes."""

    def feed(data: bytes) -> None:
        class _Stdin:
            buffer = io.BytesIO(data)

            def isatty(self) -> bool:
                return False

        monkeypatch.setattr(sys, "stdin", _Stdin())

    return feed

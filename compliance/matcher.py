"""One small interface over two Aho-Corasick backends.

A matcher is built once from a list of keys and answers ``find(text)`` with every (overlapping)
occurrence as ``(key_index, start, end)`` in character offsets. Both backends must give identical
results; the tests check that on every rule example and on random text.

* ``pyahocorasick`` (module ``ahocorasick``): the design's reference backend, always supported.
* ``ahocorasick-rs`` (module ``ahocorasick_rs``): a Rust automaton, several times faster on
  Chinese text because it does not walk a node's children linearly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .errors import UsageError

BACKENDS = ("ahocorasick-rs", "pyahocorasick")


class Matcher(Protocol):
    name: str

    def find(self, text: str) -> list[tuple[int, int, int]]:
        """All occurrences of all keys in ``text``: ``(key_index, start, end)``, overlapping."""
        ...


class PyAhoCorasickMatcher:
    name = "pyahocorasick"

    def __init__(self, keys: Sequence[str]) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for i, key in enumerate(keys):
            self._automaton.add_word(key, (i, len(key)))
        self._automaton.make_automaton()
        self._empty = not keys

    def find(self, text: str) -> list[tuple[int, int, int]]:
        if self._empty:
            return []
        return [(i, end + 1 - n, end + 1) for end, (i, n) in self._automaton.iter(text)]


class RsAhoCorasickMatcher:
    name = "ahocorasick-rs"

    def __init__(self, keys: Sequence[str]) -> None:
        import ahocorasick_rs

        self._empty = not keys
        if not self._empty:
            self._automaton = ahocorasick_rs.AhoCorasick(list(keys), matchkind=ahocorasick_rs.MATCHKIND_STANDARD)
            self._find = self._automaton.find_matches_as_indexes

    def find(self, text: str) -> list[tuple[int, int, int]]:
        if self._empty:
            return []
        return self._find(text, overlapping=True)


def available_backends() -> list[str]:
    found = []
    for name, module in (("ahocorasick-rs", "ahocorasick_rs"), ("pyahocorasick", "ahocorasick")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.append(name)
    return found


def build_matcher(keys: Sequence[str], backend: str = "ahocorasick-rs") -> Matcher:
    if backend == "pyahocorasick":
        return PyAhoCorasickMatcher(keys)
    if backend == "ahocorasick-rs":
        return RsAhoCorasickMatcher(keys)
    raise UsageError(f"unknown matcher backend {backend!r}; expected one of {', '.join(BACKENDS)}")

"""One small interface over two Aho-Corasick backends.

A matcher is built once from a list of keys and answers ``find(text)`` with every (overlapping)
occurrence as ``(key_index, start, end)`` in character offsets. Both backends must give identical
results; the tests check that on every rule example and on random text.

* ``pyahocorasick`` (module ``ahocorasick``): the design's reference backend, always supported.
* ``ahocorasick-rs`` (module ``ahocorasick_rs``): a Rust automaton, several times faster on
  Chinese text because it does not walk a node's children linearly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from .errors import UsageError

BACKENDS = ("ahocorasick-rs", "pyahocorasick")

#: Largest automaton the ahocorasick-rs backend builds as a DFA (measured: faster up to ~20k keys, slower at ~60k).
DFA_MAX_KEYS = 30_000


class Matcher(Protocol):
    name: str

    def find(self, text: str) -> list[tuple[int, int, int]]:
        """All occurrences of all keys in ``text``: ``(key_index, start, end)``, overlapping."""
        ...

    #: ``find_overlapping(text, True)`` is ``find(text)``, called with the fewest layers in between
    #: (for ahocorasick-rs the Rust method itself; the checker calls it once per message).
    find_overlapping: Callable[[str, bool], list[tuple[int, int, int]]]


class PyAhoCorasickMatcher:
    name = "pyahocorasick"

    def __init__(self, keys: Sequence[str]) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for i, key in enumerate(keys):
            self._automaton.add_word(key, (i, len(key)))
        self._automaton.make_automaton()
        self._empty = not keys
        self.find_overlapping = self._find_overlapping

    def find(self, text: str) -> list[tuple[int, int, int]]:
        if self._empty:
            return []
        return [(i, end + 1 - n, end + 1) for end, (i, n) in self._automaton.iter(text)]

    def _find_overlapping(self, text: str, overlapping: bool = True) -> list[tuple[int, int, int]]:
        return self.find(text)


class RsAhoCorasickMatcher:
    name = "ahocorasick-rs"

    def __init__(self, keys: Sequence[str], small: bool = False) -> None:
        import ahocorasick_rs

        self._empty = not keys
        if not self._empty:
            # a DFA scans faster than the default NFA while it fits in cache; large automata keep the NFA.
            # ``small``: the library's own choice (builds 4x faster than a forced DFA, scans as fast on
            # a few thousand keys)
            impl = ahocorasick_rs.Implementation.DFA if len(keys) <= DFA_MAX_KEYS and not small else None
            self._automaton = ahocorasick_rs.AhoCorasick(
                list(keys), matchkind=ahocorasick_rs.MATCHKIND_STANDARD, implementation=impl
            )
            self._find = self._automaton.find_matches_as_indexes
        self.find_overlapping = self._find if not self._empty else _no_matches

    def find(self, text: str) -> list[tuple[int, int, int]]:
        if self._empty:
            return []
        return self._find(text, overlapping=True)


def _no_matches(text: str, overlapping: bool = True) -> list[tuple[int, int, int]]:
    return []


def available_backends() -> list[str]:
    found = []
    for name, module in (("ahocorasick-rs", "ahocorasick_rs"), ("pyahocorasick", "ahocorasick")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.append(name)
    return found


def build_matcher(keys: Sequence[str], backend: str = "ahocorasick-rs", small: bool = False) -> Matcher:
    """``small``: an automaton of a few thousand keys built at every start (see RsAhoCorasickMatcher)."""
    if backend == "pyahocorasick":
        return PyAhoCorasickMatcher(keys)
    if backend == "ahocorasick-rs":
        return RsAhoCorasickMatcher(keys, small)
    raise UsageError(f"unknown matcher backend {backend!r}; expected one of {', '.join(BACKENDS)}")

"""One small interface over two Aho-Corasick backends.

A matcher is built once from a list of keys and answers ``find(text)`` with every (overlapping)
occurrence as ``(key_index, start, end)`` in character offsets. Both backends must give identical
results; the tests check that on every rule example and on random text.

* ``pyahocorasick`` (module ``ahocorasick``): the design's reference backend, always supported.
* ``ahocorasick-rs`` (module ``ahocorasick_rs``): a Rust automaton, several times faster on
  Chinese text because it does not walk a node's children linearly.
* ``native`` (module ``livestream_compliance._native``, the package's optional C extension): an
  automaton over code points that also reads its text through a translate table in the same pass
  (``find_translated``), so a clean line costs one call and no translated copy. It is the default
  where it was built (``pip install`` builds it when a C compiler is present; without one the
  install still succeeds and ``ahocorasick-rs`` is the default).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from .errors import UsageError

BACKENDS = ("native", "ahocorasick-rs", "pyahocorasick")

try:
    from . import _native
except ImportError:  # built without a C compiler: the pure-Python install
    _native = None  # type: ignore[assignment]

#: The backend used unless one is asked for: the C extension where it was built.
DEFAULT_BACKEND = "native" if _native is not None else "ahocorasick-rs"

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


class NativeMatcher:
    """The package's C automaton (see the module docstring): same results as ahocorasick-rs."""

    name = "native"

    def __init__(self, keys: Sequence[str]) -> None:
        if _native is None:
            raise UsageError("the native backend was not built (no C compiler at install time); use ahocorasick-rs")
        self._automaton = _native.Automaton(list(keys))
        self.automaton = self._automaton  # the C object, for the engine's FoldedScanner
        self.find_overlapping = self._automaton.find
        #: ``find_translated(text, table)`` -> ``(find(text.translate(mapping)), len(text.translate(mapping)))``
        #: where ``table`` is ``translate_table(mapping)``
        self.find_translated = self._automaton.find_translated
        #: ``find_keys(text)`` -> ``{key_index for key_index, _s, _e in find(text)}``
        self.find_keys = self._automaton.find_keys

    def find(self, text: str) -> list[tuple[int, int, int]]:
        return self._automaton.find(text)


def translate_table(mapping: list[int | None]) -> "_native.Table | None":
    """A C translate table for ``mapping`` (``Table.translate(text) == text.translate(mapping)``),
    or None without the C extension."""
    return _native.Table(mapping) if _native is not None else None


def _no_matches(text: str, overlapping: bool = True) -> list[tuple[int, int, int]]:
    return []


def available_backends() -> list[str]:
    found = ["native"] if _native is not None else []
    for name, module in (("ahocorasick-rs", "ahocorasick_rs"), ("pyahocorasick", "ahocorasick")):
        try:
            __import__(module)
        except ImportError:
            continue
        found.append(name)
    return found


#: Fewest keys for which MatcherBuild builds in a thread of its own (below, a build takes a few
#: milliseconds: no thread pays for itself).
THREAD_MIN_KEYS = 20_000


class MatcherBuild:
    """A matcher of ``keys`` being built. With the native backend and at least ``THREAD_MIN_KEYS``
    keys, the build runs in a thread of its own, where the C build runs without the interpreter lock
    (the host automaton's ~0.15 s runs beside whatever the caller does meanwhile: reading jieba's
    dictionary, building the other automaton, a server's event loop); otherwise it is built here.
    ``result()`` waits for it and returns the matcher, or raises what the build raised. ``keys`` is
    kept, so a caller can tell which keys a build was started for."""

    def __init__(self, keys: Sequence[str], backend: str = DEFAULT_BACKEND, small: bool = False) -> None:
        self.keys = keys
        self._matcher: Matcher | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if backend == "native" and _native is not None and len(keys) >= THREAD_MIN_KEYS:
            self._thread = threading.Thread(
                target=self._run, args=(backend, small), name="livestream-compliance automaton build", daemon=True
            )
            self._thread.start()
        else:
            self._matcher = build_matcher(keys, backend, small)

    def _run(self, backend: str, small: bool) -> None:
        try:
            self._matcher = build_matcher(self.keys, backend, small)
        except BaseException as e:  # noqa: BLE001 - handed to the caller by result()
            self._error = e

    def result(self) -> Matcher:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error
        assert self._matcher is not None
        return self._matcher


def build_matcher(keys: Sequence[str], backend: str = DEFAULT_BACKEND, small: bool = False) -> Matcher:
    """``small``: an automaton of a few thousand keys built at every start (see RsAhoCorasickMatcher)."""
    if backend == "native":
        return NativeMatcher(keys)
    if backend == "pyahocorasick":
        return PyAhoCorasickMatcher(keys)
    if backend == "ahocorasick-rs":
        return RsAhoCorasickMatcher(keys, small)
    raise UsageError(f"unknown matcher backend {backend!r}; expected one of {', '.join(BACKENDS)}")

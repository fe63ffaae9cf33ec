"""Prototypes of proposed engine optimisations, measured by ``run.py`` next to the real engine.

Nothing here is used by the product. A prototype is a *view* of a real :class:`Checker`: a shallow
copy whose automata are rebuilt (another matcher implementation), so the engine's own ``check`` /
``_verify`` code runs on it and its findings can be compared line by line with the engine's. Only the
batch path (P2) is re-implemented here, calling the engine's ``_verify``. The engine's private
attributes are read on purpose; when the engine changes shape, the run reports the prototypes as not
applicable instead of failing. The full proposal, as a diff against the engine, is in
``bench_proposals.py``.

* **P2 — batch path without per-line bookkeeping.** ``check_batch`` splits the whole normalised batch
  and computes a running end offset for every line although only lines with hits need their bounds.
  Instead: sort the hits by start, count separators between consecutive hits with ``str.count``
  (C speed, one pass over the batch in total) and slice only flagged lines.
* **P3 — ahocorasick-rs ``Implementation.DFA`` for small automata** (up to ``DFA_MAX_KEYS`` keys): faster
  per character than the default contiguous NFA while the table fits in cache; slower for the host
  automaton (~60k keys), which keeps the NFA.
* **P6 — word boundaries from a window** (evidence only: ``jieba_window_evidence``).
* **P7 — sub-quadratic ``literals._minimal``** (evidence only: ``build_time_evidence``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any


# --------------------------------------------------------------------------- matchers
class RsDfaMatcher:
    name = "ahocorasick-rs-dfa"

    def __init__(self, keys: Sequence[str]) -> None:
        import ahocorasick_rs

        self._empty = not keys
        if not self._empty:
            self._find = ahocorasick_rs.AhoCorasick(
                list(keys), implementation=ahocorasick_rs.Implementation.DFA
            ).find_matches_as_indexes

    def find(self, text: str) -> list[tuple[int, int, int]]:
        if self._empty:
            return []
        return self._find(text, overlapping=True)


# --------------------------------------------------------------------------- views
#: Largest automaton the P3 prototype builds as a DFA.
DFA_MAX_KEYS = 30_000


def checker_view(checker: Any, *, dfa: bool = False) -> Any:
    """A shallow copy of ``checker`` with rebuilt automata (the engine's code runs on it unchanged)."""
    from livestream_compliance.matcher import build_matcher

    view = copy.copy(checker)
    view._automata = {}
    for source, auto in checker._automata.items():
        keys = list(auto.keys)
        use_dfa = dfa and checker.backend == "ahocorasick-rs" and len(keys) <= DFA_MAX_KEYS
        matcher = RsDfaMatcher(keys) if use_dfa else build_matcher(keys, checker.backend)
        view._automata[source] = type(auto)(keys=keys, entries=list(auto.entries), matcher=matcher)
    return view


def candidate_rate(checker: Any, lines: Sequence[str], source: Any) -> float:
    """Share of lines with at least one automaton hit (lines that pay for ``_verify``)."""
    find = checker._automata[source].matcher.find
    table = checker._table
    return sum(1 for s in lines if find(s.translate(table))) / max(len(lines), 1)


# --------------------------------------------------------------------------- P2: batch path
def check_batch_p2(checker: Any, texts: Sequence[str], source: Any, product: str | None = None) -> list[tuple]:
    """``Checker.check_batch`` locating only the lines that have hits (engine's ``_verify`` does the rest)."""
    from livestream_compliance import Source

    if type(source) is not Source:
        source = Source.parse(source)
    n = len(texts)
    if n == 0:
        return []
    joined = "\n".join(texts)
    if joined.count("\n") != n - 1:
        return [checker.check(t, source, product) for t in texts]
    norm = joined.translate(checker._batch_table)
    hits = checker._automata[source].matcher.find(norm)
    prefilter, _pats = checker._patterns[source]
    if prefilter is not None:
        hits = hits + [(-1, m.start(), m.start()) for m in prefilter.finditer(norm)]
    out: list[tuple] = [()] * n
    if not hits:
        return out
    hits.sort(key=lambda h: h[1])
    per_line: dict[int, tuple[int, int, list]] = {}
    line = pos = 0
    cur = -1
    entry: tuple[int, int, list] = (0, 0, [])
    count, rfind, find = norm.count, norm.rfind, norm.find
    for k, s, e in hits:
        if s > pos:
            line += count("\n", pos, s)
            pos = s
        if line != cur:
            cur = line
            lo = rfind("\n", 0, s) + 1
            hi = find("\n", s)
            entry = per_line.setdefault(line, (lo, len(norm) if hi < 0 else hi, []))
        if k >= 0:
            entry[2].append((k, s - entry[0], e - entry[0]))
    verify = checker._verify
    for li, (lo, hi, line_hits) in per_line.items():
        out[li] = verify(texts[li], norm[lo:hi], source, product, line_hits, None)
    return out


class Proto:
    """One prototype: ``check`` is the engine's on a view; ``check_batch`` is P2 on the same view."""

    def __init__(self, label: str, checker: Any, *, dfa: bool = False) -> None:
        self.label = label
        self.view = checker_view(checker, dfa=dfa)
        self.dfa = dfa
        self.check = self.view.check
        view = self.view
        self.check_batch = lambda texts, source, product=None: check_batch_p2(view, texts, source, product)

    def matcher_report(self) -> dict[str, str]:
        return {s.value: f"{len(a.keys):,} keys, {type(a.matcher).__name__}" for s, a in self.view._automata.items()}


def default_protos(checker: Any, smoke: bool = False) -> dict[str, Proto]:
    """The prototypes run.py measures (names are the table labels)."""
    return {
        "P2 (batch line lookup)": Proto("P2", checker),
        "P2+P3 (+ rs DFA for small automata)": Proto("P2+P3", checker, dfa=True),
    }


# --------------------------------------------------------------------------- P6: windowed word boundaries
def jieba_window_evidence(checker: Any, samples: Sequence[tuple[str, Any]], window: int = 12,
                          limit: int = 3_000) -> dict[str, float]:
    """Word-boundary verdicts from jieba on the whole line vs on ``window`` characters either side of the hit.

    ``_verify`` segments the whole normalised line for every line with a ``word_boundary`` candidate;
    the verdict only looks at words overlapping the hit. Returns agreement and time per candidate.
    """
    import time

    from livestream_compliance import engine as E
    from livestream_compliance.verify import splits_a_word

    seg = checker.segmenter
    cases: list[tuple[str, int, int]] = []
    for text, source in samples:
        norm = text.translate(checker._table)
        auto = checker._automata[source]
        for k, s, e in auto.matcher.find(norm):
            if any(en.kind in (E._TERM, getattr(E, "_VARIANT", E._TERM)) and en.rule.word_boundary
                   for en in auto.entries[k]):
                cases.append((norm, s, e))
        if len(cases) >= limit:
            break
    if not cases:
        return {"cases": 0}
    keys = checker._term_keys

    def full(norm: str, s: int, e: int) -> Any:
        return splits_a_word(seg.spans(norm), s, e, norm, keys)

    def windowed(norm: str, s: int, e: int) -> Any:
        lo, hi = max(0, s - window), min(len(norm), e + window)
        words = tuple((a + lo, b + lo) for a, b in seg.spans(norm[lo:hi]))
        return splits_a_word(words, s, e, norm, keys)

    t0 = time.perf_counter()
    v_full = [full(*c) for c in cases]
    t1 = time.perf_counter()
    v_win = [windowed(*c) for c in cases]
    t2 = time.perf_counter()
    same = sum(1 for a, b in zip(v_full, v_win) if bool(a) == bool(b))
    return {
        "cases": len(cases),
        "mean_line_chars": sum(len(c[0]) for c in cases) / len(cases),
        "agree": same / len(cases),
        "full_us": (t1 - t0) / len(cases) * 1e6,
        "window_us": (t2 - t1) / len(cases) * 1e6,
    }


# --------------------------------------------------------------------------- P7: build time
def build_time_evidence(rules: Any, normalizer: Any, reps: int = 3) -> dict[str, list[float]]:
    """Checker build time with the engine's ``literals._minimal`` vs a substring-lookup version (same output)."""
    import time

    from livestream_compliance import Checker, literals

    original = literals._minimal

    def fast_minimal(s: set[str]) -> set[str]:
        # x is dropped iff a proper substring of x is in the set: look the substrings up instead of
        # comparing every pair (quadratic in the size of the set)
        out = set()
        for x in s:
            n = len(x)
            if not any(x[i:j] in s for i in range(n) for j in range(i + 1, n + 1) if j - i < n):
                out.add(x)
        return out

    out: dict[str, list[float]] = {"engine": [], "P7": []}
    same = True
    try:
        for _ in range(reps):
            for label in ("engine", "P7"):
                literals._minimal = original if label == "engine" else fast_minimal
                t0 = time.perf_counter()
                c = Checker(rules, normalizer=normalizer)
                out[label].append(time.perf_counter() - t0)
                keys = {s: list(a.keys) for s, a in c._automata.items()}
                if label == "engine":
                    ref = keys
                elif keys != ref:
                    same = False
    finally:
        literals._minimal = original
    out["identical_keys"] = [1.0 if same else 0.0]
    return out

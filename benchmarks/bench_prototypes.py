"""Prototypes of proposed engine optimisations, measured by ``run.py`` next to the real engine.

Nothing here is used by the product. A prototype is a *view* of a real :class:`Checker`: a shallow
copy whose automata are rebuilt (other matcher implementation, other trigger literals), so the
engine's own ``check`` / ``_verify`` code runs on it and its findings can be compared line by line
with the engine's. Only the batch path (P2) is re-implemented here, calling the engine's ``_verify``.
The engine's private attributes are read on purpose; when the engine changes shape, the run reports
the prototypes as not applicable instead of failing.

Proposals:

* **P2 — batch path without per-line bookkeeping.** ``check_batch`` splits the whole normalised batch
  and computes a running end offset for every line although only lines with hits need their bounds.
  Instead: sort the hits by start, count separators between consecutive hits with ``str.count``
  (C speed, one pass over the batch in total) and slice only flagged lines.
* **P3 — ahocorasick-rs ``Implementation.DFA``** for automata of the default packs' size (tens of
  thousands of keys): faster per character than the default contiguous NFA; memory grows with the key
  count, so keep the NFA above a threshold.
* **P5 — better triggers.** ``literals.required_literals`` picks, among the literal sets a pattern
  requires, the one with the longest shortest literal (then the fewest literals). That picks very
  common words (就, 我们, 今天, 天 ...), so a large share of host lines become candidates and pay for
  ``_verify``. (a) Choose the set with the lowest summed word frequency (jieba's bundled dictionary; no
  tuning on the benchmark corpora); (b) let a repeat ``X{n,m}`` (n >= 1) with an exact ``X`` extend
  the literal run before it and start the one after it, so ``q(?:号|群)+`` triggers on ``q号``/``q群``
  instead of every ``q``. Triggers stay sound (every match contains one), so findings are unchanged.
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


# --------------------------------------------------------------------------- P5: trigger choice
def word_frequency() -> Callable[[str], float]:
    """Estimated corpus frequency of a literal from jieba's bundled dictionary."""
    import jieba

    jieba.initialize()
    freq = jieba.dt.FREQ
    total = float(jieba.dt.total)
    unknown_char = 1_000.0

    def f(x: str) -> float:
        v = freq.get(x)
        if v:
            return float(v)
        # not a dictionary word: independent characters, with a bonus for being adjacent
        p = 1.0
        for ch in x:
            p *= (freq.get(ch) or unknown_char) / total
        return max(total * p * 50.0, 1.0)

    return f


try:  # Python 3.11+: the regex parser lives in re._parser
    from re import _constants as _sre_c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older layout
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_CAP = 256
_REPEATS = (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, getattr(_sre_c, "POSSESSIVE_REPEAT", _sre_c.MAX_REPEAT))


def required_literals_v2(pattern: str, score: Callable[[set[str]], Any]) -> set[str] | None:
    """Literals one of which every match of ``pattern`` contains (None: none found).

    Like the engine's ``literals.required_literals`` with two changes: a repeat ``X{n,m}`` with
    ``n >= 1`` and an exact ``X`` continues the literal run before it (every match starts with one
    copy of X) and starts the run after it (every match ends with one copy), so ``q(?:号|群)+``
    requires ``q号``/``q群`` instead of ``q``; and the candidate set is chosen by ``score`` (max).
    """
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001
        return None
    if parsed.state.flags & 2:  # re.IGNORECASE
        return None
    _exact, req = _seq(list(parsed), score)
    if not req:
        return None
    out: set[str] = set()
    for x in sorted(req, key=len):
        if not any(o in x for o in out):
            out.add(x)
    return out


def _seq(items, score) -> tuple[set[str] | None, set[str] | None]:
    run: set[str] | None = {""}
    cands: list[set[str]] = []
    exact_all = True

    def flush(r: set[str] | None) -> None:
        if r and "" not in r:
            cands.append(r)

    for op, av in items:
        if op in _REPEATS and av[0] >= 1 and not (av[0] == av[1] == 1):
            sub_exact, sub_req = _seq(av[2], score)
            if sub_exact is not None and "" not in sub_exact:
                exact_all = False
                if run is not None and len(run) * len(sub_exact) <= _CAP:
                    flush({a + b for a in run for b in sub_exact})
                else:
                    flush(run)
                    flush(set(sub_exact))
                run = set(sub_exact)
                continue
        exact, req = _item(op, av, score)
        if exact is not None and run is not None and len(run) * len(exact) <= _CAP:
            run = {a + b for a in run for b in exact}
            continue
        exact_all = False
        flush(run)
        if exact is not None:
            run = set(exact)
        else:
            run = {""}
            flush(req)
    flush(run)
    best = max(cands, key=score) if cands else None
    return (run if exact_all else None), best


def _item(op, av, score) -> tuple[set[str] | None, set[str] | None]:
    c = _sre_c
    if op is c.LITERAL:
        return {chr(av)}, {chr(av)}
    if op is c.IN:
        chars: set[str] = set()
        for iop, iav in av:
            if iop is c.LITERAL:
                chars.add(chr(iav))
            elif iop is c.RANGE and iav[1] - iav[0] < 64:
                chars.update(chr(x) for x in range(iav[0], iav[1] + 1))
            else:
                return None, None
        return (chars, chars) if len(chars) <= 64 else (None, None)
    if op is c.BRANCH:
        results = [_seq(alt, score) for alt in av[1]]
        exact: set[str] | None = set()
        for e, _r in results:
            if e is None or exact is None or len(exact) + len(e) > _CAP:
                exact = None
                break
            exact |= e
        req: set[str] | None = set()
        for e, r in results:
            alt = r if r else (e if e and "" not in e else None)
            if alt is None:
                req = None
                break
            req |= alt  # type: ignore[operator]
        return exact, req
    if op is c.SUBPATTERN:
        if av[1] & 2:  # (?i: ...)
            return None, None
        return _seq(av[3], score)
    if op is getattr(c, "ATOMIC_GROUP", None):
        return _seq(av, score)
    if op in _REPEATS:
        lo, hi, sub = av
        e, r = _seq(sub, score)
        if lo == 0:
            return ((e | {""}) if (hi == 1 and e is not None) else None), None
        return (e if lo == hi == 1 else None), (r if r else (e if e and "" not in e else None))
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return {""}, None
    return None, None


def engine_score(s: set[str]) -> tuple[int, int]:
    """The engine's choice: longest shortest literal, then fewest literals."""
    return (min(len(x) for x in s), -len(s))


def frequency_score(freq: Callable[[str], float]) -> Callable[[set[str]], tuple[float, int]]:
    """Lowest summed word frequency (then longest shortest literal)."""
    return lambda s: (-sum(freq(x) for x in s), min(len(x) for x in s))


def _engine_literals(pattern: str, score: Callable[[set[str]], Any]) -> set[str] | None:
    """The engine's own extraction with only the choice among candidate sets replaced."""
    from livestream_compliance import literals

    original = literals._score
    literals._score = score
    try:
        return literals.required_literals(pattern)
    finally:
        literals._score = original


# --------------------------------------------------------------------------- views
def checker_view(checker: Any, *, dfa: bool = False, frequency_triggers: bool = False,
                 repeat_runs: bool = False) -> Any:
    """A shallow copy of ``checker`` with rebuilt automata (the engine's code runs on it unchanged)."""
    from livestream_compliance import engine as E
    from livestream_compliance.matcher import build_matcher

    view = copy.copy(checker)
    view._automata = {}
    score = frequency_score(word_frequency()) if frequency_triggers else engine_score
    retrigger = frequency_triggers or repeat_runs
    for source, auto in checker._automata.items():
        keys = list(auto.keys)
        entries = list(auto.entries)
        if retrigger:
            by_key: dict[str, list[Any]] = {}
            patterns: dict[int, tuple[Any, Any]] = {}
            for key, es in zip(keys, entries):
                for e in es:
                    if e.kind == E._TRIGGER:
                        patterns.setdefault(id(e.pattern), (e.rule, e.pattern))
                    else:
                        by_key.setdefault(key, []).append(e)
            for rule, rx in patterns.values():
                trig = (required_literals_v2(rx.pattern, score) if repeat_runs else _engine_literals(rx.pattern, score)) \
                    or E.required_literals(rx.pattern)
                for t in trig:
                    by_key.setdefault(t, []).append(E._Entry(E._TRIGGER, rule, rx))
            keys = list(by_key)
            entries = [tuple(v) for v in by_key.values()]
        matcher = RsDfaMatcher(keys) if dfa else build_matcher(keys, checker.backend)
        view._automata[source] = type(auto)(keys=keys, entries=entries, matcher=matcher)
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

    def __init__(self, label: str, checker: Any, *, dfa: bool = False, frequency_triggers: bool = False,
                 repeat_runs: bool = False, p2: bool = True) -> None:
        self.label = label
        self.view = checker_view(checker, dfa=dfa, frequency_triggers=frequency_triggers, repeat_runs=repeat_runs)
        self.check = self.view.check
        self.p2 = p2
        view = self.view
        self.check_batch = (lambda texts, source, product=None: check_batch_p2(view, texts, source, product)) if p2 \
            else view.check_batch
        self.dfa = dfa
        self.frequency_triggers = frequency_triggers

    def trigger_report(self) -> dict[str, int]:
        from livestream_compliance import engine as E

        out = {}
        for source, auto in self.view._automata.items():
            out[source.value] = sum(1 for es in auto.entries if any(e.kind == E._TRIGGER for e in es))
        return out


def default_protos(checker: Any, smoke: bool = False) -> dict[str, Proto]:
    """The prototypes run.py measures (names are the table labels); smoke mode builds two."""
    if smoke:
        return {
            "P2 (batch line lookup)": Proto("P2", checker),
            "P2+P3+P5 (+ rs DFA)": Proto("P2+P3+P5", checker, dfa=True, frequency_triggers=True, repeat_runs=True),
        }
    return {
        "P2 (batch line lookup)": Proto("P2", checker),
        "P2+P5 (+ better triggers)": Proto("P2+P5", checker, frequency_triggers=True, repeat_runs=True),
        "P2+P3+P5 (+ rs DFA)": Proto("P2+P3+P5", checker, dfa=True, frequency_triggers=True, repeat_runs=True),
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

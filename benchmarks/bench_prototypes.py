"""Prototypes of proposed engine optimisations, measured by ``run.py`` next to the real engine.

Nothing here is used by the product. Each prototype wraps a real :class:`Checker` (reusing its
automaton keys, translate tables and ``_verify``), so its findings can be compared line by line
with the engine's and its speed measured on the same lines in the same run. The engine's private
attributes are read on purpose; when the engine changes shape the prototype reports itself as
not applicable instead of failing the benchmark run.

Proposals prototyped:

1. **Pattern anchors instead of the regex prefilter scan.** Every regex rule pattern needs at
   least one literal (``万能``, ``最``, ``第一`` ...). Those literals, derived automatically from the
   parsed pattern, become extra keys of the Aho-Corasick automaton, so the combined pattern
   regex runs only on lines where one of its literals occurs instead of over every line (in the
   engine it is a full ``re.search`` of every line, and ``finditer`` over every batch).
2. **Batch path without per-line bookkeeping for clean lines.** Instead of ``split`` of the whole
   normalised batch plus a running sum of every line's length, find the line of each hit with
   ``str.count('\\n')`` between consecutive hits (C speed) and slice only flagged lines.
3. **ahocorasick-rs with ``Implementation.DFA``** for the default packs (a few thousand keys):
   the default contiguous NFA is several times slower per character on Chinese text. A DFA is
   large for very big term lists, so keep the NFA above a size threshold.
4. **Per-pattern dispatch.** On a line where anchors occurred, run only the patterns those
   anchors belong to, instead of the combined regex of every pattern of the source (whose cost
   grows with the number of patterns because ``re`` tries every alternative at every position).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

try:  # Python 3.11+: the regex parser lives in re._parser
    from re import _constants as _sre_c  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older layout
    import sre_constants as _sre_c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

_CAP = 256  # largest finite set of strings tracked for one sub-pattern


# --------------------------------------------------------------------------- anchor extraction
def _best(cands: list[set[str]]) -> set[str] | None:
    """The most selective requirement: longest shortest literal, then fewest literals."""
    cands = [c for c in cands if c and "" not in c]
    if not cands:
        return None
    return max(cands, key=lambda c: (min(map(len, c)), -len(c)))


def _minimise(req: set[str]) -> set[str]:
    """Drop literals that contain another literal of the set (the shorter one is implied)."""
    out = set()
    for s in sorted(req, key=len):
        if not any(o in s for o in out):
            out.add(s)
    return out


def _analyse_seq(items) -> tuple[set[str] | None, set[str] | None]:
    """(exact, required) for a sequence: every string it can match, or literals every match contains."""
    run: set[str] | None = {""}
    cands: list[set[str]] = []
    exact_all = True
    repeats = (_sre_c.MAX_REPEAT, _sre_c.MIN_REPEAT, getattr(_sre_c, "POSSESSIVE_REPEAT", _sre_c.MAX_REPEAT))
    for item in items:
        op, av = item
        if op in repeats and av[0] >= 1 and not (av[0] == av[1] == 1):
            # X{lo,hi}, lo >= 1: every match starts with one match of X and ends with one, so an
            # exact X extends the current run, breaks it, and starts the next run
            sub_exact, sub_req = _analyse_seq(av[2])
            if sub_exact is not None and "" not in sub_exact:
                exact_all = False
                if run is not None and len(run) * len(sub_exact) <= _CAP:
                    cands.append({a + b for a in run for b in sub_exact})
                else:
                    if run is not None:
                        cands.append(run)
                    cands.append(set(sub_exact))
                run = set(sub_exact)
                continue
        exact, req = _analyse_item(item)
        if exact is not None and run is not None and len(run) * len(exact) <= _CAP:
            run = {a + b for a in run for b in exact}
            continue
        exact_all = False
        if run is not None:
            cands.append(run)
        if exact is not None:
            run = set(exact)
        else:
            run = {""}
            if req:
                cands.append(req)
    if run is not None:
        cands.append(run)
    return (run if exact_all else None), _best(cands)


def _analyse_item(item) -> tuple[set[str] | None, set[str] | None]:
    op, av = item
    c = _sre_c
    if op is c.LITERAL:
        return {chr(av)}, {chr(av)}
    if op is c.IN:
        chars: set[str] = set()
        for iop, iav in av:
            if iop is c.LITERAL:
                chars.add(chr(iav))
            elif iop is c.RANGE and iav[1] - iav[0] < _CAP:
                chars.update(chr(x) for x in range(iav[0], iav[1] + 1))
            else:  # NEGATE, CATEGORY, big ranges
                return None, None
        return (chars, chars) if len(chars) <= _CAP else (None, None)
    if op is c.BRANCH:
        results = [_analyse_seq(alt) for alt in av[1]]
        exact: set[str] | None = set()
        for e, _r in results:
            if e is None or exact is None or len(exact) + len(e) > _CAP:
                exact = None
                break
            exact |= e
        req: set[str] | None = set()
        for e, r in results:
            alt_req = r if r else (e if e and "" not in e else None)
            if alt_req is None:
                req = None
                break
            req |= alt_req  # type: ignore[operator]
        return exact, req
    if op is c.SUBPATTERN:
        _group, add_flags, _del_flags, sub = av
        if add_flags & re.IGNORECASE:
            return None, None
        return _analyse_seq(sub)
    if op is getattr(c, "ATOMIC_GROUP", None):
        return _analyse_seq(av)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT)):
        lo, hi, sub = av
        e, r = _analyse_seq(sub)
        if lo == 0:
            return ((e | {""}) if (hi == 1 and e is not None) else None), None
        req = r if r else (e if e and "" not in e else None)
        return (e if lo == hi == 1 else None), req
    if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
        return {""}, None  # zero-width
    return None, None  # ANY, NOT_LITERAL, CATEGORY, GROUPREF ...


def required_literals(pattern: str) -> set[str] | None:
    """Literals one of which every match of ``pattern`` contains, or None if none can be derived."""
    try:
        parsed = _sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - unknown syntax: no anchors
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    _exact, req = _analyse_seq(list(parsed))
    return _minimise(req) if req else None


# --------------------------------------------------------------------------- prototype checker
class _RsDfa:
    def __init__(self, keys: Sequence[str], dfa: bool) -> None:
        import ahocorasick_rs

        kw = {"implementation": ahocorasick_rs.Implementation.DFA} if dfa else {}
        self._find = ahocorasick_rs.AhoCorasick(list(keys), **kw).find_matches_as_indexes

    def find(self, text: str) -> list[tuple[int, int, int]]:
        return self._find(text, overlapping=True)


class _Py:
    def __init__(self, keys: Sequence[str]) -> None:
        import ahocorasick

        self._a = ahocorasick.Automaton()
        for i, k in enumerate(keys):
            self._a.add_word(k, (i, len(k)))
        self._a.make_automaton()

    def find(self, text: str) -> list[tuple[int, int, int]]:
        return [(i, end + 1 - n, end + 1) for end, (i, n) in self._a.iter(text)]


class ProtoChecker:
    """``check`` / ``check_batch`` with the proposals applied, delegating verification to the engine.

    ``matcher``: ``"ahocorasick-rs"`` (default NFA, as the engine), ``"ahocorasick-rs-dfa"`` or
    ``"pyahocorasick"``. ``dispatch``: run only the patterns whose anchors occur in the line
    (proposal 4) instead of the engine's combined pattern regex on every candidate line.
    """

    def __init__(self, checker, matcher: str = "ahocorasick-rs", dispatch: bool = True) -> None:
        from livestream_compliance import Source

        self.checker = checker
        self.matcher_name = matcher
        self.dispatch = dispatch
        self._table = checker._table
        self._batch_table = checker._batch_table
        self._source_type = Source
        # a shallow view of the checker whose pattern table is swapped per call (dispatch)
        self._view = copy.copy(checker)
        self._view._patterns = dict(checker._patterns)
        self._verify = self._view._verify
        self._per_source: dict = {}
        self.anchor_report: dict = {}
        for source in Source:
            auto = checker._automata[source]
            keys = list(auto.keys)
            nkeys = len(keys)
            index = {k: i for i, k in enumerate(keys)}
            _prefilter, pats = checker._patterns[source]
            anchor_pats: dict[int, set[int]] = {}
            residual: list[int] = []
            n_anchors = 0
            for pi, (_rule, rx) in enumerate(pats):
                req = required_literals(rx.pattern)
                if not req:
                    residual.append(pi)
                    continue
                for a in req:
                    ki = index.get(a)
                    if ki is None:
                        ki = index[a] = len(keys)
                        keys.append(a)
                        n_anchors += 1
                    anchor_pats.setdefault(ki, set()).add(pi)
            if not keys:
                m = None
            elif matcher == "pyahocorasick":
                m = _Py(keys)
            else:
                m = _RsDfa(keys, dfa=matcher.endswith("-dfa"))
            resid_rx = (
                re.compile("|".join(f"(?:{pats[i][1].pattern})" for i in residual).replace("(?P<hit>", "(?:"))
                if residual
                else None
            )
            frozen = {k: frozenset(v) for k, v in anchor_pats.items()}
            self._per_source[source] = (m.find if m else None, nkeys, frozen, resid_rx, tuple(residual), pats)
            self.anchor_report[source.value] = {
                "patterns": len(pats),
                "anchored": len(pats) - len(residual),
                "extra_keys": n_anchors,
            }

    # ------------------------------------------------------------------ one line
    def _line(self, text: str, norm: str, source, product, hits) -> tuple:
        _find, nkeys, anchor_pats, resid, residual, pats = self._per_source[source]
        if not self.dispatch:
            real = [h for h in hits if h[0] < nkeys]
            return self._verify(text, norm, source, product, real, None)
        real = []
        wanted: set[int] = set()
        for h in hits:
            k = h[0]
            if k < nkeys:
                real.append(h)
            ps = anchor_pats.get(k)
            if ps:
                wanted |= ps
        if resid is not None and resid.search(norm) is not None:
            wanted.update(residual)
        if not real and not wanted:
            return ()
        self._view._patterns[source] = (
            (_ALWAYS, tuple(pats[i] for i in sorted(wanted))) if wanted else (None, ())
        )
        return self._verify(text, norm, source, product, real, None)

    def check(self, text: str, source, product: str | None = None):
        if not isinstance(text, str):
            raise TypeError("text must be a str")
        if len(text) > 100_000:
            raise ValueError("text too long")
        if type(source) is not self._source_type:
            source = self._source_type(source)
        norm = text.translate(self._table)
        find, _nkeys, _ap, resid, _r, _p = self._per_source[source]
        hits = find(norm) if find is not None else []
        if not hits and (resid is None or resid.search(norm) is None):
            return ()
        return self._line(text, norm, source, product, hits)

    def check_batch(self, texts: Sequence[str], source, product: str | None = None):
        if type(source) is not self._source_type:
            source = self._source_type(source)
        n = len(texts)
        if n == 0:
            return []
        joined = "\n".join(texts)
        if joined.count("\n") != n - 1:
            return [self.check(t, source, product) for t in texts]
        norm = joined.translate(self._batch_table)
        find, _nkeys, _ap, resid, _r, _p = self._per_source[source]
        hits = find(norm) if find is not None else []
        if resid is not None:
            hits = hits + [(-1, m.start(), m.start()) for m in resid.finditer(norm)]
        out: list = [()] * n
        if not hits:
            return out
        hits.sort(key=lambda h: h[1])
        # the line of each hit: count separators between consecutive hits (C speed, one pass in total)
        per_line: dict[int, tuple[int, int, list]] = {}
        line = pos = 0
        cur = -1
        entry: tuple[int, int, list] = (0, 0, [])
        count = norm.count
        for k, s, e in hits:
            if s > pos:
                line += count("\n", pos, s)
                pos = s
            if line != cur:
                cur = line
                lo = norm.rfind("\n", 0, s) + 1
                hi = norm.find("\n", s)
                entry = per_line.setdefault(line, (lo, len(norm) if hi < 0 else hi, []))
            if k >= 0:
                entry[2].append((k, s - entry[0], e - entry[0]))
        for li, (lo, hi, line_hits) in per_line.items():
            out[li] = self._line(texts[li], norm[lo:hi], source, product, line_hits)
        return out


#: a "prefilter" that always matches: the dispatched pattern subset runs directly
_ALWAYS = re.compile("")

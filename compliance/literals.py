"""Required literals of a regular expression, so patterns run only on lines that can match.

``required_literals(pattern)`` returns a set of strings such that every match of the pattern
contains at least one of them, or ``None`` when no such set is found. The checker feeds these
strings to the automaton as *triggers*: a pattern runs only on a line where one of its triggers
occurs, instead of every pattern being tried on every line (which made a few hundred patterns
cost more than the whole rest of the pipeline).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _p
except ImportError:  # pragma: no cover
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

#: Largest set of strings tracked while expanding alternatives.
LIMIT = 256
#: Largest set when a literal run is continued into a repeat's required copies (digit classes:
#: 1[3-9][0-9]{9} gives 70 three-character triggers instead of 7 two-character ones).
EXTEND_LIMIT = 2048

_ZERO_WIDTH = {_c.AT, _c.ASSERT, _c.ASSERT_NOT}
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT} | ({_c.POSSESSIVE_REPEAT} if hasattr(_c, "POSSESSIVE_REPEAT") else set())


def _product(a: set[str], b: set[str]) -> set[str] | None:
    if len(a) * len(b) > LIMIT:
        return None
    return {x + y for x in a for y in b}


def _exact_seq(items) -> set[str] | None:
    """Every string the sequence can match, if that is a small finite set."""
    result: set[str] | None = {""}
    for op, av in getattr(items, "data", items):  # a SubPattern's list: no __getitem__ per item
        s = _exact_item(op, av)
        if s is None or result is None:
            return None
        result = _product(result, s)
    return result


def _exact_item(op, av) -> set[str] | None:
    if op is _c.LITERAL:
        return {chr(av)}
    if op in _ZERO_WIDTH:
        return {""}
    if op is _c.IN:
        chars: set[str] = set()
        for iop, iav in av:
            if iop is _c.LITERAL:
                chars.add(chr(iav))
            elif iop is _c.RANGE and iav[1] - iav[0] < 16:
                chars.update(chr(c) for c in range(iav[0], iav[1] + 1))
            else:
                return None
        return chars if len(chars) <= 32 else None
    if op is _c.SUBPATTERN:
        return _exact_seq(av[3])
    if getattr(_c, "ATOMIC_GROUP", None) is op:
        return _exact_seq(av)
    if op is _c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            s = _exact_seq(branch)
            if s is None:
                return None
            out |= s
            if len(out) > LIMIT:
                return None
        return out
    if op in _REPEATS:
        lo, hi, sub = av
        if hi > 3:
            return None
        base = _exact_seq(sub)
        if base is None:
            return None
        out = set()
        power: set[str] | None = {""}
        for k in range(hi + 1):
            if k >= lo:
                out |= power  # type: ignore[arg-type]
            if k < hi:
                power = _product(power, base) if power is not None else None
                if power is None:
                    return None
        return out if len(out) <= LIMIT else None
    return None


def _minimal(s: set[str]) -> set[str]:
    """Drop strings that contain another string of the set (原价是 is covered by 原价).

    A string is dropped exactly when some other member of the set is a substring of it (if that
    member was itself dropped, a shorter member inside it is inside this string too), so each
    string's substrings of the shorter lengths present are looked up in the set: no pairwise scan.
    """
    by_len: dict[int, list[str]] = {}
    for x in s:
        by_len.setdefault(len(x), []).append(x)
    lengths = sorted(by_len)
    kept: set[str] = set(by_len[lengths[0]]) if lengths else set()  # nothing shorter to contain
    for idx in range(1, len(lengths)):
        n, shorter = lengths[idx], lengths[:idx]
        starts = [(i, i + k) for k in shorter for i in range(n - k + 1)]
        for x in by_len[n]:
            if s.isdisjoint([x[i:j] for i, j in starts]):
                kept.add(x)
    return kept


def _score(s: set[str]) -> tuple[int, int]:
    # judged on the minimal form, which is what becomes the triggers (电话号码|电话号|电话 is 电话)
    m = _minimal(s) if len(s) > 1 else s
    return (min(len(x) for x in m), -len(m))


def _required_seq(items) -> set[str] | None:
    return _best(_required_candidates(items))


def _required_candidates(items) -> list[set[str]]:
    """Sets of strings each of which is required: every match of ``items`` contains one string of every set."""
    candidates: list[set[str]] = []
    run: set[str] = {""}

    def close() -> None:
        if run and "" not in run:
            candidates.append(run)

    for op, av in getattr(items, "data", items):  # a SubPattern's list: no __getitem__ per item
        s = _exact_item(op, av)
        if s is not None:
            combined = _product(run, s)
            if combined is not None:
                run = combined
                continue
            close()
            run = s
            continue
        if op in _REPEATS and av[0] >= 1:
            # X{n,m} with n >= 1 (X{9}, X+) of an exact X: every match continues the run with at
            # least n copies of X (1[3-9][0-9]{9} contains one of 130..199, not just 13..19)
            base = _exact_seq(av[2])
            if base is not None and "" not in base:
                ext = run
                for _ in range(av[0]):
                    if len(ext) * len(base) > EXTEND_LIMIT:
                        break
                    ext = {x + y for x in ext for y in base}
                if ext is not run and "" not in ext:
                    candidates.append(ext)
        close()
        run = {""}
        r = _required_item(op, av)
        if r is not None:
            candidates.append(r)
    close()
    return candidates


def _best(candidates: list[set[str]]) -> set[str] | None:
    """The candidate that makes the best triggers: longest shortest string, then fewest strings."""
    if not candidates:
        return None
    # max(candidates, key=_score), computing the minimal forms only for the longest-shortest ones
    # (a set's shortest strings survive minimisation, so its minimum length needs no _minimal)
    shortest = [min(len(x) for x in c) for c in candidates]
    best = max(shortest)
    top = [c for c, n in zip(candidates, shortest) if n == best]
    if len(top) == 1:
        return top[0]
    return max(top, key=_score)


def _required_item(op, av) -> set[str] | None:
    if op is _c.SUBPATTERN:
        return _required_seq(av[3])
    if getattr(_c, "ATOMIC_GROUP", None) is op:
        return _required_seq(av)
    if op is _c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            r = _required_seq(branch)
            if r is None:
                return None
            out |= r
        return out
    if op in _REPEATS and av[0] >= 1:
        return _required_seq(av[2])
    return None


def required_sets(pattern: str, flags: int = 0) -> list[set[str]]:
    """Sets of strings, one string of each of which every match of ``pattern`` contains."""
    return [c for c in _required_candidates(_p.parse(pattern, flags).data) if c and "" not in c]


def required_literals(pattern: str) -> set[str] | None:
    """Strings one of which occurs in every match of ``pattern`` (None: no such set found)."""
    return analyse(pattern)[0]


#: Widths above this count as unbounded (``X*``, ``X+``, ``X{0,n}`` with a large n).
MAX_WINDOW = 200


def _lookahead_width(items) -> int | None:  # noqa: ANN001 - re._parser's SubPattern
    """Upper bound of how far lookaheads anywhere in ``items`` read past their position (None: unbounded)."""
    total = 0
    for op, av in getattr(items, "data", items):  # a SubPattern's list: no __getitem__ per item
        subs: list = []
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            direction, sub = av
            if direction == 1:
                w = sub.getwidth()[1]
                if w > MAX_WINDOW:
                    return None
                total += w
            subs = [sub]
        elif op is _c.SUBPATTERN:
            subs = [av[3]]
        elif op is _c.BRANCH:
            subs = list(av[1])
        elif op in _REPEATS:
            subs = [av[2]]
        elif getattr(_c, "ATOMIC_GROUP", None) is op:
            subs = [av]
        elif op is _c.GROUPREF_EXISTS:
            subs = [x for x in av[1:] if x is not None]
        for sub in subs:
            w = _lookahead_width(sub)
            if w is None:
                return None
            total += w
    return total


def compile_parsed(pattern: str, parsed=None):  # type: ignore[no-untyped-def]  # noqa: ANN001
    """``(re.compile(pattern), recipe)`` from one parse: ``recipe`` is what ``re`` hands to
    ``_sre.compile`` (pattern, flags, code, groups, groupindex, indexgroup), so that the pattern can be
    rebuilt without parsing and code generation (:func:`from_recipe`). Falls back to ``re.compile``
    (recipe None) if this interpreter's internals differ.
    """
    import re

    try:
        import _sre
        import re._compiler as rc

        p = parsed if parsed is not None else _p.parse(pattern, 0)
        code = [int(c) for c in _code(rc, p)]  # plain ints (the opcodes are named int subclasses)
        groupindex = dict(p.state.groupdict)
        indexgroup: list[str | None] = [None] * p.state.groups
        for k, i in groupindex.items():
            indexgroup[i] = k
        recipe = (pattern, p.state.flags, code, p.state.groups - 1, groupindex, tuple(indexgroup))
        rx = _sre.compile(*recipe)
        if rx.pattern == pattern:
            return rx, recipe
    except Exception:  # noqa: BLE001 - another interpreter: the public route
        pass
    return re.compile(pattern), None


#: ``re._compiler._optimize_charset`` results by argument: rule patterns repeat the same classes
#: (``[\u4e00-\u9fff]`` in 52 of them, digit classes...), and each costs up to 2 ms to optimise
_CHARSETS: dict[tuple[object, ...], tuple[list[tuple[object, object]], bool]] = {}
_CHARSETS_LOCK = threading.Lock()


def _code(rc, p):  # type: ignore[no-untyped-def]  # noqa: ANN001
    """``rc._code(p, 0)`` with ``_optimize_charset`` memoised (a pure function of its arguments)."""
    orig = rc._optimize_charset

    def optimize_charset(charset, iscased=None, fixup=None, fixes=None):  # type: ignore[no-untyped-def]  # noqa: ANN001
        if fixup is not None or fixes is not None:
            return orig(charset, iscased, fixup, fixes)
        try:
            key = (tuple(charset), iscased)
            got = _CHARSETS.get(key)
        except TypeError:  # an unhashable item: not memoised
            return orig(charset, iscased, fixup, fixes)
        if got is None:
            got = orig(charset, iscased, fixup, fixes)
            if len(_CHARSETS) >= 4096:
                _CHARSETS.clear()
            _CHARSETS[key] = got
        return list(got[0]), got[1]

    with _CHARSETS_LOCK:
        rc._optimize_charset = optimize_charset
        try:
            return rc._code(p, 0)
        finally:
            rc._optimize_charset = orig


def from_recipe(pattern: str, flags: int, code: list[int], groups: int, groupindex: dict[str, int],
                indexgroup: tuple[str | None, ...]):  # type: ignore[no-untyped-def]
    """The compiled pattern for a recipe of :func:`compile_parsed` (``re.compile`` if it is refused)."""
    import re

    try:
        import _sre

        rx = _sre.compile(pattern, flags, code, groups, groupindex, indexgroup)  # sre validates the code
        if type(rx) is re.Pattern and rx.pattern == pattern and rx.flags == flags and rx.groups == groups:
            return rx
    except Exception:  # noqa: BLE001 - another interpreter's internals: compile from the pattern
        pass
    return re.compile(pattern, flags)


def analyse(pattern: str) -> tuple[set[str] | None, int | None, int | None]:
    """``(required_literals, width, reach)`` of ``pattern``, parsed once.

    ``width``: the longest match; ``reach``: how far past a match's start the regex engine may read
    (the width plus lookaheads, plus one for end-of-text assertions). A match that contains an
    occurrence ``[s, e)`` of a required literal starts in ``[e - width, s]``, so searching
    ``pattern.search(text, e - width, s + reach)`` decides whether such a match exists (a match
    starting after ``s`` in that slice proves nothing). ``None`` when unbounded or unknown.
    """
    return analyse_parsed(pattern)[:3]


def analyse_parsed(pattern: str):  # type: ignore[no-untyped-def]
    """:func:`analyse` plus the parse it made (None if the pattern does not parse)."""
    try:
        parsed = _p.parse(pattern)
    except Exception:  # noqa: BLE001 - the rule validator reports bad patterns
        return None, None, None, None
    return (*_analyse_tree(parsed)[:3], parsed)


#: Largest guard (see :func:`prepare`): a few substring tests must stay much cheaper than a search.
GUARD_MAX = 16


def _analyse_tree(parsed):  # type: ignore[no-untyped-def]  # noqa: ANN001
    """``(literals, width, reach, guard)`` of a parsed pattern (see :func:`analyse` and :class:`Prepared`)."""
    candidates = _required_candidates(parsed.data)
    req = _best(candidates)
    literals = None if not req or "" in req else _minimal(req)
    guard = None
    if literals is not None and not parsed.state.flags & re.IGNORECASE:
        # any required set will do; minimising one (dropping strings that contain another) can
        # bring it under GUARD_MAX ((?:丰|升|长高|...)(?:了)? is 丰 升 长 ...)
        others = [c if len(c) <= GUARD_MAX else _minimal(c) for c in candidates if c is not req and len(c) <= 4 * GUARD_MAX]
        smallest = min(others, key=len, default=None)
        if smallest and len(smallest) <= GUARD_MAX and "" not in smallest:
            guard = tuple(sorted(smallest))
    anchored = literals is not None and not parsed.state.flags & re.IGNORECASE and _starts_with_one_of(parsed.data, literals)
    width = parsed.getwidth()[1]
    ahead = _lookahead_width(parsed.data)
    if width > MAX_WINDOW or ahead is None:
        return literals, None, None, guard, anchored
    return literals, width, width + ahead + 1, guard, anchored


def _starts_with_one_of(items, literals: set[str]) -> bool:  # noqa: ANN001
    """Does every match of ``items`` begin with one of ``literals``?

    True when the strings the pattern's leading run of exact items can match (zero-width items
    such as look-behinds consume nothing) each start with one of ``literals``: then every match
    starts at an occurrence of a trigger, and the checker tries the pattern only there.
    """
    run: set[str] = {""}
    starts = tuple(literals)
    for op, av in getattr(items, "data", items):
        s = _exact_item(op, av)
        if s is None and op in _REPEATS and av[0] >= 1:
            # X{n,m} with n >= 1 of an exact X: every match continues with n copies (as in
            # _required_candidates: 1[3-9][0-9]{9} starts with one of 130..199)
            base = _exact_seq(av[2])
            if base is None or "" in base:
                return False
            for _ in range(av[0]):  # as many copies as stay small: each is a prefix of every match
                if len(run) * len(base) > EXTEND_LIMIT:
                    break
                run = {x + y for x in run for y in base}
            return "" not in run and all(x.startswith(starts) for x in run)
        if s is None:
            break
        combined = _product(run, s)
        if combined is None:
            break
        run = combined
        if "" not in run and all(x.startswith(starts) for x in run):
            return True
    return False


class Prepared(NamedTuple):
    """A rule pattern compiled once, with what the checker derives from it (see :func:`prepare`)."""

    rx: re.Pattern[str]
    #: what ``re`` compiled it from (:func:`compile_parsed`), None if it took the public route
    recipe: tuple[object, ...] | None
    literals: set[str] | None
    width: int | None
    reach: int | None
    #: another set of required strings (one of them occurs in every match), when a small one exists:
    #: a line containing none of them cannot match, so the checker skips a whole-line search
    guard: tuple[str, ...] | None = None
    #: every match begins with one of ``literals``: a trigger occurrence needs only ``rx.match`` there
    anchored: bool = False


#: pattern -> its Prepared form; bounded (cleared when full), keyed by the pattern text only
_PREPARED: dict[str, Prepared] = {}
#: seeded analyses (see seed_prepared) not asked for yet: pattern -> export_prepared's tuple
_SEEDS: dict[str, tuple[Any, ...]] = {}
#: seed sources not read yet (see defer_seeds)
_PENDING: list[Callable[[], Mapping[str, tuple[Any, ...]]]] = []
_PREPARED_MAX = 4096


def prepare(pattern: str) -> Prepared:
    """Parse, analyse (:func:`analyse`) and compile ``pattern`` once per process.

    The rule validator (which must compile every pattern) and the checker build (which needs the
    compiled pattern, its required literals and widths) share the one parse and code generation,
    instead of ``re.compile`` in one and a second parse and compile in the other. Raises
    ``re.error`` exactly as ``re.compile(pattern)`` would. The result is shared: do not modify
    ``literals``.
    """
    got = _PREPARED.get(pattern)
    if got is not None:
        return got
    while pattern not in _SEEDS and _PENDING:  # a seed file not read yet may hold it
        seed_prepared(_PENDING.pop(0)())
    seed = _SEEDS.pop(pattern, None)
    if seed is not None:
        got = _from_seed(seed)
        if got is not None:
            _remember(pattern, got)
            return got
    parsed = _p.parse(pattern, 0)  # what re.compile(pattern) parses first: the same errors
    literals, width, reach, guard, anchored = _analyse_tree(parsed)
    rx, recipe = compile_parsed(pattern, parsed)
    got = Prepared(rx, recipe, literals, width, reach, guard, anchored)
    _remember(pattern, got)
    return got


def _remember(pattern: str, got: Prepared) -> None:
    if len(_PREPARED) >= _PREPARED_MAX:
        _PREPARED.clear()
    _PREPARED[pattern] = got


def _from_seed(seed: tuple[Any, ...]) -> Prepared | None:
    """A seed made whole, or None when it cannot be (prepare() then analyses the pattern itself)."""
    try:
        recipe, lits, width, reach, guard, anchored = seed
        rx = from_recipe(*recipe)
        return Prepared(rx, tuple(recipe), None if lits is None else set(lits), width, reach, guard, anchored)
    except Exception:  # noqa: BLE001 - a damaged seed is only a lost shortcut
        return None


def export_prepared(patterns: Iterable[str]) -> dict[str, tuple[Any, ...]]:
    """What :func:`prepare` computed for ``patterns``, as plain data for a cache across processes:
    pattern -> ``(recipe, literals, width, reach, guard, anchored)``. Patterns not prepared in this
    process, or compiled without a recipe (another interpreter's internals), are left out."""
    out: dict[str, tuple[Any, ...]] = {}
    for p in patterns:
        got = _PREPARED.get(p)
        if got is not None and got.recipe is not None:
            lits = None if got.literals is None else sorted(got.literals)
            out[p] = (got.recipe, lits, got.width, got.reach, got.guard, got.anchored)
        else:
            while p not in _SEEDS and _PENDING:
                seed_prepared(_PENDING.pop(0)())
            if p in _SEEDS:  # seeded and not asked for in this process: the same data
                out[p] = _SEEDS[p]
    return out


def defer_seeds(source: Callable[[], Mapping[str, tuple[Any, ...]]]) -> None:
    """Seed :func:`prepare` from ``source()`` (entries as for :func:`seed_prepared`) when it is first
    asked for a pattern it has no analysis of, not now: a delta build asks for a few patterns, and
    reading the analyses of all of them costs more than the few it needs. Sources are read in the
    order they were given."""
    _PENDING.append(source)


def seed_prepared(entries: Mapping[str, tuple[Any, ...]]) -> int:
    """Let :func:`prepare` answer the patterns of ``entries`` (:func:`export_prepared`'s output in an
    earlier process of the same code and interpreter) without parsing, analysing or generating
    code for them; returns how many were seeded. The caller vouches for the entries' origin (the
    loader keys its file by the package's code and the interpreter version)."""
    n = 0
    for p, seed in entries.items():
        try:
            if p in _PREPARED or p in _SEEDS or len(_SEEDS) >= _PREPARED_MAX or len(seed) != 6 or seed[0][0] != p:
                continue
        except (TypeError, IndexError, KeyError):
            continue  # not an entry export_prepared makes
        _SEEDS[p] = tuple(seed)  # compiled when prepare() is first asked for it (a build asks for few)
        n += 1
    return n


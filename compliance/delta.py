"""The delta build: a checker's build result for new rules, patched from the build of older ones.

A full build of the default packs makes ~209,000 automaton keys, their entries, the folding groups
and the trigger classification; each pass over them costs ~50-100 ms, and a build makes many. After
a rule change most of that is what the last build made. :func:`patch` starts from the last build's
result (:class:`~livestream_compliance.engine.CompiledRules` and the folding index, as a state
cache keeps them) and redoes only what the changed rules touch:

* the entries of the keys the removed or changed rules had, and of the keys the added or changed
  rules make (:class:`~livestream_compliance.engine.RuleCompiler`, the full build's own code, so the
  same entries); a key's entries are its rules' entries in rule-set order, each rule's its own;
* the trigger classification and the gap-only keys of those keys; the term keys;
* the folding groups of the keys that appear, go or move, and the long terms' folded spellings of
  the changed rules (``long_term_spellings``, the full build's code);
* the untriggered patterns and their prefilter;
* the rules whose generic homophone spellings change because jieba's taught dictionary changed (a
  new term 定级 makes 定级 a word, and a word is never taken for an evasion of 顶级): treated as
  changed.

Keys that go leave their place to the last key (so only the moved key's index changes); new keys
are appended. The result is the full build's up to the order of keys, which no answer depends on
(a full build's key order already follows string hashing, which differs between processes).
tests/test_delta.py compares the two, structure by structure and finding by finding.

Pure: no files, no clocks. :func:`livestream_compliance.loader.load_checker` decides when to use it.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .engine import (
    _ALIAS,
    _native,
    _TERM,
    _VARIANT,
    MAX_HOMOPHONE_TERM,
    CompiledRules,
    RuleCompiler,
    _Entry,
    _trigger_only,
    _unique_entries,
    long_term_spellings,
    prefilter_of,
)
from .errors import RuleError
from .findings import Source
from .rules import Rule, RuleSet

#: A folding index (see Checker.fold_index): the table and, per source, the folded keys, their
#: groups (first key index, others) and the long terms' fold entries.
FoldIndex = tuple[list[int], dict[Source, tuple[list[str], tuple[array, dict[int, tuple[int, ...]]], dict[int, tuple[tuple[Rule, str], ...]]]]]

_TERM_KINDS = (_TERM, _VARIANT, _ALIAS)

#: Beyond this share of changed rules (and more than ``ALWAYS_PATCHED`` of them) a delta saves too
#: little: build in full.
MAX_CHANGED_SHARE = 0.5
ALWAYS_PATCHED = 20


class Unpatchable(Exception):
    """The change cannot be patched in (the caller builds in full). Internal to this module's callers."""


def select(keys: list[str], key_set: Mapping[str, Any] | set[str] | None, entries: list[Any] | None, objects: list[Any]) -> list[int]:
    """The indexes ``i`` where ``keys[i]`` is in ``key_set`` or ``entries[i]`` is one of ``objects``
    (by identity): in one C pass with the extension (a Python pass over 150,000 keys is ~0.1 s)."""
    if _native is not None:
        return _native.select(keys, key_set, entries, objects)  # type: ignore[no-any-return]
    ids = {id(o) for o in objects}
    wanted = key_set or ()
    if entries is None:
        return [i for i, k in enumerate(keys) if k in wanted]
    return [i for i, (k, t) in enumerate(zip(keys, entries)) if id(t) in ids or k in wanted]


def changed_rules(base: RuleSet, rules: RuleSet) -> tuple[list[Rule], list[Rule]]:
    """``(removed, added)``: the rules of ``base`` that are not in ``rules`` and those of ``rules``
    not in ``base``, by identity (a rule reused from the base's state is the same object; an edited
    rule is a new one, so it is both removed and added)."""
    new_ids = {id(r) for r in rules.rules}
    old_ids = {id(r) for r in base.rules}
    return [r for r in base.rules if id(r) not in new_ids], [r for r in rules.rules if id(r) not in old_ids]


def homophone_affected(rules: Iterable[Rule], normalize: Callable[[str], str], words: Iterable[str]) -> list[Rule]:
    """The rules among ``rules`` whose generic homophone spellings (``homophone_swaps``) may differ
    when the dictionary's ``words`` change: a swap spelling is skipped when it is a word, and a swap
    changes one character of a term of 2 to ``MAX_HOMOPHONE_TERM`` characters, so only terms one
    character away from a changed word are concerned (an over-approximation: they are remade)."""
    wild = set()
    for w in words:
        if 2 <= len(w) <= MAX_HOMOPHONE_TERM:
            wild.update(w[:i] + "\uffff" + w[i + 1 :] for i in range(len(w)))
    if not wild:
        return []
    out = []
    for rule in rules:
        if not rule.homophones:
            continue
        for term in rule.terms:
            k = normalize(term)
            if 2 <= len(k) <= MAX_HOMOPHONE_TERM and any(k[:i] + "\uffff" + k[i + 1 :] in wild for i in range(len(k))):
                out.append(rule)
                break
    return out


def patch(
    base_compiled: CompiledRules,
    base_fold: FoldIndex | None,
    base_rules: RuleSet,
    rules: RuleSet,
    *,
    normalize: Callable[[str], str],
    norm_table: Any,
    romanize: Mapping[str, str],
    homophones: Mapping[str, str],
    lexicon: Mapping[str, int] | None,
    lexicon_changed: Iterable[str],
    near_fold: Mapping[str, str] | None,
) -> tuple[CompiledRules, FoldIndex | None]:
    """The build result for ``rules`` from that of ``base_rules`` (see the module docstring).

    ``normalize``/``norm_table``: the normaliser (its translate and its table), as the base was built
    with; ``romanize``, ``homophones``, ``lexicon``: the tables a full build of ``rules`` gets
    (``lexicon``: jieba's dictionary taught ``rules``' words); ``lexicon_changed``: the words whose
    frequency differs from the dictionary the base was built with; ``near_fold``: the near
    syllables of the folding. The folding index is None when the base had none, or when a
    one-character key appears or goes (the folding table keeps such characters apart): the caller
    then derives the folding in full. Raises :class:`Unpatchable` when more than
    ``MAX_CHANGED_SHARE`` of the rules (and more than ``ALWAYS_PATCHED``) changed or the base is not a build of ``base_rules``, and
    RuleError for the changed rules' problems, as a full build would.
    """
    if base_compiled.trigger_only is None or base_compiled.gap_only is None or base_compiled.rules_version != base_rules.version:
        raise Unpatchable("the base is not a complete build of its rules")
    removed, added = changed_rules(base_rules, rules)
    added_ids = {id(r) for r in added}
    kept = [r for r in rules.rules if id(r) not in added_ids]
    words = set(lexicon_changed)
    if any(len(w) < 2 for w in words):
        raise Unpatchable("a one-character word changed in the dictionary")
    affected = homophone_affected(kept, normalize, words)
    n_changed = len(added) + len(affected) + len(removed)
    if n_changed > ALWAYS_PATCHED and n_changed > MAX_CHANGED_SHARE * len(rules.rules):
        raise Unpatchable("too many rules changed")
    position = {id(r): i for i, r in enumerate(rules.rules)}
    gone = {id(r) for r in removed} | {id(r) for r in affected}  # whose old entries go
    remade = sorted([*added, *affected], key=lambda r: position[id(r)])  # whose entries are made anew

    # the base's distinct entry tuples per source (keys share few), and its compiled patterns
    distinct = {s: list(dict(zip(map(id, base_compiled.entries[s]), base_compiled.entries[s])).values()) for s in Source}
    known_rx: dict[str, re.Pattern[str]] = {}
    for s in Source:
        for t in distinct[s]:
            for e in t:
                if e.pattern is not None:
                    known_rx.setdefault(e.pattern.pattern, e.pattern)
        for _r, rx in base_compiled.patterns[s][1]:
            known_rx.setdefault(rx.pattern, rx)
    rc = RuleCompiler(normalize, romanize, homophones, lexicon, known_rx)
    #: per remade rule: key -> its entries (deduplicated as a full build does), untriggered patterns
    made: list[tuple[Rule, dict[str, tuple[_Entry, ...]], list[tuple[Rule, re.Pattern[str]]]]] = []
    for rule in remade:
        by_key: dict[str, list[_Entry]] = {}
        pats: list[tuple[Rule, re.Pattern[str]]] = []
        rc.add_rule(rule, by_key, pats)
        made.append((rule, {k: _unique_entries(v, rc.shared_tuples, _TERM_KINDS)[0] for k, v in by_key.items()}, pats))
    if rc.issues:
        raise RuleError(list(dict.fromkeys(rc.issues)))
    shared = rc.shared_tuples

    keys: dict[Source, list[str]] = {}
    entries: dict[Source, list[tuple[_Entry, ...]]] = {}
    trigger_only: dict[Source, list[Any]] = {}
    gap_only: dict[Source, frozenset[int]] = {}
    patterns: dict[Source, Any] = {}
    #: per source: key -> its entries now (empty: gone), for the keys whose entries changed
    touched: dict[Source, dict[str, tuple[_Entry, ...]]] = {}
    #: per source: what happened to the key indexes, in order (for the folding groups):
    #: ``(key, -1, index)`` appended, ``(key, index, -1)`` removed, ``(key, from, to)`` moved
    plans: dict[Source, list[tuple[str, int, int]]] = {}
    one_char_change = False
    for source in Source:
        k_list = list(base_compiled.keys[source])
        e_list = list(base_compiled.entries[source])
        t_list = list(base_compiled.trigger_only[source])
        gaps = set(base_compiled.gap_only[source])
        adds: dict[str, list[tuple[int, tuple[_Entry, ...]]]] = {}
        for rule, by_key, _pats in made:
            if source in rule.sources:
                p = position[id(rule)]
                for k, block in by_key.items():
                    adds.setdefault(k, []).append((p, block))
        # the distinct entry tuples holding an entry of a rule that goes (keys share few tuples)
        dirty = [t for t in distinct[source] if any(id(e.rule) in gone for e in t)] if gone else []
        found = select(k_list, adds, e_list, dirty) if dirty or adds else []
        changes: dict[str, tuple[_Entry, ...]] = {}
        removed_at: list[int] = []
        changed_at: list[int] = []
        for i in found:
            k = k_list[i]
            blocks = [(position[id(e.rule)], e) for e in e_list[i] if id(e.rule) not in gone]
            for p, block in adds.pop(k, ()):
                blocks.extend((p, e) for e in block)
            blocks.sort(key=lambda b: b[0])  # stable: each rule's entries keep their order
            new = tuple(e for _p, e in blocks)
            changes[k] = new
            if new:
                new = shared.setdefault(tuple(map(id, new)), new)
                e_list[i] = new
                changed_at.append(i)
            else:
                removed_at.append(i)
        ops: list[tuple[str, int, int]] = []
        for k, blocks in adds.items():  # keys no rule had before
            blocks.sort(key=lambda b: b[0])
            new = tuple(e for _p, block in blocks for e in block)
            new = shared.setdefault(tuple(map(id, new)), new)
            changes[k] = new
            changed_at.append(len(k_list))
            ops.append((k, -1, len(k_list)))
            k_list.append(k)
            e_list.append(new)
            t_list.append(None)
        if changed_at:
            for i, t in zip(changed_at, _trigger_only([k_list[i] for i in changed_at], [e_list[i] for i in changed_at])):
                t_list[i] = t
                if t is not None and t[0] == 4 and not t[1]:
                    gaps.add(i)
                else:
                    gaps.discard(i)
        # removed keys leave their place to the last key (highest first: the last is never one to go)
        for h in sorted(removed_at, reverse=True):
            ops.append((k_list[h], h, -1))
            gaps.discard(h)
            last = len(k_list) - 1
            if h != last:
                k_list[h], e_list[h], t_list[h] = k_list[last], e_list[last], t_list[last]
                ops.append((k_list[h], last, h))
                if last in gaps:
                    gaps.discard(last)
                    gaps.add(h)
            k_list.pop()
            e_list.pop()
            t_list.pop()
        if any(len(k) == 1 and (a < 0 or b < 0) for k, a, b in ops):
            one_char_change = True  # the folding table keeps one-character keys apart: derive it anew
        keys[source], entries[source], trigger_only[source] = k_list, e_list, t_list
        gap_only[source] = frozenset(gaps)
        touched[source] = changes
        plans[source] = ops
        # the untriggered patterns, in rule order
        prefilter, pats = base_compiled.patterns[source]
        new_pats = [(r, rx) for r, rx in pats if id(r) not in gone]
        for rule, _by_key, rule_pats in made:
            if source in rule.sources:
                new_pats.extend(rule_pats)
        new_pats.sort(key=lambda rp: position[id(rp[0])])
        if [(id(r), id(x)) for r, x in new_pats] != [(id(r), id(x)) for r, x in pats]:
            prefilter = prefilter_of(new_pats)
        patterns[source] = (prefilter, tuple(new_pats))

    term_keys = _patched_term_keys(base_compiled.term_keys, touched, keys, entries)
    compiled = CompiledRules(
        rules_version=rules.version, keys=keys, entries=entries, patterns=patterns, term_keys=term_keys,
        trigger_only=trigger_only, recipes=dict(rc.recipes), gap_only=gap_only,
    )
    if base_fold is None or one_char_change:
        return compiled, None
    return compiled, _patched_fold(base_fold, plans, removed, affected, remade, position, norm_table, near_fold)


def _is_term(t: tuple[_Entry, ...]) -> bool:
    return any(e.kind in _TERM_KINDS for e in t)


def _patched_term_keys(
    base: frozenset[str], touched: dict[Source, dict[str, tuple[_Entry, ...]]], keys: dict[Source, list[str]],
    entries: dict[Source, list[tuple[_Entry, ...]]],
) -> frozenset[str]:
    """The keys that stand for a term in some source, redone for the keys whose entries changed."""
    changed = set().union(*(t.keys() for t in touched.values()))
    if not changed:
        return base
    out = set(base)
    unresolved: set[str] = set()
    for k in changed:
        now = [_is_term(t[k]) for t in touched.values() if k in t]
        if any(now):
            out.add(k)
        elif k not in base or len(now) == len(touched):
            out.discard(k)  # a term nowhere: where it did not change it was none before either
        else:
            out.discard(k)
            unresolved.add(k)  # a term before: is it still one in a source where it did not change?
    for source, t in touched.items():
        wanted = unresolved - t.keys()
        if wanted:
            out.update(keys[source][i] for i in select(keys[source], wanted, None, []) if _is_term(entries[source][i]))
    return frozenset(out)


def _patched_fold(
    base: FoldIndex, plans: dict[Source, list[tuple[str, int, int]]], removed: list[Rule], affected: list[Rule],
    remade: list[Rule], position: dict[int, int], norm_table: Any, near: Mapping[str, str] | None,
) -> FoldIndex:
    """The base's folding index with ``plans``' key moves replayed on its groups and the changed
    rules' long-term fold entries swapped; the table is the base's (no one-character key changed)."""
    table, by_source = base
    out: dict[Source, Any] = {}
    for source in Source:
        fkeys0, (first0, more0), fentries0 = by_source[source]
        fkeys, first, more, fentries = list(fkeys0), array("i", first0), dict(more0), dict(fentries0)
        ops = plans[source]
        leaving: dict[str, set[int]] = {}  # folded spelling -> the rules whose pairs leave it
        for rule in [*removed, *affected]:
            if source in rule.sources:
                for folded, _key in long_term_spellings(rule, norm_table, table, near):
                    leaving.setdefault(folded, set()).add(id(rule))
        coming: dict[str, dict[tuple[str, str], tuple[Rule, str]]] = {}  # as the full build gathers them
        for rule in remade:
            if source in rule.sources:
                for folded, key in long_term_spellings(rule, norm_table, table, near):
                    coming.setdefault(folded, {})[(rule.id, key)] = (rule, key)
        fold_of = {k: k.translate(table) for k, _a, _b in ops}
        wanted = set(fold_of.values()) | leaving.keys() | coming.keys()
        at = {fkeys[i]: i for i in select(fkeys, wanted, None, [])} if wanted else {}

        def group(fi: int) -> list[int]:
            return ([first[fi]] if first[fi] >= 0 else []) + list(more.get(fi, ()))

        def set_group(fi: int, m: list[int]) -> None:
            m.sort()  # the first key of a group is its lowest index, the others follow in order
            first[fi] = m[0] if m else -1
            if len(m) > 1:
                more[fi] = tuple(m[1:])
            else:
                more.pop(fi, None)

        for k, a, b in ops:
            f = fold_of[k]
            fi = at.get(f)
            if a < 0:  # appended at b
                if fi is None:
                    at[f] = len(fkeys)
                    fkeys.append(f)
                    first.append(b)
                else:
                    set_group(fi, [*group(fi), b])
            else:
                assert fi is not None
                g = group(fi)
                g.remove(a)
                if b >= 0:  # moved from a to b
                    g.append(b)
                set_group(fi, g)
        for folded, ids in leaving.items():
            fi = at.get(folded)
            if fi is None or fi not in fentries:
                continue
            left = tuple(p for p in fentries[fi] if id(p[0]) not in ids)
            if left:
                fentries[fi] = left
            else:
                del fentries[fi]
        for folded, pairs in coming.items():
            fi = at.get(folded)
            if fi is None:  # not a key's folded form: indexed for the long term alone
                fi = at[folded] = len(fkeys)
                fkeys.append(folded)
                first.append(-1)
            merged = [*fentries.get(fi, ()), *pairs.values()]
            merged.sort(key=lambda p: position[id(p[0])])  # stable: each rule's pairs keep their order
            fentries[fi] = tuple(merged)
        # folded keys left with no key and no long term go; the last takes the place of each
        for fi in sorted((fi for fi in at.values() if first[fi] < 0 and fi not in more and fi not in fentries), reverse=True):
            last = len(fkeys) - 1
            if fi != last:
                fkeys[fi] = fkeys[last]
                first[fi] = first[last]
                if last in more:
                    more[fi] = more.pop(last)
                if last in fentries:
                    fentries[fi] = fentries.pop(last)
            fkeys.pop()
            first.pop()
        out[source] = (fkeys, (first, dict(sorted(more.items()))), fentries)
    return table, out

"""Every automaton backend gives identical hits; the C extension's tables translate as str.translate."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance import Checker, Source
from livestream_compliance.errors import UsageError
from livestream_compliance import matcher as matcher_module
from livestream_compliance.matcher import DEFAULT_BACKEND, available_backends, build_matcher, translate_table

KEYS = ["最好", "最佳", "好的", "全网最低", "最低", "微信", "vx", "第一", "第一次", "a", "ab", "abc", "bc"]


def test_every_backend_is_installed() -> None:
    # "native" is the package's C extension: pip builds it with the machine's C compiler (the
    # install succeeds without one, on ahocorasick-rs; this test then says why it is slower)
    assert set(available_backends()) == {"native", "ahocorasick-rs", "pyahocorasick"}, (
        "the C extension livestream_compliance._native was not built: no C compiler at install time?"
    )
    assert DEFAULT_BACKEND == "native"


@pytest.mark.parametrize("text", ["", "全网最低价最好的", "abcabc", "第一次第一", "没有", "vxvx微信"])
def test_backends_identical_on_examples(text: str) -> None:
    rs = build_matcher(KEYS, "ahocorasick-rs").find(text)
    native = build_matcher(KEYS, "native").find(text)
    py = sorted(build_matcher(KEYS, "pyahocorasick").find(text))
    assert native == rs  # the same order, too: by end, the longest key first at each end
    assert sorted(rs) == py
    for i, s, e in rs:
        assert text[s:e] == KEYS[i]


@given(st.text(alphabet=list("最好佳的全网低微信vxabc第一次 "), max_size=40))
@settings(max_examples=300)
def test_backends_identical_on_random_text(text: str) -> None:
    rs = build_matcher(KEYS, "ahocorasick-rs").find(text)
    assert build_matcher(KEYS, "native").find(text) == rs
    rs = sorted(rs)
    py = sorted(build_matcher(KEYS, "pyahocorasick").find(text))
    assert rs == py
    # every occurrence of every key is reported (overlapping)
    expected = sorted((i, s, s + len(k)) for i, k in enumerate(KEYS) for s in range(len(text)) if text.startswith(k, s))
    assert rs == expected


def test_empty_key_list_finds_nothing() -> None:
    for backend in ("native", "ahocorasick-rs", "pyahocorasick"):
        assert build_matcher([], backend).find("任何文本") == []


def test_unknown_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        build_matcher(KEYS, "regex")


def test_checkers_on_every_backend_agree_on_real_text(checker: Checker, rs_checker: Checker, py_checker: Checker) -> None:
    assert checker.backend == "native"
    lines = [ex.text for r in checker.rules.rules for ex in r.must_match] + [
        (ex.text if isinstance(ex.text, str) else ex) for r in checker.rules.rules for ex in r.must_not_match
    ]
    for source in Source:
        a = checker.check_batch(lines, source)
        assert a == [checker.check(t, source) for t in lines]
        assert a == rs_checker.check_batch(lines, source)
        assert a == [rs_checker.check(t, source) for t in lines]
        assert a == py_checker.check_batch(lines, source)
        # a join inside every line (a session's check): the same reports on every backend
        for t in lines[::7]:
            assert checker.check(t, source, crossing=len(t) // 2) == rs_checker.check(t, source, crossing=len(t) // 2)


# ---------------------------------------------------------------------- the C extension itself

# CJK, Latin, an astral character, a deleted character, a lone surrogate, the newline
_ALPHABET = list("最好佳的微信威薇vxVX第一次 \n") + ["\U0001F36C", "\ud800", "\u3000"]


@given(
    st.lists(st.text(alphabet=_ALPHABET, min_size=1, max_size=4), max_size=12),
    st.text(alphabet=_ALPHABET, max_size=60),
)
@settings(max_examples=400)
def test_native_matches_ahocorasick_rs_on_random_keys(keys: list[str], text: str) -> None:
    """Any keys (repeated ones included) on any text: exactly the Rust automaton's list, and every
    occurrence of every key."""
    m = build_matcher(keys, "native")
    native = m.find(text)
    # find_keys builds the set in find()'s order: the same set, iterated in the same order (the
    # paraphrase model sums floats over it)
    assert list(m.find_keys(text)) == list({h[0] for h in native})
    expected = sorted((i, s, s + len(k)) for i, k in enumerate(keys) for s in range(len(text)) if text.startswith(k, s))
    assert sorted(native) == expected
    # ahocorasick-rs reports a repeated key once, and cannot read a lone surrogate (the engine's
    # table deletes them before any scan)
    if len(set(keys)) == len(keys) and "\ud800" not in text + "".join(keys):
        assert native == build_matcher(keys, "ahocorasick-rs").find(text)


_MAPPING_VALUES = st.one_of(st.none(), st.sampled_from([ord(c) for c in "最微信vx一 "] + [0x1F36C]))


# code points beyond the root's dense table (U+20000 and up), and enough of them, and of Latin
# letters, that states have one, a few (searched in order) and many (hashed) children
_WIDE = [chr(0x20000 + i * 37) for i in range(12)] + list("abcdefghijklmnopq最好的")


def _brute_force(keys: list[str], text: str) -> list[tuple[int, int, int]]:
    return sorted((i, s, s + len(k)) for i, k in enumerate(keys) for s in range(len(text)) if text.startswith(k, s))


@given(
    st.lists(st.text(alphabet=_WIDE, min_size=1, max_size=3), max_size=80),
    st.text(alphabet=_WIDE, max_size=80),
)
@settings(max_examples=300)
def test_native_finds_every_occurrence_with_wide_and_branching_keys(keys: list[str], text: str) -> None:
    m = build_matcher(keys, "native")
    assert sorted(m.find(text)) == _brute_force(keys, text)


# Latin letters and digits (the dense rows' code points: some in keys, "yz!" in none), CJK beside them
_LATIN = list("abcdeh0123") + list("yz!") + ["最", "好", "微"]


@given(
    st.lists(st.text(alphabet=list("abcdeh0123最好"), min_size=1, max_size=5), max_size=40),
    st.text(alphabet=_LATIN, max_size=120),
)
@settings(max_examples=400)
def test_native_dense_rows_on_latin_runs(keys: list[str], text: str) -> None:
    """The dense rows (the root and the states up to two ASCII characters deep, every ASCII
    transition precomputed): keys ending in a row's state and beyond it, runs leaving the rows for a
    deeper state or a CJK one and coming back, ASCII code points in no key: every occurrence."""
    m = build_matcher(keys, "native")
    assert sorted(m.find(text)) == _brute_force(keys, text)


def test_native_dense_rows_on_long_latin_keys() -> None:
    """Keys of Latin runs deeper than the rows (pinyin spellings), on random Latin text with the
    keys planted: what a brute-force search finds."""
    rng = __import__("random").Random(11)
    alphabet = "bcdefghijklmnopqrstuvwxyz0123456789"
    keys = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(400)]
    keys += ["zhongguo", "zhong", "hongguo", "guo", "vx", "vxx", "xx", "1", "15", "150"]
    m = build_matcher(keys, "native")
    for _ in range(200):
        parts = [rng.choice(keys) if rng.random() < 0.3 else "".join(rng.choice(alphabet + "A!") for _ in range(5))
                 for _ in range(rng.randint(0, 25))]
        text = "".join(parts)
        assert sorted(m.find(text)) == _brute_force(keys, text), text


def test_native_states_with_one_few_and_many_children() -> None:
    """Every layout of a state's transitions (none, one, up to LINEAR_MAX in order, a hashed list;
    the root's beyond its dense table too) finds what a brute-force search finds."""
    rng = __import__("random").Random(7)
    for fanout in (1, 2, 6, 7, 8, 29):
        chars = _WIDE[:fanout]
        keys = [p + c for p in ("a", _WIDE[0], "ab", _WIDE[1] + _WIDE[2]) for c in chars] + chars
        m = build_matcher(keys, "native")
        for _ in range(60):
            text = "".join(rng.choice(_WIDE) for _ in range(rng.randint(0, 40)))
            assert sorted(m.find(text)) == _brute_force(keys, text), (fanout, text)


@given(
    st.dictionaries(st.sampled_from([ord(c) for c in _ALPHABET if ord(c) < 0x20000]), _MAPPING_VALUES, max_size=10),
    st.integers(min_value=0, max_value=0x20000),
    st.lists(st.text(alphabet=_ALPHABET, min_size=1, max_size=3), max_size=8),
    st.text(alphabet=_ALPHABET, max_size=60),
)
@settings(max_examples=400)
def test_native_translates_as_str_translate(changes: dict[int, int | None], size: int, keys: list[str], text: str) -> None:
    """A table of any length (code points past its end are kept, as str.translate does with a
    list): translate, deleted, and find_translated agree with str.translate followed by find."""
    mapping: list[int | None] = list(range(size))
    for cp, v in changes.items():
        if cp < size:
            mapping[cp] = v
    table = translate_table(mapping)
    assert table is not None
    translated = text.translate(mapping)
    assert table.translate(text) == translated
    assert table.deleted(text) == [i for i, c in enumerate(text) if ord(c) < size and mapping[ord(c)] is None]
    m = build_matcher(keys, "native")
    assert m.find_translated(text, table) == (m.find(translated), len(translated))


def test_native_rejects_what_it_cannot_scan() -> None:
    native = matcher_module._native
    with pytest.raises(ValueError, match="key 1 is empty"):
        native.Automaton(["好", ""])
    with pytest.raises(TypeError, match="key 0 must be a str"):
        native.Automaton([b"x"])
    a = native.Automaton(["好"])
    with pytest.raises(TypeError, match="text must be a str"):
        a.find(b"x")
    with pytest.raises(ValueError, match="only overlapping"):
        a.find("好", False)
    with pytest.raises(TypeError, match="entry 1 must be an int or None"):
        native.Table([1, "x"])
    with pytest.raises(ValueError, match="entry 0 is not a code point"):
        native.Table([0x110000])
    with pytest.raises(TypeError, match="table must be a Table"):
        a.find_translated("好", [0])
    # an object made without __init__ refuses to scan instead of crashing
    with pytest.raises(ValueError, match="not initialised"):
        native.Automaton.__new__(native.Automaton).find("好")
    with pytest.raises(ValueError, match="not initialised"):
        native.Table.__new__(native.Table).translate("好")


def test_native_build_runs_without_the_interpreter_lock() -> None:
    """A large automaton builds in C with the lock released: the thread that asked for it waits,
    the others run meanwhile (a server's event loop during a reload, the other automaton)."""
    import random
    import threading
    import time

    rng = random.Random(7)
    keys = ["".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(rng.randrange(2, 7))) for _ in range(400_000)]
    built: list[float] = []

    def build() -> None:
        t = time.perf_counter()
        matcher_module._native.Automaton(keys)
        built.append(time.perf_counter() - t)

    thread = threading.Thread(target=build)
    gaps, last = [], time.perf_counter()
    thread.start()
    while thread.is_alive():
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
    thread.join()
    # with the lock held through the C build, this loop would stop for all of it
    assert len(gaps) > 100 and max(gaps) < built[0] / 2, (max(gaps), built)


def test_native_rebuild_replaces_the_automaton_whole() -> None:
    a = matcher_module._native.Automaton(["好", "好的"])
    assert a.find("好的") == [(0, 0, 1), (1, 0, 2)]
    a.__init__(["的"])  # built aside, then swapped in
    assert a.find("好的") == [(0, 1, 2)] and a.states == 2
    with pytest.raises(ValueError, match="key 0 is empty"):
        a.__init__([""])
    assert a.find("好的") == [(0, 1, 2)]  # a failed build leaves the last one


def test_matcher_build_gives_the_matcher_or_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from livestream_compliance.matcher import MatcherBuild

    monkeypatch.setattr(matcher_module, "THREAD_MIN_KEYS", 1)
    keys = ["好的", "的"]
    build = MatcherBuild(keys, "native")
    assert build.keys is keys and build.result().find("好的") == build_matcher(keys, "native").find("好的")
    with pytest.raises(TypeError, match="key 1 must be a str"):
        MatcherBuild(["好", 1], "native").result()  # type: ignore[list-item]
    inline = MatcherBuild(keys, "pyahocorasick")  # other backends build where they are asked
    assert inline.result().find("好的") == [(0, 0, 2), (1, 1, 2)]


def test_native_automaton_reports_its_size() -> None:
    a = matcher_module._native.Automaton(KEYS)
    assert a.states == 1 + len({k[:i] for k in KEYS for i in range(1, len(k) + 1)})
    assert a.__sizeof__() > a.states * 12


def _resolved_both_ways(checker: Checker, source: Source, text: str) -> None:
    """The native FoldedScanner against the Python path it replaces: scan the folded text, then
    _resolve (exact spellings, and the long terms' same-pinyin spellings through _fold_filter)."""
    folded_scan = checker._scan[source][6]
    assert folded_scan is not None
    hits, fold_hits, n = folded_scan(text)
    norm = checker.normalize(text)
    assert n == len(norm)
    expected = checker._resolve(norm, checker._automata[source].matcher.find(text.translate(checker._ftable)), source)
    assert (hits, checker._fold_filter(norm, source, fold_hits) if fold_hits else None) == expected


def test_native_folded_scan_resolves_as_python_on_rule_examples(checker: Checker) -> None:
    for rule in checker.rules.rules:
        for ex in list(rule.must_match) + list(rule.must_not_match):
            text = ex.text if isinstance(ex.text, str) else str(ex)
            for source in Source:
                _resolved_both_ways(checker, source, text)


def test_native_folded_scan_resolves_as_python_on_latin_heavy_text(checker: Checker) -> None:
    """The houbb/sensitive-word benchmark's shape (CJK around a run of random Latin letters and
    digits, upper and lower case), with keys planted: the scan runs mostly in the dense rows."""
    rng = __import__("random").Random(5)
    alphabet = "1234567890bcdefghiJKLMNOPQRSTUVWXYZvxqwm"
    for source in Source:
        keys = [k for k in checker._automata[source].keys if any(c.isascii() for c in k)]
        for _ in range(300):
            cjk = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(0, 9)))
            latin = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 100)))
            planted = rng.choice(keys) if rng.random() < 0.5 else ""
            at = rng.randint(0, len(latin))
            _resolved_both_ways(checker, source, cjk + latin[:at] + planted + latin[at:] + cjk[::-1])


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_native_folded_scan_resolves_as_python_on_random_text(checker: Checker, data: st.DataObject) -> None:
    """Text made of pieces of keys and their same-pinyin spellings (so that folded hits, exact
    spellings, near misses and long-term hits all occur), with spaces and symbols the table deletes."""
    source = data.draw(st.sampled_from(list(Source)))
    keys = checker._automata[source].keys
    folded = checker._folded_keys[source]
    pieces = st.one_of(st.sampled_from(keys), st.sampled_from(folded), st.sampled_from([" ", "·", "!", "🍬", "Ａ", "吗"]))
    text = "".join(data.draw(st.lists(pieces, max_size=8)))
    _resolved_both_ways(checker, source, text)

"""The delta build (delta.py, loader._delta_checker): after a rule change, the checker patched from
the last build's state is the checker a full build makes, structure by structure (up to the order
of keys, which follows string hashing in a full build too) and finding by finding."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livestream_compliance import delta, loader
from livestream_compliance.engine import Checker
from livestream_compliance.findings import Source
from livestream_compliance.matcher import _native

FIXTURE = Path(__file__).parent / "fixtures" / "rules" / "engine"


# --------------------------------------------------------------------------- comparing two checkers
def _trigger(t: Any) -> Any:
    if t is None:
        return None
    edges, pats = t
    return edges, tuple((p.pattern, w, r, g, a) for p, w, r, g, a in pats)


def canonical(ck: Checker) -> dict[Any, Any]:
    """Everything a build makes, keyed by key strings instead of key indexes; checks the folding
    groups' invariants on the way (one group per folded key, lowest index first, every key in the
    group of its folded form)."""
    out: dict[Any, Any] = {}
    index = ck.fold_index()
    for s in Source:
        a = ck._automata[s]
        assert len(set(a.keys)) == len(a.keys) == len(a.entries) == len(a.trigger_only)
        out[s, "entries"] = {k: tuple((e.kind, e.rule.id, e.pattern.pattern if e.pattern else None, e.width, e.reach, e.guard, e.anchored)
                                      for e in t) for k, t in zip(a.keys, a.entries)}
        assert all(out[s, "entries"].values())
        out[s, "trigger_only"] = {k: _trigger(t) for k, t in zip(a.keys, a.trigger_only)}
        out[s, "gap_only"] = {a.keys[i] for i in ck._gap_only[s]}
        prefilter, pats = ck._patterns[s]
        out[s, "patterns"] = (prefilter.pattern if prefilter else None, tuple((r.id, rx.pattern) for r, rx in pats))
        if index is not None:
            fkeys, (first, more), fentries = index[1][s]
            assert len(set(fkeys)) == len(fkeys) == len(first)
            groups = {}
            for fi, f in enumerate(fkeys):
                g = ([first[fi]] if first[fi] >= 0 else []) + list(more.get(fi, ()))
                assert g == sorted(g) and all(a.keys[k].translate(index[0]) == f for k in g)
                assert g or fi in fentries  # a folded key stands for keys, or for long terms alone
                groups[f] = sorted(a.keys[k] for k in g)
            assert sum(len(g) for g in groups.values()) == len(a.keys)
            out[s, "groups"] = groups
            out[s, "fold entries"] = {fkeys[fi]: tuple((r.id, key) for r, key in v) for fi, v in fentries.items()}
    out["term keys"] = set(ck._term_keys)
    out["fold table"] = index[0] if index is not None else None
    freq, total = ck.segmenter.dictionary()  # type: ignore[attr-defined]
    out["jieba"] = ({k: freq[k] for k in freq}, total)  # a dict, or a Lexicon (a state's or a delta build's)
    assert len(out["jieba"][0]) == len(freq)
    out["rules"] = ck.rules
    return out


TEXTS = [
    "这是全网最低价，赶紧下单", "加我薇信 abc123456 私聊", "打电话 13812345678 订购", "最好的东西", "不是最好的",
    "家人们这个真的是国家级的好东西", "qq 12345678 联系我", "这里没有违规的内容", "第一次来", "治愈率很高能降血压",
    "加V信领红包", "这款蜂蜜可以治玉糖尿病", "进群领券", "某某旗舰店卖得贵", "全网独家配方医院同款",
]


def _same(delta_built: Checker, full: Checker) -> None:
    a, b = canonical(delta_built), canonical(full)
    assert a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k], k
    texts = TEXTS + [e.text for r in full.rules.rules for e in (*r.must_match, *r.must_not_match)]
    for s in Source:
        assert [delta_built.check(t, s) for t in texts] == [full.check(t, s) for t in texts]
        assert delta_built.check_batch(texts, s) == full.check_batch(texts, s)


# --------------------------------------------------------------------------- scenarios
RULE = """
[[rules]]
id = "{id}"
category = "{cat}"
severity = "high"
sources = {sources}
terms = {terms}
{extra}
legal_basis = [{{ law = "中华人民共和国广告法", article = "第九条" }}]
message = "测试"
suggestion = "测试"
must_match = [{{ text = "这里{t0}呀", hit = "{t0}" }}, {{ text = "{t0}的", hit = "{t0}" }}]
must_not_match = ["无关的话", "今天天气好"]
"""


def _pack(rules: list[dict[str, Any]], pack_id: str = "delta-test") -> str:
    out = [f'[pack]\nid = "{pack_id}"\nversion = "1"\n']
    for r in rules:
        terms = r["terms"]
        out.append(RULE.format(id=r["id"], cat=r.get("cat", "test"), sources=r.get("sources", '["host", "chat"]'),
                               terms="[" + ", ".join(f'"{t}"' for t in terms) + "]", extra=r.get("extra", ""), t0=terms[0]))
    return "".join(out)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records how each build went: 'delta' (patched), 'unpatchable: why' (then built in full)."""
    seen: list[str] = []
    real = loader._delta_checker

    def spy(*a: Any, **k: Any) -> Any:
        try:
            got = real(*a, **k)
        except delta.Unpatchable as e:
            seen.append(f"unpatchable: {e}")
            raise
        seen.append("delta")
        return got

    monkeypatch.setattr(loader, "_delta_checker", spy)
    return seen


BASE = [
    {"id": "D-CLAIM", "terms": ["销量冠军", "全网独家配方", "医院同款"], "extra": 'exceptions = ["不是医院同款"]'},
    {"id": "D-RIVAL", "terms": ["某某旗舰店", "隔壁直播间"], "sources": '["chat"]'},
    {"id": "D-GROUP", "terms": ["粉丝群号"], "extra": "patterns = ['进群(?:领|拿)(?:券|红包)', '(?<![0-9])[0-9]{5}号']"},
]

EDITS: list[tuple[str, list[dict[str, Any]]]] = [
    ("a term added, one shared with the fixture", [{**BASE[0], "terms": ["销量冠军", "全网独家配方", "医院同款", "最好", "加微信"]}, *BASE[1:]]),
    ("a rule removed", [BASE[0], BASE[2]]),
    ("a rule added", [*BASE, {"id": "D-NEW", "terms": ["包治百病", "祖传秘方"], "extra": 'exceptions = ["不是祖传秘方"]'}]),
    ("patterns changed, a one-character trigger", [BASE[0], BASE[1], {**BASE[2], "extra": "patterns = ['薇.{0,2}信', '进群领(?:券|红包)']"}]),
    ("sources changed", [{**BASE[0], "sources": '["chat"]'}, *BASE[1:]]),
    ("a fixture rule overridden", [*BASE, {"id": "T-ABS", "terms": ["覆盖测试词", "最好"], "sources": '["host"]'}]),
    # 治玉 is a homophone spelling of the fixture's 治愈; taught as a term it is a word, and a word is
    # never taken for an evasion: T-MED's spellings change although T-MED did not
    ("a term that is another rule's homophone spelling", [*BASE, {"id": "D-WORD", "terms": ["治玉", "降雪压"]}]),
    ("homophones off", [{**BASE[0], "extra": 'exceptions = ["不是医院同款"]\nhomophones = false'}, *BASE[1:]]),
    ("back to the start", BASE),
]


def _tree(tmp: Path) -> tuple[Path, Path, Path]:
    """A copy of the fixture pack, an empty directory for the edited pack, and a cache path."""
    fixture, pack = tmp / "fixture", tmp / "pack"
    shutil.copytree(FIXTURE, fixture)
    pack.mkdir()
    return fixture, pack, tmp / "cache"


def _load(dirs: list[Path], cache: Path | None, prebuilt: Path | None = None) -> Checker:
    return loader.load_checker(dirs, defaults=False, cache_dir=cache, prebuilt=prebuilt, save="now", model=False)


def test_each_edit_patched_equals_a_full_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture, pack, cache = _tree(tmp_path)
    (pack / "p.toml").write_text(_pack(BASE), encoding="utf-8")
    _load([fixture, pack], cache)
    seen = _spy(monkeypatch)
    for name, rules in EDITS:
        (pack / "p.toml").write_text(_pack(rules), encoding="utf-8")
        seen.clear()
        patched = _load([fixture, pack], cache)
        assert seen == ["delta"], name
        _same(patched, _load([fixture, pack], None))


def test_the_state_keeps_the_near_syllable_table_and_an_older_state_still_patches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delta build reads the near-syllable table from its base state instead of making it; a state
    written before the state kept it (no "near") is patched all the same."""
    from livestream_compliance.tables import near_folds

    fixture, pack, cache = _tree(tmp_path)
    (pack / "p.toml").write_text(_pack(BASE), encoding="utf-8")
    _load([fixture, pack], cache)
    states = list(cache.glob("*.state"))
    assert len(states) == 1
    state = loader._read_state(str(cache), None, path=str(states[0]), env=loader._env_key())
    assert state is not None and state["near"] == near_folds()
    made: list[str] = []  # the functions that made the table (the state's writer makes it too)

    def counted() -> dict[str, str]:
        made.append(sys._getframe(1).f_code.co_name)
        return near_folds()

    monkeypatch.setattr(loader, "near_folds", counted)
    seen = _spy(monkeypatch)
    (pack / "p.toml").write_text(_pack(EDITS[0][1]), encoding="utf-8")
    patched = _load([fixture, pack], cache)
    assert seen == ["delta"] and "_delta_checker" not in made  # read from the state
    _same(patched, _load([fixture, pack], None))
    # the same edit on a base without the table: made, and patched alike
    real_read = loader._read_state

    def without_near(*a: Any, **k: Any) -> Any:
        got = real_read(*a, **k)
        if got is not None:
            got.pop("near", None)
        return got

    monkeypatch.setattr(loader, "_read_state", without_near)
    (pack / "p.toml").write_text(_pack(EDITS[2][1]), encoding="utf-8")
    seen.clear()
    patched = _load([fixture, pack], cache)
    assert seen == ["delta"] and "_delta_checker" in made
    _same(patched, _load([fixture, pack], None))


def test_a_custom_pack_on_the_prebuilt_state_is_patched_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first start with a custom pack on an install: the install's prebuilt state is the base."""
    from livestream_compliance import prebuild

    fixture, pack, cache = _tree(tmp_path)
    pre = tmp_path / "prebuilt"
    prebuild.write_prebuilt(pre, [fixture], defaults=False)
    (pack / "p.toml").write_text(_pack(BASE), encoding="utf-8")
    seen = _spy(monkeypatch)
    patched = _load([fixture, pack], cache, prebuilt=pre)
    assert seen == ["delta"]
    _same(patched, _load([fixture, pack], None))
    # the patched build's state serves the next start as it is
    monkeypatch.setattr(loader, "build_rule_set", lambda *a, **k: pytest.fail("rules parsed on a warm start"))
    _same(_load([fixture, pack], cache, prebuilt=pre), patched)


def test_a_file_removed_and_an_invalid_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from livestream_compliance.errors import RuleError

    fixture, pack, cache = _tree(tmp_path)
    (pack / "p.toml").write_text(_pack(BASE[:1]), encoding="utf-8")
    (pack / "q.toml").write_text(_pack(BASE[1:], "delta-test-2"), encoding="utf-8")
    _load([fixture, pack], cache)
    seen = _spy(monkeypatch)
    (pack / "q.toml").unlink()
    _same(_load([fixture, pack], cache), _load([fixture, pack], None))
    assert seen == ["delta"]
    # an invalid rule is reported as a full build reports it, naming file, rule and field
    (pack / "p.toml").write_text(_pack(BASE[:1]).replace('severity = "high"', 'severity = "loud"'), encoding="utf-8")
    with pytest.raises(RuleError, match=r"p\.toml.*D-CLAIM.*severity"):
        _load([fixture, pack], cache)


def test_too_many_changes_build_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture, pack, cache = _tree(tmp_path)
    (pack / "p.toml").write_text(_pack(BASE[:1]), encoding="utf-8")
    _load([fixture, pack], cache)
    seen = _spy(monkeypatch)
    many = [{"id": f"D-{i}", "terms": [f"测试词{chr(0x4E00 + i)}"]} for i in range(delta.ALWAYS_PATCHED + 1)]
    (pack / "p.toml").write_text(_pack(many), encoding="utf-8")
    built = _load([fixture, pack], cache)
    assert seen == ["unpatchable: too many rules changed"]
    _same(built, _load([fixture, pack], None))


# --------------------------------------------------------------------------- random edits
_TERMS = ["最好", "第一", "微信", "治愈", "降血压", "全网最低价", "加我微信", "国家级", "私聊", "包过", "稳赚不赔",
          "祖传秘方", "纯天然", "特供", "顶级", "首选", "进口", "医院同款", "零风险", "无效退款", "加V", "vx号"]
_PATTERNS = ["'(?<![0-9])1[3-9][0-9]{9}(?![0-9])'", "'薇.{0,2}信'", "'[0-9]{3}号'", "'进群(?:领|拿)券'", "'(?:q|Q){2}[0-9]{5,}'"]


@st.composite
def _rule_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    rules = []
    for i in range(draw(st.integers(1, 4))):
        terms = draw(st.lists(st.sampled_from(_TERMS), min_size=1, max_size=4, unique=True))
        extra = []
        if draw(st.booleans()):
            extra.append("patterns = [" + ", ".join(draw(st.lists(st.sampled_from(_PATTERNS), min_size=1, max_size=2, unique=True))) + "]")
        if draw(st.booleans()):
            extra.append(f'exceptions = ["不是{terms[0]}"]')
        if draw(st.booleans()):
            extra.append("homophones = false")
        if draw(st.booleans()):
            extra.append("aliases = false")
        rules.append({"id": draw(st.sampled_from(["R-A", "R-B", "R-C", "R-D", "T-ABS", "T-DIV"])) + f"-{i}" if i else
                      draw(st.sampled_from(["R-A", "T-ABS", "T-MED"])), "terms": terms,
                      "sources": draw(st.sampled_from(['["host"]', '["chat"]', '["host", "chat"]'])), "extra": "\n".join(extra)})
    return rules


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(before=_rule_sets(), after=_rule_sets())
def test_random_edits_patched_equal_a_full_build(tmp_path_factory: pytest.TempPathFactory, before: list[dict[str, Any]],
                                                 after: list[dict[str, Any]]) -> None:
    tmp = tmp_path_factory.mktemp("delta")
    fixture, pack, cache = _tree(tmp)
    (pack / "p.toml").write_text(_pack(before), encoding="utf-8")
    _load([fixture, pack], cache)
    (pack / "p.toml").write_text(_pack(after), encoding="utf-8")
    _same(_load([fixture, pack], cache), _load([fixture, pack], None))


# --------------------------------------------------------------------------- the pieces
def test_the_state_keeps_the_untaught_dictionary_and_what_teaching_set() -> None:
    """A taught dictionary goes into a state as its base and the entries teaching set; read back
    (as the packed Lexicon, or a dict without the extension) it is the taught dictionary."""
    from livestream_compliance.verify import JiebaSegmenter

    base = loader._jieba_base_dictionary(None)
    assert base is not None
    seg = JiebaSegmenter(["加我微信", "治玉", "全网最低价"], ["第一次", "不是最好"], dictionary=(dict(base[0]), base[1]))
    taught, total = seg.dictionary()
    packed, overlay = loader._jieba_state(taught, total, seg.undo)
    assert packed is not None and overlay is not None
    import marshal

    words, counts, base_total = marshal.loads(packed)
    assert base_total == base[1] and dict(zip(words.split("\n"), __import__("array").array("q", counts))) == base[0]
    freq, got_total, got_base = loader._taught_dictionary({"jieba": packed, "jieba_taught": overlay})  # type: ignore[misc]
    assert (got_total, got_base) == (total, base[1])
    assert len(freq) == len(taught) and all(freq[k] == v for k, v in taught.items())
    # a Lexicon-taught segmenter (a delta build's) goes into a state the same way
    if _native is not None:
        lex = _native.Lexicon(words, counts)
        seg2 = JiebaSegmenter(["加我微信", "治玉", "全网最低价"], ["第一次", "不是最好"], dictionary=(lex, base[1]))  # type: ignore[arg-type]
        assert seg2.dictionary()[1] == total and all(lex[k] == v for k, v in taught.items()) and len(lex) == len(taught)
        packed2, overlay2 = loader._jieba_state(lex, total, seg2.undo)
        assert marshal.loads(packed2) == (words, counts, base[1])  # type: ignore[arg-type]
        assert {k: v for k, v in overlay2[0].items() if base[0].get(k) != v} == overlay[0]  # type: ignore[index]


@pytest.mark.skipif(_native is None, reason="the C extension was not built")
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text("ab好的\u4e00\U0001F600", min_size=1, max_size=4), st.integers(0, 2**40), max_size=30),
       st.dictionaries(st.text("ab好的c", min_size=1, max_size=4), st.integers(0, 2**40), max_size=10),
       st.lists(st.text("ab好的c\u4e00", max_size=4), max_size=20))
def test_lexicon_is_the_dict_it_packs(base: dict[str, int], later: dict[str, int], probes: list[str]) -> None:
    from array import array

    lex = _native.Lexicon("\n".join(base), array("q", base.values()).tobytes()) if base else _native.Lexicon("", b"")
    d = dict(base)
    for k, v in later.items():
        lex[k] = v
        d[k] = v
    assert len(lex) == len(d) and sorted(lex) == sorted(d)
    for w in [*d, *probes]:
        assert lex.get(w) == d.get(w) and (w in lex) == (w in d) and lex.get(w, -1) == d.get(w, -1)
        assert lex.base_get(w) == base.get(w)
    assert lex.overlay() == later
    import copy
    import pickle

    for twin in (pickle.loads(pickle.dumps(lex)), copy.deepcopy(lex)):
        assert type(twin) is type(lex) and twin.overlay() == later and {k: twin[k] for k in twin} == d
    with pytest.raises(KeyError):
        lex["\x00never"]
    with pytest.raises(TypeError):
        lex[1] = 2  # type: ignore[index]


@pytest.mark.skipif(_native is None, reason="the C extension was not built")
def test_lexicon_of_a_repeated_word_keeps_the_last_as_a_dict_does() -> None:
    from array import array

    lex = _native.Lexicon("好\n好的\n好", array("q", [1, 2, 3]).tobytes())
    assert len(lex) == 2 and lex["好"] == 3 and sorted(lex) == ["好", "好的"]
    lex["好"] = 9
    lex["新"] = 1
    assert len(lex) == 3 and lex["好"] == 9 and lex.base_get("好") == 3 and sorted(lex) == ["好", "好的", "新"]
    for bad in ((1, b""), ("a", b"123"), ("a\nb", array("q", [1]).tobytes())):
        with pytest.raises((TypeError, ValueError)):
            _native.Lexicon(*bad)
    with pytest.raises(TypeError):
        del lex["好"]
    with pytest.raises(ValueError, match="not initialised"):
        _native.Lexicon.__new__(_native.Lexicon).packed()


@pytest.mark.skipif(_native is None, reason="the C extension was not built")
def test_jieba_segments_the_same_on_a_lexicon_and_on_a_dict() -> None:
    from array import array

    from livestream_compliance.verify import _jieba_spans

    base = loader._jieba_base_dictionary(None)
    assert base is not None and _jieba_spans is not None
    freq, total = base
    lex = _native.Lexicon("\n".join(freq), array("q", freq.values()).tobytes())
    lines = [*TEXTS, "家人们这个真的是国家级的好东西全网最低价", "今天给大家带来的是纯天然无添加的蜂蜜", "ab12 加v 私聊我"]
    for line in lines:
        assert _jieba_spans(line, lex, total) == _jieba_spans(line, freq, total)


@pytest.mark.skipif(_native is None, reason="the C extension was not built")
@settings(max_examples=200, deadline=None)
@given(st.lists(st.text("ab好的\n", max_size=4), max_size=20), st.lists(st.text("ab好的", max_size=4), max_size=8),
       st.lists(st.integers(0, 10), max_size=30))
def test_select_is_its_python_loop(keys: list[str], wanted: list[str], picks: list[int]) -> None:
    entries = [(i,) for i in range(len(keys))]
    objects = [entries[i] for i in picks if i < len(entries)]
    ids = {id(o) for o in objects}
    assert _native.select(keys, set(wanted), entries, objects) == [
        i for i, (k, t) in enumerate(zip(keys, entries)) if id(t) in ids or k in set(wanted)]
    assert _native.select(keys, dict.fromkeys(wanted), None, []) == [i for i, k in enumerate(keys) if k in set(wanted)]

"""The normaliser: evasions fold to the canonical form and offsets map back exactly."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance.normalize import VECTOR_MIN_CHARS, Normalizer, VectorTable, offset_map, to_original_span
from livestream_compliance.tables import traditional_to_simplified

NORM = Normalizer.build(traditional_to_simplified())

# text that looks like what evaders write: CJK, Latin, digits, noise, emoji, zero-width
_alphabet = st.sampled_from(
    list("最好佳国家级微信薇加私聊第一次全网低價國級發髮")
    + list("abcVXvxQq019１３８ＶＸＡ")
    + list(" \u3000\t#*❤️✨👉😀\u200b\u200d\ufeff，。！？、…—·【】()%+.@①②⑧壹贰〇")
    + list("🐘🍬🐧👍🅱🈚🇻🇽㊙⃣")
)
evasive_text = st.text(alphabet=_alphabet, max_size=60)
any_text = st.text(max_size=80)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("国 家 级", "国家级"),
        ("最#佳", "最佳"),
        ("加❤V", "加v"),
        ("ＶＸ１３８", "vx138"),
        ("國家級", "国家级"),
        ("最\u200b好", "最好"),
        ("加😀微😀信", "加微信"),
        ("①③⑧", "138"),
        ("壹叁捌", "138"),
        ("wei xin", "weixin"),
        ("100%纯棉", "100%纯棉"),
        ("+V", "+v"),
        ("最佳！！！", "最佳\u2029\u2029\u2029"),
        ("私聊。我", "私聊\u2029我"),
        ("加,微,信", "加微信"),
        ("【限时】", "限时"),
        ("No.1", "no1"),
        ("ⓥⓧ", "vx"),
        ("𝓋信", "v信"),
        ("𝐕𝐗 𝟏𝟑𝟖", "vx138"),
        # letter symbols and enclosed ideographs are letters and characters in the main table
        ("傻🅱️", "傻b"),
        ("Ⓑⓑ🄱🅑", "bbbb"),
        ("🈚效退款", "无效退款"),
        ("㊙方", "秘方"),
        # pictographs stay deleted in the main table (decoration: 电🚬子烟); see the rebus view
        ("电🚬子烟", "电子烟"),
        ("🐘牙", "牙"),
        ("第1️⃣", "第1"),
    ],
)
def test_evasions_fold(raw: str, expected: str) -> None:
    assert NORM.normalize(raw) == expected


def test_every_mapping_is_one_to_one_or_deletion() -> None:
    for src, dst in NORM.mapping.items():
        assert dst is None or isinstance(dst, int), (chr(src), dst)
        assert NORM.table[src] == dst
    assert NORM.table[ord("好")] == ord("好")


@given(evasive_text | any_text)
@settings(max_examples=400)
def test_offset_map_points_at_the_source_character(text: str) -> None:
    norm = NORM.normalize(text)
    positions = offset_map(text, NORM.mapping)
    assert len(positions) == len(norm) + 1
    assert positions[-1] == len(text)
    assert positions[:-1] == sorted(set(positions[:-1]))  # strictly increasing
    for i, ch in enumerate(norm):
        assert NORM.normalize(text[positions[i]]) == ch


@given(evasive_text | any_text, st.data())
@settings(max_examples=400)
def test_any_normalised_span_maps_back_to_an_original_span_with_the_same_content(text: str, data) -> None:
    norm = NORM.normalize(text)
    if not norm:
        return
    s = data.draw(st.integers(0, len(norm) - 1))
    e = data.draw(st.integers(s + 1, len(norm)))
    positions = offset_map(text, NORM.mapping)
    os_, oe = to_original_span(s, e, positions)
    assert 0 <= os_ < oe <= len(text)
    assert NORM.normalize(text[os_:oe]) == norm[s:e]
    # the original span starts and ends on characters that survive normalisation
    assert NORM.normalize(text[os_]) == norm[s] and NORM.normalize(text[oe - 1]) == norm[e - 1]


def test_identity_when_nothing_is_deleted() -> None:
    text = "这款面膜是全网最好的"
    assert to_original_span(7, 9, None) == (7, 9)
    assert offset_map(text, NORM.mapping)[:-1] == list(range(len(text)))


def test_traditional_table_is_single_characters() -> None:
    table = traditional_to_simplified()
    assert table["國"] == "国" and table["發"] == "发" and table["髮"] == "发"
    assert all(len(k) == 1 and len(v) == 1 for k, v in table.items())
    assert len(table) > 2000


VECTOR = VectorTable(NORM.batch_table("\n"))


@given(st.text(alphabet=st.characters(), max_size=300) | evasive_text)
@settings(max_examples=500, deadline=None)
def test_vector_table_equals_str_translate(text: str) -> None:
    # any code point: astral, beyond the table, lone surrogates, the separator
    table = NORM.batch_table("\n")
    assert VECTOR.translate(text) == text.translate(table)
    long = "\n".join([text] * (VECTOR_MIN_CHARS // (len(text) + 1) + 1))
    assert VECTOR.translate(long) == long.translate(table)


def test_vector_table_edges() -> None:
    table = NORM.batch_table("\n")
    for text in ["", "\n", "\ud800", "𝐕𝐗\U0010ffff\U000e0041", "國 家 級！\n加❤V", "a" * 5000]:
        assert VECTOR.translate(text) == text.translate(table)


REBUS_MAPPING, REBUS_TABLE = NORM.rebus_view()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("🐘牙", "象牙"), ("降血🍬", "降血糖"), ("🐧号", "q号"), ("最👍", "最好"), ("🇻🇽", "vx"), ("加❤V", "加v"), ("加😀微信", "加微信")],
)
def test_rebus_view(raw: str, expected: str) -> None:
    assert raw.translate(REBUS_TABLE) == expected


def test_rebus_view_is_one_to_one_and_the_main_table_deletes_it() -> None:
    assert NORM.rebus and all(NORM.table[cp] is None for cp in NORM.rebus)
    assert all(isinstance(v, int) and REBUS_TABLE[cp] == v for cp, v in NORM.rebus.items())
    assert Normalizer.from_mapping(NORM.mapping, NORM.rebus).rebus_view()[1] == REBUS_TABLE


@given(evasive_text | any_text, st.data())
@settings(max_examples=300)
def test_rebus_view_spans_map_back_exactly(text: str, data) -> None:
    norm = text.translate(REBUS_TABLE)
    positions = offset_map(text, REBUS_MAPPING)
    assert len(positions) == len(norm) + 1
    if not norm:
        return
    s = data.draw(st.integers(0, len(norm) - 1))
    e = data.draw(st.integers(s + 1, len(norm)))
    os_, oe = to_original_span(s, e, positions)
    assert text[os_:oe].translate(REBUS_TABLE) == norm[s:e]

REBUS_MARKS = VECTOR.marks(NORM.rebus)


@given(st.text(alphabet=st.characters(), max_size=200) | evasive_text)
@settings(max_examples=300, deadline=None)
def test_vector_positions_find_marked_characters(text: str) -> None:
    # the batch path finds rebus emoji with one vectorised lookup: same positions as a scan
    expected = [i for i, ch in enumerate(text) if ord(ch) in NORM.rebus]
    assert VECTOR.positions(VECTOR.codes(text), REBUS_MARKS) == expected
    assert VECTOR.apply(VECTOR.codes(text)) == VECTOR.translate(text)


@given(st.text(max_size=60))
@settings(max_examples=500)
def test_the_c_table_keeps_what_offset_map_keeps(text: str) -> None:
    """Table.kept (the engine's offset map with the C extension) is offset_map for the mapping the
    table was made from, on any text (deleted symbols, emoji, astral and lone surrogate code points)."""
    native = pytest.importorskip("livestream_compliance._native")
    norm = Normalizer.build()
    table = native.Table(norm.table)
    assert table.kept(text) == offset_map(text, norm.mapping)
    assert table.kept(text + "，★ 🍬\u3000") == offset_map(text + "，★ 🍬\u3000", norm.mapping)

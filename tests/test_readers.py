"""Tests for livestream_compliance.readers: decoding, format detection and parsing of inputs."""

from __future__ import annotations

import codecs
import io
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from livestream_compliance import readers
from livestream_compliance.errors import InputError, UsageError
from livestream_compliance.findings import Source
from livestream_compliance.readers import (
    Utterance,
    decode_bytes,
    detect_format,
    parse_text,
    read_path,
)

FIXTURES = Path(__file__).parent / "fixtures" / "inputs"


def fx(name: str) -> str:
    return str(FIXTURES / name)


def lines_and_texts(utterances: list[Utterance]) -> list[tuple[int, str]]:
    return [(u.line, u.text) for u in utterances]


# --------------------------------------------------------------------------------------------
# txt and encodings
# --------------------------------------------------------------------------------------------


def test_utf8_txt_keeps_text_verbatim_and_counts_blank_lines():
    got = read_path(fx("utf8.txt"))
    assert got == [
        Utterance(1, "家人们晚上好，今天第一次来直播间的宝宝点个关注"),
        Utterance(3, "这款面膜是全网最好的，用了马上美白"),
        Utterance(5, "  有问题的加我微信私聊  "),
        Utterance(6, "最后三单，错过就没有了！"),
    ]
    assert all(u.start is None and u.source is None for u in got)


def test_utf8_bom_txt_strips_bom():
    assert FIXTURES.joinpath("utf8_bom.txt").read_bytes().startswith(codecs.BOM_UTF8)
    got = read_path(fx("utf8_bom.txt"))
    assert lines_and_texts(got) == [(1, "主播说原价999，今天只要99"), (2, "限时秒杀，不买就亏了")]
    assert not got[0].text.startswith("\ufeff")


def test_gbk_txt():
    data = FIXTURES.joinpath("gbk.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the fixture really is not UTF-8
    got = read_path(fx("gbk.txt"))
    assert lines_and_texts(got) == [(1, "这款保健品能治失眠，吃了就好"), (3, "买二送一，全网最低价")]


def test_gb18030_txt_with_characters_outside_gbk():
    data = FIXTURES.joinpath("gb18030.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    with pytest.raises(UnicodeDecodeError):
        data.decode("gbk")  # 🔥 and 𠮷 need GB18030's four-byte sequences
    got = read_path(fx("gb18030.txt"))
    assert lines_and_texts(got) == [(1, "今晚福利🔥直播间专享价"), (2, "𠮷祥如意，家人们冲")]


@pytest.mark.parametrize("name", ["utf16le_bom.txt", "utf16be_bom.txt"])
def test_utf16_with_bom_and_crlf(name):
    got = read_path(fx(name))
    assert lines_and_texts(got) == [(1, "宝宝们扣1上链接"), (2, "这款口红是国家级品质")]


def test_undecodable_file_names_file_and_line():
    with pytest.raises(InputError) as ei:
        read_path(fx("undecodable.txt"))
    err = ei.value
    assert "cannot decode as UTF-8 or GB18030" in str(err)
    assert err.file == fx("undecodable.txt")
    assert err.line == 2
    assert fx("undecodable.txt") in str(err)


def test_decode_bytes_rejects_bytes_invalid_in_both_encodings():
    with pytest.raises(InputError, match="cannot decode as UTF-8 or GB18030") as ei:
        decode_bytes(b"\x80\x80\xff", "bad.txt")
    assert ei.value.file == "bad.txt"
    assert ei.value.line == 1


def test_decode_bytes_normalises_newlines_and_strips_bom():
    assert decode_bytes("直播\r\n间\r加微信\n".encode(), "x") == "直播\n间\n加微信\n"
    assert decode_bytes(codecs.BOM_UTF8 + "下单".encode(), "x") == "下单"
    assert decode_bytes("\ufeff下单".encode("gb18030"), "x") == "下单"
    assert decode_bytes(b"", "x") == ""


def test_decode_bytes_prefers_utf8():
    assert decode_bytes("全网最低价".encode("utf-8"), "x") == "全网最低价"


def test_decode_bytes_bom_declares_encoding():
    with pytest.raises(InputError, match="UTF-8"):
        decode_bytes(codecs.BOM_UTF8 + "面膜".encode("gbk"), "x.txt")
    with pytest.raises(InputError, match="UTF-16"):
        decode_bytes(codecs.BOM_UTF16_LE + "面膜".encode("utf-16-le")[:-1], "x.txt")
    with pytest.raises(InputError, match="UTF-32"):
        decode_bytes(codecs.BOM_UTF32_LE + "面膜".encode("utf-32-le"), "x.txt")


# --------------------------------------------------------------------------------------------
# srt
# --------------------------------------------------------------------------------------------


def test_srt_multiline_cues_crlf():
    assert b"\r\n" in FIXTURES.joinpath("cues_crlf.srt").read_bytes()
    got = read_path(fx("cues_crlf.srt"))
    assert [(u.line, u.text, u.start, u.end) for u in got] == [
        (3, "家人们晚上好，欢迎来到直播间", "00:00:01.000", "00:00:04.500"),
        (4, "今天第一次来的宝宝点个关注", "00:00:01.000", "00:00:04.500"),
        (8, "这款面膜是全网最好的", "00:00:05.250", "00:00:08.000"),
        (12, "用了三天就能美白", "00:01:02.003", "00:01:05.040"),
        (13, "不好用全额退款", "00:01:02.003", "00:01:05.040"),
        (14, "再送你一盒", "00:01:02.003", "00:01:05.040"),
        (18, "有问题加我微信私聊", "01:02:03.400", "01:02:06.000"),
    ]
    assert all(u.source is None for u in got)


def test_srt_malformed_timing_line():
    with pytest.raises(InputError) as ei:
        read_path(fx("malformed_timing.srt"))
    assert ei.value.file == fx("malformed_timing.srt")
    assert ei.value.line == 6
    assert "timing" in str(ei.value)


def test_srt_tolerates_missing_blank_line_and_stray_text():
    text = (
        "1\n00:00:01,000 --> 00:00:02,000\n这款面膜\n"
        "2\n00:00:03,000 --> 00:00:04,000\n全网最好\n\n还送小样\n"
        "\n\n3\n\n00:00:05,1-->00:00:06,25\n加我微信\n"
    )
    got = list(parse_text(text, "srt", "t.srt"))
    assert [(u.line, u.text, u.start, u.end) for u in got] == [
        (3, "这款面膜", "00:00:01.000", "00:00:02.000"),
        (6, "全网最好", "00:00:03.000", "00:00:04.000"),
        (8, "还送小样", "00:00:03.000", "00:00:04.000"),
        (14, "加我微信", "00:00:05.100", "00:00:06.250"),
    ]


def test_srt_cue_without_text_and_timing_without_millis():
    text = "\n1\n00:00:01 --> 00:00:02,000\n\n2\n00:00:03 --> 00:00:04\n加我微信\n"
    got = list(parse_text(text, "srt", "t.srt"))
    assert [(u.line, u.text, u.start, u.end) for u in got] == [
        (7, "加我微信", "00:00:03.000", "00:00:04.000")
    ]


@pytest.mark.parametrize(
    "text, line",
    [
        ("这款面膜是全网最好的\n", 1),
        ("1\n00:00:01,000 -> 00:00:02,000\n下单\n", 2),
        ("1\n这款面膜是全网最好的\n", 2),
        ("\n\n1\n\n", 3),
        ("1\n00:61:01,000 --> 00:62:02,000\n下单\n", 2),
        ("1\n00:00:01,000 --> 00:00:02,000\n下单\n\n2\n开始 --> 结束\n", 6),
    ],
)
def test_srt_errors(text, line):
    with pytest.raises(InputError) as ei:
        list(parse_text(text, "srt", "t.srt"))
    assert (ei.value.file, ei.value.line) == ("t.srt", line)


# --------------------------------------------------------------------------------------------
# vtt
# --------------------------------------------------------------------------------------------


def test_vtt_header_notes_styles_and_cue_ids():
    got = read_path(fx("live.vtt"))
    assert [(u.line, u.text, u.start, u.end) for u in got] == [
        (13, "<v 主播>家人们，今天第一次来直播间的扣1", "00:00:05.000", "00:00:08.250"),
        (16, "这款精华是全网最好的", "00:00:09.000", "00:00:12.500"),
        (17, "<c.red>国家级</c>品质，假一赔十", "00:00:09.000", "00:00:12.500"),
        (23, "私聊主播领优惠券", "01:00:00.000", "01:00:03.000"),
    ]


def test_vtt_offsets_index_the_file_line():
    raw = FIXTURES.joinpath("live.vtt").read_text(encoding="utf-8").split("\n")
    for u in read_path(fx("live.vtt")):
        assert raw[u.line - 1] == u.text


@pytest.mark.parametrize(
    "text, line",
    [
        ("00:01.000 --> 00:02.000\n直播间\n", 1),  # no header
        ("WEBVTTX\n\n00:01.000 --> 00:02.000\n直播间\n", 1),
        ("WEBVTT\n\n00:01.000 --> 00:0x.000\n直播间\n", 3),
        ("WEBVTT\n\nid\n00:01.000 --> 2\n直播间\n", 4),
        ("WEBVTT\n\n这款面膜最好\n", 3),  # text before any cue
    ],
)
def test_vtt_errors(text, line):
    with pytest.raises(InputError) as ei:
        list(parse_text(text, "vtt", "t.vtt"))
    assert (ei.value.file, ei.value.line) == ("t.vtt", line)


def test_vtt_block_without_timing_after_a_cue_is_kept():
    text = "WEBVTT\n\n00:01.000 --> 00:02.000\n第一次来\n\n加我微信\n"
    got = list(parse_text(text, "vtt", "t.vtt"))
    assert [(u.line, u.text, u.start) for u in got] == [
        (4, "第一次来", "00:00:01.000"),
        (6, "加我微信", "00:00:01.000"),
    ]


# --------------------------------------------------------------------------------------------
# jsonl
# --------------------------------------------------------------------------------------------


def test_jsonl_field_aliases():
    got = read_path(fx("chat.jsonl"))
    H, C = Source.HOST, Source.CHAT
    assert got == [
        Utterance(1, "主播这款面膜真的全网最好吗", start="2024-05-01T20:00:01", source=C,
                  user="小鹿", product="美妆"),
        Utterance(2, "家人们今天全场五折", start="1714564802", source=H),
        Utterance(4, "加我微信送小样", start="1714564803.5", source=C, user="路人甲"),
        Utterance(5, "第一次来直播间", source=C, user="10086"),
        Utterance(6, "这款保健品能治高血压", source=H, user="u_42", product="保健食品"),
        Utterance(7, "老铁们冲", source=H),
        Utterance(8, "上链接", source=H),
        Utterance(9, "已下单", source=C, user="星星"),
        Utterance(10, "多少钱", source=C),
        # line 11 has whitespace-only text: skipped
        Utterance(12, "买它", source=H),  # "source" wins over "role"
        Utterance(13, "限时秒杀"),  # "text" wins over "content"
    ]
    assert all(u.end is None for u in got)


def test_jsonl_malformed_line():
    with pytest.raises(InputError) as ei:
        read_path(fx("bad_json.jsonl"))
    assert ei.value.file == fx("bad_json.jsonl")
    assert ei.value.line == 3
    assert "invalid JSON" in str(ei.value)
    assert f"{fx('bad_json.jsonl')}:3:" in str(ei.value)


@pytest.mark.parametrize(
    "record, fragment",
    [
        ('["这款面膜是全网最好的"]', "JSON object"),
        ('"加我微信"', "JSON object"),
        ('{"source": "host"}', "no text field"),
        ('{"text": null, "user": "小鹿"}', "no text field"),
        ('{"text": 123}', "must be a string"),
        ('{"msg": ["第一次来"]}', "must be a string"),
        ('{"text": "下单", "source": "robot"}', "unknown source"),
        ('{"text": "下单", "role": 1}', "must be a string"),
        ('{"text": "下单", "user": {"name": "小鹿"}}', "string or number"),
        ('{"text": "下单", "ts": true}', "string or number"),
        ("{'text': '下单'}", "invalid JSON"),
    ],
)
def test_jsonl_record_errors(record, fragment):
    text = '{"text": "今天第一次来直播间"}\n\n' + record + "\n"
    with pytest.raises(InputError, match=fragment) as ei:
        list(parse_text(text, "jsonl", "chat.jsonl"))
    assert (ei.value.file, ei.value.line) == ("chat.jsonl", 3)


# --------------------------------------------------------------------------------------------
# detection, stdin, files
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("a.txt", "WEBVTT\n", "txt"),
        ("a.SRT", "", "srt"),
        ("a.Vtt", "", "vtt"),
        ("a.jsonl", "", "jsonl"),
        ("a.ndjson", "", "jsonl"),
        ("-", "WEBVTT\n\n00:01.000 --> 00:02.000\n下单\n", "vtt"),
        ("-", "WEBVTT - 直播回放\n", "vtt"),
        ("-", "\ufeffWEBVTT", "vtt"),
        ("-", "WEBVTTX\n", "txt"),
        ("chat.log", '\n\n  {"text": "加我微信"}\n', "jsonl"),
        ("replay", "\n12\r\n00:00:01,000 --> 00:00:02,000\r\n下单\r\n", "srt"),
        ("replay", "00:00:01,000 --> 00:00:02,000\n下单\n", "srt"),
        ("notes", "1\n这款面膜是全网最好的\n", "txt"),
        ("notes", "这款面膜是全网最好的\n", "txt"),
        ("", "", "txt"),
    ],
)
def test_detect_format(name, text, expected):
    assert detect_format(name, text) == expected


def test_sniffing_files_without_extension():
    srt = read_path(fx("replay_subtitles"))
    assert [(u.line, u.text, u.start, u.end) for u in srt] == [
        (3, "全网最低价，就在今天", "00:00:01.000", "00:00:02.000")
    ]
    chat = read_path(fx("danmu_log"))
    assert chat == [Utterance(2, "主播加我微信", source=Source.CHAT)]
    vtt = read_path(fx("live_captions"))
    assert [(u.line, u.text, u.start) for u in vtt] == [(4, "今天第一次来直播间", "00:00:01.000")]
    notes = read_path(fx("host_notes"))  # GBK, digit line not followed by a timing line
    assert lines_and_texts(notes) == [(1, "1"), (2, "这款面膜是全网最好的")]


def test_explicit_format_overrides_detection():
    got = read_path(fx("replay_subtitles"), fmt="txt")
    assert lines_and_texts(got) == [
        (1, "1"),
        (2, "00:00:01,000 --> 00:00:02,000"),
        (3, "全网最低价，就在今天"),
    ]
    with pytest.raises(UsageError):
        read_path(fx("utf8.txt"), fmt="docx")
    with pytest.raises(UsageError):
        parse_text("", "docx", "x")


def test_stdin_bytes_are_decoded_and_sniffed():
    data = '{"content": "这款面膜是全网最好的", "role": "主播"}\n'.encode("gbk")
    got = read_path("-", stdin=io.BytesIO(data))
    assert got == [Utterance(1, "这款面膜是全网最好的", source=Source.HOST)]


def test_stdin_errors_name_stdin():
    with pytest.raises(InputError) as ei:
        read_path("-", stdin=io.BytesIO(b'{"text": 1}\n'))
    assert (ei.value.file, ei.value.line) == ("<stdin>", 1)


def test_stdin_defaults_to_sys_stdin_buffer(monkeypatch):
    fake = io.TextIOWrapper(io.BytesIO("加我微信\n".encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", fake)
    assert read_path("-", fmt="txt") == [Utterance(1, "加我微信")]


def test_missing_file(tmp_path):
    missing = str(tmp_path / "没有这个文件.txt")
    with pytest.raises(InputError) as ei:
        read_path(missing)
    assert ei.value.file == missing
    assert missing in str(ei.value)


def test_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as ei:
        read_path(str(tmp_path))
    assert ei.value.file == str(tmp_path)


def test_size_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_INPUT_BYTES", 16)
    ok = tmp_path / "ok.txt"
    ok.write_bytes("直播间下单!".encode())  # 3*5 + 1 = 16 bytes
    assert lines_and_texts(read_path(str(ok))) == [(1, "直播间下单!")]
    big = tmp_path / "big.txt"
    big.write_bytes("直播间下单!!".encode())  # 17 bytes
    with pytest.raises(InputError, match="larger than") as ei:
        read_path(str(big))
    assert ei.value.file == str(big)
    with pytest.raises(InputError, match="larger than"):
        read_path("-", stdin=io.BytesIO(b"x" * 17))


def test_real_size_limit_uses_file_size(tmp_path):
    big = tmp_path / "sparse.txt"
    with open(big, "wb") as f:
        f.truncate(512 * 1024 * 1024 + 1)  # sparse: no data is written
    with pytest.raises(InputError, match="larger than"):
        read_path(str(big))


def test_parse_text_is_lazy_and_normalises():
    it = parse_text("\ufeff这款面膜\r\n\r\n加我微信", "txt", "x")
    assert iter(it) is it
    assert lines_and_texts(list(it)) == [(1, "这款面膜"), (3, "加我微信")]


# --------------------------------------------------------------------------------------------
# property: txt round trip
# --------------------------------------------------------------------------------------------

_line_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.one_of(_line_text, st.sampled_from(["", "  ", "\t", "这款面膜是全网最好的", "加我微信"])),
        max_size=20,
    ),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "gb18030"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    trailing=st.booleans(),
)
def test_txt_round_trip(lines, encoding, newline, trailing):
    # A leading U+FEFF is a byte order mark by definition and is dropped on reading.
    assume(not (lines and lines[0].startswith("\ufeff")))
    # UTF-16-LE text starting with U+0000 begins FF FE 00 00: the UTF-32-LE byte order mark, refused
    assume(not (encoding == "utf-16" and lines and lines[0].startswith("\x00")))
    content = newline.join(lines) + (newline if trailing and lines else "")
    data = content.encode(encoding)
    if encoding == "gb18030":
        # Without a BOM UTF-8 is tried first; only GB18030 bytes that are not UTF-8 go to GB18030.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            assume(data.isascii())
    expected = [(i, s) for i, s in enumerate(lines, 1) if s.strip()]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "直播.txt")
        with open(path, "wb") as f:
            f.write(data)
        got = read_path(path)
    assert lines_and_texts(got) == expected

"""``compliance check``: formats, encodings, offsets, speaker/product scope, exit codes."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livestream_compliance import __version__, load_rule_set

from .conftest import BASIC, BASIC_RULES, CLI_FX, INPUTS_FX, RULES_FX, ROOT

SCRIPT = f"{CLI_FX}/script.txt"

# (line, start, end, rule_id, category, severity, text) for tests/fixtures/cli/script.txt
SCRIPT_FINDINGS = [
    (2, 7, 9, "ABS-BEST", "absolute_terms", "high", "最好"),
    (4, 8, 10, "DIV-CONTACT", "diversion", "warning", "微信"),
    (5, 4, 6, "MED-CURE", "medical_claims", "critical", "根治"),
    (5, 11, 13, "ABS-BEST", "absolute_terms", "high", "最佳"),
    (7, 3, 16, "DIV-CONTACT", "diversion", "warning", "138 1234 5678"),
    (8, 2, 4, "DIV-CONTACT", "diversion", "warning", "ＶＸ"),
    (8, 9, 11, "ABS-BEST", "absolute_terms", "high", "最佳"),
]

MESSAGES = {
    "ABS-BEST": ("使用了“最好/最佳”等绝对化用语。", "改为可证实、有范围的表述。", ["中华人民共和国广告法 第九条第（三）项"]),
    "DIV-CONTACT": ("引导用户到站外联系或交易。", "请在平台内沟通下单。", ["网络直播营销管理办法（试行） 第十八条"]),
    "MED-CURE": ("非药品宣称疾病治疗功效。", "删除治疗、根治等医疗用语。", ["中华人民共和国广告法 第十七条"]),
}
PACKS = {"ABS-BEST": "basic-absolute", "DIV-CONTACT": "basic-diversion", "MED-CURE": "basic-medical"}


def check(cli, *argv: str):
    return cli("check", *BASIC_RULES, *argv)


def records(out: str) -> list[dict]:
    lines = out.splitlines()
    assert all(line.startswith("{") and line.endswith("}") for line in lines), out
    return [json.loads(line) for line in lines]


def key(r: dict) -> tuple:
    return (r["line"], r["start"], r["end"], r["rule_id"], r["category"], r["severity"], r["text"])


def file_lines(path: str, encoding: str = "utf-8-sig") -> list[str]:
    """The lines of a fixture as the CLI numbers them (any newline style)."""
    text = Path(path).read_bytes().decode(encoding)
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def assert_offsets_index_the_line(recs: list[dict], path: str, encoding: str = "utf-8-sig") -> None:
    lines = file_lines(path, encoding)
    for r in recs:
        assert r["file"] == path
        line_text = lines[r["line"] - 1]
        assert line_text[r["start"] : r["end"]] == r["text"], r
        assert r["column"] == r["start"] + 1


def rules_version() -> str:
    return load_rule_set([BASIC], defaults=False).version


# ------------------------------------------------------------------------------------ jsonl


def test_jsonl_txt_exact_findings(cli):
    res = check(cli, "--format", "jsonl", SCRIPT)
    assert res.code == 1
    assert res.err == ""
    recs = records(res.out)
    assert [key(r) for r in recs] == SCRIPT_FINDINGS
    assert_offsets_index_the_line(recs, SCRIPT)
    assert all(r["source"] == "host" for r in recs)  # the default --source
    assert all("timestamp" not in r and "user" not in r for r in recs)


def test_jsonl_record_has_every_field(cli):
    recs = records(check(cli, "--format", "jsonl", SCRIPT).out)
    message, suggestion, basis = MESSAGES["ABS-BEST"]
    assert recs[0] == {
        "file": SCRIPT,
        "line": 2,
        "start": 7,
        "end": 9,
        "rule_id": "ABS-BEST",
        "category": "absolute_terms",
        "severity": "high",
        "source": "host",
        "text": "最好",
        "matched": "最好",
        "message": message,
        "suggestion": suggestion,
        "legal_basis": basis,
        "rule_version": f"basic-absolute@1.0.0#{rules_version()}",
        "column": 8,
    }
    for r in recs:
        assert (r["message"], r["suggestion"], r["legal_basis"]) == MESSAGES[r["rule_id"]]
        assert r["rule_version"] == f"{PACKS[r['rule_id']]}@1.0.0#{rules_version()}"
    # the phone pattern reports the pattern it matched; full-width ＶＸ the normalised term
    assert recs[4]["matched"] == r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])"
    assert recs[5]["matched"] == "vx"


@pytest.mark.parametrize(
    ("name", "encoding", "expected"),
    [
        (
            "bom.txt",
            "utf-8-sig",
            [
                (1, 2, 4, "ABS-BEST", "absolute_terms", "high", "最佳"),
                (1, 8, 10, "DIV-CONTACT", "diversion", "warning", "微信"),
            ],
        ),
        (
            "gbk.txt",
            "gbk",
            [
                (1, 6, 8, "ABS-BEST", "absolute_terms", "high", "最好"),
                (3, 0, 2, "MED-CURE", "medical_claims", "critical", "根治"),
            ],
        ),
    ],
)
def test_jsonl_encodings(cli, name, encoding, expected):
    path = f"{CLI_FX}/{name}"
    data = Path(path).read_bytes()
    if name == "bom.txt":
        assert data.startswith(codecs.BOM_UTF8)
    else:
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 1, res
    recs = records(res.out)
    assert [key(r) for r in recs] == expected
    assert_offsets_index_the_line(recs, path, encoding)


def test_jsonl_srt_carries_cue_times(cli):
    path = f"{CLI_FX}/subs.srt"
    assert b"\r\n" in Path(path).read_bytes()  # CRLF file
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 1
    recs = records(res.out)
    assert [key(r) + (r["timestamp"], r["timestamp_end"]) for r in recs] == [
        (4, 6, 8, "ABS-BEST", "absolute_terms", "high", "最好", "00:00:01.000", "00:00:03.500"),
        (8, 1, 3, "DIV-CONTACT", "diversion", "warning", "微信", "00:00:04.000", "00:00:06.000"),
    ]
    assert_offsets_index_the_line(recs, path)


def test_jsonl_vtt_carries_cue_times_and_offsets_include_voice_tags(cli):
    path = f"{CLI_FX}/subs.vtt"
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 1
    recs = records(res.out)
    assert [key(r) + (r["timestamp"], r["timestamp_end"]) for r in recs] == [
        (4, 9, 11, "ABS-BEST", "absolute_terms", "high", "最佳", "00:00:10.000", "00:00:12.000"),
        (8, 3, 5, "DIV-CONTACT", "diversion", "warning", "微信", "01:00:00.000", "01:00:02.500"),
    ]
    assert_offsets_index_the_line(recs, path)  # "<v 主播>" is part of line 4


def test_jsonl_chat_export_uses_each_records_source(cli):
    path = f"{CLI_FX}/chat.jsonl"
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 1
    recs = records(res.out)
    assert [key(r) + (r["source"], r.get("user"), r.get("timestamp")) for r in recs] == [
        # line 1 is a viewer's 最好: the host-only rule stays silent
        (2, 7, 9, "ABS-BEST", "absolute_terms", "high", "最好", "host", None, "20:00:02"),
        (3, 2, 4, "DIV-CONTACT", "diversion", "warning", "vx", "chat", "路人甲", None),
        (3, 7, 18, "DIV-CONTACT", "diversion", "warning", "13912345678", "chat", "路人甲", None),
        # line 4 declares product drug: MED-CURE is exempt there; line 5 is blank
        (6, 4, 6, "MED-CURE", "medical_claims", "critical", "治疗", "host", None, None),
    ]
    raw = file_lines(path)
    for r in recs:
        record = json.loads(raw[r["line"] - 1])
        text = next(record[k] for k in ("text", "content", "comment", "msg") if k in record)
        assert text[r["start"] : r["end"]] == r["text"]


def test_jsonl_sniffed_input_without_extension(cli):
    # a reader fixture without an extension whose content is jsonl
    path = f"{INPUTS_FX}/danmu_log"
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 1
    assert [key(r) + (r["source"],) for r in records(res.out)] == [
        (2, 4, 6, "DIV-CONTACT", "diversion", "warning", "微信", "chat")
    ]


def test_input_format_override_reads_jsonl_as_plain_lines(cli):
    path = f"{CLI_FX}/chat.jsonl"
    res = check(cli, "--format", "jsonl", "--input-format", "txt", path)
    assert res.code == 1
    recs = records(res.out)
    # every raw line is host text now, so the viewer's 最好 on line 1 is flagged too
    assert (1, "ABS-BEST", "host") in [(r["line"], r["rule_id"], r["source"]) for r in recs]
    assert_offsets_index_the_line(recs, path)


def test_multiple_files_in_argument_order(cli):
    res = check(cli, "--format", "jsonl", f"{CLI_FX}/subs.vtt", f"{CLI_FX}/clean.txt", f"{CLI_FX}/bom.txt")
    assert res.code == 1
    assert [(r["file"], r["line"], r["rule_id"]) for r in records(res.out)] == [
        (f"{CLI_FX}/subs.vtt", 4, "ABS-BEST"),
        (f"{CLI_FX}/subs.vtt", 8, "DIV-CONTACT"),
        (f"{CLI_FX}/bom.txt", 1, "ABS-BEST"),
        (f"{CLI_FX}/bom.txt", 1, "DIV-CONTACT"),
    ]


def test_backends_agree(cli):
    a = check(cli, "--format", "jsonl", "--backend", "ahocorasick-rs", SCRIPT)
    b = check(cli, "--format", "jsonl", "--backend", "pyahocorasick", SCRIPT)
    assert a.code == b.code == 1
    assert a.out == b.out


# ------------------------------------------------------------------------ speaker and product


def test_source_chat_suppresses_host_only_rules(cli):
    res = check(cli, "--format", "jsonl", "--source", "chat", SCRIPT)
    assert res.code == 1
    recs = records(res.out)
    assert [key(r) for r in recs] == [f for f in SCRIPT_FINDINGS if f[3] != "ABS-BEST"]
    assert all(r["source"] == "chat" for r in recs)


def test_source_option_does_not_override_jsonl_record_sources(cli):
    path = f"{CLI_FX}/chat.jsonl"
    host = check(cli, "--format", "jsonl", path)
    chat = check(cli, "--format", "jsonl", "--source", "chat", path)
    assert host.out == chat.out


def test_source_chat_on_clean_host_only_text(cli, stdin_bytes):
    stdin_bytes("这款面膜是全网最好的\n".encode())
    res = check(cli, "--format", "jsonl", "--source", "chat", "-")
    assert (res.code, res.out, res.err) == (0, "", "")


def test_product_drug_suppresses_exempt_medical_rule(cli):
    res = check(cli, "--format", "jsonl", "--product", "drug", SCRIPT)
    assert res.code == 1
    assert [key(r) for r in records(res.out)] == [f for f in SCRIPT_FINDINGS if f[3] != "MED-CURE"]


def test_product_other_than_drug_keeps_medical_rule(cli):
    res = check(cli, "--format", "jsonl", "--product", "food", SCRIPT)
    assert [key(r) for r in records(res.out)] == SCRIPT_FINDINGS


# --------------------------------------------------------------------------------- --fail-on


@pytest.mark.parametrize(
    ("name", "fail_on", "code"),
    [
        ("script.txt", "info", 1),
        ("script.txt", "critical", 1),  # MED-CURE is critical
        ("bom.txt", "info", 1),
        ("bom.txt", "warning", 1),
        ("bom.txt", "high", 1),  # ABS-BEST is high
        ("bom.txt", "critical", 0),
        ("bom.txt", "CRITICAL", 0),  # case-insensitive
        ("subs.srt", "High", 1),
        ("clean.txt", "info", 0),
    ],
)
def test_fail_on_threshold(cli, name, fail_on, code):
    res = check(cli, "--format", "jsonl", "--fail-on", fail_on, f"{CLI_FX}/{name}")
    assert res.code == code, res
    assert res.err == ""
    if name != "clean.txt":
        assert res.out  # findings below the threshold are still reported


def test_fail_on_default_is_info_and_product_scope_counts(cli):
    assert check(cli, "--format", "jsonl", "--fail-on", "critical", "--product", "drug", SCRIPT).code == 0
    assert check(cli, "--format", "jsonl", "--fail-on", "high", "--product", "drug", SCRIPT).code == 1


def test_clean_file_exits_zero(cli):
    res = check(cli, "--format", "jsonl", f"{CLI_FX}/clean.txt")
    assert (res.code, res.out, res.err) == (0, "", "")
    res = check(cli, f"{CLI_FX}/clean.txt")
    assert (res.code, res.out) == (0, "0 finding(s) in 2 line(s) of 1 file(s)\n")


# ---------------------------------------------------------------------------------- errors


def test_missing_file_is_a_one_line_error(cli):
    path = f"{CLI_FX}/no_such_file.txt"
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 2
    assert res.err_lines == [f"compliance check: error: {path}: no such file"]
    assert res.out == ""


def test_missing_file_does_not_hide_other_files(cli):
    path = f"{CLI_FX}/no_such_file.txt"
    res = check(cli, "--format", "jsonl", "--fail-on", "critical", path, f"{CLI_FX}/bom.txt")
    assert res.code == 2  # an unreadable input wins over "no finding above the threshold"
    assert res.err_lines == [f"compliance check: error: {path}: no such file"]
    assert [r["file"] for r in records(res.out)] == [f"{CLI_FX}/bom.txt"] * 2


def test_directory_is_an_error(cli):
    res = check(cli, CLI_FX)
    assert res.code == 2
    assert res.err_lines == [f"compliance check: error: {CLI_FX}: is a directory, not a file"]


def test_undecodable_file(cli):
    path = f"{INPUTS_FX}/undecodable.txt"
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 2
    assert len(res.err_lines) == 1
    assert res.err_lines[0].startswith(f"compliance check: error: {path}:2: cannot decode as UTF-8 or GB18030")
    assert res.out == ""


def test_malformed_jsonl(cli):
    path = f"{CLI_FX}/malformed.jsonl"
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 2
    assert len(res.err_lines) == 1
    assert res.err_lines[0].startswith(f"compliance check: error: {path}:2: invalid JSON: ")
    assert res.out == ""  # nothing from line 1: a malformed file is refused whole


def test_malformed_srt_timing(cli):
    path = f"{INPUTS_FX}/malformed_timing.srt"
    res = check(cli, path)
    assert res.code == 2
    assert len(res.err_lines) == 1
    assert res.err_lines[0].startswith(f"compliance check: error: {path}:")
    assert "malformed SRT timing line" in res.err


def test_unknown_product_in_a_jsonl_record_names_file_and_line(cli):
    path = f"{CLI_FX}/bad_product.jsonl"
    res = check(cli, "--format", "jsonl", path)
    assert res.code == 2
    assert len(res.err_lines) == 1
    assert res.err_lines[0].startswith(f"compliance check: error: {path}:2: unknown product category '美妆'")


def test_invalid_rules_exit_2_naming_file_rule_and_field(cli):
    res = cli("check", "--no-default-rules", "--rules", f"{RULES_FX}/invalid_unknown_key", SCRIPT)
    assert res.code == 2
    assert len(res.err_lines) == 1
    assert res.err_lines[0].startswith(
        f"compliance check: error: {RULES_FX}/invalid_unknown_key/b_typo.toml: rule ABS-EXTRA: field colour: unknown key"
    )
    assert res.out == ""


def test_missing_rules_directory(cli):
    res = cli("check", "--no-default-rules", "--rules", f"{RULES_FX}/no_such_dir", SCRIPT)
    assert res.code == 2
    assert res.err_lines == [f"compliance check: error: {RULES_FX}/no_such_dir: no such rule file or directory"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "xml", SCRIPT], "argument --format: invalid choice: 'xml'"),
        (["--fail-on", "urgent", SCRIPT], "invalid severity 'urgent' (choose from info, warning, high, critical)"),
        (["--source", "robot", SCRIPT], "argument --source: invalid choice: 'robot'"),
        (["--product", "美妆", SCRIPT], "argument --product: invalid choice: '美妆'"),
        (["--input-format", "docx", SCRIPT], "argument --input-format: invalid choice: 'docx'"),
        (["--color", "sometimes", SCRIPT], "argument --color: invalid choice: 'sometimes'"),
        (["--no-such-option", SCRIPT], "unrecognized arguments: --no-such-option"),
        ([], "the following arguments are required: FILE"),
    ],
)
def test_bad_arguments_exit_2(cli, argv, message):
    res = check(cli, *argv)
    assert res.code == 2
    assert res.out == ""
    # argparse reports unrecognised options from the top-level parser
    assert res.err_lines[-1].startswith(("compliance check: error: ", "compliance: error: "))
    assert message in res.err_lines[-1]
    assert res.err_lines[0].startswith("usage: compliance")


def test_no_command_exits_2(cli):
    res = cli()
    assert res.code == 2
    assert "usage: compliance" in res.err


def test_unknown_command_exits_2(cli):
    res = cli("inspect", SCRIPT)
    assert res.code == 2
    assert "invalid choice: 'inspect'" in res.err


# ----------------------------------------------------------------------------------- stdin


def test_stdin_dash(cli, stdin_bytes):
    stdin_bytes("大家好\n这款面膜是全网最好的\n".encode())
    res = check(cli, "--format", "jsonl", "-")
    assert res.code == 1
    recs = records(res.out)
    assert [(r["file"],) + key(r) for r in recs] == [
        ("-", 2, 7, 9, "ABS-BEST", "absolute_terms", "high", "最好")
    ]


def test_stdin_gbk_and_crlf(cli, stdin_bytes):
    stdin_bytes("根治口臭\r\n加微信\r\n".encode("gbk"))
    res = check(cli, "--format", "jsonl", "-")
    assert [key(r) for r in records(res.out)] == [
        (1, 0, 2, "MED-CURE", "medical_claims", "critical", "根治"),
        (2, 1, 3, "DIV-CONTACT", "diversion", "warning", "微信"),
    ]


def test_stdin_jsonl_is_sniffed(cli, stdin_bytes):
    stdin_bytes(b'{"text": "\xe5\x85\xa8\xe7\xbd\x91\xe6\x9c\x80\xe5\xa5\xbd", "source": "chat"}\n')  # 全网最好
    res = check(cli, "--format", "jsonl", "-")
    assert (res.code, res.out) == (0, "")  # a viewer's 最好: host-only rule silent
    stdin_bytes(b'{"text": "\xe5\x85\xa8\xe7\xbd\x91\xe6\x9c\x80\xe5\xa5\xbd", "source": "host"}\n')
    res = check(cli, "--format", "jsonl", "-")
    assert [key(r) for r in records(res.out)] == [(1, 2, 4, "ABS-BEST", "absolute_terms", "high", "最好")]


def test_stdin_undecodable_names_stdin(cli, stdin_bytes):
    stdin_bytes(b"ok\n\x80\x80\xff\n")
    res = check(cli, "-")
    assert res.code == 2
    assert len(res.err_lines) == 1
    assert res.err_lines[0].startswith("compliance check: error: <stdin>:2: cannot decode")


# ------------------------------------------------------------------------------ json, sarif


def test_json_document(cli):
    res = check(cli, "--format", "json", SCRIPT, f"{CLI_FX}/clean.txt")
    assert res.code == 1
    doc = json.loads(res.out)
    assert set(doc) == {"version", "rules_version", "files", "summary", "findings"}
    assert doc["version"] == __version__
    assert doc["rules_version"] == rules_version()
    assert doc["files"] == [{"file": SCRIPT, "utterances": 7}, {"file": f"{CLI_FX}/clean.txt", "utterances": 2}]
    assert doc["summary"] == {
        "findings": 7,
        "by_severity": {"high": 3, "warning": 3, "critical": 1},
        "by_category": {"absolute_terms": 3, "diversion": 3, "medical_claims": 1},
    }
    assert [key(r) for r in doc["findings"]] == SCRIPT_FINDINGS
    # the same records as --format jsonl
    assert doc["findings"] == records(check(cli, "--format", "jsonl", SCRIPT).out)


def test_json_document_without_findings(cli):
    res = check(cli, "--format", "json", f"{CLI_FX}/clean.txt")
    assert res.code == 0
    doc = json.loads(res.out)
    assert doc["findings"] == []
    assert doc["summary"] == {"findings": 0, "by_severity": {}, "by_category": {}}


def test_sarif(cli):
    res = check(cli, "--format", "sarif", SCRIPT)
    assert res.code == 1
    doc = json.loads(res.out)
    assert doc["version"] == "2.1.0"
    assert doc["$schema"].endswith("sarif-2.1.0.json")
    assert len(doc["runs"]) == 1
    run = doc["runs"][0]
    assert run["columnKind"] == "unicodeCodePoints"
    driver = run["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("livestream-compliance", __version__)
    assert [r["id"] for r in driver["rules"]] == ["ABS-BEST", "DIV-CONTACT", "MED-CURE"]
    for r in driver["rules"]:
        message, suggestion, basis = MESSAGES[r["id"]]
        assert r["shortDescription"] == {"text": message}
        assert r["help"] == {"text": suggestion}
        assert r["properties"]["legal_basis"] == basis
    results = run["results"]
    assert len(results) == len(SCRIPT_FINDINGS)
    levels = {"high": "error", "critical": "error", "warning": "warning"}
    for res_, (line, start, end, rule_id, category, severity, text) in zip(results, SCRIPT_FINDINGS):
        assert res_["ruleId"] == rule_id
        assert driver["rules"][res_["ruleIndex"]]["id"] == rule_id
        assert res_["level"] == levels[severity]
        assert res_["message"]["text"] == f"{MESSAGES[rule_id][0]} 建议：{MESSAGES[rule_id][1]}"
        loc = res_["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": SCRIPT}
        assert loc["region"] == {
            "startLine": line,
            "startColumn": start + 1,
            "endColumn": end + 1,
            "snippet": {"text": text},
        }
        assert res_["properties"]["category"] == category
        assert res_["properties"]["severity"] == severity


def test_sarif_without_findings(cli):
    res = check(cli, "--format", "sarif", f"{CLI_FX}/clean.txt")
    assert res.code == 0
    run = json.loads(res.out)["runs"][0]
    assert run["results"] == [] and run["tool"]["driver"]["rules"] == []


# ------------------------------------------------------------------------------------ text


def test_text_output(cli):
    res = check(cli, SCRIPT)
    assert res.code == 1
    lines = res.out.splitlines()
    assert len(lines) == 4 * len(SCRIPT_FINDINGS) + 1
    assert lines[:4] == [
        f"{SCRIPT}:2:8: high ABS-BEST (absolute_terms)",
        "    这款面膜是全网【最好】的，姐妹们冲",
        "    使用了“最好/最佳”等绝对化用语。（依据：中华人民共和国广告法 第九条第（三）项）",
        "    建议：改为可证实、有范围的表述。",
    ]
    headers = lines[0::4][:-1]
    assert headers == [
        f"{SCRIPT}:{line}:{start + 1}: {sev} {rid} ({cat})" for line, start, _e, rid, cat, sev, _t in SCRIPT_FINDINGS
    ]
    assert lines[5] == "    有问题的加我【微信】私聊"  # the shown line is stripped
    assert lines[17] == "    电话 【138 1234 5678】 随时打"
    assert lines[-1] == "7 finding(s) in 7 line(s) of 1 file(s): critical 1, high 3, warning 3"
    assert "\033[" not in res.out  # not a terminal: no colour


def test_text_output_subtitles_show_timestamp(cli):
    res = check(cli, f"{CLI_FX}/subs.srt")
    lines = res.out.splitlines()
    assert lines[0] == f"{CLI_FX}/subs.srt:4:7: [00:00:01.000] high ABS-BEST (absolute_terms)"
    assert lines[1] == "    今天的价格是【最好】的"
    assert lines[4] == f"{CLI_FX}/subs.srt:8:2: [00:00:04.000] warning DIV-CONTACT (diversion)"
    assert lines[-1] == "2 finding(s) in 3 line(s) of 1 file(s): high 1, warning 1"


def test_text_output_chat_shows_user(cli):
    res = check(cli, f"{CLI_FX}/chat.jsonl")
    assert f"{CLI_FX}/chat.jsonl:3:3: warning DIV-CONTACT (diversion) (路人甲)" in res.out.splitlines()


def test_text_color_always(cli):
    res = check(cli, "--color", "always", f"{CLI_FX}/bom.txt")
    assert "\033[31mhigh\033[0m" in res.out
    assert "\033[33mwarning\033[0m" in res.out
    assert "今天\033[1;31;4m最佳\033[0m价格" in res.out
    res = check(cli, "--color", "never", f"{CLI_FX}/bom.txt")
    assert "\033[" not in res.out


# ------------------------------------------------------------------------------ processes


def _script_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def test_console_script_matches_in_process_run(cli):
    exe = shutil.which("compliance", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert exe, "the compliance console script is not installed"
    argv = ["check", *BASIC_RULES, "--format", "jsonl", SCRIPT, f"{CLI_FX}/no_such_file.txt"]
    proc = subprocess.run([exe, *argv], cwd=ROOT, capture_output=True, env=_script_env(), timeout=120)
    expected = cli(*argv)
    assert proc.returncode == expected.code == 2
    assert proc.stdout.decode("utf-8") == expected.out
    assert [key(r) for r in records(expected.out)] == SCRIPT_FINDINGS
    assert proc.stderr.decode("utf-8").splitlines() == [
        f"compliance check: error: {CLI_FX}/no_such_file.txt: no such file"
    ]


def test_python_dash_m_version():
    proc = subprocess.run(
        [sys.executable, "-m", "livestream_compliance", "--version"],
        cwd=ROOT,
        capture_output=True,
        env=_script_env(),
        timeout=120,
    )
    assert proc.returncode == 0
    assert proc.stdout.decode() == f"compliance {__version__}\n"


def test_the_build_state_is_cached_unless_no_cache(cli, stdin_bytes, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    """check reuses the loader's state cache (keyed by rule content); --no-cache neither reads nor writes it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "xdg" / "livestream-compliance"
    args = ["check", "-", "--format", "jsonl", *BASIC_RULES]
    stdin_bytes("这是最好的，加我微信\n".encode())
    first = cli(*args, "--no-cache")
    assert first.code == 1 and not cache.exists()
    stdin_bytes("这是最好的，加我微信\n".encode())
    second = cli(*args)
    deadline = time.monotonic() + 60  # the loader writes the state from a child process: wait for it
    while not (len(list(cache.glob("*.state"))) == 1 and (cache / "patterns.memo").is_file()):
        assert time.monotonic() < deadline, "the state was not written"
        time.sleep(0.02)
    stdin_bytes("这是最好的，加我微信\n".encode())
    third = cli(*args)  # from the cache
    assert first.out == second.out == third.out != ""

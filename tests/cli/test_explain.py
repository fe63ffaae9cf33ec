"""``compliance explain``: the normalised text and the verdict on every candidate."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import BASIC_RULES, RULES_FX


def explain(cli, *argv: str):
    return cli("explain", *BASIC_RULES, *argv)


def candidate_lines(out: str) -> list[str]:
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("4. 候选命中 candidates:"))
    j = next(j for j, line in enumerate(lines) if line.startswith("5. 结论 findings"))
    return lines[i + 1 : j]


def parse_candidate(line: str) -> tuple[str, str, str, int, int, str, str, str]:
    """(verdict, rule_id, category, start, end, text, key, detail) from one text candidate line."""
    m = re.fullmatch(
        r"   (\S+)\s+(\S+)\s+(\S+)\s+\[(\d+):(\d+)\] '(.*)' \(key '(.*)'\)(?:  — (.*))?",
        line,
    )
    assert m, line
    v, rid, cat, s, e, text, key, detail = m.groups()
    return v, rid, cat, int(s), int(e), text, key, detail or ""


def test_kept_finding_exits_1(cli):
    res = explain(cli, "这款面膜是全网最好的")
    assert res.code == 1
    assert res.err == ""
    lines = res.out.splitlines()
    assert lines[0] == "1. 原文 text        : 这款面膜是全网最好的"
    assert lines[1] == "   说话人 source     : host    商品类目 product: (未声明，按最严格处理)"
    assert lines[2] == "2. 归一化 normalised: 这款面膜是全网最好的"
    assert [parse_candidate(c) for c in candidate_lines(res.out)] == [
        ("KEPT", "ABS-BEST", "absolute_terms", 7, 9, "最好", "最好", "")
    ]
    tail = lines[lines.index("5. 结论 findings     : 1") :]
    assert tail == [
        "5. 结论 findings     : 1",
        "   high ABS-BEST [7:9] '最好'",
        "      原因：使用了“最好/最佳”等绝对化用语。",
        "      依据：中华人民共和国广告法 第九条第（三）项",
        "      建议：改为可证实、有范围的表述。",
    ]


def test_normalised_text_and_original_spans(cli):
    res = explain(cli, "加 微 信，ＶＸ同號")
    assert res.code == 1
    lines = res.out.splitlines()
    assert lines[0] == "1. 原文 text        : 加 微 信，ＶＸ同號"
    assert lines[2] == "2. 归一化 normalised: 加微信 | vx同号"
    # spans index the ORIGINAL text; the key is the normalised term
    assert [parse_candidate(c) for c in candidate_lines(res.out)] == [
        ("KEPT", "DIV-CONTACT", "diversion", 2, 5, "微 信", "微信", ""),
        ("KEPT", "DIV-CONTACT", "diversion", 6, 8, "ＶＸ", "vx", ""),
    ]
    assert "5. 结论 findings     : 2" in lines


def test_dropped_exception_exits_0(cli):
    res = explain(cli, "大家最好先量一下尺码")
    assert res.code == 0
    assert [parse_candidate(c) for c in candidate_lines(res.out)] == [
        ("exception", "ABS-BEST", "absolute_terms", 2, 4, "最好", "最好", "inside exception '最好先'")
    ]
    assert res.out.splitlines()[-2:] == ["5. 结论 findings     : 0", "   未发现违规 (no finding)"]


def test_negation_exits_0(cli):
    res = explain(cli, "这不是最好的")
    assert res.code == 0
    assert [parse_candidate(c) for c in candidate_lines(res.out)] == [
        ("negation", "ABS-BEST", "absolute_terms", 3, 5, "最好", "最好", "negated or warned against by '不'")
    ]
    assert "   未发现违规 (no finding)" in res.out.splitlines()


def test_speaker_mismatch_is_shown_for_chat(cli):
    res = explain(cli, "--source", "chat", "主播最好看了")
    assert res.code == 0
    lines = res.out.splitlines()
    assert lines[1].startswith("   说话人 source     : chat ")
    assert [parse_candidate(c) for c in candidate_lines(res.out)] == [
        ("speaker", "ABS-BEST", "absolute_terms", 2, 4, "最好", "最好", "rule applies to host only")
    ]


def test_speaker_mismatch_next_to_a_kept_hit(cli):
    res = explain(cli, "--source", "chat", "主播最好看了，加 微 信")
    assert res.code == 1
    verdicts = [parse_candidate(c)[:2] for c in candidate_lines(res.out)]
    assert verdicts == [("speaker", "ABS-BEST"), ("KEPT", "DIV-CONTACT")]
    assert "   warning DIV-CONTACT [9:12] '微 信'" in res.out.splitlines()


def test_product_scope(cli):
    res = explain(cli, "--product", "drug", "本品用于治疗感冒")
    assert res.code == 0
    assert "   说话人 source     : host    商品类目 product: drug" in res.out.splitlines()
    assert [parse_candidate(c) for c in candidate_lines(res.out)] == [
        ("product", "MED-CURE", "medical_claims", 4, 6, "治疗", "治疗", "rule does not apply to product category 'drug'")
    ]
    # without a declared product the strictest reading applies
    assert explain(cli, "本品用于治疗感冒").code == 1


def test_no_candidate(cli):
    res = explain(cli, "今天天气很好")
    assert res.code == 0
    assert "4. 候选命中 candidates: 0" in res.out.splitlines()
    assert candidate_lines(res.out) == []


def test_several_words_are_joined_with_spaces(cli):
    res = explain(cli, "全网", "最好")
    assert res.code == 1
    assert res.out.splitlines()[0] == "1. 原文 text        : 全网 最好"
    assert [parse_candidate(c)[3:6] for c in candidate_lines(res.out)] == [(3, 5, "最好")]


def test_json_format(cli):
    res = explain(cli, "--format", "json", "ＶＸ：138-1234-5678，大家最好先看看")
    doc = json.loads(res.out)
    assert res.code == 1
    assert set(doc) == {"text", "normalized", "source", "product", "tokens", "candidates", "findings"}
    assert doc["text"] == "ＶＸ：138-1234-5678，大家最好先看看"
    assert doc["normalized"] == "vx13812345678\u2029大家最好先看看"
    assert (doc["source"], doc["product"]) == ("host", None)
    assert "".join(doc["tokens"]) == doc["normalized"]
    by_verdict = {(c["rule_id"], c["verdict"], c["text"]) for c in doc["candidates"]}
    assert ("DIV-CONTACT", "kept", "138-1234-5678") in by_verdict
    assert ("ABS-BEST", "exception", "最好") in by_verdict
    for c in doc["candidates"]:
        assert doc["text"][c["start"] : c["end"]] == c["text"]
        assert set(c) == {"rule_id", "key", "start", "end", "text", "verdict", "detail"}
    assert [(f["rule_id"], f["start"], f["end"], f["text"], f["severity"]) for f in doc["findings"]] == [
        ("DIV-CONTACT", 0, 2, "ＶＸ", "warning"),
        ("DIV-CONTACT", 3, 16, "138-1234-5678", "warning"),
    ]


def test_json_format_exit_0_without_findings(cli):
    res = explain(cli, "--format", "json", "--source", "chat", "主播最好看了")
    assert res.code == 0
    doc = json.loads(res.out)
    assert doc["findings"] == []
    assert [(c["rule_id"], c["verdict"], c["detail"]) for c in doc["candidates"]] == [
        ("ABS-BEST", "speaker", "rule applies to host only")
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "sarif", "最好"], "invalid choice: 'sarif'"),
        (["--source", "robot", "最好"], "invalid choice: 'robot'"),
        (["--product", "美妆", "最好"], "invalid choice: '美妆'"),
        ([], "the following arguments are required: text"),
    ],
)
def test_bad_arguments_exit_2(cli, argv, message):
    res = explain(cli, *argv)
    assert res.code == 2
    assert res.out == ""
    assert message in res.err


def test_invalid_rules_exit_2(cli):
    res = cli("explain", "--no-default-rules", "--rules", f"{RULES_FX}/invalid_bad_regex", "最好")
    assert res.code == 2
    assert len(res.err_lines) == 1
    assert res.err_lines[0].startswith(
        f"compliance explain: error: {RULES_FX}/invalid_bad_regex/rules.toml: rule DIV-BADRX: field patterns: "
    )

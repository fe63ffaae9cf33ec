"""Strict loading: every problem names the file, the rule and the field; layering overrides by id."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestream_compliance import Checker, RuleError, build_checker, load_rule_set
from livestream_compliance.rules import build_rule_set, parse_rule_file

GOOD = """
[pack]
id = "t"
version = "1"

[[rules]]
id = "T-ONE"
category = "absolute_terms"
severity = "high"
terms = ["最好"]
legal_basis = [{ law = "中华人民共和国广告法", article = "第九条" }]
message = "绝对化用语"
suggestion = "删除"
must_match = [{ text = "最好的", hit = "最好" }, { text = "这是最好", hit = "最好" }]
must_not_match = ["最近", "很好"]
"""


def issues(text: str, name: str = "f.toml") -> list[tuple[str | None, str | None, str]]:
    with pytest.raises(RuleError) as ei:
        build_rule_set([[(name, text)]])
    return [(i.rule_id, i.field, i.message) for i in ei.value.issues]


def test_good_file_parses() -> None:
    pack, rules = parse_rule_file(GOOD, "f.toml")
    assert pack.id == "t" and rules[0].id == "T-ONE"


def test_unknown_key_names_rule_and_field() -> None:
    got = issues(GOOD.replace('severity = "high"', 'severity = "high"\ncolour = "red"'))
    assert got == [("T-ONE", "colour", "unknown key")]


def test_missing_legal_basis() -> None:
    got = issues(GOOD.replace('legal_basis = [{ law = "中华人民共和国广告法", article = "第九条" }]\n', ""))
    assert got == [("T-ONE", "legal_basis", "required field is missing")]
    got = issues(GOOD.replace('legal_basis = [{ law = "中华人民共和国广告法", article = "第九条" }]', "legal_basis = []"))
    assert got[0][:2] == ("T-ONE", "legal_basis")


def test_bad_severity_and_bad_pattern() -> None:
    got = issues(GOOD.replace('severity = "high"', 'severity = "fatal"'))
    assert got[0][:2] == ("T-ONE", "severity")
    got = issues(GOOD.replace('terms = ["最好"]', 'terms = ["最好"]\npatterns = ["(unclosed"]'))
    assert got[0][:2] == ("T-ONE", "patterns") and "does not compile" in got[0][2]
    got = issues(GOOD.replace('terms = ["最好"]', 'terms = ["最好"]\npatterns = ["a*"]'))
    assert "empty string" in got[0][2]


def test_example_hit_must_occur_in_text() -> None:
    got = issues(GOOD.replace('{ text = "最好的", hit = "最好" }', '{ text = "最佳的", hit = "最好" }'))
    assert got[0][0] == "T-ONE" and got[0][1].startswith("must_match")


def test_toml_syntax_error_names_file() -> None:
    with pytest.raises(RuleError) as ei:
        build_rule_set([[("broken.toml", "[pack\nid=")]])
    assert str(ei.value).startswith("broken.toml: invalid TOML")


def test_duplicate_id_in_one_layer() -> None:
    with pytest.raises(RuleError) as ei:
        build_rule_set([[("a.toml", GOOD), ("b.toml", GOOD)]])
    (issue,) = ei.value.issues
    assert (issue.file, issue.rule_id, issue.field) == ("b.toml", "T-ONE", "id")
    assert "a.toml" in issue.message


def test_later_layer_overrides_same_id_and_extends() -> None:
    override = GOOD.replace('severity = "high"', 'severity = "critical"')
    extra = GOOD.replace("T-ONE", "T-TWO")
    rs = build_rule_set([[("a.toml", GOOD)], [("user.toml", override), ("user2.toml", extra)]])
    by_id = rs.by_id()
    assert by_id["T-ONE"].severity.label == "critical" and by_id["T-ONE"].file == "user.toml"
    assert set(by_id) == {"T-ONE", "T-TWO"}


def test_exception_that_can_never_apply_is_an_error(checker: Checker) -> None:
    rs = build_rule_set([[("f.toml", GOOD.replace('terms = ["最好"]', 'terms = ["最好"]\nexceptions = ["最近"]'))]])
    with pytest.raises(RuleError) as ei:
        build_checker(rs, segmenter=checker.segmenter)
    (issue,) = ei.value.issues
    assert (issue.file, issue.rule_id, issue.field) == ("f.toml", "T-ONE", "exceptions")


def test_term_too_short_after_normalisation(checker: Checker) -> None:
    rs = build_rule_set([[("f.toml", GOOD.replace('terms = ["最好"]', 'terms = ["最好", "最 "]'))]])
    with pytest.raises(RuleError) as ei:
        build_checker(rs, segmenter=checker.segmenter)
    assert ei.value.issues[0].field == "terms"


def test_user_directory_over_defaults(tmp_path: Path, default_rules) -> None:
    some = default_rules.rules[0]
    (tmp_path / "mine.toml").write_text(GOOD, encoding="utf-8")
    rs = load_rule_set([tmp_path])
    assert "T-ONE" in rs.by_id() and some.id in rs.by_id()
    assert rs.version != default_rules.version


def test_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no such rule file"):
        load_rule_set([tmp_path / "nope"])
    with pytest.raises(RuleError, match="no \\*.toml rule files"):
        load_rule_set([tmp_path])
    (tmp_path / "gbk.toml").write_bytes(GOOD.encode("gbk"))
    with pytest.raises(RuleError, match="UTF-8"):
        load_rule_set([tmp_path / "gbk.toml"])


def test_default_rules_load_and_every_rule_has_legal_basis(default_rules) -> None:
    assert len(default_rules) > 0
    for r in default_rules.rules:
        assert r.legal_basis and r.message and r.suggestion, r.id


def test_disguised_only_terms_count_only_in_disguise() -> None:
    got = issues(GOOD.replace('terms = ["最好"]', 'terms = ["最好"]\ndisguised_only = true\npatterns = ["最好的"]'))
    assert got[0][0] == "T-ONE" and "disguised_only" in got[0][2]
    got = issues(GOOD.replace('terms = ["最好"]', 'terms = ["最好"]\ndisguised_only = true\naliases = false\nhomophones = false'))
    assert "disguised_only" in got[0][2]
    text = GOOD.replace('terms = ["最好"]', 'terms = ["最好"]\ndisguised_only = true').replace(
        'must_match = [{ text = "最好的", hit = "最好" }, { text = "这是最好", hit = "最好" }]',
        'must_match = [{ text = "醉好的", hit = "醉好" }, { text = "这是zuihao", hit = "zuihao" }]')
    ck = build_checker(build_rule_set([[("d.toml", text)]]))
    assert [f.text for f in ck.check("醉好的")] == ["醉好"]
    assert [f.text for f in ck.check("这是zuihao")] == ["zuihao"]
    assert [f.text for f in ck.check("最最好的")] == ["最最好"]  # a doubled character is a disguise too
    assert ck.check("这是最好的") == ()  # as written: never

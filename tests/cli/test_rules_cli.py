"""``compliance rules validate|list|build``: every rule-file problem names the file, rule and field."""

from __future__ import annotations

import pytest

from livestream_compliance import load_rule_set

from .conftest import BASIC, CLI_FX, RULES_FX


def validate(cli, *paths: str):
    return cli("rules", "validate", "--no-default-rules", *paths)


def test_validate_basic_fixture_rules(cli):
    res = validate(cli, BASIC)
    version = load_rule_set([BASIC], defaults=False).version
    assert (res.code, res.err) == (0, "")
    assert res.out == f"3 rules, 7 terms and patterns in 3 file(s), version {version}: OK\n"


def test_validate_one_file(cli):
    res = validate(cli, f"{BASIC}/medical.toml")
    assert res.code == 0
    assert res.out.startswith("1 rules, 2 terms and patterns in 1 file(s), version ")
    assert res.out.endswith(": OK\n")


# (directory, [(file, rule id or None, field or None, message fragment), ...])
INVALID = [
    (
        "invalid_unknown_key",
        [("b_typo.toml", "ABS-EXTRA", "colour", "unknown key")],
    ),
    (
        "invalid_duplicate_id",
        [("b.toml", "DUP-SAME", "id", f"duplicate rule id (also defined in {RULES_FX}/invalid_duplicate_id/a.toml)")],
    ),
    (
        "invalid_missing_legal_basis",
        [("rules.toml", "ABS-NOLAW", "legal_basis", "required field is missing")],
    ),
    (
        "invalid_bad_regex",
        [("rules.toml", "DIV-BADRX", "patterns", "pattern '1[3-9]([0-9]{9}' does not compile")],
    ),
    (
        "invalid_exception_no_term",
        [("rules.toml", "ABS-EXC", "exceptions", "exception '今天先' contains none of the rule's terms")],
    ),
    (
        "invalid_toml_syntax",
        [("rules.toml", None, None, "invalid TOML: ")],
    ),
    (
        "invalid_non_utf8",
        [("rules.toml", None, None, "rule files must be UTF-8")],
    ),
]


@pytest.mark.parametrize(("dirname", "expected"), INVALID, ids=[d for d, _ in INVALID])
def test_validate_invalid_rules(cli, dirname, expected):
    directory = f"{RULES_FX}/{dirname}"
    res = validate(cli, directory)
    assert res.code == 2
    assert res.out == ""
    *issues, total = res.err_lines
    assert total == f"{len(issues)} error(s)"
    for file, rule_id, field, fragment in expected:
        prefix = f"{directory}/{file}: "
        if rule_id:
            prefix += f"rule {rule_id}: "
        if field:
            prefix += f"field {field}: "
        assert any(line.startswith(prefix) and fragment in line for line in issues), (prefix, fragment, issues)
    # every problem names a file of that directory
    assert all(line.startswith(f"{directory}/") for line in issues), issues


def test_toml_syntax_error_names_the_line(cli):
    res = validate(cli, f"{RULES_FX}/invalid_toml_syntax")
    assert "(at line 11, column 1)" in res.err_lines[0]


def test_valid_file_next_to_an_invalid_one_is_not_blamed(cli):
    res = validate(cli, f"{RULES_FX}/invalid_unknown_key")
    assert not any("a_good.toml" in line for line in res.err_lines)


def test_each_issue_is_reported_once(cli):
    res = validate(cli, f"{RULES_FX}/invalid_exception_no_term")
    assert res.err_lines == [
        f"{RULES_FX}/invalid_exception_no_term/rules.toml: rule ABS-EXC: field exceptions: "
        "exception '今天先' contains none of the rule's terms, so it can never apply",
        "1 error(s)",
    ]


def test_validate_reports_problems_of_several_paths(cli):
    res = validate(cli, f"{RULES_FX}/invalid_missing_legal_basis", f"{RULES_FX}/invalid_unknown_key")
    assert res.code == 2
    assert any("invalid_missing_legal_basis/rules.toml: rule ABS-NOLAW: field legal_basis" in l for l in res.err_lines)
    assert any("invalid_unknown_key/b_typo.toml: rule ABS-EXTRA: field colour" in l for l in res.err_lines)


def test_validate_runs_rule_examples(cli):
    directory = f"{RULES_FX}/invalid_example"
    res = validate(cli, directory)
    assert res.code == 2
    assert res.err_lines == [
        f"{directory}/rules.toml: rule ABS-EXAMPLE: field must_match[1]: "
        "'这是最棒的面膜' should flag '最棒' at (2, 4); got nothing"
    ]
    assert res.out.startswith("1 rules, 1 terms and patterns in 1 file(s), version ")
    assert res.out.endswith(": 1 example failure(s)\n")
    # --no-examples skips them
    res = cli("rules", "validate", "--no-default-rules", "--no-examples", directory)
    assert (res.code, res.err) == (0, "")
    assert res.out.endswith(": OK\n")


def test_validate_missing_path(cli):
    res = validate(cli, f"{RULES_FX}/no_such_dir")
    assert res.code == 2
    assert res.err_lines == [f"{RULES_FX}/no_such_dir: no such rule file or directory", "1 error(s)"]


def test_validate_directory_without_rule_files(cli):
    res = validate(cli, CLI_FX)
    assert res.code == 2
    assert res.err_lines[0] == f"{CLI_FX}: no *.toml rule files in this directory"


def test_check_refuses_each_invalid_rule_set(cli):
    for dirname, expected in INVALID:
        res = cli("check", "--no-default-rules", "--rules", f"{RULES_FX}/{dirname}", f"{CLI_FX}/clean.txt")
        assert res.code == 2, dirname
        assert len(res.err_lines) == 1, res
        file = expected[0][0]
        assert res.err_lines[0].startswith(f"compliance check: error: {RULES_FX}/{dirname}/{file}: "), res


def test_list(cli):
    res = cli("rules", "list", "--no-default-rules", BASIC)
    assert (res.code, res.err) == (0, "")
    lines = res.out.splitlines()
    rows = [line.split() for line in lines[:-1]]
    assert [r[0] for r in rows] == ["ABS-BEST", "DIV-CONTACT", "MED-CURE"]
    assert [(r[1], r[2], r[3]) for r in rows] == [
        ("high", "absolute_terms", "host"),
        ("warning", "diversion", "chat/host"),
        ("critical", "medical_claims", "chat/host"),
    ]
    assert [r[-1] for r in rows] == [f"{BASIC}/absolute.toml", f"{BASIC}/diversion.toml", f"{BASIC}/medical.toml"]
    assert "2 terms  1 patterns" in lines[1]
    assert lines[-1] == f"3 rules, version {load_rule_set([BASIC], defaults=False).version}"


def test_list_a_later_layer_overrides_by_id(cli):
    # medical.toml again as a second layer: it replaces MED-CURE, no duplicate error
    res = cli("rules", "list", "--no-default-rules", BASIC, f"{BASIC}/medical.toml")
    assert res.code == 0
    assert [line.split()[0] for line in res.out.splitlines()[:-1]] == ["ABS-BEST", "DIV-CONTACT", "MED-CURE"]


def test_list_invalid_rules_exit_2(cli):
    res = cli("rules", "list", "--no-default-rules", f"{RULES_FX}/invalid_duplicate_id")
    assert res.code == 2
    assert res.err_lines == [
        f"compliance rules: error: {RULES_FX}/invalid_duplicate_id/b.toml: rule DUP-SAME: field id: "
        f"duplicate rule id (also defined in {RULES_FX}/invalid_duplicate_id/a.toml)"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: ACTION"),
        (["check"], "invalid choice: 'check'"),
        (["validate", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_rules_bad_arguments_exit_2(cli, argv, message):
    res = cli("rules", *argv)
    assert res.code == 2
    assert message in res.err


def test_validate_warns_about_pattern_characters_normalisation_rewrites(cli) -> None:
    r = cli("rules", "validate", "--no-default-rules", f"{RULES_FX}/dead_pattern")
    assert r.code == 0, r
    warnings = [line for line in r.err_lines if line.startswith("warning:")]
    assert len(warnings) == 1, r
    assert "state.toml" in warnings[0] and "STATE-ARMY" in warnings[0] and "patterns[0]" in warnings[0]
    assert "'陆' becomes '6'" in warnings[0]


def test_build_writes_the_start_up_state_the_next_load_reads(cli, tmp_path, monkeypatch):
    from livestream_compliance import loader

    cache = tmp_path / "cache"
    res = cli("rules", "build", "--no-default-rules", BASIC, "--cache-dir", str(cache))
    path = loader.state_path([BASIC], defaults=False, cache_dir=cache)
    assert res.code == 0, res.err
    assert path.is_file() and "state built in " in res.out and str(path) in res.out
    assert res.out.startswith("3 rules, version ")
    again = cli("rules", "build", "--no-default-rules", BASIC, "--cache-dir", str(cache))
    assert again.code == 0 and "was already in" in again.out
    # the next start with these rules reads the state: no parsing, no validation, no build
    version = load_rule_set([BASIC], defaults=False).version

    def no_build(*_a, **_k):
        raise AssertionError("built again")

    monkeypatch.setattr(loader, "build_rule_set", no_build)
    checker = loader.load_checker([BASIC], defaults=False, cache_dir=cache, model=False, save="now")
    assert checker.version == version


def test_build_reports_invalid_rules_and_an_unwritable_cache(cli, tmp_path):
    bad = cli("rules", "build", "--no-default-rules", f"{RULES_FX}/invalid_unknown_key", "--cache-dir", str(tmp_path))
    assert bad.code == 2 and "unknown key" in bad.err
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    res = cli("rules", "build", "--no-default-rules", BASIC, "--cache-dir", str(blocked))
    assert res.code == 2 and "could not write the start-up cache" in res.err

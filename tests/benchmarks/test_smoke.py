"""The benchmark suite's smoke mode runs in-process and produces every table with sane numbers.

Timings are never asserted: only that the run completes, that every table is there, and that
every measured figure is a finite number above zero.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def run_module():
    sys.path.insert(0, str(BENCH))  # run.py imports its helper modules by name
    try:
        spec = importlib.util.spec_from_file_location("benchmarks_run", BENCH / "run.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses look their module up while the class is created
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop("benchmarks_run", None)
        sys.path.remove(str(BENCH))


@pytest.fixture(scope="module")
def smoke(run_module, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    cfg = run_module.config_from(run_module.parse_args(["--smoke", "--out", str(out)]))
    cfg.log = lambda _msg: None
    report = run_module.run(cfg)
    run_module.write(report, out)
    return report, out


def _numbers(table):
    """(column, value) of every measured figure in a table."""
    for row in table.rows:
        for col, cell in zip(table.columns, row):
            if hasattr(cell, "values"):  # a Stat: every repetition
                for v in cell.values:
                    yield col, v
            elif isinstance(cell, float):
                yield col, cell


def test_every_table_is_produced(run_module, smoke) -> None:
    report, _out = smoke
    missing = [k for k in run_module.EXPECTED_TABLES if k not in report.tables]
    assert not missing, f"tables missing from the smoke run: {missing}"
    for key, table in report.tables.items():
        assert table.rows, f"table {key} is empty"


def test_figures_are_finite_and_positive(smoke) -> None:
    report, _out = smoke
    for key, table in report.tables.items():
        for col, v in _numbers(table):
            assert math.isfinite(v), f"{key} / {col}: {v}"
            if "RSS" in col:  # memory deltas of tiny builds can round to zero
                continue
            assert v > 0, f"{key} / {col}: {v}"


def test_throughput_tables_cover_engine_and_baselines(smoke) -> None:
    report, _out = smoke
    for key in ("throughput-chat", "throughput-host", "throughput-mix"):
        rows = {(r[0], r[1]) for r in report.tables[key].rows}
        for backend in ("ahocorasick-rs", "pyahocorasick"):
            assert (f"engine {backend}", "per-message") in rows, key
            assert (f"engine {backend}", "batch") in rows, key
        assert any(name.startswith("raw pyahocorasick") for name, _ in rows), key
        assert any(name.startswith("raw ahocorasick-rs") for name, _ in rows), key
        assert any(name.startswith("jieba") for name, _ in rows), key


def test_every_target_is_reported(smoke) -> None:
    report, _out = smoke
    targets = " ".join(str(r[0]) for r in report.tables["targets"].rows)
    for phrase in ("per-message API", "batch path", "full pipeline", "houbb shape", "cold start"):
        assert phrase in targets
    # the 3× verdicts come from the paired measurement, for each corpus and API
    for key in ("chat", "host", "mix"):
        for api in ("batch", "per-message"):
            rows = [r for r in report.tables["targets"].rows
                    if str(r[0]).startswith(f"full pipeline ≤ 3× fastest raw scan, paired — {key} lines, {api} ")]
            assert len(rows) == 1, (key, api)
            assert "met" in str(rows[0][2]) or "MISSED" in str(rows[0][2])
    # the one command runs the sidecar under load too (a child process), and its targets join the table
    sidecar = [str(r[0]) for r in report.tables["targets"].rows if str(r[0]).startswith("sidecar: ")]
    assert any("msg/s per process" in r for r in sidecar), sidecar
    assert not any("failed" in str(r[1]) for r in report.tables["targets"].rows if str(r[0]).startswith("sidecar"))


def test_markdown_written(smoke) -> None:
    report, out = smoke
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Engine benchmarks")
    for table in report.tables.values():
        assert f"### {table.title}" in text

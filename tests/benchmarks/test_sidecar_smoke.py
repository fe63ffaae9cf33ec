"""The sidecar load benchmark's smoke mode drives a real ``compliance serve`` process and reports sane numbers.

Timings are never asserted (the machine is shared): only that the run completes, that every message
is answered exactly once (acks mode), that (nearly) every violating line gets a warning, and that the
figures are finite and positive.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def sidecar_load():
    spec = importlib.util.spec_from_file_location("benchmarks_sidecar_load", BENCH / "sidecar_load.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is created
    try:
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def smoke(sidecar_load, tmp_path_factory):
    out = tmp_path_factory.mktemp("sidecar") / "SIDECAR.md"
    cfg = sidecar_load.config_from(sidecar_load.parse_args(["--smoke", "--out", str(out)]))
    cfg.log = lambda _msg: None
    report = sidecar_load.run(cfg)
    sidecar_load.write(report, out)
    return report, out


def test_every_phase_ran(smoke) -> None:
    report, _out = smoke
    cfg = report.cfg
    assert {(r.offered, r.acks) for r in report.runs} == {(rate, acks) for rate in cfg.rates for acks in (True, False)}
    assert report.saturation and report.ramp and report.memory


def test_every_message_answered_once(smoke) -> None:
    report, _out = smoke
    for r in report.runs + report.ramp:
        assert r.drained, r.label
        assert not r.errors and not r.duplicates and not r.unexpected, (r.label, r.errors, r.duplicates)
        assert r.sent == r.messages
        if r.acks:
            assert r.answered == r.messages, (r.label, r.offered)
        else:
            assert 0 < r.answered < r.messages  # only warnings come back
        assert r.violating > 0
        # a violating line is checked joined to the same viewer's previous line, whose words (a negation,
        # say) can change the verdict: nearly all, not necessarily all, get a warning
        assert r.violating_warned >= 0.9 * r.violating, (r.label, r.violating_warned, r.violating)


def test_figures_are_finite_and_positive(smoke) -> None:
    report, _out = smoke
    for r in report.runs + report.ramp:
        for q in (50, 99, 99.9, 100):
            v = r.p(q)
            assert math.isfinite(v) and v > 0, (r.label, q, v)
        assert r.achieved > 0 and r.send_rate > 0
        assert r.server_cpu >= 0 and r.wall > 0
    for s in report.saturation:
        assert s.answered > 0 and s.rate > 0
        assert math.isfinite(s.capacity) and s.capacity > 0
    for m in report.memory:
        assert m.base_kib > 10_000  # a Python process with the rules loaded
        assert m.active_kib >= m.base_kib
        assert math.isfinite(m.per_idle) and math.isfinite(m.per_active)


def test_markdown(smoke, sidecar_load) -> None:
    report, out = smoke
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Sidecar under load")
    assert sidecar_load.BEGIN in text and sidecar_load.END in text
    for key in ("targets", "latency", "saturation", "ramp", "memory", "facts"):
        assert f"### {report.tables[key].title}" in text, key
    # a second write keeps what is outside the generated block
    out.write_text(text + "\nhand-written notes\n", encoding="utf-8")
    sidecar_load.write(report, out)
    assert out.read_text(encoding="utf-8").endswith("hand-written notes\n")


def test_batch_form_is_reported_separately(smoke) -> None:
    report, out = smoke
    assert {s.batch for s in report.saturation} == {1, report.cfg.sat_batch}
    for s in report.saturation:
        if s.batch > 1:
            assert s.answered >= s.batch and s.window % s.batch == 0
    text = out.read_text(encoding="utf-8")
    assert "one chat frame per message" in text
    assert "not the target's measure" in text

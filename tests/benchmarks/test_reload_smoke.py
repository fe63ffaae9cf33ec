"""The reload-latency benchmark's smoke mode drives a real ``compliance serve`` through two reloads.

Timings are never asserted (the machine is shared): only that both reloads happen, that every frame
sent is answered, and that the table has its rows.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_reload_latency_smoke(tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("benchmarks_reload_latency", BENCH / "reload_latency.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        out = tmp_path / "reload.md"
        assert mod.main(["--smoke", "--out", str(out)]) == 0
    finally:
        sys.modules.pop(spec.name, None)
    table = out.read_text(encoding="utf-8")
    rows = [line for line in table.splitlines() if line.startswith("| edited") or line.startswith("| unchanged")]
    assert len(rows) == 4, table
    assert "- frames never answered: 0" in table
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        reload_s = float(cells[2].split(" ")[0])
        answers = float(cells[4].split(" ")[0].replace(",", ""))
        assert reload_s > 0 and answers > 0, row

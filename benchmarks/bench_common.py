"""Shared pieces of the benchmark suite: result tables, statistics, timing, machine facts, inputs.

Used by ``run.py`` and ``bench_engine.py``; no measurements happen at import time.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
DEFAULT_CORPORA = PROJECT.parent / "shared" / "corpora"


# --------------------------------------------------------------------------- results
@dataclass
class Stat:
    """Repeated measurements of one quantity; rendered as ``median (min–max)``."""

    values: list[float]
    digits: int = 0  # decimals shown
    scale: float = 1.0  # multiply before display (e.g. 1e-6 for M)
    suffix: str = ""

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def fmt(self, v: float) -> str:
        return f"{v * self.scale:,.{self.digits}f}{self.suffix}"

    def __str__(self) -> str:
        if len(self.values) == 1:
            return self.fmt(self.values[0])
        return f"{self.fmt(self.median)} ({self.fmt(self.min)}–{self.fmt(self.max)})"


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "|".join(" --- " for _ in self.columns) + "|")
        for row in self.rows:
            out.append("| " + " | ".join(_cell(c) for c in row) + " |")
        if self.notes:
            out.append("")
            out.extend(f"- {n}" for n in self.notes)
        out.append("")
        return "\n".join(out)


def _cell(c: Any) -> str:
    if c is None:
        return "—"
    if isinstance(c, float):
        return f"{c:,.2f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c).replace("|", "\\|").replace("\n", " ")


def stat(values: Sequence[float], digits: int = 0, scale: float = 1.0, suffix: str = "") -> Stat:
    return Stat([float(v) for v in values], digits, scale, suffix)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# --------------------------------------------------------------------------- timing
def timed(fn: Callable[[], Any]) -> tuple[float, Any, float]:
    """``(cpu seconds, result, wall seconds)`` of ``fn()``; the cyclic GC is collected before and paused during it.

    CPU time (``time.process_time``) is this process's own time: on a machine shared with other jobs it
    leaves out the time the scheduler gave to them, which wall time does not.
    """
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        c1, w1 = time.process_time(), time.perf_counter()
    finally:
        if enabled:
            gc.enable()
    return c1 - c0, result, w1 - w0


def per_item_ns(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[int]:
    """Time ``fn(item)`` for every item with ``perf_counter_ns``; returns the sorted durations."""
    ns = time.perf_counter_ns
    out = [0] * len(items)
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i, item in enumerate(items):
            t0 = ns()
            fn(item)
            out[i] = ns() - t0
    finally:
        if enabled:
            gc.enable()
    out.sort()
    return out


def timer_floor_ns(n: int = 20_000) -> int:
    """Median cost of an empty ``perf_counter_ns`` pair: the floor under every per-line latency."""
    return int(statistics.median(per_item_ns(lambda _x: None, [None] * n)))


# --------------------------------------------------------------------------- machine facts
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def package_versions(names: Sequence[str]) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def git_state() -> str:
    """Commit and whether the working tree differs (read-only git calls)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "compliance", "rules"], cwd=PROJECT,
                               capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "n/a"
        return head.stdout.strip() + (" + uncommitted changes in compliance/ or rules/" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def machine_facts() -> dict[str, str]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count() or 0
    return {
        "date (UTC)": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "CPU": cpu_model(),
        "cores": f"{os.cpu_count()} logical ({affinity} usable by this process)",
        "Python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "OS": platform.platform(),
    }


# --------------------------------------------------------------------------- inputs
def read_lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def repeat_to(lines: Sequence[str], n: int) -> list[str]:
    if not lines:
        return []
    reps = -(-n // len(lines))
    return (list(lines) * reps)[:n]


def utf8_bytes(lines: Sequence[str]) -> int:
    return sum(len(s.encode("utf-8")) for s in lines)


#: houbb/sensitive-word's benchmark alphabet for the ASCII part (BenchmarkTimesTest.java)
HOUBB_ASCII = "1234567890bcdefghiJKLMNOPQRSTUVWXYZ"


def houbb_strings(n: int, seed: int = 20240601, prefix: str = "", suffix: str = "") -> list[str]:
    """``n`` strings shaped like houbb/sensitive-word's benchmark input.

    9 random CJK characters + 100 random characters of that benchmark's ASCII alphabet + 11 random
    CJK characters (20 CJK in all), seeded. ``prefix``/``suffix`` replace the start of the CJK parts
    (to plant known hits, as the Java benchmark does with its two profanities).
    """
    rng = random.Random(seed)

    def cjk(k: int) -> str:
        return "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(k))

    out = []
    for _ in range(n):
        head = (prefix + cjk(max(0, 9 - len(prefix))))[:max(9, len(prefix))]
        tail = (suffix + cjk(max(0, 11 - len(suffix))))[:max(11, len(suffix))]
        out.append(head + "".join(rng.choice(HOUBB_ASCII) for _ in range(100)) + tail)
    return out


def synthetic_terms(n: int, seed: int = 7) -> list[str]:
    """``n`` distinct random CJK terms of 2-6 characters (U+4E00..U+9FA5), seeded."""
    rng = random.Random(seed * 1_000_003 + n)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        t = "".join(chr(rng.randint(0x4E00, 0x9FA5)) for _ in range(rng.randint(2, 6)))
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def synthetic_rules_toml(terms: Sequence[str], per_rule: int = 1000) -> str:
    """A valid rule file with ``terms`` spread over rules of ``per_rule`` terms each."""
    parts = ['[pack]\nid = "synthetic"\nversion = "1"\ndescription = "benchmark: generated terms"\n']
    for r in range(0, len(terms), per_rule):
        chunk = terms[r : r + per_rule]
        t0 = chunk[0]
        quoted = ", ".join(f'"{t}"' for t in chunk)
        parts.append(
            f'[[rules]]\nid = "SYN-R{r // per_rule}"\ncategory = "synthetic"\nseverity = "info"\n'
            f"terms = [{quoted}]\n"
            'legal_basis = [{ law = "benchmark law", article = "1" }]\n'
            'message = "synthetic term"\nsuggestion = "none"\n'
            f'must_match = [{{ text = "{t0}", hit = "{t0}" }}, {{ text = "x{t0}", hit = "{t0}" }}]\n'
            'must_not_match = ["abc", "def"]\n'
        )
    return "\n".join(parts)


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0

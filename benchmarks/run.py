"""Engine benchmarks: throughput, latency, the houbb/sensitive-word shape, cold start, build cost, profiles.

    python benchmarks/run.py                              # full run (~25 min on 2 cores), writes benchmarks/RESULTS.md
                                                          # and, by running sidecar_load.py, benchmarks/SIDECAR.md
    python benchmarks/run.py --smoke                      # CI mode (tiny inputs, 1 repetition; ~1 min)
    python benchmarks/run.py --no-sidecar                 # the engine only (~20 min; ~10 without the bench extra)
    python benchmarks/run.py --out /tmp/R.md --reps 7     # elsewhere / more repetitions

Needs the ``bench`` extra for every baseline (``pip install -e '.[bench]'``: flashtext, py-spy);
without it those rows are skipped and say so. Real text is read from ``../shared/corpora``
(``--corpora``); without it, the rules' must_not_match texts stand in (labelled as such).
Every figure is min/median/max over repeated, interleaved runs on one core (the process is
single-threaded); on a shared machine look at the spread, not only the median.
"""

from __future__ import annotations

import argparse
import gc
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_engine as be  # noqa: E402
from bench_common import (  # noqa: E402
    DEFAULT_CORPORA,
    HERE,
    Table,
    git_state,
    loadavg,
    machine_facts,
    package_versions,
    stat,
    timer_floor_ns,
)

PACKAGES = ("livestream-compliance", "pyahocorasick", "ahocorasick-rs", "jieba", "opencc", "pydantic", "flashtext",
            "py-spy")

#: Tables every run produces (the smoke test checks for them).
EXPECTED_TABLES = (
    "targets", "machine", "ruleset", "throughput-chat", "throughput-host", "throughput-mix", "houbb", "cold-start",
    "startup-phases", "build", "components", "cprofile-check-chat", "cprofile-batch-chat", "proposal-ab",
    "prototype-jieba-window",
)


@dataclass
class Report:
    tables: dict[str, Table] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    smoke: bool = False

    def add(self, t: Table) -> Table:
        self.tables[t.key] = t
        return t


# --------------------------------------------------------------------------- the run
def run(cfg: be.Config) -> Report:
    from livestream_compliance import Source

    t_start = time.perf_counter()
    rep = Report(smoke=cfg.smoke)
    raw_log = cfg.log

    def log(msg: str) -> None:
        raw_log(f"[{time.perf_counter() - t_start:6.1f} s] {msg}")

    cfg.log = log
    load_before = loadavg()

    log("loading checkers ...")
    eng = be.load_engines(cfg)
    facts = machine_facts()
    facts["load average (1/5/15 min) at start"] = load_before
    versions = package_versions(PACKAGES)
    facts["packages"] = ", ".join(f"{k} {v}" for k, v in versions.items())
    facts["project"] = git_state()
    facts["timer floor (perf_counter_ns pair)"] = f"{timer_floor_ns()} ns"
    mt = rep.add(Table("machine", "Machine and software", ["item", "value"]))
    mt.rows = [[k, v] for k, v in facts.items()]

    rt = rep.add(Table("ruleset", "Rule set measured (default packs)", ["item", "value"]))
    rt.rows = [
        ["rules / terms + patterns", f"{len(eng.rules.rules):,} / {eng.rules.term_count():,}"],
        ["rule set version", eng.rules.version],
        ["load_checker() in this process (s)", round(eng.load_seconds, 3)],
    ]
    for s in Source:
        rt.rows.append([f"{s.value}: automaton keys (terms, variants, exceptions) / regex patterns",
                        f"{len(eng.main._automata[s].keys):,} / {len(eng.main._patterns[s][1]):,}"])

    log("building corpora ...")
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    corpora, corpus_notes = be.build_corpora(cfg, eng)
    rep.notes += corpus_notes
    extra: dict[str, Any] = {
        "jieba_lcut": jieba.lcut,
        "terms": {s: {eng.main.normalize(t) for r in eng.rules.rules if s in r.sources for t in r.terms} for s in Source},
    }

    # Long-lived objects (jieba's dictionaries, automata, corpora) would make every gc.collect() before a
    # timed run take ~0.1 s; freeze them into the permanent generation once.
    gc.collect()
    gc.freeze()
    try:
        _measure(cfg, rep, eng, corpora, extra, mt, log)
    finally:
        gc.unfreeze()
    rep.seconds = time.perf_counter() - t_start
    mt.rows.append(["load average (1/5/15 min) at end", loadavg()])
    mt.rows.append(["benchmark wall time", f"{rep.seconds:.0f} s ({'smoke' if cfg.smoke else 'full'} mode, "
                                           f"{cfg.reps} repetitions)"])
    return rep


def _measure(cfg: be.Config, rep: Report, eng: be.Engines, corpora: list[be.Corpus], extra: dict[str, Any],
             mt: Table, log: Any) -> None:
    summaries: dict[str, dict[str, Any]] = {}
    for c in corpora:
        log(f"throughput: {c.key} ({len(c.lines):,} lines) ...")
        methods = be.engine_methods(cfg, eng, c, extra)
        measured = be.measure_corpus(cfg, c, methods)
        t, summary = be.throughput_table(c, measured)
        summary["paired"] = be.paired_ratios(cfg, c, measured, summary)
        for api, p in summary["paired"].items():
            t.notes.append(
                f"Paired ({api}): {p['engine']} against {p['raw']}, taking turns on blocks of {cfg.chunk:,} lines "
                f"({p['lines']:,} lines a pass, {len(p['ratios'])} passes): time ratio {stat(p['ratios'], 2)}× "
                "(median (min–max)); the target's verdict reads this ratio (see the targets table).")
        rep.add(t)
        summaries[c.key] = summary
    if extra.get("missing"):
        rep.notes.append("Skipped baselines (not installed): " + ", ".join(sorted(extra["missing"])))

    log("houbb shape ...")
    ht, hsum = be.houbb_section(cfg, eng)
    rep.add(ht)

    log("cold start ...")
    ct, csum = be.cold_start_section(cfg)
    rep.add(ct)
    rep.add(be.startup_breakdown(cfg))

    log("build cost ...")
    rep.add(be.build_section(cfg))

    log("profiles ...")
    rep.add(be.component_table(cfg, eng, [c for c in corpora if c.key in ("chat", "host")]))
    for t in be.cprofile_tables(cfg, eng, corpora):
        rep.add(t)
    spy, why = be.py_spy_tables(cfg)
    for t in spy:
        rep.add(t)
    if why:
        rep.notes.append(why)

    log("proposed diff: A/B ...")
    rep.add(be.proposal_ab(cfg, eng, corpora))
    rep.add(jieba_window_table(cfg, eng, corpora))
    sidecar_rows: list[list[str]] = []
    if cfg.sidecar:
        log("sidecar under load (benchmarks/sidecar_load.py) ...")
        sidecar_rows = sidecar_targets(cfg)
    rep.tables = {"targets": targets_table(summaries, hsum, csum, sidecar_rows), **rep.tables}


#: the engine rows of the throughput tables (native: the default where the C extension was built)
ENGINE_BACKENDS = ("native", "ahocorasick-rs", "pyahocorasick")


def _row(summary: dict[str, Any], name: str, api: str) -> Any:
    return summary["rows"].get((name, api)) if summary else None


def _lps(r: Any) -> list[float]:
    return [r.n_lines / s for s in r.seconds]


def _verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    ok = value >= target if higher_is_better else value <= target
    ratio = value / target
    return f"**{'met' if ok else 'MISSED'}** ({ratio:.2f}× target)"


#: the cold-start cases the issue's target (≤ 1.5 s "with the default packs") is about: a restart,
#: and the first start of an installed package or of an image that ran `compliance rules build`.
#: The others change the rules (a delta build) or have no state to read (a full build): reported
#: against the same 1.5 s, for reading.
_DEFAULT_PACK_STARTS = ("warm", "prebuilt", "image")


def sidecar_targets(cfg: be.Config) -> list[list[str]]:
    """Run benchmarks/sidecar_load.py (a child process: it starts the real server, pins itself and the
    server to a core each, and must not share this process's heap) and return its targets as rows of
    this report's targets table; a failed run is a row saying so."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-sidecar-") as tmp:
        out = Path(tmp) / "targets.json"
        cmd = [sys.executable, str(HERE / "sidecar_load.py"), "--json", str(out),
               "--out", str(cfg.sidecar_out) if cfg.sidecar_out is not None else "-"] + (["--smoke"] if cfg.smoke else [])
        if cfg.py_spy and not cfg.smoke:
            cmd.append("--profile")  # the server's profile at load (py-spy; cProfile without it), as the engine's above
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0 or not out.is_file():
            why = (p.stderr or "").strip().splitlines()[-1:] or ["no output"]
            return [["sidecar under load (benchmarks/sidecar_load.py)", f"failed: exit {p.returncode}: {why[0][:300]}",
                     "**MISSED** (the run failed)"]]
        data = json.loads(out.read_text(encoding="utf-8"))
    where = data.get("out") or "not written (smoke mode)"
    rows = []
    for target, measured, met in data["targets"]:
        if target.startswith("separate line"):
            verdict = f"{met} (for reading)"
        else:
            verdict = "**met**" if met == "yes" else f"**MISSED** ({met})"
        rows.append([f"sidecar: {target} — details in {Path(where).name if data.get('out') else where}", measured, verdict])
    return rows


def targets_table(summaries: dict[str, dict[str, Any]], hsum: dict[str, Any], csum: dict[str, Any],
                  sidecar_rows: list[list[str]] | None = None) -> Table:
    t = Table("targets", "Targets (the engine as it is; the proposed diff is measured under 'Proposed optimisations')",
              ["target", "measured: median (min–max)", "verdict"])
    chat = summaries.get("chat", {})
    for backend in ENGINE_BACKENDS:
        r = _row(chat, f"engine {backend}", "per-message")
        if r:
            v = _lps(r)
            t.rows.append([f"per-message API ≥ 300,000 real chat lines/s ({backend})", f"{stat(v)} lines/s",
                           _verdict(statistics.median(v), 300_000)])
    for backend in ENGINE_BACKENDS:
        r = _row(chat, f"engine {backend}", "batch")
        if r:
            v = _lps(r)
            t.rows.append([f"batch path ≥ 1,200,000 real chat lines/s ({backend})", f"{stat(v)} lines/s",
                           _verdict(statistics.median(v), 1_200_000)])
    for key in ("chat", "host", "mix"):
        s = summaries.get(key)
        if not s or not s.get("fastest_raw_per_line_s"):
            if s is not None:
                t.rows.append([f"full pipeline ≤ 3× fastest raw scan ({key})", "n/a: no automaton keys for this source", ""])
            continue
        for api, ref_key, ref_name in (("batch", "raw_per_line_s", "raw"), ("per-message", "raw_line_per_line_s", "raw_line")):
            best = min((_row(s, f"engine {b}", api) for b in ENGINE_BACKENDS),
                       key=lambda r: statistics.median(r.seconds) / r.n_lines if r else 1e9)
            if not best:
                continue
            # the verdict: against the baselines (the fastest third-party automaton); then,
            # for reading, against the package's own C automaton scanning the same keys raw
            paired = s.get("paired", {}).get(api)
            if paired:
                # the verdict: the paired measurement (both sides timed block by block, see paired_ratios)
                ratio = statistics.median(paired["ratios"])
                t.rows.append([f"full pipeline ≤ 3× fastest raw scan, paired — {key} lines, {api} ({paired['engine']}) vs "
                               f"{paired['raw']}", f"{stat(paired['ratios'], 2)}×", _verdict(ratio, 3.0, higher_is_better=False)])
            for pool, what in (("ext", "fastest raw scan"), ("own", "the package's own raw C scan (stricter; for reading)")):
                if not s.get(f"{pool}_{ref_key}"):
                    continue
                ratio = statistics.median(best.seconds) / best.n_lines / s[f"{pool}_{ref_key}"]
                verdict = _verdict(ratio, 3.0, higher_is_better=False)
                if paired or pool == "own":  # for reading: the medians of the throughput table, timed apart
                    verdict = verdict.replace("**", "") + " (unpaired; for reading)"
                t.rows.append([f"full pipeline ≤ 3× {what} — {key} lines, {api} ({best.method.name}) vs "
                               f"{s[f'{pool}_{ref_name}']}", f"{ratio:.2f}×", verdict])
    for (variant, checker, api), cps in hsum.items():
        if variant == "random" and api == "per-message" and checker.startswith("engine") and "no paraphrase model" not in checker:
            t.rows.append([f"houbb shape ≥ 150,000 checks/s ({checker})", f"{stat(cps)} checks/s",
                           _verdict(statistics.median(cps), 150_000)])
    for key, label in (("warm", "warm state cache (normal restart)"),
                       ("changed", "after a rule change, the cache keeping the last build's state: a delta build"),
                       ("no_state", "no state in the cache, which keeps the pattern analyses: a full build"),
                       ("empty", "empty state cache, no prebuilt state"),
                       ("off", "state cache off, no prebuilt state"),
                       ("fresh", "empty jieba and state caches (fresh container), no prebuilt state"),
                       ("prebuilt", "fresh container, installed package with its prebuilt state"),
                       ("image", "fresh container whose image ran `compliance rules build`"),
                       ("custom_first", "default packs + a custom pack, first start in a fresh container (delta on the prebuilt state)"),
                       ("custom_edit", "default packs + a custom pack, restart after a term added (delta)")):
        if csum.get(key):
            verdict = _verdict(statistics.median(csum[key]), 1.5, higher_is_better=False)
            if key not in _DEFAULT_PACK_STARTS:
                # the target is the default packs' start; these starts build or patch, for reading
                verdict = verdict.replace("**", "") + " (not the default packs' start: for reading)"
            t.rows.append([f"cold start ≤ 1.5 s (spawn → ready, {label})", f"{stat(csum[key], 3)} s", verdict])
    t.rows.extend(sidecar_rows or [])
    return t


def jieba_window_table(cfg: be.Config, eng: be.Engines, corpora: list[be.Corpus]) -> Table:
    from livestream_compliance import Source

    t = Table("prototype-jieba-window", "Evidence for P6: jieba on the whole line vs a window around the hit "
              "(word_boundary candidates)", ["input", "candidates", "mean line chars", "same verdict",
                                             "whole line µs/candidate", "±12-char window µs/candidate"])
    try:
        from bench_prototypes import jieba_window_evidence
        from bench_common import houbb_strings

        cjk = [eng.main.normalize(t) for r in eng.rules.rules if Source.HOST in r.sources and r.word_boundary
               for t in r.terms if all("\u4e00" <= ch <= "\u9fa5" for ch in t) and len(t) >= 2]
        hit = cjk[0] if cjk else ""
        inputs = [(c.key, [(s, c.source) for s in c.unit]) for c in corpora]
        inputs.append((f"houbb shape with '{hit}' planted", [(s, Source.HOST) for s in
                                                             houbb_strings(300 if cfg.smoke else 1_000, prefix=hit)]))
        for name, samples in inputs:
            ev = jieba_window_evidence(eng.main, samples, limit=200 if cfg.smoke else 3_000)
            if not ev.get("cases"):
                t.rows.append([name, 0, None, "", None, None])
                continue
            t.rows.append([name, int(ev["cases"]), f"{ev['mean_line_chars']:.1f}", f"{ev['agree']:.2%}",
                           stat([ev["full_us"]], 1), stat([ev["window_us"]], 1)])
    except Exception as exc:  # noqa: BLE001 - engine internals changed
        t.rows.append([f"n/a ({type(exc).__name__}: {exc})", None, None, "", None, None])
    t.notes.append("One timing pass over all candidates (single run): evidence for the proposal, not a tracked figure.")
    return t


# --------------------------------------------------------------------------- markdown
SECTIONS = (
    ("Targets", ("targets",)),
    ("Machine, software and rules", ("machine", "ruleset")),
    ("Engine throughput and per-line latency", ("throughput-",)),
    ("The houbb/sensitive-word reference shape", ("houbb",)),
    ("Cold start", ("cold-start", "startup-phases")),
    ("Build time and memory for large term lists", ("build",)),
    ("Profiles of the hot path", ("components", "cprofile-", "py-spy-")),
    ("Proposed optimisations", ("proposal-ab", "prototype-jieba-window")),
)


def markdown(rep: Report) -> str:
    import bench_proposals as bp

    out = [
        "# Engine benchmarks",
        "",
        "Generated by `python benchmarks/run.py`"
        + (" --smoke (**smoke run: tiny inputs, 1 repetition — not for comparison**)" if rep.smoke else " (full mode)")
        + ". Each figure is `median (min–max)` over the repetitions; methods are interleaved inside each "
        "repetition so that background load on this shared 2-core machine hits them alike. One process, "
        "one thread: every figure is for one core.",
        "",
    ]
    if rep.notes:
        out += [f"- {n}" for n in rep.notes] + [""]
    used: set[str] = set()
    for title, prefixes in SECTIONS:
        tables = [t for k, t in rep.tables.items() if any(k == p or (p.endswith("-") and k.startswith(p)) for p in prefixes)]
        if not tables:
            continue
        out += [f"## {title}", ""]
        if title.startswith("Proposed"):
            out += [bp.ANALYSIS.strip(), ""]
        for t in tables:
            out.append(t.markdown())
            used.add(t.key)
        if title.startswith("Proposed"):
            out += [f"<details><summary>The proposed diff (against commit {bp.DIFF_BASE}; "
                    "`bench_proposals.DIFF`)</summary>", "", "```diff", bp.DIFF.strip(), "```", "", "</details>", ""]
    rest = [t for k, t in rep.tables.items() if k not in used]
    if rest:
        out += ["## Other", ""] + [t.markdown() for t in rest]
    out += ["## Method", "", METHOD.strip(), ""]
    return "\n".join(out)


METHOD = """
- **Throughput**: every corpus is its distinct lines repeated to the configured size (200,000 lines in full
  mode). A timed run calls the method on all lines (per-message: one call per line; batch: `check_batch` on
  chunks of 10,000; raw joined: the chunk joined with `\\n` and scanned once). The cyclic GC is collected before
  and paused during each timed run (long-lived objects are frozen first). A method that would take longer than
  the per-run cap (0.75 s) is timed on a prefix of whole copies of the distinct lines instead (the 'lines timed'
  column): same text, fewer repeats.
- **Raw scans** use the engine's own automaton keys for the source (terms, their doubled-character variants,
  exceptions and pattern triggers) on the raw, un-normalised lines: `pyahocorasick` (`list(A.iter(line))`),
  `ahocorasick-rs` (`find_matches_as_indexes(line, overlapping=True)`, default implementation and
  `Implementation.DFA`). flashtext gets the same keys; the jieba baseline is `jieba.lcut(line)` (global
  dictionary, HMM on) with each token looked up in the set of the source's normalised rule terms. Their
  'lines flagged' counts raw key hits (candidates), not findings.
- **Latency**: a seeded sample of distinct lines, each call timed alone with `perf_counter_ns`; p50/p99
  per repetition, then min/median/max over repetitions. The timer floor is listed under Machine.
- **'time ÷ fastest raw scan'**: median seconds per line of the row over that of the fastest raw scan of any
  form on the same lines.
- **Paired ratios** (the ≤ 3× verdicts): the default engine and the fastest third-party raw scan take turns
  on the same blocks of 10,000 lines (alternating which goes first), block after block; each pass over the
  lines gives one ratio of their CPU times, so both sides of a ratio meet the same machine speed.
- **Sidecar**: `benchmarks/sidecar_load.py` in a child process (its own method: SIDECAR.md); its targets
  are listed in the targets table.
- **houbb shape**: 100,000 seeded strings (9 CJK + 100 ASCII from the Java benchmark's alphabet + 11 CJK),
  checked as host speech with the default packs; slow variants time a prefix of them (see 'checks timed').
- **Cold start**: a new interpreter per run running `load_checker(); check('x')`; wall time from before
  spawning to the child's 'ready' line.
- **Build**: random 2–6 character CJK terms into generated rule files (1,000 terms per rule), built with
  `build_rule_set` and `Checker(...)` in a fresh process per run; RSS deltas from /proc.
- **Proposed diff** (`bench_proposals.DIFF`): applied with `patch` to a temporary copy of `compliance/`,
  imported next to the real package and measured against it in the same process, interleaved, CPU time;
  findings compared on every distinct input line first.
- **CPU time vs wall time**: throughput figures use this process's CPU time (`time.process_time`), which
  leaves out time the scheduler gave to other jobs on this shared machine; wall-clock figures are listed
  next to them. Latency percentiles and cold start are wall time.
"""

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="seconds-long CI mode: tiny inputs, one repetition")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="markdown report (default benchmarks/RESULTS.md)")
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA, help="folder with livechat/chat.txt, host.txt")
    ap.add_argument("--reps", type=int, help="repetitions of every measurement (default 5; smoke 1)")
    ap.add_argument("--lines", type=int, help="lines per corpus (default 200,000)")
    ap.add_argument("--cap", type=float, help="longest single timed run of one method, seconds (default 0.75)")
    ap.add_argument("--build-sizes", help="comma-separated term counts for the build table (default 1000,10000,100000)")
    ap.add_argument("--build-reps", type=int, help="repetitions per build size below 100,000 terms (default 5)")
    ap.add_argument("--build-reps-large", type=int, help="repetitions per build size of 100,000+ terms (default 2)")
    ap.add_argument("--no-py-spy", action="store_true", help="skip the py-spy sampling profiles")
    ap.add_argument("--no-sidecar", action="store_true",
                    help="skip the sidecar under load (benchmarks/sidecar_load.py, run as a child process; ~5 min)")
    ap.add_argument("--sidecar-out", type=Path,
                    help="the sidecar's report (default: SIDECAR.md beside --out; the smoke mode writes none)")
    return ap.parse_args(argv)


def config_from(a: argparse.Namespace) -> be.Config:
    cfg = be.Config.smoke_config() if a.smoke else be.Config()
    cfg.corpora = a.corpora
    if a.reps:
        cfg.reps = a.reps
        cfg.cold_reps = a.reps
    if a.lines:
        cfg.lines = a.lines
    if a.cap:
        cfg.cap_seconds = a.cap
    if a.build_sizes:
        cfg.build_sizes = tuple(int(x) for x in a.build_sizes.split(","))
    if a.build_reps:
        cfg.build_reps = a.build_reps
    if a.build_reps_large:
        cfg.build_reps_large = a.build_reps_large
    if a.no_py_spy:
        cfg.py_spy = False
    cfg.sidecar = not a.no_sidecar
    cfg.sidecar_out = a.sidecar_out or (None if a.smoke else a.out.with_name("SIDECAR.md"))
    return cfg


#: the section benchmarks/workers.py writes into RESULTS.md, kept when this script rewrites the file
WORKERS_BEGIN, WORKERS_END = "<!-- workers:begin -->", "<!-- workers:end -->"
#: hand-written notes (what changed, before/after figures), kept when this script rewrites the file
NOTES_BEGIN, NOTES_END = "<!-- notes:begin -->", "<!-- notes:end -->"


def write(rep: Report, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(rep)
    old = out.read_text(encoding="utf-8") if out.exists() else ""
    for begin, end in ((NOTES_BEGIN, NOTES_END), (WORKERS_BEGIN, WORKERS_END)):
        if begin in old and end in old:
            kept = old[old.index(begin): old.index(end) + len(end)]
            text = text.rstrip("\n") + "\n\n" + kept + "\n"
    out.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    rep = run(config_from(a))
    write(rep, a.out)
    print(rep.tables["targets"].markdown())
    print(f"wrote {a.out} in {rep.seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

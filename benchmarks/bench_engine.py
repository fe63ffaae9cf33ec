"""Engine benchmarks: throughput and latency on real text, the houbb/sensitive-word shape, cold start,
build cost for large term lists, and profiles of the hot path. Driven by ``run.py``.

Run as a script only as ``run.py``'s helper for measurements that need a fresh process
(``build-child``, ``profile-target``).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import linecache
import os
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (  # noqa: E402
    DEFAULT_CORPORA,
    PROJECT,
    Table,
    houbb_strings,
    per_item_ns,
    percentile,
    read_lines,
    repeat_to,
    rss_bytes,
    stat,
    synthetic_rules_toml,
    synthetic_terms,
    timed,
)


# --------------------------------------------------------------------------- configuration
@dataclass
class Config:
    smoke: bool = False
    reps: int = 5
    lines: int = 200_000  # lines per corpus (real corpora are repeated to reach it)
    chunk: int = 10_000  # batch size for check_batch
    latency_sample: int = 2_000  # lines timed one by one for p50/p99
    cap_seconds: float = 0.75  # longest single timed run of one method; slower methods time fewer lines
    houbb_checks: int = 100_000
    build_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    build_reps: int = 5
    build_reps_large: int = 2  # for sizes >= 100,000 terms (20-45 s per build)
    cold_reps: int = 5
    cold_reps_fresh: int = 3
    corpora: Path = DEFAULT_CORPORA
    profile_seconds: float = 2.0
    equivalence_lines: int = 0  # 0: every distinct line
    py_spy: bool = True
    #: run benchmarks/sidecar_load.py too (a child process; its targets join the targets table)
    sidecar: bool = True
    #: where the sidecar writes its report (None: nowhere; the smoke mode)
    sidecar_out: Path | None = None
    log: Callable[[str], None] = field(default=lambda msg: print(msg, file=sys.stderr, flush=True))

    @classmethod
    def smoke_config(cls, **kw: Any) -> Config:
        base = dict(
            smoke=True, reps=1, lines=1_000, chunk=250, latency_sample=100, cap_seconds=0.5, houbb_checks=300,
            build_sizes=(300,), build_reps=1, build_reps_large=1, cold_reps=1, cold_reps_fresh=0, profile_seconds=0.3,
            py_spy=False, equivalence_lines=300,
        )
        base.update(kw)
        return cls(**base)


@dataclass
class Method:
    name: str
    api: str  # "per-message", "batch", "raw per-line", "raw joined", "baseline", "prototype ..."
    run: Callable[[Sequence[str]], Any]  # processes a list of lines, returns per-line results or a match list
    one: Callable[[str], Any] | None = None  # one line (for per-line latency)
    kind: str = "engine"  # engine | raw | baseline | proto
    note: str = ""


@dataclass
class Corpus:
    key: str
    title: str
    source: Any
    unit: list[str]  # the distinct lines (one copy)
    lines: list[str]  # repeated to cfg.lines
    cum_bytes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        acc = 0
        self.cum_bytes = [0]
        for s in self.lines:
            acc += len(s.encode("utf-8"))
            self.cum_bytes.append(acc)


@dataclass
class Engines:
    """The checkers measured: the default backend (``main``) and the other backends."""

    main: Any
    py: Any
    rules: Any
    load_seconds: float
    #: the default backend without the paraphrase model (what the model costs on host speech)
    rules_only: Any = None
    #: the ahocorasick-rs backend (what an install without a C compiler runs), if not the default
    rs: Any = None


def _source_of(rule: Any, example: Any) -> Any:
    from livestream_compliance import Source

    if example.source is not None:
        return example.source
    return Source.HOST if Source.HOST in rule.sources else Source.CHAT


def load_engines(cfg: Config) -> Engines:
    from livestream_compliance import Checker, RuleError, load_checker

    for attempt in range(6):  # rule files may be mid-edit in a shared checkout: wait for a valid state
        try:
            t0 = time.perf_counter()
            rs = load_checker()  # default backend (native where the C extension was built), default packs
            load_s = time.perf_counter() - t0
            break
        except RuleError as exc:
            if attempt == 5:
                raise
            cfg.log(f"default rules do not load ({str(exc)[:120]}); retrying in 10 s")
            time.sleep(10)
    py = Checker(rs.rules, normalizer=rs.normalizer, segmenter=rs.segmenter, backend="pyahocorasick", model=rs.model)
    rules_only = load_checker(model=False) if rs.model is not None else None
    other = load_checker(backend="ahocorasick-rs") if rs.backend != "ahocorasick-rs" else None
    eng = Engines(main=rs, py=py, rules=rs.rules, load_seconds=load_s, rules_only=rules_only, rs=other)
    return eng


# --------------------------------------------------------------------------- corpora
def build_corpora(cfg: Config, eng: Engines) -> tuple[list[Corpus], list[str]]:
    from livestream_compliance import Source

    notes: list[str] = []
    chat_p = cfg.corpora / "livechat" / "chat.txt"
    host_p = cfg.corpora / "livechat" / "host.txt"
    if chat_p.exists() and host_p.exists():
        chat, host = read_lines(chat_p), read_lines(host_p)
        notes.append(f"Real text: LiveChat (Douyin) `{chat_p.parent}`: {len(chat):,} chat and {len(host):,} host lines.")
    else:  # CI without the shared corpora: rule counter-examples stand in (clearly labelled)
        texts = [e.text for r in eng.rules.rules for e in r.must_not_match]
        chat = host = texts or ["你好"]
        notes.append(f"**Corpora not found at `{cfg.corpora}`: rule must_not_match texts stand in for real text.**")
    rng = random.Random(42)
    out = [
        Corpus("chat", "LiveChat viewer chat lines, checked as chat", Source.CHAT, chat, repeat_to(chat, cfg.lines)),
        Corpus("host", "LiveChat host lines (ASR of the host's speech), checked as host", Source.HOST, host,
               repeat_to(host, cfg.lines)),
    ]
    # synthetic mix: ~2% violating lines (rule must_match examples for host rules) among clean corpus lines
    check = eng.main.check
    pool = list(dict.fromkeys(chat + host))
    if cfg.smoke:
        pool = pool[:1_500]
    clean = [s for s in pool if not check(s, Source.HOST)]
    bad = [e.text for r in eng.rules.rules for e in r.must_match
           if _source_of(r, e) is Source.HOST and check(e.text, Source.HOST)]
    unit_n = min(10_000 if not cfg.smoke else 1_000, max(len(clean), 1))
    n_bad = max(1, round(unit_n * 0.02))
    rng.shuffle(clean)
    unit = (clean * (unit_n // max(len(clean), 1) + 1))[:unit_n]
    picks = rng.sample(bad, n_bad) if len(bad) >= n_bad else [bad[i % len(bad)] for i in range(n_bad)] if bad else []
    for pos, text in zip(rng.sample(range(unit_n), len(picks)), picks):
        unit[pos] = text
    flagged = sum(1 for s in unit if check(s, Source.HOST))
    out.append(Corpus("mix", "Synthetic mix: clean corpus lines + ~2% rule must_match examples, checked as host",
                      Source.HOST, unit, repeat_to(unit, cfg.lines)))
    notes.append(
        f"Mix: {unit_n:,} distinct lines = clean corpus lines (no host finding) with {len(picks):,} of the "
        f"{len(bad):,} host must_match examples planted at seeded random positions; {flagged:,} lines "
        f"({flagged / unit_n:.1%}) flagged by the engine."
    )
    if len(eng.main._automata[Source.CHAT].keys) < 100:
        out.append(Corpus("chat-as-host", "LiveChat chat lines checked as host (the chat vocabulary is small)",
                          Source.HOST, chat, repeat_to(chat, cfg.lines)))
    return out, notes


# --------------------------------------------------------------------------- methods
def _chunks(lines: Sequence[str], n: int) -> list[Sequence[str]]:
    return [lines[i : i + n] for i in range(0, len(lines), n)]


def engine_methods(cfg: Config, eng: Engines, corpus: Corpus, extra: dict[str, Any]) -> list[Method]:
    src = corpus.source
    chunk = cfg.chunk
    ms: list[Method] = []
    backend = eng.main.backend
    checkers = [(f"engine {backend}", eng.main)] + ([("engine ahocorasick-rs", eng.rs)] if eng.rs is not None else [])
    for label, ck in checkers + [("engine pyahocorasick", eng.py)]:
        chk, cb = ck.check, ck.check_batch
        ms.append(Method(f"{label}", "per-message", lambda L, chk=chk: [chk(t, src) for t in L],
                         lambda t, chk=chk: chk(t, src)))
        ms.append(Method(f"{label}", "batch", lambda L, cb=cb: [r for c in _chunks(L, chunk) for r in cb(c, src)]))
    if eng.rules_only is not None and src in eng.main.model.sources:
        chk, cb = eng.rules_only.check, eng.rules_only.check_batch
        ms.append(Method(f"engine {backend}, no paraphrase model", "per-message", lambda L, chk=chk: [chk(t, src) for t in L],
                         lambda t, chk=chk: chk(t, src)))
        ms.append(Method(f"engine {backend}, no paraphrase model", "batch",
                         lambda L, cb=cb: [r for c in _chunks(L, chunk) for r in cb(c, src)]))
    # the same API called with the source as a plain string (as JSON-fed callers do)
    name = src.value
    chk = eng.main.check
    ms.append(Method(f"engine {backend}, source as str", "per-message", lambda L: [chk(t, name) for t in L],
                     lambda t: chk(t, name)))
    # raw scans: the engine's own automaton keys for this source, no normalisation, no verification
    keys = list(eng.main._automata[src].keys)
    if keys:
        import ahocorasick
        import ahocorasick_rs

        A = ahocorasick.Automaton()
        for i, k in enumerate(keys):
            A.add_word(k, (i, len(k)))
        A.make_automaton()
        ait = A.iter
        rs_default = ahocorasick_rs.AhoCorasick(keys).find_matches_as_indexes
        rs_dfa = ahocorasick_rs.AhoCorasick(keys, implementation=ahocorasick_rs.Implementation.DFA).find_matches_as_indexes
        from livestream_compliance.matcher import available_backends, build_matcher

        if "native" in available_backends():  # the package's C automaton on the same keys
            nat = build_matcher(keys, "native").find
            ms += [
                Method("raw native (C extension)", "raw per-line", lambda L: [nat(t) for t in L], nat, "raw"),
                Method("raw native (C extension)", "raw joined", lambda L: [m for c in _chunks(L, chunk) for m in nat("\n".join(c))],
                       None, "raw"),
            ]
        ms += [
            Method("raw pyahocorasick", "raw per-line", lambda L: [list(ait(t)) for t in L], lambda t: list(ait(t)), "raw"),
            Method("raw ahocorasick-rs", "raw per-line", lambda L: [rs_default(t, overlapping=True) for t in L],
                   lambda t: rs_default(t, overlapping=True), "raw"),
            Method("raw ahocorasick-rs DFA", "raw per-line", lambda L: [rs_dfa(t, overlapping=True) for t in L],
                   lambda t: rs_dfa(t, overlapping=True), "raw"),
            Method("raw pyahocorasick", "raw joined", lambda L: [m for c in _chunks(L, chunk) for m in ait("\n".join(c))],
                   None, "raw"),
            Method("raw ahocorasick-rs", "raw joined",
                   lambda L: [m for c in _chunks(L, chunk) for m in rs_default("\n".join(c), overlapping=True)], None, "raw"),
            Method("raw ahocorasick-rs DFA", "raw joined",
                   lambda L: [m for c in _chunks(L, chunk) for m in rs_dfa("\n".join(c), overlapping=True)], None, "raw"),
        ]
        try:
            from flashtext import KeywordProcessor

            kp = KeywordProcessor()
            kp.add_keywords_from_list(keys)
            ext = kp.extract_keywords
            ms.append(Method("flashtext KeywordProcessor", "baseline", lambda L: [ext(t) for t in L], ext, "baseline"))
        except ImportError:
            extra.setdefault("missing", set()).add("flashtext (pip install -e '.[bench]')")
    terms = extra["terms"][src]
    if terms:
        lcut = extra["jieba_lcut"]
        ms.append(Method("jieba.lcut + term set", "baseline", lambda L: [[w for w in lcut(t) if w in terms] for t in L],
                         lambda t: [w for w in lcut(t) if w in terms], "baseline"))
    return ms


def _flagged(method: Method, result: Any, n: int) -> str:
    if method.api in ("raw joined",):
        return f"{len(result):,} matches"
    k = sum(1 for r in result if r)
    return f"{k:,} ({k / max(n, 1):.2%})"


@dataclass
class Measured:
    method: Method
    n_lines: int
    seconds: list[float] = field(default_factory=list)  # CPU seconds per repetition
    wall: list[float] = field(default_factory=list)  # wall seconds per repetition
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    flagged: str = ""


def measure_corpus(cfg: Config, corpus: Corpus, methods: list[Method]) -> list[Measured]:
    """Interleaved repetitions: every rep times every method once, so background load hits all alike."""
    unit = max(len(corpus.unit), 1)
    N = len(corpus.lines)
    results: list[Measured] = []
    # warm-up + calibration on one copy of the distinct lines
    for m in methods:
        warm = corpus.lines[: min(unit, N)]
        dt, _, _w = timed(lambda: m.run(warm))
        rate = len(warm) / max(dt, 1e-9)
        n = N
        if not cfg.smoke and N / rate > cfg.cap_seconds:
            n = max(min(unit, N), int(rate * cfg.cap_seconds) // unit * unit)
        results.append(Measured(m, min(n, N)))
    rng = random.Random(1)
    sample = rng.sample(corpus.unit, min(cfg.latency_sample, len(corpus.unit)))
    for rep in range(cfg.reps):
        for r in results:
            L = corpus.lines[: r.n_lines]
            dt, res, wall = timed(lambda: r.method.run(L))
            r.seconds.append(dt)
            r.wall.append(wall)
            if rep == 0:
                r.flagged = _flagged(r.method, res, r.n_lines)
            if r.method.one is not None:
                ns = per_item_ns(r.method.one, sample)
                r.p50.append(percentile(ns, 50) / 1000)
                r.p99.append(percentile(ns, 99) / 1000)
    return results


def paired_ratios(cfg: Config, corpus: Corpus, measured: list[Measured], summary: dict[str, Any]) -> dict[str, Any]:
    """The '≤ 3× the fastest raw scan' ratios measured in pairs: the default engine and the fastest
    third-party raw scan (per API: batch against the fastest raw scan, per message against the
    fastest raw per-line scan) take turns on the same block of ``cfg.chunk`` lines, block after
    block, in alternating order; a pass over the lines gives one ratio (the engine's CPU time over
    the raw scan's). The tables' ratio divides medians taken seconds apart, so the machine's
    speed, which drifts on a shared host, moves it by as much as a third between runs; here both
    sides of a ratio meet the same machine within ~0.1 s. ``{api: {"ratios", "engine", "raw"}}``."""
    rows = summary["rows"]
    engine = next((r.method for (name, api), r in rows.items() if name.startswith("engine ") and api == "batch"
                   and name.split(" ", 1)[1] in ("native", "ahocorasick-rs", "pyahocorasick")), None)
    out: dict[str, Any] = {}
    for api, ref in (("batch", "ext_raw"), ("per-message", "ext_raw_line")):
        raw_label = summary.get(ref)
        if engine is None or not raw_label:
            continue
        eng_m = rows.get((engine.name, api))
        raw_m = next((r for (name, rapi), r in rows.items()
                      if r.method.kind == "raw" and (raw_label == f"{name} ({rapi})" or (raw_label == name and rapi == "raw per-line"))), None)
        if eng_m is None or raw_m is None:
            continue
        lines = corpus.lines[: min(eng_m.n_lines, raw_m.n_lines)]
        blocks = _chunks(lines, cfg.chunk)
        ratios = []
        for rep in range(cfg.reps):
            te = tr = 0.0
            for i, block in enumerate(blocks):
                order = ((eng_m, True), (raw_m, False)) if (i + rep) % 2 == 0 else ((raw_m, False), (eng_m, True))
                for m, is_engine in order:
                    dt, _res, _w = timed(lambda m=m: m.method.run(block))
                    if is_engine:
                        te += dt
                    else:
                        tr += dt
            ratios.append(te / max(tr, 1e-9))
        out[api] = {"ratios": ratios, "engine": f"{eng_m.method.name}", "raw": raw_label, "lines": len(lines)}
    return out


def throughput_table(corpus: Corpus, measured: list[Measured]) -> tuple[Table, dict[str, Any]]:
    def per_line(r: Measured) -> float:
        return statistics.median(r.seconds) / r.n_lines

    raws = [r for r in measured if r.method.kind == "raw"]
    fastest_raw = min(raws, key=per_line) if raws else None
    fastest_raw_line = min((r for r in raws if r.method.api == "raw per-line"), key=per_line, default=None)
    t = Table(
        key=f"throughput-{corpus.key}",
        title=f"Throughput — {corpus.title}",
        columns=["method", "API", "lines timed", "lines/s (CPU time)", "MB/s (CPU time)", "lines/s (wall)", "p50 µs/line",
                 "p99 µs/line", "lines flagged", "time ÷ fastest raw scan"],
    )
    for r in measured:
        nbytes = corpus.cum_bytes[r.n_lines]
        lps = [r.n_lines / s for s in r.seconds]
        mbs = [nbytes / s / 1e6 for s in r.seconds]
        ratio = f"{per_line(r) / per_line(fastest_raw):.2f}×" if fastest_raw else "n/a"
        t.rows.append([
            r.method.name, r.method.api, r.n_lines, stat(lps), stat(mbs, 1), stat([r.n_lines / w for w in r.wall]),
            stat(r.p50, 2) if r.p50 else None, stat(r.p99, 2) if r.p99 else None, r.flagged, ratio,
        ])
    summary = {
        "fastest_raw": (fastest_raw.method.name + " (" + fastest_raw.method.api + ")") if fastest_raw else None,
        "fastest_raw_per_line_s": per_line(fastest_raw) if fastest_raw else None,
        "fastest_raw_line": (fastest_raw_line.method.name) if fastest_raw_line else None,
        "fastest_raw_line_per_line_s": per_line(fastest_raw_line) if fastest_raw_line else None,
        "rows": {(r.method.name, r.method.api): r for r in measured},
    }
    # the baselines are the third-party automata; the package's own C automaton scanning
    # the same keys without normalisation is a stricter reference, reported beside them
    ext = [r for r in raws if not r.method.name.startswith("raw native")]
    for label, pool in (("ext", ext), ("own", [r for r in raws if r not in ext])):
        best = min(pool, key=per_line, default=None)
        best_line = min((r for r in pool if r.method.api == "raw per-line"), key=per_line, default=None)
        summary[f"{label}_raw"] = (best.method.name + " (" + best.method.api + ")") if best else None
        summary[f"{label}_raw_per_line_s"] = per_line(best) if best else None
        summary[f"{label}_raw_line"] = best_line.method.name if best_line else None
        summary[f"{label}_raw_line_per_line_s"] = per_line(best_line) if best_line else None
    t.notes.append(
        f"{len(corpus.unit):,} distinct lines, repeated or cut to {len(corpus.lines):,} "
        f"({corpus.cum_bytes[-1] / 1e6:.1f} MB UTF-8). Methods slower than the per-run time cap are timed on a "
        "shorter prefix (whole copies of the distinct lines, so the same text); see 'lines timed'."
    )
    if fastest_raw:
        t.notes.append(f"Fastest raw scan of these lines: {summary['fastest_raw']}.")
    return t, summary


# --------------------------------------------------------------------------- houbb shape
def houbb_section(cfg: Config, eng: Engines) -> tuple[Table, dict[str, Any]]:
    from livestream_compliance import Source

    src = Source.HOST
    strings = houbb_strings(cfg.houbb_checks)
    # plant two short CJK hits (as the Java benchmark plants two profanities), chosen from the rule examples
    planted: list[str] = []
    for r in eng.rules.rules:
        for e in r.must_match:
            h = e.hit
            if (_source_of(r, e) is Source.HOST and 2 <= len(h) <= 6 and all("\u4e00" <= ch <= "\u9fa5" for ch in h)
                    and eng.main.check(h + "。", src) and h not in planted):
                planted.append(h)
                break
        if len(planted) == 2:
            break
    with_hits = houbb_strings(cfg.houbb_checks, prefix=planted[0] if planted else "",
                              suffix=planted[1] if len(planted) > 1 else "")
    variants: list[tuple[str, list[str]]] = [("random", strings)]
    if planted:
        variants.append((f"2 planted hits ({' + '.join(planted)})", with_hits))
    t = Table(
        key="houbb",
        title="houbb/sensitive-word shape: 20 random CJK + 100 random ASCII characters per check, host rules",
        columns=["input", "checker", "API", "checks timed", "checks/s (CPU time)", "checks/s (wall)", "findings per check",
                 "target 150,000/s"],
    )
    summary: dict[str, Any] = {}
    runs: list[tuple[str, str, str, Callable[[Sequence[str]], Any], list[str]]] = []
    backend = eng.main.backend
    for vname, data in variants:
        runs.append((vname, f"engine {backend}", "per-message", lambda L, c=eng.main: [c.check(s, src) for s in L], data))
        if vname == "random":
            if eng.rs is not None:
                runs.append((vname, "engine ahocorasick-rs", "per-message", lambda L, c=eng.rs: [c.check(s, src) for s in L], data))
            runs.append((vname, "engine pyahocorasick", "per-message",
                         lambda L, c=eng.py: [c.check(s, src) for s in L], data))
            runs.append((vname, f"engine {backend}", "batch",
                         lambda L, c=eng.main: [x for ch in _chunks(L, cfg.chunk) for x in c.check_batch(ch, src)], data))
            if eng.rules_only is not None:
                # for reading only (the target's verdict is the default engine's): a word filter has no
                # paraphrase model, and every string of this shape is long enough for ours to be asked
                runs.append((vname, f"engine {backend}, no paraphrase model", "per-message",
                             lambda L, c=eng.rules_only: [c.check(s, src) for s in L], data))
    sizes = []
    for i, (_v, _c, _a, fn, data) in enumerate(runs):
        if i == 0:  # the headline figure: the default checker, per message, all the strings
            sizes.append(len(data))
            continue
        probe = data[: min(len(data), 2_000)]
        dt, _, _w = timed(lambda: fn(probe))
        rate = len(probe) / max(dt, 1e-9)
        n = len(data)
        if not cfg.smoke and n / rate > cfg.cap_seconds:
            n = max(min(2_000, n), int(rate * cfg.cap_seconds) // 1000 * 1000)
        sizes.append(n)
    secs: list[list[float]] = [[] for _ in runs]
    walls: list[list[float]] = [[] for _ in runs]
    found: list[float] = [0.0] * len(runs)
    for rep in range(cfg.reps):
        for i, (_v, _c, _a, fn, data) in enumerate(runs):
            L = data[: sizes[i]]
            dt, res, wall = timed(lambda: fn(L))
            secs[i].append(dt)
            walls[i].append(wall)
            if rep == 0:
                found[i] = sum(len(x) for x in res) / len(L)
    for i, (vname, cname, api, _fn, _data) in enumerate(runs):
        cps = [sizes[i] / s for s in secs[i]]
        med = statistics.median(cps)
        verdict = f"{'met' if med >= 150_000 else 'missed'} ({med / 150_000:.2f}× target)"
        t.rows.append([vname, cname, api, sizes[i], stat(cps), stat([sizes[i] / w for w in walls[i]]), f"{found[i]:.2f}",
                       verdict])
        summary[(vname, cname, api)] = cps
    t.notes.append(
        f"{cfg.houbb_checks:,} distinct seeded strings: 9 CJK (U+4E00–U+9FA5) + 100 characters of the Java "
        "benchmark's alphabet `1234567890bcdefghiJKLMNOPQRSTUVWXYZ` + 11 CJK. Every check runs the full "
        "normalisation (one translate table: width, case, traditional→simplified, noise deletion, digit forms). "
        "The first row checks all of them in every repetition; slower variants time a prefix of the strings "
        "(see 'checks timed') to stay inside the run's time budget."
    )
    t.notes.append(
        "Reference: houbb/sensitive-word publishes ~63,000 checks/s with all normalisation on "
        "(BenchmarkTimesTest: 100,000 × one 120-character string); built on this machine it did 84,000–107,000/s."
    )
    return t, summary


# --------------------------------------------------------------------------- proposed diff, A/B
def proposal_ab(cfg: Config, eng: Engines, corpora: list[Corpus]) -> Table:
    """The engine (A) vs the engine with bench_proposals.DIFF applied to a temporary copy (B)."""
    import bench_proposals as bp

    t = Table(key="proposal-ab", title="Proposed diff (bench_proposals.py) vs the engine: A/B in one process, "
              "interleaved, CPU time", columns=["input", "API", "lines", "engine (A) lines/s", "proposed (B) lines/s",
                                                "B ÷ A (medians)", "findings identical"])
    root, why = bp.apply_to_copy(PROJECT)
    if root is None:
        t.rows.append([f"n/a: {why}", "", None, None, None, "", ""])
        t.notes.append(f"The diff was written against commit {bp.DIFF_BASE}.")
        return t
    try:
        from livestream_compliance import Source

        B = bp.load_copy(root)
        # B's own rule set and automata; the jieba segmenter (unchanged by the diff) is shared to save start-up
        cb = B.build_checker(B.load_rule_set(), segmenter=eng.main.segmenter)
        if cb.version != eng.main.version:
            t.notes.append("The rule files changed between loading A and B; findings may differ for that reason.")
        n_max = 1_000 if cfg.smoke else 30_000
        inputs: list[tuple[str, list[str], str]] = [(c.key, c.lines[:n_max], c.source.value) for c in corpora]
        inputs.append(("houbb shape", houbb_strings(300 if cfg.smoke else 5_000), "host"))
        planted = [r.must_match[0].hit for r in eng.rules.rules if Source.HOST in r.sources and r.word_boundary
                   and r.must_match and all("\u4e00" <= ch <= "\u9fa5" for ch in r.must_match[0].hit)]
        if planted:
            inputs.append((f"houbb shape + '{planted[0]}' planted", houbb_strings(200 if cfg.smoke else 2_000,
                                                                              prefix=planted[0]), "host"))
        inputs.append(("chat lines, source passed as str", next(c for c in corpora if c.key == "chat").lines[:n_max],
                       "chat-str"))
        same: dict[str, str] = {}
        for name, lines, src in inputs:
            sa = src.replace("-str", "") if src.endswith("-str") else Source(src)
            sb = src.replace("-str", "") if src.endswith("-str") else B.Source(src)
            uniq = list(dict.fromkeys(lines))[: 2_000 if cfg.smoke else 20_000]
            ka = [bp.finding_keys(eng.main.check(x, sa)) for x in uniq]
            kb = [bp.finding_keys(cb.check(x, sb)) for x in uniq]
            kbb = [bp.finding_keys(f) for ch in _chunks(uniq, cfg.chunk) for f in cb.check_batch(ch, sb)]
            diff = sum(1 for a, b in zip(ka, kb) if a != b) + sum(1 for a, b in zip(ka, kbb) if a != b)
            same[name] = "yes" if diff == 0 else f"NO ({diff} lines)"
        res: dict[tuple[str, str, str], list[float]] = {}
        for _rep in range(cfg.reps):
            for name, lines, src in inputs:
                for label, ck, mod in (("A", eng.main, None), ("B", cb, B)):
                    sv = src.replace("-str", "") if src.endswith("-str") else (mod.Source(src) if mod else Source(src))
                    dt, _r, _w = timed(lambda: [ck.check(x, sv) for x in lines])
                    res.setdefault((name, "per-message", label), []).append(len(lines) / dt)
                    if not src.endswith("-str"):
                        dt, _r, _w = timed(lambda: [ck.check_batch(ch, sv) for ch in _chunks(lines, cfg.chunk)])
                        res.setdefault((name, "batch", label), []).append(len(lines) / dt)
        for name, lines, _src in inputs:
            for api in ("per-message", "batch"):
                a, b = res.get((name, api, "A")), res.get((name, api, "B"))
                if not a or not b:
                    continue
                t.rows.append([name, api, len(lines), stat(a), stat(b), f"{statistics.median(b) / statistics.median(a):.2f}×",
                               same[name]])
        # build and cold start
        builds: dict[str, list[float]] = {"A": [], "B": []}
        from livestream_compliance import Checker

        for _rep in range(1 if cfg.smoke else 3):
            dt, _r, _w = timed(lambda: Checker(eng.rules, normalizer=eng.main.normalizer, segmenter=eng.main.segmenter))
            builds["A"].append(dt)
            dt, _r, _w = timed(lambda: B.Checker(cb.rules, normalizer=cb.normalizer, segmenter=cb.segmenter))
            builds["B"].append(dt)
        t.rows.append(["Checker build, default packs (CPU s)", "", None, stat(builds["A"], 3), stat(builds["B"], 3),
                       f"{statistics.median(builds['A']) / statistics.median(builds['B']):.2f}× faster", ""])
        cold = bp.cold_start_pair(root, 0 if cfg.smoke else 3)
        if cold["A"] and cold["B"]:
            t.rows.append(["cold start, spawn → ready (wall s)", "", None, stat(cold["A"], 3), stat(cold["B"], 3),
                           f"{statistics.median(cold['A']) / statistics.median(cold['B']):.2f}× faster", ""])
    except Exception as exc:  # noqa: BLE001 - report, do not fail the run
        t.rows.append([f"n/a: {type(exc).__name__}: {exc}", "", None, None, None, "", ""])
    finally:
        shutil.rmtree(root, ignore_errors=True)
        sys.modules.pop("proposed_livestream_compliance", None)
    t.notes.append(f"Diff written against commit {bp.DIFF_BASE}, applied to a temporary copy of compliance/ "
                   "(the project is not modified). Findings compared on every distinct line: rule, span, text, "
                   "matched, severity.")
    return t


# --------------------------------------------------------------------------- cold start
#: a small custom pack (three rules) for the cold-start rows of the default packs plus custom rules
CUSTOM_PACK = Path(__file__).resolve().parent / "custom_pack"
_COLD_CODE = (
    "import time; t=time.perf_counter()\n"
    "from livestream_compliance import load_checker\n"
    "t_imp=time.perf_counter()\n"
    "import os; kw={'prebuilt': None} if os.environ.get('BENCH_NO_PREBUILT') else {}\n"
    "paths=[os.environ['BENCH_RULES']] if os.environ.get('BENCH_RULES') else []\n"
    "c=load_checker(paths, cache_dir=None, **kw) if os.environ.get('BENCH_NO_STATE_CACHE') else load_checker(paths, **kw)\n"
    "t_load=time.perf_counter()\n"
    "c.check('x')\n"
    "t_chk=time.perf_counter()\n"
    "import json; print(json.dumps({'import': t_imp-t, 'load': t_load-t_imp, 'first_check': t_chk-t_load,"
    " 'ready': t_chk-t, 'version': c.version}), flush=True)\n"
    # a build writes its state from a child process (load_checker's save='background'): wait for it
    # after 'ready', so that it is done before the next case starts and counts in spawn -> exit
    "import threading\n"
    "[w.join() for w in threading.enumerate() if w.name == 'livestream-compliance state writer']\n"
)


def _cold_once(env: dict[str, str] | None = None, attempts: int = 3) -> dict[str, float]:
    """One cold start; retried (up to ``attempts``) if the child fails, e.g. while rule files are being edited."""
    for i in range(attempts):
        try:
            return _cold_attempt(env)
        except RuntimeError:
            if i == attempts - 1:
                raise
            time.sleep(10)
    raise AssertionError("unreachable")


def _cold_attempt(env: dict[str, str] | None) -> dict[str, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-c", _COLD_CODE], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=tempfile.gettempdir())
    assert p.stdout is not None
    line = p.stdout.readline()
    t_ready = time.perf_counter()
    _out, err = p.communicate()
    t_exit = time.perf_counter()
    if p.returncode != 0 or not line:
        raise RuntimeError(f"cold-start child failed: {err.strip()[-500:]}")
    d = json.loads(line)
    d["spawn_to_ready"] = t_ready - t0
    d["spawn_to_exit"] = t_exit - t0
    return d


def _compile_bytecode() -> None:
    """Compile the package's bytecode, as ``pip install`` does when it installs it: an editable
    install under ``PYTHONDONTWRITEBYTECODE=1`` (this sandbox sets it) would otherwise compile every
    module from source at every start (~60 ms), which no installed copy does."""
    import compileall

    import livestream_compliance
    import livestream_compliance_rules
    import livestream_compliance_server

    for module in (livestream_compliance, livestream_compliance_rules, livestream_compliance_server):
        compileall.compile_dir(os.path.dirname(module.__file__), quiet=1)


def _ensure_prebuilt() -> str | None:
    """The install's prebuilt state for the current code and default packs, written now (as setup.py
    does) if the package changed since it was installed; a note saying which, or None on failure."""
    from livestream_compliance import loader

    path = loader.state_path(cache_dir=loader.PREBUILT_DIR)
    if path.is_file():
        return f"The install's prebuilt state {path.name} was current."
    p = subprocess.run([sys.executable, "-m", "livestream_compliance.prebuild", str(loader.PREBUILT_DIR)],
                       capture_output=True, text=True, cwd=tempfile.gettempdir())
    if p.returncode != 0 or not path.is_file():
        return None
    return ("The package changed since it was installed, so the benchmark first wrote its prebuilt state as the "
            "install does (`python -m livestream_compliance.prebuild`, untimed).")


def _write_override(directory: str, i: int) -> None:
    """A user's rule directory overriding the default rule ABS-FIRST (its terms and one more, the
    ``i``-th edit's): what an operator's edit of a default rule looks like to the loader."""
    with open(os.path.join(directory, "override.toml"), "w", encoding="utf-8") as f:
        f.write(f"""[pack]
id = "bench-override"
version = "1"

[[rules]]
id = "ABS-FIRST"
category = "absolute_terms"
severity = "high"
terms = ["首选", "第一品牌", "基准改动{i}号"]
legal_basis = [{{ law = "中华人民共和国广告法", article = "第九条第（三）项" }}]
message = "绝对化用语"
suggestion = "改为可证实的表述"
must_match = [{{ text = "这是首选", hit = "首选" }}, {{ text = "第一品牌的", hit = "第一品牌" }}]
must_not_match = ["首先说明", "第一次来"]
""")


def cold_start_section(cfg: Config) -> tuple[Table, dict[str, Any]]:
    """Cold start with the loader's checker-state cache warm, empty and off, plus a fresh container.

    Every case runs with its own XDG_CACHE_HOME (the state cache's default location), so the
    benchmark never reads or writes the user's cache.
    """
    _compile_bytecode()
    prebuilt_note = _ensure_prebuilt() if cfg.cold_reps_fresh else None
    base = tempfile.mkdtemp(prefix="bench-cold-")
    # no prebuilt state here: the warm-up must build and write the cache (an install that carries a
    # current prebuilt state would otherwise answer from it and write nothing)
    warm_env = dict(os.environ, XDG_CACHE_HOME=os.path.join(base, "warm"), BENCH_NO_PREBUILT="1")
    # a rule change: a user's directory overriding one default rule, edited before each timed start
    # (a new term each time); its cache keeps the last build's state, which the start patches
    override = os.path.join(base, "override")
    os.makedirs(override)
    edit_env = dict(os.environ, XDG_CACHE_HOME=os.path.join(base, "edit"), BENCH_NO_PREBUILT="1", BENCH_RULES=override)
    cases: list[tuple[str, list[dict[str, float]]]] = []
    warm, changed, empty, off, fresh, fresh_pre, image = [], [], [], [], [], [], []
    custom_first, custom_edit, no_state = [], [], []
    try:
        _cold_once(warm_env)  # writes the state cache (and warms the OS file and jieba caches); not counted
        _write_override(override, 0)
        _cold_once(edit_env)  # the state before the first edit; not counted
        for i in range(max(cfg.cold_reps, cfg.cold_reps_fresh)):  # interleaved
            if i < cfg.cold_reps:
                warm.append(_cold_once(warm_env))
                _write_override(override, i + 1)
                changed.append(_cold_once(edit_env))
                # the cache holds no state at all (removed), but keeps the pattern analyses of the last build
                changed_home = tempfile.mkdtemp(dir=base)
                shutil.copytree(warm_env["XDG_CACHE_HOME"], changed_home, dirs_exist_ok=True)
                for state in Path(changed_home).rglob("*.state"):
                    state.unlink()
                no_state.append(_cold_once(dict(os.environ, XDG_CACHE_HOME=changed_home, BENCH_NO_PREBUILT="1")))
                empty.append(_cold_once(dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp(dir=base), BENCH_NO_PREBUILT="1")))
                off.append(_cold_once(dict(os.environ, BENCH_NO_STATE_CACHE="1", BENCH_NO_PREBUILT="1")))
            if i < cfg.cold_reps_fresh:
                tmp = tempfile.mkdtemp(dir=base)
                fresh.append(_cold_once(dict(os.environ, TMPDIR=tmp, XDG_CACHE_HOME=os.path.join(tmp, "xdg"),
                                             BENCH_NO_PREBUILT="1")))
                tmp = tempfile.mkdtemp(dir=base)
                if prebuilt_note is not None:
                    fresh_pre.append(_cold_once(dict(os.environ, TMPDIR=tmp, XDG_CACHE_HOME=os.path.join(tmp, "xdg"))))
                    # the default packs plus a custom pack (benchmarks/custom_pack): its first start in a
                    # fresh container of the installed package, then a restart after an edit of the pack
                    tmp = tempfile.mkdtemp(dir=base)
                    pack = shutil.copytree(CUSTOM_PACK, os.path.join(tmp, "rules"))
                    env = dict(os.environ, TMPDIR=tmp, XDG_CACHE_HOME=os.path.join(tmp, "xdg"), BENCH_RULES=pack)
                    custom_first.append(_cold_once(env))
                    brand = os.path.join(pack, "brand.toml")
                    with open(brand, encoding="utf-8") as f:
                        text = f.read()
                    with open(brand, "w", encoding="utf-8") as f:  # an edit: a term more in one rule
                        f.write(text.replace('terms = ["销量冠军", ', f'terms = ["销量冠军", "基准改动{i}号", ', 1))
                    custom_edit.append(_cold_once(env))
                # a fresh container whose image ran `compliance rules build` (not timed) when it was built
                tmp = tempfile.mkdtemp(dir=base)
                env = dict(os.environ, TMPDIR=tmp, XDG_CACHE_HOME=os.path.join(tmp, "xdg"), BENCH_NO_PREBUILT="1")
                subprocess.run([sys.executable, "-m", "livestream_compliance", "rules", "build"], env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tempfile.gettempdir())
                image.append(_cold_once(env))
        cases = [
            ("warm state cache (normal restart, rules unchanged)", warm),
            ("after a rule change: one default rule overridden by a user's directory, edited before each start; "
             "the cache keeps the last build's state (a delta build)", changed),
            ("no state in the cache (removed), which keeps the pattern analyses; no prebuilt state (a full build)", no_state),
            ("empty state cache, no prebuilt state (writes the cache)", empty),
            ("state cache off and no prebuilt state (`load_checker(cache_dir=None, prebuilt=None)`: the full build)", off),
            ("fresh container, no prebuilt state (empty jieba and state caches)", fresh),
            ("fresh container, installed package with its prebuilt state (`pip install`; empty caches)", fresh_pre),
            ("fresh container whose image ran `compliance rules build`, no prebuilt state (first start)", image),
            ("default packs + a custom pack: first start in a fresh container (installed package, empty caches: a "
             "delta build on the install's prebuilt state)", custom_first),
            ("default packs + a custom pack: restart after an edit of the pack (a term added; its last build cached: "
             "a delta build)", custom_edit),
        ]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    t = Table(
        key="cold-start",
        title="Cold start: `python -c` process start to first check done (default packs unless the case says otherwise; default backend)",
        columns=["case", "runs", "spawn → ready (s)", "in-process: import (s)", "load_checker (s)", "first check (ms)",
                 "spawn → exit (s)", "target ≤ 1.5 s"],
    )
    for name, runs in cases:
        if not runs:
            continue
        ready = [r["spawn_to_ready"] for r in runs]
        med = statistics.median(ready)
        t.rows.append([
            name, len(runs), stat(ready, 3), stat([r["import"] for r in runs], 3), stat([r["load"] for r in runs], 3),
            stat([r["first_check"] * 1000 for r in runs], 2), stat([r["spawn_to_exit"] for r in runs], 3),
            f"{'met' if med <= 1.5 else 'missed'} ({med / 1.5:.2f}× target)",
        ])
    t.notes.append(
        "Wall time measured by the parent from just before spawning the interpreter to reading the child's "
        "'ready' line (after `load_checker()` and one `check`); cases interleaved. `load_checker()` keeps the "
        "built state (validated rules, automaton keys and entries, compiled pattern code, jieba's dictionary "
        "taught the rule words) in `$XDG_CACHE_HOME/livestream-compliance`, keyed by the content hash of the "
        "rule files, the package's code and the versions it depends on; a warm start parses no TOML, runs no "
        "pydantic validation and no build, and rebuilds only the automata. 'Empty state cache' builds and "
        "writes it; 'fresh container' also points TMPDIR at an empty directory (no jieba cache). The last case is "
        "the same fresh container after `compliance rules build` ran in it (untimed), as a Dockerfile step would: "
        "the image then carries the state and the first start is a warm one (docs/deployment.md). The package's "
        "bytecode is compiled first, as `pip install` does (this machine sets PYTHONDONTWRITEBYTECODE=1, under "
        "which an editable install would compile every module from source at every start)."
    )
    t.notes.append(
        "Prebuilt state: `pip install` (setup.py, after the C extension) writes the default packs' state into the "
        "installed package (`livestream_compliance/prebuilt/`, ~21 MB), and `load_checker()` reads it when the user's "
        "cache has none, under the same exact key. The cases marked 'no prebuilt state' pass `prebuilt=None`: what a "
        "package without it costs (an editable install edited since it was installed, dependency versions unlike "
        "the build's, or custom rules). "
        + (prebuilt_note or "This install has no prebuilt state and its prebuild failed: the case was not run.")
    )
    # the cases of the default packs alone must all have seen the same rules (the others edit theirs)
    runs_all = [r for rs in (warm, no_state, empty, off, fresh, fresh_pre, image) for r in rs]
    versions = {r["version"] for r in runs_all}
    if len(versions) > 1:
        t.notes.append(f"Rule files changed during the runs (versions {sorted(versions)}).")
    # summary keys, in the order of ``cases``
    keys = ("warm", "changed", "no_state", "empty", "off", "fresh", "prebuilt", "image", "custom_first", "custom_edit")
    return t, {k: [r["spawn_to_ready"] for r in runs] for k, (_n, runs) in zip(keys, cases)}


def startup_breakdown(cfg: Config) -> Table:
    """Where load_checker's time goes, phase by phase, in a fresh process."""
    code = r"""
import json, time
T = {}
t = time.perf_counter(); import livestream_compliance; T['import livestream_compliance'] = time.perf_counter() - t
from livestream_compliance import load_rule_set, Checker
from livestream_compliance.normalize import Normalizer
from livestream_compliance.tables import traditional_to_simplified
from livestream_compliance.verify import JiebaSegmenter
from livestream_compliance import loader
import gc; gc.disable()  # as load_checker builds
t = time.perf_counter(); rs = load_rule_set(); T['load_rule_set (TOML + pydantic)'] = time.perf_counter() - t
t = time.perf_counter(); t2s = traditional_to_simplified(); T['OpenCC t2s table'] = time.perf_counter() - t
t = time.perf_counter(); n = Normalizer.build(t2s); T['Normalizer.build'] = time.perf_counter() - t
terms = sorted({n.normalize(x) for r in rs.rules for x in r.terms}); prot = sorted({n.normalize(x) for r in rs.rules for x in r.exceptions})
t = time.perf_counter(); seg = JiebaSegmenter(terms, prot, dictionary=loader._jieba_base_dictionary(None)); T['JiebaSegmenter (dictionary + rule words)'] = time.perf_counter() - t
t = time.perf_counter(); pm = loader.paraphrase_model(); T['paraphrase model'] = time.perf_counter() - t
t = time.perf_counter(); c = loader.build_checker(rs, segmenter=seg, model=pm); T['build_checker (its normaliser and tables, aliases, automata, folding)'] = time.perf_counter() - t
print(json.dumps(T))
"""
    runs = []
    for _ in range(1 if cfg.smoke else 3):
        for _attempt in range(3):
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tempfile.gettempdir())
            if p.returncode == 0:
                runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
                break
            time.sleep(5)
    t = Table(key="startup-phases", title="Start-up phases without the state cache (fresh process each run; phases as "
              "load_checker(cache_dir=None) runs them)", columns=["phase", "seconds"])
    if not runs:
        t.rows.append(["n/a (the engine's start-up API changed)", None])
        return t
    for k in runs[0]:
        t.rows.append([k, stat([r[k] for r in runs], 3)])
    return t


# --------------------------------------------------------------------------- build cost for many terms
def build_child(n_terms: int, backend: str, with_jieba: bool = False) -> dict[str, float]:
    """In a fresh process: rule set from generated TOML, then the Checker (automata) with ``backend``;
    optionally then a JiebaSegmenter taught the same terms (what load_checker adds on top)."""
    from livestream_compliance.engine import Checker
    from livestream_compliance.normalize import Normalizer
    from livestream_compliance.rules import build_rule_set
    from livestream_compliance.tables import traditional_to_simplified

    terms = synthetic_terms(n_terms)
    toml = synthetic_rules_toml(terms)
    norm = Normalizer.build(traditional_to_simplified())
    gc.collect()
    r0 = rss_bytes()
    t0 = time.process_time()
    rules = build_rule_set([[("synthetic.toml", toml)]])
    t1 = time.process_time()
    gc.collect()
    r1 = rss_bytes()
    checker = Checker(rules, normalizer=norm, backend=backend)
    t2 = time.process_time()
    gc.collect()
    r2 = rss_bytes()
    keys = sum(len(a.keys) for a in checker._automata.values())
    out = {"rules_s": t1 - t0, "checker_s": t2 - t1, "rules_mb": (r1 - r0) / 1e6, "checker_mb": (r2 - r1) / 1e6,
           "keys": keys}
    if with_jieba:
        from livestream_compliance.verify import JiebaSegmenter

        t3 = time.process_time()
        seg = JiebaSegmenter(terms)
        t4 = time.process_time()
        gc.collect()
        out.update(jieba_s=t4 - t3, jieba_mb=(rss_bytes() - r2) / 1e6)
        del seg
    return out


def _child(args: list[str]) -> dict[str, float]:
    p = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"child {args} failed: {p.stderr.strip()[-800:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def build_section(cfg: Config) -> Table:
    t = Table(
        key="build",
        title="Build time and memory for generated term lists (random 2–6 character CJK terms, 1,000 terms per rule)",
        columns=["terms", "backend", "runs", "automaton keys (all sources)", "rule set: parse + validate (CPU s)",
                 "Checker build (CPU s)", "Checker RSS Δ (MB)", "rule set RSS Δ (MB)"],
    )
    for n in cfg.build_sizes:
        reps = cfg.build_reps if n < 100_000 else cfg.build_reps_large
        jieba_runs = []
        from livestream_compliance.matcher import available_backends

        backends = [b for b in ("native", "ahocorasick-rs", "pyahocorasick") if b in available_backends()]
        for backend in backends:
            runs = []
            for _ in range(reps):
                with_jieba = backend == backends[0] and not cfg.smoke
                runs.append(_child(["build-child", str(n), backend] + (["--jieba"] if with_jieba else [])))
                if with_jieba:
                    jieba_runs.append(runs[-1])
                cfg.log(f"  build {n:,} {backend}: {runs[-1]['checker_s']:.2f}s")
            t.rows.append([n, backend, reps, int(runs[0]["keys"]), stat([r["rules_s"] for r in runs], 3),
                           stat([r["checker_s"] for r in runs], 3), stat([r["checker_mb"] for r in runs], 1),
                           stat([r["rules_mb"] for r in runs], 1)])
        if jieba_runs:
            t.rows.append([n, "+ JiebaSegmenter taught the terms (load_checker does this; either backend)",
                           len(jieba_runs), None, None, stat([r["jieba_s"] for r in jieba_runs], 3),
                           stat([r["jieba_mb"] for r in jieba_runs], 1), None])
    t.notes.append(
        "Each run is a fresh process (RSS Δ = resident memory after minus before, after gc; it includes memory "
        "held by the Rust/C automata that tracemalloc cannot see). Rules apply to both sources, so the engine "
        "builds one automaton per source; keys include the doubled/tripled-character variants of each term."
    )
    if any(n >= 100_000 for n in cfg.build_sizes) and cfg.build_reps_large < cfg.build_reps:
        t.notes.append(f"Sizes ≥ 100,000 terms: {cfg.build_reps_large} runs instead of {cfg.build_reps} — one run takes "
                       "20–45 s on this machine, and five would push the whole benchmark past its 10-minute budget "
                       "(raise with --build-reps-large).")
    return t


# --------------------------------------------------------------------------- profiles
def _cprofile(fn: Callable[[], Any], top: int = 12) -> list[list[Any]]:
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    st = pstats.Stats(pr, stream=io.StringIO())
    total = sum(v[2] for v in st.stats.values()) or 1e-9  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in sorted(
        st.stats.items(), key=lambda kv: kv[1][2], reverse=True  # type: ignore[attr-defined]
    )[:top]:
        where = func if file == "~" else f"{func} ({_short(file)}:{line})"
        rows.append([where, nc, f"{tt * 1000:.1f}", f"{tt / total:.1%}", f"{ct * 1000:.1f}"])
    return rows


def _short(path: str) -> str:
    p = path.replace("\\", "/")
    for marker in ("/compliance/", "/benchmarks/", "site-packages/", "/lib/python3"):
        i = p.find(marker)
        if i >= 0:
            return p[i + 1 :] if marker.startswith("/") else p[i + len(marker) :]
    return Path(p).name


def component_table(cfg: Config, eng: Engines, corpora: list[Corpus]) -> Table:
    """ns per line of each stage of check / check_batch, measured separately on the same lines."""
    from itertools import accumulate

    t = Table(key="components", title="Cost per line of each stage (CPU ns/line, median of 3), ahocorasick-rs",
              columns=["stage", *[c.key for c in corpora]])
    stages: dict[str, list[Any]] = {}
    for c in corpora:
        src = c.source
        L = c.lines[: min(len(c.lines), 20_000 if not cfg.smoke else 1_000)]
        n = len(L)
        try:
            table, btable = eng.main._table, eng.main._batch_table
            find = eng.main._automata[src].matcher.find
            prefilter = eng.main._patterns[src][0]
            norms = [s.translate(table) for s in L]
            chunks = _chunks(L, cfg.chunk)
            joined = ["\n".join(ch) for ch in chunks]
            njoined = [j.translate(btable) for j in joined]
            fns: dict[str, Callable[[], Any]] = {
                "per-message: str.translate": lambda: [s.translate(table) for s in L],
                "per-message: automaton find": lambda: [find(s) for s in norms],
                "per-message: pattern prefilter search": (lambda: [prefilter.search(s) for s in norms]) if prefilter else (lambda: None),
                "per-message: whole check()": lambda: [eng.main.check(s, src) for s in L],
                "batch: join": lambda: ["\n".join(ch) for ch in chunks],
                "batch: translate": lambda: [j.translate(btable) for j in joined],
                "batch: split + line ends": lambda: [list(accumulate(len(x) + 1 for x in j.split("\n"))) for j in njoined],
                "batch: automaton find": lambda: [find(j) for j in njoined],
                "batch: pattern prefilter finditer": (lambda: [list(prefilter.finditer(j)) for j in njoined]) if prefilter else (lambda: None),
                "batch: whole check_batch()": lambda: [eng.main.check_batch(ch, src) for ch in chunks],
            }
        except Exception as exc:  # noqa: BLE001
            t.notes.append(f"{c.key}: stage breakdown not available ({type(exc).__name__}: {exc})")
            continue
        for name, fn in fns.items():
            vals = [timed(fn)[0] / n * 1e9 for _ in range(3)]  # CPU ns per line
            stages.setdefault(name, [None] * len(corpora))[corpora.index(c)] = stat([statistics.median(vals)])
    for name, vals in stages.items():
        t.rows.append([name, *vals])
    t.notes.append("'whole' rows include verification of candidate lines (jieba, exceptions, negation, pattern runs), "
                   "which the stage rows above them do not.")
    return t


def cprofile_tables(cfg: Config, eng: Engines, corpora: list[Corpus]) -> list[Table]:
    out = []
    by_key = {c.key: c for c in corpora}
    jobs = []
    for key in ("chat", "host"):
        c = by_key.get(key)
        if c is None:
            continue
        L = c.lines[: min(len(c.lines), 20_000 if not cfg.smoke else 500)]
        src = c.source
        jobs.append((f"cProfile: per-message check(), {c.title}", f"cprofile-check-{key}",
                     lambda L=L, src=src: [eng.main.check(s, src) for s in L]))
        jobs.append((f"cProfile: check_batch() in chunks of {cfg.chunk:,}, {c.title}", f"cprofile-batch-{key}",
                     lambda L=L, src=src: [eng.main.check_batch(ch, src) for ch in _chunks(L, cfg.chunk)]))
    for title, key, fn in jobs:
        t = Table(key=key, title=title, columns=["function", "calls", "own ms", "own share", "cumulative ms"])
        t.rows = _cprofile(fn)
        t.notes.append("cProfile attributes C-level work done while iterating (e.g. `re` finditer) to the calling "
                       "Python function; the py-spy tables below see inside native code.")
        out.append(t)
    return out


def profile_target(mode: str, corpus: str, seconds: float, corpora: Path) -> None:
    """Child process run under py-spy: loop the engine on one corpus for ``seconds``."""
    from livestream_compliance import Source, load_checker

    ck = load_checker()
    path = corpora / "livechat" / f"{corpus}.txt"
    lines = read_lines(path) if path.exists() else [e.text for r in ck.rules.rules for e in r.must_not_match]
    src = Source.CHAT if corpus == "chat" else Source.HOST
    print("ready", flush=True)
    _profiled_loop(ck, lines, src, mode, seconds)


def _profiled_loop(ck: Any, lines: list[str], src: Any, mode: str, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        if mode == "check":
            for s in lines:
                ck.check(s, src)
        else:
            for i in range(0, len(lines), 10_000):
                ck.check_batch(lines[i : i + 10_000], src)


def _source_line(frame: str) -> str:
    m = re.match(r"(.*) \((.+):(\d+)\)$", frame)
    if not m:
        return ""
    func, file, line = m.groups()
    for base in (PROJECT, *map(Path, sys.path)):
        p = Path(base) / file
        if p.is_file():
            return linecache.getline(str(p), int(line)).strip()
    return ""


def py_spy_tables(cfg: Config) -> tuple[list[Table], str]:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not cfg.py_spy or not Path(exe).exists():
        return [], "py-spy not installed (pip install -e '.[bench]'); sampling profiles skipped."
    out = []
    for mode, corpus in (("check", "chat"), ("batch", "chat"), ("check", "host")):
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "raw.txt"
            cmd = [exe, "record", "--native", "-r", "400", "-f", "raw", "-o", str(raw), "--",
                   sys.executable, str(Path(__file__).resolve()), "profile-target", mode, corpus,
                   str(cfg.profile_seconds), str(cfg.corpora)]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0 or not raw.exists():
                return out, f"py-spy failed: {p.stderr.strip()[-300:]}"
            leaf: Counter[str] = Counter()
            engine_line: Counter[str] = Counter()
            total = 0
            for row in raw.read_text().splitlines():
                stack, _, n = row.rpartition(" ")
                frames = stack.split(";")
                if not any(f.startswith("_profiled_loop ") for f in frames):
                    continue
                k = int(n)
                total += k
                leaf[frames[-1]] += k
                eng_frames = [f for f in frames if "(compliance/" in f or "compliance/" in f.split("(")[-1]]
                engine_line[eng_frames[-1] if eng_frames else frames[-1]] += k
        api = "check() per message" if mode == "check" else "check_batch() in chunks of 10,000"
        src = "chat lines as chat" if corpus == "chat" else "host lines as host"
        t = Table(key=f"py-spy-{mode}-{corpus}", title=f"py-spy (native, {total:,} samples): {api}, {src}",
                  columns=["rank", "innermost frame (own time)", "share", "deepest engine line (inclusive)", "share ", "source"])
        leafs = leaf.most_common(12)
        lines_ = engine_line.most_common(12)
        for i in range(max(len(leafs), len(lines_))):
            lf = leafs[i] if i < len(leafs) else ("", 0)
            el = lines_[i] if i < len(lines_) else ("", 0)
            t.rows.append([i + 1, lf[0], f"{lf[1] / max(total, 1):.1%}" if lf[0] else "", el[0],
                           f"{el[1] / max(total, 1):.1%}" if el[0] else "", _source_line(el[0])[:90] if el[0] else ""])
        out.append(t)
    return out, ""


# --------------------------------------------------------------------------- child entry point
def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build-child")
    b.add_argument("terms", type=int)
    b.add_argument("backend")
    b.add_argument("--jieba", action="store_true")
    pt = sub.add_parser("profile-target")
    pt.add_argument("mode", choices=("check", "batch"))
    pt.add_argument("corpus", choices=("chat", "host"))
    pt.add_argument("seconds", type=float)
    pt.add_argument("corpora", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "build-child":
        print(json.dumps(build_child(a.terms, a.backend, a.jieba)))
    else:
        profile_target(a.mode, a.corpus, a.seconds, a.corpora)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


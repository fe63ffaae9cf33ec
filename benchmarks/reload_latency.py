"""Answer latency while the sidecar reloads its rules: does a hot reload stall the streams?

    python benchmarks/reload_latency.py                 # ~2 minutes: 3 runs of each case, table on stdout
    python benchmarks/reload_latency.py --smoke         # seconds (CI)
    python benchmarks/reload_latency.py --reps 5 --rate 2000 --out /tmp/reload.md

A real ``compliance serve`` process (127.0.0.1, a free port, its own ``XDG_CACHE_HOME`` in a temp
dir, the default packs plus one small extra pack, acks on) gets one websocket stream of LiveChat
chat lines at a fixed rate. A few seconds in, the extra pack is either edited (a new term: the
state cache misses and the rules are built afresh) or left alone (the reload reads the state
cache), and the server gets SIGHUP. Every answer's latency (answer received minus frame sent) is
kept with its send time; the table gives the answers sent before the reload, during the reload
window (from SIGHUP to a little after the server logs the reload), and after it.

Why: the reload builds in a thread while the event loop keeps answering, but both need the GIL,
and every automaton scan of a message releases it. Before the switch-interval change in
``App.reload`` the building thread kept the GIL for CPython's 5 ms at every hand-over, and messages
queued for the whole build (seconds). What is left are single C/Rust calls that hold the GIL
(building the automata, unpickling the state), which no switch interval can interrupt.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpora" / "livechat" / "chat.txt"
FALLBACK = ["主播好漂亮啊", "几号链接", "已经下单了", "什么时候发货", "有没有优惠券", "这件衣服显瘦吗", "尺码偏大一码吗"]

PACK = '''[pack]
id = "reload-bench"
version = "{version}"
description = "hot reload benchmark"

[[rules]]
id = "X-RELOAD-BENCH"
category = "prohibited_goods"
severity = "high"
sources = ["host", "chat"]
terms = [{terms}]
legal_basis = [{{ law = "中华人民共和国广告法", article = "第九条" }}]
message = "测试规则"
suggestion = "请勿提及"
must_match = [{{ text = "买独角兽饼干", hit = "独角兽饼干" }}, {{ text = "独角兽饼干好吃", hit = "独角兽饼干" }}]
must_not_match = ["独角兽", "饼干"]
'''


def write_pack(rules_dir: Path, n_terms: int) -> None:
    terms = ", ".join(['"独角兽饼干"', *(f'"独角兽饼干{i}号"' for i in range(n_terms))])
    (rules_dir / "bench.toml").write_text(PACK.format(version=n_terms, terms=terms), encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Run:
    case: str
    reload_seconds: float
    #: (seconds since SIGHUP at send, latency seconds)
    answers: list[tuple[float, float]] = field(default_factory=list)
    unanswered: int = 0


async def one_run(case: str, rate: int, before: float, after: float, lines: list[str], tmp: Path) -> Run:
    import websockets

    rules_dir = tmp / "rules"
    rules_dir.mkdir(exist_ok=True)
    write_pack(rules_dir, 1)
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "xdg"))
    port = free_port()
    log_path = tmp / "serve.log"
    with open(log_path, "w") as log:
        srv = subprocess.Popen(
            [sys.executable, "-m", "livestream_compliance", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--rules", str(rules_dir), "--no-audit", "--acks", "--rate", "1000000", "--burst", "1000000"],
            env=env, stdout=subprocess.DEVNULL, stderr=log,
        )
    try:
        ws = None
        for _ in range(600):
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/", max_size=2**20)
                break
            except OSError:
                if srv.poll() is not None:
                    raise RuntimeError(f"server exited: {log_path.read_text()[-500:]}") from None
                await asyncio.sleep(0.05)
        assert ws is not None, "server did not start"
        await ws.send(orjson.dumps({"type": "hello", "stream_id": "reload", "acks": True}))
        await ws.recv()
        sent: dict[int, float] = {}
        got: list[tuple[float, float]] = []

        async def reader() -> None:
            async for raw in ws:
                seq = orjson.loads(raw).get("seq")
                t = sent.pop(seq, None)
                if t is not None:
                    got.append((t, time.perf_counter() - t))

        task = asyncio.create_task(reader())
        t0 = time.perf_counter()
        seq = 0
        hup: float | None = None
        reloaded = re.compile(r"rules reloaded: .* in ([0-9.]+)s")
        reload_seconds = float("nan")
        while True:
            now = time.perf_counter()
            if hup is None and now - t0 >= before:
                if case == "edited rules (state cache miss: build)":
                    write_pack(rules_dir, 2)
                hup = time.perf_counter()
                srv.send_signal(signal.SIGHUP)
            if hup is not None and reload_seconds != reload_seconds:  # not logged yet
                m = reloaded.search(log_path.read_text(encoding="utf-8", errors="replace"))
                if m:
                    reload_seconds = float(m.group(1))
            if hup is not None and reload_seconds == reload_seconds and now - hup > reload_seconds + after:
                break
            if hup is not None and now - hup > 120:
                raise RuntimeError("the reload did not finish in 120 s")
            due = int((now - t0) * rate)
            while seq < due:
                seq += 1
                sent[seq] = time.perf_counter()
                await ws.send(orjson.dumps({"type": "chat", "text": lines[seq % len(lines)], "seq": seq,
                                            "user": f"u{seq % 200}"}))
            await asyncio.sleep(0.0005)
        await asyncio.sleep(0.5)
        task.cancel()
        await ws.close()
        assert hup is not None
        return Run(case, reload_seconds, [(t - hup, lat) for t, lat in got], len(sent))
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(20)
        except subprocess.TimeoutExpired:
            srv.kill()


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def mmm(values: list[float], digits: int = 1) -> str:
    if not values:
        return "—"
    return f"{statistics.median(values):,.{digits}f} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def report(runs: list[Run], rate: int, after: float) -> str:
    out = [
        f"_{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores, load average at end "
        f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())}; figures are median (min–max) of the runs._",
        "",
        f"| case | runs | reload (s, server's log) | window | answers | p50 ms | p99 ms | max ms | answers > 20 ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for case in dict.fromkeys(r.case for r in runs):
        rs = [r for r in runs if r.case == case]
        for window, pick in (
            ("before the reload", lambda r: [lat for t, lat in r.answers if t < 0]),
            ("during it", lambda r: [lat for t, lat in r.answers if 0 <= t < r.reload_seconds + after]),
        ):
            lats = [pick(r) for r in rs]
            out.append(
                f"| {case} | {len(rs)} | {mmm([r.reload_seconds for r in rs], 2)} | {window} | "
                f"{mmm([float(len(x)) for x in lats], 0)} | {mmm([pct(x, 0.5) * 1000 for x in lats], 2)} | "
                f"{mmm([pct(x, 0.99) * 1000 for x in lats])} | {mmm([max(x) * 1000 for x in lats if x])} | "
                f"{mmm([float(sum(1 for v in x if v > 0.02)) for x in lats], 0)} |"
            )
    unanswered = sum(r.unanswered for r in runs)
    out += [
        "",
        f"- one websocket stream, {rate:,} chat frames/s (LiveChat lines, 200 viewers), acks on; "
        f"'during it' = answers to frames sent from SIGHUP to {after:g} s after the reload finished",
        "- edited rules: the extra pack gains a term before SIGHUP, so the state cache misses and the "
        "reload parses, validates and builds everything; unchanged rules: the reload reads the state cache",
        f"- frames never answered: {unanswered}",
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="seconds-long CI mode")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--rate", type=int, default=1000, help="chat frames per second (default 1000)")
    p.add_argument("--before", type=float, default=3.0, help="seconds of load before SIGHUP")
    p.add_argument("--after", type=float, default=1.0, help="seconds after the reload counted in its window")
    p.add_argument("--out", help="also write the table to this file")
    a = p.parse_args(argv)
    if a.smoke:
        a.reps, a.rate, a.before, a.after = 1, 200, 1.0, 0.3
    lines = CORPUS.read_text(encoding="utf-8").splitlines() if CORPUS.exists() else FALLBACK
    runs: list[Run] = []
    for rep in range(a.reps):
        for case in ("edited rules (state cache miss: build)", "unchanged rules (state cache hit)"):
            tmp = Path(tempfile.mkdtemp(prefix="bench-reload-"))
            try:
                if case.startswith("unchanged"):
                    # the state for these rules exists: as after any earlier start with them
                    env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "xdg"))
                    (tmp / "rules").mkdir()
                    write_pack(tmp / "rules", 1)
                    subprocess.run([sys.executable, "-m", "livestream_compliance", "rules", "build", str(tmp / "rules")],
                                   env=env, check=True, stdout=subprocess.DEVNULL)
                run = asyncio.run(one_run(case, a.rate, a.before, a.after, lines, tmp))
                runs.append(run)
                print(f"rep {rep + 1} {case}: reload {run.reload_seconds:.2f} s, worst "
                      f"{max((x[1] for x in run.answers), default=0) * 1000:.0f} ms", file=sys.stderr, flush=True)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    table = report(runs, a.rate, a.after)
    sys.stdout.write(table)
    if a.out:
        Path(a.out).write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

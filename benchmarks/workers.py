"""Throughput of the Redis stream workers (``compliance worker``), 1 and 2 workers, on this machine.

    python benchmarks/workers.py                 # ~5 minutes on 2 cores; markdown table on stdout
    python benchmarks/workers.py --quick         # a few seconds per run (smaller inputs)
    python benchmarks/workers.py --entries 200000 --workers 1 2 4

Starts its own redis-server (127.0.0.1, a free port, a temp dir, no persistence; installed with
scripts/ensure-packages.sh when missing) and the workers as real subprocesses (default rules,
``--partitions 4``). Once the workers have shared the partitions, they are stopped (SIGSTOP), the
input is loaded, and they are continued; the consumer group is sampled until every entry is
acknowledged. Rates are measured in the steady state, between 20% and 90% of the entries
acknowledged; the CPU seconds each worker and redis-server used in that window come from /proc.
Each row is the fastest of ``--reps`` runs: on a shared machine, "worker CPU busy" well under
100% means the workers waited for a CPU (other load), and the CPU-µs columns are the figures to
size with.

Text: real Douyin livestream lines from ``../shared/corpora/livechat`` (chat.txt viewer comments,
host.txt host speech) when present, else synthetic lines (the table says which).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "server"))

from redis_fixture import RedisServer  # noqa: E402

from livestream_compliance_server.worker import input_key, input_keys  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora" / "livechat"
GROUP = "bench"
PARTITIONS = 4
TICKS = os.sysconf("SC_CLK_TCK")

SYNTHETIC_CHAT = ["主播好漂亮啊", "几号链接", "已经下单了", "什么时候发货", "有没有优惠券", "这件衣服显瘦吗", "加我微信私聊",
                  "尺码偏大一码吗", "主播穿的什么颜色", "刚来的，讲到哪了"]
SYNTHETIC_HOST = ["今天给大家带来的是我们家的新款连衣裙，面料是纯棉的", "这个价格真的是全网最低价了",
                  "喜欢的宝宝们可以点点关注，我们每天晚上八点开播", "这款茶叶喝了能降血压，家里老人都在喝"]


@dataclass(frozen=True)
class Shape:
    name: str
    source: str  # chat / host
    per_entry: int  # lines per entry (1: a chat/transcript message; more: a batch message)
    label: str


SHAPES = {
    "chat": Shape("chat", "chat", 1, "chat, 1 line/entry"),
    "chat-batch": Shape("chat-batch", "chat", 20, "chat, batch of 20 lines/entry"),
    "host": Shape("host", "host", 1, "host speech, 1 transcript/entry"),
}


def load_lines() -> tuple[list[str], list[str], str]:
    chat, host = CORPORA / "chat.txt", CORPORA / "host.txt"
    if chat.is_file() and host.is_file():
        c = [x for x in chat.read_text(encoding="utf-8").splitlines() if x.strip()]
        h = [x for x in host.read_text(encoding="utf-8").splitlines() if x.strip()]
        return c, h, "LiveChat (Douyin) real lines"
    return SYNTHETIC_CHAT, SYNTHETIC_HOST, "synthetic lines (../shared/corpora/livechat not found)"


def messages(shape: Shape, entries: int, chat: list[str], host: list[str], rooms: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    seq = [0] * rooms
    out = []
    for _ in range(entries):
        r = rng.randrange(rooms)
        room = f"room-{r}"
        seq[r] += 1
        if shape.per_entry > 1:
            items = [{"seq": seq[r] * 100 + j, "text": rng.choice(chat), "user": f"u{rng.randrange(300)}"}
                     for j in range(shape.per_entry)]
            out.append({"type": "batch", "stream_id": room, "source": "chat", "items": items})
        elif shape.source == "chat":
            out.append({"type": "chat", "stream_id": room, "seq": seq[r], "text": rng.choice(chat),
                        "user": f"u{rng.randrange(300)}"})
        else:
            out.append({"type": "transcript", "stream_id": room, "seq": seq[r], "text": rng.choice(host)})
    return out


def produce(r: redis.Redis, base: str, msgs: list[dict[str, Any]]) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(msgs), 5000):
        pipe = r.pipeline(transaction=False)
        for m in msgs[i:i + 5000]:
            pipe.xadd(input_key(base, m["stream_id"], PARTITIONS), {"data": orjson.dumps(m)})
        pipe.execute()
    return time.perf_counter() - t0


def acked(r: redis.Redis, keys: list[str]) -> int:
    n = 0
    for k in keys:
        for g in r.xinfo_groups(k):
            if g["name"] == GROUP.encode():
                n += (g["entries-read"] or 0) - g["pending"]
    return n


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime
    except (OSError, IndexError, ValueError):
        return float("nan")


def rss(pid: int) -> int:
    try:
        for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    except OSError:
        pass
    return 0


def lease_owners(r: redis.Redis, base: str) -> list[bytes | None]:
    return [None if v is None else v.split(b"/")[0] for v in r.mget([f"{base}:in:lease:{p}" for p in range(PARTITIONS)])]


def run_one(server: RedisServer, shape: Shape, workers: int, entries: int, chat: list[str], host: list[str],
            rooms: int, tmp: Path, timeout: float, rules: list[str]) -> dict[str, Any]:
    """Workers start on an empty input and settle (leases balanced); then they are stopped (SIGSTOP),
    the input is loaded, and they are continued (SIGCONT): startup, rebalancing and takeover
    replays stay out of the measurement, and the producer does not compete with the workers."""
    r = redis.Redis.from_url(server.url, protocol=2)
    base = f"b{uuid.uuid4().hex[:6]}"
    keys = input_keys(f"{base}:in", PARTITIONS)
    msgs = messages(shape, entries, chat, host, rooms, seed=workers)
    for k in keys:
        r.xgroup_create(k, GROUP, id="0", mkstream=True)
    procs = []
    for i in range(workers):
        log = (tmp / f"{base}-w{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "livestream_compliance", "worker", "--redis", server.url, "--input", f"{base}:in",
             "--group", GROUP, "--output", f"{base}:out", "--partitions", str(PARTITIONS), "--consumer", f"w{i}",
             "--lease-ttl", "30", "--batch", "500", "--log-level", "warning", *rules],
            stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT,
        ))
    redis_pid = server.proc.pid  # type: ignore[union-attr]
    want = sorted(f"w{i}".encode() for i in range(workers) for _ in range(PARTITIONS // workers))
    lo, hi = int(entries * 0.2), int(entries * 0.9)
    marks: dict[str, tuple[float, float, list[float]]] = {}
    try:
        settle = time.monotonic() + 120
        while sorted(x or b"-" for x in lease_owners(r, base)) != want:
            if time.monotonic() > settle or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"workers did not settle: {(tmp / f'{base}-w0.log').read_text()[-2000:]}")
            time.sleep(0.1)
        for p in procs:
            p.send_signal(signal.SIGSTOP)
        c0 = cpu_seconds(redis_pid)
        produce_s = produce(r, f"{base}:in", msgs)
        produce_cpu = cpu_seconds(redis_pid) - c0
        stream_bytes = sum(int(r.memory_usage(k, samples=0) or 0) for k in keys)
        del msgs
        for p in procs:
            p.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = acked(r, keys)
            now = time.perf_counter()
            for name, level in (("lo", lo), ("hi", hi)):
                if name not in marks and n >= level:
                    marks[name] = (now, float(n), [cpu_seconds(p.pid) for p in procs] + [cpu_seconds(redis_pid)])
            if n >= entries:
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a worker exited: {(tmp / f'{base}-w0.log').read_text()[-2000:]}")
            time.sleep(0.02)
        else:
            raise RuntimeError(f"not done after {timeout}s ({acked(r, keys)}/{entries})")
        rss_kb = [rss(p.pid) for p in procs]
    finally:
        for p in procs:
            p.send_signal(signal.SIGCONT)
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    (t_lo, n_lo, c_lo), (t_hi, n_hi, c_hi) = marks["lo"], marks["hi"]
    dt, dn = t_hi - t_lo, n_hi - n_lo
    cpu = [b - a for a, b in zip(c_lo, c_hi)]
    findings = r.xlen(f"{base}:out")
    for k in [*keys, f"{base}:out"]:
        r.delete(k)
    r.close()
    lines = dn * shape.per_entry
    worker_cpu = sum(cpu[:-1])
    return {
        "shape": shape, "workers": workers, "entries": entries, "produce_rate": entries / produce_s,
        "entries_s": dn / dt, "lines_s": lines / dt, "findings": findings,
        "findings_per_1k_lines": 1000 * findings / (entries * shape.per_entry),
        "worker_cpu_us_per_line": 1e6 * worker_cpu / lines if lines else float("nan"),
        "worker_util": worker_cpu / dt / workers,
        "redis_cpu_us_per_entry": 1e6 * cpu[-1] / dn if dn else float("nan"),
        "redis_util": cpu[-1] / dt,
        "redis_produce_us_per_entry": 1e6 * produce_cpu / entries,
        "stream_bytes_per_entry": stream_bytes / entries,
        "worker_rss_mb": max(rss_kb) / 1024,
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| input | workers | entries/s | lines/s | lines/s per worker | worker CPU µs/line | worker CPU busy "
        "| redis CPU µs/entry (workers) | redis CPU µs/entry (producer XADD) | redis CPU busy | input bytes/entry "
        "| worker RSS MB | findings/1k lines |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for x in rows:
        out.append(
            f"| {x['shape'].label} | {x['workers']} | {x['entries_s']:,.0f} | {x['lines_s']:,.0f} "
            f"| {x['lines_s'] / x['workers']:,.0f} | {x['worker_cpu_us_per_line']:.0f} | {x['worker_util']:.0%} "
            f"| {x['redis_cpu_us_per_entry']:.1f} | {x['redis_produce_us_per_entry']:.1f} | {x['redis_util']:.0%} "
            f"| {x['stream_bytes_per_entry']:.0f} | {x['worker_rss_mb']:.0f} | {x['findings_per_1k_lines']:.1f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, help="entries per run (default: 60000 per worker; batches: 1/10 of that)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    ap.add_argument("--rooms", type=int, default=2000, help="live streams the entries are spread over")
    ap.add_argument("--quick", action="store_true", help="small inputs (a smoke test of the benchmark)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per run before giving up")
    ap.add_argument("--reps", type=int, default=3, help="runs per row; the fastest is reported (default 3)")
    ap.add_argument("--rules", metavar="DIR", help="check with these rules only (default: the default rule packs)")
    ap.add_argument("--results", type=Path, metavar="FILE",
                    help="also write the table into this markdown file (e.g. benchmarks/RESULTS.md), replacing "
                         "its previous workers section")
    args = ap.parse_args(argv)
    chat, host, text_kind = load_lines()
    load_before = os.getloadavg()[0]
    rules = ["--no-default-rules", "--rules", args.rules] if args.rules else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmpdir:
        tmp = Path(tmpdir)
        server = RedisServer(tmp / "redis").start()
        try:
            version = redis.Redis.from_url(server.url).info("server")["redis_version"]
            for shape_name in args.shapes:
                shape = SHAPES[shape_name]
                for w in args.workers:
                    per_worker = 6000 if args.quick else 60000
                    n = args.entries or per_worker * w
                    if shape.per_entry > 1 and not args.entries:
                        n = max(200, n // 10)
                    if shape.source == "host" and not args.entries:
                        n = n // 2
                    runs = []
                    for _ in range(1 if args.quick else args.reps):
                        runs.append(run_one(server, shape, w, n, chat, host, args.rooms, tmp, args.timeout, rules))
                        x = runs[-1]
                        sys.stderr.write(f"{shape.label}, {w} worker(s): {x['lines_s']:,.0f} lines/s, "
                                         f"{x['worker_cpu_us_per_line']:.0f} CPU µs/line (worker CPU busy "
                                         f"{x['worker_util']:.0%}, load {os.getloadavg()[0]:.2f})\n")
                    rows.append(max(runs, key=lambda x: x["lines_s"]))
        finally:
            server.stop()
    try:
        import hiredis  # noqa: F401

        parser = "hiredis parser"
    except ImportError:
        parser = "pure-Python RESP parser (no hiredis)"
    head = (f"Redis stream workers: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"Python {platform.python_version()}, redis-server {version}, redis-py {redis.__version__} with the {parser}, "
          f"{PARTITIONS} partitions, --batch 500, "
          f"{'rules ' + args.rules if args.rules else 'default rules'}, {text_kind}, {args.rooms} rooms; steady state (20%-90% acknowledged), "
          f"best of {1 if args.quick else args.reps} runs; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after.\n")
    report = head + "\n" + table(rows)
    print(report)
    if args.results:
        replace_section(args.results, f"## Redis stream workers\n\nGenerated by `python benchmarks/workers.py "
                        f"--results {args.results.name}` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC."
                        f" See docs/deployment.md for the sizing arithmetic.\n\n{report}\n")
    return 0


#: markers of the workers section in RESULTS.md (benchmarks/run.py keeps it when it rewrites the file)
BEGIN, END = "<!-- workers:begin -->", "<!-- workers:end -->"


def replace_section(path: Path, body: str) -> None:
    """Put ``body`` between the markers in ``path`` (appended when the file has none)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{BEGIN}\n{body}{END}\n"
    if BEGIN in text and END in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + block.rstrip("\n") + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())

"""Redis stream workers against a real redis-server on 127.0.0.1 (started here, stopped at the end).

The rules are a small pack written by this file (so that other rule edits cannot move the
expectations); the expected findings come from ``compliance check --format jsonl`` on the same
lines. Test lines begin with 好的 and end with 谢谢, so joining a speaker's previous line (the
cross-message window) can never create or hide a finding: the workers must give exactly the
CLI's findings, plus the carried findings of the split sequences written on purpose.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from procutil import die_with_parent
from redis_fixture import ROOT, RedisServer

from livestream_compliance import build_checker, load_rule_set
from livestream_compliance.cli import main as cli_main
from livestream_compliance.engine import Checker
from livestream_compliance.session import SessionConfig
from livestream_compliance_server.redis_sink import RedisFindingsSink
from livestream_compliance_server.sinks import AuditRecord
from livestream_compliance_server.worker import Worker, WorkerConfig, finding_id, input_key, input_keys
from livestream_compliance_server.worker_metrics import WorkerMetrics, serve_metrics

RULES = """
[pack]
id = "worker-test"
version = "1.0"
description = "rules of the worker tests"

[[rules]]
id = "W-LOWEST"
category = "price_claims"
severity = "high"
sources = ["host"]
terms = ["全网最低价"]
negatable = false
legal_basis = [{ law = "中华人民共和国价格法", article = "第十四条" }]
message = "“全网最低价”无法证实。"
suggestion = "改为“直播间专属价”。"
must_match = [{ text = "今天全网最低价", hit = "全网最低价" }, { text = "全网最低价了", hit = "全网最低价" }]
must_not_match = ["全网都在卖", "价格很低"]

[[rules]]
id = "W-WECHAT"
category = "diversion"
severity = "warning"
sources = ["chat", "host"]
terms = ["加我微信", "加微信"]
negatable = false
legal_basis = [{ law = "平台规则", article = "站外导流" }]
message = "引导站外交易。"
suggestion = "请在平台内沟通。"
must_match = [{ text = "加我微信领券", hit = "加我微信" }, { text = "主播加微信", hit = "加微信" }]
must_not_match = ["微信支付", "加油"]

[[rules]]
id = "W-BLOOD"
category = "medical_claims"
severity = "critical"
terms = ["降血压"]
negatable = false
legal_basis = [{ law = "中华人民共和国广告法", article = "第十七条" }]
message = "普通食品不得宣称疗效。"
suggestion = "删除功效宣称。"
must_match = [{ text = "这茶能降血压", hit = "降血压" }, { text = "降血压效果好", hit = "降血压" }]
must_not_match = ["血压计", "高血压患者要遵医嘱"]
"""

CLEAN = ["今天给大家带来新款连衣裙", "主播好漂亮啊", "这个颜色很好看", "几号链接", "已经下单了", "什么时候发货",
         "有没有优惠券", "这件衣服显瘦吗", "我们家的面料是棉的", "尺码偏大一码"]
BAD_HOST = ["今天是全网最低价", "这茶能降血压", "想要的加我微信", "全网最低价，这茶还能降血压"]
BAD_CHAT = ["加我微信私聊", "降血压的茶有吗", "加微信拿货", "是全网最低价吗"]  # the last: a host-only rule
GROUP = "checkers"


def line(text: str) -> str:
    """Every test line starts with 好的 and ends with 谢谢: no term can span two lines."""
    return f"好的，{text}。谢谢"


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def r(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, protocol=2)
    yield client
    client.close()


@pytest.fixture(scope="session")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("worker-rules")
    (d / "worker.toml").write_text(RULES, encoding="utf-8")
    return d


@pytest.fixture(scope="session")
def small_checker(rules_dir: Path) -> Checker:
    return build_checker(load_rule_set([rules_dir], defaults=False))


@pytest.fixture
def names() -> dict[str, str]:
    p = f"t{uuid.uuid4().hex[:8]}"
    return {"input": f"{p}:in", "output": f"{p}:out", "dead": f"{p}:in:dead"}


class WorkerProc:
    """``python -m livestream_compliance worker ...`` as a real subprocess."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livestream_compliance", "worker", *args],
            stdout=subprocess.DEVNULL, stderr=self._log, cwd=ROOT, preexec_fn=die_with_parent,
        )
        self.metrics_url: str | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60.0) -> WorkerProc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            for ln in text.splitlines():
                if ln.startswith("compliance worker ") and "metrics " in ln:
                    url = ln.rsplit("metrics ", 1)[1].strip()
                    self.metrics_url = url if url.startswith("http") else None
                    return self
            assert self.proc.poll() is None, f"worker exited {self.proc.returncode}:\n{text}"
            time.sleep(0.05)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log()}")

    def metrics(self) -> dict[str, float]:
        assert self.metrics_url
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        out: dict[str, float] = defaultdict(float)
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[s.name] += s.value
        return out

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def spawn(redis_server: RedisServer, rules_dir: Path, tmp_path: Path) -> Iterator[Callable[..., WorkerProc]]:
    procs: list[WorkerProc] = []

    def start(names: dict[str, str], consumer: str, *extra: str) -> WorkerProc:
        args = ["--redis", redis_server.url, "--input", names["input"], "--group", GROUP, "--output", names["output"],
                "--consumer", consumer, "--no-default-rules", "--rules", str(rules_dir), "--metrics-port", "0",
                "--log-level", "info", *extra]
        w = WorkerProc(args, tmp_path / f"{consumer}.log")
        procs.append(w)
        return w

    yield start
    for w in procs:
        w.close()


def progress(r: redis.Redis, keys: list[str]) -> tuple[int, int, int]:
    """(entries delivered to the group, pending, lag) summed over the partitions."""
    read = pending = lag = 0
    for k in keys:
        for g in r.xinfo_groups(k):
            if g["name"] == GROUP.encode():
                read += g["entries-read"] or 0
                pending += g["pending"]
                lag += g["lag"] or 0
    return read, pending, lag


def wait_until(cond: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def wait_done(r: redis.Redis, keys: list[str], total: int, timeout: float) -> None:
    def done() -> bool:
        read, pending, lag = progress(r, keys)
        return read >= total and pending == 0 and lag == 0
    wait_until(done, timeout, f"all {total} entries acknowledged (now {progress(r, keys)})", 0.2)


def produce(r: redis.Redis, base: str, partitions: int, messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """XADD each message to its partition; returns (partition key, entry id) per message, in order."""
    out: list[tuple[str, str]] = []
    for i in range(0, len(messages), 2000):
        pipe = r.pipeline(transaction=False)
        keys = []
        for m in messages[i:i + 2000]:
            key = input_key(base, m["stream_id"], partitions)
            keys.append(key)
            pipe.xadd(key, {"data": orjson.dumps(m)})
        out.extend((k, eid.decode()) for k, eid in zip(keys, pipe.execute()))
    return out


def read_output(r: redis.Redis, stream: str) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    last = "-"
    while True:  # bounded by the stream's length
        chunk = r.xrange(stream, min=last, max="+", count=10_000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            return rows
        rows.extend((f[b"id"].decode(), orjson.loads(f[b"data"])) for _, f in chunk)
        last = chunk[-1][0].decode()


def cli_expected(rules_dir: Path, tmp_path: Path, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``compliance check --format jsonl`` over the items (one jsonl line each): the CLI's findings."""
    path = tmp_path / "items.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for it in items:
            rec = {"text": it["text"], "source": it["source"]}
            if it.get("user") is not None:
                rec["user"] = it["user"]
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli_main(["check", "--format", "jsonl", "--no-default-rules", "--rules", str(rules_dir), "--no-progress",
                         str(path)])
    assert code in (0, 1)
    return [json.loads(x) for x in buf.getvalue().splitlines()]


def make_traffic(n_entries: int, rooms: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    seq: dict[str, int] = defaultdict(int)
    out = []

    def text(bad: list[str]) -> str:
        return line(rng.choice(bad) if rng.random() < 0.2 else rng.choice(CLEAN))

    for _ in range(n_entries):
        room = f"room-{rng.randrange(rooms)}"
        kind = rng.random()
        seq[room] += 1
        if kind < 0.65:
            out.append({"type": "chat", "stream_id": room, "seq": seq[room], "text": text(BAD_CHAT),
                        "user": f"u{rng.randrange(40)}"})
        elif kind < 0.95:
            out.append({"type": "transcript", "stream_id": room, "seq": seq[room], "text": text(BAD_HOST),
                        "start_ms": seq[room] * 1000, "end_ms": seq[room] * 1000 + 900})
        else:
            items = []
            for j in range(4):
                if j % 2:
                    items.append({"seq": seq[room] * 10 + j, "source": "chat", "user": f"u{rng.randrange(40)}",
                                  "text": text(BAD_CHAT)})
                else:
                    items.append({"seq": seq[room] * 10 + j, "text": text(BAD_HOST)})
            out.append({"type": "batch", "stream_id": room, "source": "host", "items": items})
    return out


def split_sequences(k: int, pieces: int, prefix: str = "split") -> tuple[list[list[dict[str, Any]]], list[tuple[int, str, int, int]]]:
    """Per room: a chat line and a transcript each cut inside a term, in 2 or 3 messages.

    Returns the messages in rounds (round n: piece n of every room) and the expected carried
    findings as (index of the message in the last round, rule, carry, from_seq).
    """
    chat, host = {2: (["好的，加我", "微信，谢谢"], ["好的，这茶能降", "血压，谢谢"]),
                  3: (["好的，加", "我", "微信，谢谢"], ["好的，这茶能", "降", "血压，谢谢"])}[pieces]
    rounds: list[list[dict[str, Any]]] = [[] for _ in range(pieces)]
    expect = []
    for i in range(k):
        room = f"{prefix}-{i}"
        for n in range(pieces):
            rounds[n].append({"type": "chat", "stream_id": room, "seq": 100 + n, "text": chat[n], "user": f"su{i}"})
            rounds[n].append({"type": "transcript", "stream_id": room, "seq": 200 + n, "text": host[n], "speaker": f"sh{i}"})
        expect.append((2 * i, "W-WECHAT", 2, 100))  # 加我 | 微信, or 加 | 我 | 微信: begins in the first piece
        expect.append((2 * i + 1, "W-BLOOD", 1, 200 + pieces - 2))  # 降 | 血压: begins in the piece before the last
    return rounds, expect


def flatten(messages: list[dict[str, Any]]) -> list[tuple[int, int | None, dict[str, Any]]]:
    """(message index, item number (1-based) or None, item as a CLI jsonl record) per text."""
    out = []
    for i, m in enumerate(messages):
        if m["type"] == "batch":
            for j, it in enumerate(m["items"]):
                src = it.get("source") or m.get("source") or "host"
                out.append((i, j + 1, {"text": it["text"], "source": src, "user": it.get("user") if src == "chat" else None}))
        elif m["type"] == "chat":
            out.append((i, None, {"text": m["text"], "source": "chat", "user": m.get("user")}))
        else:
            out.append((i, None, {"text": m["text"], "source": "host"}))
    return out


CLI_ONLY = {"file", "line"}


# ------------------------------------------------------------------------------------ tests
def test_three_workers_50k_entries_one_killed(r: redis.Redis, names: dict[str, str], spawn: Callable[..., WorkerProc],
                                              rules_dir: Path, tmp_path: Path) -> None:
    t_start = time.monotonic()
    partitions = 6
    # terms split over two messages of one speaker, anywhere in the traffic: also across the kill
    rounds, carried = split_sequences(40, pieces=2)
    traffic = make_traffic(50_000 - 2 * len(rounds[0]), rooms=300, seed=7)
    rng = random.Random(3)
    keyed = [(float(i), m) for i, m in enumerate(traffic)]
    for first, second in zip(rounds[0], rounds[1]):
        a, b = sorted(rng.uniform(0, len(traffic)) for _ in range(2))
        keyed += [(a, first), (b, second)]
    keyed.sort(key=lambda x: x[0])
    messages = [m for _, m in keyed]
    position = {id(m): i for i, m in enumerate(messages)}
    assert len(messages) == 50_000
    flat = flatten(messages)
    expected = cli_expected(rules_dir, tmp_path, [it for _, _, it in flat])
    assert len(expected) > 5_000

    workers = [spawn(names, f"w{i}", "--partitions", str(partitions), "--lease-ttl", "2", "--claim-idle", "3",
                     "--batch", "500", "--host-window", "30", "--chat-window", "30") for i in range(3)]
    ids = produce(r, names["input"], partitions, messages)
    keys = input_keys(names["input"], partitions)
    for w in workers:
        w.wait_ready()

    # kill a worker that holds partitions while it has entries in hand (stopped first, so that it cannot commit)
    victim = workers[1]
    victim_pending = 0

    def victim_busy() -> bool:
        nonlocal victim_pending
        read, _, _ = progress(r, keys)
        if read < 15_000:
            return False
        victim.signal(signal.SIGSTOP)
        victim_pending = sum(c["pending"] for k in keys for c in r.xpending(k, GROUP)["consumers"] if c["name"] == b"w1")
        if victim_pending:
            return True
        victim.signal(signal.SIGCONT)
        return False

    wait_until(victim_busy, 120, "the victim to hold entries", 0.02)
    victim.signal(signal.SIGKILL)
    assert victim.wait(10) == -signal.SIGKILL
    t_kill = time.monotonic()
    wait_done(r, keys, len(messages), 150)
    t_done = time.monotonic()

    # every entry acknowledged by a survivor or before the kill, nothing dead-lettered
    assert r.xlen(names["dead"]) == 0
    out = read_output(r, names["output"])
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fid, data in out:
        assert data["id"] == fid
        by_id[fid].append(data)
    for fid, copies in by_id.items():  # a redelivery repeats a finding with its id, and nothing else changes
        assert all(c == copies[0] for c in copies), fid
    got = {(d["file"], d["entry_id"], d["line"], d["rule_id"], d["start"], d["end"]): d for d, *_ in by_id.values()}
    assert len(got) == len(by_id), "two ids for one finding"

    line_of = {n: (i, item) for n, (i, item, _) in enumerate(flat, 1)}
    want: set[tuple[Any, ...]] = set()
    for rec in expected:
        i, item = line_of[rec["line"]]
        key, eid = ids[i]
        k = (key, eid, item or 1, rec["rule_id"], rec["start"], rec["end"])
        want.add(k)
        assert k in got, f"missing {rec}"
        w = got[k]
        assert {f: w[f] for f in rec if f not in CLI_ONLY} == {f: v for f, v in rec.items() if f not in CLI_ONLY}
        assert w["stream_id"] == messages[i]["stream_id"] and w["carry"] == 0
    # the only findings the CLI does not have: the terms split over two messages of one speaker
    extra = {k: v for k, v in got.items() if k not in want}
    want_carried = {}
    for i, rule, carry, from_seq in carried:
        key, eid = ids[position[id(rounds[1][i])]]
        want_carried[(key, eid, 1, rule)] = (carry, from_seq, 0)
    assert {k[:4]: (v["carry"], v["from_seq"], v["start"]) for k, v in extra.items()} == want_carried

    # the survivors reclaimed what the victim had in hand; metrics add up
    survivors = [workers[0], workers[2]]
    m = [w.metrics() for w in survivors]
    assert sum(x["compliance_worker_entries_reclaimed_total"] for x in m) >= victim_pending > 0
    assert sum(x["compliance_worker_entries_replayed_total"] for x in m) > 0  # the victim's windows, rebuilt
    assert all(x["compliance_worker_entries_processed_total"] > 0 for x in m)
    assert sum(x["compliance_worker_partitions_owned"] for x in m) == partitions
    for w in survivors:
        w.signal(signal.SIGTERM)
    assert [w.wait(20) for w in survivors] == [0, 0]
    print(f"\n50k entries, 3 workers, 1 SIGKILLed: {len(out)} findings ({len(out) - len(by_id)} duplicates), "
          f"victim had {victim_pending} in hand; done {t_done - t_kill:.1f}s after the kill, "
          f"test {time.monotonic() - t_start:.1f}s")


def test_sigterm_drains_and_windows_follow_partitions(r: redis.Redis, names: dict[str, str],
                                                     spawn: Callable[..., WorkerProc]) -> None:
    """Rebalance and SIGTERM hand a partition's windows over: a term split in 3 pieces across
    workers A, A+B and B is still found; SIGTERM in the middle of a backlog commits what was read."""
    partitions = 4
    keys = input_keys(names["input"], partitions)
    common = ("--partitions", str(partitions), "--lease-ttl", "1.5", "--host-window", "120", "--chat-window", "120",
              "--retain", "300")
    rounds, carried = split_sequences(12, pieces=3)
    a = spawn(names, "A", *common).wait_ready()
    ids0 = produce(r, names["input"], partitions, rounds[0])
    wait_done(r, keys, len(rounds[0]), 30)
    owned_by_a = wait_until(lambda: all(v == b"A" for v in lease_owners(r, names, partitions)), 10, "A to own all")
    assert owned_by_a and ids0

    b = spawn(names, "B", *common).wait_ready()
    wait_until(lambda: sorted(x or b"-" for x in lease_owners(r, names, partitions)) == [b"A", b"A", b"B", b"B"], 20, "rebalance to 2+2")
    produce(r, names["input"], partitions, rounds[1])
    wait_done(r, keys, len(rounds[0]) * 2, 30)

    # a backlog, then SIGTERM to A in the middle of it: A commits the batch in hand and exits 0
    backlog = make_traffic(20_000, rooms=50, seed=11)
    produce(r, names["input"], partitions, backlog)
    total = len(rounds[0]) * 2 + len(backlog)
    wait_until(lambda: progress(r, keys)[0] > len(rounds[0]) * 2 + 2_000, 60, "A and B to start on the backlog", 0.02)
    a.signal(signal.SIGTERM)
    assert a.wait(15) == 0, a.log()
    for k in keys:
        assert not any(c["name"] == b"A" and c["pending"] for c in r.xpending(k, GROUP)["consumers"]), "A left entries pending"
    wait_until(lambda: sorted(x or b"-" for x in lease_owners(r, names, partitions)) == [b"B"] * 4, 20, "B to take A's partitions")

    ids2 = produce(r, names["input"], partitions, rounds[2])
    wait_done(r, keys, total + len(rounds[2]), 90)
    out = read_output(r, names["output"])
    assert len({fid for fid, _ in out}) == len(out), "a clean handover redelivers nothing"
    found = {(d["file"], d["entry_id"], d["rule_id"]): d for _, d in out}
    for i, rule, carry, from_seq in carried:
        key, eid = ids2[i]
        d = found.get((key, eid, rule))
        assert d is not None, f"the split {rule} of {rounds[2][i]['stream_id']} was lost in a handover"
        assert (d["carry"], d["from_seq"]) == (carry, from_seq)
    assert "compliance_worker_entries_reclaimed_total 0.0" in urllib.request.urlopen(b.metrics_url, timeout=5).read().decode()
    b.signal(signal.SIGTERM)
    assert b.wait(15) == 0
    assert lease_owners(r, names, partitions) == [None] * partitions  # released, not left to expire


def lease_owners(r: redis.Redis, names: dict[str, str], partitions: int) -> list[bytes | None]:
    return [None if v is None else v.split(b"/")[0] for v in r.mget([f"{names['input']}:lease:{p}" for p in range(partitions)])]


# ------------------------------------------------------------------------------------ in-process
def make_worker(url: str, names: dict[str, str], checker: Checker, **kw: Any) -> Worker:
    cfg = WorkerConfig(redis_url=url, input=names["input"], group=GROUP, output=names["output"], lease_ttl=1.0,
                       block_ms=100, **kw)
    return Worker(cfg, checker, metrics=WorkerMetrics(CollectorRegistry()))


def run_in_thread(w: Worker) -> threading.Thread:
    t = threading.Thread(target=w.run, name=f"worker-{w.name}", daemon=True)
    t.start()
    return t


def test_dead_letters(r: redis.Redis, redis_server: RedisServer, names: dict[str, str], small_checker: Checker) -> None:
    key = names["input"]
    r.xgroup_create(key, GROUP, id="0", mkstream=True)
    # an entry that killed every worker that took it: delivered 9 times already
    poison = r.xadd(key, {"data": orjson.dumps({"type": "chat", "stream_id": "s", "seq": 1, "text": "加我微信"})})
    r.xreadgroup(GROUP, "ghost", {key: ">"}, count=1)
    r.xclaim(key, GROUP, "ghost", 0, [poison], retrycount=9)
    bad = {
        "bad_json": {"data": b"{nope"},
        "invalid_utf8": {"data": b'{"type":"chat","text":"\xff"}'},
        "missing_data": {"text": "加我微信"},
        "unknown_type": {"data": b'{"type":"shout","seq":1}'},
        "bad_message": {"data": b'{"type":"chat","stream_id":"s","seq":"1","text":"x"}'},
        "unsupported_type": {"data": b'{"type":"hello","stream_id":"s"}'},
        "missing_stream_id": {"data": b'{"type":"chat","seq":1,"text":"x"}'},
        "bad_input": {"data": orjson.dumps({"type": "batch", "stream_id": "s", "items": [
            {"seq": 1, "text": "ok"}, {"seq": 2, "text": "长" * 51}]})},
    }
    bad_ids = {reason: r.xadd(key, fields).decode() for reason, fields in bad.items()}
    good = r.xadd(key, {"data": orjson.dumps({"type": "chat", "stream_id": "s", "seq": 2, "text": line("加我微信"), "user": "u"})})

    w = make_worker(redis_server.url, names, small_checker, max_text_chars=50, max_deliveries=5)
    port = serve_metrics(w.metrics, 0)
    t = run_in_thread(w)
    try:
        wait_until(lambda: progress(r, [key])[1:] == (0, 0) and r.xlen(names["dead"]) == len(bad) + 1, 20, "dead letters")
    finally:
        w.request_stop()
        t.join(10)
    assert not t.is_alive()
    dead = {f[b"entry_id"].decode(): f for _, f in r.xrange(names["dead"])}
    for reason, eid in bad_ids.items():
        assert dead[eid][b"reason"].decode() == reason, (reason, dead[eid])
        assert dead[eid][b"stream"].decode() == key and dead[eid][b"detail"]
    assert dead[bad_ids["bad_json"]][b"data"] == b"{nope"  # the original is kept for a replay
    assert json.loads(dead[bad_ids["missing_data"]][b"fields"]) == {"text": "加我微信"}
    assert b"item 2" in dead[bad_ids["bad_input"]][b"detail"]
    p = dead[poison.decode()]
    assert p[b"reason"] == b"too_many_deliveries" and int(p[b"deliveries"]) == 10
    out = read_output(r, names["output"])
    assert [(d["entry_id"], d["rule_id"], d["text"]) for _, d in out] == [(good.decode(), "W-WECHAT", "加我微信")]
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'compliance_worker_entries_dead_lettered_total{reason="bad_json"} 1.0' in text
    assert 'compliance_worker_entries_dead_lettered_total{reason="too_many_deliveries"} 1.0' in text
    assert "compliance_worker_entries_processed_total 1.0" in text
    assert 'compliance_worker_findings_total{category="diversion",severity="warning"} 1.0' in text


class _Exploding:
    """A checker that raises (a bug) on one text and delegates everything else."""

    def __init__(self, checker: Checker) -> None:
        self._checker = checker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._checker, name)

    def check(self, text: str, *args: Any, **kw: Any) -> Any:
        if "boom" in text:
            raise RuntimeError("boom")
        return self._checker.check(text, *args, **kw)

    def check_batch(self, texts: Any, *args: Any, **kw: Any) -> Any:
        if any("boom" in t for t in texts):
            raise RuntimeError("boom")
        return self._checker.check_batch(texts, *args, **kw)


def test_redelivered_entries_are_claimed_one_by_one_and_bugs_dead_lettered(
        r: redis.Redis, redis_server: RedisServer, names: dict[str, str], small_checker: Checker) -> None:
    key = names["input"]
    r.xgroup_create(key, GROUP, id="0", mkstream=True)
    texts = ["boom", line("加我微信"), line("这茶能降血压"), line("几号链接")]
    ids = [r.xadd(key, {"data": orjson.dumps({"type": "chat", "stream_id": "s", "seq": i, "text": t})})
           for i, t in enumerate(texts)]
    r.xreadgroup(GROUP, "dead-worker", {key: ">"}, count=10)
    r.xclaim(key, GROUP, "dead-worker", 0, ids[:1], retrycount=2)  # the first one was already redelivered
    w = make_worker(redis_server.url, names, _Exploding(small_checker), consumer="W")  # type: ignore[arg-type]
    counts: list[int | None] = []
    real = w.r.xautoclaim

    def spy(*args: Any, **kw: Any) -> Any:
        counts.append(kw.get("count"))
        return real(*args, **kw)

    w.r.xautoclaim = spy  # type: ignore[method-assign]
    w.setup()
    w._tick()  # takes the partition and reclaims the 4 entries
    assert counts[:2] == [1, w.config.batch]  # the suspicious entry alone, then the rest as a batch
    assert progress(r, [key])[1] == 0
    dead = [(f[b"entry_id"], f[b"reason"], f[b"detail"]) for _, f in r.xrange(names["dead"])]
    assert dead == [(ids[0], b"internal", b"RuntimeError: boom")]
    assert sorted(d["rule_id"] for _, d in read_output(r, names["output"])) == ["W-BLOOD", "W-WECHAT"]
    w._shutdown()


def test_stuck_worker_is_fenced(r: redis.Redis, redis_server: RedisServer, names: dict[str, str],
                                small_checker: Checker) -> None:
    """A worker that reads a batch, stalls past its lease and wakes up writes nothing: the new owner
    has reclaimed the entries (XAUTOCLAIM) and written their findings once."""
    key = names["input"]
    msgs = [{"type": "transcript", "stream_id": "room", "seq": i, "text": line(BAD_HOST[i % 4])} for i in range(20)]
    a = make_worker(redis_server.url, names, small_checker, consumer="A")
    a.setup()
    produce(r, key, 1, msgs)
    a._tick()
    assert list(a.owned) == [0]
    reply = r.xreadgroup(GROUP, "A", {key: ">"}, count=100)  # A reads, then stalls
    entries = reply[0][1]
    assert len(entries) == 20
    r.zrem(a.config.workers_key, a.token)  # A's heartbeat and lease lapse
    r.delete(a.config.lease_key(0))
    b = make_worker(redis_server.url, names, small_checker, consumer="B")
    b.setup()
    b._tick()  # B takes the partition and reclaims A's 20 entries at once
    assert list(b.owned) == [0]
    assert b.metrics.registry.get_sample_value("compliance_worker_entries_reclaimed_total") == 20
    assert progress(r, [key])[1] == 0
    assert a._process(a.owned[0], entries) is False  # A wakes up: fenced
    assert a.metrics.registry.get_sample_value("compliance_worker_commits_fenced_total") == 1 and not a.owned
    out = read_output(r, names["output"])
    per_line = small_checker.check_batch([m["text"] for m in msgs], "host")
    assert len(out) == sum(len(f) for f in per_line) == len({fid for fid, _ in out})
    b._shutdown()


def test_acknowledged_history_is_trimmed(r: redis.Redis, redis_server: RedisServer, names: dict[str, str],
                                         small_checker: Checker) -> None:
    """Workers trim their partitions to ``retain`` seconds before the oldest unacknowledged entry."""
    key = names["input"]
    r.xgroup_create(key, GROUP, id="0", mkstream=True)
    now_ms = int(time.time() * 1000)
    pipe = r.pipeline(transaction=False)
    for i in range(2000):  # an hour-old history, acknowledged below
        pipe.xadd(key, {"data": orjson.dumps({"type": "chat", "stream_id": "s", "seq": i, "text": "ok"})},
                  id=f"{now_ms - 3_600_000 + i}-0")
    pipe.execute()
    for i in range(5):
        r.xadd(key, {"data": orjson.dumps({"type": "chat", "stream_id": "s", "seq": 9000 + i, "text": "ok"})})
    w = make_worker(redis_server.url, names, small_checker, retain=60, replay_window=10)
    t = run_in_thread(w)
    try:
        wait_until(lambda: progress(r, [key])[1:] == (0, 0), 20, "everything acknowledged")
        wait_until(lambda: r.xlen(key) < 200, 10, "the old history trimmed")
    finally:
        w.request_stop()
        t.join(10)
    assert [f[b"data"] for _, f in r.xrange(key)][-5:] == [
        orjson.dumps({"type": "chat", "stream_id": "s", "seq": 9000 + i, "text": "ok"}) for i in range(5)]


def test_finding_id_is_deterministic(small_checker: Checker) -> None:
    f = small_checker.check(line("今天是全网最低价"), "host")[0]
    assert finding_id("in:3", "1-0", None, f) == f.fingerprint("in:3/1-0") == finding_id("in:3", "1-0", None, f)
    assert len({finding_id("in:3", "1-0", None, f), finding_id("in:3", "1-0", 1, f), finding_id("in:2", "1-0", None, f),
                finding_id("in:3", "1-1", None, f)}) == 4
    assert input_key("in", "room-1", 1) == "in" and input_key("in", "room-1", 8) == input_key("in", "room-1", 8)
    assert {input_key("in", f"room-{i}", 8) for i in range(200)} == set(input_keys("in", 8))


def test_partition_count_must_match(r: redis.Redis, redis_server: RedisServer, names: dict[str, str],
                                    small_checker: Checker) -> None:
    from livestream_compliance.errors import UsageError

    make_worker(redis_server.url, names, small_checker, partitions=4).setup()
    with pytest.raises(UsageError, match="partitioned 4 ways"):
        make_worker(redis_server.url, names, small_checker, partitions=2).setup()


# ------------------------------------------------------------------------------------ sidecar publisher
def test_redis_findings_sink(r: redis.Redis, redis_server: RedisServer, names: dict[str, str]) -> None:
    finding = {"rule_id": "T-WECHAT", "category": "diversion", "severity": "warning", "source": "chat", "start": 2,
               "end": 5, "text": "加微信", "matched": "加微信", "message": "m", "suggestion": "s", "legal_basis": ["x"],
               "rule_version": "v", "carry": 0, "from_seq": None}
    rec = AuditRecord(kind="warning", received_at=1.0, stream_id="room", source="chat", seq=7, speaker="u1",
                      text="快来加微信", findings=(finding,), rule_version="v")
    script = AuditRecord(kind="script", received_at=1.0, stream_id="room", source="host", seq=8, speaker=None,
                         text="x", findings=(finding,), rule_version="v")
    sink = RedisFindingsSink(redis_server.url, names["output"])
    sink.write([rec, script])
    sink.write([rec])  # the same finding again: same id
    sink.close()
    out = read_output(r, names["output"])
    assert len(out) == 2 and out[0] == out[1]
    fid, d = out[0]
    assert d["id"] == fid and d["stream_id"] == "room" and d["seq"] == 7 and d["user"] == "u1"
    assert d["column"] == 3 and d["entry_id"] is None and d["file"] == "websocket" and d["rule_id"] == "T-WECHAT"


async def test_sidecar_publishes_to_redis(r: redis.Redis, redis_server: RedisServer, names: dict[str, str],
                                          make_app: Any, connect: Any) -> None:
    app = await make_app(sink=RedisFindingsSink(redis_server.url, names["output"]))
    client = await connect(app, hello={"stream_id": "room-9"})
    frame = await client.request({"type": "chat", "seq": 1, "text": "主播加微信", "user": "v1"})
    assert frame["type"] == "warning"
    await app.stop()  # flushes the audit queue into the sink
    out = read_output(r, names["output"])
    assert [(d["stream_id"], d["rule_id"], d["text"], d["user"]) for _, d in out] == [("room-9", "T-WECHAT", "加微信", "v1")]


def test_worker_config_rejects_nonsense(redis_server: RedisServer, small_checker: Checker) -> None:
    from livestream_compliance.errors import UsageError

    with pytest.raises(UsageError):
        WorkerConfig(redis_url=redis_server.url, input="x", group="g", output="x").validate()
    with pytest.raises(UsageError):
        WorkerConfig(redis_url=redis_server.url, input="x", group="g", output="y", partitions=0).validate()
    assert WorkerConfig(redis_url="", input="x", group="g", output="y", session=SessionConfig()).dead_letter == "x:dead"

"""Sidecar under load: the real ``compliance serve`` process driven over loopback by 50 websocket streams.

    python benchmarks/sidecar_load.py                  # full run (~5 min on 2 cores), writes benchmarks/SIDECAR.md
    python benchmarks/sidecar_load.py --smoke          # CI mode (~20 s): short runs, small ramp, writes nothing
    python benchmarks/sidecar_load.py --profile        # also profile the server (py-spy) at saturation
    python benchmarks/sidecar_load.py --out /tmp/S.md --reps 5 --rates 1000,5000,10000
    python benchmarks/sidecar_load.py --phases saturation --reps 5 --out -   # one part only, report on stdout

What it measures (docs/protocol.md describes the protocol):

* **send-to-answer latency**: the server runs as a separate process (``python -m livestream_compliance
  serve --port 0 --no-audit``), pinned to one core; this process, pinned to the other core, opens 50
  websocket streams (rooms ``room-0`` … ``room-49``, the same rooms in every run on a server; hello per
  stream, ``source: chat``) and sends chat frames open-loop at a fixed rate (a global schedule,
  round-robin over the streams; each frame carries ``sent_at``). Lines are real Douyin chat from
  ``../shared/corpora/livechat/chat.txt`` mixed with ~2 % violating lines written for this benchmark,
  from a pool of 200 viewers per stream (so the per-viewer session joining is exercised). With
  ``acks: true`` in the hello every message is answered (an ack or a warning), so the latency of every
  message is measured; in the warnings-only mode (acks off, the server's default) only messages with
  findings are answered and measured. Latency is taken from the moment the frame was written to the
  socket ("from send") and from the moment the schedule said it was due ("from schedule", which also
  counts any lag of this generator: the coordinated-omission-free figure). Runs of 1,000 and 5,000
  msg/s, ~10 s each, both modes, ``--reps`` times on fresh servers.
* **saturation**: closed loop, every stream keeps 8 messages in flight, so the server never waits;
  its CPU seconds per answered message give the rate one process sustains with a core of its own
  (the figure least disturbed by other processes on a shared machine).
* **maximum sustained rate**: a ramp of offered rates (acks on); a step passes when the achieved
  rate (answers / time from the first scheduled send to the last answer) is >= 98 % of the offered
  rate and p99 (from send) < 50 ms; a failing step is tried once more (a shared machine). The answer
  is the highest passing rate, refined by bisection between the last pass and the first failure.
* **memory**: RSS of the server process (``/proc/PID/status``) on a fresh, warmed-up server, after
  opening N idle streams (connection + hello) and after each of them sent messages (active: a
  session with a tail per viewer); per stream = RSS delta / N.
* **components**: the parts of a message's server time (JSON, validation, session, check, metrics,
  the whole ``App._handler`` path, a finding's wire encoding), measured in this process without network.
* **CPU and GC**: the server's and this generator's CPU seconds over each run (``/proc``), the CPU
  used by every other process meanwhile, and the server's full (generation-2) garbage collections
  with their pauses (a gc callback the benchmark adds when it starts the server), so a run that was
  limited by the generator, by other processes or by a collection says so. The generator's own
  collector is off during a fixed-rate run (collected just before): its pauses would delay its sends
  and its timestamps and count as the server's latency.

The generator is a small asyncio websocket client (RFC 6455 over ``asyncio.Protocol``: frames are
written straight to the transport, answers timestamped in ``data_received``), so that one Python
core can drive one Python server core past its limit; ``--client websockets`` uses the
``websockets`` library's client instead (its core saturates near 12,000 msg/s with acks, below the
server's limit).

The server's per-connection token bucket is raised (``--rate``/``--burst``) so the limiter never
answers ``rate_limited``; everything else is the default configuration with the default rule packs
(``--rules PATH`` serves other rules). Every figure is median (min–max) over the repetitions. On a
shared machine look at the spread and at the "other CPU" column.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import gc
import math
import os
import random
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
DEFAULT_CORPUS = PROJECT.parent / "shared" / "corpora" / "livechat" / "chat.txt"
DEFAULT_OUT = HERE / "SIDECAR.md"

TARGET_P99_MS = 2.0
TARGET_P99_RATE = 5000
TARGET_MAX_RATE = 20_000
RAMP_ACHIEVED = 0.98
RAMP_P99_MS = 50.0
PING_SEQ = 2**52  # seq of the barrier pings (never a message's seq)
STREAM_PREFIX = "room"  # stream ids room-0 ... room-49, the same in every run on one server

#: violating chat lines written for this benchmark (each is flagged by the default rule packs;
#: the smoke test checks that every one is answered with a warning)
VIOLATING = (
    "主播加我微信发你优惠券",
    "要货的私聊我 比直播间便宜",
    "姐妹们去拼多多上搜同款更便宜",
    "招人刷单日结两百",
    "出售QQ号 老号便宜",
    "有没有电子烟卖啊",
    "主播就是个傻逼",
    "卖假货的死全家",
    "赶紧滚出直播间吧",
    "高仿包有没有 要一比一的",
    "代开发票 点数低",
    "翻墙梯子便宜出",
    "菠菜网站找我稳赚",
    "拍完转账给我直接发货",
    "求主播联系方式",
    "有微信群吗 拉我进群",
    "看我主页有惊喜",
    "订货打我电话 13812345678",
    "买粉丝找我 一千粉十块",
    "针孔摄像头有卖吗",
    "四六级代考包过",
    "莆田鞋有没有",
    "有熊胆粉吗 老家要",
    "去淘宝搜我们店名更便宜",
    "加我vx领红包",
    "主播是个智障吧",
    "你怎么不去死",
    "免税烟一条两百",
    "关注我小红书发你链接",
    "收购银行卡 高价",
)

#: stands in for the corpus when ../shared/corpora is not there (labelled as such in the report)
FALLBACK_CLEAN = (
    "主播好", "这个多少钱", "有没有大码的", "刚来 讲的是哪款", "发货快吗", "颜色好看", "已拍", "支持主播",
    "什么时候开始抢", "链接在哪", "这个适合油皮吗", "能便宜点吗", "主播今天好漂亮", "还有库存吗", "下次还来",
)


# --------------------------------------------------------------------------- small helpers
def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")


def loadavg() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (math.nan, math.nan, math.nan)


def pct(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def mmm(values: Sequence[float], digits: int = 2, scale: float = 1.0) -> str:
    """``median (min–max)`` of repeated figures (NaNs left out)."""
    vals = [v * scale for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return "—"
    f = f"{{:,.{digits}f}}"
    if len(vals) == 1:
        return f.format(vals[0])
    return f"{f.format(statistics.median(vals))} ({f.format(min(vals))}–{f.format(max(vals))})"


def median(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan


CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def proc_cpu_seconds(pid: int) -> float:
    """user + system CPU seconds of a process (all threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds spent busy on all cores (``/proc/stat``: everything but idle and iowait)."""
    try:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return math.nan
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    total = sum(vals[:8])  # guest time is already in user
    return (total - idle) / CLK_TCK


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        out = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |"]
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
        return "—" if math.isnan(c) else f"{c:,.2f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c).replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- the server process
GC_LOG_MARK = "sidecar-load gc2 pause ms"
GC_LOG_BOOT = f"""import gc, sys, time
_gc_t = [0.0]
def _gc_cb(phase, info):
    if phase == "start":
        _gc_t[0] = time.perf_counter()
    elif info["generation"] == 2:
        sys.stderr.write("{GC_LOG_MARK} %.3f\\n" % ((time.perf_counter() - _gc_t[0]) * 1000))
        sys.stderr.flush()
gc.callbacks.append(_gc_cb)
"""
CLI_BOOT = """from livestream_compliance.cli import entry_point
sys.argv = ["compliance"] + sys.argv[1:]
entry_point()
"""


class ServerProcess:
    """``python -m livestream_compliance serve --port 0 ...`` in a child process, optionally pinned to a core."""

    def __init__(
        self,
        *,
        cpu: int | None,
        extra: Sequence[str] = (),
        profile_out: Path | None = None,
        loop: str = "asyncio",
        startup_timeout: float = 90.0,
        launcher: Sequence[str] = (),
    ) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="sidecar-load-")
        args = [
            "serve",
            "--port", "0",
            "--no-audit",
            "--data-dir", self.tmp.name,
            "--rate", "1000000",
            "--burst", "1000000",
            "--log-level", "warning",
            *extra,
        ]
        if launcher:  # experiments: a script that ends up running the CLI with these arguments
            cmd = [sys.executable, *launcher, *args]
        elif profile_out is not None:
            cmd = [sys.executable, "-m", "cProfile", "-o", str(profile_out), "-m", "livestream_compliance", *args]
        else:
            # the CLI as `python -m livestream_compliance` runs it, plus a gc callback that logs every full
            # (generation 2) collection's pause to stderr, and uvloop when asked for
            boot = GC_LOG_BOOT + ("import uvloop; uvloop.install()\n" if loop == "uvloop" else "") + CLI_BOOT
            cmd = [sys.executable, "-c", boot, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
        env["COMPLIANCE_DATA_DIR"] = self.tmp.name
        self.stderr_path = Path(self.tmp.name) / "server.stderr"
        self._stderr = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr, stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid
        self._seq_base = 0
        if cpu is not None:  # pinned from here (no preexec_fn: unsafe with threads): it is still importing
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.pid, {cpu})
        self.url = ""
        self.banner: list[str] = []
        deadline = time.monotonic() + startup_timeout
        assert self.proc.stdout is not None
        buf = b""
        while not self.url:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                tail = self.stderr_tail()
                self.close()
                raise RuntimeError(f"the server did not start: {tail}")
            r, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.5))
            if not r:
                continue
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                self.banner.append(line)
                m = re.search(r"websocket\s+(ws://\S+)", line)
                if m:
                    self.url = m.group(1)
        m = re.match(r"ws://([^/:]+|\[[^\]]+\]):(\d+)/", self.url)
        assert m, self.url
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
        m2 = re.search(r"(\d+) rules, version (\S+)", self.banner[0] if self.banner else "")
        self.rules = int(m2.group(1)) if m2 else 0
        self.rule_version = m2.group(2) if m2 else "?"

    def next_seq_base(self) -> int:
        """A fresh range of seqs for one run on the same streams (a seq seen before would be a segment the
        session already reported, so its findings would not be reported again)."""
        self._seq_base += 10**9
        return self._seq_base

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def gc_pauses(self) -> list[float]:
        """Every full-collection pause so far (ms), as the server's gc callback logged them."""
        out = []
        try:
            with self.stderr_path.open("rb") as f:
                for line in f:
                    if line.startswith(GC_LOG_MARK.encode()):
                        out.append(float(line.split()[-1]))
        except (OSError, ValueError):
            pass
        return out

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def close(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful: the server drains), then SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        self.tmp.cleanup()
        return self.proc.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# --------------------------------------------------------------------------- the load generator
class Recorder:
    """Answers of one run: per message index, when it was sent and when its answer arrived."""

    def __init__(self, n: int, streams: int, seq_base: int = 0) -> None:
        self.streams = streams
        self.seq_base = seq_base
        self.sent = array("d", bytes(8 * n))
        self.recv = array("d", bytes(8 * n))
        self.kinds: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.duplicates = 0
        self.unexpected = 0
        self.pongs = 0
        self.pong_event: asyncio.Event | None = None
        self.pong_target = 0
        self.warned: array[int] = array("b", bytes(n))

    def answer(self, stream: int, raw: bytes, now: float) -> None:
        d = orjson.loads(raw)
        kind = d.get("type")
        if kind == "pong":
            self.pongs += 1
            if self.pong_event is not None and self.pongs >= self.pong_target:
                self.pong_event.set()
            return
        seq = d.get("seq")
        if kind == "error":
            self.errors[d.get("code", "?")] += 1
            return
        if type(seq) is not int or kind not in ("ack", "warning"):
            self.unexpected += 1
            return
        i = (seq - self.seq_base) * self.streams + stream
        if not 0 <= i < len(self.recv):
            self.unexpected += 1
            return
        if self.recv[i]:
            self.duplicates += 1
            return
        self.recv[i] = now
        self.kinds[kind] += 1
        if kind == "warning":
            self.warned[i] = 1


class RawWebSocket(asyncio.Protocol):
    """A minimal RFC 6455 client: text frames written straight to the transport, answers timestamped on arrival.

    Client frames must be masked; the mask key is four zero bytes (so the payload goes as is). The
    server's frames are unmasked; ping is answered with pong, close with close.
    """

    def __init__(self, stream: int, on_text: Callable[[int, bytes, float], None], host: str, port: int) -> None:
        self.stream = stream
        self.on_text = on_text
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self.key}\r\nSec-WebSocket-Version: 13\r\n"
            "User-Agent: sidecar-load\r\n\r\n"
        ).encode()
        self.open = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.upgraded = False
        self.close_code: int | None = None

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(ConnectionError(f"closed during the handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            if not head.startswith("HTTP/1.1 101"):
                self.open.set_exception(ConnectionError(f"handshake refused: {head.splitlines()[0]}"))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            self.open.set_result(None)
        while True:
            n = len(buf)
            if n < 2:
                return
            b0, b1 = buf[0], buf[1]
            length = b1 & 0x7F
            pos = 2
            if length == 126:
                if n < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif length == 127:
                if n < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                pos = 10
            if n < pos + length:
                return
            payload = bytes(buf[pos : pos + length])
            del buf[: pos + length]
            opcode = b0 & 0x0F
            if opcode in (1, 2):
                if not b0 & 0x80:
                    raise RuntimeError("fragmented frames are not expected from the server")
                self.on_text(self.stream, payload, now)
            elif opcode == 9:  # ping
                self.write_frame(payload, opcode=0xA)
            elif opcode == 8:  # close
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                with contextlib.suppress(Exception):
                    self.write_frame(payload[:2], opcode=8)
                assert self.transport is not None
                self.transport.close()

    # -- sending
    @staticmethod
    def frame(payload: bytes, opcode: int = 1) -> bytes:
        n = len(payload)
        if n < 126:
            head = bytes((0x80 | opcode, 0x80 | n))
        elif n < 65536:
            head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
        return head + b"\0\0\0\0" + payload

    def write_frame(self, payload: bytes, opcode: int = 1) -> None:
        assert self.transport is not None
        self.transport.write(self.frame(payload, opcode))

    async def close(self, timeout: float = 2.0) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        with contextlib.suppress(Exception):
            self.write_frame((1000).to_bytes(2, "big"), opcode=8)
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        except TimeoutError:
            self.transport.abort()


class Client:
    """One stream's connection, raw or through the ``websockets`` library."""

    def __init__(self, stream: int, kind: str) -> None:
        self.stream = stream
        self.kind = kind
        self.raw: RawWebSocket | None = None
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None
        self.sink: Callable[[int, bytes, float], None] = lambda _s, _b, _t: None

    def _dispatch(self, stream: int, data: bytes, now: float) -> None:
        self.sink(stream, data, now)

    async def connect(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        if self.kind == "raw":
            _t, proto = await loop.create_connection(
                lambda: RawWebSocket(self.stream, self._dispatch, host, port), host, port
            )
            self.raw = proto
            await asyncio.wait_for(proto.open, 10)
        else:
            from websockets.asyncio.client import connect

            self.ws = await connect(f"ws://{host}:{port}/", compression=None, max_queue=4096, max_size=2**20)
            self.reader = loop.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        ws = self.ws
        try:
            while True:
                data = await ws.recv(decode=False)
                self.sink(self.stream, data, time.perf_counter())
        except ConnectionClosed:
            pass

    def send_nowait(self, payload: bytes) -> None:
        assert self.raw is not None
        self.raw.write_frame(payload)

    async def send(self, payload: bytes) -> None:
        if self.raw is not None:
            self.raw.write_frame(payload)
        else:
            await self.ws.send(payload, text=True)

    async def request(self, payload: bytes, timeout: float = 10.0) -> dict[str, Any]:
        """Send and wait for the next frame (used for the hello only, before any load)."""
        fut: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        old = self.sink
        self.sink = lambda _s, data, _t: fut.done() or fut.set_result(data)
        try:
            await self.send(payload)
            return orjson.loads(await asyncio.wait_for(fut, timeout))
        finally:
            self.sink = old

    async def close(self) -> None:
        if self.raw is not None:
            await self.raw.close()
        elif self.ws is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.ws.close()
            if self.reader is not None:
                self.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self.reader


async def open_streams(
    server: ServerProcess, n: int, *, kind: str, acks: bool, prefix: str, batch: int = 50
) -> list[Client]:
    clients = [Client(i, kind) for i in range(n)]
    for lo in range(0, n, batch):
        chunk = clients[lo : lo + batch]
        await asyncio.gather(*(c.connect(server.host, server.port) for c in chunk))
        hellos = await asyncio.gather(
            *(
                c.request(
                    orjson.dumps(
                        {"type": "hello", "stream_id": f"{prefix}-{c.stream}", "source": "chat", "acks": acks}
                    )
                )
                for c in chunk
            )
        )
        for h in hellos:
            if h.get("type") != "welcome":
                raise RuntimeError(f"hello not welcomed: {h}")
    return clients


async def close_streams(clients: Sequence[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


@dataclass
class Workload:
    """The frames of one run, built before the clock starts (index i goes to stream i % streams)."""

    prefixes: list[bytes]  # the frame up to sent_at; sent_at and "}" are added at send time
    violating: array[int]

    @classmethod
    def build(
        cls, n: int, streams: int, clean: Sequence[str], *, violation_rate: float, seed: int, seq_base: int = 0
    ) -> Workload:
        rng = random.Random(seed)
        prefixes: list[bytes] = []
        violating = array("b", bytes(n))
        ci = rng.randrange(len(clean))
        for i in range(n):
            seq = seq_base + i // streams
            if rng.random() < violation_rate:
                text = rng.choice(VIOLATING)
                violating[i] = 1
            else:
                text = clean[ci % len(clean)]
                ci += 1
            frame = orjson.dumps({"type": "chat", "seq": seq, "text": text, "user": f"v{rng.randrange(200)}"})
            prefixes.append(frame[:-1] + b',"sent_at":')
        return cls(prefixes, violating)


@dataclass
class RunResult:
    label: str
    offered: float
    duration: float
    acks: bool
    messages: int
    sent: int
    answered: int
    warnings: int
    violating: int
    violating_warned: int
    errors: dict[str, int]
    duplicates: int
    unexpected: int
    drained: bool
    send_rate: float  # messages written per second over the sending window
    achieved: float  # answers per second from the first scheduled send to the last answer
    lat_send: list[float]  # sorted, seconds
    lat_sched: list[float]
    server_cpu: float  # seconds
    client_cpu: float
    other_cpu: float  # busy CPU seconds of everything else on the machine
    wall: float
    load_before: tuple[float, float, float]
    attempt: int = 1
    gc_pauses: list[float] = field(default_factory=list)  # ms, the server's full collections during the run

    def p(self, q: float, sched: bool = False) -> float:
        return pct(self.lat_sched if sched else self.lat_send, q) * 1000.0

    @property
    def server_us_per_msg(self) -> float:
        return self.server_cpu / self.sent * 1e6 if self.sent else math.nan

    @property
    def client_busy(self) -> float:
        return self.client_cpu / self.wall if self.wall else math.nan


async def run_load(
    server: ServerProcess,
    *,
    streams: int,
    rate: float,
    duration: float,
    acks: bool,
    clean: Sequence[str],
    kind: str = "raw",
    violation_rate: float = 0.02,
    seed: int = 1,
    drain_timeout: float = 15.0,
    label: str = "",
    log: Callable[[str], None] = lambda _m: None,
) -> RunResult:
    """One open-loop run at ``rate`` messages/s for ``duration`` seconds over ``streams`` fresh connections."""
    n = max(streams, int(round(rate * duration)))
    base = server.next_seq_base()
    work = Workload.build(n, streams, clean, violation_rate=violation_rate, seed=seed, seq_base=base)
    # the same rooms in every run on a server (sessions stay bounded, as on a real server with 50 live rooms)
    clients = await open_streams(server, streams, kind=kind, acks=acks, prefix=STREAM_PREFIX)
    rec = Recorder(n, streams, base)
    for c in clients:
        c.sink = rec.answer
    loop = asyncio.get_running_loop()
    perf = time.perf_counter
    wall = time.time
    sent = rec.sent
    prefixes = work.prefixes
    raw = kind == "raw"
    load0 = loadavg()
    gc0 = len(server.gc_pauses())
    # the generator's own collector is off while it sends: a collection here (of the workload just built,
    # 2-18 ms measured) would stall the sending and the timestamping of answers, then send a burst, and
    # count as the server's latency. Collected before, on again after (the server's is never touched)
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    cpu_s0, cpu_c0, busy0 = server.cpu_seconds(), time.process_time(), machine_busy_seconds()
    t_start = perf()
    t0 = t_start + 0.02
    i = 0
    interval = 1.0 / rate
    try:
        while i < n:
            due = min(n, int((perf() - t0) * rate) + 1)
            if due <= i:
                await asyncio.sleep(max(0.0, t0 + i * interval - perf()))
                continue
            while i < due:
                c = clients[i % streams]
                payload = prefixes[i] + (b"%.6f}" % wall())
                sent[i] = perf()
                if raw:
                    c.send_nowait(payload)  # type: ignore[union-attr]
                else:
                    await c.send(payload)
                i += 1
            await asyncio.sleep(0)  # let the answers in
        # barrier: every connection answers its frames in order, so its pong comes after them
        rec.pong_event = asyncio.Event()
        rec.pong_target = streams
        for c in clients:
            await c.send(orjson.dumps({"type": "ping", "seq": PING_SEQ}))
        drained = True
        try:
            await asyncio.wait_for(rec.pong_event.wait(), drain_timeout)
        except TimeoutError:
            drained = False
        t_end = perf()
    finally:
        cpu_s1, cpu_c1, busy1 = server.cpu_seconds(), time.process_time(), machine_busy_seconds()
        if collecting:
            gc.enable()
        await close_streams(clients)
    recv = rec.recv
    lat_send: list[float] = []
    lat_sched: list[float] = []
    last = t0
    for k in range(n):
        r = recv[k]
        if r:
            lat_send.append(r - sent[k])
            lat_sched.append(r - (t0 + k * interval))
            if r > last:
                last = r
    lat_send.sort()
    lat_sched.sort()
    answered = len(lat_send)
    viol = sum(work.violating)
    viol_warned = sum(1 for k in range(n) if work.violating[k] and rec.warned[k])
    server_cpu = cpu_s1 - cpu_s0
    client_cpu = cpu_c1 - cpu_c0
    span = t_end - t_start
    result = RunResult(
        label=label,
        offered=rate,
        duration=duration,
        acks=acks,
        messages=n,
        sent=i,
        answered=answered,
        warnings=rec.kinds["warning"],
        violating=viol,
        violating_warned=viol_warned,
        errors=dict(rec.errors),
        duplicates=rec.duplicates,
        unexpected=rec.unexpected,
        drained=drained,
        send_rate=(i - 1) / max(1e-9, sent[i - 1] - sent[0]) if i > 1 else math.nan,
        # acks: answers over the time to the last answer; warnings only: messages over the time to the
        # barrier (its pongs come after every earlier frame of the connection was processed)
        achieved=(answered / max(1e-9, last - t0) if answered else 0.0) if acks
        else (i / max(1e-9, t_end - t0) if drained else 0.0),
        lat_send=lat_send,
        lat_sched=lat_sched,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
        other_cpu=max(0.0, (busy1 - busy0) - server_cpu - client_cpu),
        wall=span,
        load_before=load0,
        gc_pauses=server.gc_pauses()[gc0:],
    )
    del loop
    log(
        f"  {label or ('acks' if acks else 'warnings')} {rate:,.0f}/s: sent {result.sent:,} answered {answered:,} "
        f"p50 {result.p(50):.2f} p99 {result.p(99):.2f} p99.9 {result.p(99.9):.2f} ms, achieved "
        f"{result.achieved:,.0f}/s, server {result.server_us_per_msg:.1f} µs/msg, client busy "
        f"{result.client_busy:.0%}, other CPU {result.other_cpu / span:.2f} cores, full GCs "
        f"{len(result.gc_pauses)} (max {max(result.gc_pauses, default=0):.0f} ms)"
        + ("" if drained else " (NOT DRAINED)")
    )
    return result


@dataclass
class SaturationResult:
    streams: int
    window: int
    duration: float
    answered: int
    server_cpu: float
    client_cpu: float
    other_cpu: float
    wall: float
    lat: list[float]  # sorted, seconds
    gc_pauses: list[float] = field(default_factory=list)
    #: items per frame: 1 = one chat frame per message; more = the protocol's batch form
    batch: int = 1

    @property
    def rate(self) -> float:
        return self.answered / self.wall if self.wall else math.nan

    @property
    def server_us_per_msg(self) -> float:
        return self.server_cpu / self.answered * 1e6 if self.answered else math.nan

    @property
    def server_busy(self) -> float:
        return self.server_cpu / self.wall if self.wall else math.nan

    @property
    def capacity(self) -> float:
        """Messages per second the server would answer with a whole core: 1 / CPU seconds per message."""
        return 1e6 / self.server_us_per_msg if self.answered else math.nan


async def run_saturation(
    server: ServerProcess,
    *,
    streams: int,
    window: int,
    duration: float,
    clean: Sequence[str],
    viewers: int = 200,
    violation_rate: float = 0.02,
    seed: int = 1,
    log: Callable[[str], None] = lambda _m: None,
    batch: int = 1,
) -> SaturationResult:
    """Closed loop: every stream keeps ``window`` messages in flight (acks on), so the server never waits.

    The server's CPU seconds per answered message at saturation is the figure least disturbed by other
    processes on the machine; ``1 / that`` is the rate one process could sustain with a core of its own.
    With ``batch`` > 1 the messages go as the protocol's batch frames of ``batch`` chat items (each item is
    still answered with its own ack or warning), ``window`` rounded up to whole batches, and a stream sends
    its next batch when a whole batch's worth of answers has come back.
    """
    window = max(window, batch) if batch > 1 else window
    clients = await open_streams(server, streams, kind="raw", acks=True, prefix=STREAM_PREFIX)
    rng = random.Random(seed)
    perf = time.perf_counter
    state = {"stop": False, "answered": 0}
    seqs = [server.next_seq_base()] * streams
    sent_at: list[dict[int, float]] = [{} for _ in range(streams)]
    lat: list[float] = []
    ci = [rng.randrange(len(clean))]

    def frame(stream: int) -> bytes:
        seq = seqs[stream]
        seqs[stream] = seq + 1
        if rng.random() < violation_rate:
            text = rng.choice(VIOLATING)
        else:
            text = clean[ci[0] % len(clean)]
            ci[0] += 1
        sent_at[stream][seq] = perf()
        return orjson.dumps({"type": "chat", "seq": seq, "text": text, "user": f"v{rng.randrange(viewers)}"})

    def batch_frame(stream: int) -> bytes:
        items = []
        for _ in range(batch):
            d = orjson.loads(frame(stream))
            del d["type"]
            items.append(d)
        return orjson.dumps({"type": "batch", "items": items})

    due = [0] * streams  # batch form: answers received since the stream's last batch

    def on_answer(stream: int, data: bytes, now: float) -> None:
        d = orjson.loads(data)
        t = sent_at[stream].pop(d.get("seq"), None)
        if t is None:
            return
        state["answered"] += 1
        lat.append(now - t)
        if not state["stop"]:
            raw = clients[stream].raw
            assert raw is not None
            if batch == 1:
                raw.write_frame(frame(stream))
            else:
                due[stream] += 1
                if due[stream] >= batch:
                    due[stream] = 0
                    raw.write_frame(batch_frame(stream))

    for c in clients:
        c.sink = on_answer
    gc0 = len(server.gc_pauses())
    cpu_s0, cpu_c0, busy0 = server.cpu_seconds(), time.process_time(), machine_busy_seconds()
    t0 = perf()
    for c in clients:
        if batch == 1:
            for _ in range(window):
                c.send_nowait(frame(c.stream))
        else:
            for _ in range(-(-window // batch)):
                c.send_nowait(batch_frame(c.stream))
    await asyncio.sleep(duration)
    state["stop"] = True
    t1 = perf()
    answered = state["answered"]
    cpu_s1, cpu_c1, busy1 = server.cpu_seconds(), time.process_time(), machine_busy_seconds()
    # let what is in flight come back before the connections close
    for _ in range(100):
        if not any(sent_at):
            break
        await asyncio.sleep(0.05)
    await close_streams(clients)
    lat.sort()
    res = SaturationResult(
        streams, window, duration, answered, cpu_s1 - cpu_s0, cpu_c1 - cpu_c0,
        max(0.0, (busy1 - busy0) - (cpu_s1 - cpu_s0) - (cpu_c1 - cpu_c0)), t1 - t0, lat, server.gc_pauses()[gc0:],
        batch,
    )
    form = f" (batch frames of {batch} items)" if batch > 1 else ""
    log(f"  saturation {streams}×{window} in flight{form}: {res.rate:,.0f} answers/s, "
        f"server {res.server_us_per_msg:.1f} µs "
        f"CPU/msg ({res.server_busy:.0%} of a core) → {res.capacity:,.0f}/s with a core of its own; "
        f"other CPU {res.other_cpu / res.wall:.2f} cores")
    return res


async def warm_up(server: ServerProcess, clean: Sequence[str], kind: str) -> None:
    """A short run so that first-use costs (imports, caches, allocator arenas) are not measured."""
    await run_load(server, streams=10, rate=1000, duration=0.5, acks=True, clean=clean, kind=kind, seed=99)


# --------------------------------------------------------------------------- memory
@dataclass
class MemResult:
    n: int
    base_kib: int
    idle_kib: int
    active_kib: int
    messages_per_stream: int
    users_per_stream: int

    @property
    def per_idle(self) -> float:
        return (self.idle_kib - self.base_kib) / self.n

    @property
    def per_active(self) -> float:
        return (self.active_kib - self.base_kib) / self.n


async def measure_memory(
    server: ServerProcess,
    n: int,
    *,
    clean: Sequence[str],
    kind: str,
    messages_per_stream: int,
    users_per_stream: int,
    seed: int,
) -> MemResult:
    async def settle() -> int:
        await asyncio.sleep(0.3)
        return server.rss_kib()

    base = await settle()
    clients = await open_streams(server, n, kind=kind, acks=True, prefix=f"mem{seed}-{n}")
    try:
        idle = await settle()
        rng = random.Random(seed)
        rec = Recorder(n * messages_per_stream, n)
        for c in clients:
            c.sink = rec.answer
        k = 0
        for m in range(messages_per_stream):
            for c in clients:
                text = rng.choice(VIOLATING) if rng.random() < 0.02 else clean[k % len(clean)]
                k += 1
                await c.send(
                    orjson.dumps(
                        {"type": "chat", "seq": m, "text": text, "user": f"v{m % users_per_stream}"}
                    )
                )
            if m % 10 == 9:
                await asyncio.sleep(0.01)
        rec.pong_event = asyncio.Event()
        rec.pong_target = n
        for c in clients:
            await c.send(orjson.dumps({"type": "ping", "seq": PING_SEQ}))
        await asyncio.wait_for(rec.pong_event.wait(), 30)
        active = await settle()
    finally:
        await close_streams(clients)
    return MemResult(n, base, idle, active, messages_per_stream, users_per_stream)


# --------------------------------------------------------------------------- in-process components
class _FakeWS:
    """Just enough of a websockets ServerConnection for ``App._handler``: frames in, answers counted."""

    def __init__(self, frames: Sequence[bytes]) -> None:
        self.frames = frames
        self.i = 0
        self.answers = 0

    async def recv(self, decode: bool | None = None) -> bytes:
        i = self.i
        if i >= len(self.frames):
            from websockets.exceptions import ConnectionClosedOK  # once, at the end (a lazy import costs µs)

            raise ConnectionClosedOK(None, None)
        self.i = i + 1
        return self.frames[i]

    async def send(self, data: bytes, text: bool | None = None) -> None:
        self.answers += 1


async def measure_components(cfg: Config, clean: Sequence[str], n: int, reps: int) -> Table:
    """Per-message cost of the server's parts, in this process, without network: min (median) of ``reps``."""
    from livestream_compliance import Source, build_checker, load_rule_set
    from livestream_compliance.session import SessionConfig, SessionStore, StreamSession
    from livestream_compliance_server.app import App
    from livestream_compliance_server.config import ServerConfig
    from livestream_compliance_server.metrics import Metrics
    from livestream_compliance_server.protocol import parse_client
    from prometheus_client import CollectorRegistry

    checker = build_checker(load_rule_set(list(cfg.rules), defaults=not cfg.rules))
    rng = random.Random(3)
    msgs = []
    for i in range(n):
        text = rng.choice(VIOLATING) if rng.random() < 0.02 else clean[i % len(clean)]
        msgs.append((i, text, f"v{rng.randrange(200)}"))
    frames = [
        orjson.dumps({"type": "chat", "seq": i, "text": t, "user": u, "sent_at": time.time()}) for i, t, u in msgs
    ]
    datas = [orjson.loads(f) for f in frames]
    hello = orjson.dumps({"type": "hello", "stream_id": "c1", "source": "chat", "acks": True})
    metrics = Metrics(CollectorRegistry())
    spacing = 50 / 5000  # seconds between one stream's messages at 5,000 msg/s over 50 streams

    def loads() -> None:
        for f in frames:
            orjson.loads(f)

    def validate() -> None:
        for d in datas:
            parse_client(d)

    def check_alone() -> None:
        for _i, t, _u in msgs:
            checker.check(t, Source.CHAT)

    def feed() -> None:
        store = SessionStore(SessionConfig())
        now = 0.0
        for i, t, u in msgs:
            now += spacing
            store.session("c1", now).feed(checker, t, source=Source.CHAT, seq=i, now=now, speaker=u)

    def metric_ops() -> None:
        h, c = metrics.check_by_source["chat"], metrics.messages_by_source["chat"]
        for _ in range(n):
            h.observe(1e-5)
            c.inc()

    async def app_path(stub_feed: bool) -> None:
        config = ServerConfig(host="127.0.0.1", port=0, audit=False, rate=1e9, burst=10**9).validate()
        app = App(config, registry=CollectorRegistry(), checker=checker)
        original = StreamSession.feed
        if stub_feed:
            StreamSession.feed = lambda self, *a, **k: ()  # type: ignore[method-assign]
        try:
            ws = _FakeWS([hello, *frames])
            await app._handler(ws)  # type: ignore[arg-type]
            assert ws.answers == n + 1, ws.answers
        finally:
            StreamSession.feed = original  # type: ignore[method-assign]
            await app.audit.close()

    parts: list[tuple[str, Callable[[], Any]]] = [
        ("orjson.loads of the frame", loads),
        ("protocol.parse_client (pydantic, strict)", validate),
        ("Checker.check(text) alone", check_alone),
        ("StreamSession.feed: tail join + check (200 viewers per stream)", feed),
        ("metrics: check histogram + messages counter", metric_ops),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in parts}
    times["App._handler, whole path without network"] = []
    times["App._handler with StreamSession.feed stubbed out"] = []
    for _ in range(reps):
        for name, fn in parts:
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / n * 1e6)
        for name, stub in (("App._handler, whole path without network", False),
                           ("App._handler with StreamSession.feed stubbed out", True)):
            gc.collect()
            t0 = time.perf_counter()
            await app_path(stub)
            times[name].append((time.perf_counter() - t0) / n * 1e6)
    # a warning's findings as wire dicts: Finding.to_dict() (dataclasses.asdict) vs the server's encoder
    import livestream_compliance_server.app as app_module

    found = [f for v in VIOLATING for f in checker.check(v, Source.CHAT)]
    encoders: list[tuple[str, Callable[[Any], Any]]] = [
        ("a finding to its wire dict: Finding.to_dict() + carry/from_seq (per finding)",
         lambda f: f.to_dict() | {"carry": 0, "from_seq": None}),
    ]
    if hasattr(app_module, "wire_finding"):
        encoders.append(("a finding to its wire dict: server's wire_finding (per finding)", app_module.wire_finding))
    for name, enc in encoders:
        vals = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _k in range(20):
                for f in found:
                    enc(f)
            vals.append((time.perf_counter() - t0) / (20 * len(found)) * 1e6)
        times[name] = vals
    table = Table(
        f"Where a message's server time goes, in-process without network ({n:,} chat frames, {reps} runs)",
        ["part", "µs per message: min", "median"],
        [[name, f"{min(v):.2f}", f"{statistics.median(v):.2f}"] for name, v in times.items()],
        [
            "measured in the generator's process (no websocket, no event-loop wake-ups): the difference between "
            "the saturation table's server CPU per message and the whole-path figure here is the websocket "
            "layer (framing, the per-connection reader, one write per answer), the event loop and the syscalls",
            "min is the figure least disturbed by other processes; the median shows the noise",
        ],
    )
    return table


# --------------------------------------------------------------------------- profiling
def profile_table(path: Path, top: int = 25) -> Table:
    import pstats

    st = pstats.Stats(str(path))
    total = st.total_tt  # type: ignore[attr-defined]
    rows = []
    entries = st.stats.items()  # type: ignore[attr-defined]
    for (file, line, func), (_cc, nc, tt, ct, _callers) in sorted(entries, key=lambda kv: -kv[1][2])[:top]:
        short = file
        for marker in ("site-packages/", "/work/main/", "lib/python3"):
            if marker in short:
                short = short.split(marker, 1)[1]
        rows.append([f"{short}:{line} {func}", nc, f"{tt:.3f}", f"{tt / total:.1%}", f"{ct:.3f}"])
    return Table(
        "Server profile (cProfile, sorted by own time)",
        ["function", "calls", "own s", "own %", "cumulative s"],
        rows,
        [f"total profiled time {total:.2f} s; cProfile roughly doubles the cost of small Python calls, so "
         "read the ranking, not the absolute figures"],
    )


def pyspy_table(path: Path, res: RunResult | SaturationResult | None = None, top: int = 25) -> Table:
    """Own and inclusive share of the server's busy samples per function, from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    rows = []
    for name, n in own.most_common(top):
        rows.append([name, f"{n / total:.1%}", f"{incl[name] / total:.1%}"])
    keys = ("_handler", "_check_one", "feed (", "check (", "parse_client", "send (", "recv (", "orjson", "observe",
            "_run_once", "select (")
    notes = [f"{total:,} busy samples at 250 Hz (idle time in epoll is not sampled)"]
    if isinstance(res, RunResult):
        notes.append(f"profiled run: {res.sent:,} messages at {res.offered:,.0f}/s, server {res.server_us_per_msg:.1f} "
                     "µs CPU per message")
    elif isinstance(res, SaturationResult):
        notes.append(f"profiled run: saturation, {res.answered:,} answers at {res.rate:,.0f}/s, server "
                     f"{res.server_us_per_msg:.1f} µs CPU per message")
    inclusive = ", ".join(
        f"`{name}` {n / total:.0%}" for name, n in incl.most_common(400) if any(k in name for k in keys)
    )
    if inclusive:
        notes.append("inclusive: " + inclusive)
    return Table("Server profile (py-spy, share of busy samples)", ["function", "own", "inclusive"], rows, notes)


# --------------------------------------------------------------------------- the benchmark
@dataclass
class Config:
    smoke: bool = False
    streams: int = 50
    rates: tuple[float, ...] = (1000, 5000)
    duration: float = 10.0
    reps: int = 3
    ramp: tuple[float, ...] = (2000, 5000, 8000, 11000, 14000, 17000, 20000, 25000, 30000)
    ramp_duration: float = 5.0
    ramp_bisect: int = 2
    ramp_retries: int = 1
    #: closed-loop saturation runs: messages in flight per stream, seconds per run
    sat_window: int = 8
    sat_duration: float = 5.0
    #: also measure saturation with the protocol's batch form, this many chat items per frame (0: not)
    sat_batch: int = 20
    mem_streams: tuple[int, ...] = (50, 500)
    mem_messages: int = 100
    mem_users: int = 20
    mem_reps: int = 3
    client: str = "raw"
    server_loop: str = "asyncio"
    server_cpu: int | None = 0
    client_cpu: int | None = 1
    corpus: Path = DEFAULT_CORPUS
    #: rule files/directories instead of the default packs (``--no-default-rules --rules PATH``)
    rules: tuple[str, ...] = ()
    #: offered rate of the profiled run; 0: closed-loop saturation (where the CPU goes per message)
    profile_rate: float = 0
    profiler: str = "py-spy"
    #: also keep the raw cProfile output here
    profile_keep: Path | None = None
    profile_duration: float = 10.0
    out: Path | None = DEFAULT_OUT
    #: which parts to run
    phases: tuple[str, ...] = ("rates", "saturation", "ramp", "memory", "components")
    comp_messages: int = 20_000
    comp_reps: int = 5
    #: a fresh server for each repetition and phase (False: one server for everything, the smoke mode)
    fresh_servers: bool = True
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)


@dataclass
class Report:
    cfg: Config
    facts: dict[str, str]
    runs: list[RunResult] = field(default_factory=list)
    ramp: list[RunResult] = field(default_factory=list)
    saturation: list[SaturationResult] = field(default_factory=list)
    max_rate: float = math.nan
    max_rate_limited_by: str = ""
    memory: list[MemResult] = field(default_factory=list)
    profile: Table | None = None
    tables: dict[str, Table] = field(default_factory=dict)
    seconds: float = 0.0
    corpus_note: str = ""


def load_clean(cfg: Config) -> tuple[list[str], str]:
    if cfg.corpus.is_file():
        lines = [s.strip() for s in cfg.corpus.read_text(encoding="utf-8").splitlines() if s.strip()]
        if lines:
            return lines, f"{len(lines):,} Douyin chat lines from {cfg.corpus.name} (../shared/corpora/livechat)"
    return list(FALLBACK_CLEAN), f"{cfg.corpus} not found: {len(FALLBACK_CLEAN)} built-in clean lines stand in"


def run(cfg: Config) -> Report:
    """The whole benchmark (blocking); pins this process to ``client_cpu`` meanwhile."""
    old_affinity = None
    if cfg.client_cpu is not None and hasattr(os, "sched_setaffinity"):
        old_affinity = os.sched_getaffinity(0)
        cpus = os.sched_getaffinity(0)
        if cfg.client_cpu in cpus and len(cpus) > 1:
            os.sched_setaffinity(0, {cfg.client_cpu})
        else:
            cfg.client_cpu = None
            cfg.server_cpu = None
    try:
        return asyncio.run(_run(cfg))
    finally:
        if old_affinity is not None:
            os.sched_setaffinity(0, old_affinity)


def _facts(cfg: Config) -> dict[str, str]:
    import platform

    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    from importlib import metadata

    for name in ("livestream-compliance", "websockets", "orjson", "pydantic", "uvloop"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} —")
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True,
                              text=True, timeout=10).stdout.strip() or "n/a"
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "server", "compliance"], cwd=PROJECT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        git = head + (" + uncommitted changes in server/ or compliance/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        git = "n/a"
    return {
        "date (UTC)": now_utc(),
        "CPU": f"{cpu}, {os.cpu_count()} logical cores",
        "pinning": (
            f"server on core {cfg.server_cpu}, generator on core {cfg.client_cpu}"
            if cfg.server_cpu is not None
            else "none (fewer than two usable cores)"
        ),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": ", ".join(versions),
        "server event loop": cfg.server_loop,
        "generator": "raw asyncio websocket client" if cfg.client == "raw" else "websockets library client",
        "git": git,
    }


async def _run(cfg: Config) -> Report:
    t_start = time.perf_counter()
    clean, corpus_note = load_clean(cfg)
    rep = Report(cfg, _facts(cfg), corpus_note=corpus_note)
    rep.facts["load average at start"] = " / ".join(f"{x:.2f}" for x in loadavg())

    shared: list[ServerProcess] = []

    @contextlib.asynccontextmanager
    async def server() -> Any:
        if shared:
            yield shared[0]
            return
        s = ServerProcess(cpu=cfg.server_cpu, loop=cfg.server_loop, extra=rule_args(cfg))
        which = f"from {', '.join(cfg.rules)}" if cfg.rules else "(default packs)"
        rep.facts.setdefault("rules", f"{s.rules} rules {which}, version {s.rule_version}")
        try:
            await warm_up(s, clean, cfg.client)
            if not cfg.fresh_servers:
                shared.append(s)
            yield s
        finally:
            if not shared:
                s.close()

    try:
        await _phases(cfg, rep, clean, server, t_start)
    finally:
        for s in shared:
            s.close()
    rep.facts["load average at end"] = " / ".join(f"{x:.2f}" for x in loadavg())
    rep.seconds = time.perf_counter() - t_start
    build_tables(rep)
    return rep


async def _phases(cfg: Config, rep: Report, clean: list[str], server: Any, t_start: float) -> None:
    log = cfg.log

    # ---------------------------------------------------------------- fixed rates, both modes
    for r in range(cfg.reps if {"rates", "saturation"} & set(cfg.phases) else 0):
        log(f"[{time.perf_counter() - t_start:6.1f} s] rates: repetition {r + 1}/{cfg.reps}")
        async with server() as srv:
            for rate in cfg.rates if "rates" in cfg.phases else ():
                for acks in (True, False):
                    res = await run_load(
                        srv, streams=cfg.streams, rate=rate, duration=cfg.duration, acks=acks, clean=clean,
                        kind=cfg.client, seed=1000 * r + int(rate) % 997 + acks, log=log,
                        label=f"{'acks' if acks else 'warnings'} r{r + 1}",
                    )
                    rep.runs.append(res)
                    await asyncio.sleep(0.3)
            if "saturation" in cfg.phases:
                rep.saturation.append(await run_saturation(
                    srv, streams=cfg.streams, window=cfg.sat_window, duration=cfg.sat_duration, clean=clean,
                    seed=r + 1, log=log,
                ))
                if cfg.sat_batch > 1:
                    rep.saturation.append(await run_saturation(
                        srv, streams=cfg.streams, window=2 * cfg.sat_batch, duration=cfg.sat_duration,
                        clean=clean, seed=r + 101, log=log, batch=cfg.sat_batch,
                    ))

    # ---------------------------------------------------------------- the ramp
    if "ramp" in cfg.phases:
        await _ramp(cfg, rep, clean, server, t_start)
    for r in range(cfg.mem_reps if "memory" in cfg.phases else 0):
        log(f"[{time.perf_counter() - t_start:6.1f} s] memory: repetition {r + 1}/{cfg.mem_reps}")
        async with server() as srv:
            for n in cfg.mem_streams:
                m = await measure_memory(
                    srv, n, clean=clean, kind=cfg.client, messages_per_stream=cfg.mem_messages,
                    users_per_stream=cfg.mem_users, seed=r * 31 + n,
                )
                log(f"  {n} streams: base {m.base_kib:,} KiB, idle +{m.per_idle:.1f} KiB/stream, "
                    f"active +{m.per_active:.1f} KiB/stream")
                rep.memory.append(m)
    if "components" in cfg.phases:
        log(f"[{time.perf_counter() - t_start:6.1f} s] components (in-process)")
        rep.tables["components"] = await measure_components(cfg, clean, cfg.comp_messages, cfg.comp_reps)
    if "profile" in cfg.phases:
        await _profile(cfg, rep, clean, t_start)


async def _ramp(cfg: Config, rep: Report, clean: list[str], server: Any, t_start: float) -> None:
    log = cfg.log
    log(f"[{time.perf_counter() - t_start:6.1f} s] ramp (acks on)")
    async with server() as srv:

        async def step(rate: float) -> tuple[bool, RunResult]:
            # a failing step is tried once more: on a shared machine one bad second can fail it
            for attempt in range(1 + cfg.ramp_retries):
                res = await run_load(
                    srv, streams=cfg.streams, rate=rate, duration=cfg.ramp_duration, acks=True, clean=clean,
                    kind=cfg.client, seed=7 + int(rate) + attempt, log=log,
                    label="ramp" if not attempt else "ramp (retry)",
                    drain_timeout=max(10.0, 3 * cfg.ramp_duration),
                )
                res.attempt = attempt + 1
                rep.ramp.append(res)
                await asyncio.sleep(0.5)
                if passes(res):
                    return True, res
            return False, res

        best = math.nan
        fail: float | None = None
        fail_res: RunResult | None = None
        for rate in cfg.ramp:
            ok, res = await step(rate)
            if ok:
                best = rate
            else:
                fail, fail_res = rate, res
                break
        if fail is not None and not math.isnan(best):
            lo, hi = best, fail
            for _ in range(cfg.ramp_bisect):
                mid = round((lo + hi) / 2 / 500) * 500
                if mid <= lo or mid >= hi:
                    break
                ok, res = await step(mid)
                if ok:
                    lo = best = mid
                else:
                    hi, fail_res = mid, res
        rep.max_rate = best
        if fail_res is None:
            rep.max_rate_limited_by = "every offered rate passed: the true maximum is higher"
        else:
            rep.max_rate_limited_by = limiting_factor(fail_res)



async def _profile(cfg: Config, rep: Report, clean: list[str], t_start: float) -> None:
    """The server under a profiler at ``profile_rate`` (acks on): py-spy (sampling) or cProfile."""
    import shutil

    tool = cfg.profiler
    beside = Path(sys.executable).parent / "py-spy"  # a virtual environment's, when it is not on PATH
    spy_exe = shutil.which("py-spy") or (str(beside) if beside.is_file() else None)
    if tool == "py-spy" and spy_exe is None:
        cfg.log("  py-spy is not installed (pip install py-spy): using cProfile")
        tool = "cprofile"
    at = f"{cfg.profile_rate:,.0f} msg/s" if cfg.profile_rate > 0 else "saturation"
    cfg.log(f"[{time.perf_counter() - t_start:6.1f} s] profile: {tool} at {at}, acks on")
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / ("server.prof" if tool == "cprofile" else "server.txt")
        srv = ServerProcess(
            cpu=cfg.server_cpu, profile_out=out if tool == "cprofile" else None, extra=rule_args(cfg),
            loop=cfg.server_loop,
        )
        spy: subprocess.Popen[bytes] | None = None
        try:
            await warm_up(srv, clean, cfg.client)
            if tool == "py-spy":
                spy = subprocess.Popen(
                    [spy_exe, "record", "--pid", str(srv.pid), "--rate", "250", "--format", "raw", "--nolineno",
                     "--nonblocking", "--output", str(out), "--duration", str(int(math.ceil(cfg.profile_duration)))],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
                await asyncio.sleep(0.5)  # py-spy attaches
            if cfg.profile_rate > 0:
                res: RunResult | SaturationResult = await run_load(
                    srv, streams=cfg.streams, rate=cfg.profile_rate, duration=cfg.profile_duration, acks=True,
                    clean=clean, kind=cfg.client, seed=5, log=cfg.log, label="profiled",
                )
            else:
                res = await run_saturation(
                    srv, streams=cfg.streams, window=cfg.sat_window, duration=cfg.profile_duration, clean=clean,
                    seed=5, log=cfg.log,
                )
            if spy is not None:
                _out, err = await asyncio.get_running_loop().run_in_executor(None, spy.communicate)
                if spy.returncode:
                    cfg.log(f"  py-spy failed: {err.decode(errors='replace')[-500:]}")
        finally:
            if spy is not None and spy.poll() is None:
                spy.kill()
                spy.wait()
            srv.close(timeout=30)
        if not out.is_file():
            cfg.log("  the profiler wrote no profile")
            return
        if cfg.profile_keep is not None:
            shutil.copyfile(out, cfg.profile_keep)
        if tool == "cprofile":
            rep.profile = profile_table(out)
        else:
            rep.profile = pyspy_table(out, res)


def rule_args(cfg: Config) -> list[str]:
    args: list[str] = []
    if cfg.rules:
        args.append("--no-default-rules")
        for r in cfg.rules:
            args += ["--rules", r]
    return args


def passes(res: RunResult) -> bool:
    return res.drained and res.achieved >= RAMP_ACHIEVED * res.offered and res.p(99) < RAMP_P99_MS


def limiting_factor(res: RunResult) -> str:
    """Why a ramp step failed, as far as the CPU figures tell."""
    why = []
    if not res.drained:
        why.append("answers still missing at the drain timeout")
    if res.achieved < RAMP_ACHIEVED * res.offered:
        why.append(f"achieved {res.achieved:,.0f}/s < {RAMP_ACHIEVED:.0%} of {res.offered:,.0f}/s")
    if res.p(99) >= RAMP_P99_MS:
        why.append(f"p99 {res.p(99):.1f} ms ≥ {RAMP_P99_MS:.0f} ms")
    server_busy = res.server_cpu / res.wall if res.wall else math.nan
    who = []
    if server_busy >= 0.9:
        who.append(f"server core {server_busy:.0%} busy")
    if res.client_busy >= 0.9:
        who.append(f"generator core {res.client_busy:.0%} busy")
    if res.send_rate < RAMP_ACHIEVED * res.offered:
        who.append(f"generator sent only {res.send_rate:,.0f}/s")
    return f"first failing step {res.offered:,.0f}/s: " + "; ".join(why) + (f" ({', '.join(who)})" if who else "")


def build_tables(rep: Report) -> None:
    cfg = rep.cfg
    t = rep.tables
    # --- latency per rate and mode
    lat = Table(
        f"Send-to-answer latency, {cfg.streams} streams, {cfg.duration:g} s per run, {cfg.reps} runs each",
        ["rate (msg/s)", "mode", "answers measured", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
         "p99 from schedule ms", "achieved msg/s", "server CPU µs/msg", "server core busy", "other CPU (cores)",
         "full GCs per run (longest ms)"],
    )
    for rate in cfg.rates:
        for acks in (True, False):
            rs = [r for r in rep.runs if r.offered == rate and r.acks == acks]
            if not rs:
                continue
            lat.rows.append([
                f"{rate:,.0f}",
                "acks (every message)" if acks else "warnings only",
                mmm([r.answered for r in rs], 0),
                mmm([r.p(50) for r in rs], 3),
                mmm([r.p(99) for r in rs], 3),
                mmm([r.p(99.9) for r in rs], 3),
                mmm([r.p(100) for r in rs], 2),
                mmm([r.p(99, True) for r in rs], 3),
                mmm([r.achieved for r in rs], 0),
                mmm([r.server_us_per_msg for r in rs], 1),
                mmm([r.server_cpu / r.wall * 100 for r in rs], 0) + " %",
                mmm([r.other_cpu / r.wall for r in rs], 2),
                f"{mmm([len(r.gc_pauses) for r in rs], 0)} ({mmm([max(r.gc_pauses, default=0) for r in rs], 0)})",
            ])
    lat.notes += [
        "from send: the answer's arrival (timestamped in `data_received`) minus the moment the frame was "
        "written to the socket; from schedule: minus the moment the open-loop schedule said it was due",
        "acks: `\"acks\": true` in the hello, every message is answered (ack or warning); warnings only: the "
        "default, only messages with findings are answered, so fewer samples (p99.9 of a few hundred is "
        "close to the max)",
        "server CPU µs/msg: the server process's CPU seconds over the run / messages sent (10 ms tick "
        "resolution); other CPU: busy CPU of every other process on the machine meanwhile, in cores",
        "full GCs: the server's generation-2 garbage collections during a run and the longest pause (logged by a "
        "gc callback the benchmark installs in the server process); the event loop stands still meanwhile, so "
        "a run with one has its p99 set by it",
    ]
    if rep.runs:
        viol = sum(r.violating for r in rep.runs)
        warned = sum(r.violating_warned for r in rep.runs)
        lat.notes.append(
            f"violating lines answered with a warning: {warned:,} of {viol:,} ({warned / max(1, viol):.1%}); each line "
            "is checked joined to the same viewer's previous line (the session tail), whose words can change "
            "the verdict (e.g. a negation at the end of the previous line)"
        )
    bad = [r for r in rep.runs if r.errors or r.duplicates or r.unexpected or not r.drained]
    if bad:
        lat.notes.append("runs with errors/duplicates/undrained answers: " + "; ".join(
            f"{r.label} {r.offered:,.0f}/s errors={r.errors} dup={r.duplicates} unexpected={r.unexpected} "
            f"drained={r.drained}" for r in bad))
    t["latency"] = lat

    # --- the ramp
    ramp = Table(
        f"Ramp (acks on, {cfg.ramp_duration:g} s per step): maximum sustained rate",
        ["offered msg/s", "sent msg/s", "achieved msg/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU µs/msg",
         "server core busy", "generator core busy", "other CPU (cores)", "full GCs (longest ms)", "pass"],
    )
    for r in sorted(rep.ramp, key=lambda x: (x.offered, x.attempt)):
        ramp.rows.append([
            f"{r.offered:,.0f}" + (" (retry)" if r.attempt > 1 else ""), f"{r.send_rate:,.0f}",
            f"{r.achieved:,.0f}", f"{r.p(50):.2f}", f"{r.p(99):.2f}",
            f"{r.p(99.9):.2f}", f"{r.server_us_per_msg:.1f}", f"{r.server_cpu / r.wall:.0%}",
            f"{r.client_busy:.0%}", f"{r.other_cpu / r.wall:.2f}",
            f"{len(r.gc_pauses)} ({max(r.gc_pauses, default=0):.0f})", "yes" if passes(r) else "no",
        ])
    ramp.notes += [
        f"a step passes when achieved ≥ {RAMP_ACHIEVED:.0%} of offered and p99 (from send) < {RAMP_P99_MS:.0f} ms; "
        f"a failing step is tried {cfg.ramp_retries} more time(s) before it counts as failed (a shared machine); "
        "after the first failure the rate is bisected between the last pass and the failure",
        f"maximum sustained rate: **{rep.max_rate:,.0f} msg/s**" if not math.isnan(rep.max_rate)
        else "maximum sustained rate: none of the offered rates passed",
        rep.max_rate_limited_by,
    ]
    t["ramp"] = ramp

    # --- saturation
    sat = Table(
        f"Saturation: closed loop, {cfg.streams} streams × {cfg.sat_window} messages in flight, acks on, "
        f"{cfg.sat_duration:g} s per run",
        ["answers/s measured", "server CPU µs/msg", "server core busy", "msg/s with a core of its own",
         "p50 ms", "p99 ms", "other CPU (cores)"],
    )
    sat.columns.insert(0, "frames")
    for b in sorted({x.batch for x in rep.saturation}):
        ss = [x for x in rep.saturation if x.batch == b]
        sat.rows.append([
            "one chat frame per message" if b == 1 else
            f"batch form: {b} chat items per frame, {ss[0].window} items in flight per stream (not the target's measure)",
            mmm([x.rate for x in ss], 0), mmm([x.server_us_per_msg for x in ss], 1),
            mmm([x.server_busy * 100 for x in ss], 0) + " %", mmm([x.capacity for x in ss], 0),
            mmm([pct(x.lat, 50) * 1000 for x in ss], 2), mmm([pct(x.lat, 99) * 1000 for x in ss], 2),
            mmm([x.other_cpu / x.wall for x in ss], 2),
        ])
    if rep.saturation:
        sat.notes += [
            "every stream keeps its window of messages in flight (a new one for each answer), so the server "
            "never waits for input; answers/s is what it achieved with the share of its core it got",
            "msg/s with a core of its own = 1 / server CPU seconds per message: the per-process ceiling when "
            "nothing else runs on the server's core (the figure least disturbed by a busy machine)",
            "batch form: the protocol's `batch` frame (docs/protocol.md), every item still answered with its own "
            "ack or warning; fewer websocket frames and event-loop wake-ups per message. Reported separately: "
            "the targets are for one message per frame",
        ]
    t["saturation"] = sat

    # --- memory
    mem = Table(
        "Server memory per stream (RSS, fresh warmed-up server)",
        ["streams", "base RSS MiB", "idle: KiB per stream", "active: KiB per stream", "active − idle KiB",
         "active − idle per viewer KiB"],
    )
    for n in cfg.mem_streams:
        ms = [m for m in rep.memory if m.n == n]
        if not ms:
            continue
        mem.rows.append([
            f"{n:,}", mmm([m.base_kib / 1024 for m in ms], 1), mmm([m.per_idle for m in ms], 1),
            mmm([m.per_active for m in ms], 1), mmm([m.per_active - m.per_idle for m in ms], 1),
            mmm([(m.per_active - m.per_idle) / m.users_per_stream for m in ms], 2),
        ])
    if rep.memory:
        m0 = rep.memory[0]
        mem.notes.append(
            f"idle: connection + hello only; active: each stream then sent {m0.messages_per_stream} chat lines "
            f"from {m0.users_per_stream} viewers (a session with {m0.users_per_stream} speaker tails) and got "
            "every answer; per stream = (RSS after − RSS before) / streams, RSS from /proc/PID/status"
        )
    t["memory"] = mem

    # --- targets
    tg = Table("Targets", ["target", "measured", "met"])
    p99s = [r.p(99) for r in rep.runs if r.offered == TARGET_P99_RATE and r.acks]
    p99w = [r.p(99) for r in rep.runs if r.offered == TARGET_P99_RATE and not r.acks]
    if p99s:
        med = median(p99s)
        tg.rows.append([f"p99 ≤ {TARGET_P99_MS:g} ms at {TARGET_P99_RATE:,} msg/s (acks, every message)",
                        f"{mmm(p99s, 3)} ms", verdict(med <= TARGET_P99_MS, med, TARGET_P99_MS, "ms", lower=True)])
    if p99w:
        med = median(p99w)
        tg.rows.append([f"p99 ≤ {TARGET_P99_MS:g} ms at {TARGET_P99_RATE:,} msg/s (warnings only)",
                        f"{mmm(p99w, 3)} ms", verdict(med <= TARGET_P99_MS, med, TARGET_P99_MS, "ms", lower=True)])
    if not math.isnan(rep.max_rate) or rep.ramp:
        mr = 0.0 if math.isnan(rep.max_rate) else rep.max_rate
        tg.rows.append([f"≥ {TARGET_MAX_RATE:,} msg/s per process (ramp: acks, p99 < {RAMP_P99_MS:g} ms)",
                        f"{mr:,.0f} msg/s", verdict(mr >= TARGET_MAX_RATE, mr, TARGET_MAX_RATE, "msg/s")])
    single = [x for x in rep.saturation if x.batch == 1]
    if single:
        caps = [x.capacity for x in single]
        med = median(caps)
        tg.rows.append([f"≥ {TARGET_MAX_RATE:,} msg/s per process (saturation: 1 / CPU per message)",
                        f"{mmm(caps, 0)} msg/s", verdict(med >= TARGET_MAX_RATE, med, TARGET_MAX_RATE, "msg/s")])
    batched = [x for x in rep.saturation if x.batch > 1]
    if batched:
        caps = [x.capacity for x in batched]
        med = median(caps)
        tg.rows.append([f"separate line, not the target's measure: the same with batch frames of {batched[0].batch} "
                        "chat items (1 / CPU per message)",
                        f"{mmm(caps, 0)} msg/s", verdict(med >= TARGET_MAX_RATE, med, TARGET_MAX_RATE, "msg/s")])
    t["targets"] = tg

    # --- facts
    facts = Table("Machine and setup", ["", ""], [[k, v] for k, v in rep.facts.items()])
    facts.rows.append(["input", rep.corpus_note + f" + {len(VIOLATING)} violating lines written for this "
                       "benchmark, ~2 % of messages, 200 viewers per stream"])
    extra = " ".join(rule_args(cfg))
    facts.rows.append(["server", "`python -m livestream_compliance serve --port 0 --no-audit --rate 1000000 "
                       f"--burst 1000000{' ' + extra if extra else ''}` (default limits otherwise)"])
    t["facts"] = facts
    if rep.profile is not None:
        t["profile"] = rep.profile


def verdict(ok: bool, value: float, target: float, unit: str, lower: bool = False) -> str:
    if ok:
        return "yes"
    if lower:
        return f"no: {value / target:.1f}× the target ({value - target:+,.2f} {unit})"
    return f"no: {value / target:.0%} of the target ({value - target:+,.0f} {unit})"


BEGIN, END = "<!-- BEGIN generated by benchmarks/sidecar_load.py -->", "<!-- END generated -->"


def markdown(rep: Report) -> str:
    order = ("targets", "latency", "saturation", "ramp", "memory", "components", "profile", "facts")
    parts = [
        f"_{'smoke run, ' if rep.cfg.smoke else ''}{now_utc()} UTC, {rep.seconds:.0f} s; figures are median "
        f"(min–max) of the runs._",
        "",
    ]
    for key in order:
        if key in rep.tables and (rep.tables[key].rows or key == "facts"):
            parts.append(rep.tables[key].markdown())
    return "\n".join(parts)


def write(rep: Report, path: Path) -> None:
    """Write the generated part of ``path``; text outside the markers (hand-written notes) is kept."""
    body = f"{BEGIN}\n{markdown(rep)}\n{END}"
    if path.is_file():
        old = path.read_text(encoding="utf-8")
        if BEGIN in old and END in old:
            head, _, rest = old.partition(BEGIN)
            _, _, tail = rest.partition(END)
            path.write_text(head + body + tail, encoding="utf-8")
            return
    path.write_text(
        "# Sidecar under load\n\n"
        "Written by `python benchmarks/sidecar_load.py` (see its docstring for the method).\n\n" + body + "\n",
        encoding="utf-8",
    )


# --------------------------------------------------------------------------- command line
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="seconds-long CI mode")
    p.add_argument("--json", type=Path, help="also write the targets table as JSON here (benchmarks/run.py reads it)")
    p.add_argument("--streams", type=int, help="concurrent streams (default 50)")
    p.add_argument("--rates", help="comma-separated fixed rates in msg/s (default 1000,5000)")
    p.add_argument("--duration", type=float, help="seconds per fixed-rate run (default 10)")
    p.add_argument("--reps", type=int, help="repetitions (fresh server each) of the fixed-rate runs (default 3)")
    p.add_argument("--ramp", help="comma-separated offered rates of the ramp")
    p.add_argument("--ramp-duration", type=float, help="seconds per ramp step (default 5)")
    p.add_argument("--mem-streams", help="comma-separated stream counts for the memory figures (default 50,500)")
    p.add_argument("--mem-reps", type=int, help="repetitions of the memory figures (default 3)")
    p.add_argument("--client", choices=["raw", "websockets"], help="load generator's websocket client")
    p.add_argument("--server-loop", choices=["asyncio", "uvloop"], help="run the server on uvloop (if installed)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the server and the generator to cores")
    p.add_argument("--corpus", type=Path, help=f"clean chat lines, one per line (default {DEFAULT_CORPUS})")
    p.add_argument("--rules", action="append", metavar="PATH",
                   help="serve these rule files/directories instead of the default packs (repeatable)")
    p.add_argument("--profile", action="store_true", help="also profile the server with cProfile under load")
    p.add_argument("--profile-rate", type=float,
                   help="offered rate of the profiled run (default 0: closed-loop saturation)")
    p.add_argument("--profiler", choices=["py-spy", "cprofile"], help="sampling (default) or deterministic")
    p.add_argument("--profile-out", type=Path, help="keep the raw cProfile output (pstats) here")
    p.add_argument("--phases",
                   help="comma-separated subset of rates,saturation,ramp,memory,components,profile "
                   "(default: all but profile)")
    p.add_argument("--out", type=Path, help=f"markdown report (default {DEFAULT_OUT}); '-' writes none")
    return p.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    cfg = Config()
    if args.smoke:
        cfg = Config(
            smoke=True, rates=(500, 2000), duration=1.5, reps=1, ramp=(2000, 4000), ramp_duration=1.0,
            ramp_bisect=0, ramp_retries=0, sat_duration=1.5, comp_messages=2000, comp_reps=1, mem_streams=(20,),
            mem_messages=20, mem_reps=1, profile_duration=2.0,
            fresh_servers=False,
        )

    def floats(s: str) -> tuple[float, ...]:
        return tuple(float(x) for x in s.split(",") if x.strip())

    if args.streams:
        cfg.streams = args.streams
    if args.rates:
        cfg.rates = floats(args.rates)
    if args.duration:
        cfg.duration = args.duration
    if args.reps:
        cfg.reps = args.reps
    if args.ramp:
        cfg.ramp = floats(args.ramp)
    if args.ramp_duration:
        cfg.ramp_duration = args.ramp_duration
    if args.mem_streams:
        cfg.mem_streams = tuple(int(x) for x in args.mem_streams.split(",") if x.strip())
    if args.mem_reps:
        cfg.mem_reps = args.mem_reps
    if args.client:
        cfg.client = args.client
    if args.server_loop:
        cfg.server_loop = args.server_loop
    if args.no_pin:
        cfg.server_cpu = cfg.client_cpu = None
    if args.corpus:
        cfg.corpus = args.corpus
    if args.rules:
        cfg.rules = tuple(str(Path(r).resolve()) for r in args.rules)
    if args.phases:
        cfg.phases = tuple(x.strip() for x in args.phases.split(",") if x.strip())
        unknown = set(cfg.phases) - {"rates", "saturation", "ramp", "memory", "components", "profile"}
        if unknown:
            raise SystemExit(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.profile and "profile" not in cfg.phases:
        cfg.phases += ("profile",)
    if args.profile_rate is not None:
        cfg.profile_rate = args.profile_rate
    if args.profiler:
        cfg.profiler = args.profiler
    if args.profile_out:
        cfg.profile_keep = args.profile_out
    if args.out is not None:
        cfg.out = None if str(args.out) == "-" else args.out
    elif cfg.smoke:
        cfg.out = None  # a smoke run does not overwrite the committed figures
    return cfg


def write_json(rep: Report, path: Path) -> None:
    """The targets table (rows of target, measured, met) and where the report went, for benchmarks/run.py."""
    tg = rep.tables.get("targets")
    path.write_text(json.dumps({
        "targets": [[str(c) for c in row] for row in (tg.rows if tg else [])],
        "out": None if rep.cfg.out is None else str(rep.cfg.out),
        "seconds": round(rep.seconds, 1),
        "smoke": rep.cfg.smoke,
    }, ensure_ascii=False), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = config_from(args)
    rep = run(cfg)
    print(markdown(rep))
    if cfg.out is not None:
        write(rep, cfg.out)
        cfg.log(f"wrote {cfg.out}")
    if args.json is not None:
        write_json(rep, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

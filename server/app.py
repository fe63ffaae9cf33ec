"""The websocket sidecar: one asyncio server, websocket protocol on ``/``, HTTP routes on the same port.

Per message: one ``orjson.loads``, a hand-written check of a chat/transcript frame's few fields
(``protocol.fast_parse``; pydantic validates anything else, and words every error), the session
join and the checker call (microseconds, on the event loop), and the answer queued on the connection
without awaiting (``Conn.write``: one socket write per event-loop iteration for all queued answers).
Rule loading runs in an executor and the new checker replaces the old one in a single assignment on
the event loop, so every message is checked by exactly one rule set, and every warning names it.

    app = App(load_config({"port": 0}))
    await app.start()           # loads the rules (unless a checker was given) and listens
    ...                         # app.url, app.port
    await app.stop()            # drains: answers what clients already sent, flushes the audit log
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import hmac
import logging
import re
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from importlib import resources
from typing import Any

import orjson
from livestream_compliance import __version__
from livestream_compliance.engine import Checker
from livestream_compliance.errors import ComplianceError, RuleError
from livestream_compliance.findings import Finding, Severity, Source
from livestream_compliance.loader import DEFAULT_CACHE, build_checker, load_checker, load_rule_set, paraphrase_model
from livestream_compliance.rules import RuleSet
from livestream_compliance.session import SessionStore
from prometheus_client import CollectorRegistry
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from .config import ServerConfig
from .http import Routes, respond, split_target, static_files
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .protocol import (
    PROTOCOL_VERSION,
    Batch,
    BatchItem,
    Chat,
    FastChat,
    FastTranscript,
    Hello,
    Ping,
    ProtocolError,
    Script,
    Subscribe,
    Transcript,
    Unsubscribe,
    fast_parse,
    parse_client,
)
from .fastws import FastServerConnection, fast_reads_possible
from .pubsub import Hub, Outbox
from .sinks import AuditRecord, AuditSink, AuditWriter, NullAuditSink

log = logging.getLogger("livestream_compliance.server")

CheckerFactory = Callable[[RuleSet], Checker]

_HOST, _CHAT = Source.HOST, Source.CHAT
_perf_counter = time.perf_counter
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_SOURCES = {"host": _HOST, "chat": _CHAT}


# ------------------------------------------------------------------------------------ helpers
class TokenBucket:
    """``rate`` tokens per second up to ``burst``; time is passed in."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, n: float, now: float) -> float:
        """Take ``n`` tokens and return 0.0, or take nothing and return the seconds until there are enough."""
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens >= n:
            self.tokens = tokens - n
            return 0.0
        self.tokens = tokens
        return (n - tokens) / self.rate


_TIDY_SPACE = re.compile(r"[ \t\u3000]{2,}")
_TIDY_PUNCT = re.compile(r"([，,。.！!？?、；;：:~～…])[ \t\u3000]*(?:[，,、；;：:][ \t\u3000]*)+")
_LEADING_PUNCT = re.compile(r"^[\s，,。.！!？?、；;：:]+")


def rewrite_without(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with every flagged span removed and the punctuation left dangling tidied up."""
    if not findings:
        return text
    spans = sorted((f.start, f.end) for f in findings)
    out: list[str] = []
    pos = 0
    for s, e in spans:
        if s > pos:
            out.append(text[pos:s])
        pos = max(pos, e)
    out.append(text[pos:])
    result = "".join(out)
    result = _TIDY_SPACE.sub(" ", result)
    result = _TIDY_PUNCT.sub(r"\1", result)
    return _LEADING_PUNCT.sub("", result).strip()


def wire_finding(f: Finding, carry: int = 0, from_seq: int | None = None) -> dict[str, Any]:
    """A finding as sent in warning and verdict frames: ``Finding.to_dict()`` + where a cross-message match began."""
    d = f.to_dict()
    d["carry"] = carry
    d["from_seq"] = from_seq
    return d


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    rule_version: str
    rules: int
    error: str = ""
    issues: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "rule_version": self.rule_version,
            "rules": self.rules,
            "error": self.error or None,
            "issues": list(self.issues),
            "seconds": round(self.seconds, 3),
        }


@dataclass(eq=False)
class Conn:
    """One websocket client's state."""

    ws: ServerConnection
    bucket: TokenBucket
    acks: bool
    stream_id: str | None = None
    source: Source = _HOST
    product: str | None = None
    last_rx: float = 0.0
    outbox: Outbox | None = None
    #: a flush of frames queued by :meth:`write` is scheduled on the event loop
    flush_pending: bool = False
    #: the connection is websockets' own (not a test double): :meth:`write` may use its sans-I/O protocol
    fast: bool = False
    #: the handler waits in ``recv()`` (so a frame can be answered straight from ``data_received``)
    idle: bool = False
    #: frames were queued by :meth:`queue_frame`, to be written by :meth:`write_queued`
    dirty: bool = False

    #: text frames are framed here and appended to websockets' write buffer (see :func:`_raw_writes_possible`)
    raw: bool = False

    def __post_init__(self) -> None:
        self.fast = _fast_writes_possible(self.ws)
        self.raw = self.fast and _raw_writes_possible(self.ws.protocol)

    def _queue(self, data: bytes) -> None:
        """One text frame into websockets' outgoing buffer (``protocol.writes``), in order with its own frames.

        The frame is built here (a server's frames are unmasked, no extension is negotiated: the
        server is started with ``compression=None``), which is what ``protocol.send_text`` does
        through a ``Frame`` object and its generic serializer; while websockets logs frames
        (``protocol.debug``) or a fragmented message is being sent, its own ``send_text`` is used.
        """
        protocol = self.ws.protocol
        if self.raw and not protocol.debug and not protocol.expect_continuation_frame:
            n = len(data)
            if n < 126:
                protocol.writes.append(_HEADS[n] + data)
            elif n < 65536:
                protocol.writes.append(_pack_head16(0x81, 126, n) + data)
            else:
                protocol.writes.append(_pack_head64(0x81, 127, n) + data)
        else:
            protocol.send_text(data)

    def write(self, data: bytes) -> bool:
        """Queue one text frame without awaiting; False when the caller must ``await ws.send`` instead.

        The frame goes into websockets' sans-I/O protocol (``protocol.send_text``), the same buffer
        ``ws.send`` writes through, so frames keep their order whichever way they were sent. The
        socket write happens once per event-loop iteration for everything queued meanwhile (one
        syscall for many answers at load). Falls back (returns False) while the connection is not
        open, while the transport's write buffer is over its limit (``ws.send`` then waits for it to
        drain: flow control) and during a fragmented send.
        """
        ws = self.ws
        if not self.fast or ws.protocol.state is not _OPEN or ws.paused or ws.send_in_progress is not None:
            return False
        self._queue(data)
        if not self.flush_pending:
            self.flush_pending = True
            ws.loop.call_soon(self._flush)
        return True

    def can_write(self) -> bool:
        """:meth:`write` would queue a frame now (open, not over the write buffer's limit, no fragmented send)."""
        ws = self.ws
        return self.fast and ws.protocol.state is _OPEN and not ws.paused and ws.send_in_progress is None

    def queue_frame(self, data: bytes) -> None:
        """Queue a frame, to be written by :meth:`write_queued` (only after :meth:`can_write` said yes)."""
        self._queue(data)
        self.dirty = True

    def write_queued(self) -> None:
        if self.dirty:
            self.dirty = False
            self._write_out()

    def _flush(self) -> None:
        self.flush_pending = False
        self._write_out()

    def _write_out(self) -> None:
        ws = self.ws
        try:
            writes = ws.protocol.writes if self.raw else None
            if writes and len(writes) > 1 and all(writes):
                # several frames: one transport.write (one send syscall), where websockets' send_data makes
                # one per frame (an empty item is its EOF marker: left to send_data)
                ws.protocol.writes = []
                ws.transport.write(b"".join(writes))
            else:
                ws.send_data()
        except Exception:  # as in websockets' own send path: the connection is lost, recv() will say so
            log.debug("writing queued frames failed", exc_info=True)
            self.ws.transport.abort()

    async def send(self, data: bytes) -> None:
        if not self.write(data):
            await self.ws.send(data, text=True)


_OPEN = State.OPEN
#: a text frame's header (FIN, opcode 1, unmasked) for payloads under 126 bytes, by length; longer ones are packed
_HEADS = [bytes((0x81, n)) for n in range(126)]
_pack_head16 = struct.Struct("!BBH").pack
_pack_head64 = struct.Struct("!BBQ").pack


def _raw_writes_possible(protocol: Any) -> bool:
    """``protocol`` (websockets' sans-I/O side of a connection) has the internals :meth:`Conn._queue` uses, no extensions."""
    return (
        isinstance(getattr(protocol, "writes", None), list)
        and getattr(protocol, "extensions", None) == []
        and hasattr(protocol, "debug")
        and hasattr(protocol, "expect_continuation_frame")
    )


def _fast_writes_possible(ws: Any) -> bool:
    """``ws`` has the websockets (>= 14) asyncio internals that :meth:`Conn.write` relies on."""
    return isinstance(ws, ServerConnection) and all(
        hasattr(ws, a) for a in ("protocol", "paused", "send_in_progress", "send_data", "transport", "loop")
    )


def tune_gc() -> None:
    """Garbage-collector settings for a long-running process; call once after start-up.

    ``compliance serve`` and ``compliance worker`` do.

    ``gc.freeze()`` moves everything alive after start-up (rules, matchers, jieba, modules: a quarter
    of a million objects) into the permanent generation, so no later collection scans it again.
    The old-generation threshold makes full collections about a hundred times rarer: they scan all
    the per-stream session state (tens of GC-tracked objects per viewer) and stop the event loop
    meanwhile (40-50 ms with 10,000 viewers after the freeze, 100-170 ms before it). Per-message
    objects that outlive a young collection (a viewer's remembered segments) die by reference
    counting, not in full collections, so collecting the old generation rarely costs little memory.
    The young thresholds stay CPython's: a young collection costs about 0.1 ms, a middle one about 1 ms;
    larger ones made the middle collections (which scan every survivor since the last one) longer.
    In a steady state CPython's own trigger hardly fires, so the server also collects the young
    generation on a timer (:class:`YoungCollections`).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


#: seconds between two young collections of the server's event loop (see YoungCollections)
YOUNG_GC_INTERVAL = 0.1


class YoungCollections:
    """Collect the youngest generation on a timer of the event loop.

    CPython starts a young collection when the allocations of tracked objects exceed their
    deallocations by a threshold (700). A server in a steady state frees old objects (earlier
    messages' session state, evicted viewers, closed connections) about as fast as it makes the few
    that survive a message, so that count stays low while the young generation keeps growing; the
    collection that finally comes (a burst of new connections) then scans every object that piled
    up, with the event loop stopped: 10-30 ms for the 15,000-30,000 objects of ten seconds at
    5,000 messages/s, measured (benchmarks/SIDECAR.md, session 14). Collected every
    :data:`YOUNG_GC_INTERVAL`, the young generation holds only what survived since the last one
    (a collection of an empty one costs ~0.1 µs), and the middle one is collected as CPython would
    (every tenth time), so it does not pile up either. The oldest is left to CPython's own trigger:
    with :func:`tune_gc`'s threshold, a full collection becomes due after 1,000 middle ones (about
    17 minutes) and comes with the next allocation-triggered collection, if a quarter more objects
    reached the old generation since the last one (CPython's rule). Nothing happens while the
    collector is disabled.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float = YOUNG_GC_INTERVAL) -> None:
        self._loop = loop
        self._interval = interval
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._handle is None:
            self._handle = self._loop.call_later(self._interval, self._collect)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _collect(self) -> None:
        if gc.isenabled():
            # the middle generation when CPython itself would take it: after `threshold` young collections
            # (an explicit young collection counts, but only an allocation-triggered one escalates)
            gc.collect(1 if gc.get_count()[1] > gc.get_threshold()[1] else 0)
        self._handle = self._loop.call_later(self._interval, self._collect)


#: GIL switch interval (seconds) while a rule reload builds in a thread (see App.reload)
RELOAD_SWITCH_INTERVAL = 0.0002
#: after the event loop caught up, the build's thread sleeps this long (seconds) before its next step
RELOAD_PAUSE = 0.002


def _loop_caught_up(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """For a build in another thread: a function that returns once ``loop`` has run everything that
    was ready when it was called (the messages that queued while the build held the GIL), then
    sleeps :data:`RELOAD_PAUSE`. Never raises; after a wait of a second (a loop that is stopping)
    it stops waiting for the loop."""
    waiting = [True]

    def pause() -> None:
        if waiting[0] and not loop.is_closed():
            step = asyncio.sleep(0)
            try:
                asyncio.run_coroutine_threadsafe(step, loop).result(timeout=1.0)
            except Exception:  # noqa: BLE001 - a closing or stopping loop: go on building, without waiting
                step.close()
                waiting[0] = False
        time.sleep(RELOAD_PAUSE)

    return pause

#: (young, middle, old) collection thresholds set by :func:`tune_gc` (CPython's default: 700, 10, 10)
GC_THRESHOLDS = (700, 10, 1000)


def _peek_seq(raw: bytes, limit: int) -> int | None:
    """The frame's seq for an error answer, if it is cheap to read (no validation)."""
    if len(raw) > limit:
        return None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    seq = data.get("seq") if type(data) is dict else None
    return seq if type(seq) is int else None


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("Authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


# ------------------------------------------------------------------------------------ the app
class App:
    """The sidecar. Hooks for the rest of the server:

    * ``routes``: the HTTP route table (``/metrics``, ``/healthz``, ``/readyz``, ``/admin/reload``;
      ``/overlay`` serves ``server/overlay/`` when that package data exists);
    * ``audit_sink``: an :class:`~.sinks.AuditSink` called off the event loop for every warning;
    * ``hub``: stream subscriptions (``subscribe`` frames) receiving every warning frame.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        registry: CollectorRegistry | None = None,
        audit_sink: AuditSink | None = None,
        checker: Checker | None = None,
        checker_factory: CheckerFactory = build_checker,
    ) -> None:
        self.config = config
        self.metrics = Metrics(registry)
        self.routes = Routes()
        self.sessions = SessionStore(config.session_config())
        self.hub = Hub()
        self.checker: Checker | None = checker
        self.checker_factory = checker_factory
        self.audit = AuditWriter(audit_sink or NullAuditSink(), self.metrics, maxsize=config.audit_queue)
        #: False with the null sink (``--no-audit``): no record is built or handed to the writer thread
        self._auditing = type(self.audit.sink) is not NullAuditSink
        self.draining = False
        #: read plain text frames without websockets' per-frame parser (server/fastws.py), when its internals fit
        self.fast_reads = config.websocket_fast_path and fast_reads_possible()
        self._block_level = config.block_level()
        self._conns: set[Conn] = set()
        self._server: Server | None = None
        self._port: int | None = None
        self._reload_lock = asyncio.Lock()
        self._sweeper: asyncio.Task[None] | None = None
        self._young: YoungCollections | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._signals: list[int] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._evicted_seen = 0
        self._last_reload_error: Exception | None = None
        #: called on the event loop after every reload attempt (ok or not) with its ReloadResult
        self.reload_listeners: list[Callable[[ReloadResult], None]] = []
        self._dispatch: dict[type, Callable[[Conn, Any, float], Any]] = {
            Hello: self._on_hello,
            Transcript: self._on_transcript,
            Chat: self._on_chat,
            Batch: self._on_batch,
            Script: self._on_script,
            Subscribe: self._on_subscribe,
            Unsubscribe: self._on_unsubscribe,
            Ping: self._on_ping,
        }
        #: transcript and chat frames (also as read by the fast path): answered without awaiting
        self._sync_dispatch: dict[type, Callable[[Conn, Any, float], bytes | None]] = {
            FastChat: self._chat,
            Chat: self._chat,
            FastTranscript: self._transcript,
            Transcript: self._transcript,
        }
        #: per source: its wire name, the check-time histogram and the messages counter (no per-message lookups)
        self._per_source = {
            src: (src.value, self.metrics.check_by_source[src.value], self.metrics.messages_by_source[src.value])
            for src in (_HOST, _CHAT)
        }
        self._max_text_chars = config.max_text_chars
        self._max_frame_bytes = config.max_frame_bytes
        #: the ack frame's end for the checker that answered last (rebuilt when the rules are reloaded)
        self._ack_checker: Checker | None = None
        self._ack_tail = b""
        self.metrics.connections.set_function(lambda: len(self._conns))
        self.metrics.subscriptions.set_function(lambda: self.hub.count)
        self.metrics.streams.set_function(lambda: len(self.sessions))
        if checker is not None:
            self.metrics.set_rules(checker.version, len(checker.rules))
        self._default_routes()

    # ------------------------------------------------------------------ lifecycle
    @property
    def port(self) -> int:
        assert self._port is not None, "not started"
        return self._port

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def url(self) -> str:
        host = self.config.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"ws://{host}:{self.port}/"

    @property
    def http_url(self) -> str:
        return "http" + self.url[2:].rstrip("/")

    @property
    def rule_version(self) -> str:
        return self.checker.version if self.checker is not None else ""

    async def start(self) -> None:
        """Load the rules (unless a checker was given) and start listening. Raises RuleError on bad rules."""
        if self.checker is None:
            result = await self.reload(trigger="startup")
            if not result.ok:
                assert self._last_reload_error is not None
                raise self._last_reload_error
        c = self.config
        self._loop_time = asyncio.get_running_loop().time
        self._server = await serve(
            self._handler,
            c.host,
            c.port,
            process_request=self._process_request,
            max_size=c.hard_max_frame_bytes,
            max_queue=32,
            compression=None,
            # plain text frames are cut and unmasked without websockets' per-frame parser (server/fastws.py)
            create_connection=FastServerConnection if self.fast_reads else None,
            server_header=f"livestream-compliance/{__version__}",
            logger=logging.getLogger("livestream_compliance.server.ws"),
        )
        self._port = self._server.sockets[0].getsockname()[1]
        self.audit.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="session-sweeper")
        self._young = YoungCollections(asyncio.get_running_loop())
        self._young.start()
        log.info("listening on %s (rules %s)", self.url, self.rule_version)

    async def serve_forever(self) -> None:
        """Run until :meth:`stop` is called (e.g. by SIGTERM with ``install_signal_handlers``)."""
        await self._stopped.wait()

    async def stop(self) -> None:
        """Graceful shutdown: stop accepting, answer what clients already sent, flush, close."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self.draining = True
        self.metrics.draining.set(1)
        loop = asyncio.get_running_loop()
        try:
            if self._server is not None:
                self._server.server.close()  # stop accepting; open connections keep working
                notice = orjson.dumps(
                    {
                        "type": "shutdown",
                        "detail": "server shutting down: stop sending; frames already sent are answered",
                    }
                )
                deadline = loop.time() + self.config.drain_timeout
                drains = [asyncio.create_task(self._drain(conn, notice, deadline)) for conn in list(self._conns)]
                if drains:
                    await asyncio.wait(drains)
                self._server.close()
                await self._server.wait_closed()
            if self._young is not None:
                self._young.stop()
            if self._sweeper is not None:
                self._sweeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sweeper
            await self.audit.close()
        finally:
            self.remove_signal_handlers()
            self._stopped.set()

    async def _drain(self, conn: Conn, notice: bytes, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):  # a client that does not read must not hold us up
                await conn.send(notice)
        except (ConnectionClosed, TimeoutError):
            pass
        idle = self.config.drain_idle
        while True:
            now = loop.time()
            quiet_at = max(conn.last_rx, now - idle) + idle
            if now >= deadline or now >= quiet_at or conn.ws.state is not State.OPEN:
                break
            await asyncio.sleep(min(quiet_at, deadline) - now)
        if conn.outbox is not None:
            await conn.outbox.close(timeout=max(0.0, deadline - loop.time()))
        try:
            # a client that does not read cannot take its close frame: give up at the deadline
            async with asyncio.timeout(max(0.1, deadline - loop.time())):
                await conn.ws.close(1001, "server shutting down")
        except TimeoutError:
            conn.ws.transport.abort()

    def install_signal_handlers(self, *, stop_on_term: bool = True) -> None:
        """SIGHUP reloads the rules; SIGTERM/SIGINT stop the server (main thread only)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self.reload(trigger="signal")))
        self._signals.append(signal.SIGHUP)
        if stop_on_term:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, lambda: self._spawn(self.stop()))
                self._signals.append(sig)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    def remove_signal_handlers(self) -> None:
        if not self._signals:
            return
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.sweep_interval)
            self.sessions.evict_idle(loop.time())
            self._count_evictions()

    def _count_evictions(self) -> None:
        n = self.sessions.evicted
        if n > self._evicted_seen:
            self.metrics.streams_evicted.inc(n - self._evicted_seen)
            self._evicted_seen = n

    # ------------------------------------------------------------------ reload
    def _build(self, pause: Callable[[], None] | None = None) -> Checker:
        checker = self._build_checker(pause)
        warm = getattr(checker, "warm", None)  # a custom factory's checker may not have it
        if callable(warm):
            warm()  # here, in the build's thread: no message pays for what a first use builds
        return checker

    def _build_checker(self, pause: Callable[[], None] | None = None) -> Checker:
        c = self.config
        if c.state_cache and self.checker_factory is build_checker:
            # the loader's state cache (keyed by the rule files' content): a restart or a reload with
            # unchanged rules skips validation and the build; any edit is a miss and builds afresh
            return load_checker(c.rules, defaults=c.default_rules, cache_dir=DEFAULT_CACHE, model=c.paraphrase_model,
                                pause=pause)
        rule_set = load_rule_set(c.rules, defaults=c.default_rules)
        if self.checker_factory is build_checker:
            return build_checker(rule_set, model=paraphrase_model() if c.paraphrase_model else None, pause=pause)
        return self.checker_factory(rule_set)

    async def reload(self, trigger: str = "api") -> ReloadResult:
        """Rebuild the rules in an executor and swap the checker; on error keep the old one."""
        loop = asyncio.get_running_loop()
        async with self._reload_lock:
            t0 = time.perf_counter()
            old = self.checker
            # The build runs in a thread. Every automaton scan of the messages checked meanwhile
            # releases the GIL (ahocorasick-rs does), and each time the building thread keeps it for
            # up to the switch interval: at CPython's 5 ms, messages queued for the whole build
            # (seconds). A short interval while building keeps the event loop's waits short.
            # What the interval cannot split are single calls into C or Rust that hold the GIL
            # throughout (an automaton's build, reading the state): between them the build waits
            # until the event loop has caught up (_loop_caught_up).
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, RELOAD_SWITCH_INTERVAL))
            try:
                checker = await loop.run_in_executor(None, functools.partial(self._build, _loop_caught_up(loop)))
            except Exception as exc:
                dt = time.perf_counter() - t0
                issues = tuple(str(i) for i in exc.issues) if isinstance(exc, RuleError) else ()
                self._last_reload_error = exc
                self.metrics.reloads.labels("error", trigger).inc()
                self.metrics.reload_seconds.observe(dt)
                if not isinstance(exc, ComplianceError):
                    log.exception("rule reload (%s) failed", trigger)
                log.error(
                    "rule reload (%s) rejected: %s; %s",
                    trigger,
                    exc,
                    f"still serving rules {old.version}" if old is not None else "no rules loaded",
                )
                for issue in issues[1:]:
                    log.error("  %s", issue)
                return self._notify(
                    ReloadResult(False, self.rule_version, len(old.rules) if old else 0, str(exc), issues, dt)
                )
            finally:
                sys.setswitchinterval(interval)
            # the swap: one assignment on the event loop thread, between two messages
            self.checker = checker
            dt = time.perf_counter() - t0
            self.metrics.reloads.labels("ok", trigger).inc()
            self.metrics.reload_seconds.observe(dt)
            self.metrics.set_rules(checker.version, len(checker.rules))
            log.info(
                "rules %s: %d rules, version %s (was %s) in %.2fs",
                "loaded" if old is None else "reloaded",
                len(checker.rules),
                checker.version,
                old.version if old is not None else "-",
                dt,
            )
            return self._notify(ReloadResult(True, checker.version, len(checker.rules), seconds=dt))

    def _notify(self, result: ReloadResult) -> ReloadResult:
        for listener in list(self.reload_listeners):
            try:
                listener(result)
            except Exception:
                log.exception("reload listener failed")
        return result

    # ------------------------------------------------------------------ HTTP
    def _default_routes(self) -> None:
        r = self.routes
        r.add("GET", "/metrics", self._http_metrics)
        r.add("GET", "/healthz", lambda conn, req: respond(200, "ok\n"))
        r.add("GET", "/readyz", self._http_ready)
        r.add("POST", "/admin/reload", self._http_reload)
        try:
            has_overlay = resources.files("livestream_compliance_server").joinpath("overlay", "index.html").is_file()
        except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
            has_overlay = False
        if has_overlay:
            r.add("GET", "/overlay", static_files("livestream_compliance_server", "overlay"), prefix=True)

    def _token_ok(self, request: Request, *, allow_query: bool = False) -> bool:
        token = self.config.token
        if not token:
            return True
        given = _bearer(request)
        if given is None and allow_query:
            _path, query = split_target(request.path)
            given = (query.get("token") or [None])[0]
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    def _http_metrics(self, conn: ServerConnection, request: Request) -> Response:
        if self.config.metrics_auth and not self._token_ok(request):
            return respond(401, "unauthorized\n", headers={"WWW-Authenticate": "Bearer"})
        self._count_evictions()
        return respond(200, self.metrics.exposition(), METRICS_CONTENT_TYPE)

    def _http_ready(self, conn: ServerConnection, request: Request) -> Response:
        ready = self.checker is not None and not self.draining
        body = orjson.dumps({"ready": ready, "rule_version": self.rule_version, "draining": self.draining})
        return respond(200 if ready else 503, body, "application/json")

    async def _http_reload(self, conn: ServerConnection, request: Request) -> Response:
        if not self.config.token:
            return respond(403, "admin endpoints are disabled: configure a token\n")
        if not self._token_ok(request):
            return respond(401, "unauthorized\n", headers={"WWW-Authenticate": "Bearer"})
        # shielded: a client that hangs up (or the handshake timeout) does not cancel the reload
        result = await asyncio.shield(self.reload(trigger="http"))
        return respond(200 if result.ok else 422, orjson.dumps(result.to_dict()), "application/json")

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path, _query = split_target(request.path)
        if path == "/" and request.method == "GET" and "Upgrade" in request.headers:
            if not self._token_ok(request, allow_query=True):
                self.metrics.error("unauthorized")
                return respond(
                    401,
                    "unauthorized: pass the token as 'Authorization: Bearer ...' or ?token=\n",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            if self.draining:
                return respond(503, "server shutting down\n")
            if len(self._conns) >= self.config.max_connections:
                self.metrics.error("too_many_connections")
                return respond(503, "too many connections\n")
            return None  # go on with the websocket handshake
        handler = self.routes.match(request.method, path)
        if isinstance(handler, HTTPStatus):
            if path == "/" and request.method == "GET":
                return None  # let websockets explain what a websocket handshake needs (426)
            return respond(handler.value, f"{handler.phrase.lower()}\n")
        result = handler(conn, request)
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        return result  # type: ignore[return-value]

    # ------------------------------------------------------------------ websocket
    async def _handler(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        c = self.config
        conn = Conn(ws, TokenBucket(c.rate, c.burst, loop.time()), acks=c.acks)
        if not c.websocket_fast_path:
            conn.fast = conn.raw = False
        self._conns.add(conn)
        max_frame = c.max_frame_bytes
        dispatch = self._dispatch
        sync_dispatch = self._sync_dispatch
        direct = isinstance(ws, FastServerConnection) and conn.fast
        if direct:  # chat/transcript frames answered straight from data_received while this loop waits
            ws.on_text = functools.partial(self._answer_now, conn)
            ws.on_chunk_end = conn.write_queued
        try:
            while True:
                try:
                    conn.idle = True
                    raw = await ws.recv(decode=False)
                except ConnectionClosed:
                    break
                finally:
                    conn.idle = False
                t_rx = loop.time()
                conn.last_rx = t_rx
                try:
                    # every frame takes a token, garbage included
                    wait = conn.bucket.take(1, t_rx)
                    if wait:
                        await self._send_error(
                            conn, "rate_limited", "too many messages", _peek_seq(raw, max_frame), wait
                        )
                        continue
                    if len(raw) > max_frame:
                        raise ProtocolError("too_large", f"frame of {len(raw)} bytes; the limit is {max_frame}")
                    try:
                        data = orjson.loads(raw)
                    except orjson.JSONDecodeError as exc:
                        if "UTF-8" in exc.msg:
                            raise ProtocolError("invalid_utf8", "the frame is not valid UTF-8") from None
                        raise ProtocolError("bad_json", f"not JSON: {exc.msg} at byte {exc.pos}") from None
                    # the common frames (chat, transcript) are read without pydantic; anything unusual or
                    # invalid is validated by the models, which also word the error
                    msg = fast_parse(data) if type(data) is dict else None
                    if msg is None:
                        msg = parse_client(data)
                    answer = sync_dispatch.get(type(msg))
                    if answer is not None:
                        frame = answer(conn, msg, t_rx)
                        if frame is not None and not conn.write(frame):
                            await ws.send(frame, text=True)
                    else:
                        await dispatch[type(msg)](conn, msg, t_rx)
                except ProtocolError as exc:
                    await self._send_error(conn, exc.code, exc.detail, exc.seq)
                except ConnectionClosed:
                    break
                except Exception:
                    log.exception("internal error handling a frame")
                    await self._send_error(conn, "internal", "internal error; the server logged it")
        except ConnectionClosed:
            pass
        finally:
            if direct:
                ws.on_text = ws.on_chunk_end = None
            self._conns.discard(conn)
            if conn.outbox is not None:
                self.hub.remove(conn.outbox)
                await conn.outbox.close(timeout=0)

    def _answer_now(self, conn: Conn, raw: bytes) -> bool:
        """Answer a chat/transcript frame straight from ``data_received`` (server/fastws.py), as the handler would.

        Only while the handler waits in ``recv()`` with nothing queued (so answers keep their order), the
        answer can be written without waiting (flow control), and the frame is one the fast path reads
        and the token bucket allows; anything else returns False and the frame goes to ``recv()``.
        """
        if not conn.idle or len(raw) > self._max_frame_bytes:
            return False
        ws = conn.ws  # conn.can_write(), inlined: this runs for every frame
        if not conn.fast or ws.protocol.state is not _OPEN or ws.paused or ws.send_in_progress is not None:
            return False
        try:
            data = _loads(raw)
        except _JSONDecodeError:
            return False
        msg = fast_parse(data) if type(data) is dict else None
        if msg is None:
            return False
        t_rx = self._loop_time()
        if conn.bucket.take(1, t_rx):
            return False
        conn.last_rx = t_rx
        try:
            if type(msg) is FastChat:  # self._chat, inlined
                frame = self._check(
                    conn,
                    msg.stream_id or conn.stream_id or self._stream(conn, None, msg.seq),
                    _CHAT,
                    msg.text,
                    msg.seq,
                    True,
                    None,
                    msg.user,
                    msg.product or conn.product,
                    msg.sent_at,
                    t_rx,
                )
            else:
                frame = self._sync_dispatch[type(msg)](conn, msg, t_rx)
        except ProtocolError as exc:
            frame = self._error_frame(exc.code, exc.detail, exc.seq)
        except Exception:
            log.exception("internal error handling a frame")
            frame = self._error_frame("internal", "internal error; the server logged it")
        if frame is not None:
            conn.queue_frame(frame)
        return True

    def _error_frame(self, code: str, detail: str, seq: int | None = None, retry_after: float | None = None) -> bytes:
        self.metrics.error(code)
        frame: dict[str, Any] = {"type": "error", "code": code, "detail": detail, "seq": seq}
        if retry_after is not None:
            frame["retry_after"] = round(retry_after, 4)
        return orjson.dumps(frame)

    async def _send_error(
        self, conn: Conn, code: str, detail: str, seq: int | None = None, retry_after: float | None = None
    ) -> None:
        await conn.send(self._error_frame(code, detail, seq, retry_after))

    # ------------------------------------------------------------------ messages
    async def _on_hello(self, conn: Conn, msg: Hello, t_rx: float) -> None:
        if msg.stream_id is not None:
            conn.stream_id = msg.stream_id
        conn.source = _SOURCES[msg.source]
        conn.product = msg.product
        if msg.acks is not None:
            conn.acks = msg.acks
        c = self.config
        await conn.send(
            orjson.dumps(
                {
                    "type": "welcome",
                    "protocol": PROTOCOL_VERSION,
                    "server_version": __version__,
                    "rule_version": self.rule_version,
                    "stream_id": conn.stream_id,
                    "source": conn.source.value,
                    "product": conn.product,
                    "acks": conn.acks,
                    "limits": {
                        "max_frame_bytes": c.max_frame_bytes,
                        "max_text_chars": c.max_text_chars,
                        "max_batch_items": c.max_batch_items,
                        "rate": c.rate,
                        "burst": c.burst,
                    },
                }
            )
        )

    def _stream(self, conn: Conn, stream_id: str | None, seq: int | None) -> str:
        sid = stream_id or conn.stream_id
        if sid is None:
            raise ProtocolError("missing_stream_id", "no stream_id: send it in the message or in a hello first", seq)
        return sid

    def _transcript(self, conn: Conn, msg: Transcript | FastTranscript, t_rx: float) -> bytes | None:
        return self._check(
            conn,
            self._stream(conn, msg.stream_id, msg.seq),
            _HOST,
            msg.text,
            msg.seq,
            msg.final,
            msg.segment,
            msg.speaker or "host",
            msg.product or conn.product,
            msg.sent_at,
            t_rx,
            msg.start_ms,
            msg.end_ms,
        )

    async def _on_transcript(self, conn: Conn, msg: Transcript, t_rx: float) -> None:
        frame = self._transcript(conn, msg, t_rx)
        if frame is not None:
            await conn.send(frame)

    async def _on_chat(self, conn: Conn, msg: Chat, t_rx: float) -> None:
        frame = self._chat(conn, msg, t_rx)
        if frame is not None:
            await conn.send(frame)

    def _chat(self, conn: Conn, msg: Chat | FastChat, t_rx: float) -> bytes | None:
        return self._check(
            conn,
            self._stream(conn, msg.stream_id, msg.seq),
            _CHAT,
            msg.text,
            msg.seq,
            True,
            None,
            msg.user,
            msg.product or conn.product,
            msg.sent_at,
            t_rx,
        )

    async def _on_batch(self, conn: Conn, msg: Batch, t_rx: float) -> None:
        n = len(msg.items)
        if n > self.config.max_batch_items:
            raise ProtocolError(
                "bad_message", f"batch of {n} items; the limit is {self.config.max_batch_items}", msg.seq
            )
        if n > 1:
            wait = conn.bucket.take(n - 1, t_rx)
            if wait:
                await self._send_error(
                    conn, "rate_limited", f"batch of {n} items is over the rate limit", msg.seq, wait
                )
                return
        sid = self._stream(conn, msg.stream_id, msg.seq)
        product = msg.product or conn.product
        default = _SOURCES[msg.source] if msg.source else conn.source
        item: BatchItem
        for item in msg.items:
            src = _SOURCES[item.source] if item.source else default
            if src is _HOST:
                speaker: str | None = item.speaker or "host"
                final, segment = item.final, item.segment
            else:
                speaker, final, segment = item.user, True, None
            try:
                frame = self._check(
                    conn,
                    sid,
                    src,
                    item.text,
                    item.seq,
                    final,
                    segment,
                    speaker,
                    product,
                    item.sent_at,
                    t_rx,
                    item.start_ms if src is _HOST else None,
                    item.end_ms if src is _HOST else None,
                )
                if frame is not None and not conn.write(frame):
                    await conn.ws.send(frame, text=True)
            except ProtocolError as exc:
                await self._send_error(conn, exc.code, exc.detail, exc.seq)

    async def _check_one(self, conn: Conn, *args: Any) -> None:
        frame = self._check(conn, *args)
        if frame is not None:
            await conn.send(frame)

    def _check(
        self,
        conn: Conn,
        stream_id: str,
        source: Source,
        text: str,
        seq: int,
        final: bool,
        segment: int | str | None,
        speaker: str | None,
        product: str | None,
        sent_at: float | None,
        t_rx: float,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> bytes | None:
        """Check one transcript/chat text; the answer to send (warning or ack) or None. Raises ProtocolError."""
        if len(text) > self._max_text_chars:
            raise ProtocolError(
                "bad_message", f"text of {len(text)} characters; the limit is {self.config.max_text_chars}", seq
            )
        checker = self.checker
        assert checker is not None
        t0 = _perf_counter()
        try:
            reported = self.sessions.session(stream_id, t_rx).feed(
                checker,
                text,
                source=source,
                seq=seq,
                now=t_rx,
                speaker=speaker,
                segment=segment,
                final=final,
                product=product,
            )
        except ComplianceError as exc:
            raise ProtocolError("bad_input", str(exc), seq) from None
        source_name, check_seconds, messages = self._per_source[source]
        check_seconds.observe(_perf_counter() - t0)
        messages.inc()
        if not reported:
            if conn.acks:
                if self._ack_checker is not checker:  # the rules were reloaded: a new rule_version
                    self._ack_checker = checker
                    self._ack_tail = b',"rule_version":%s}' % orjson.dumps(checker.version)
                return b'{"type":"ack","seq":%d%s' % (seq, self._ack_tail)
            return None
        m = self.metrics
        findings = [wire_finding(r.finding, r.carry, r.from_seq) for r in reported]
        frame = orjson.dumps(
            {
                "type": "warning",
                "stream_id": stream_id,
                "seq": seq,
                "source": source_name,
                "final": final,
                "segment": segment,
                "speaker": speaker,
                "text": text,
                "rule_version": checker.version,
                "findings": findings,
            }
        )
        self.hub.publish(stream_id, frame)
        m.warnings_by_source[source_name].inc()
        m.count_findings([r.finding for r in reported])
        m.warning_latency.observe(asyncio.get_running_loop().time() - t_rx)
        now_wall = time.time()
        if sent_at is not None and 0 <= now_wall - sent_at < 3600:
            m.send_to_warning.observe(now_wall - sent_at)
        if self._auditing:
            self._audit_warning(now_wall, stream_id, source, seq, speaker, text, findings, checker.version, final,
                                start_ms, end_ms)
        return frame

    def _audit_warning(
        self,
        now_wall: float,
        stream_id: str,
        source: Source,
        seq: int,
        speaker: str | None,
        text: str,
        findings: list[dict[str, Any]],
        rule_version: str,
        final: bool,
        start_ms: int | None,
        end_ms: int | None,
    ) -> None:
        self.audit.submit(
            AuditRecord(
                kind="warning",
                received_at=now_wall,
                stream_id=stream_id,
                source=source.value,
                seq=seq,
                speaker=speaker,
                text=text,
                findings=tuple(findings),
                rule_version=rule_version,
                final=final,
                start_ms=start_ms,
                end_ms=end_ms,
            )
        )

    async def _on_script(self, conn: Conn, msg: Script, t_rx: float) -> None:
        if len(msg.text) > self.config.max_text_chars:
            raise ProtocolError(
                "bad_message", f"text of {len(msg.text)} characters; the limit is {self.config.max_text_chars}", msg.seq
            )
        checker = self.checker
        assert checker is not None
        product = msg.product or conn.product
        t0 = time.perf_counter()
        try:
            found = checker.check(msg.text, _HOST, product)
        except ComplianceError as exc:
            raise ProtocolError("bad_input", str(exc), msg.seq) from None
        m = self.metrics
        m.check_by_source["script"].observe(time.perf_counter() - t0)
        m.messages_by_source["script"].inc()
        level: Severity = self._block_level
        blocked = any(f.severity >= level for f in found)
        suggestions: list[str] = []
        for f in found:
            if f.suggestion not in suggestions:
                suggestions.append(f.suggestion)
        findings = [wire_finding(f) for f in found]
        verdict = "block" if blocked else "pass"
        await conn.send(
            orjson.dumps(
                {
                    "type": "verdict",
                    "seq": msg.seq,
                    "verdict": verdict,
                    "findings": findings,
                    "rewrite": rewrite_without(msg.text, found),
                    "suggestions": suggestions,
                    "rule_version": checker.version,
                }
            )
        )
        m.verdicts.labels(verdict).inc()
        if found:
            m.count_findings(found)
        if blocked and self._auditing:
            self.audit.submit(
                AuditRecord(
                    kind="script",
                    received_at=time.time(),
                    stream_id=msg.stream_id or conn.stream_id,
                    source="host",
                    seq=msg.seq,
                    speaker=None,
                    text=msg.text,
                    findings=tuple(findings),
                    rule_version=checker.version,
                )
            )

    async def _on_subscribe(self, conn: Conn, msg: Subscribe, t_rx: float) -> None:
        if conn.outbox is None:
            conn.outbox = Outbox(conn.ws, self.config.subscriber_queue, self.metrics.slow_subscriber_drops.inc)
        if msg.stream_id not in conn.outbox.streams and len(conn.outbox.streams) >= self.config.max_subscriptions:
            raise ProtocolError(
                "too_many_subscriptions", f"at most {self.config.max_subscriptions} subscriptions per connection"
            )
        self.hub.subscribe(msg.stream_id, conn.outbox)
        await conn.send(orjson.dumps({"type": "subscribed", "stream_id": msg.stream_id}))

    async def _on_unsubscribe(self, conn: Conn, msg: Unsubscribe, t_rx: float) -> None:
        if conn.outbox is not None:
            self.hub.unsubscribe(msg.stream_id, conn.outbox)
        await conn.send(orjson.dumps({"type": "unsubscribed", "stream_id": msg.stream_id}))

    async def _on_ping(self, conn: Conn, msg: Ping, t_rx: float) -> None:
        await conn.send(orjson.dumps({"type": "pong", "seq": msg.seq, "rule_version": self.rule_version}))

"""Redis stream workers: check transcript and chat events from Redis Streams, write findings back.

``compliance worker --redis URL --input STREAM --group GROUP --output STREAM [--partitions N]``
runs one member of a pool of workers that share the consumer group ``GROUP``. Each input entry
carries one websocket-protocol message (``transcript``, ``chat`` or ``batch``, see
:mod:`.protocol`) as JSON in its field ``data``; each finding becomes one output entry with the
fields ``id`` (the finding's deterministic id) and ``data`` (the finding as JSON: the CLI's jsonl
record plus ``stream_id``, ``entry_id``, ``seq``, ``carry``, ``from_seq`` and ``id``).

Delivery is at least once, nothing lost:

* an entry is acknowledged in the same MULTI/EXEC transaction that writes its findings (XADD
  findings + XACK), so a worker that dies at any point leaves it pending;
* every finding's id is ``blake2b(partition stream, entry id, item, rule, span)``: a redelivery
  writes the same ids, so a consumer drops duplicates by id;
* an entry that cannot be processed (not JSON, not a protocol message, no stream id, a text the
  checker refuses) goes to the dead-letter stream with its reason and is acknowledged; so does an
  entry delivered more than ``max_deliveries`` times (it keeps killing workers);
* SIGTERM: the batch in hand is checked and committed, the partitions are handed over, exit 0.

Cross-message matching (a term split over two transcript segments or chat lines, see
:mod:`livestream_compliance.session`) needs every message of a live stream to be checked in order
by one process holding that stream's window. So the input is **partitioned by stream id**: with
``--partitions N`` the input is the N streams ``STREAM:0`` .. ``STREAM:N-1`` and a producer writes
each message to ``STREAM:{crc32(stream_id) % N}`` (:func:`input_key`); with the default N = 1 it
is ``STREAM`` itself. Each partition is read by exactly one worker at a time, the holder of its
**lease** (``STREAM:lease:P``, a key with a TTL that the owner renews with every commit and every
lease_ttl/3); workers register in ``STREAM:workers`` and share the partitions evenly, rebalancing
when workers come and go.

A partition's new owner first **replays** the last ``replay_window`` seconds of its acknowledged
entries (XRANGE; findings discarded): the windows' clock is the entry id's time, so re-checking
the same entries in the same order rebuilds exactly the windows the previous owner had, whether
it handed the partition over or was killed. Then it XAUTOCLAIMs the entries pending on the
partition (its previous owner lost the lease, so they are orphaned; the lease TTL is the idle
timeout) and processes them, then reads new ones. A periodic sweep XAUTOCLAIMs stragglers idle
for ``claim_idle``. Commits are fenced: the transaction WATCHes the lease, so a stuck worker that
wakes up after its lease passed to another writes nothing. docs/deployment.md explains the choice
and the sizing.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from livestream_compliance.cli.check import record
from livestream_compliance.engine import Checker
from livestream_compliance.errors import ComplianceError
from livestream_compliance.findings import Finding, Source
from livestream_compliance.readers import Utterance
from livestream_compliance.session import Reported, SessionConfig, SessionStore

from .protocol import Batch, Chat, ProtocolError, Transcript, parse_client
from .worker_metrics import WorkerMetrics

log = logging.getLogger("livestream_compliance.worker")

__all__ = [
    "DeadLetter",
    "Item",
    "Worker",
    "WorkerConfig",
    "finding_id",
    "input_key",
    "input_keys",
    "parse_entry",
    "partition_of",
    "shard_and_partition",
]

_HOST, _CHAT = Source.HOST, Source.CHAT
_SOURCES = {"host": _HOST, "chat": _CHAT}

#: rounds of XAUTOCLAIM per partition per call (each round claims up to ``batch`` entries)
MAX_CLAIM_ROUNDS = 10_000
#: pending ids looked at when replaying a partition's history (more are replayed twice: harmless)
REPLAY_PENDING_MAX = 100_000


# ------------------------------------------------------------------------------------ keys
def partition_of(stream_id: str, partitions: int) -> int:
    """The partition of a live stream: ``crc32(utf-8 stream id) % partitions`` (any language can compute it)."""
    return zlib.crc32(stream_id.encode("utf-8")) % partitions if partitions > 1 else 0


def input_keys(base: str, partitions: int) -> list[str]:
    """The Redis stream keys of the input: ``[base]`` for 1 partition, else ``base:0`` .. ``base:N-1``."""
    return [base] if partitions == 1 else [f"{base}:{p}" for p in range(partitions)]


def input_key(base: str, stream_id: str, partitions: int) -> str:
    """Where a producer writes a message of ``stream_id``."""
    return base if partitions == 1 else f"{base}:{partition_of(stream_id, partitions)}"


def shard_and_partition(stream_id: str, shards: int, partitions: int) -> tuple[int, int]:
    """For several Redis shards (independent primaries, each with its own N partitions and workers):
    global partition ``g = crc32 % (shards * N)``, shard ``g // N``, partition ``g % N``."""
    g = zlib.crc32(stream_id.encode("utf-8")) % (shards * partitions)
    return g // partitions, g % partitions


def finding_id(partition_key: str, entry_id: str, item: int | None, f: Finding) -> str:
    """Deterministic id of a finding: input stream + entry id (+ item of a batch) + rule + span."""
    ctx = f"{partition_key}/{entry_id}" if item is None else f"{partition_key}/{entry_id}/{item}"
    return f.fingerprint(ctx)


# ------------------------------------------------------------------------------------ config
@dataclass
class WorkerConfig:
    redis_url: str
    input: str
    group: str
    output: str
    partitions: int = 1
    #: this member's consumer name in the group (default: host-pid)
    consumer: str | None = None
    #: dead-letter stream (default: ``<input>:dead``)
    dead_letter: str | None = None
    #: entries read per XREADGROUP (shared among the owned partitions) and checked with one check_batch
    batch: int = 500
    block_ms: int = 1000
    #: seconds a partition lease lives without renewal: the failure-detection time
    lease_ttl: float = 10.0
    #: entries pending this long (seconds) on owned partitions are reclaimed by the periodic sweep
    claim_idle: float = 30.0
    #: an entry delivered more often than this is dead-lettered instead of processed
    max_deliveries: int = 5
    max_text_chars: int = 10_000
    #: approximate MAXLEN of the output stream (None: never trimmed)
    output_maxlen: int | None = None
    #: join messages of a stream across entries (cross-segment matching)
    join: bool = True
    session: SessionConfig = field(default_factory=SessionConfig)
    #: seconds of a partition's history re-checked (findings discarded) by its new owner to rebuild
    #: the windows (default: the longer join window); 0 disables
    replay_window: float | None = None
    #: at most this many entries are replayed per takeover (bounds the takeover time)
    replay_max: int = 200_000
    #: trim owned partitions to entries younger than this many seconds before the group's oldest
    #: unacknowledged entry (XTRIM MINID ~); None/0: never trim (e.g. when other groups read the input)
    retain: float | None = 60.0

    def __post_init__(self) -> None:
        if self.consumer is None:
            self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        if self.dead_letter is None:
            self.dead_letter = f"{self.input}:dead"
        if self.replay_window is None:
            self.replay_window = max(self.session.host_window, self.session.chat_window)

    def validate(self) -> WorkerConfig:
        from livestream_compliance.errors import UsageError

        if self.partitions < 1:
            raise UsageError("--partitions must be at least 1")
        for name in ("batch", "block_ms", "max_deliveries", "max_text_chars"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be positive")
        if self.lease_ttl < 0.5:
            raise UsageError("--lease-ttl must be at least 0.5 seconds")
        if self.claim_idle <= 0:
            raise UsageError("--claim-idle must be positive")
        if self.retain and self.retain < (self.replay_window or 0):
            raise UsageError("--retain must keep at least --replay-window seconds of history")
        if len({self.output, self.dead_letter, *input_keys(self.input, self.partitions)}) != self.partitions + 2:
            raise UsageError("the input, output and dead-letter streams must be different keys")
        return self

    # keys
    def lease_key(self, p: int) -> str:
        return f"{self.input}:lease:{p}"

    @property
    def workers_key(self) -> str:
        return f"{self.input}:workers"

    @property
    def meta_key(self) -> str:
        return f"{self.input}:meta"


# ------------------------------------------------------------------------------------ input
class DeadLetter(Exception):
    """An entry that cannot be processed: goes to the dead-letter stream with ``reason``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Item:
    """One text of an input entry (a batch entry has several)."""

    stream_id: str
    source: Source
    text: str
    seq: int
    final: bool = True
    segment: int | str | None = None
    #: the transcript's speaker (default "host") or the chat line's user: keys the session tail
    speaker: str | None = None
    product: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None


def parse_entry(fields: dict[bytes, bytes], *, max_text_chars: int = 10_000) -> list[Item]:
    """The texts of one input entry, in order. Raises :class:`DeadLetter` for anything unusable."""
    raw = fields.get(b"data")
    if raw is None:
        raise DeadLetter("missing_data", "the entry has no 'data' field")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "UTF-8" in exc.msg or "utf-8" in exc.msg:
            raise DeadLetter("invalid_utf8", "the data is not valid UTF-8") from None
        raise DeadLetter("bad_json", f"not JSON: {exc.msg} at byte {exc.pos}") from None
    try:
        msg = parse_client(data)
    except ProtocolError as exc:
        raise DeadLetter(exc.code, exc.detail) from None
    items: list[Item]
    if isinstance(msg, Transcript):
        items = [Item(_sid(msg.stream_id), _HOST, msg.text, msg.seq, msg.final, msg.segment, msg.speaker or "host",
                      msg.product, msg.start_ms, msg.end_ms)]
    elif isinstance(msg, Chat):
        items = [Item(_sid(msg.stream_id), _CHAT, msg.text, msg.seq, True, None, msg.user, msg.product)]
    elif isinstance(msg, Batch):
        sid = _sid(msg.stream_id)
        default = _SOURCES[msg.source] if msg.source else _HOST
        items = []
        for it in msg.items:
            src = _SOURCES[it.source] if it.source else default
            if src is _HOST:
                items.append(Item(sid, _HOST, it.text, it.seq, it.final, it.segment, it.speaker or "host", msg.product,
                                  it.start_ms, it.end_ms))
            else:
                items.append(Item(sid, _CHAT, it.text, it.seq, True, None, it.user, msg.product))
    else:
        kind = getattr(msg, "type", type(msg).__name__)
        raise DeadLetter("unsupported_type", f"a {kind!r} message has no place in the input; expected transcript, chat or batch")
    for i, it in enumerate(items):
        if len(it.text) > max_text_chars:
            where = f"item {i + 1}: " if len(items) > 1 else ""
            raise DeadLetter("bad_input", f"{where}text of {len(it.text)} characters; the limit is {max_text_chars}")
    return items


def _sid(stream_id: str | None) -> str:
    if stream_id is None:
        raise DeadLetter("missing_stream_id", "the message has no stream_id (a worker's input has no hello)")
    return stream_id


def entry_time(entry_id: str) -> float:
    """Seconds of an entry id (``<ms>-<n>``): the message's time for the session windows.

    Using the time the producer added the entry (not the time a worker happens to process it)
    makes the windows deterministic: a backlog or a redelivery joins exactly the same messages.
    """
    return int(entry_id.partition("-")[0]) / 1000.0


# ------------------------------------------------------------------------------------ checking
class _Precomputed:
    """A checker whose answers for the batch's bare texts were computed by one ``check_batch``.

    The session calls ``check(text)`` for a message with no live tail (a cache hit) and
    ``check(tail + text)`` otherwise (computed here).
    """

    __slots__ = ("checker", "cache")

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.cache: dict[tuple[str, Source, str | None], tuple[Finding, ...]] = {}

    def fill(self, items: Sequence[Item]) -> None:
        groups: dict[tuple[Source, str | None], list[str]] = {}
        for it in items:
            groups.setdefault((it.source, it.product), []).append(it.text)
        cache = self.cache
        for (source, product), texts in groups.items():
            try:
                results = self.checker.check_batch(texts, source, product)
            except ComplianceError:
                continue  # one bad text: let each message be checked (and refused) on its own
            for text, found in zip(texts, results):
                cache[(text, source, product)] = found

    supports_crossing = True  # see Checker.check(crossing=)

    def check(
        self, text: str, source: Source | str = _HOST, product: str | None = None, *, crossing: int | None = None
    ) -> tuple[Finding, ...]:
        found = self.cache.get((text, source, product))  # type: ignore[arg-type]
        if found is None:
            if crossing is not None and getattr(type(self.checker), "supports_crossing", False):
                return self.checker.check(text, source, product, crossing=crossing)  # type: ignore[call-arg]
            found = self.checker.check(text, source, product)
        return found


@dataclass(eq=False)
class _Partition:
    index: int
    key: str
    lease_key: str
    sessions: SessionStore
    #: monotonic time until which this worker may read the partition (lease renewal - margin)
    valid_until: float = 0.0
    #: latest entry time seen (for evicting idle streams)
    last_time: float = 0.0


@dataclass(slots=True)
class _Outcome:
    """What one partition batch produced, ready to commit."""

    findings: list[tuple[str, bytes, Finding]] = field(default_factory=list)
    dead: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    ack: list[str] = field(default_factory=list)
    messages: dict[str, int] = field(default_factory=dict)


# Lua: take the lease when free, renew it when it is already ours (after a reconnect). 1 = taken,
# 2 = already ours, 0 = someone else's.
_ACQUIRE = """
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 2 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
# Lua: renew every lease in KEYS that is still ours; 1/0 per key.
_RENEW = """
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then redis.call('PEXPIRE', k, ARGV[2]) out[i] = 1 else out[i] = 0 end
end
return out
"""


# ------------------------------------------------------------------------------------ the worker
class Worker:
    """One member of the worker pool. ``run()`` blocks until :meth:`request_stop` (e.g. on SIGTERM)."""

    def __init__(
        self,
        config: WorkerConfig,
        checker: Checker,
        *,
        client: redis.Redis | None = None,
        metrics: WorkerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config.validate()
        self.checker = checker
        self.metrics = metrics or WorkerMetrics()
        self.metrics.rule_info.labels(checker.version).set(1)
        timeout = config.block_ms / 1000 + 10
        self.r = client or redis.Redis.from_url(
            config.redis_url, protocol=2, socket_timeout=timeout, socket_connect_timeout=5,
            client_name="compliance-worker:" + "".join(ch if ch.isalnum() or ch in "-_.:" else "_" for ch in str(config.consumer)),
        )
        self.name: str = config.consumer  # type: ignore[assignment]
        #: the lease value: the consumer name plus a random tag, unique even if names are reused
        self.token = f"{self.name}/{os.urandom(4).hex()}"
        self._token_b = self.token.encode()
        self.keys = input_keys(config.input, config.partitions)
        self.owned: dict[int, _Partition] = {}
        self.clock = clock
        self._stop = threading.Event()
        self._ttl_ms = int(config.lease_ttl * 1000)
        self._tick_every = config.lease_ttl / 3
        self._margin = config.lease_ttl / 5
        self._acquire = self.r.register_script(_ACQUIRE)
        self._renew = self.r.register_script(_RENEW)
        self._next_sweep = 0.0
        self._renewed_at = 0.0
        self.started = threading.Event()

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        """Finish the batch in hand, commit it, hand the partitions over and return from run()."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def setup(self) -> None:
        """Check the partition count recorded for the input and create the group on every partition."""
        from livestream_compliance.errors import UsageError

        c = self.config
        self.r.hsetnx(c.meta_key, "partitions", c.partitions)
        recorded = int(self.r.hget(c.meta_key, "partitions") or c.partitions)
        if recorded != c.partitions:
            raise UsageError(
                f"{c.input} is partitioned {recorded} ways ({c.meta_key}); this worker was started with --partitions "
                f"{c.partitions}: a producer and its workers must agree"
            )
        self._create_groups()

    def _create_groups(self) -> None:
        pipe = self.r.pipeline(transaction=False)
        for key in self.keys:
            pipe.xgroup_create(key, self.config.group, id="0", mkstream=True)
        for res in pipe.execute(raise_on_error=False):
            if isinstance(res, Exception) and "BUSYGROUP" not in str(res):
                raise res

    def run(self) -> int:
        """The main loop: membership and leases every lease_ttl/3, XREADGROUP, check, commit. Returns 0."""
        self.setup()
        self.started.set()
        next_tick = 0.0
        backoff = 0.1
        need_groups = False
        while not self._stop.is_set():
            try:
                if need_groups:
                    self._create_groups()
                    need_groups = False
                now = self.clock()
                if now >= next_tick:
                    self._tick()
                    next_tick = self.clock() + self._tick_every
                    backoff = 0.1
                    if self._stop.is_set():
                        break
                now = self.clock()
                readable = [p for p in self.owned.values() if p.valid_until > now]
                if not readable:
                    self._stop.wait(max(0.01, min(self._tick_every, next_tick - now)))
                    continue
                block = int(max(1, min(self.config.block_ms, (next_tick - now) * 1000)))
                per_stream = max(1, math.ceil(self.config.batch / len(readable)))
                reply = self.r.xreadgroup(
                    self.config.group, self.name, {p.key: ">" for p in readable}, count=per_stream, block=block
                )
                by_key = {p.key: p for p in readable}
                for key, entries in reply or ():
                    part = by_key.get(key.decode() if isinstance(key, bytes) else key)
                    if part is not None and entries and part.index in self.owned:
                        self._process(part, entries)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                self.metrics.redis_errors.inc()
                log.warning("redis: %s; retrying in %.1fs", exc, backoff)
                self._drop_all()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                next_tick = 0.0
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                log.warning("a partition lost its consumer group (%s); recreating", exc)
                need_groups = True
        self._shutdown()
        return 0

    # ------------------------------------------------------------------ membership and leases
    def _heartbeat(self) -> list[str]:
        """Register as alive (Redis time, so clocks of the hosts need not agree); the live workers, sorted."""
        c = self.config
        secs, micros = self.r.time()
        now_ms = secs * 1000 + micros // 1000
        pipe = self.r.pipeline(transaction=False)
        pipe.zadd(c.workers_key, {self.token: now_ms})
        pipe.zremrangebyscore(c.workers_key, "-inf", now_ms - self._ttl_ms)
        pipe.zrange(c.workers_key, 0, -1)
        pipe.pexpire(c.workers_key, self._ttl_ms * 10)
        return sorted(x.decode() for x in pipe.execute()[2])

    def _tick(self) -> None:
        c = self.config
        live = self._heartbeat()
        self._renew_leases()
        target = 0
        if not self._stop.is_set() and self.token in live:
            n, i = len(live), live.index(self.token)
            target = c.partitions // n + (1 if i < c.partitions % n else 0)
        if len(self.owned) > target:
            for p in sorted(self.owned, reverse=True)[: len(self.owned) - target]:
                self._release(self.owned[p])
        elif len(self.owned) < target:
            values = self.r.mget([c.lease_key(p) for p in range(c.partitions)])
            free = [p for p, v in enumerate(values) if p not in self.owned and (v is None or v == self._token_b)]
            random.shuffle(free)
            for p in free:
                if len(self.owned) >= target or self._stop.is_set():
                    break
                self._take(p)
        now = self.clock()
        if now >= self._next_sweep:
            self._next_sweep = now + c.claim_idle / 2
            for part in list(self.owned.values()):
                if part.index in self.owned:
                    self._reclaim(part, int(c.claim_idle * 1000))
        for part in self.owned.values():
            if part.last_time:
                part.sessions.evict_idle(part.last_time)
        self._update_gauges()

    def _renew_leases(self) -> None:
        """Renew every lease held; forget the partitions whose lease has passed to another worker."""
        self._renewed_at = t_sent = self.clock()
        if not self.owned:
            return
        parts = list(self.owned.values())
        kept = self._renew(keys=[p.lease_key for p in parts], args=[self.token, self._ttl_ms])
        for part, ok in zip(parts, kept):
            if ok:
                part.valid_until = t_sent + self.config.lease_ttl - self._margin
            else:
                log.warning("lost the lease of partition %d", part.index)
                self._drop(part, "lost")

    def _keepalive(self) -> None:
        """Within a long replay or reclaim: stay registered and keep the other leases alive."""
        if self.clock() - self._renewed_at >= self._tick_every:
            self._heartbeat()
            self._renew_leases()

    def _take(self, p: int) -> None:
        c = self.config
        t_sent = self.clock()
        got = self._acquire(keys=[c.lease_key(p)], args=[self.token, self._ttl_ms])
        if not got:
            return
        part = _Partition(p, self.keys[p], c.lease_key(p), SessionStore(c.session), t_sent + c.lease_ttl - self._margin)
        self.owned[p] = part
        self.metrics.lease_by_event["acquired"].inc()
        self.metrics.partitions.set(len(self.owned))
        replayed = self._replay(part)
        log.info("took partition %d (replayed %d entries)", p, replayed)
        # whoever held this partition before has lost its lease (its commits are fenced), so
        # everything pending on it is orphaned: claim it at once, before reading new entries
        self._reclaim(part, 0)
        self._forget_idle_consumers(part)

    def _replay(self, part: _Partition) -> int:
        """Rebuild the partition's windows: re-check the last ``replay_window`` seconds of the entries
        already acknowledged, in order, and discard their findings (they were written before).

        The session clock is the entry time, so this gives exactly the windows the previous owner had,
        whether it handed the partition over or died. Pending entries are left out: they are
        reclaimed and processed (with findings) right after.
        """
        c = self.config
        window_ms = int((c.replay_window or 0) * 1000)
        if not c.join or window_ms <= 0 or c.replay_max <= 0:
            return 0
        last = None
        for g in self.r.xinfo_groups(part.key):
            if g["name"] in (c.group, c.group.encode()):
                last = g["last-delivered-id"]
        if not last or last in (b"0-0", "0-0"):
            return 0
        last = last.decode() if isinstance(last, bytes) else last
        ref_ms = int(last.partition("-")[0])
        summary = self.r.xpending(part.key, c.group)
        if summary["pending"]:
            first = summary["min"].decode() if isinstance(summary["min"], bytes) else summary["min"]
            ref_ms = min(ref_ms, int(first.partition("-")[0]))
        start = f"{max(0, ref_ms - window_ms)}-0"
        pending = {x["message_id"] for x in self.r.xpending_range(part.key, c.group, start, last, REPLAY_PENDING_MAX)}
        n = 0
        lo = start
        while n < c.replay_max and not self._stop.is_set() and part.index in self.owned:
            count = min(c.batch * 2, c.replay_max - n)
            chunk = self.r.xrange(part.key, min=lo, max=last, count=count)
            if not chunk:
                break
            self._feed_only(part, [(eid, f) for eid, f in chunk if eid not in pending])
            n += len(chunk)
            self._keepalive()
            if len(chunk) < count:
                break
            lo = "(" + chunk[-1][0].decode()
        self.metrics.replayed.inc(n)
        return n

    def _feed_only(self, part: _Partition, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        parsed = []
        for eid_b, fields in entries:
            try:
                parsed.append((eid_b.decode(), parse_entry(fields, max_text_chars=self.config.max_text_chars)))
            except DeadLetter:
                continue
        checker = _Precomputed(self.checker)
        try:
            checker.fill([it for _, items in parsed for it in items])
        except Exception:  # noqa: BLE001
            pass
        for eid, items in parsed:
            now = entry_time(eid)
            part.last_time = max(part.last_time, now)
            try:
                self._feed(part.sessions, checker, eid, items, now)
            except Exception:  # noqa: BLE001 - it was dead-lettered (or failed) the first time too
                continue

    def _release(self, part: _Partition) -> None:
        """Give a partition up (rebalance, shutdown): delete the lease if it is still ours."""
        with self.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(part.lease_key)
                if pipe.get(part.lease_key) == self._token_b:
                    pipe.multi()
                    pipe.delete(part.lease_key)
                    pipe.execute()
            except redis.WatchError:
                pass
        self.owned.pop(part.index, None)
        self.metrics.lease_by_event["released"].inc()
        self.metrics.partitions.set(len(self.owned))
        log.info("released partition %d", part.index)

    def _drop(self, part: _Partition, event: str) -> None:
        self.owned.pop(part.index, None)
        self.metrics.lease_by_event[event].inc()
        self.metrics.partitions.set(len(self.owned))

    def _drop_all(self) -> None:
        """After a Redis error: forget every partition (windows included); the leases are re-taken or expire."""
        for part in list(self.owned.values()):
            self._drop(part, "lost")

    def _forget_idle_consumers(self, part: _Partition) -> None:
        """Delete the group's other consumers that have nothing pending on this partition (dead workers' names)."""
        try:
            for info in self.r.xinfo_consumers(part.key, self.config.group):
                name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
                if name != self.name and info["pending"] == 0:
                    self.r.xgroup_delconsumer(part.key, self.config.group, name)
        except redis.ResponseError:
            pass

    def _shutdown(self) -> None:
        try:
            for part in list(self.owned.values()):
                self._release(part)
            self.r.zrem(self.config.workers_key, self.token)
        except redis.RedisError as exc:
            log.warning("redis at shutdown: %s (the leases will expire)", exc)
        self.metrics.partitions.set(0)

    def _update_gauges(self) -> None:
        """Lag and pending of the owned partitions; trims their acknowledged history (``retain``)."""
        lag = pending = 0
        if self.owned:
            parts = list(self.owned.values())
            pipe = self.r.pipeline(transaction=False)
            for part in parts:
                pipe.xinfo_groups(part.key)
                pipe.xpending(part.key, self.config.group)
            replies = pipe.execute(raise_on_error=False)
            trims: list[tuple[str, str]] = []
            for part, groups, summary in zip(parts, replies[::2], replies[1::2]):
                if isinstance(groups, Exception) or isinstance(summary, Exception):
                    continue
                for g in groups:
                    gname = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
                    if gname != self.config.group:
                        continue
                    lag += g.get("lag") or 0
                    pending += g.get("pending") or 0
                    minid = self._trim_point(g["last-delivered-id"], summary)
                    if minid:
                        trims.append((part.key, minid))
            if trims:
                pipe = self.r.pipeline(transaction=False)
                for key, minid in trims:
                    pipe.xtrim(key, minid=minid, approximate=True)
                pipe.execute(raise_on_error=False)
        self.metrics.lag.set(lag)
        self.metrics.pending.set(pending)

    def _trim_point(self, last_delivered: Any, summary: dict[str, Any]) -> str | None:
        """``retain`` seconds before the oldest entry the group has not acknowledged (never above it)."""
        retain = self.config.retain
        if not retain or not last_delivered:
            return None
        ref = last_delivered.decode() if isinstance(last_delivered, bytes) else last_delivered
        ref_ms = int(ref.partition("-")[0])
        if summary.get("pending") and summary.get("min"):
            first = summary["min"].decode() if isinstance(summary["min"], bytes) else summary["min"]
            ref_ms = min(ref_ms, int(first.partition("-")[0]))
        cut = ref_ms - int(retain * 1000)
        return f"{cut}-0" if cut > 0 else None

    # ------------------------------------------------------------------ reclaiming
    def _reclaim(self, part: _Partition, min_idle_ms: int) -> int:
        """XAUTOCLAIM entries pending on ``part`` (idle at least ``min_idle_ms``) and process them in order.

        When the oldest such entry was already delivered twice, entries are claimed one at a time,
        so that an entry that kills every worker that reads it (a poison pill) reaches
        ``max_deliveries`` alone and is dead-lettered, not the batch around it.
        """
        c = self.config
        total = 0
        start: Any = "0-0"
        for _ in range(MAX_CLAIM_ROUNDS):
            if part.index not in self.owned or self._stop.is_set():
                break
            oldest = self.r.xpending_range(part.key, c.group, start, "+", 1, idle=min_idle_ms or None)
            if not oldest:
                break
            careful = oldest[0]["times_delivered"] >= 2
            cursor, entries, _deleted = self.r.xautoclaim(
                part.key, c.group, self.name, min_idle_ms, start_id=start, count=1 if careful else c.batch
            )
            entries = [(eid, fields) for eid, fields in entries if fields is not None]
            if entries:
                ids = [eid for eid, _ in entries]
                info = self.r.xpending_range(part.key, c.group, ids[0], ids[-1], len(ids) + 16, consumername=self.name)
                counts = {x["message_id"]: x["times_delivered"] for x in info}
                total += len(entries)
                self.metrics.reclaimed.inc(len(entries))
                if not self._process(part, entries, counts):
                    break
                self._keepalive()
            if cursor in (b"0-0", "0-0"):
                break
            start = cursor
        if total:
            log.info("reclaimed %d entries on partition %d", total, part.index)
        return total

    # ------------------------------------------------------------------ processing
    def _process(self, part: _Partition, entries: list[tuple[bytes, dict[bytes, bytes]]],
                 deliveries: dict[bytes, int] | None = None) -> bool:
        """Check one partition's batch and commit it. False when the commit was fenced (lease lost)."""
        t0 = time.perf_counter()
        c = self.config
        out = _Outcome()
        parsed: list[tuple[str, dict[bytes, bytes], list[Item] | None]] = []
        all_items: list[Item] = []
        for eid_b, fields in entries:
            eid = eid_b.decode()
            out.ack.append(eid)
            n = deliveries.get(eid_b, 1) if deliveries else 1
            if n > c.max_deliveries:
                out.dead.append(self._dead_letter(fields, eid, "too_many_deliveries",
                                                  f"delivered {n} times (limit {c.max_deliveries})", n))
                parsed.append((eid, fields, None))
                continue
            try:
                items = parse_entry(fields, max_text_chars=c.max_text_chars)
            except DeadLetter as dl:
                out.dead.append(self._dead_letter(fields, eid, dl.reason, dl.detail, n))
                parsed.append((eid, fields, None))
                continue
            parsed.append((eid, fields, items))
            all_items.extend(items)
        checker = _Precomputed(self.checker)
        try:
            checker.fill(all_items)
        except Exception:  # noqa: BLE001 - the per-message checks below find (and dead-letter) the culprit
            log.exception("check_batch failed on partition %s; checking message by message", part.key)
        sessions = part.sessions
        for eid, fields, items in parsed:
            if items is None:
                continue
            now = entry_time(eid)
            if now > part.last_time:
                part.last_time = now
            try:
                produced = self._check_entry(part, checker, sessions, eid, items, now, out)
            except ComplianceError as exc:
                out.dead.append(self._dead_letter(fields, eid, "bad_input", str(exc), 1))
                continue
            except Exception as exc:  # noqa: BLE001 - a bug must not stop the partition: dead-letter and go on
                log.exception("internal error checking entry %s of %s", eid, part.key)
                out.dead.append(self._dead_letter(fields, eid, "internal", f"{type(exc).__name__}: {exc}", 1))
                continue
            out.findings.extend(produced)
        ok = self._commit(part, out)
        if ok:
            m = self.metrics
            m.processed.inc(len(entries) - len(out.dead))
            for src, n in out.messages.items():
                m.messages_by_source[src].inc(n)
            m.count_findings(f for _, _, f in out.findings)
            m.batch_seconds.observe(time.perf_counter() - t0)
        return ok

    def _feed(self, sessions: SessionStore, checker: _Precomputed, eid: str, items: list[Item],
              now: float) -> list[tuple[int, Item, Reported]]:
        """Check an entry's items in order through the stream's window; (item index, item, finding)."""
        out: list[tuple[int, Item, Reported]] = []
        join = self.config.join
        for idx, it in enumerate(items):
            if join:
                # chat lines have no segments: key each by its entry, so that equal seqs never dedupe
                if it.source is _HOST:
                    segment: Any = it.seq if it.segment is None else it.segment
                else:
                    segment = (eid, idx)
                reported: tuple[Reported, ...] = sessions.feed(
                    it.stream_id, checker, it.text, source=it.source, seq=it.seq, now=now, speaker=it.speaker,
                    segment=segment, final=it.final, product=it.product,
                )
            else:
                reported = tuple(Reported(f) for f in checker.check(it.text, it.source, it.product))
            out.extend((idx, it, rep) for rep in reported)
        return out

    def _check_entry(self, part: _Partition, checker: _Precomputed, sessions: SessionStore, eid: str,
                     items: list[Item], now: float, out: _Outcome) -> list[tuple[str, bytes, Finding]]:
        produced: list[tuple[str, bytes, Finding]] = []
        single = len(items) == 1
        for idx, it, rep in self._feed(sessions, checker, eid, items, now):
            fid = finding_id(part.key, eid, None if single else idx + 1, rep.finding)
            produced.append((fid, orjson.dumps(self._record(part.key, eid, idx, it, rep, fid)), rep.finding))
        for it in items:
            out.messages[it.source.value] = out.messages.get(it.source.value, 0) + 1
        return produced

    @staticmethod
    def _record(key: str, eid: str, idx: int, it: Item, rep: Reported, fid: str) -> dict[str, Any]:
        u = Utterance(line=idx + 1, text=it.text, start=it.start_ms, end=it.end_ms, source=it.source,  # type: ignore[arg-type]
                      user=it.speaker if it.source is _CHAT else None, product=it.product)
        d = record(key, u, rep.finding)
        if it.source is _HOST:
            d["speaker"] = it.speaker
        d["stream_id"] = it.stream_id
        d["entry_id"] = eid
        d["seq"] = it.seq
        d["carry"] = rep.carry
        d["from_seq"] = rep.from_seq
        d["id"] = fid
        return d

    def _dead_letter(self, fields: dict[bytes, bytes], eid: str, reason: str, detail: str,
                     deliveries: int) -> tuple[dict[str, Any], str]:
        """The dead-letter entry for an input entry: why, where from, and the original fields."""
        dl: dict[str, Any] = {
            "reason": reason,
            "detail": detail,
            "entry_id": eid,
            "stream": "",  # filled in by _commit (the partition key)
            "consumer": self.name,
            "deliveries": deliveries,
            "data": fields.get(b"data", b""),
        }
        others = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in fields.items() if k != b"data"}
        if others:
            dl["fields"] = orjson.dumps(others)
        return dl, reason

    def _commit(self, part: _Partition, out: _Outcome) -> bool:
        """One transaction: XADD the findings and dead letters, XACK the entries, renew the lease.

        WATCHing the lease fences the commit: when the partition has passed to another worker
        since this batch was read, nothing is written and the entries stay pending for the new owner.
        """
        c = self.config
        t_sent = self.clock()
        with self.r.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(part.lease_key)
                if pipe.get(part.lease_key) != self._token_b:
                    pipe.unwatch()
                    raise redis.WatchError("lease")
                pipe.multi()
                maxlen = c.output_maxlen
                for fid, data, _f in out.findings:
                    pipe.xadd(c.output, {"id": fid, "data": data}, maxlen=maxlen, approximate=True)
                for dl, _reason in out.dead:
                    dl["stream"] = part.key
                    pipe.xadd(c.dead_letter, dl)
                if out.ack:
                    pipe.xack(part.key, c.group, *out.ack)
                pipe.pexpire(part.lease_key, self._ttl_ms)
                pipe.execute()
            except redis.WatchError:
                log.warning("partition %d passed to another worker: batch of %d entries not committed",
                            part.index, len(out.ack))
                self.metrics.fenced.inc()
                self._drop(part, "lost")
                return False
        part.valid_until = t_sent + c.lease_ttl - self._margin
        for _dl, reason in out.dead:
            self.metrics.dead(reason)
        return True

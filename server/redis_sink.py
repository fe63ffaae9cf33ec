"""Publish the sidecar's findings to a Redis stream: the workers' output format, from the websocket path.

:class:`RedisFindingsSink` is an :class:`~.sinks.AuditSink`: the sidecar's :class:`~.sinks.AuditWriter`
calls ``write`` with batches of :class:`~.sinks.AuditRecord` in its own thread (never on the event
loop), and each finding of each warning record becomes one ``XADD`` (one pipeline per batch) with
the same two fields as a worker's output entry: ``id`` (deterministic) and ``data`` (JSON of the
CLI's jsonl fields plus ``stream_id``, ``seq``, ``carry``, ``from_seq``, ``id``; ``file`` is
``"websocket"`` and ``entry_id`` is null). So one consumer reads the findings of the websocket
sidecars and of the Redis workers from one stream.

It is as reliable as the audit path it rides on: the AuditWriter's queue is bounded and drops
(and counts) records when full, and a batch that Redis refuses twice is logged and lost. Use the
Redis workers when every message must be accounted for.

Wiring (``compliance serve --publish-redis URL --publish-stream NAME``)::

    sink = with_redis_publisher(audit_sink, url, stream)   # audit log and Redis, in that order
    app = App(config, audit_sink=sink)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
import redis

from livestream_compliance.findings import Finding

from .sinks import AuditRecord, AuditSink, NullAuditSink

log = logging.getLogger("livestream_compliance.server")

__all__ = ["FanOutSink", "RedisFindingsSink", "with_redis_publisher"]


class _Span(NamedTuple):
    rule_id: str
    start: int
    end: int


def sidecar_finding_id(record: AuditRecord, finding: dict[str, Any]) -> str:
    """Deterministic id of a sidecar finding: stream, source, speaker, seq (+ rule and span)."""
    ctx = f"ws/{record.stream_id}/{record.source}/{record.speaker or ''}/{record.seq}"
    # Finding.fingerprint only reads rule_id/start/end: one definition of the id for workers and sidecar
    return Finding.fingerprint(_Span(finding["rule_id"], finding["start"], finding["end"]), ctx)  # type: ignore[arg-type]


def sidecar_record(record: AuditRecord, finding: dict[str, Any]) -> dict[str, Any]:
    """The output ``data`` of one sidecar finding (the shape of a worker's finding)."""
    d: dict[str, Any] = {"file": "websocket", "line": 1, "start": finding["start"], "end": finding["end"]}
    d.update(finding)
    d["column"] = finding["start"] + 1
    start_ms = getattr(record, "start_ms", None)
    if start_ms is not None:  # as the CLI's timestamp of a timed cue
        d["timestamp"] = start_ms
        d["timestamp_end"] = getattr(record, "end_ms", None)
    if record.source == "chat":
        if record.speaker is not None:
            d["user"] = record.speaker
    else:
        d["speaker"] = record.speaker
    d.setdefault("carry", 0)
    d.setdefault("from_seq", None)
    d["stream_id"] = record.stream_id
    d["entry_id"] = None
    d["seq"] = record.seq
    d["id"] = sidecar_finding_id(record, finding)
    return d


class RedisFindingsSink:
    """An AuditSink that XADDs every finding of the sidecar's warning records to ``stream``."""

    def __init__(
        self,
        target: str | redis.Redis,
        stream: str,
        *,
        maxlen: int | None = None,
        include_scripts: bool = False,
    ) -> None:
        self.r = redis.Redis.from_url(target, protocol=2, socket_timeout=10, socket_connect_timeout=5) \
            if isinstance(target, str) else target
        self.stream = stream
        self.maxlen = maxlen
        #: also publish the findings of blocked script lines (kind "script")
        self.include_scripts = include_scripts
        self.published = 0

    def write(self, records: Sequence[AuditRecord]) -> None:
        rows = [
            (sidecar_finding_id(rec, f), orjson.dumps(sidecar_record(rec, f)))
            for rec in records
            if rec.kind == "warning" or self.include_scripts
            for f in rec.findings
        ]
        if not rows:
            return
        for attempt in (1, 2):
            try:
                pipe = self.r.pipeline(transaction=False)
                for fid, data in rows:
                    pipe.xadd(self.stream, {"id": fid, "data": data}, maxlen=self.maxlen, approximate=True)
                pipe.execute()
                self.published += len(rows)
                return
            except (redis.ConnectionError, redis.TimeoutError):
                if attempt == 2:
                    raise  # the AuditWriter logs it and counts compliance_audit_errors
                log.warning("redis publisher: connection lost, retrying once")

    def close(self) -> None:
        self.r.close()


class FanOutSink:
    """Several sinks as one: each write goes to every sink in order; one failing does not stop the others."""

    def __init__(self, *sinks: AuditSink) -> None:
        self.sinks = [s for s in sinks if not isinstance(s, NullAuditSink)]

    def write(self, records: Sequence[AuditRecord]) -> None:
        errors: list[Exception] = []
        for s in self.sinks:
            try:
                s.write(records)
            except Exception as exc:  # noqa: BLE001 - reported below, after the other sinks had their turn
                errors.append(exc)
        if errors:
            raise errors[0]

    def close(self) -> None:
        for s in self.sinks:
            try:
                s.close()
            except Exception:  # noqa: BLE001
                log.exception("sink %r failed to close", s)


def with_redis_publisher(sink: AuditSink, url: str | None, stream: str | None) -> AuditSink:
    """``sink`` plus a :class:`RedisFindingsSink` on ``url``/``stream`` (``sink`` alone when url is None)."""
    if not url:
        return sink
    return FanOutSink(sink, RedisFindingsSink(url, stream or "compliance:findings"))

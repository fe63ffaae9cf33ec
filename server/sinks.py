"""Where warnings go besides the websocket: the audit-sink hook, written to off the event loop.

:class:`AuditSink` is what an audit log (the SQLite one in ``audit.py``, or anything else)
implements. The server never calls it on the event loop: :class:`AuditWriter` queues records
(bounded; when full, records are dropped and counted in ``compliance_audit_dropped_total``) and
hands them over in batches to ``sink.write`` in one dedicated worker thread, so the sink sees
records in order and need not be thread-safe. On shutdown the queue is drained, then
``sink.close()`` runs in the same thread.

``compliance serve`` looks for ``livestream_compliance_server.audit.open_sink(config)``
(returning an AuditSink) and falls back to :class:`NullAuditSink` when there is no such module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from .metrics import Metrics

log = logging.getLogger("livestream_compliance.server")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One warning (or one blocked script line) as the audit log stores it."""

    #: "warning" for transcript/chat findings, "script" for a script verdict of block
    kind: Literal["warning", "script"]
    #: Unix time the server received the message
    received_at: float
    stream_id: str | None
    source: str  # host / chat
    seq: int
    #: the transcript's speaker or the chat line's user
    speaker: str | None
    #: the message's text as received (for a carried finding, the earlier part is in finding.text)
    text: str
    #: the findings as sent on the wire (Finding.to_dict() + carry/from_seq)
    findings: tuple[dict[str, Any], ...]
    #: version of the rule set that produced them
    rule_version: str
    final: bool = True
    #: the transcript's position in the stream (milliseconds), when the client sent it
    start_ms: int | None = None
    end_ms: int | None = None


@runtime_checkable
class AuditSink(Protocol):
    def write(self, records: Sequence[AuditRecord]) -> None:
        """Store records; called in a worker thread, never on the event loop, one call at a time."""

    def close(self) -> None:
        """Flush and release; called once, after the last write, in the same worker thread."""


class NullAuditSink:
    """The default: keeps nothing."""

    def write(self, records: Sequence[AuditRecord]) -> None:
        pass

    def close(self) -> None:
        pass


class AuditWriter:
    """Bounded queue + one worker thread between the event loop and an :class:`AuditSink`."""

    BATCH = 512

    def __init__(self, sink: AuditSink, metrics: Metrics, *, maxsize: int = 10_000) -> None:
        self.sink = sink
        self.metrics = metrics
        self._queue: asyncio.Queue[AuditRecord | None] = asyncio.Queue(maxsize)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="audit-writer")

    def submit(self, record: AuditRecord) -> None:
        """Queue one record (never blocks; drops and counts when the queue is full)."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.metrics.audit_dropped.inc()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        q = self._queue
        done = False
        while not done:
            first = await q.get()
            batch: list[AuditRecord] = []
            if first is None:
                done = True
            else:
                batch.append(first)
            while not done and len(batch) < self.BATCH and not q.empty():
                item = q.get_nowait()
                if item is None:
                    done = True
                else:
                    batch.append(item)
            if batch:
                try:
                    await loop.run_in_executor(self._executor, self.sink.write, batch)
                except Exception:
                    self.metrics.audit_errors.inc()
                    log.exception("audit sink failed to write %d record(s)", len(batch))

    async def close(self) -> None:
        """Write everything queued so far, then close the sink."""
        loop = asyncio.get_running_loop()
        if self._task is not None:
            await self._queue.put(None)  # waits for room when the queue is full
            await self._task
            self._task = None
        try:
            await loop.run_in_executor(self._executor, self.sink.close)
        except Exception:
            log.exception("audit sink failed to close")
        self._executor.shutdown(wait=True)

"""Every Prometheus metric of the server, built on an injected ``CollectorRegistry``.

Label values are bounded: sources (host/chat/script), rule categories and severities (from the
loaded rules), error codes (protocol.ERROR_CODES), reload results and triggers, drop reasons.
Never a stream id, a user id or a text.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from livestream_compliance import __version__
from livestream_compliance.findings import Finding
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: check latency: a clean chat line costs a few microseconds, a hit with jieba tens
CHECK_BUCKETS = (
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)
#: from a message's arrival (or the client's sent_at) to its warning frame being written
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
RELOAD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class BatchedCounter:
    """A counter child's per-message increments, kept in a plain int and added to it on :meth:`flush`.

    The per-message path takes no lock (prometheus-client locks every ``inc``); the registry flushes
    before every collection (see :class:`_FlushFirst`), so a scrape sees every increment.
    """

    __slots__ = ("child", "n")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.n = 0

    def inc(self) -> None:
        self.n += 1

    def flush(self) -> None:
        n = self.n
        if n:
            self.n = 0
            self.child.inc(n)


class BatchedHistogram:
    """A histogram child's observations, kept as plain bucket counts and a sum, added to it on :meth:`flush`.

    The same buckets as the child (``le`` is inclusive, as in prometheus-client). Falls back to the
    child's own ``observe`` if its internals (per-bucket values, sum) are not the expected ones.
    """

    __slots__ = ("child", "bounds", "counts", "sum", "observe")

    def __init__(self, child: Any) -> None:
        self.child = child
        upper = getattr(child, "_upper_bounds", None)
        ok = (
            upper is not None
            and len(getattr(child, "_buckets", ())) == len(upper)
            and hasattr(getattr(child, "_sum", None), "inc")
            and upper[-1] == float("inf")
        )
        self.bounds: tuple[float, ...] = tuple(upper[:-1]) if ok else ()
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.observe = self._observe if ok else child.observe

    def _observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def flush(self) -> None:
        counts = self.counts
        if not self.bounds or not any(counts):
            return
        total = self.sum
        self.counts = [0] * len(counts)
        self.sum = 0.0
        buckets = self.child._buckets
        for i, c in enumerate(counts):
            if c:
                buckets[i].inc(c)
        self.child._sum.inc(total)


class _FlushFirst:
    """Registered before the metrics: the registry collects it first, and it flushes the batched children."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> list[Any]:
        self.metrics.flush()
        return []


class Metrics:
    """The server's metrics. ``registry`` is injected so tests (and embedders) get their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._batched: list[BatchedCounter | BatchedHistogram] = []
        r.register(_FlushFirst(self))  # before the metrics it flushes: collected first
        self.messages = Counter(
            "compliance_messages_checked", "Texts checked, by source (host, chat, script).", ["source"], registry=r
        )
        self.findings = Counter(
            "compliance_findings",
            "Findings reported, by rule category and severity.",
            ["category", "severity"],
            registry=r,
        )
        self.warnings = Counter("compliance_warnings_sent", "Warning frames sent, by source.", ["source"], registry=r)
        self.verdicts = Counter("compliance_script_verdicts", "Script verdicts, by verdict.", ["verdict"], registry=r)
        self.check_seconds = Histogram(
            "compliance_check_seconds",
            "Time to check one text (session join and checker).",
            ["source"],
            buckets=CHECK_BUCKETS,
            registry=r,
        )
        self.warning_latency = Histogram(
            "compliance_warning_latency_seconds",
            "From a message's arrival at the server to its warning frame being written.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.send_to_warning = Histogram(
            "compliance_send_to_warning_seconds",
            "From the client's sent_at to the warning frame being written (only messages that carry sent_at).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.connections = Gauge("compliance_open_connections", "Open websocket connections.", registry=r)
        self.subscriptions = Gauge("compliance_subscriptions", "Open overlay subscriptions.", registry=r)
        self.streams = Gauge("compliance_active_streams", "Streams with session state in memory.", registry=r)
        self.streams_evicted = Counter(
            "compliance_streams_evicted", "Stream sessions dropped (idle or over the limit).", registry=r
        )
        self.rule_info = Gauge(
            "compliance_rules_info", "The rule set being served (value 1), by version.", ["version"], registry=r
        )
        self.rules_loaded = Gauge("compliance_rules_loaded", "Rules in the rule set being served.", registry=r)
        self.rules_loaded_at = Gauge(
            "compliance_rules_loaded_timestamp_seconds",
            "Unix time the rule set being served was swapped in.",
            registry=r,
        )
        self.reloads = Counter(
            "compliance_reloads",
            "Rule reloads, by result (ok, error) and trigger (signal, http, api).",
            ["result", "trigger"],
            registry=r,
        )
        self.reload_seconds = Histogram(
            "compliance_reload_seconds", "Time to load and build a rule set.", buckets=RELOAD_BUCKETS, registry=r
        )
        self.errors = Counter(
            "compliance_errors", "Error frames sent and internal errors, by kind.", ["kind"], registry=r
        )
        self.dropped = Counter(
            "compliance_dropped_frames",
            "Frames dropped for a slow subscriber (oldest first), by reason.",
            ["reason"],
            registry=r,
        )
        self.audit_dropped = Counter(
            "compliance_audit_dropped", "Audit records dropped because the audit queue was full.", registry=r
        )
        self.audit_errors = Counter("compliance_audit_errors", "Audit sink write failures.", registry=r)
        self.build_info = Gauge("compliance_build_info", "Version of the server (value 1).", ["version"], registry=r)
        self.build_info.labels(__version__).set(1)
        self.draining = Gauge("compliance_draining", "1 while the server is shutting down.", registry=r)

        # children bound once: the per-message path does no label lookups; the two per-message metrics
        # are batched (no lock per message) and flushed into their children before every collection
        self.messages_by_source = {s: BatchedCounter(self.messages.labels(s)) for s in ("host", "chat", "script")}
        self.check_by_source = {s: BatchedHistogram(self.check_seconds.labels(s)) for s in ("host", "chat", "script")}
        self._batched += [*self.messages_by_source.values(), *self.check_by_source.values()]
        self.warnings_by_source = {s: self.warnings.labels(s) for s in ("host", "chat")}
        self.slow_subscriber_drops = self.dropped.labels("slow_subscriber")
        self._finding_children: dict[tuple[str, str], object] = {}
        self._error_children: dict[str, object] = {}

    # ------------------------------------------------------------------ helpers
    def count_findings(self, findings: list[Finding] | tuple[Finding, ...]) -> None:
        children = self._finding_children
        for f in findings:
            key = (f.category, f.severity.label)
            child = children.get(key)
            if child is None:
                child = children[key] = self.findings.labels(*key)
            child.inc()  # type: ignore[attr-defined]

    def error(self, kind: str) -> None:
        child = self._error_children.get(kind)
        if child is None:
            child = self._error_children[kind] = self.errors.labels(kind)
        child.inc()  # type: ignore[attr-defined]

    def set_rules(self, version: str, count: int) -> None:
        self.rule_info.clear()
        self.rule_info.labels(version).set(1)
        self.rules_loaded.set(count)
        self.rules_loaded_at.set(time.time())

    def flush(self) -> None:
        """Add the batched per-message counts to the prometheus children (the registry does it on collect)."""
        for b in self._batched:
            b.flush()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

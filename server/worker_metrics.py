"""Prometheus metrics of a Redis stream worker (``compliance worker``), on an injected registry.

Served by :func:`serve_metrics` on ``127.0.0.1:PORT`` (prometheus-client's own HTTP server, in a
daemon thread). Label values are bounded: sources (host/chat), rule categories and severities,
dead-letter reasons (:data:`DEAD_LETTER_REASONS`), lease events. Never a stream id, a user id,
a partition key or a text. Gauges about the input (lag, pending, partitions) cover only the
partitions this worker owns, so summing them over all workers gives the pool's totals.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from livestream_compliance import __version__
from livestream_compliance.findings import Finding

#: every ``reason`` a dead-lettered entry can carry (also the values of the metric's label)
DEAD_LETTER_REASONS: tuple[str, ...] = (
    "missing_data",          # the entry has no ``data`` field
    "invalid_utf8",          # ``data`` is not UTF-8
    "bad_json",              # ``data`` is not JSON
    "bad_message",           # not a valid protocol message (a missing or wrongly typed field, ...)
    "unknown_type",          # a ``type`` the protocol does not know
    "unsupported_type",      # a protocol message that is not transcript/chat/batch (hello, script, ...)
    "missing_stream_id",     # no stream_id in the message
    "bad_input",             # the checker refused a text (too long, ...)
    "too_many_deliveries",   # delivered more than --max-deliveries times (it keeps killing workers)
    "internal",              # a bug: logged with a traceback
)

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class WorkerMetrics:
    """The worker's metrics. ``registry`` is injected so tests (and embedders) get their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.processed = Counter(
            "compliance_worker_entries_processed",
            "Input entries acknowledged after their findings were written (dead-lettered ones excluded).",
            registry=r,
        )
        self.messages = Counter(
            "compliance_worker_messages_checked", "Texts checked (a batch entry has several), by source.", ["source"],
            registry=r,
        )
        self.findings = Counter(
            "compliance_worker_findings", "Findings written to the output stream, by rule category and severity.",
            ["category", "severity"], registry=r,
        )
        self.reclaimed = Counter(
            "compliance_worker_entries_reclaimed",
            "Entries taken over (XAUTOCLAIM) from a dead, stuck or departed consumer.", registry=r,
        )
        self.dead_lettered = Counter(
            "compliance_worker_entries_dead_lettered", "Entries moved to the dead-letter stream, by reason.", ["reason"],
            registry=r,
        )
        self.replayed = Counter(
            "compliance_worker_entries_replayed",
            "Acknowledged entries re-checked (findings discarded) to rebuild the windows of a partition taken over.",
            registry=r,
        )
        self.lag = Gauge(
            "compliance_worker_consumer_lag",
            "Entries in the owned partitions not yet delivered to the group (XINFO GROUPS lag).", registry=r,
        )
        self.pending = Gauge(
            "compliance_worker_pending", "Entries delivered but not yet acknowledged in the owned partitions.", registry=r,
        )
        self.partitions = Gauge("compliance_worker_partitions_owned", "Input partitions this worker holds the lease of.", registry=r)
        self.leases = Counter(
            "compliance_worker_lease_events",
            "Partition leases acquired, released (rebalance, shutdown) and lost (expired, fenced).", ["event"], registry=r,
        )
        self.fenced = Counter(
            "compliance_worker_commits_fenced",
            "Batches not committed because the partition's lease had passed to another worker.", registry=r,
        )
        self.redis_errors = Counter("compliance_worker_redis_errors", "Redis connection errors (then retried).", registry=r)
        self.batch_seconds = Histogram(
            "compliance_worker_batch_seconds", "Time to check one partition's batch and commit it.",
            buckets=BATCH_BUCKETS, registry=r,
        )
        self.build_info = Gauge("compliance_worker_build_info", "Version of the worker (value 1).", ["version"], registry=r)
        self.build_info.labels(__version__).set(1)
        self.rule_info = Gauge("compliance_worker_rules_info", "The rule set in use (value 1), by version.", ["version"], registry=r)

        self.messages_by_source = {s: self.messages.labels(s) for s in ("host", "chat")}
        self.dead_by_reason = {reason: self.dead_lettered.labels(reason) for reason in DEAD_LETTER_REASONS}
        self.lease_by_event = {e: self.leases.labels(e) for e in ("acquired", "released", "lost")}
        self._finding_children: dict[tuple[str, str], object] = {}

    def count_findings(self, findings: Iterable[Finding]) -> None:
        children = self._finding_children
        for f in findings:
            key = (f.category, f.severity.label)
            child = children.get(key)
            if child is None:
                child = children[key] = self.findings.labels(*key)
            child.inc()  # type: ignore[attr-defined]

    def dead(self, reason: str) -> None:
        self.dead_by_reason.get(reason, self.dead_by_reason["internal"]).inc()


def serve_metrics(metrics: WorkerMetrics, port: int, host: str = "127.0.0.1") -> int:
    """Serve ``/metrics`` on ``host:port`` in a daemon thread; returns the bound port (``0`` picks one)."""
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    return int(server.server_port)

"""The SQLite audit log: every warning the sidecar sends (and every blocked script line).

``compliance serve`` calls :func:`open_sink` when the audit log is on (the default); the file is
``config.audit_path`` or ``<data_dir>/audit.sqlite3``. The server's :class:`~.sinks.AuditWriter`
calls :meth:`SqliteAuditSink.write` from its one worker thread with batches of records (never on
the event loop); each batch is one transaction. The database is in WAL mode, so
``compliance report`` (or ``sqlite3``) can read it while the server writes.

Schema (``PRAGMA user_version = 1``):

* ``events``: one row per warning frame (``kind = 'warning'``) or blocked script line
  (``kind = 'script'``): stream, Unix time received, source, seq, speaker, text, final, position
  in the stream, the rule-set version;
* ``findings``: one row per finding of an event: rule id, category, severity, span (``start``,
  ``end`` into the event's text; ``carry``/``from_seq`` for a term split over messages), the
  matched text, rule message, suggestion, legal basis (JSON) and the rule's own version.

    SELECT e.stream_id, e.received_at, f.rule_id, f.severity
      FROM findings f JOIN events e ON e.id = f.event_id WHERE e.stream_id = 'room-8812';
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livestream_compliance.errors import UsageError

from .sinks import AuditRecord

log = logging.getLogger("livestream_compliance.server.audit")

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL,              -- 'warning' | 'script'
    stream_id    TEXT,
    received_at  REAL    NOT NULL,              -- Unix time (seconds)
    source       TEXT    NOT NULL,              -- 'host' | 'chat'
    seq          INTEGER NOT NULL,
    speaker      TEXT,
    text         TEXT    NOT NULL,
    final        INTEGER NOT NULL DEFAULT 1,
    start_ms     INTEGER,
    end_ms       INTEGER,
    rule_version TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_stream_time ON events (stream_id, received_at);
CREATE TABLE IF NOT EXISTS findings (
    id           INTEGER PRIMARY KEY,
    event_id     INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    rule_id      TEXT    NOT NULL,
    category     TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    start        INTEGER NOT NULL,
    "end"        INTEGER NOT NULL,
    matched_text TEXT    NOT NULL,              -- the whole match (across messages when carry > 0)
    carry        INTEGER NOT NULL DEFAULT 0,
    from_seq     INTEGER,
    message      TEXT,
    suggestion   TEXT,
    legal_basis  TEXT,                          -- JSON list
    rule_version TEXT                           -- <pack>@<pack version>#<rule set version>
);
CREATE INDEX IF NOT EXISTS findings_event ON findings (event_id);
"""

_INSERT_EVENT = (
    "INSERT INTO events (kind, stream_id, received_at, source, seq, speaker, text, final, start_ms, end_ms,"
    " rule_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_FINDING = (
    'INSERT INTO findings (event_id, rule_id, category, severity, start, "end", matched_text, carry, from_seq,'
    " message, suggestion, legal_basis, rule_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def connect(path: str | Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection to the audit log at ``path`` in WAL mode, with the schema in place."""
    p = Path(path)
    if create:
        p.parent.mkdir(parents=True, exist_ok=True)
    # the sink is used by one thread at a time (AuditWriter's worker), but opened on the caller's
    conn = sqlite3.connect(str(p), timeout=10.0, check_same_thread=False, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("audit log %s: journal mode is %s, not wal", p, mode)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UsageError(f"audit log {p} has schema version {version}; this version knows {SCHEMA_VERSION}")
        conn.executescript("BEGIN;" + SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;")
    except BaseException:
        conn.close()
        raise
    return conn


def _event_row(r: AuditRecord) -> tuple[Any, ...]:
    return (
        r.kind,
        r.stream_id,
        r.received_at,
        r.source,
        r.seq,
        r.speaker,
        r.text,
        1 if r.final else 0,
        r.start_ms,
        r.end_ms,
        r.rule_version,
    )


def _finding_row(event_id: int, f: dict[str, Any]) -> tuple[Any, ...]:
    return (
        event_id,
        f.get("rule_id", ""),
        f.get("category", ""),
        f.get("severity", ""),
        int(f.get("start", 0)),
        int(f.get("end", 0)),
        f.get("text", ""),
        int(f.get("carry") or 0),
        f.get("from_seq"),
        f.get("message"),
        f.get("suggestion"),
        json.dumps(list(f.get("legal_basis") or []), ensure_ascii=False),
        f.get("rule_version"),
    )


class SqliteAuditSink:
    """An :class:`~.sinks.AuditSink` writing to SQLite; one transaction per batch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = connect(self.path)
        self._lock = threading.Lock()  # the writer never overlaps calls; this keeps direct users safe too
        self.written = 0

    def write(self, records: Sequence[AuditRecord]) -> None:
        if not records:
            return
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError("audit sink is closed")
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                rows: list[tuple[Any, ...]] = []
                for r in records:
                    cur.execute(_INSERT_EVENT, _event_row(r))
                    event_id = cur.lastrowid
                    assert event_id is not None
                    rows.extend(_finding_row(event_id, f) for f in r.findings)
                if rows:
                    cur.executemany(_INSERT_FINDING, rows)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self.written += len(records)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.execute("PRAGMA optimize")
                finally:
                    conn.close()  # the last connection checkpoints the WAL into the main file


def open_sink(config: Any) -> SqliteAuditSink:
    """The audit sink for a :class:`~.config.ServerConfig` (``config.resolved_audit_path()``)."""
    path = config.resolved_audit_path()
    if path is None:
        raise UsageError("the audit log is disabled (audit = false)")
    try:
        return SqliteAuditSink(path)
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"cannot open the audit log {path}: {exc}") from None

"""``compliance report --stream ID``: a post-stream summary from the sidecar's audit log.

Reads the SQLite audit log that ``compliance serve`` writes (default: the same path the server
uses, ``DATA_DIR/audit.sqlite3``; ``--db`` for another) and summarises one stream's warnings:
totals, counts by severity, category, rule and source, and a per-minute timeline. ``--format
text`` (default) is for the terminal, ``csv`` is one long table (``section,name,category,severity,
count``) for spreadsheets, ``html`` a self-contained page (inline CSS and SVG chart, no external
assets) with the warnings listed and the offending words highlighted. Without ``--stream`` it
lists the streams in the log.

Exit codes: 0 on success, 2 when the log is missing or unreadable or the stream has no records.
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import math
import os
import sqlite3
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import EXIT_OK

SEVERITIES = ("critical", "high", "warning", "info")  # most severe first
SEVERITY_COLORS = {"critical": "#e11d48", "high": "#f97316", "warning": "#eab308", "info": "#3b82f6"}
SOURCE_LABELS = {"host": "host speech", "chat": "viewer chat"}
#: the HTML page lists at most this many warnings (the most recent ones)
HTML_MAX_WARNINGS = 1000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="summarise a stream's warnings from the sidecar's audit log",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    p.add_argument("--stream", metavar="ID", help="the stream id (without it: list the streams in the log)")
    p.add_argument("--db", metavar="PATH", help="the audit log (default: where `compliance serve` writes it)")
    p.add_argument("--config", metavar="FILE", help="the server's config file, to find its audit log")
    p.add_argument("--format", choices=("text", "csv", "html"), default="text")
    p.add_argument("--out", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--utc", action="store_true", help="show times in UTC (default: local time)")
    p.set_defaults(run=run)


# ------------------------------------------------------------------------------------ data
@dataclass
class Item:
    """One finding of one warning, for the warnings list."""

    at: float
    source: str
    seq: int
    speaker: str | None
    text: str
    rule_id: str
    category: str
    severity: str
    start: int
    end: int
    carry: int
    matched: str
    message: str
    suggestion: str


@dataclass
class Report:
    stream_id: str
    db: str
    first: float
    last: float
    warnings: int = 0
    findings: int = 0
    script_blocked: int = 0
    rule_versions: list[str] = field(default_factory=list)
    by_severity: list[tuple[str, int]] = field(default_factory=list)
    by_category: list[tuple[str, int]] = field(default_factory=list)
    #: (rule_id, category, severity, count, message, suggestion), most frequent first
    by_rule: list[tuple[str, str, str, int, str, str]] = field(default_factory=list)
    by_source: list[tuple[str, int]] = field(default_factory=list)
    #: (minute start as Unix time, {severity: findings}), every minute from the first to the last
    timeline: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)


def default_db(config_file: str | None) -> Path:
    """Where ``compliance serve`` (same environment, same config file) keeps its audit log."""
    from livestream_compliance_server.config import ENV_PREFIX, ServerConfig, from_env, from_file

    values: dict[str, Any] = {}
    path = config_file or os.environ.get(ENV_PREFIX + "CONFIG")
    if path:
        values.update(from_file(path))
    values.update(from_env(os.environ))
    config = ServerConfig(**values)
    config.audit = True  # report on the file even if the server was told to keep none
    resolved = config.resolved_audit_path()
    assert resolved is not None
    return resolved


def open_db(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise UsageError(f"no audit log at {path} (compliance serve writes one; pass --db PATH)")
    uri = path.resolve().as_uri()
    try:
        try:
            # read-write (never creating) so that closing the last connection tidies up the WAL files;
            # read-only where the file or its directory is not writable
            conn = sqlite3.connect(f"{uri}?mode=rw", uri=True, timeout=10.0)
            conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.OperationalError:
            conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=10.0)
        conn.execute("PRAGMA query_only = ON")
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read the audit log {path}: {exc}") from None
    if not {"events", "findings"} <= names:
        conn.close()
        raise UsageError(f"{path} is not an audit log of compliance serve (no events/findings tables)")
    return conn


def _severity_key(sev: str) -> int:
    return SEVERITIES.index(sev) if sev in SEVERITIES else len(SEVERITIES)


def build_report(conn: sqlite3.Connection, stream_id: str, db: str) -> Report:
    row = conn.execute(
        "SELECT min(received_at), max(received_at), sum(kind = 'warning'), sum(kind = 'script')"
        " FROM events WHERE stream_id = ?",
        (stream_id,),
    ).fetchone()
    if row is None or row[0] is None:
        raise UsageError(f"no records for stream {stream_id!r} in {db}")
    rep = Report(stream_id, db, float(row[0]), float(row[1]), int(row[2] or 0), script_blocked=int(row[3] or 0))
    rep.rule_versions = [
        r[0]
        for r in conn.execute(
            "SELECT rule_version FROM events WHERE stream_id = ? GROUP BY rule_version ORDER BY min(received_at)",
            (stream_id,),
        )
    ]
    rows = conn.execute(
        "SELECT e.received_at, e.source, e.seq, e.speaker, e.text, f.rule_id, f.category, f.severity,"
        " f.start, f.\"end\", f.carry, f.matched_text, coalesce(f.message, ''), coalesce(f.suggestion, '')"
        " FROM findings f JOIN events e ON e.id = f.event_id"
        " WHERE e.stream_id = ? AND e.kind = 'warning' ORDER BY e.received_at, e.id, f.id",
        (stream_id,),
    ).fetchall()
    rep.items = [Item(*r) for r in rows]
    rep.findings = len(rep.items)
    sev = Counter(i.severity for i in rep.items)
    rep.by_severity = sorted(sev.items(), key=lambda kv: _severity_key(kv[0]))
    cat = Counter(i.category for i in rep.items)
    rep.by_category = sorted(cat.items(), key=lambda kv: (-kv[1], kv[0]))
    rules: dict[str, list[Any]] = {}
    for i in rep.items:  # the latest message/suggestion wins (rules may be edited between reloads)
        entry = rules.setdefault(i.rule_id, [i.rule_id, i.category, i.severity, 0, i.message, i.suggestion])
        entry[1:3] = [i.category, i.severity]
        entry[3] += 1
        entry[4:6] = [i.message, i.suggestion]
    rep.by_rule = sorted((tuple(v) for v in rules.values()), key=lambda r: (-r[3], r[0]))  # type: ignore[misc]
    src = Counter(i.source for i in rep.items)
    rep.by_source = sorted(src.items(), key=lambda kv: (-kv[1], kv[0]))
    if rep.items:
        first_min = int(rep.items[0].at // 60) * 60
        last_min = int(rep.items[-1].at // 60) * 60
        minutes: dict[int, dict[str, int]] = {m: {} for m in range(first_min, last_min + 60, 60)}
        for i in rep.items:
            bucket = minutes[int(i.at // 60) * 60]
            bucket[i.severity] = bucket.get(i.severity, 0) + 1
        rep.timeline = sorted(minutes.items())
    return rep


def list_streams(conn: sqlite3.Connection) -> list[tuple[str, int, int, float, float]]:
    return [
        (r[0], int(r[1]), int(r[2]), float(r[3]), float(r[4]))
        for r in conn.execute(
            "SELECT e.stream_id, count(DISTINCT CASE WHEN e.kind = 'warning' THEN e.id END), count(f.id),"
            " min(e.received_at), max(e.received_at)"
            " FROM events e LEFT JOIN findings f ON f.event_id = e.id AND e.kind = 'warning'"
            " WHERE e.stream_id IS NOT NULL GROUP BY e.stream_id ORDER BY min(e.received_at)"
        )
    ]


# ------------------------------------------------------------------------------------ formatting
class Clock:
    def __init__(self, utc: bool) -> None:
        self.tz = UTC if utc else None

    def dt(self, t: float) -> datetime:
        return datetime.fromtimestamp(t, self.tz) if self.tz else datetime.fromtimestamp(t).astimezone()

    def full(self, t: float) -> str:
        return self.dt(t).strftime("%Y-%m-%d %H:%M:%S")

    def minute(self, t: float, with_date: bool) -> str:
        return self.dt(t).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")

    def iso(self, t: float) -> str:
        return self.dt(t).isoformat(timespec="seconds")

    def zone(self, t: float) -> str:
        if self.tz is not None:
            return "UTC"
        z = self.dt(t).strftime("%z")  # +0800
        return f"UTC{z[:3]}:{z[3:]}"


def _duration(rep: Report) -> str:
    secs = round(rep.last - rep.first)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _multi_day(rep: Report, clock: Clock) -> bool:
    return clock.dt(rep.first).date() != clock.dt(rep.last).date()


def _sources(rep: Report) -> str:
    return ", ".join(f"{s} {n}" for s, n in rep.by_source) or "none"


def format_text(rep: Report, clock: Clock) -> str:
    out = io.StringIO()
    w = out.write
    w(f"Stream {rep.stream_id}  (audit log {rep.db})\n")
    w(
        f"  {clock.full(rep.first)} .. {clock.full(rep.last)} ({clock.zone(rep.first)}), {_duration(rep)}\n"
        f"  rule sets: {', '.join(rep.rule_versions)}\n"
        f"  warnings {rep.warnings}, findings {rep.findings} ({_sources(rep)}), "
        f"script lines blocked {rep.script_blocked}\n"
    )
    w("\nBy severity\n")
    for sev, n in rep.by_severity:
        w(f"  {sev:<10} {n:>6}\n")
    w("\nBy category\n")
    width = max((len(c) for c, _ in rep.by_category), default=8)
    for cat, n in rep.by_category:
        w(f"  {cat:<{width}} {n:>6}\n")
    w("\nBy rule\n")
    rw = max((len(r[0]) for r in rep.by_rule), default=4)
    for rule_id, cat, sev, n, message, _sugg in rep.by_rule:
        w(f"  {rule_id:<{rw}} {cat:<{width}} {sev:<8} {n:>6}  {message}\n")
    w("\nTimeline (findings per minute)\n")
    peak = max((sum(b.values()) for _m, b in rep.timeline), default=0)
    with_date = _multi_day(rep, clock)
    for minute, bucket in rep.timeline:
        n = sum(bucket.values())
        bar = "#" * (math.ceil(40 * n / peak) if peak and n else 0)
        w(f"  {clock.minute(minute, with_date)}  {n:>4}  {bar}".rstrip() + "\n")
    if not rep.timeline:
        w("  (no findings)\n")
    return out.getvalue()


CSV_HEADER = ("section", "name", "category", "severity", "count")


def format_csv(rep: Report, clock: Clock) -> str:
    out = io.StringIO()
    wr = csv.writer(out, lineterminator="\n")
    wr.writerow(CSV_HEADER)
    wr.writerow(("total", "warnings", "", "", rep.warnings))
    wr.writerow(("total", "findings", "", "", rep.findings))
    wr.writerow(("total", "script_blocked", "", "", rep.script_blocked))
    for sev, n in rep.by_severity:
        wr.writerow(("severity", sev, "", sev, n))
    for cat, n in rep.by_category:
        wr.writerow(("category", cat, cat, "", n))
    for rule_id, cat, sev, n, _m, _s in rep.by_rule:
        wr.writerow(("rule", rule_id, cat, sev, n))
    for src, n in rep.by_source:
        wr.writerow(("source", src, "", "", n))
    for minute, bucket in rep.timeline:
        wr.writerow(("minute", clock.iso(minute), "", "", sum(bucket.values())))
    return out.getvalue()


def _nice_max(n: int) -> int:
    if n <= 5:
        return max(n, 1)
    mag = 10 ** int(math.log10(n))
    for step in (1, 2, 2.5, 5, 10):
        top = int(math.ceil(n / (step * mag)) * step * mag)
        if top / (step * mag) <= 5:
            return top
    return n  # pragma: no cover


def timeline_svg(rep: Report, clock: Clock) -> str:
    """A stacked bar chart of findings per minute, by severity (inline SVG)."""
    W, H = 960, 280
    left, right, top, bottom = 48, 12, 16, 44
    pw, ph = W - left - right, H - top - bottom
    n = max(len(rep.timeline), 1)
    peak = max((sum(b.values()) for _m, b in rep.timeline), default=0)
    ymax = _nice_max(peak)
    bw = pw / n
    gap = min(2.0, bw * 0.15)
    parts = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" role="img" '
            f'aria-labelledby="chart-title"><title id="chart-title">Findings per minute, stream '
            f"{html.escape(rep.stream_id)}</title>"
        )
    ]
    ticks = min(5, ymax)
    for k in range(ticks + 1):
        v = ymax * k / ticks if ticks else 0
        y = top + ph - ph * (v / ymax if ymax else 0)
        label = f"{v:g}"
        parts.append(
            f'<line x1="{left}" x2="{W - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{label}</text>'
        )
    with_date = _multi_day(rep, clock)
    every = max(1, math.ceil(n / 12))
    for idx, (minute, bucket) in enumerate(rep.timeline):
        x = left + idx * bw
        total = sum(bucket.values())
        y = top + ph
        tip = f"{clock.minute(minute, with_date)}: {total} finding{'s' if total != 1 else ''}"
        detail = ", ".join(f"{s} {bucket[s]}" for s in SEVERITIES if bucket.get(s))
        parts.append(f"<g><title>{html.escape(tip + (' (' + detail + ')' if detail else ''))}</title>")
        for sev in reversed(SEVERITIES):  # info at the bottom, critical on top
            c = bucket.get(sev, 0)
            if not c:
                continue
            h = ph * c / ymax
            y -= h
            parts.append(
                f'<rect x="{x + gap / 2:.1f}" y="{y:.1f}" width="{max(bw - gap, 0.5):.1f}" height="{h:.1f}" '
                f'fill="{SEVERITY_COLORS.get(sev, "#888")}" data-severity="{sev}"/>'
            )
        parts.append("</g>")
        if idx % every == 0:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{top + ph + 18}" class="axis" text-anchor="middle">'
                f"{clock.minute(minute, with_date)}</text>"
            )
    parts.append(
        f'<line x1="{left}" x2="{W - right}" y1="{top + ph}" y2="{top + ph}" class="base"/>'
        f'<text x="{left + pw / 2}" y="{H - 4}" class="axis" text-anchor="middle">'
        f"minute ({clock.zone(rep.first)})</text></svg>"
    )
    return "".join(parts)


def _highlight(item: Item) -> str:
    text = item.text
    s, e = max(0, min(item.start, len(text))), max(0, min(item.end, len(text)))
    carried = ""
    if item.carry and s == 0:
        carried = f'<span class="carried">…{html.escape(item.matched[: item.carry])}</span>'
    return (
        f"{carried}{html.escape(text[:s])}<mark class='sev-{html.escape(item.severity)}'>"
        f"{html.escape(text[s:e])}</mark>{html.escape(text[e:])}"
    )


HTML_STYLE = """
:root { color-scheme: light; --fg: #1f2430; --muted: #6b7280; --line: #e5e7eb; }
* { box-sizing: border-box; }
body { margin: 0; padding: 32px; font: 15px/1.5 "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
  "PingFang SC", "Microsoft YaHei", system-ui, sans-serif; color: var(--fg); background: #fafafa; }
main { max-width: 1040px; margin: 0 auto; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 18px; min-width: 150px; }
.card b { display: block; font-size: 28px; }
.card span { color: var(--muted); }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.sev { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff; font-size: 13px; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
.chart .grid { stroke: #eef0f3; } .chart .base { stroke: #9ca3af; }
.chart .axis { fill: #6b7280; font-size: 12px; }
.legend span { margin-right: 16px; } .legend i { display: inline-block; width: 12px; height: 12px;
  border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
mark { background: #fde68a; padding: 0 1px; border-radius: 2px; }
mark.sev-critical, mark.sev-high { background: #fecaca; } mark.sev-info { background: #dbeafe; }
.carried { color: var(--muted); }
.small { color: var(--muted); font-size: 13px; }
"""


def _sev_badge(sev: str) -> str:
    return f'<span class="sev" style="background:{SEVERITY_COLORS.get(sev, "#888")}">{html.escape(sev)}</span>'


def format_html(rep: Report, clock: Clock) -> str:
    e = html.escape
    sid = e(rep.stream_id)
    p: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Compliance report: {sid}</title><style>{HTML_STYLE}</style></head><body><main>",
        f"<h1>Compliance report: {sid}</h1>",
        (
            f'<p class="meta">{e(clock.full(rep.first))} – {e(clock.full(rep.last))} ({e(clock.zone(rep.first))}), '
            f"{e(_duration(rep))} · rule sets {e(', '.join(rep.rule_versions))} · audit log {e(rep.db)}</p>"
        ),
        '<div class="cards">',
    ]
    cards = [("warnings", rep.warnings), ("findings", rep.findings), ("script lines blocked", rep.script_blocked)]
    cards += [(SOURCE_LABELS.get(s, s), n) for s, n in rep.by_source]
    for label, n in cards:
        p.append(f'<div class="card" data-count="{e(label)}"><b>{n}</b><span>{e(label)}</span></div>')
    p.append("</div>")
    p.append("<h2>Findings per minute</h2>")
    p.append(
        '<p class="legend">'
        + "".join(f'<span><i style="background:{SEVERITY_COLORS[s]}"></i>{s}</span>' for s in reversed(SEVERITIES))
        + "</p>"
    )
    p.append(f'<div class="chart">{timeline_svg(rep, clock)}</div>')
    p.append('<h2>By severity</h2><table id="by-severity"><tr><th>severity</th><th class="n">findings</th></tr>')
    for sev, n in rep.by_severity:
        p.append(f'<tr><td>{_sev_badge(sev)}</td><td class="n">{n}</td></tr>')
    p.append(
        '</table><h2>By category</h2><table id="by-category"><tr><th>category</th><th class="n">findings</th></tr>'
    )
    for cat, n in rep.by_category:
        p.append(f'<tr><td>{e(cat)}</td><td class="n">{n}</td></tr>')
    p.append(
        '</table><h2>By rule</h2><table id="by-rule"><tr><th>rule</th><th>category</th><th>severity</th>'
        '<th class="n">findings</th><th>message</th><th>suggestion</th></tr>'
    )
    for rule_id, cat, sev, n, message, suggestion in rep.by_rule:
        p.append(
            f'<tr><td>{e(rule_id)}</td><td>{e(cat)}</td><td>{_sev_badge(sev)}</td><td class="n">{n}</td>'
            f"<td>{e(message)}</td><td>{e(suggestion)}</td></tr>"
        )
    p.append("</table>")
    items = rep.items[-HTML_MAX_WARNINGS:]
    p.append("<h2>Findings</h2>")
    if len(rep.items) > len(items):
        p.append(f'<p class="small">the last {len(items)} of {len(rep.items)}</p>')
    p.append('<table id="findings"><tr><th>time</th><th>source</th><th>text</th><th>rule</th><th>suggestion</th></tr>')
    for it in items:
        who = e(it.source) + (f'<br><span class="small">{e(it.speaker)}</span>' if it.speaker else "")
        p.append(
            f"<tr><td>{e(clock.full(it.at)[11:])}</td><td>{who}</td><td>{_highlight(it)}</td>"
            f'<td>{_sev_badge(it.severity)} {e(it.rule_id)}<br><span class="small">{e(it.message)}</span></td>'
            f"<td>{e(it.suggestion)}</td></tr>"
        )
    p.append("</table>")
    data = {
        "stream_id": rep.stream_id,
        "warnings": rep.warnings,
        "findings": rep.findings,
        "script_blocked": rep.script_blocked,
        "by_category": dict(rep.by_category),
        "by_rule": {r[0]: r[3] for r in rep.by_rule},
    }
    # machine-readable totals; "</" cannot end the script element early
    blob = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    p.append(f'<script type="application/json" id="report-data">{blob}</script>')
    p.append("</main></body></html>\n")
    return "\n".join(p)


FORMATTERS = {"text": format_text, "csv": format_csv, "html": format_html}


def format_streams(streams: list[tuple[str, int, int, float, float]], clock: Clock, db: str) -> str:
    if not streams:
        return f"no streams in {db}\n"
    width = max(len(s[0]) for s in streams)
    lines = [f"{'stream':<{width}}  {'warnings':>8} {'findings':>8}  first .. last"]
    for sid, warnings, findings, first, last in streams:
        lines.append(f"{sid:<{width}}  {warnings:>8} {findings:>8}  {clock.full(first)} .. {clock.full(last)}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    db = Path(args.db) if args.db else default_db(args.config)
    conn = open_db(db)
    clock = Clock(args.utc)
    try:
        if args.stream is None:
            if args.format != "text":
                raise UsageError("--format csv/html needs --stream ID")
            doc = format_streams(list_streams(conn), clock, str(db))
        else:
            rep = build_report(conn, args.stream, str(db))
            doc = FORMATTERS[args.format](rep, clock)
    except sqlite3.Error as exc:
        raise UsageError(f"cannot read the audit log {db}: {exc}") from None
    finally:
        conn.close()
    if args.out:
        try:
            Path(args.out).write_text(doc, encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    else:
        sys.stdout.write(doc)
    return EXIT_OK

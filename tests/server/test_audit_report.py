"""The SQLite audit log (server/audit.py) and `compliance report`, over real SQLite files.

Warnings sent through a real server on 127.0.0.1 end up in the database (written from the audit
worker thread, WAL mode); `compliance report` summarises a stream as text, CSV and HTML with exact
counts; missing databases and unknown streams exit 2 with one line.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from livestream_compliance.cli import main
from livestream_compliance_server.app import App
from livestream_compliance_server.audit import SqliteAuditSink, open_sink
from livestream_compliance_server.config import ServerConfig
from livestream_compliance_server.sinks import AuditRecord
from websockets.asyncio.client import connect as ws_connect
from wsutil import RULES_DIR, TOKEN, Connect

T0 = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC).timestamp()


class ThreadCheckingSink(SqliteAuditSink):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.threads: set[str] = set()
        self.batches: list[int] = []

    def write(self, records: Sequence[AuditRecord]) -> None:
        self.threads.add(threading.current_thread().name)
        self.batches.append(len(records))
        super().write(records)


def report(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def csv_rows(text: str) -> list[tuple[str, ...]]:
    return [tuple(r) for r in csv.reader(io.StringIO(text))]


# ------------------------------------------------------------------------------------ through the server
async def test_warnings_through_the_server_land_in_sqlite(
    make_app, connect: Connect, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = ServerConfig(data_dir=str(tmp_path / "data"))
    db = tmp_path / "data" / "audit.sqlite3"
    assert open_sink(config).path == db  # the default: DATA_DIR/audit.sqlite3
    sink = ThreadCheckingSink(db)
    app: App = await make_app(sink=sink)
    main_thread = threading.current_thread().name
    client = await connect(app, hello={"stream_id": "room-1", "acks": True})

    host = "家人们，今天全网最低价"
    w = await client.request({"type": "transcript", "seq": 1, "text": host, "start_ms": 1000, "end_ms": 2500})
    assert [f["rule_id"] for f in w["findings"]] == ["T-FAMILY", "T-LOWEST"]
    await client.send({"type": "transcript", "seq": 2, "text": "史上", "final": True})
    assert (await client.recv())["type"] == "ack"
    w = await client.request({"type": "transcript", "seq": 3, "text": "最低价了"})  # carried over two messages
    assert w["findings"][0]["carry"] == 2
    batch = {
        "type": "batch",
        "seq": 100,
        "source": "chat",
        "items": [{"seq": 10 + i, "text": f"加微信{i}", "user": f"u{i}"} for i in range(6)],
    }
    await client.send(batch)
    for _ in range(6):
        assert (await client.recv())["type"] == "warning"
    w = await client.request({"type": "chat", "seq": 20, "text": "主播好", "user": "v"})
    assert w["type"] == "ack"
    assert (await client.request({"type": "script", "seq": 30, "text": "加微信领券"}))["verdict"] == "block"
    other = await client.request({"type": "chat", "stream_id": "room-2", "seq": 40, "text": "加vx", "user": "x"})
    assert other["type"] == "warning"

    # while the server runs, the log is in WAL mode and readable by another connection
    async def wait_rows(n: int) -> None:
        for _ in range(200):
            with closing(sqlite3.connect(db)) as c:
                if c.execute("SELECT count(*) FROM events").fetchone()[0] >= n:
                    return
            await asyncio.sleep(0.02)
        raise AssertionError("audit rows did not arrive")

    await wait_rows(10)
    with closing(sqlite3.connect(db)) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    await app.stop()  # drains the audit queue and closes the sink
    assert sink.threads and all(t.startswith("audit") for t in sink.threads) and main_thread not in sink.threads
    assert sum(sink.batches) == 10
    assert not Path(f"{db}-wal").exists()  # closing checkpointed the WAL into the main file

    with closing(sqlite3.connect(db)) as c:
        c.row_factory = sqlite3.Row
        events = c.execute("SELECT * FROM events ORDER BY id").fetchall()
        findings = c.execute("SELECT * FROM findings ORDER BY id").fetchall()
    assert [(e["kind"], e["stream_id"], e["source"], e["seq"]) for e in events] == [
        ("warning", "room-1", "host", 1),
        ("warning", "room-1", "host", 3),
        *[("warning", "room-1", "chat", 10 + i) for i in range(6)],
        ("script", "room-1", "host", 30),
        ("warning", "room-2", "chat", 40),
    ]
    first = events[0]
    assert (first["text"], first["speaker"], first["start_ms"], first["end_ms"], first["final"]) == (
        host,
        "host",
        1000,
        2500,
        1,
    )
    assert first["rule_version"] == app.rule_version and first["received_at"] > 1.7e9
    f0, f1 = findings[0], findings[1]
    assert (f0["rule_id"], f0["category"], f0["severity"], f0["start"], f0["end"], f0["matched_text"]) == (
        "T-FAMILY",
        "style",
        "info",
        0,
        3,
        "家人们",
    )
    assert (f1["rule_id"], f1["start"], f1["end"]) == ("T-LOWEST", 6, 11)
    assert host[f1["start"] : f1["end"]] == "全网最低价"
    assert f1["rule_version"].endswith("#" + app.rule_version) and json.loads(f1["legal_basis"])
    carried = findings[2]
    assert (carried["matched_text"], carried["carry"], carried["from_seq"], carried["start"]) == ("史上最低价", 2, 2, 0)
    assert len(findings) == 2 + 1 + 6 + 1 + 1

    # the report of stream room-1, in each format, with exact counts
    code, out, err = report(capsys, "--db", str(db), "--stream", "room-1")
    assert (code, err) == (0, "")
    assert "warnings 8, findings 9 (chat 6, host 3), script lines blocked 1" in out
    assert re.search(r"^  diversion\s+6$", out, re.MULTILINE) and re.search(r"^  price_claims\s+2$", out, re.MULTILINE)
    assert re.search(r"^  T-WECHAT\s+diversion\s+warning\s+6  引导站外交易。$", out, re.MULTILINE)
    assert re.search(r"^  T-LOWEST\s+price_claims\s+high\s+2 ", out, re.MULTILINE)
    assert re.search(r"^  T-FAMILY\s+style\s+info\s+1 ", out, re.MULTILINE)
    timeline = re.findall(r"^  \d\d:\d\d\s+(\d+)", out.split("Timeline")[1], re.MULTILINE)
    assert sum(map(int, timeline)) == 9 and 1 <= len(timeline) <= 2  # the test ran within a minute or two

    out_csv = tmp_path / "r.csv"
    code, out, _ = report(capsys, "--db", str(db), "--stream", "room-1", "--format", "csv", "--out", str(out_csv))
    assert (code, out) == (0, "")
    rows = csv_rows(out_csv.read_text(encoding="utf-8"))
    assert rows[0] == ("section", "name", "category", "severity", "count")
    body = [r for r in rows[1:] if r[0] != "minute"]
    assert body == [
        ("total", "warnings", "", "", "8"),
        ("total", "findings", "", "", "9"),
        ("total", "script_blocked", "", "", "1"),
        ("severity", "high", "", "high", "2"),
        ("severity", "warning", "", "warning", "6"),
        ("severity", "info", "", "info", "1"),
        ("category", "diversion", "diversion", "", "6"),
        ("category", "price_claims", "price_claims", "", "2"),
        ("category", "style", "style", "", "1"),
        ("rule", "T-WECHAT", "diversion", "warning", "6"),
        ("rule", "T-LOWEST", "price_claims", "high", "2"),
        ("rule", "T-FAMILY", "style", "info", "1"),
        ("source", "chat", "", "", "6"),
        ("source", "host", "", "", "3"),
    ]
    assert sum(int(r[4]) for r in rows if r[0] == "minute") == 9

    out_html = tmp_path / "r.html"
    code, _, _ = report(capsys, "--db", str(db), "--stream", "room-1", "--format", "html", "--out", str(out_html))
    assert code == 0
    page = out_html.read_text(encoding="utf-8")
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page).group(1))
    assert data == {
        "stream_id": "room-1",
        "warnings": 8,
        "findings": 9,
        "script_blocked": 1,
        "by_category": {"diversion": 6, "price_claims": 2, "style": 1},
        "by_rule": {"T-WECHAT": 6, "T-LOWEST": 2, "T-FAMILY": 1},
    }
    assert "<mark class='sev-high'>全网最低价</mark>" in page and "…史上" in page

    # without --stream: the streams in the log
    code, out, _ = report(capsys, "--db", str(db))
    assert (
        code == 0
        and re.search(r"^room-1\s+8\s+9 ", out, re.MULTILINE)
        and re.search(r"^room-2\s+1\s+1 ", out, re.MULTILINE)
    )


async def test_serve_writes_the_audit_log_report_reads_it(tmp_path: Path) -> None:
    """`compliance serve` (a real process) opens the SQLite log by default; `compliance report` finds it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env.update({"COMPLIANCE_DATA_DIR": str(tmp_path), "COMPLIANCE_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"})
    cmd = [sys.executable, "-m", "livestream_compliance"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, "serve", "--port", "0", "--rules", str(RULES_DIR), "--no-default-rules",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        lines: dict[str, str] = {}
        while "reload" not in lines:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()  # type: ignore[union-attr]
            assert line, "compliance serve exited early"
            if line.startswith("  "):
                lines[line.split()[0]] = line
        assert lines["audit"].split()[-1] == str(tmp_path / "audit.sqlite3")
        url = lines["websocket"].split()[1]
        async with ws_connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            for seq, text in enumerate(["今天全网最低价", "史上最低价了"]):
                await ws.send(json.dumps({"type": "transcript", "stream_id": "live", "seq": seq, "text": text}))
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "warning"
            proc.send_signal(signal.SIGTERM)
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "shutdown"
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    rep = await asyncio.create_subprocess_exec(
        *cmd, "report", "--stream", "live", "--format", "csv", env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(rep.communicate(), 30)
    assert rep.returncode == 0
    rows = csv_rows(out.decode())
    assert ("rule", "T-LOWEST", "price_claims", "high", "2") in rows and ("total", "warnings", "", "", "2") in rows


# ------------------------------------------------------------------------------------ report, fixed times
def _finding(rule_id: str, category: str, severity: str, start: int, end: int, text: str) -> dict[str, object]:
    return {
        "rule_id": rule_id, "category": category, "severity": severity, "source": "host", "start": start,
        "end": end, "text": text, "matched": text, "message": f"{rule_id} message", "suggestion": f"{rule_id} fix",
        "legal_basis": ["法 第一条"], "rule_version": "pack@1#v1", "carry": 0, "from_seq": None,
    }  # fmt: skip


@pytest.fixture
def fixed_db(tmp_path: Path) -> Path:
    db = tmp_path / "fixed.sqlite3"
    sink = SqliteAuditSink(db)
    low = _finding("T-LOWEST", "price_claims", "high", 2, 7, "全网最低价")
    wx = _finding("T-WECHAT", "diversion", "warning", 2, 5, "加微信")
    crit = _finding("T-CURE", "medical", "critical", 0, 2, "治愈")
    sink.write([
        AuditRecord("warning", T0, "room-x", "host", 1, "host", "今天全网最低价", (low,), "v1"),
        AuditRecord("warning", T0 + 20, "room-x", "chat", 2, "u1", "主播加微信<b>", (wx,), "v1"),
        AuditRecord("warning", T0 + 50, "room-x", "host", 3, "host", "治愈全网最低价", (crit, {**low, "start": 2}), "v1"),
    ])  # fmt: skip
    sink.write([
        AuditRecord("warning", T0 + 185, "room-x", "chat", 4, "u2", "快加微信", ({**wx, "start": 1, "end": 4},), "v2"),
        AuditRecord("script", T0 + 186, "room-x", "host", 5, None, "加微信", (wx,), "v2"),
        AuditRecord("warning", T0 + 190, "other", "chat", 6, "u3", "加微信", (wx,), "v2"),
    ])  # fmt: skip
    sink.close()
    return db


def test_report_text_with_fixed_times(fixed_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = report(capsys, "--db", str(fixed_db), "--stream", "room-x", "--utc")
    assert (code, err) == (0, "")
    assert out.splitlines()[1:4] == [
        "  2026-05-01 12:00:05 .. 2026-05-01 12:03:11 (UTC), 3m06s",
        "  rule sets: v1, v2",
        "  warnings 4, findings 5 (host 3, chat 2), script lines blocked 1",
    ]
    assert out.split("Timeline (findings per minute)\n")[1] == (
        "  12:00     4  ########################################\n"
        "  12:01     0\n"
        "  12:02     0\n"
        "  12:03     1  ##########\n"
    )
    assert "By severity\n  critical        1\n  high            2\n  warning         2\n\n" in out


def test_report_csv_and_html_with_fixed_times(
    fixed_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = report(capsys, "--db", str(fixed_db), "--stream", "room-x", "--format", "csv", "--utc")
    assert code == 0
    assert csv_rows(out) == [
        ("section", "name", "category", "severity", "count"),
        ("total", "warnings", "", "", "4"),
        ("total", "findings", "", "", "5"),
        ("total", "script_blocked", "", "", "1"),
        ("severity", "critical", "", "critical", "1"),
        ("severity", "high", "", "high", "2"),
        ("severity", "warning", "", "warning", "2"),
        ("category", "diversion", "diversion", "", "2"),
        ("category", "price_claims", "price_claims", "", "2"),
        ("category", "medical", "medical", "", "1"),
        ("rule", "T-LOWEST", "price_claims", "high", "2"),
        ("rule", "T-WECHAT", "diversion", "warning", "2"),
        ("rule", "T-CURE", "medical", "critical", "1"),
        ("source", "host", "", "", "3"),
        ("source", "chat", "", "", "2"),
        ("minute", "2026-05-01T12:00:00+00:00", "", "", "4"),
        ("minute", "2026-05-01T12:01:00+00:00", "", "", "0"),
        ("minute", "2026-05-01T12:02:00+00:00", "", "", "0"),
        ("minute", "2026-05-01T12:03:00+00:00", "", "", "1"),
    ]
    page_path = tmp_path / "report.html"
    assert report(capsys, "--db", str(fixed_db), "--stream", "room-x", "--format", "html", "--utc",
                  "--out", str(page_path))[0] == 0  # fmt: skip
    page = page_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # self-contained: no external scripts, styles, images or fonts
    assert (
        not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "@import" not in page and "url(" not in page
    )
    svg = re.search(r"<svg .*?</svg>", page, re.DOTALL).group(0)
    # stacked bars: one segment per severity and minute, heights proportional to the counts
    bars = re.findall(r'<rect [^>]*height="([\d.]+)" [^>]*data-severity="(\w+)"', svg)
    assert [sev for _h, sev in bars] == ["warning", "high", "critical", "warning"]  # 12:00 bottom to top, 12:03
    heights = [float(h) for h, _sev in bars]
    assert heights[1] == pytest.approx(2 * heights[0]) and heights[0] == heights[2] == heights[3] > 0
    assert svg.count("<g><title>") == 4  # one group per minute, empty minutes included
    assert "12:00: 4 findings (critical 1, high 2, warning 1)" in svg and "12:03: 1 finding (warning 1)" in svg
    assert re.search(r'<table id="by-rule">.*?T-LOWEST.*?<td class="n">2</td>', page, re.DOTALL)
    assert "主播<mark class='sev-warning'>加微信</mark>&lt;b&gt;" in page  # escaped text, highlighted span
    assert "加微信<b>" not in page and "加微信</mark><b>" not in page
    assert '<div class="card" data-count="warnings"><b>4</b>' in page


def test_report_errors_exit_2(fixed_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    code, out, err = report(capsys, "--db", str(tmp_path / "missing.sqlite3"), "--stream", "room-x")
    assert code == 2 and out == "" and err.count("\n") == 1 and "no audit log at" in err
    assert not (tmp_path / "missing.sqlite3").exists()  # reading never creates a database
    code, _, err = report(capsys, "--db", str(fixed_db), "--stream", "nope")
    assert code == 2 and err == f"compliance report: error: no records for stream 'nope' in {fixed_db}\n"
    junk = tmp_path / "junk.sqlite3"
    junk.write_text("not a database", encoding="utf-8")
    code, _, err = report(capsys, "--db", str(junk), "--stream", "x")
    assert code == 2 and err.count("\n") == 1 and "cannot read the audit log" in err
    other = tmp_path / "other.sqlite3"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    code, _, err = report(capsys, "--db", str(other), "--stream", "x")
    assert code == 2 and "not an audit log" in err
    code, _, err = report(capsys, "--db", str(fixed_db), "--format", "csv")
    assert code == 2 and "needs --stream" in err
    # the default database is where `compliance serve` writes it
    monkeypatch.delenv("COMPLIANCE_AUDIT_PATH", raising=False)
    monkeypatch.delenv("COMPLIANCE_CONFIG", raising=False)
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "none"))
    code, _, err = report(capsys, "--stream", "room-x")
    assert code == 2 and str(tmp_path / "none" / "audit.sqlite3") in err
    monkeypatch.setenv("COMPLIANCE_AUDIT_PATH", str(fixed_db))
    assert report(capsys, "--stream", "room-x", "--format", "csv")[0] == 0

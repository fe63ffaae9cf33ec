"""The sidecar's /metrics scraped by a real Prometheus server (Debian's, installed when missing).

The sidecar runs in-process on 127.0.0.1; Prometheus runs on another loopback port with
deploy/prometheus.yml, its target pointed at the sidecar and its scrape interval cut to 1 s, and
its TSDB in a temp dir. The test sends messages, then asks Prometheus's HTTP API (/api/v1/query)
for the series it scraped. Waits are bounded; Prometheus is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from livestream_compliance_server.app import App
from wsutil import Connect
from procutil import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
ENSURE = ROOT / "scripts" / "ensure-packages.sh"
DEPLOY_CONFIG = ROOT / "deploy" / "prometheus.yml"


def ensure_prometheus() -> str:
    exe = shutil.which("prometheus")
    if exe is None:
        proc = subprocess.run(
            ["bash", str(ENSURE), "prometheus"], check=False, capture_output=True, text=True, timeout=900
        )
        exe = shutil.which("prometheus")
        if exe is None:
            if os.geteuid() != 0 and (proc.returncode == 3 or "sudo:" in proc.stderr):  # no root, no sudo
                pytest.skip(f"prometheus is not installed and cannot be installed without root: {proc.stderr.strip()}")
            raise RuntimeError(f"cannot install prometheus (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return exe


@pytest.fixture(scope="session")
def prometheus_exe() -> str:
    return ensure_prometheus()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_config(target_port: int) -> str:
    """deploy/prometheus.yml, scraping the test's sidecar every second."""
    text = DEPLOY_CONFIG.read_text(encoding="utf-8")
    assert '"127.0.0.1:8765"' in text and "scrape_interval: 5s" in text
    text = text.replace('"127.0.0.1:8765"', f'"127.0.0.1:{target_port}"')
    text = text.replace("scrape_interval: 15s", "scrape_interval: 1s").replace(
        "scrape_interval: 5s", "scrape_interval: 1s"
    )
    return text.replace("evaluation_interval: 15s", "evaluation_interval: 1s")


class Prometheus:
    def __init__(self, exe: str, directory: Path, target_port: int) -> None:
        self.exe = exe
        self.dir = directory
        self.config = directory / "prometheus.yml"
        self.config.write_text(scrape_config(target_port), encoding="utf-8")
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = directory / "prometheus.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, attempts: int = 3) -> Prometheus:
        for attempt in range(attempts):  # another process may take the free port first
            self.port = free_port()
            data = self.dir / f"data-{attempt}"
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        self.exe,
                        f"--config.file={self.config}",
                        f"--storage.tsdb.path={data}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--storage.tsdb.retention.time=1h",
                        "--log.level=warn",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent,
                )
            if self._wait_ready(30.0):
                return self
            self.stop()
        raise RuntimeError(f"prometheus did not become ready: {self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        return False

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def query_sync(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=5) as r:
            doc = json.loads(r.read())
        assert doc["status"] == "success", doc
        return doc["data"]["result"]

    async def query(self, promql: str) -> list[dict[str, Any]]:
        # off the event loop: the sidecar being scraped runs on it
        return await asyncio.to_thread(self.query_sync, promql)

    async def wait_value(self, promql: str, predicate: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``predicate(result)`` holds (at most ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = await self.query(promql)
            if predicate(result):
                return result
            await asyncio.sleep(0.25)
        raise AssertionError(f"{promql}: still {result} after {timeout}s; prometheus log: {self.log_tail()}")


@pytest.fixture
def prometheus_factory(prometheus_exe: str, tmp_path: Path) -> Iterator[Any]:
    started: list[Prometheus] = []

    def start(target_port: int) -> Prometheus:
        prom = Prometheus(prometheus_exe, tmp_path, target_port).start()
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()


def value(result: list[dict[str, Any]]) -> float:
    return sum(float(r["value"][1]) for r in result)


def test_deploy_config_is_valid(prometheus_exe: str) -> None:
    promtool = shutil.which("promtool") or str(Path(prometheus_exe).with_name("promtool"))
    proc = subprocess.run(
        [promtool, "check", "config", str(DEPLOY_CONFIG)], check=False, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_prometheus_scrapes_the_sidecar(app: App, connect: Connect, prometheus_factory: Any) -> None:
    prom: Prometheus = await asyncio.to_thread(prometheus_factory, app.port)
    # the target is up: Prometheus reached /metrics on the sidecar's port
    up = await prom.wait_value('up{job="livestream-compliance"}', lambda r: value(r) == 1)
    assert up[0]["metric"]["instance"] == f"127.0.0.1:{app.port}"
    assert up[0]["metric"]["service"] == "livestream-compliance"

    client = await connect(app, hello={"stream_id": "room-1", "acks": True})
    for seq in range(5):
        frame = await client.request({"type": "transcript", "seq": seq, "text": f"第{seq}件全网最低价"})
        assert frame["type"] == "warning"
    for seq in range(5, 8):
        frame = await client.request({"type": "chat", "seq": seq, "text": "主播好看", "user": "u1"})
        assert frame["type"] == "ack"
    verdict = await client.request({"type": "script", "seq": 9, "text": "加微信领券"})
    assert verdict["verdict"] == "block"

    job = 'job="livestream-compliance"'
    host = await prom.wait_value(f'compliance_messages_checked_total{{{job},source="host"}}', lambda r: value(r) == 5)
    assert host[0]["metric"]["source"] == "host"
    await prom.wait_value(f'compliance_messages_checked_total{{{job},source="chat"}}', lambda r: value(r) == 3)
    await prom.wait_value(f'compliance_messages_checked_total{{{job},source="script"}}', lambda r: value(r) == 1)
    # the latency histogram: every bucket series, cumulative, +Inf = count
    buckets = await prom.wait_value(
        f'compliance_check_seconds_bucket{{{job},source="host"}}',
        lambda r: any(x["metric"]["le"] == "+Inf" and float(x["value"][1]) == 5 for x in r),
    )
    les = {x["metric"]["le"]: float(x["value"][1]) for x in buckets}
    assert len(les) == 15 and "1e-05" in les and "0.25" in les
    ordered = [les[k] for k in sorted(les, key=lambda k: float(k))]
    assert ordered == sorted(ordered)
    count = await prom.query(f'compliance_check_seconds_count{{{job},source="host"}}')
    assert value(count) == 5
    # PromQL over the scraped histogram works as the dashboard uses it
    q = f"histogram_quantile(0.99, sum by (le) (rate(compliance_check_seconds_bucket{{{job}}}[1m])))"
    await prom.wait_value(q, lambda r: len(r) == 1 and r[0]["value"][1] not in ("NaN", "+Inf"))
    findings = await prom.wait_value(
        f'compliance_findings_total{{{job},category="price_claims",severity="high"}}', lambda r: value(r) == 5
    )
    assert findings[0]["metric"]["category"] == "price_claims"
    await prom.wait_value(f'compliance_warnings_sent_total{{{job},source="host"}}', lambda r: value(r) == 5)
    await prom.wait_value(f'compliance_script_verdicts_total{{{job},verdict="block"}}', lambda r: value(r) == 1)
    await prom.wait_value(f'compliance_rules_info{{{job},version="{app.rule_version}"}}', lambda r: value(r) == 1)
    await prom.wait_value(f"compliance_open_connections{{{job}}}", lambda r: value(r) == 1)

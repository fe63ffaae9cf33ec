"""`compliance serve`: configuration layers and the real process on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from livestream_compliance.cli import main
from livestream_compliance.errors import UsageError
from livestream_compliance_server.config import load_config
from websockets.asyncio.client import connect as ws_connect
from wsutil import RULES_DIR, TOKEN


def test_defaults() -> None:
    c = load_config(environ={})
    assert (c.host, c.port, c.rules, c.default_rules, c.token) == ("127.0.0.1", 8765, [], True, None)
    assert c.resolved_audit_path() is not None and c.resolved_audit_path().name == "audit.sqlite3"


def test_file_then_env_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "serve.toml"
    cfg.write_text('[serve]\nport = 9001\nrate = 50\nrules = ["/a", "/b"]\nacks = true\n', encoding="utf-8")
    c = load_config(config_file=str(cfg), environ={})
    assert (c.port, c.rate, c.rules, c.acks) == (9001, 50.0, ["/a", "/b"], True)
    env = {
        "COMPLIANCE_PORT": "9002",
        "COMPLIANCE_ACKS": "false",
        "COMPLIANCE_RULES": f"/x{os.pathsep}/y",
        "COMPLIANCE_CONFIG": str(cfg),
    }
    c = load_config(environ=env)
    assert (c.port, c.rate, c.rules, c.acks) == (9002, 50.0, ["/x", "/y"], False)
    c = load_config({"port": 9003, "rules": None}, environ=env)
    assert (c.port, c.rules) == (9003, ["/x", "/y"])


def test_data_dir_and_token_file(tmp_path: Path) -> None:
    tok = tmp_path / "token"
    tok.write_text(TOKEN + "\n", encoding="utf-8")
    c = load_config({"token_file": str(tok), "host": "0.0.0.0"}, environ={"COMPLIANCE_DATA_DIR": str(tmp_path)})
    assert c.token == TOKEN
    assert c.resolved_audit_path() == tmp_path / "audit.sqlite3"
    assert load_config({"audit": False}, environ={}).resolved_audit_path() is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("port = 'x'\n", "port"),
        ("nonsense = 1\n", "unknown setting"),
        ("port = [\n", "invalid TOML"),
        ("block_severity = 'extreme'\n", "severity"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str, message: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content, encoding="utf-8")
    with pytest.raises(UsageError, match=message):
        load_config(config_file=str(cfg), environ={})
    with pytest.raises(UsageError, match="COMPLIANCE_PORT"):
        load_config(environ={"COMPLIANCE_PORT": "eighty"})


def test_refuses_to_bind_beyond_loopback_without_token(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.delenv("COMPLIANCE_TOKEN", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "refusing to listen on 0.0.0.0 without a token" in capsys.readouterr().err


def test_print_config_hides_the_token(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("COMPLIANCE_TOKEN", TOKEN)
    assert main(["serve", "--print-config", "--port", "1234"]) == 0
    out = capsys.readouterr().out
    assert "port = 1234" in out and TOKEN not in out and "token = '***'" in out


async def _readline(stream: asyncio.StreamReader, seen: list[str], timeout: float = 30) -> str:
    line = (await asyncio.wait_for(stream.readline(), timeout)).decode()
    if not line:
        raise AssertionError("process output ended early:\n" + "".join(seen))
    seen.append(line)
    return line


async def test_serve_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPLIANCE_")}
    env.update({"COMPLIANCE_DATA_DIR": str(tmp_path), "COMPLIANCE_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "livestream_compliance",
        "serve",
        "--port",
        "0",
        "--rules",
        str(RULES_DIR),
        "--no-default-rules",
        "--no-audit",
        "--log-level",
        "info",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out: list[str] = []
    err: list[str] = []
    try:
        lines = {}
        while "reload" not in lines:
            line = await _readline(proc.stdout, out)
            parts = line.split()
            if line.startswith("  ") and parts:
                lines[parts[0]] = line
        assert out[0].startswith("compliance serve: 3 rules, version ")
        url = lines["websocket"].split()[1]
        assert url.startswith("ws://127.0.0.1:") and "token required" in lines["websocket"]
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert f"http://127.0.0.1:{port}/metrics" in lines["metrics"]
        assert "disabled" in lines["audit"]
        async with ws_connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
            await ws.send(json.dumps({"type": "transcript", "stream_id": "s", "seq": 1, "text": "今天全网最低价"}))
            w = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert w["type"] == "warning" and w["findings"][0]["rule_id"] == "T-LOWEST"
            proc.send_signal(signal.SIGHUP)
            while "reloaded" not in await _readline(proc.stderr, err):
                pass
            proc.send_signal(signal.SIGTERM)
            shutdown = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert shutdown["type"] == "shutdown"
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_publish_redis_is_configurable_by_flag_and_env(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    assert main(["serve", "--print-config", "--publish-redis", "redis://127.0.0.1:6399/0", "--publish-stream", "out"]) == 0
    out = capsys.readouterr().out
    assert "publish_redis = 'redis://127.0.0.1:6399/0'" in out and "publish_stream = 'out'" in out
    monkeypatch.setenv("COMPLIANCE_PUBLISH_REDIS", "redis://127.0.0.1:6398/0")
    assert main(["serve", "--print-config"]) == 0
    assert "publish_redis = 'redis://127.0.0.1:6398/0'" in capsys.readouterr().out

"""Hot reload: HTTP, SIGHUP and the API swap the checker atomically; bad rules are refused."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import threading
from pathlib import Path

import pytest
from livestream_compliance import Checker
from livestream_compliance_server.app import App, ReloadResult
from wsutil import RULES_DIR, TOKEN, Connect, http, sample


def fast_checker(rule_set) -> Checker:
    """No jieba: the fixture rules ask for no word boundaries, so reloads take milliseconds."""
    return Checker(rule_set)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    d = tmp_path / "rules"
    shutil.copytree(RULES_DIR, d)
    return d


def set_pack_version(rules_dir: Path, version: str) -> None:
    f = rules_dir / "live.toml"
    text = f.read_text(encoding="utf-8")
    start = text.index('version = "')
    end = text.index('"', start + len('version = "'))
    f.write_text(text[:start] + f'version = "{version}' + text[end:], encoding="utf-8")


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_reload_under_load_answers_every_seq_once(make_app, connect: Connect, rules_dir: Path) -> None:
    app: App = await make_app(rules=[str(rules_dir)], checker_factory=fast_checker, rate=1e6, burst=100_000)
    c = await connect(app, hello={"stream_id": "load", "acks": True})
    n, reloads = 3000, 6
    answers: dict[int, list[dict]] = {}
    progress = [asyncio.Event() for _ in range(reloads)]
    done = asyncio.Event()
    room = asyncio.Event()
    window = 64  # messages in flight: the server is never idle, and never far ahead of the receiver

    async def receive() -> None:
        while len(answers) < n:
            frame = await c.recv(timeout=10)
            assert frame["type"] in ("ack", "warning"), frame
            answers.setdefault(frame["seq"], []).append(frame)
            room.set()
            for i, ev in enumerate(progress):
                if len(answers) >= (i + 1) * n // (reloads + 2):
                    ev.set()
        done.set()

    async def send() -> None:
        for seq in range(n):
            while seq - len(answers) >= window:
                room.clear()
                await room.wait()
            text = "全网最低价" if seq % 3 == 0 else "欢迎来到直播间"
            await c.send({"type": "transcript", "text": text, "seq": seq})

    async def reload() -> list[str]:
        versions = []
        for i in range(reloads):
            await progress[i].wait()  # reload while messages keep flowing
            set_pack_version(rules_dir, f"2.{i}")
            if i % 2:
                status, _h, body = await http(app, "POST", "/admin/reload", AUTH)
                assert status == 200, body
                versions.append(json.loads(body)["rule_version"])
            else:
                result = await app.reload()
                assert result.ok, result
                versions.append(result.rule_version)
        return versions

    recv_task = asyncio.create_task(receive())
    _, versions, _ = await asyncio.wait_for(asyncio.gather(send(), reload(), done.wait()), 30)
    await recv_task
    assert sorted(answers) == list(range(n))
    assert all(len(frames) == 1 for frames in answers.values()), "a seq was answered twice"
    assert sample(app, "compliance_messages_checked_total", {"source": "host"}) == n  # none checked twice
    # every answer names the rule set that checked it; on one connection they change in order
    seen = [answers[seq][0]["rule_version"] for seq in range(n)]
    order = [v for i, v in enumerate(seen) if i == 0 or v != seen[i - 1]]
    assert len(order) == len(set(order)) >= 3, order
    assert order[-1] == versions[-1] == app.rule_version
    for seq in range(0, n, 3):
        (w,) = answers[seq]
        assert w["type"] == "warning" and all(f["rule_version"].endswith(w["rule_version"]) for f in w["findings"])
    assert sample(app, "compliance_reloads_total", {"result": "ok", "trigger": "http"}) == reloads // 2
    assert sample(app, "compliance_reloads_total", {"result": "ok", "trigger": "api"}) == reloads - reloads // 2


async def test_invalid_rules_are_rejected_and_old_rules_keep_serving(
    make_app, connect: Connect, rules_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app: App = await make_app(rules=[str(rules_dir)], checker_factory=fast_checker)
    before = app.rule_version
    (rules_dir / "live.toml").write_text(
        (rules_dir / "live.toml").read_text(encoding="utf-8").replace('severity = "high"', 'severity = "extreme"'),
        encoding="utf-8",
    )
    with caplog.at_level(logging.ERROR, logger="livestream_compliance.server"):
        status, _h, body = await http(app, "POST", "/admin/reload", AUTH)
    assert status == 422
    result = json.loads(body)
    assert result["ok"] is False and result["rule_version"] == before
    assert any("T-LOWEST" in issue and "severity" in issue for issue in result["issues"])
    assert any("rejected" in r.getMessage() and before in r.getMessage() for r in caplog.records)
    assert app.rule_version == before
    assert sample(app, "compliance_reloads_total", {"result": "error", "trigger": "http"}) == 1
    assert sample(app, "compliance_rules_info", {"version": before}) == 1
    c = await connect(app)
    w = await c.request({"type": "transcript", "stream_id": "s", "text": "全网最低价", "seq": 1})
    assert w["type"] == "warning" and w["rule_version"] == before
    # a file that is not even TOML
    (rules_dir / "live.toml").write_text("[[rules]\n", encoding="utf-8")
    assert not (await app.reload()).ok
    assert app.rule_version == before


async def test_sighup_reloads(make_app, rules_dir: Path) -> None:
    app: App = await make_app(rules=[str(rules_dir)], checker_factory=fast_checker)
    before = app.rule_version
    set_pack_version(rules_dir, "9.9")
    loop = asyncio.get_running_loop()
    reloaded: asyncio.Future[ReloadResult] = loop.create_future()
    app.reload_listeners.append(lambda r: reloaded.done() or reloaded.set_result(r))
    app.install_signal_handlers(stop_on_term=False)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        result = await asyncio.wait_for(reloaded, 10)
    finally:
        app.remove_signal_handlers()
    assert result.ok and result.rule_version == app.rule_version != before
    assert sample(app, "compliance_reloads_total", {"result": "ok", "trigger": "signal"}) == 1


async def test_reload_endpoint_needs_the_token(app: App) -> None:
    status, headers, _ = await http(app, "POST", "/admin/reload")
    assert status == 401 and headers.get("www-authenticate") == "Bearer"
    status, _, _ = await http(app, "POST", "/admin/reload", {"Authorization": "Bearer wrong-token-0123456789"})
    assert status == 401
    status, _, _ = await http(app, "GET", "/admin/reload", AUTH)
    assert status == 405


async def test_reload_endpoint_is_disabled_without_a_token(make_app) -> None:
    app = await make_app(token=None)
    status, _, body = await http(app, "POST", "/admin/reload")
    assert status == 403 and b"token" in body


async def test_real_builder_reload(make_app, rules_dir: Path) -> None:
    """The default builder (jieba and all) runs off the event loop, which keeps serving meanwhile."""
    app: App = await make_app(rules=[str(rules_dir)])
    assert app.checker is not None
    before = app.checker.version
    set_pack_version(rules_dir, "3.0")
    loop = asyncio.get_running_loop()
    build = app._build
    seen: dict[str, object] = {}

    def watched_build(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen["thread"] = threading.get_ident()
        checker = build(*args, **kwargs)
        # completes only if the loop is free to run a callback while the build's thread waits
        seen["loop_served"] = asyncio.run_coroutine_threadsafe(asyncio.sleep(0, "served"), loop).result(10)
        return checker

    app._build = watched_build  # type: ignore[method-assign]
    result = await app.reload()
    assert result.ok and result.rule_version != before
    assert seen["thread"] != threading.get_ident()
    assert seen["loop_served"] == "served"


@pytest.mark.parametrize("ok", [True, False])
async def test_reload_shortens_the_gil_switch_interval_while_it_builds(make_app, rules_dir: Path, ok: bool) -> None:
    """While the build holds the GIL, the event loop's scans (which release it) wait at most the
    switch interval for it back: a short interval during the build, CPython's again after it."""
    import sys

    from livestream_compliance_server.app import RELOAD_SWITCH_INTERVAL

    app: App = await make_app(rules=[str(rules_dir)])
    build = app._build
    during: list[float] = []

    def watched_build(*args, **kwargs):  # type: ignore[no-untyped-def]
        during.append(sys.getswitchinterval())
        if not ok:
            raise RuntimeError("build failed")
        return build(*args, **kwargs)

    app._build = watched_build  # type: ignore[method-assign]
    before = sys.getswitchinterval()
    result = await app.reload()
    assert result.ok is ok
    assert during == [pytest.approx(min(before, RELOAD_SWITCH_INTERVAL))] and during[0] < before
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("state_cache", [True, False])
async def test_default_builder_uses_the_state_cache_unless_disabled(
    make_app, rules_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_cache: bool
) -> None:
    """With the default builder, reloads go through the loader's state cache (``--no-cache``: never)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "xdg" / "livestream-compliance"
    app: App = await make_app(rules=[str(rules_dir)], state_cache=state_cache)

    async def states(n: int) -> int:
        # the loader writes a new state from a child process: wait for it (up to a minute)
        for _ in range(3000 if state_cache else 0):
            if len(list(cache.glob("*.state"))) >= n:
                break
            await asyncio.sleep(0.02)
        return len(list(cache.glob("*.state"))) if cache.is_dir() else 0

    first = await app.reload()
    assert await states(1) == (1 if state_cache else 0)
    second = await app.reload()  # unchanged rules: from the cache when it is on
    assert first.ok and second.ok and first.rule_version == second.rule_version
    assert (cache.is_dir() and await states(1) == 1) is state_cache
    set_pack_version(rules_dir, "4.0")  # an edit is a miss: rebuilt, and a second state file
    third = await app.reload()
    assert third.ok and third.rule_version != second.rule_version
    assert (await states(2) == 2) if state_cache else not cache.exists()


async def test_the_build_waits_for_the_event_loop_to_catch_up() -> None:
    """The reload's pause returns once the loop has run what was ready, and never raises."""
    import time

    from livestream_compliance_server.app import _loop_caught_up

    loop = asyncio.get_running_loop()
    ran: list[str] = []
    loop.call_soon(ran.append, "queued before the pause")
    pause = _loop_caught_up(loop)
    await loop.run_in_executor(None, pause)
    assert ran == ["queued before the pause"]
    stopped = asyncio.new_event_loop()
    stopped.close()
    t0 = time.perf_counter()
    _loop_caught_up(stopped)()  # a closed loop: returns at once
    assert time.perf_counter() - t0 < 1.0


def test_the_build_stops_waiting_for_a_loop_that_does_not_run() -> None:
    """A loop that is not running (a server shutting down): the first pause waits its second, the
    next ones do not wait at all."""
    import time

    from livestream_compliance_server.app import _loop_caught_up

    idle = asyncio.new_event_loop()
    try:
        pause = _loop_caught_up(idle)
        t0 = time.perf_counter()
        pause()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        pause()
        pause()
        assert first >= 0.9 and time.perf_counter() - t0 < 0.2
    finally:
        idle.close()

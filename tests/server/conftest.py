"""Fixtures for the sidecar tests: a real server in-process on 127.0.0.1, port 0, small rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from livestream_compliance import Checker, build_checker, load_rule_set
from livestream_compliance_server.app import App
from livestream_compliance_server.config import ServerConfig
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import connect as ws_connect
from wsutil import RULES_DIR, TOKEN, Client, Connect


@pytest.fixture(scope="session")
def live_checker() -> Checker:
    """The fixture rules with the real builder (jieba and all), built once."""
    return build_checker(load_rule_set([RULES_DIR], defaults=False))


@pytest.fixture
async def make_app(live_checker: Checker) -> AsyncIterator[Callable[..., Awaitable[App]]]:
    apps: list[App] = []

    async def factory(
        *,
        sink: Any = None,
        checker: Checker | None = None,
        checker_factory: Any = None,
        fast_reads: bool | None = None,
        **settings: Any,
    ) -> App:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "rules": [str(RULES_DIR)],
            "default_rules": False,
            "token": TOKEN,
            "audit": False,
            "drain_idle": 0.2,
        }
        values.update(settings)
        config = ServerConfig(**values).validate()
        kwargs: dict[str, Any] = {}
        if checker_factory is not None:
            kwargs["checker_factory"] = checker_factory
        app = App(
            config,
            registry=CollectorRegistry(),
            audit_sink=sink,
            checker=checker if checker is not None else (None if checker_factory else live_checker),
            **kwargs,
        )
        if fast_reads is not None:  # server/fastws.py on or off (default: on when websockets' internals fit)
            app.fast_reads = fast_reads
        await app.start()
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await app.stop()


@pytest.fixture
async def app(make_app: Callable[..., Awaitable[App]]) -> App:
    return await make_app()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    clients: list[Client] = []

    async def factory(
        app: App, *, token: str | None = TOKEN, hello: dict[str, Any] | None = None, **kwargs: Any
    ) -> Client:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        ws = await ws_connect(app.url, additional_headers=headers, compression=None, **kwargs)
        client = Client(ws)
        clients.append(client)
        if hello is not None:
            welcome = await client.request({"type": "hello", **hello})
            assert welcome["type"] == "welcome", welcome
        return client

    yield factory
    for c in clients:
        try:
            async with asyncio.timeout(2):
                await c.close()
        except TimeoutError:
            c.ws.transport.abort()

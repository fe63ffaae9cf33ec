"""HTTP routes on the websocket port: /metrics, /healthz, /readyz, the route table hook."""

from __future__ import annotations

import json

from livestream_compliance_server.app import App
from livestream_compliance_server.http import respond
from prometheus_client.parser import text_string_to_metric_families
from wsutil import TOKEN, Connect, http


async def test_health_and_ready(app: App) -> None:
    status, headers, body = await http(app, "GET", "/healthz")
    assert (status, body) == (200, b"ok\n")
    status, headers, body = await http(app, "GET", "/readyz")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"ready": True, "rule_version": app.rule_version, "draining": False}


async def test_unknown_paths_and_methods(app: App) -> None:
    assert (await http(app, "GET", "/nope"))[0] == 404
    assert (await http(app, "POST", "/metrics"))[0] == 405
    assert (await http(app, "DELETE", "/healthz"))[0] == 405
    # a plain GET of the websocket endpoint explains itself instead of upgrading
    assert (await http(app, "GET", "/"))[0] == 426


async def test_route_table_hook(app: App) -> None:
    app.routes.add("GET", "/overlay", lambda conn, req: respond(200, "<html>overlay</html>", "text/html"), prefix=True)
    status, headers, body = await http(app, "GET", "/overlay?stream_id=abc")
    assert (status, body) == (200, b"<html>overlay</html>") and headers["content-type"] == "text/html"
    assert (await http(app, "GET", "/overlay/app.js"))[0] == 200

    async def slow(conn, req):  # handlers may be coroutines
        return respond(204)

    app.routes.add("GET", "/x", slow)
    assert (await http(app, "GET", "/x"))[0] == 204


async def test_metrics_after_traffic(app: App, connect: Connect) -> None:
    c = await connect(app, hello={"stream_id": "secret-stream-id-42", "acks": True})
    await c.request({"type": "transcript", "text": "全网最低价", "seq": 1, "sent_at": __import__("time").time()})
    await c.request({"type": "chat", "text": "加微信", "seq": 2, "user": "viewer-user-id-77"})
    await c.request({"type": "chat", "text": "你好", "seq": 3, "user": "viewer-user-id-77"})
    await c.request({"type": "script", "text": "全网最低价", "seq": 4})
    await c.request("garbage")
    status, headers, body = await http(app, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    text = body.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert values[("compliance_messages_checked_total", (("source", "host"),))] == 1
    assert values[("compliance_messages_checked_total", (("source", "chat"),))] == 2
    assert values[("compliance_messages_checked_total", (("source", "script"),))] == 1
    assert values[("compliance_findings_total", (("category", "price_claims"), ("severity", "high")))] == 2
    assert values[("compliance_findings_total", (("category", "diversion"), ("severity", "warning")))] == 1
    assert values[("compliance_warnings_sent_total", (("source", "host"),))] == 1
    assert values[("compliance_script_verdicts_total", (("verdict", "block"),))] == 1
    assert values[("compliance_errors_total", (("kind", "bad_json"),))] == 1
    assert values[("compliance_open_connections", ())] == 1
    assert values[("compliance_active_streams", ())] == 1
    assert values[("compliance_rules_info", (("version", app.rule_version),))] == 1
    assert values[("compliance_rules_loaded", ())] == 3
    assert values[("compliance_send_to_warning_seconds_count", ())] == 1
    assert values[("compliance_warning_latency_seconds_count", ())] == 2
    assert values[("compliance_check_seconds_count", (("source", "chat"),))] == 2
    assert values[("compliance_check_seconds_bucket", (("le", "1e-05"), ("source", "chat")))] >= 0  # buckets from 10 µs
    # label values are bounded: never a stream id, a user id or a text
    assert "secret-stream-id-42" not in text and "viewer-user-id-77" not in text and "最低价" not in text


async def test_metrics_can_require_the_token(make_app) -> None:
    app = await make_app(metrics_auth=True)
    assert (await http(app, "GET", "/metrics"))[0] == 401
    assert (await http(app, "GET", "/metrics", {"Authorization": f"Bearer {TOKEN}"}))[0] == 200
    assert (await http(app, "GET", "/healthz"))[0] == 200

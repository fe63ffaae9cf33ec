"""``compliance serve``: the websocket sidecar (see docs/protocol.md).

Starts on embedded defaults (default rules, ws://127.0.0.1:8765/, an audit log in the local data
directory) and prints where it listens. Settings: flags > ``COMPLIANCE_*`` environment variables >
config file (``--config`` or ``COMPLIANCE_CONFIG``) > defaults. SIGHUP reloads the rules,
SIGTERM/SIGINT shut down gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the websocket sidecar (live checks, overlay feed, metrics)",
        description=(
            "Run the websocket sidecar. Settings come from flags, then COMPLIANCE_* environment "
            "variables (COMPLIANCE_TOKEN, COMPLIANCE_PORT, ...), then the config file, then defaults."
        ),
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (default: $COMPLIANCE_CONFIG)")
    p.add_argument("--host", help="address to bind (default 127.0.0.1; anything else needs a token)")
    p.add_argument("--port", type=int, help="port to bind (default 8765; 0 picks a free one)")
    p.add_argument(
        "--rules", action="append", metavar="PATH", help="rule file or directory loaded over the defaults (repeatable)"
    )
    p.add_argument(
        "--no-default-rules",
        dest="default_rules",
        action="store_const",
        const=False,
        help="do not load the default rule packs",
    )
    p.add_argument(
        "--no-model",
        dest="paraphrase_model",
        action="store_const",
        const=False,
        help="rules only: do not load the paraphrase model behind the classifier rules (PARA-*)",
    )
    p.add_argument("--token-file", metavar="FILE", help="file holding the shared secret (or set COMPLIANCE_TOKEN)")
    p.add_argument(
        "--data-dir", metavar="DIR", help="where the audit log lives (default ~/.local/share/livestream-compliance)"
    )
    p.add_argument("--audit-path", metavar="FILE", help="SQLite audit log (default DATA_DIR/audit.sqlite3)")
    p.add_argument("--publish-redis", metavar="URL", help="also publish findings to a Redis stream (redis://...)")
    p.add_argument("--publish-stream", metavar="NAME", help="Redis stream for --publish-redis (default compliance:findings)")
    p.add_argument("--no-audit", dest="audit", action="store_const", const=False, help="keep no audit log")
    p.add_argument(
        "--acks",
        action="store_const",
        const=True,
        default=None,
        help="answer messages without findings with ack frames (clients can also ask in hello)",
    )
    p.add_argument(
        "--no-fast-path",
        dest="websocket_fast_path",
        action="store_const",
        const=False,
        help="use only websockets' public recv/send (no direct frame reads and queued writes)",
    )
    p.add_argument(
        "--no-cache",
        dest="state_cache",
        action="store_const",
        const=False,
        help="build the rules from scratch at start-up and on reload (no state cache)",
    )
    p.add_argument("--rate", type=float, help="messages per second per connection (token bucket)")
    p.add_argument("--burst", type=int, help="token bucket size")
    p.add_argument("--max-frame-bytes", type=int, help="larger frames get an error frame (default 65536)")
    p.add_argument(
        "--block-severity",
        choices=["info", "warning", "high", "critical"],
        help="script lines with a finding at or above this are blocked (default warning)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.add_argument("--print-config", action="store_true", help="print the effective settings and exit")
    p.add_argument("--write-schema", metavar="DIR", help="write the protocol's JSON Schema files to DIR and exit")
    p.set_defaults(run=run)


_OVERRIDES = (
    "host",
    "port",
    "rules",
    "default_rules",
    "paraphrase_model",
    "token_file",
    "data_dir",
    "audit_path",
    "audit",
    "publish_redis",
    "publish_stream",
    "acks",
    "websocket_fast_path",
    "state_cache",
    "rate",
    "burst",
    "max_frame_bytes",
    "block_severity",
    "log_level",
)


def open_audit_sink(config: Any) -> tuple[Any, Path | None, str]:
    """The audit sink for ``config``: ``livestream_compliance_server.audit.open_sink(config)`` when that exists."""
    from livestream_compliance_server.sinks import NullAuditSink

    if not config.audit:
        return NullAuditSink(), None, "disabled"
    try:
        mod = importlib.import_module("livestream_compliance_server.audit")
    except ModuleNotFoundError as exc:
        if exc.name == "livestream_compliance_server.audit":
            return NullAuditSink(), None, "not available in this build"
        raise
    path = config.resolved_audit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return mod.open_sink(config), path, str(path)


def run(args: argparse.Namespace) -> int:
    from livestream_compliance_server.config import load_config
    from livestream_compliance_server.protocol import write_schemas

    if args.write_schema:
        for p in write_schemas(args.write_schema):
            print(p)
        return 0
    overrides = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k, None) is not None}
    config = load_config(overrides, config_file=args.config)
    if args.print_config:
        import dataclasses

        for k, v in dataclasses.asdict(config).items():
            print(f"{k} = {'***' if k == 'token' and v else v!r}")
        return 0
    level = getattr(logging, config.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # websockets logs every connection and HTTP request (each scrape) at INFO: only with debug
    logging.getLogger("livestream_compliance.server.ws").setLevel(
        max(level, logging.WARNING) if level > logging.DEBUG else level
    )
    return asyncio.run(_serve(config))


async def _serve(config: Any) -> int:
    from livestream_compliance_server.app import App, tune_gc

    sink, _path, audit_where = open_audit_sink(config)
    if config.publish_redis:
        from livestream_compliance_server.redis_sink import with_redis_publisher

        sink = with_redis_publisher(sink, config.publish_redis, config.publish_stream)
    app = App(config, audit_sink=sink)
    try:
        await app.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from None
    app.install_signal_handlers()
    # everything alive now lives as long as the process: no collection scans it again; rarer collections
    tune_gc()
    base = app.http_url
    overlay = f"{base}/overlay?stream_id=STREAM" if "/overlay" in app.routes.paths() else "(not installed)"
    lines = [
        f"compliance serve: {len(app.checker.rules)} rules, version {app.rule_version}",  # type: ignore[union-attr]
        f"  websocket  {app.url}" + ("  (token required)" if config.token else ""),
        f"  overlay    {overlay}",
        f"  metrics    {base}/metrics",
        f"  health     {base}/healthz  {base}/readyz",
        f"  audit log  {audit_where}",
        "  reload     kill -HUP <pid>" + (f"  or  POST {base}/admin/reload" if config.token else ""),
    ]
    print("\n".join(lines), flush=True)
    await app.serve_forever()
    return 0

"""Server configuration: embedded defaults < config file (TOML) < environment < command-line flags.

Every field of :class:`ServerConfig` can be set in a TOML file (``--config FILE`` or
``COMPLIANCE_CONFIG``; top-level keys, or the same keys under a ``[serve]`` table), through an
environment variable ``COMPLIANCE_<FIELD>`` (``COMPLIANCE_PORT=9000``; lists such as ``rules`` are
separated by the platform's path separator) and most of them by a flag of ``compliance serve``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from livestream_compliance.errors import UsageError
from livestream_compliance.findings import Severity
from livestream_compliance.session import SessionConfig

ENV_PREFIX = "COMPLIANCE_"
APP_DIR = "livestream-compliance"


def default_data_dir() -> Path:
    """``$COMPLIANCE_DATA_DIR``, else ``$XDG_DATA_HOME/livestream-compliance``, else ``~/.local/share/...``."""
    env = os.environ.get("COMPLIANCE_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / APP_DIR


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    #: rule files or directories loaded after (and overriding) the default packs
    rules: list[str] = field(default_factory=list)
    #: load the default rule packs first
    default_rules: bool = True
    #: load the paraphrase model behind the classifier rules (PARA-*: host lines no rule flagged)
    paraphrase_model: bool = True
    #: shared secret: required for websocket clients and /admin/*; mandatory beyond loopback
    token: str | None = None
    #: read the token from this file (first line) instead of passing it around
    token_file: str | None = None
    #: also require the token for /metrics (Prometheus: ``authorization: {credentials: ...}``)
    metrics_auth: bool = False
    data_dir: str | None = None
    #: SQLite audit log (default: ``<data_dir>/audit.sqlite3``); ``audit = false`` disables it
    audit: bool = True
    audit_path: str | None = None
    audit_queue: int = 10_000
    #: also publish every finding to this Redis stream (the workers' output stream), e.g.
    #: ``redis://127.0.0.1:6379/0``; None: do not publish
    publish_redis: str | None = None
    publish_stream: str = "compliance:findings"

    # limits
    #: frames larger than this get an error frame ``too_large`` (the connection keeps working)
    max_frame_bytes: int = 64 * 1024
    #: frames larger than this close the connection (1009): the websocket layer refuses them
    hard_max_frame_bytes: int = 1024 * 1024
    max_text_chars: int = 10_000
    max_batch_items: int = 500
    #: token bucket per connection: sustained messages per second and burst size
    rate: float = 500.0
    burst: int = 1000
    #: frames queued for one overlay subscriber before the oldest is dropped
    subscriber_queue: int = 256
    max_subscriptions: int = 64
    max_connections: int = 1024
    #: seconds to keep answering after shutdown starts, once a connection goes quiet / in all
    drain_idle: float = 0.25
    drain_timeout: float = 5.0

    # behaviour
    #: a ``script`` message is blocked when a finding is at or above this severity
    block_severity: str = "warning"
    #: answer messages without findings with ``ack`` frames unless the hello says otherwise
    acks: bool = False
    #: read plain text frames and queue answers through websockets' sans-I/O layer directly
    #: (server/fastws.py, ``Conn.write``; ~2x less CPU per message). Off: only websockets' public
    #: ``recv``/``send`` are used (a safety switch should a websockets release change its internals)
    websocket_fast_path: bool = True
    #: reuse the rule build state cached in $XDG_CACHE_HOME/livestream-compliance (keyed by the
    #: rule files' content, the package and its dependencies' versions): start-up in about a second
    state_cache: bool = True

    # sessions (see livestream_compliance.session)
    tail_chars: int = 16
    host_window: float = 8.0
    chat_window: float = 10.0
    max_streams: int = 10_000
    max_speakers: int = 512
    idle_timeout: float = 600.0
    sweep_interval: float = 30.0

    log_level: str = "info"

    # ------------------------------------------------------------------ derived
    def session_config(self) -> SessionConfig:
        return SessionConfig(
            tail_chars=self.tail_chars,
            host_window=self.host_window,
            chat_window=self.chat_window,
            max_streams=self.max_streams,
            max_speakers=self.max_speakers,
            idle_timeout=self.idle_timeout,
        )

    def resolved_data_dir(self) -> Path:
        return Path(self.data_dir) if self.data_dir else default_data_dir()

    def resolved_audit_path(self) -> Path | None:
        if not self.audit:
            return None
        return Path(self.audit_path) if self.audit_path else self.resolved_data_dir() / "audit.sqlite3"

    def block_level(self) -> Severity:
        return Severity.parse(self.block_severity)

    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)

    def validate(self) -> ServerConfig:
        """Check values and derived rules; loads ``token_file``. Raises UsageError."""
        if not 0 <= self.port <= 65535:
            raise UsageError(f"port {self.port} is out of range")
        if self.token_file and not self.token:
            try:
                self.token = Path(self.token_file).read_text(encoding="utf-8").strip().splitlines()[0].strip()
            except (OSError, IndexError) as exc:
                raise UsageError(f"cannot read token file {self.token_file}: {exc}") from None
        if self.token is not None and len(self.token) < 16:
            raise UsageError("the token must be at least 16 characters long")
        if not self.is_loopback() and not self.token:
            raise UsageError(
                f"refusing to listen on {self.host} without a token: set COMPLIANCE_TOKEN, --token-file "
                "or token in the config file (or bind to 127.0.0.1)"
            )
        self.block_level()
        for name in (
            "max_frame_bytes",
            "max_text_chars",
            "max_batch_items",
            "burst",
            "subscriber_queue",
            "tail_chars",
            "max_streams",
            "max_speakers",
            "max_connections",
            "audit_queue",
        ):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be positive")
        if self.rate <= 0:
            raise UsageError("rate must be positive")
        if self.hard_max_frame_bytes < self.max_frame_bytes:
            self.hard_max_frame_bytes = self.max_frame_bytes
        return self


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_FIELDS = {f.name: f for f in fields(ServerConfig)}


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Turn a TOML or environment value into the field's type; raises UsageError naming ``origin``."""
    default = _FIELDS[name].default
    if default is dataclasses.MISSING:
        default = _FIELDS[name].default_factory()  # type: ignore[misc]
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, list):
            if isinstance(value, str):
                return [p for p in value.split(os.pathsep) if p]
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            raise ValueError("expected a list of paths")
        if isinstance(default, int):
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if value is None or isinstance(value, str):
            return value
        raise ValueError("expected a string")
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{origin}: {name}: {exc}") from None


def from_mapping(data: Mapping[str, Any], origin: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in _FIELDS:
            raise UsageError(f"{origin}: unknown setting {key!r}")
        out[name] = _coerce(name, value, origin)
    return out


def from_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read config file {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: invalid TOML: {exc}") from None
    if isinstance(data.get("serve"), dict):
        data = {**{k: v for k, v in data.items() if k != "serve"}, **data["serve"]}
    return from_mapping(data, str(p))


def from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _FIELDS:
        var = ENV_PREFIX + name.upper()
        if var in environ:
            out[name] = _coerce(name, environ[var], var)
    return out


def load_config(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Defaults, then the config file (``config_file`` or ``$COMPLIANCE_CONFIG``), the environment, ``overrides``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or env.get(ENV_PREFIX + "CONFIG")
    if path:
        values.update(from_file(path))
    values.update(from_env(env))
    for k, v in (overrides or {}).items():
        if v is not None:
            values[k] = v
    return ServerConfig(**values).validate()

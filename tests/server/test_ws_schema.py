"""The committed JSON Schema is the generated one; the documented examples are valid frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from livestream_compliance_server import protocol
from livestream_compliance_server.protocol import client_adapter, server_adapter

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "docs" / "schema"
PROTOCOL_MD = ROOT / "docs" / "protocol.md"


def test_committed_schema_equals_generated() -> None:
    stale = protocol.stale_schemas(SCHEMA_DIR)
    assert not stale, (
        f"docs/schema/{', '.join(stale)} differ from the models: run "
        "'python -m livestream_compliance_server.protocol write docs/schema'"
    )


def test_schema_cli_write_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert protocol.main(["check", str(tmp_path)]) == 1
    assert protocol.main(["write", str(tmp_path)]) == 0
    assert protocol.main(["check", str(tmp_path)]) == 0
    (tmp_path / "server-message.json").write_text("{}", encoding="utf-8")
    assert protocol.main(["check", str(tmp_path)]) == 1
    assert "server-message.json is stale" in capsys.readouterr().err
    assert protocol.main(["bogus"]) == 2


def test_serve_write_schema_flag(tmp_path: Path) -> None:
    from livestream_compliance.cli import main

    assert main(["serve", "--write-schema", str(tmp_path)]) == 0
    assert protocol.stale_schemas(tmp_path) == []


def test_schema_lists_every_message_type() -> None:
    client = json.loads((SCHEMA_DIR / "client-message.json").read_text(encoding="utf-8"))
    server = json.loads((SCHEMA_DIR / "server-message.json").read_text(encoding="utf-8"))
    assert set(client["discriminator"]["mapping"]) == set(protocol.CLIENT_MODELS)
    assert set(server["discriminator"]["mapping"]) == {
        "welcome",
        "warning",
        "ack",
        "verdict",
        "error",
        "subscribed",
        "unsubscribed",
        "pong",
        "shutdown",
    }
    codes = server["$defs"]["Error"]["properties"]["code"]["enum"]
    assert codes == list(protocol.ERROR_CODES)


def _examples() -> list[tuple[str, str]]:
    out = []
    for line in PROTOCOL_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith(("> {", "< {")):
            out.append((line[0], line[2:]))
    return out


EXAMPLES = _examples()


def test_the_protocol_doc_has_examples() -> None:
    kinds = {json.loads(text)["type"] for _d, text in EXAMPLES}
    assert set(protocol.CLIENT_MODELS) <= kinds
    assert {"warning", "verdict", "error", "ack", "welcome", "shutdown"} <= kinds


@pytest.mark.parametrize(("direction", "text"), EXAMPLES, ids=[f"{d}{i}" for i, (d, _t) in enumerate(EXAMPLES)])
def test_documented_example_is_valid(direction: str, text: str) -> None:
    frame = json.loads(text)
    adapter = client_adapter if direction == ">" else server_adapter
    adapter.validate_python(frame)
    if direction == ">":
        protocol.parse_client(frame)  # the server's own (strict) path accepts it too

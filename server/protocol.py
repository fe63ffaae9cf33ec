"""The websocket protocol: message models (pydantic), the error codes, and the JSON Schema of both.

Every frame is one JSON object with a ``type``. Clients send :data:`ClientMessage`, the server
answers with :data:`ServerMessage`; docs/protocol.md describes the exchange, docs/schema/*.json
is generated from these models::

    python -m livestream_compliance_server.protocol write docs/schema   # regenerate
    python -m livestream_compliance_server.protocol check docs/schema   # exit 1 if stale

Client models are validated in strict mode (``"seq": "5"`` is an error, not 5); unknown fields
are ignored so that newer clients keep working with older servers. The server *builds* its
frames as plain dicts (one ``orjson.dumps`` per frame); the server models exist for the schema
and for the tests, which validate every frame the server sends against them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from livestream_compliance.rules import ProductName
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

PROTOCOL_VERSION = 1

#: every ``code`` an error frame can carry (also the values of the ``kind`` label of the errors metric)
ERROR_CODES: tuple[str, ...] = (
    "bad_json",  # the frame is not JSON
    "invalid_utf8",  # the frame's bytes are not UTF-8
    "bad_message",  # not an object, a missing or wrongly typed field, a value out of range
    "unknown_type",  # a "type" this server does not know
    "missing_stream_id",  # a text message on a connection whose hello set no stream_id
    "too_large",  # the frame exceeds max_frame_bytes (the connection keeps working)
    "rate_limited",  # over the per-connection token bucket; retry_after says when to retry
    "bad_input",  # the checker refused the text (e.g. too long)
    "too_many_subscriptions",
    "internal",  # a bug: logged with a traceback on the server
)
ErrorCode = Literal[
    "bad_json",
    "invalid_utf8",
    "bad_message",
    "unknown_type",
    "missing_stream_id",
    "too_large",
    "rate_limited",
    "bad_input",
    "too_many_subscriptions",
    "internal",
]

MAX_ID_CHARS = 128
#: JavaScript's safe integer range, so browser clients can number frames freely
MAX_SEQ = 2**53 - 1

StreamId = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, description="The live stream (room) id.")]
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ, description="The client's number for this frame; echoed in the answer.")]
Name = Annotated[str, Field(max_length=MAX_ID_CHARS)]
Text = Annotated[str, Field(description="The text to check (UTF-8; at most max_text_chars characters).")]
SourceName = Literal["host", "chat"]
Millis = Annotated[int, Field(ge=0)]


class ProtocolError(Exception):
    """A frame the server refuses: answered with an error frame, the connection keeps working."""

    def __init__(self, code: str, detail: str, seq: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.seq = seq


# ---------------------------------------------------------------------------------- client
class _In(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Hello(_In):
    """Sets this connection's defaults. Answered with ``welcome``."""

    type: Literal["hello"]
    stream_id: StreamId | None = None
    source: SourceName = Field("host", description="Source of batch items that name none.")
    product: ProductName | None = Field(None, description="Product category of the stream: scopes product rules.")
    acks: bool | None = Field(None, description="Answer messages without findings with an ack frame.")


class Transcript(_In):
    """One speech-recognition result of the host's speech."""

    type: Literal["transcript"]
    stream_id: StreamId | None = None
    seq: Seq
    text: Text
    final: bool = Field(True, description="false for a partial result that may still be revised.")
    segment: Annotated[int, Field(ge=0, le=MAX_SEQ)] | Name | None = Field(
        None,
        description=(
            "Recognised utterance this result belongs to: partial and final results of one utterance share it "
            "(default: seq)."
        ),
    )
    speaker: Name | None = Field(
        None, description="Who is speaking (default: 'host'); split terms are joined per speaker."
    )
    start_ms: Millis | None = Field(None, description="Start of the utterance in the stream, milliseconds.")
    end_ms: Millis | None = None
    sent_at: float | None = Field(
        None, description="Unix time (seconds) the client sent this frame; feeds the send-to-warning latency metric."
    )
    product: ProductName | None = None


class Chat(_In):
    """One viewer chat line (danmu)."""

    type: Literal["chat"]
    stream_id: StreamId | None = None
    seq: Seq
    text: Text
    user: Name | None = Field(
        None,
        description=(
            "The viewer's id; lines of one user within chat_window seconds are joined. "
            "Without it, lines are checked alone."
        ),
    )
    sent_at: float | None = None
    product: ProductName | None = None


class BatchItem(_In):
    source: SourceName | None = Field(
        None, description="host (a transcript) or chat; default: the batch's, then the hello's source."
    )
    seq: Seq
    text: Text
    final: bool = True
    segment: Annotated[int, Field(ge=0, le=MAX_SEQ)] | Name | None = None
    speaker: Name | None = None
    user: Name | None = None
    start_ms: Millis | None = None
    end_ms: Millis | None = None
    sent_at: float | None = None


class Batch(_In):
    """Many transcript/chat items in one frame; each item is answered as if sent alone."""

    type: Literal["batch"]
    stream_id: StreamId | None = None
    seq: Seq | None = Field(None, description="Echoed in an error frame that refuses the whole batch.")
    source: SourceName | None = None
    product: ProductName | None = None
    items: Annotated[list[BatchItem], Field(min_length=1)]


class Script(_In):
    """Text about to be spoken (an AI host's line, a teleprompter line): always answered with a verdict."""

    type: Literal["script"]
    seq: Seq
    text: Text
    stream_id: StreamId | None = None
    product: ProductName | None = None


class Subscribe(_In):
    """Receive the warning frames of a stream (an overlay, a moderator's screen)."""

    type: Literal["subscribe"]
    stream_id: StreamId


class Unsubscribe(_In):
    type: Literal["unsubscribe"]
    stream_id: StreamId


class Ping(_In):
    type: Literal["ping"]
    seq: Seq | None = None


CLIENT_MODELS: dict[str, type[_In]] = {
    "hello": Hello,
    "transcript": Transcript,
    "chat": Chat,
    "batch": Batch,
    "script": Script,
    "subscribe": Subscribe,
    "unsubscribe": Unsubscribe,
    "ping": Ping,
}

ClientMessage = Annotated[
    Union[Hello, Transcript, Chat, Batch, Script, Subscribe, Unsubscribe, Ping],  # noqa: UP007
    Field(discriminator="type"),
]


def _seq_of(data: dict[str, Any]) -> int | None:
    seq = data.get("seq")
    return seq if type(seq) is int else None


def parse_client(data: Any) -> _In:
    """Validate one decoded frame. Raises :class:`ProtocolError` (``bad_message`` / ``unknown_type``)."""
    if type(data) is not dict:
        raise ProtocolError("bad_message", f"a frame must be a JSON object, not {type(data).__name__}")
    kind = data.get("type")
    model = CLIENT_MODELS.get(kind) if type(kind) is str else None
    if model is None:
        if "type" not in data:
            raise ProtocolError("bad_message", "the field 'type' is missing", _seq_of(data))
        raise ProtocolError(
            "unknown_type", f"unknown type {kind!r}; expected one of {', '.join(CLIENT_MODELS)}", _seq_of(data)
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError("bad_message", describe(exc), _seq_of(data)) from None


# ---------------------------------------------------------------------------------- fast path
_PRODUCTS: frozenset[str] = frozenset(ProductName.__args__)  # type: ignore[attr-defined]


class FastChat:
    """A ``chat`` frame read by :func:`fast_parse`: the same attributes and values as :class:`Chat`."""

    __slots__ = ("stream_id", "seq", "text", "user", "sent_at", "product")
    type = "chat"

    def __init__(self, stream_id: str | None, seq: int, text: str, user: str | None, sent_at: float | None,
                 product: str | None) -> None:
        self.stream_id = stream_id
        self.seq = seq
        self.text = text
        self.user = user
        self.sent_at = sent_at
        self.product = product


class FastTranscript:
    """A ``transcript`` frame read by :func:`fast_parse`: the same attributes and values as :class:`Transcript`."""

    __slots__ = ("stream_id", "seq", "text", "final", "segment", "speaker", "start_ms", "end_ms", "sent_at", "product")
    type = "transcript"

    def __init__(self, stream_id: str | None, seq: int, text: str, final: bool, segment: int | str | None,
                 speaker: str | None, start_ms: int | None, end_ms: int | None, sent_at: float | None,
                 product: str | None) -> None:
        self.stream_id = stream_id
        self.seq = seq
        self.text = text
        self.final = final
        self.segment = segment
        self.speaker = speaker
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.sent_at = sent_at
        self.product = product


def _name(v: Any) -> bool:  # Name | None
    return v is None or (type(v) is str and len(v) <= MAX_ID_CHARS)


def _millis(v: Any) -> bool:  # Millis | None
    return v is None or (type(v) is int and v >= 0)


def fast_parse(data: dict[str, Any]) -> FastChat | FastTranscript | None:
    """A ``chat`` or ``transcript`` frame (a decoded JSON object) read without pydantic, or None.

    Returns an object only when every field is one that the strict model accepts unchanged (so the
    values are exactly the model's); anything else, unusual or invalid (an int ``sent_at``, a
    ``product``, a wrong type, a value out of range, another ``type``), returns None and the caller
    validates with :func:`parse_client`, which gives the model or the error frame's detail.
    Unknown fields are ignored, as the models ignore them.
    """
    g = data.get
    kind = g("type")
    seq = g("seq")
    text = g("text")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ or type(text) is not str:
        return None
    sid = g("stream_id")
    if sid is not None and (type(sid) is not str or not 0 < len(sid) <= MAX_ID_CHARS):
        return None
    sent_at = g("sent_at")
    if sent_at is not None and type(sent_at) is not float:
        return None
    product = g("product")
    if product is not None and (type(product) is not str or product not in _PRODUCTS):
        return None
    if kind == "chat":
        user = g("user")
        if user is not None and (type(user) is not str or len(user) > MAX_ID_CHARS):  # _name(user), inlined
            return None
        return FastChat(sid, seq, text, user, sent_at, product)
    if kind == "transcript":
        final = g("final", True)
        segment = g("segment")
        speaker = g("speaker")
        start_ms = g("start_ms")
        end_ms = g("end_ms")
        if (
            type(final) is not bool
            or not _name(speaker)
            or not _millis(start_ms)
            or not _millis(end_ms)
            or not (_name(segment) or (type(segment) is int and 0 <= segment <= MAX_SEQ))
        ):
            return None
        return FastTranscript(sid, seq, text, final, segment, speaker, start_ms, end_ms, sent_at, product)
    return None


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(p) for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# ---------------------------------------------------------------------------------- server
class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WireFinding(_Out):
    """Finding.to_dict() plus where a match that crosses messages began."""

    rule_id: str
    category: str
    severity: Literal["info", "warning", "high", "critical"]
    source: SourceName
    start: Annotated[int, Field(ge=0, description="Offset into this message's text (characters).")]
    end: Annotated[int, Field(ge=0)]
    text: str = Field(description="The matched text; for a carried match it includes the part from earlier messages.")
    matched: str = Field(description="The rule term or pattern (normalised) that produced the hit.")
    message: str
    suggestion: str
    legal_basis: list[str]
    rule_version: str = Field(description="'<pack>@<pack version>#<rule set digest>' of the rules that produced it.")
    carry: Annotated[
        int, Field(ge=0, description="Characters of the match that were in earlier messages (0: none).")
    ] = 0
    from_seq: int | None = Field(None, description="seq of the message where a carried match began.")


class Warning(_Out):
    """Findings for one transcript/chat message (only what is new for its segment)."""

    type: Literal["warning"]
    stream_id: str
    seq: int
    source: SourceName
    final: bool
    segment: int | str | None = None
    speaker: str | None = Field(None, description="The transcript's speaker or the chat line's user.")
    text: str | None = Field(
        None, description="The message's text, which the findings' start/end index (overlays highlight it)."
    )
    rule_version: str = Field(description="Version of the rule set that checked this message.")
    findings: Annotated[list[WireFinding], Field(min_length=1)]


class Ack(_Out):
    """A message without (new) findings, when acks are on."""

    type: Literal["ack"]
    seq: int
    rule_version: str


class Verdict(_Out):
    """The answer to a script message."""

    type: Literal["verdict"]
    seq: int
    verdict: Literal["pass", "block"]
    findings: list[WireFinding]
    rewrite: str = Field(
        description="The text with every flagged span removed (equal to the text when there is nothing to remove)."
    )
    suggestions: list[str] = Field(description="The distinct suggestions of the findings' rules, in order.")
    rule_version: str


class Limits(_Out):
    max_frame_bytes: int
    max_text_chars: int
    max_batch_items: int
    rate: float
    burst: int


class Welcome(_Out):
    type: Literal["welcome"]
    protocol: int
    server_version: str
    rule_version: str
    stream_id: str | None
    source: SourceName
    product: str | None
    acks: bool
    limits: Limits


class Error(_Out):
    type: Literal["error"]
    code: ErrorCode
    detail: str
    seq: int | None = Field(None, description="seq of the refused frame, when it could be read.")
    retry_after: float | None = Field(None, description="rate_limited: seconds until the next message is accepted.")


class Subscribed(_Out):
    type: Literal["subscribed"]
    stream_id: str


class Unsubscribed(_Out):
    type: Literal["unsubscribed"]
    stream_id: str


class Pong(_Out):
    type: Literal["pong"]
    seq: int | None = None
    rule_version: str


class Shutdown(_Out):
    """The server is shutting down: stop sending; frames already sent are still answered."""

    type: Literal["shutdown"]
    detail: str


ServerMessage = Annotated[
    Union[Welcome, Warning, Ack, Verdict, Error, Subscribed, Unsubscribed, Pong, Shutdown],  # noqa: UP007
    Field(discriminator="type"),
]

client_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)
server_adapter: TypeAdapter[Any] = TypeAdapter(ServerMessage)


# ---------------------------------------------------------------------------------- schema
def schemas() -> dict[str, dict[str, Any]]:
    """``{file name: JSON Schema}`` of both directions."""
    out = {}
    for name, adapter, title in (
        ("client-message.json", client_adapter, "livestream-compliance client message"),
        ("server-message.json", server_adapter, "livestream-compliance server message"),
    ):
        schema = adapter.json_schema()
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": title,
            "description": (
                f"Protocol version {PROTOCOL_VERSION}. "
                "Generated from livestream_compliance_server.protocol; do not edit."
            ),
            **schema,
        }
        out[name] = schema
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def write_schemas(directory: str | Path) -> list[Path]:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        p = d / name
        p.write_text(render(schema), encoding="utf-8")
        written.append(p)
    return written


def stale_schemas(directory: str | Path) -> list[str]:
    """Names of schema files in ``directory`` that differ from the generated ones (or are missing)."""
    d = Path(directory)
    stale = []
    for name, schema in schemas().items():
        p = d / name
        if not p.is_file() or p.read_text(encoding="utf-8") != render(schema):
            stale.append(name)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ("write", "check"):
        sys.stderr.write("usage: python -m livestream_compliance_server.protocol {write|check} DIR\n")
        return 2
    if args[0] == "write":
        for p in write_schemas(args[1]):
            print(p)
        return 0
    stale = stale_schemas(args[1])
    for name in stale:
        sys.stderr.write(f"{args[1]}/{name} is stale: regenerate it with 'write'\n")
    return 1 if stale else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

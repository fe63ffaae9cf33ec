"""Input readers: turn transcript and chat files into :class:`Utterance` objects.

This module is the I/O edge of the checker. It decodes bytes, works out the file format and
yields one :class:`Utterance` per line of text, carrying the 1-based line number of that text in
the input file so that a finding can point back at ``file:line``.

Encodings (:func:`decode_bytes`)
    UTF-8 with or without a BOM; UTF-16 LE/BE only when the file starts with a BOM; otherwise
    strict UTF-8 is tried first, then strict GB18030 (a superset of GBK and GB2312). ``\\r\\n``
    and lone ``\\r`` become ``\\n`` and a leading BOM is removed. Anything else is an
    :class:`~.errors.InputError`.

Formats (:func:`detect_format`, :func:`parse_text`)
    ``txt``
        One utterance per line. Blank or whitespace-only lines are skipped but still counted.
        The text is kept exactly as written (only the newline is removed), so character
        offsets into ``Utterance.text`` are offsets into that line of the file.
    ``srt``
        Cues of an optional index line, a timing line ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` and
        text lines. Each text line is its own utterance with its own line number and the cue's
        ``start``/``end``. Missing index lines, extra blank lines, ``.`` or ``,`` before the
        milliseconds, a missing hours field and position settings after the end time are all
        accepted. A timing line (a line with ``-->`` where a cue starts, or any line that
        follows an index line and starts like a timestamp) that cannot be parsed, or an index
        line at the start not followed by a timing line, is an ``InputError``. Text that follows
        a blank line without a new timing line is kept and given the previous cue's times
        (a checker must not silently lose text).
    ``vtt``
        A ``WEBVTT`` header line (optionally followed by text and by header lines up to the
        first blank line), then blocks separated by blank lines. ``NOTE``, ``STYLE`` and
        ``REGION`` blocks are skipped. A cue is an optional identifier line, a timing line
        ``[HH:]MM:SS.mmm --> [HH:]MM:SS.mmm [settings]`` and text lines. Each text line is its
        own utterance, kept verbatim: voice and class tags such as ``<v 主播>`` are *not*
        removed, so offsets still index the line in the file. A block without a timing line
        after the first cue is kept as more text of the previous cue.
    ``jsonl`` (also ``.ndjson``)
        One JSON object per line; blank lines are skipped. Fields, first match wins:

        ========  ===========================================  ==============================
        field     accepted keys                                value
        ========  ===========================================  ==============================
        text      ``text``, ``content``, ``comment``, ``msg``  string, required
        source    ``source``, ``role``                         see below, optional
        user      ``user``, ``nickname``, ``uid``, ``user_id``  string or number, optional
        time      ``time``, ``ts``, ``timestamp``              string or number, optional;
                                                               stored in ``Utterance.start``
        product   ``product``                                  string or number, optional
        ========  ===========================================  ==============================

        Source values (case-insensitive): ``host``, ``anchor``, ``streamer``, ``主播`` mean
        :attr:`Source.HOST`; ``chat``, ``viewer``, ``user``, ``audience``, ``观众`` mean
        :attr:`Source.CHAT`. A key whose value is ``null`` counts as absent. A line that is not
        valid JSON, not an object, has no text field, or has a field of the wrong type or an
        unknown source value is an ``InputError`` naming the file and line. For ``jsonl`` the
        utterance text is the record's text (JSON escapes decoded), not the raw line.

In every format an utterance whose text is empty or whitespace only is not yielded.

Format detection uses the file extension (``.txt .srt .vtt .jsonl .ndjson``, any case); without
one of those it sniffs the text: a ``WEBVTT`` first line means vtt, a first non-empty line
starting with ``{`` means jsonl, a digit line followed by a ``-->`` line (or a first line that
is an SRT timing line) means srt, and anything else is txt.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from .errors import InputError, UsageError
from .findings import Source

__all__ = [
    "FORMATS",
    "MAX_INPUT_BYTES",
    "Utterance",
    "decode_bytes",
    "detect_format",
    "parse_text",
    "read_path",
]

#: Largest input accepted by :func:`read_path`, in bytes (512 MiB).
MAX_INPUT_BYTES = 512 * 1024 * 1024

#: The format names :func:`parse_text` understands.
FORMATS = ("txt", "srt", "vtt", "jsonl")

_STDIN_NAME = "<stdin>"
_READ_CHUNK = 1 << 20

_EXTENSIONS = {
    ".txt": "txt",
    ".srt": "srt",
    ".vtt": "vtt",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_FORMAT_ALIASES = {"ndjson": "jsonl"}

_BOM_UTF8 = b"\xef\xbb\xbf"
_BOM_UTF16_LE = b"\xff\xfe"
_BOM_UTF16_BE = b"\xfe\xff"
_BOM_UTF32_LE = b"\xff\xfe\x00\x00"
_BOM_UTF32_BE = b"\x00\x00\xfe\xff"


@dataclass(frozen=True, slots=True)
class Utterance:
    """One line of text to check, with where it came from."""

    line: int  # 1-based line number in the input file where this text is
    text: str  # the text of that line (no trailing newline); jsonl: the record's text
    start: str | None = None  # srt/vtt cue start "HH:MM:SS.mmm"; jsonl: the record's time
    end: str | None = None  # srt/vtt cue end "HH:MM:SS.mmm"
    source: Source | None = None  # jsonl: from the record; otherwise None (caller decides)
    user: str | None = None  # jsonl: viewer name or id, if present
    product: str | None = None  # jsonl: product category, if present


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _normalise_newlines(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_bytes(data: bytes, name: str) -> str:
    """Decode ``data`` (the contents of the file ``name``) to text with ``\\n`` newlines.

    UTF-8 (with or without BOM) and BOM-marked UTF-16 are honoured; data without a BOM is
    tried as strict UTF-8 and then strict GB18030. Raises :class:`InputError` naming ``name``
    when the data cannot be decoded.
    """
    if data.startswith(_BOM_UTF32_LE) or data.startswith(_BOM_UTF32_BE):
        raise InputError("UTF-32 input is not supported; convert it to UTF-8", file=name)
    if data.startswith(_BOM_UTF8):
        try:
            text = data[len(_BOM_UTF8) :].decode("utf-8")
        except UnicodeDecodeError as e:
            offset = e.start + len(_BOM_UTF8)
            raise InputError(
                f"cannot decode as UTF-8 (file has a UTF-8 BOM; invalid byte at offset {offset})",
                file=name,
                line=_line_of_offset(data, offset),
            ) from None
    elif data.startswith(_BOM_UTF16_LE) or data.startswith(_BOM_UTF16_BE):
        codec = "utf-16-le" if data.startswith(_BOM_UTF16_LE) else "utf-16-be"
        try:
            text = data[2:].decode(codec)
        except UnicodeDecodeError as e:
            raise InputError(
                f"cannot decode as {codec.upper()} (file has a UTF-16 BOM; "
                f"invalid data at offset {e.start + 2})",
                file=name,
            ) from None
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as utf8_error:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError as gb_error:
                # Report the position of whichever decoder got further: that is the likelier
                # encoding, and its failure point the likelier place of the damage.
                offset = max(utf8_error.start, gb_error.start)
                raise InputError(
                    f"cannot decode as UTF-8 or GB18030 (undecodable byte "
                    f"0x{data[offset]:02x} at offset {offset})",
                    file=name,
                    line=_line_of_offset(data, offset),
                ) from None
    if text.startswith("\ufeff"):  # e.g. a GB18030-encoded BOM
        text = text[1:]
    return _normalise_newlines(text)


# --------------------------------------------------------------------------------------------
# Format detection
# --------------------------------------------------------------------------------------------

_INDEX_RE = re.compile(r"[0-9]+")
# Tolerant timestamp: optional hours, 1-2 digit minutes/seconds, "," or "." and 1-3 digit
# fraction (optional). Range checks happen in _norm_timestamp.
_TS = r"(?:([0-9]+):)?([0-9]{1,2}):([0-9]{1,2})(?:[,.]([0-9]{1,3}))?"
_TIMING_RE = re.compile(rf"[ \t]*{_TS}[ \t]*-->[ \t]*{_TS}(?:[ \t]+.*)?[ \t]*", re.ASCII)
# A line that starts like a timestamp: after a cue index it is taken as the timing line.
_TIMING_HINT_RE = re.compile(r"[ \t]*[0-9]+:[0-9]", re.ASCII)
_VTT_HEADER_RE = re.compile(r"WEBVTT(?:[ \t].*)?")
_VTT_SKIP_BLOCK_RE = re.compile(r"(?:NOTE|STYLE|REGION)(?:[ \t].*)?")


def _first_lines(text: str, limit: int = 64) -> list[str]:
    """Up to ``limit`` leading lines of ``text`` (without splitting the whole input)."""
    lines: list[str] = []
    pos = 0
    while len(lines) < limit and pos <= len(text):
        nl = text.find("\n", pos)
        if nl < 0:
            lines.append(text[pos:])
            break
        lines.append(text[pos:nl])
        pos = nl + 1
    return lines


def detect_format(name: str, text: str) -> str:
    """Return ``"txt"``, ``"srt"``, ``"vtt"`` or ``"jsonl"`` for the input ``name``/``text``.

    The extension of ``name`` decides when it is one of ``.txt .srt .vtt .jsonl .ndjson``;
    otherwise the start of ``text`` is sniffed.
    """
    ext = os.path.splitext(os.fspath(name))[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _first_lines(_normalise_newlines(text))
    if lines and _VTT_HEADER_RE.fullmatch(lines[0]):
        return "vtt"
    nonblank = [(i, s) for i, s in enumerate(lines) if s.strip()]
    if not nonblank:
        return "txt"
    i, first = nonblank[0]
    if first.lstrip().startswith("{"):
        return "jsonl"
    if _TIMING_RE.fullmatch(first):
        return "srt"
    if _INDEX_RE.fullmatch(first.strip()) and i + 1 < len(lines) and "-->" in lines[i + 1]:
        return "srt"
    return "txt"


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _norm_timestamp(h: str | None, m: str, s: str, frac: str | None) -> str | None:
    minutes, seconds = int(m), int(s)
    if minutes > 59 or seconds > 59:
        return None
    hours = int(h) if h is not None else 0
    millis = (frac or "").ljust(3, "0")
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis}"


def _parse_timing(line: str, name: str, lineno: int, kind: str) -> tuple[str, str]:
    m = _TIMING_RE.fullmatch(line)
    start = end = None
    if m:
        start = _norm_timestamp(*m.group(1, 2, 3, 4))
        end = _norm_timestamp(*m.group(5, 6, 7, 8))
    if start is None or end is None:
        example = (
            "HH:MM:SS,mmm --> HH:MM:SS,mmm" if kind == "srt" else "HH:MM:SS.mmm --> HH:MM:SS.mmm"
        )
        raise InputError(
            f"malformed {kind.upper()} timing line {line.strip()!r} (expected {example})",
            file=name,
            line=lineno,
        )
    return start, end


def _parse_txt(lines: list[str]) -> Iterator[Utterance]:
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            yield Utterance(lineno, line)


def _parse_srt(lines: list[str], name: str) -> Iterator[Utterance]:
    n = len(lines)
    cue: tuple[str, str] | None = None
    in_cue = False  # directly after a timing line or a text line of the current cue
    i = 0
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            in_cue = False
            i += 1
            continue
        if in_cue:
            # Tolerate a missing blank line before the next cue.
            if _TIMING_RE.fullmatch(line):
                cue = _parse_timing(line, name, i + 1, "srt")
                i += 1
                continue
            if _INDEX_RE.fullmatch(stripped) and i + 1 < n and _TIMING_RE.fullmatch(lines[i + 1]):
                i += 1
                continue
            assert cue is not None  # in_cue is only set once a timing line was read
            yield Utterance(i + 1, line, cue[0], cue[1])
            i += 1
            continue
        # Between cues: expect an index line or a timing line.
        if "-->" in line:
            cue = _parse_timing(line, name, i + 1, "srt")
            in_cue = True
            i += 1
            continue
        if _INDEX_RE.fullmatch(stripped):
            j = i + 1
            while j < n and not lines[j].strip():
                j += 1
            if j < n and ("-->" in lines[j] or _TIMING_HINT_RE.match(lines[j])):
                # The timing line; parse it here so a malformed one is reported.
                cue = _parse_timing(lines[j], name, j + 1, "srt")
                in_cue = True
                i = j + 1
                continue
            if cue is None:
                raise InputError(
                    "expected a timing line 'HH:MM:SS,mmm --> HH:MM:SS,mmm' after the cue index",
                    file=name,
                    line=j + 1 if j < n else i + 1,
                )
        if cue is None:
            raise InputError(
                "expected an SRT cue (an index line or a timing line "
                "'HH:MM:SS,mmm --> HH:MM:SS,mmm')",
                file=name,
                line=i + 1,
            )
        # Text after a blank line inside a cue: keep it, with the previous cue's times.
        in_cue = True
        yield Utterance(i + 1, line, cue[0], cue[1])
        i += 1


def _parse_vtt(lines: list[str], name: str) -> Iterator[Utterance]:
    n = len(lines)
    if not n or not _VTT_HEADER_RE.fullmatch(lines[0]):
        raise InputError("missing 'WEBVTT' header on the first line", file=name, line=1)
    i = 1
    while i < n and lines[i].strip():  # header lines up to the first blank line
        i += 1
    cue: tuple[str, str] | None = None
    while i < n:
        if not lines[i].strip():
            i += 1
            continue
        begin = i
        while i < n and lines[i].strip():
            i += 1
        end = i  # block is lines[begin:end]
        first = lines[begin]
        if _VTT_SKIP_BLOCK_RE.fullmatch(first):
            continue
        if "-->" in first:
            timing = begin
        elif begin + 1 < end and "-->" in lines[begin + 1]:
            timing = begin + 1  # lines[begin] is the cue identifier
        else:
            if cue is None:
                raise InputError(
                    "expected a WebVTT cue: an optional identifier line, then a timing line "
                    "'HH:MM:SS.mmm --> HH:MM:SS.mmm'",
                    file=name,
                    line=begin + 1,
                )
            # A block without timing after a cue: keep its text with the previous cue's times.
            for k in range(begin, end):
                yield Utterance(k + 1, lines[k], cue[0], cue[1])
            continue
        cue = _parse_timing(lines[timing], name, timing + 1, "vtt")
        for k in range(timing + 1, end):
            yield Utterance(k + 1, lines[k], cue[0], cue[1])


_TEXT_KEYS = ("text", "content", "comment", "msg")
_SOURCE_KEYS = ("source", "role")
_USER_KEYS = ("user", "nickname", "uid", "user_id")
_TIME_KEYS = ("time", "ts", "timestamp")
_PRODUCT_KEYS = ("product",)

_SOURCE_VALUES = {
    "host": Source.HOST,
    "anchor": Source.HOST,
    "streamer": Source.HOST,
    "主播": Source.HOST,
    "chat": Source.CHAT,
    "viewer": Source.CHAT,
    "user": Source.CHAT,
    "audience": Source.CHAT,
    "观众": Source.CHAT,
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _pick(record: dict[str, Any], keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        value = record.get(key)
        if value is not None:
            return key, value
    return None


def _scalar_field(
    record: dict[str, Any], keys: tuple[str, ...], name: str, lineno: int
) -> str | None:
    picked = _pick(record, keys)
    if picked is None:
        return None
    key, value = picked
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise InputError(
        f"field {key!r} must be a string or number, not {_json_type(value)}",
        file=name,
        line=lineno,
    )


def _parse_jsonl(lines: list[str], name: str) -> Iterator[Utterance]:
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(
                f"invalid JSON: {e.msg} (column {e.colno})", file=name, line=lineno
            ) from None
        except RecursionError:
            raise InputError("invalid JSON: nested too deeply", file=name, line=lineno) from None
        if not isinstance(record, dict):
            raise InputError(
                f"expected a JSON object, got {_json_type(record)}", file=name, line=lineno
            )
        picked = _pick(record, _TEXT_KEYS)
        if picked is None:
            raise InputError(
                "record has no text field (expected one of: " + ", ".join(_TEXT_KEYS) + ")",
                file=name,
                line=lineno,
            )
        key, text = picked
        if not isinstance(text, str):
            raise InputError(
                f"field {key!r} must be a string, not {_json_type(text)}", file=name, line=lineno
            )
        source: Source | None = None
        picked = _pick(record, _SOURCE_KEYS)
        if picked is not None:
            key, value = picked
            if not isinstance(value, str):
                raise InputError(
                    f"field {key!r} must be a string, not {_json_type(value)}",
                    file=name,
                    line=lineno,
                )
            source = _SOURCE_VALUES.get(value.strip().lower())
            if source is None:
                raise InputError(
                    f"unknown {key} {value!r}; expected host (anchor, streamer, 主播) "
                    "or chat (viewer, user, audience, 观众)",
                    file=name,
                    line=lineno,
                )
        user = _scalar_field(record, _USER_KEYS, name, lineno)
        time = _scalar_field(record, _TIME_KEYS, name, lineno)
        product = _scalar_field(record, _PRODUCT_KEYS, name, lineno)
        if not text.strip():
            continue
        yield Utterance(lineno, text, start=time, source=source, user=user, product=product)


def parse_text(text: str, fmt: str, name: str) -> Iterator[Utterance]:
    """Yield the utterances of already-decoded ``text`` in format ``fmt``.

    ``name`` is used in error messages. Newlines are normalised and a leading BOM dropped, as
    :func:`decode_bytes` does. Errors (:class:`InputError`) are raised lazily, while iterating.
    An unknown ``fmt`` raises :class:`UsageError` at once.
    """
    key = _FORMAT_ALIASES.get(str(fmt).lower(), str(fmt).lower())
    if key not in FORMATS:
        raise UsageError(f"unknown input format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _normalise_newlines(text).split("\n")
    if key == "txt":
        return _parse_txt(lines)
    if key == "srt":
        return _parse_srt(lines, name)
    if key == "vtt":
        return _parse_vtt(lines, name)
    return _parse_jsonl(lines, name)


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


def _too_large(name: str) -> InputError:
    return InputError(
        f"input is larger than the limit of {MAX_INPUT_BYTES} bytes "
        f"({MAX_INPUT_BYTES // (1024 * 1024)} MiB)",
        file=name,
    )


def _read_limited(stream: BinaryIO, name: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(min(_READ_CHUNK, MAX_INPUT_BYTES + 1 - total))
        if not chunk:
            break
        if isinstance(chunk, str):
            raise UsageError("stdin must be a binary stream (e.g. sys.stdin.buffer)")
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_INPUT_BYTES:
            raise _too_large(name)
    return b"".join(chunks)


def _read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_INPUT_BYTES:
                raise _too_large(path)
            return _read_limited(f, path)
    except FileNotFoundError:
        raise InputError("no such file", file=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, not a file", file=path) from None
    except PermissionError:
        raise InputError("permission denied", file=path) from None
    except OSError as e:
        raise InputError(f"cannot read file: {e.strerror or e}", file=path) from None


def read_path(
    path: str, *, fmt: str | None = None, stdin: BinaryIO | None = None
) -> list[Utterance]:
    """Read, decode and parse one input; ``"-"`` means standard input.

    ``fmt`` forces a format; otherwise :func:`detect_format` decides. ``stdin`` is the byte
    stream read for ``"-"`` (default ``sys.stdin.buffer``). Unreadable, oversized, undecodable
    or malformed input raises :class:`InputError` naming the path (``<stdin>`` for ``"-"``).
    """
    path = os.fspath(path)
    if fmt is not None:
        fmt = _FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
        if fmt not in FORMATS:
            raise UsageError(f"unknown input format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if path == "-":
        name = _STDIN_NAME
        data = _read_limited(stdin if stdin is not None else sys.stdin.buffer, name)
    else:
        name = path
        data = _read_file(path)
    text = decode_bytes(data, name)
    if fmt is None:
        fmt = detect_format(path if path != "-" else "", text)
    return list(parse_text(text, fmt, name))

"""Immutable result types: Severity (ordered), Source, Finding."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any


class Severity(enum.IntEnum):
    """Ordered severities: ``info < warning < high < critical``."""

    INFO = 10
    WARNING = 20
    HIGH = 30
    CRITICAL = 40

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        from .errors import UsageError

        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise UsageError(f"unknown severity {value!r}; expected one of {names}") from None

    def __str__(self) -> str:
        return self.label


class Source(str, enum.Enum):
    """Who produced the text: the host's speech or a viewer's chat line."""

    HOST = "host"
    CHAT = "chat"

    @classmethod
    def parse(cls, value: str | Source) -> Source:
        from .errors import UsageError

        if isinstance(value, Source):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise UsageError(f"unknown source {value!r}; expected host or chat") from None

    def __str__(self) -> str:
        return self.value

    #: hash as the plain string (``Enum.__hash__`` is a Python-level call, ~170 ns on every lookup
    #: of a per-source table); consistent with equality, as ``Source.CHAT == "chat"``
    __hash__ = str.__hash__


@dataclass(frozen=True, slots=True)
class LegalBasis:
    law: str
    article: str
    note: str = ""

    def __str__(self) -> str:
        return f"{self.law} {self.article}".strip()


@dataclass(frozen=True, slots=True)
class Finding:
    """One warning about one span of one text.

    ``start``/``end`` are 0-based character offsets into the *original* text that was checked
    (not the normalised form); ``text`` is ``original[start:end]``.
    """

    rule_id: str
    category: str
    severity: Severity
    source: Source
    start: int
    end: int
    text: str
    matched: str  # the rule term or pattern (normalised) that produced the hit
    message: str
    suggestion: str
    legal_basis: tuple[LegalBasis, ...]
    rule_version: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; field names are the wire format of the CLI, websocket and workers."""
        # Built field by field: ``dataclasses.asdict`` deep-copies every value (30-50 µs a finding,
        # more than checking a clean message); this is ~2 µs and on the sidecar's per-warning path.
        return {
            "rule_id": self.rule_id,
            "category": self.category,
            "severity": self.severity.label,
            "source": self.source.value,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "matched": self.matched,
            "message": self.message,
            "suggestion": self.suggestion,
            "legal_basis": [str(b) for b in self.legal_basis],
            "rule_version": self.rule_version,
        }

    def fingerprint(self, context: str = "") -> str:
        """A deterministic id for this finding within ``context`` (e.g. an input entry id)."""
        key = f"{context}\x1f{self.rule_id}\x1f{self.start}\x1f{self.end}".encode()
        return hashlib.blake2b(key, digest_size=12).hexdigest()

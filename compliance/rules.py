"""The rules as the engine uses them (plain frozen dataclasses) and building a RuleSet from text.

Validation (pydantic models of the rule-file schema) lives in :mod:`livestream_compliance.schema`
and is imported only when rule files are parsed, so a start from the checker-state cache does not
pay for pydantic. Reading files from disk lives in :mod:`livestream_compliance.loader`; this module
only parses text it is given, so it can be used and tested without touching the file system.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .errors import RuleError, RuleIssue
from .findings import LegalBasis, Severity, Source

if TYPE_CHECKING:
    from .schema import PackModel, RuleModel

#: Product categories a stream may declare and a rule may be scoped to.
PRODUCT_CATEGORIES: tuple[str, ...] = (
    "general",
    "food",
    "health_food",
    "cosmetics",
    "drug",
    "medical_device",
    "finance",
    "education",
    "apparel",
    "electronics",
    "household",
    "jewelry",
    "collectibles",
)

ProductName = Literal[
    "general",
    "food",
    "health_food",
    "cosmetics",
    "drug",
    "medical_device",
    "finance",
    "education",
    "apparel",
    "electronics",
    "household",
    "jewelry",
    "collectibles",
]


def _example_span(text: str, hit: str, occurrence: int) -> tuple[int, int] | None:
    pos = -1
    for _ in range(occurrence + 1):
        pos = text.find(hit, pos + 1)
        if pos < 0:
            return None
    return pos, pos + len(hit)


@dataclass(frozen=True, slots=True)
class MatchExample:
    """A text the rule must flag, with the exact substring (``hit``) it must flag."""

    text: str
    hit: str
    #: which occurrence of ``hit`` in ``text`` (0-based) is the expected span
    occurrence: int = 0
    source: Source | None = None
    product: str | None = None

    def span(self) -> tuple[int, int] | None:
        return _example_span(self.text, self.hit, self.occurrence)


@dataclass(frozen=True, slots=True)
class NoMatchExample:
    """A text the rule must not flag."""

    text: str
    source: Source | None = None
    product: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """A validated rule as the engine uses it (plain, hashable, no pydantic on the hot path)."""

    id: str
    category: str
    severity: Severity
    sources: frozenset[Source]
    products: frozenset[str]
    exempt_products: frozenset[str]
    terms: tuple[str, ...]
    patterns: tuple[str, ...]
    exceptions: tuple[str, ...]
    word_boundary: bool
    negatable: bool
    aliases: bool
    legal_basis: tuple[LegalBasis, ...]
    message: str
    suggestion: str
    must_match: tuple[MatchExample, ...]
    must_not_match: tuple[NoMatchExample, ...]
    pack: str
    version: str
    file: str
    description: str = ""
    homophones: bool = True
    contexts: frozenset[str] = frozenset()
    #: reported by the paraphrase model (classifier.py) for its category, not by terms or patterns
    classifier: bool = False
    #: terms count only in a disguised spelling (pinyin, homophone, doubled or digit form), never as written
    disguised_only: bool = False

    def applies(self, source: Source, product: str | None) -> bool:
        if source not in self.sources:
            return False
        if product is None:
            return True
        if product in self.exempt_products:
            return False
        return not self.products or product in self.products


@dataclass(frozen=True)
class RuleSet:
    """An immutable, validated collection of rules with a content-derived version."""

    rules: tuple[Rule, ...]
    version: str
    files: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.rules)

    def by_id(self) -> dict[str, Rule]:
        return {r.id: r for r in self.rules}

    def term_count(self) -> int:
        return sum(len(r.terms) + len(r.patterns) for r in self.rules)

def parse_rule_file(text: str, name: str) -> tuple[PackModel, tuple[RuleModel, ...]]:
    """Parse and validate one rule file's text. Raises RuleError naming file, rule and field.

    Each rule is validated on its own so that every broken rule of a file is reported at once.
    """
    from .schema import parse_rule_file as parse

    return parse(text, name)


#: What one rule file gave: its name, the SHA-256 of its text, the rules it defines in file order.
FileRules = tuple[str, str, tuple[Rule, ...]]


def file_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build_rule_set(
    layers: Iterable[Iterable[tuple[str, str]]],
    *,
    known: Mapping[tuple[str, str], tuple[Rule, ...]] | None = None,
    files_out: list[list[FileRules]] | None = None,
) -> RuleSet:
    """Build a RuleSet from layers of ``(file name, TOML text)``.

    Inside one layer every rule id must be unique; a later layer overrides an earlier one's
    rule with the same id (a user's directory over the defaults). All problems are collected
    and raised together as one RuleError.

    ``known``: ``(file name, file_digest(text))`` -> the rules that file defines, from an earlier
    build of the same code (a state cache vouches for it); such a file is not parsed again and its
    very rule objects are used. ``files_out``: filled with what each file gave, per layer.
    """
    issues: list[RuleIssue] = []
    merged: dict[str, Rule] = {}
    files: list[str] = []
    digest = hashlib.sha256()
    for layer in layers:
        seen_in_layer: dict[str, str] = {}
        per_file: list[FileRules] = []
        for name, text in layer:
            files.append(name)
            digest.update(name.encode() + b"\0" + text.encode() + b"\0")
            fd = file_digest(text) if known or files_out is not None else ""
            rules = known.get((name, fd)) if known else None
            if rules is None:
                from .schema import parse_rule_file, rule_from_model

                try:
                    pack, models = parse_rule_file(text, name)
                except RuleError as exc:
                    issues.extend(exc.issues)
                    continue
                rules = tuple(rule_from_model(m, pack, name) for m in models)
            per_file.append((name, fd, rules))
            for r in rules:
                if r.id in seen_in_layer:
                    issues.append(
                        RuleIssue(name, r.id, "id", f"duplicate rule id (also defined in {seen_in_layer[r.id]})")
                    )
                    continue
                seen_in_layer[r.id] = name
                merged[r.id] = r
        if files_out is not None:
            files_out.append(per_file)
    if issues:
        raise RuleError(issues)
    if not merged:
        raise RuleError(RuleIssue("<rules>", None, None, "no rules were loaded"))
    return RuleSet(
        rules=tuple(sorted(merged.values(), key=lambda r: r.id)),
        version=digest.hexdigest()[:12],
        files=tuple(files),
    )

"""Rule-file schema (pydantic models) and validation: TOML text -> validated models -> plain rules.

Imported only when rule files are parsed (a cold start, ``compliance rules validate``); a start
from the checker-state cache never imports pydantic. The engine works on the plain dataclasses
of :mod:`livestream_compliance.rules`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import RuleError, RuleIssue
from .findings import LegalBasis, Severity, Source
from .literals import prepare
from .rules import MatchExample, NoMatchExample, ProductName, Rule, _example_span

_ID_RE = r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$"
_CATEGORY_RE = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class LegalRef(_Strict):
    law: Annotated[str, Field(min_length=2)]
    article: Annotated[str, Field(min_length=1)]
    note: str = ""


class MatchExampleModel(_Strict):
    """A text the rule must flag, with the exact substring (``hit``) it must flag."""

    text: Annotated[str, Field(min_length=1)]
    hit: Annotated[str, Field(min_length=1)]
    #: which occurrence of ``hit`` in ``text`` (0-based) is the expected span
    occurrence: Annotated[int, Field(ge=0)] = 0
    source: Source | None = None
    product: ProductName | None = None

    @model_validator(mode="after")
    def _hit_in_text(self) -> MatchExampleModel:
        if self.span() is None:
            raise ValueError(f"hit {self.hit!r} does not occur {self.occurrence + 1}x in text {self.text!r}")
        return self

    def span(self) -> tuple[int, int] | None:
        return _example_span(self.text, self.hit, self.occurrence)


class NoMatchExampleModel(_Strict):
    """A text the rule must not flag."""

    text: Annotated[str, Field(min_length=1)]
    source: Source | None = None
    product: ProductName | None = None


class RuleModel(_Strict):
    """One rule as written in a rule file. See docs/rules.md for every field."""

    id: Annotated[str, Field(pattern=_ID_RE, max_length=64)]
    category: Annotated[str, Field(pattern=_CATEGORY_RE, max_length=48)]
    severity: Literal["info", "warning", "high", "critical"]
    sources: Annotated[tuple[Source, ...], Field(min_length=1)] = (Source.HOST, Source.CHAT)
    products: tuple[ProductName, ...] = ()
    exempt_products: tuple[ProductName, ...] = ()
    terms: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    patterns: tuple[Annotated[str, Field(min_length=1, max_length=512)], ...] = ()
    exceptions: tuple[Annotated[str, Field(min_length=1, max_length=64)], ...] = ()
    word_boundary: bool = False
    negatable: bool = True
    #: also index pinyin and homophone spellings of the terms (off for rules that list their variants)
    aliases: bool = True
    #: also index short terms with one character swapped for a common character of the same pinyin
    #: (刷丹 for 刷单), checked against jieba's word boundaries; independent of ``aliases``
    homophones: bool = True
    #: contexts that cancel a hit besides negation (see docs/rules.md): ``question`` (in viewer chat, a
    #: question about the item, 这个是真象牙吗, is not an offer), ``own_range`` (a superlative scoped to
    #: the shop's own range, 我们家三个色号里最…, is self-comparison), ``verdict`` (a refusal, ban or scam
    #: verdict after the hit cancels it even where ``negatable`` is false: 无效退款这种话不能说)
    contexts: tuple[Literal["question", "own_range", "verdict"], ...] = ()
    #: a classifier rule: reported by the paraphrase model for this rule's ``category`` on lines no
    #: term or pattern rule flagged (see classifier.py); it has no terms, patterns or exceptions
    classifier: bool = False
    #: the terms count only in a disguised spelling (pinyin, homophone, doubled or digit form: 弟一,
    #: diyi, 第壹, 蕞低价), never as written: a word too common to flag plainly (第一, 最低价) whose
    #: disguise is itself the intent
    disguised_only: bool = False
    legal_basis: Annotated[tuple[LegalRef, ...], Field(min_length=1)]
    message: Annotated[str, Field(min_length=2)]
    suggestion: Annotated[str, Field(min_length=1)]
    must_match: Annotated[tuple[MatchExampleModel, ...], Field(min_length=2)]
    must_not_match: Annotated[tuple[NoMatchExampleModel | str, ...], Field(min_length=2)]
    description: str = ""

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for p in value:
            try:
                rx = prepare(p).rx  # compiled once, shared with the checker build
            except re.error as exc:
                raise ValueError(f"pattern {p!r} does not compile: {exc}") from None
            if rx.groups and "hit" not in rx.groupindex:
                raise ValueError(f"pattern {p!r}: use non-capturing groups (?:...) or name the span (?P<hit>...)")
            if rx.match(""):
                raise ValueError(f"pattern {p!r} matches the empty string")
        return value

    @model_validator(mode="after")
    def _has_matchers(self) -> RuleModel:
        if self.classifier:
            if self.terms or self.patterns or self.exceptions:
                raise ValueError("a classifier rule has no terms, patterns or exceptions (the model decides)")
        elif not self.terms and not self.patterns:
            raise ValueError("a rule needs at least one of terms or patterns")
        if self.disguised_only and (self.patterns or not (self.aliases or self.homophones)):
            raise ValueError("disguised_only applies to terms with aliases or homophones, not to patterns")
        overlap = set(self.products) & set(self.exempt_products)
        if overlap:
            raise ValueError(f"products and exempt_products overlap: {sorted(overlap)}")
        return self


class PackModel(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
    version: Annotated[str, Field(min_length=1, max_length=32)]
    description: str = ""




def rule_from_model(m: RuleModel, pack: PackModel, file: str) -> Rule:
    """The engine's plain :class:`Rule` for a validated rule model."""
    return Rule(
        id=m.id,
        category=m.category,
        severity=Severity.parse(m.severity),
        sources=frozenset(m.sources),
        products=frozenset(m.products),
        exempt_products=frozenset(m.exempt_products),
        terms=m.terms,
        patterns=m.patterns,
        exceptions=m.exceptions,
        word_boundary=m.word_boundary,
        negatable=m.negatable,
        aliases=m.aliases,
        homophones=m.homophones,
        contexts=frozenset(m.contexts),
        classifier=m.classifier,
        disguised_only=m.disguised_only,
        legal_basis=tuple(LegalBasis(r.law, r.article, r.note) for r in m.legal_basis),
        message=m.message,
        suggestion=m.suggestion,
        must_match=tuple(MatchExample(e.text, e.hit, e.occurrence, e.source, e.product) for e in m.must_match),
        must_not_match=tuple(
            NoMatchExample(e) if isinstance(e, str) else NoMatchExample(e.text, e.source, e.product)
            for e in m.must_not_match
        ),
        pack=pack.id,
        version=pack.version,
        file=file,
        description=m.description,
    )


def _loc_to_field(loc: Sequence[Any]) -> str:
    return ".".join(str(p) for p in loc) if loc else ""


def parse_rule_file(text: str, name: str) -> tuple[PackModel, tuple[RuleModel, ...]]:
    """Parse and validate one rule file's text. Raises RuleError naming file, rule and field.

    Each rule is validated on its own so that every broken rule of a file is reported at once.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(RuleIssue(name, None, None, f"invalid TOML: {exc}")) from None
    issues: list[RuleIssue] = []
    for key in data:
        if key not in ("pack", "rules"):
            issues.append(RuleIssue(name, None, key, "unknown key (a rule file has [pack] and [[rules]])"))
    pack: PackModel | None = None
    if "pack" not in data:
        issues.append(RuleIssue(name, None, "pack", "required table [pack] is missing"))
    else:
        try:
            pack = PackModel.model_validate(data["pack"])
        except ValidationError as exc:
            issues.extend(_issues_from_validation(exc, name, None, "pack"))
    raw_rules = data.get("rules")
    rules: list[RuleModel] = []
    if not isinstance(raw_rules, list) or not raw_rules:
        issues.append(RuleIssue(name, None, "rules", "a rule file needs at least one [[rules]] entry"))
    else:
        for i, raw in enumerate(raw_rules):
            rid = raw.get("id") if isinstance(raw, dict) else None
            rule_id = rid if isinstance(rid, str) else f"#{i + 1}"
            try:
                rules.append(RuleModel.model_validate(raw))
            except ValidationError as exc:
                issues.extend(_issues_from_validation(exc, name, rule_id, None))
    if issues:
        raise RuleError(issues)
    assert pack is not None
    return pack, tuple(rules)


def _issues_from_validation(
    exc: ValidationError, name: str, rule_id: str | None, prefix: str | None
) -> list[RuleIssue]:
    issues: list[RuleIssue] = []
    seen: set[tuple[str | None, str]] = set()
    for err in exc.errors():
        # drop pydantic's union-branch markers such as 'NoMatchExample' / 'str'
        loc = [p for p in err["loc"] if not (isinstance(p, str) and (p[:1].isupper() or p == "str"))]
        if prefix:
            loc = [prefix, *loc]
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required field is missing"
        field_name = _loc_to_field(loc) or None
        key = (field_name, msg)
        if key not in seen:  # union branches repeat the same location
            seen.add(key)
            issues.append(RuleIssue(name, rule_id, field_name, msg))
    return issues

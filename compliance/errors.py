"""The exception tree.

Every error the project raises on purpose derives from :class:`ComplianceError`, so a caller
that wants "anything this library refuses" catches exactly one class.

    ComplianceError
    ├── RuleError            a rule file or rule set is invalid (names file, rule id, field)
    │   └── RuleValidationError   collects several RuleError issues at once
    ├── InputError           input text or a file cannot be read or decoded
    └── UsageError           an API or CLI was called with wrong arguments
"""

from __future__ import annotations

from dataclasses import dataclass


class ComplianceError(Exception):
    """Root of every error this project raises deliberately."""


@dataclass(frozen=True)
class RuleIssue:
    """One problem found while loading rules: where it is and what is wrong."""

    file: str
    rule_id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.rule_id:
            where += f": rule {self.rule_id}"
        if self.field:
            where += f": field {self.field}"
        return f"{where}: {self.message}"


class RuleError(ComplianceError):
    """A rule file or a rule set is invalid."""

    def __init__(self, issues: list[RuleIssue] | RuleIssue) -> None:
        if isinstance(issues, RuleIssue):
            issues = [issues]
        self.issues: tuple[RuleIssue, ...] = tuple(issues)
        first = str(self.issues[0]) if self.issues else "invalid rules"
        more = f" (and {len(self.issues) - 1} more)" if len(self.issues) > 1 else ""
        super().__init__(first + more)


class InputError(ComplianceError):
    """Input that cannot be read: undecodable bytes, malformed records, unreadable files."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        self.file = file
        self.line = line
        where = ""
        if file is not None:
            where = f"{file}:{line}: " if line is not None else f"{file}: "
        super().__init__(where + message)


class UsageError(ComplianceError):
    """An API or command line was used with arguments it does not accept."""

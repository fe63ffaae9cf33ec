"""livestream-compliance: flag what Chinese livestream-shopping hosts and viewers may not say.

Quick use::

    from livestream_compliance import load_checker

    checker = load_checker()                    # default rule packs; load once
    for f in checker.check("这是全网最低价", source="host", product="food"):
        print(f.rule_id, f.start, f.end, f.text, f.message, f.suggestion)

The engine (``Checker``) does no I/O; ``load_checker`` is the one place that reads rule files.
"""

from .engine import Candidate, Checker, Explanation, check_many
from .errors import ComplianceError, InputError, RuleError, RuleIssue, UsageError
from .findings import Finding, LegalBasis, Severity, Source
from .loader import build_checker, load_checker, load_rule_set
from .rules import PRODUCT_CATEGORIES, Rule, RuleSet

__version__ = "0.1.0"

__all__ = [
    "PRODUCT_CATEGORIES",
    "Candidate",
    "Checker",
    "ComplianceError",
    "Explanation",
    "Finding",
    "InputError",
    "LegalBasis",
    "Rule",
    "RuleError",
    "RuleIssue",
    "RuleSet",
    "Severity",
    "Source",
    "UsageError",
    "__version__",
    "build_checker",
    "check_many",
    "load_checker",
    "load_rule_set",
]

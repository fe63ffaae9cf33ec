"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import os
import sys

from ..engine import Checker
from ..findings import Severity, Source
from ..matcher import DEFAULT_BACKEND, available_backends
from ..rules import PRODUCT_CATEGORIES


def add_rule_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rules")
    g.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="PATH",
        help="a rule file or directory loaded after the defaults (same id overrides); repeatable",
    )
    g.add_argument("--no-default-rules", action="store_true", help="use only the --rules given")
    g.add_argument(
        "--backend",
        choices=available_backends(),
        default=os.environ.get("COMPLIANCE_BACKEND", DEFAULT_BACKEND),
        help="Aho-Corasick implementation (default: %(default)s; native: the package's C extension, where it was built)",
    )
    g.add_argument(
        "--no-model",
        action="store_true",
        help="rules only: do not load the paraphrase model behind the classifier rules (PARA-*), "
        "which flags host lines no term or pattern rule flagged",
    )
    g.add_argument(
        "--no-cache",
        action="store_true",
        help="build the rules from scratch instead of reusing the build state cached (by content hash) "
        "in $XDG_CACHE_HOME/livestream-compliance",
    )


def add_speaker_options(p: argparse.ArgumentParser, *, default_source: str = "host") -> None:
    p.add_argument(
        "--source",
        choices=[s.value for s in Source],
        default=default_source,
        help="who said the text: host speech or viewer chat (default: %(default)s; jsonl records may say per line)",
    )
    p.add_argument("--product", choices=PRODUCT_CATEGORIES, default=None, help="the stream's declared product category")


def load_from_args(args: argparse.Namespace) -> Checker:
    from ..loader import DEFAULT_CACHE, load_checker

    return load_checker(
        args.rules,
        defaults=not args.no_default_rules,
        backend=args.backend,
        cache_dir=None if getattr(args, "no_cache", False) else DEFAULT_CACHE,
        model=not getattr(args, "no_model", False),
    )


def severity_arg(value: str) -> Severity:
    try:
        return Severity[value.upper()]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"invalid severity {value!r} (choose from {', '.join(s.label for s in Severity)})"
        ) from None


def use_color(mode: str, stream=None) -> bool:
    stream = stream or sys.stdout
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR"):
        return False
    return hasattr(stream, "isatty") and stream.isatty()


SEVERITY_COLORS = {
    Severity.INFO: "\033[36m",
    Severity.WARNING: "\033[33m",
    Severity.HIGH: "\033[31m",
    Severity.CRITICAL: "\033[1;37;41m",
}
RESET = "\033[0m"
HIGHLIGHT = "\033[1;31;4m"

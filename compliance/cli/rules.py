"""``compliance rules validate|list|build [PATH...]``: check rule files, list rules, pre-build the start-up state.

``validate`` loads the default packs and then every PATH (a file or a directory of ``*.toml``),
reports every problem as ``file: rule ID: field FIELD: message`` and runs every rule's
``must_match`` / ``must_not_match`` examples. Exit 0 when all is well, 2 otherwise.

``build`` loads the rules as every other command does and writes the built state (validated rules,
automaton keys, jieba's dictionary taught the rule words) to the start-up cache, so that the next
start with the same rules and package is a warm one: run it where a container image is built, or
after editing rules, instead of paying the build on the first real start. Exit 0, or 2 on invalid
rules or an unwritable cache directory.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import RuleError, RuleIssue
from ..findings import Source
from . import EXIT_ERROR, EXIT_OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rules", help="validate or list rule packs", description=__doc__.split("\n\n")[0])
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True, parser_class=type(p))
    v = rsub.add_parser("validate", help="validate rule files and run their examples")
    v.add_argument("paths", nargs="*", metavar="PATH", help="rule file or directory (default: only the shipped packs)")
    v.add_argument("--no-default-rules", action="store_true", help="validate PATHs alone, not layered over the defaults")
    v.add_argument("--no-examples", action="store_true", help="skip running the rules' examples")
    v.set_defaults(run=run_validate)
    lst = rsub.add_parser("list", help="list the rules in effect")
    lst.add_argument("paths", nargs="*", metavar="PATH")
    lst.add_argument("--no-default-rules", action="store_true")
    lst.set_defaults(run=run_list)
    b = rsub.add_parser("build", help="build the rules and write the start-up cache (for container images)")
    b.add_argument("paths", nargs="*", metavar="PATH", help="rule files or directories the commands will be given")
    b.add_argument("--no-default-rules", action="store_true")
    b.add_argument("--cache-dir", metavar="DIR",
                   help="where to write it (default: $XDG_CACHE_HOME/livestream-compliance, where the commands look)")
    b.set_defaults(run=run_build)


def example_failures(checker) -> list[RuleIssue]:
    """Every rule example the checker gets wrong, as RuleIssues naming file, rule and example."""
    issues: list[RuleIssue] = []
    for rule in checker.rules.rules:
        default_source = Source.HOST if Source.HOST in rule.sources else Source.CHAT
        for i, ex in enumerate(rule.must_match):
            found = checker.check(ex.text, ex.source or default_source, ex.product)
            spans = [(f.start, f.end) for f in found if f.rule_id == rule.id]
            if ex.span() not in spans:
                got = ", ".join(f"{f.rule_id}[{f.start}:{f.end}]" for f in found) or "nothing"
                issues.append(RuleIssue(rule.file, rule.id, f"must_match[{i}]", f"{ex.text!r} should flag {ex.hit!r} at {ex.span()}; got {got}"))
        for i, ex in enumerate(rule.must_not_match):
            found = checker.check(ex.text, ex.source or default_source, ex.product)
            mine = [f for f in found if f.rule_id == rule.id]
            if mine:
                issues.append(RuleIssue(rule.file, rule.id, f"must_not_match[{i}]", f"{ex.text!r} must not be flagged; flagged {mine[0].text!r}"))
    return issues


def dead_pattern_characters(checker) -> list[RuleIssue]:  # type: ignore[no-untyped-def]
    """Characters of regex patterns that normalisation rewrites, so the text never contains them.

    Terms and exceptions are normalised at load; patterns are not (they are regexes). A pattern
    written with 乾 or 陆 can never match: the text it runs on says 干 and 6. Reported unless the
    pattern also has the normalised form (an alternation such as ``(?:乾|干)`` covers it).
    """
    norm = checker.normalizer.normalize
    issues: list[RuleIssue] = []
    for rule in checker.rules.rules:
        for i, pattern in enumerate(rule.patterns):
            for c in dict.fromkeys(pattern):
                if ord(c) < 128:
                    continue
                n = norm(c)
                if n != c and (not n or n not in pattern):
                    becomes = f"becomes {n!r}" if n else "is deleted"
                    issues.append(RuleIssue(rule.file, rule.id, f"patterns[{i}]",
                                            f"{c!r} {becomes} in normalised text, so this part never matches"))
    return issues


def _rule_errors(exc: RuleError) -> int:
    """Every issue of ``exc`` on stderr, once each (the checker compiles once per speaker and may
    report the same issue for each), then a count; the exit code."""
    issues = list(dict.fromkeys(exc.issues))
    for issue in issues:
        sys.stderr.write(f"{issue}\n")
    sys.stderr.write(f"{len(issues)} error(s)\n")
    return EXIT_ERROR


def run_validate(args: argparse.Namespace) -> int:
    from ..loader import build_checker, load_rule_set, paraphrase_model

    try:
        rule_set = load_rule_set(args.paths, defaults=not args.no_default_rules)
        # classifier rules' examples run through the shipped paraphrase model
        checker = build_checker(rule_set, model=paraphrase_model())
    except RuleError as exc:
        return _rule_errors(exc)
    for warning in dead_pattern_characters(checker):
        sys.stderr.write(f"warning: {warning}\n")
    issues = [] if args.no_examples else example_failures(checker)
    for issue in issues:
        sys.stderr.write(f"{issue}\n")
    n_terms = rule_set.term_count()
    status = "OK" if not issues else f"{len(issues)} example failure(s)"
    sys.stdout.write(f"{len(rule_set)} rules, {n_terms} terms and patterns in {len(rule_set.files)} file(s), version {rule_set.version}: {status}\n")
    return EXIT_ERROR if issues else EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from ..loader import load_rule_set

    rule_set = load_rule_set(args.paths, defaults=not args.no_default_rules)
    for r in rule_set.rules:
        sources = "/".join(sorted(s.value for s in r.sources))
        what = "  classifier      " if r.classifier else f"{len(r.terms):>4} terms {len(r.patterns):>2} patterns"
        sys.stdout.write(f"{r.id:<24} {r.severity.label:<8} {r.category:<20} {sources:<9} {what}  {r.file}\n")
    sys.stdout.write(f"{len(rule_set)} rules, version {rule_set.version}\n")
    return EXIT_OK


def run_build(args: argparse.Namespace) -> int:
    import time

    from ..loader import default_cache_dir, load_checker, state_path

    cache_dir = args.cache_dir or default_cache_dir()
    try:
        path = state_path(args.paths, defaults=not args.no_default_rules, cache_dir=cache_dir)
        existed = path.is_file()
        t0 = time.perf_counter()
        # prebuilt=None: the state is written to the cache even where the install carries it prebuilt
        checker = load_checker(args.paths, defaults=not args.no_default_rules, cache_dir=cache_dir, model=False, save="now",
                               prebuilt=None)
    except RuleError as exc:
        return _rule_errors(exc)
    seconds = time.perf_counter() - t0
    if not path.is_file():
        sys.stderr.write(f"error: could not write the start-up cache {path}\n")
        return EXIT_ERROR
    what = f"was already in {path} (read in {seconds:.1f} s)" if existed else f"built in {seconds:.1f} s and written to {path}"
    sys.stdout.write(f"{len(checker.rules)} rules, version {checker.version}: state {what}\n")
    return EXIT_OK

"""``compliance check FILE...``: check scripts, transcripts, subtitles and chat exports offline.

Input formats (by extension, else sniffed): ``.txt`` one utterance a line; ``.srt`` / ``.vtt``
subtitles (findings carry the cue timestamps); ``.jsonl`` chat exports (see
:mod:`livestream_compliance.readers` for the field names); ``-`` reads standard input.
Encodings: UTF-8 with or without BOM, UTF-16 with BOM, GB18030/GBK.

Output formats: ``text`` (for a terminal), ``json`` (one document), ``jsonl`` (one object per
finding: file, line, start, end, rule_id, category, severity, text, ...), ``sarif`` (2.1.0).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any, TextIO

from .. import __version__
from ..engine import Checker, check_many
from ..errors import ComplianceError, InputError
from ..findings import Finding, Severity, Source
from ..readers import Utterance, read_path
from ..rules import PRODUCT_CATEGORIES
from . import EXIT_ERROR, EXIT_FINDINGS, EXIT_OK
from ._common import (
    HIGHLIGHT,
    RESET,
    SEVERITY_COLORS,
    add_rule_options,
    add_speaker_options,
    load_from_args,
    severity_arg,
    use_color,
)

PROGRESS_MIN_LINES = 5000
CHUNK = 2000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="check files (txt, srt, vtt, jsonl; - for stdin)",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="input files; - reads standard input")
    p.add_argument("--format", choices=("text", "json", "jsonl", "sarif"), default="text")
    p.add_argument("--input-format", choices=("txt", "srt", "vtt", "jsonl"), default=None, help="override detection")
    add_speaker_options(p)
    p.add_argument(
        "--fail-on",
        type=severity_arg,
        default=Severity.INFO,
        metavar="SEVERITY",
        help="exit 1 only for findings at or above this severity: info, warning, high, critical (default: info)",
    )
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    p.add_argument("--no-progress", action="store_true", help="never draw a progress bar on stderr")
    add_rule_options(p)
    p.set_defaults(run=run)


class _Progress:
    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled, self.done = total, stream, enabled and total >= PROGRESS_MIN_LINES, 0

    def advance(self, n: int, label: str) -> None:
        if not self.enabled:
            return
        self.done += n
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(frac * 30)
        self.stream.write(f"\r{label[:30]:30} [{bar:<30}] {frac:6.1%} {self.done}/{self.total}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


def _check_file(
    checker: Checker, utterances: list[Utterance], args: argparse.Namespace, progress: _Progress, name: str
) -> list[tuple[Utterance, Finding]]:
    default_source = Source(args.source)
    out: list[tuple[Utterance, Finding]] = []
    for i in range(0, len(utterances), CHUNK):
        chunk = utterances[i : i + CHUNK]
        results = check_many(
            checker,
            ((u.text, u.source or default_source, u.product or args.product) for u in chunk),
        )
        for u, findings in zip(chunk, results):
            out.extend((u, f) for f in findings)
        progress.advance(len(chunk), name)
    return out


def record(name: str, u: Utterance, f: Finding) -> dict[str, Any]:
    """The jsonl/json shape of one finding (shared with the workers)."""
    d: dict[str, Any] = {"file": name, "line": u.line, "start": f.start, "end": f.end}
    d.update(f.to_dict())
    d["column"] = f.start + 1
    if u.start is not None:
        d["timestamp"] = u.start
        d["timestamp_end"] = u.end
    if u.user is not None:
        d["user"] = u.user
    return d


def run(args: argparse.Namespace) -> int:
    inputs: list[tuple[str, list[Utterance]]] = []
    errors = 0
    for name in args.files:
        try:
            utterances = read_path(name, fmt=args.input_format)
            for u in utterances:  # a jsonl record's product must be one the engine knows
                if u.product is not None and u.product not in PRODUCT_CATEGORIES:
                    raise InputError(
                        f"unknown product category {u.product!r}; expected one of {', '.join(PRODUCT_CATEGORIES)}",
                        file="<stdin>" if name == "-" else name,
                        line=u.line,
                    )
            inputs.append((name, utterances))
        except ComplianceError as exc:
            sys.stderr.write(f"compliance check: error: {exc}\n")
            errors += 1
    checker = load_from_args(args)  # RuleError propagates: exit 2 with the file/rule/field
    total = sum(len(u) for _, u in inputs)
    progress = _Progress(total, sys.stderr, not args.no_progress and sys.stderr.isatty())
    results: list[tuple[str, Utterance, Finding]] = []
    for name, utterances in inputs:
        for u, f in _check_file(checker, utterances, args, progress, name):
            results.append((name, u, f))
    progress.close()
    out = sys.stdout
    if args.format == "jsonl":
        for name, u, f in results:
            out.write(json.dumps(record(name, u, f), ensure_ascii=False) + "\n")
    elif args.format == "json":
        doc = {
            "version": __version__,
            "rules_version": checker.version,
            "files": [{"file": n, "utterances": len(u)} for n, u in inputs],
            "summary": _summary(results),
            "findings": [record(n, u, f) for n, u, f in results],
        }
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
    elif args.format == "sarif":
        json.dump(_sarif(checker, results), out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        _text(results, out, use_color(args.color, out), total, len(inputs))
    if errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if any(f.severity >= args.fail_on for _, _, f in results) else EXIT_OK


def _summary(results: list[tuple[str, Utterance, Finding]]) -> dict[str, Any]:
    return {
        "findings": len(results),
        "by_severity": dict(Counter(f.severity.label for _, _, f in results)),
        "by_category": dict(Counter(f.category for _, _, f in results)),
    }


def _text(results: list[tuple[str, Utterance, Finding]], out: TextIO, color: bool, total: int, nfiles: int) -> None:
    for name, u, f in results:
        sev = f.severity.label
        if color:
            sev = f"{SEVERITY_COLORS[f.severity]}{sev}{RESET}"
            shown = u.text[: f.start] + HIGHLIGHT + u.text[f.start : f.end] + RESET + u.text[f.end :]
        else:
            shown = u.text[: f.start] + "【" + u.text[f.start : f.end] + "】" + u.text[f.end :]
        ts = f" [{u.start}]" if u.start else ""
        who = f" ({u.user})" if u.user else ""
        basis = "；".join(str(b) for b in f.legal_basis)
        out.write(f"{name}:{u.line}:{f.start + 1}:{ts} {sev} {f.rule_id} ({f.category}){who}\n")
        out.write(f"    {shown.strip()}\n")
        out.write(f"    {f.message}（依据：{basis}）\n")
        out.write(f"    建议：{f.suggestion}\n")
    s = _summary(results)
    by = ", ".join(f"{k} {v}" for k, v in sorted(s["by_severity"].items()))
    out.write(f"{len(results)} finding(s) in {total} line(s) of {nfiles} file(s)" + (f": {by}" if by else "") + "\n")


_SARIF_LEVEL = {Severity.INFO: "note", Severity.WARNING: "warning", Severity.HIGH: "error", Severity.CRITICAL: "error"}


def _sarif(checker: Checker, results: list[tuple[str, Utterance, Finding]]) -> dict[str, Any]:
    rules = checker.rules.by_id()
    used = sorted({f.rule_id for _, _, f in results})
    index = {rid: i for i, rid in enumerate(used)}
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "livestream-compliance",
                        "version": __version__,
                        "rules": [
                            {
                                "id": rid,
                                "name": rules[rid].category,
                                "shortDescription": {"text": rules[rid].message},
                                "help": {"text": rules[rid].suggestion},
                                "properties": {
                                    "severity": rules[rid].severity.label,
                                    "legal_basis": [str(b) for b in rules[rid].legal_basis],
                                },
                            }
                            for rid in used
                        ],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [
                    {
                        "ruleId": f.rule_id,
                        "ruleIndex": index[f.rule_id],
                        "level": _SARIF_LEVEL[f.severity],
                        "message": {"text": f"{f.message} 建议：{f.suggestion}"},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": name},
                                    "region": {
                                        "startLine": u.line,
                                        "startColumn": f.start + 1,
                                        "endColumn": f.end + 1,
                                        "snippet": {"text": f.text},
                                    },
                                }
                            }
                        ],
                        "properties": {"severity": f.severity.label, "category": f.category, "rule_version": f.rule_version},
                    }
                    for name, u, f in results
                ],
            }
        ],
    }

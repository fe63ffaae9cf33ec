"""``compliance explain "TEXT"``: every step of a check, for teaching and for debugging.

Shows the normalised text, jieba's words, every candidate hit (terms and patterns, including
rules for the other speaker) with the reason it was kept or dropped (exception, word boundary,
negation, speaker, product scope, contained in a longer hit) and each finding's legal basis.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..findings import Source
from ..normalize import CLAUSE_BREAK
from . import EXIT_FINDINGS, EXIT_OK
from ._common import add_rule_options, add_speaker_options, load_from_args

VERDICT_LABELS = {
    "kept": "KEPT      ",
    "exception": "exception ",
    "boundary": "boundary  ",
    "negation": "negation  ",
    "speaker": "speaker   ",
    "product": "product   ",
    "contained": "contained ",
    "gap": "gap       ",
    "context": "context   ",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="show step by step why a text is or is not flagged", description=__doc__.split("\n\n")[0])
    p.add_argument("text", nargs="+", help="the text to explain (several words are joined with spaces)")
    add_speaker_options(p)
    p.add_argument("--format", choices=("text", "json"), default="text")
    add_rule_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    checker = load_from_args(args)
    text = " ".join(args.text)
    ex = checker.explain(text, Source(args.source), args.product)
    rules = checker.rules.by_id()
    out = sys.stdout
    if args.format == "json":
        doc = {
            "text": ex.text,
            "normalized": ex.normalized,
            "source": ex.source.value,
            "product": ex.product,
            "tokens": [t[0] for t in ex.tokens],
            "candidates": [
                {
                    "rule_id": c.rule_id,
                    "key": c.key,
                    "start": c.start,
                    "end": c.end,
                    "text": text[c.start : c.end],
                    "verdict": c.verdict,
                    "detail": c.detail,
                }
                for c in ex.candidates
            ],
            "findings": [f.to_dict() for f in ex.findings],
        }
        json.dump(doc, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return EXIT_FINDINGS if ex.findings else EXIT_OK
    out.write(f"1. 原文 text        : {ex.text}\n")
    out.write(f"   说话人 source     : {ex.source.value}    商品类目 product: {ex.product or '(未声明，按最严格处理)'}\n")
    out.write(f"2. 归一化 normalised: {ex.normalized.replace(CLAUSE_BREAK, ' | ')}\n")
    out.write("   (全角转半角、大小写、繁转简、删除空格/符号/表情/零宽字符、数字变体转数字)\n")
    if ex.tokens:
        words = (t[0] for t in ex.tokens if t[0] != CLAUSE_BREAK)
        out.write("3. 分词 jieba words : " + " / ".join(words) + "\n")
    out.write(f"4. 候选命中 candidates: {len(ex.candidates)}\n")
    for c in ex.candidates:
        rule = rules.get(c.rule_id)
        cat = rule.category if rule else "?"
        out.write(
            f"   {VERDICT_LABELS.get(c.verdict, c.verdict)} {c.rule_id:<22} {cat:<20} "
            f"[{c.start}:{c.end}] {text[c.start:c.end]!r} (key {c.key!r})"
        )
        out.write(f"  — {c.detail}\n" if c.detail else "\n")
    out.write(f"5. 结论 findings     : {len(ex.findings)}\n")
    for f in ex.findings:
        basis = "；".join(str(b) for b in f.legal_basis)
        out.write(f"   {f.severity.label} {f.rule_id} [{f.start}:{f.end}] {f.text!r}\n")
        out.write(f"      原因：{f.message}\n      依据：{basis}\n      建议：{f.suggestion}\n")
    if not ex.findings:
        out.write("   未发现违规 (no finding)\n")
    return EXIT_FINDINGS if ex.findings else EXIT_OK

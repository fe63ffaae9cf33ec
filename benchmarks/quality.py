"""Quality of the default rules: precision/recall on labelled sets, flag rates on real text.

    python benchmarks/quality.py                      # all measurements, markdown on stdout
    python benchmarks/quality.py --samples 30         # also print 30 flagged lines per corpus for review
    python benchmarks/quality.py --sets dev holdout holdout2 holdout3 --out benchmarks/QUALITY.md

Labelled sets (written by the project, JSON Lines; see benchmarks/labelled/README.md):
``dev.jsonl`` is the set rules may be tuned against; the holdout sets were written blind, and the
README there says which of them have since been studied to change rules (only a set that has not
is an honest measure).

Real text (third-party, read from ``../shared/corpora`` or ``--corpora``; never copied here):
LiveChat Douyin viewer comments (``chat.txt``, checked as chat) and host replies (``host.txt``,
checked as host speech); COLD label-0 (non-offensive) and label-1 lines, checked as chat.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path

from livestream_compliance import Checker, Source, load_checker

HERE = Path(__file__).resolve().parent
DEFAULT_CORPORA = HERE.parent.parent / "shared" / "corpora"


def load_labelled(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                row = json.loads(line)
                row["_line"] = n
                rows.append(row)
    return rows


def evaluate_labelled(checker: Checker, rows: list[dict]) -> dict:
    tp = fp = fn = tn = 0
    cat_tp = cat_fp = cat_fn = 0
    per_cat: dict[str, Counter] = defaultdict(Counter)
    per_kind: dict[str, Counter] = defaultdict(Counter)
    errors = []
    for row in rows:
        findings = checker.check(row["text"], Source(row["source"]), row.get("product"))
        expected = set(row["expect"])
        got = {f.category for f in findings}
        pos, pred = bool(expected), bool(findings)
        if pos and pred:
            tp += 1
        elif pos:
            fn += 1
        elif pred:
            fp += 1
        else:
            tn += 1
        per_kind[row.get("kind", "?")]["ok" if pos == pred else "wrong"] += 1
        for c in expected | got:
            if c in expected and c in got:
                cat_tp += 1
                per_cat[c]["tp"] += 1
            elif c in expected:
                cat_fn += 1
                per_cat[c]["fn"] += 1
            else:
                cat_fp += 1
                per_cat[c]["fp"] += 1
        if pos != pred or (pos and not (expected & got)):
            errors.append((row, findings))
    def ratio(a: int, b: int) -> float:
        return a / b if b else 1.0
    return {
        "n": len(rows),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "cat_precision": ratio(cat_tp, cat_tp + cat_fp),
        "cat_recall": ratio(cat_tp, cat_tp + cat_fn),
        "per_cat": per_cat,
        "per_kind": per_kind,
        "errors": errors,
    }


def flag_rate(checker: Checker, lines: list[tuple[str, str]], source: Source) -> tuple[int, list[tuple[str, str, list]]]:
    """``lines``: (where, text) pairs; returns the number flagged and (where, text, findings) of each."""
    results = checker.check_batch([t for _, t in lines], source)
    flagged = [(where, line, list(f)) for (where, line), f in zip(lines, results) if f]
    return len(flagged), flagged


def read_cold(path: Path) -> list[tuple[int, str, str]]:
    """(label, where, text) of every row; ``where`` is ``cold/FILE:ROW`` (1-based data row)."""
    out = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), 1):
            out.append((int(row["label"]), f"cold/{path.name}:{n}", row["TEXT"]))
    return out


def load_reviews(path: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """The reviewers' verdicts on sampled flagged corpus lines: (where, rule ids) -> (verdict, note).

    ``benchmarks/reviews.tsv``: ``where<TAB>rule ids (comma-separated, sorted)<TAB>ok|fp<TAB>note``.
    The corpus text itself is never stored in the repository; ``where`` points at it.
    """
    reviews: dict[tuple[str, str], tuple[str, str]] = {}
    if not path.exists():
        return reviews
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 3 or parts[2] not in ("ok", "fp"):
            raise SystemExit(f"{path}:{n}: expected where, rule ids, ok|fp, note (tab-separated)")
        reviews[(parts[0], parts[1])] = (parts[2], parts[3] if len(parts) > 3 else "")
    return reviews


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    ap.add_argument("--samples", type=int, default=15, help="flagged lines to print per corpus for review")
    ap.add_argument("--errors", type=int, default=40, help="misclassified labelled lines to print")
    ap.add_argument("--sets", nargs="*", default=["dev", "holdout", "holdout2"],
                    help="labelled sets to evaluate (names in benchmarks/labelled/; default: dev holdout holdout2)")
    ap.add_argument("--out", type=Path, default=None,
                    help="also write the report here; in this file corpus lines are referred to by file:line, "
                         "never quoted (third-party text stays out of the repository)")
    ap.add_argument("--reviews", type=Path, default=HERE / "reviews.tsv",
                    help="reviewers' verdicts on sampled flagged corpus lines (default benchmarks/reviews.tsv)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    reviews = load_reviews(args.reviews)
    checker = load_checker()
    rnd = random.Random(args.seed)
    out: list[str] = []
    w = out.append
    w(f"Rules version {checker.version}: {len(checker.rules)} rules, {checker.rules.term_count()} terms and patterns.\n")
    w("## Labelled sets\n")
    w("| set | lines | positives | precision | recall | category precision | category recall |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    details = []
    for name in args.sets:
        path = HERE / "labelled" / f"{name}.jsonl"
        if not path.exists():
            w(f"| {name} | (missing) | | | | | |")
            continue
        r = evaluate_labelled(checker, load_labelled(path))
        w(f"| {name} | {r['n']} | {r['tp'] + r['fn']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['cat_precision']:.3f} | {r['cat_recall']:.3f} |")
        details.append((name, r))
    for name, r in details:
        w(f"\n### {name}: per category (tp / fp / fn)\n")
        w("| category | tp | fp | fn |")
        w("| --- | ---: | ---: | ---: |")
        for c in sorted(r["per_cat"]):
            k = r["per_cat"][c]
            w(f"| {c} | {k['tp']} | {k['fp']} | {k['fn']} |")
        w(f"\n{name}: per kind (right / wrong at line level): " + ", ".join(
            f"{k} {v['ok']}/{v['wrong']}" for k, v in sorted(r["per_kind"].items())))
        if args.errors and r["errors"]:
            w(f"\n<details><summary>{name}: {len(r['errors'])} misclassified lines (first {args.errors})</summary>\n")
            for row, findings in r["errors"][: args.errors]:
                got = ", ".join(f"{f.rule_id}:{f.text}" for f in findings) or "-"
                w(f"- `{row['source']}` {row['text']!r} expect={row['expect']} product={row.get('product')} got={got}")
            w("\n</details>")
    w("\n## Real text (flag rates)\n")
    w("| corpus | source | lines | flagged | share | of which only by the paraphrase model |")
    w("| --- | --- | ---: | ---: | ---: | ---: |")
    samples = []
    corpora = []
    chat = args.corpora / "livechat" / "chat.txt"
    host = args.corpora / "livechat" / "host.txt"
    def numbered(path: Path) -> list[tuple[str, str]]:
        rel = f"{path.parent.name}/{path.name}"
        return [(f"{rel}:{n}", t) for n, t in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)]

    if chat.exists():
        corpora.append(("LiveChat chat", Source.CHAT, numbered(chat)))
    if host.exists():
        corpora.append(("LiveChat host", Source.HOST, numbered(host)))
    cold = [p for p in (args.corpora / "cold" / "dev.csv", args.corpora / "cold" / "test.csv") if p.exists()]
    if cold:
        rows = [r for p in cold for r in read_cold(p)]
        corpora.append(("COLD label 0 (non-offensive)", Source.CHAT, [(wh, t) for lab, wh, t in rows if lab == 0]))
        corpora.append(("COLD label 1 (offensive)", Source.CHAT, [(wh, t) for lab, wh, t in rows if lab == 1]))
    model_rules = checker.classifier_rule_ids
    model_samples = []
    for name, source, lines in corpora:
        n, flagged = flag_rate(checker, lines, source)
        # lines flagged only by the paraphrase model's classifier rules are sampled on their own, so
        # the rules' sample stays what it was and the model's precision on real text is seen apart
        by_model = [x for x in flagged if all(f.rule_id in model_rules for f in x[2])]
        by_rules = [x for x in flagged if x not in by_model]
        w(f"| {name} | {source.value} | {len(lines)} | {n} | {n / max(1, len(lines)):.2%} | {len(by_model)} ({len(by_model) / max(1, len(lines)):.2%}) |")
        samples.append((name, by_rules))
        if by_model:
            model_samples.append((f"{name}: flagged only by the paraphrase model", by_model))
    private: list[str] = []  # the sampled lines quoted: printed for the reviewer, never written to --out
    if args.samples:
        w(f"\n### Reviewed samples of flagged lines\n\nA seeded random sample of up to {args.samples} flagged "
          f"lines per corpus, each judged by a reviewer (verdicts in `{args.reviews.name}`): **ok** = a "
          "finding a compliance reviewer would want, **fp** = a false positive. Lines are referred to by "
          "file:line in `../shared/corpora`, not quoted.\n")
        w("| corpus | sampled | ok | fp | not yet reviewed |")
        w("| --- | ---: | ---: | ---: | ---: |")
        listing: list[str] = []
        for i, (name, flagged) in enumerate(samples + model_samples):
            if i == len(samples):
                rnd = random.Random(f"{args.seed}:paraphrase-model")
            pick = rnd.sample(flagged, min(args.samples, len(flagged)))
            counts = {"ok": 0, "fp": 0, "-": 0}
            listing.append(f"\n<details><summary>{name}: {len(pick)} sampled flagged lines</summary>\n")
            listing.append("| line | findings (rule: matched text) | verdict | note |")
            listing.append("| --- | --- | --- | --- |")
            private.append(f"\n{name}: sampled flagged lines (where, rule ids, text, findings)")
            for where, line, findings in pick:
                ids = ",".join(sorted({f.rule_id for f in findings}))
                verdict, note = reviews.get((where, ids), ("-", ""))
                counts[verdict] += 1
                hits = ", ".join(f"{f.rule_id}: {f.text}" for f in findings)
                listing.append(f"| {where} | {hits} | {verdict} | {note} |")
                private.append(f"{where}\t{ids}\t{line!r}\t{hits}\t[{verdict}]")
            listing.append("\n</details>")
            w(f"| {name} | {len(pick)} | {counts['ok']} | {counts['fp']} | {counts['-']} |")
        out.extend(listing)
    text = "\n".join(out) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    if private:
        sys.stdout.write("\n## For the reviewer (not written to --out)\n" + "\n".join(private) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

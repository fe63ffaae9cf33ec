"""Train the paraphrase model (compliance/data/paraphrase_model.tsv) from the project's labelled text.

    pip install -e '.[train]'
    python benchmarks/train_model.py                          # writes the shipped model
    python benchmarks/train_model.py --exclude holdout10 --out /tmp/m.tsv

Training data: every labelled set in ``benchmarks/labelled`` except those given to ``--exclude``
(a set that will measure the model must never be trained on), plus the training-only sets in
``benchmarks/training`` (ordinary lawful livestream speech and chat; paraphrased violations).
All were written by the project; corpus text (``../shared/corpora``) is never used.

One one-vs-rest logistic regression per category and source, on the binary CJK 2-/3-gram
features of ``classifier.features`` (the same function scores at run time), L2-regularised, no
intercept (a line with no known n-gram scores 0.5 and never reaches a threshold). An n-gram whose
weights are all smaller than ``--prune`` is dropped. Deterministic for the same inputs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from livestream_compliance import Source, load_checker  # noqa: E402
from livestream_compliance.classifier import features, format_model  # noqa: E402

CATEGORIES = (
    "absolute_terms", "state_endorsement", "superstition", "medical_claims", "efficacy_guarantee", "endorsement",
    "prohibited_goods", "finance_promise", "education_guarantee", "diversion", "price_claims", "fake_data", "abuse",
)


def read_sets(paths: list[Path]) -> list[dict]:
    rows = []
    for p in paths:
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--exclude", nargs="*", default=[], help="labelled sets never to train on (fresh holdouts)")
    ap.add_argument("--out", type=Path, default=HERE.parent / "compliance" / "data" / "paraphrase_model.tsv")
    ap.add_argument("--sources", nargs="*", default=["host"], help="sources the model serves (default: host)")
    ap.add_argument("--threshold", type=float, default=0.75)
    ap.add_argument("--c", type=float, default=0.5, help="inverse L2 regularisation strength")
    ap.add_argument("--min-length", type=int, default=8, help="shorter normalised lines are never classified")
    ap.add_argument("--prune", type=float, default=0.1)
    args = ap.parse_args(argv)

    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    labelled = sorted(p for p in (HERE / "labelled").glob("*.jsonl") if p.stem not in args.exclude)
    training = sorted((HERE / "training").glob("*.jsonl"))
    files = labelled + training
    rows = read_sets(files)
    checker = load_checker(cache_dir=None, model=False)  # only its normaliser is used
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode() + b"\0" + p.read_bytes())
    digest.update(json.dumps([args.sources, args.threshold, args.c, args.prune, args.min_length]).encode())
    weights: dict[Source, dict[str, list[tuple[int, float]]]] = {}
    counts = []
    for name in args.sources:
        source = Source.parse(name)
        part = [r for r in rows if r["source"] == source.value]
        vec = CountVectorizer(analyzer=features, min_df=2, binary=True)
        x = vec.fit_transform([checker.normalize(r["text"]) for r in part])
        vocab = vec.get_feature_names_out()
        coef = np.zeros((len(CATEGORIES), len(vocab)))
        for ci, cat in enumerate(CATEGORIES):
            y = np.array([cat in r["expect"] for r in part])
            if y.sum() >= 5:
                coef[ci] = LogisticRegression(C=args.c, max_iter=5000, fit_intercept=False).fit(x, y).coef_[0]
        keep = np.abs(coef).max(axis=0) >= args.prune
        table = {str(g): tuple(float(w) for w in coef[:, j]) for j, g in enumerate(vocab) if keep[j]}
        weights[source] = table
        counts.append(f"{source.value}: {len(part)} lines, {len(vocab)} n-grams, {len(table)} kept")
    header = [
        "Paraphrase model of livestream-compliance; written by benchmarks/train_model.py, do not edit.",
        "Trained on: " + " ".join(p.name for p in files),
        "Never trained on: " + (" ".join(args.exclude) or "-"),
        f"C={args.c} threshold={args.threshold} prune={args.prune} min_length={args.min_length}; " + "; ".join(counts),
    ]
    text = format_model(digest.hexdigest()[:12], CATEGORIES,
                        {Source.parse(s): args.threshold for s in args.sources}, weights, header, args.min_length)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text.encode()) // 1024} KiB); " + "; ".join(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

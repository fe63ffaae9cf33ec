"""A small linear model that catches paraphrased violations the term rules do not name.

Term and pattern rules catch what they list, with exact spans and explicit exceptions. Hosts
paraphrase: 吃完这个疗程指标都正常了 claims a cure without 治愈. The labelled sets show that rules
plateau around 0.91 recall on text by a writer they were not tuned on, while a linear model over
character 2- and 3-grams, trained on those sets, generalises across writers. This module is that
model, pure and without I/O: :func:`parse_model` reads the model's text (the loader reads the
file, ``data/paraphrase_model.tsv``), :meth:`ParaphraseModel.classify` scores one normalised line.

The model reports only through *classifier rules* (``classifier = true`` in a rule pack, one per
category: id, severity, legal basis, message and suggestion are the rule's, as for any rule), and
only on lines where no term or pattern rule found anything. It is a second opinion on
what the rules did not name, so its findings cover the whole utterance and say which character
n-grams weighed most (``Finding.matched``). Features ignore everything but CJK characters:
evasions (pinyin, symbols, digits) are the normaliser's and the rules' job, and Latin text must not
look like a violation because evasion examples are spelt in Latin.

Model text format (UTF-8, tab-separated; written by ``benchmarks/train_model.py``)::

    # comment lines
    @version<TAB>VERSION
    @categories<TAB>cat1,cat2,...
    @min_length<TAB>N                             (optional: shorter normalised lines are never classified)
    @threshold<TAB>SOURCE<TAB>PROBABILITY       (one per source the model serves)
    @grams<TAB>SOURCE<TAB>NGRAM<TAB>NGRAM...      (the source's n-grams)
    @weights<TAB>SOURCE<TAB>BASE64                (float32 little-endian, categories per n-gram)
    SOURCE<TAB>NGRAM<TAB>w1 w2 ...                (or one n-gram a line, weights in category order)

The score of a category is the sum of the weights of the distinct n-grams of the line (no
intercept: a line with no known n-gram scores 0.5, never above a threshold).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import sys
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import ComplianceError
from .findings import Source

#: n-gram lengths the model uses
NGRAM_SIZES = (2, 3)

_NON_CJK = re.compile("[^\u4e00-\u9fff]+")


class ModelError(ComplianceError):
    """A paraphrase model text that cannot be parsed (names the line)."""


def features(norm: str) -> list[str]:
    """The distinct CJK 2- and 3-grams of normalised text, in first-seen order (training and
    scoring both use this; runs of CJK are split at any other character)."""
    seen: dict[str, None] = {}
    for run in _NON_CJK.split(norm):
        n = len(run)
        if n < 2:
            continue
        for size in NGRAM_SIZES:
            for i in range(n - size + 1):
                seen[run[i : i + size]] = None
    return list(seen)


def _grams(norm: str) -> set[str]:
    """Every distinct 2- and 3-gram of ``norm``, CJK or not: a superset of :func:`features` whose
    extra grams (those holding a non-CJK character) are never in a model's table, so scoring
    over it gives the same sums, about three times faster."""
    n = len(norm)
    grams = {norm[i : i + 2] for i in range(n - 1)}
    grams.update([norm[i : i + 3] for i in range(n - 2)])
    return grams


@dataclass(frozen=True)
class ModelVerdict:
    """The model's opinion of one line: the categories above threshold, best first."""

    #: (category, probability), best first; only those at or above the source's threshold
    categories: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class ParaphraseModel:
    version: str
    categories: tuple[str, ...]
    #: source -> probability threshold
    thresholds: Mapping[Source, float]
    #: source -> n-gram -> its weight for each category (in ``categories`` order)
    weights: Mapping[Source, Mapping[str, tuple[float, ...]]] = field(repr=False)
    #: a normalised line shorter than this is never classified (a word or two is no claim: 专家)
    min_length: int = 0
    #: source -> the summed weight (logit) a category must reach
    _limits: Mapping[Source, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_limits", {s: math.log(p / (1.0 - p)) for s, p in self.thresholds.items()})

    @property
    def sources(self) -> frozenset[Source]:
        return frozenset(self.thresholds)

    def scores(self, norm: str, source: Source) -> list[float]:
        """Per category, the probability the model gives ``norm`` (normalised text)."""
        table = self.weights.get(source, {})
        rows = [table[g] for g in features(norm) if g in table]
        sums = [math.fsum(col) for col in zip(*rows)] if rows else [0.0] * len(self.categories)
        return [1.0 / (1.0 + math.exp(-s)) for s in sums]

    def classify(self, norm: str, source: Source) -> ModelVerdict | None:
        """The categories whose probability reaches ``source``'s threshold, or None."""
        table = self.weights.get(source)
        if table is None or len(norm) < self.min_length:
            return None
        return self.decide([r for r in map(table.get, _grams(norm)) if r is not None], source)

    def decide(self, rows: list[tuple[float, ...]], source: Source) -> ModelVerdict | None:
        """:meth:`classify` given the weight rows of the line's distinct known n-grams (a caller
        that finds them faster, e.g. with an automaton over the n-grams, passes them in)."""
        limit = self._limits.get(source)
        if limit is None or not rows:
            return None
        sums = list(map(sum, zip(*rows)))
        if max(sums) < limit:
            return None
        above = sorted(((s, ci) for ci, s in enumerate(sums) if s >= limit), reverse=True)
        return ModelVerdict(tuple((self.categories[ci], 1.0 / (1.0 + math.exp(-s))) for s, ci in above))

    def limit(self, source: Source) -> float | None:
        """The summed weight (logit) a category must reach for ``source``, or None if not served."""
        return self._limits.get(source)

    def evidence(self, norm: str, source: Source, category: str, k: int = 3) -> tuple[str, ...]:
        """The ``k`` n-grams of ``norm`` that weigh most towards ``category``, heaviest first."""
        table = self.weights.get(source, {})
        ci = self.categories.index(category)
        weight = {g: table[g][ci] for g in features(norm) if g in table}
        return tuple(g for g in sorted(weight, key=lambda g: -weight[g]) if weight[g] > 0)[:k]


def parse_model(text: str, name: str = "paraphrase_model.tsv") -> ParaphraseModel:
    """Parse a model text (see the module docstring). Raises ModelError naming ``name`` and the line."""
    version = ""
    categories: tuple[str, ...] = ()
    thresholds: dict[Source, float] = {}
    weights: dict[Source, dict[str, tuple[float, ...]]] = {}
    grams: dict[Source, list[str]] = {}
    min_length = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        try:
            if parts[0] == "@version":
                version = parts[1]
            elif parts[0] == "@categories":
                categories = tuple(parts[1].split(","))
            elif parts[0] == "@min_length":
                min_length = int(parts[1])
            elif parts[0] == "@threshold":
                p = float(parts[2])
                if not 0.5 <= p < 1.0:
                    raise ValueError(f"threshold {p} is not in [0.5, 1)")
                thresholds[Source.parse(parts[1])] = p
            elif parts[0] == "@grams":
                grams[Source.parse(parts[1])] = parts[2:]
            elif parts[0] == "@weights":
                source = Source.parse(parts[1])
                if source not in grams:
                    raise ValueError("@weights before the @grams of its source")
                flat = array("f")
                flat.frombytes(base64.b64decode(parts[2], validate=True))
                if sys.byteorder == "big":
                    flat.byteswap()
                k, keys = len(categories), grams[source]
                if not k or len(flat) != k * len(keys):
                    raise ValueError(f"{len(flat)} weights for {len(keys)} n-grams x {k} categories (declare @categories first)")
                # one tuple of k weights per n-gram, chunked at C speed
                weights.setdefault(source, {}).update(zip(keys, zip(*[iter(flat)] * k)))
            elif parts[0].startswith("@"):
                raise ValueError(f"unknown directive {parts[0]!r}")
            else:
                source, gram, packed = parts
                row = tuple(map(float, packed.split(" ")))
                if len(row) != len(categories):
                    raise ValueError(f"{len(row)} weights for {len(categories)} categories (declare @categories first)")
                weights.setdefault(Source.parse(source), {})[gram] = row
        except (ValueError, IndexError, binascii.Error, ComplianceError) as exc:
            raise ModelError(f"{name}:{n}: {exc}") from None
    if not version or not categories:
        raise ModelError(f"{name}: @version and @categories are required")
    for source in thresholds:
        weights.setdefault(source, {})
    return ParaphraseModel(version, categories, thresholds, weights, min_length)


def format_model(
    version: str,
    categories: Iterable[str],
    thresholds: Mapping[Source, float],
    weights: Mapping[Source, Mapping[str, Iterable[float]]],
    header: Iterable[str] = (),
    min_length: int = 0,
) -> str:
    """The text :func:`parse_model` reads (used by the training script): per source, the n-grams on
    one line and their weights as one base64 block of little-endian float32 (fast to load)."""
    lines = [f"# {h}" for h in header]
    lines.append(f"@version\t{version}")
    lines.append("@categories\t" + ",".join(categories))
    if min_length:
        lines.append(f"@min_length\t{min_length}")
    for source, p in thresholds.items():
        lines.append(f"@threshold\t{source.value}\t{p}")
    for source, table in weights.items():
        keys = sorted(table)
        flat = array("f", [w for g in keys for w in table[g]])
        if sys.byteorder == "big":
            flat.byteswap()
        lines.append(f"@grams\t{source.value}\t" + "\t".join(keys))
        lines.append(f"@weights\t{source.value}\t" + base64.b64encode(flat.tobytes()).decode("ascii"))
    return "\n".join(lines) + "\n"


class BatchScorer:
    """The model's per-category sums for many lines at once, with numpy: a filter for batches.

    ``lines_reaching(joined)`` takes normalised lines joined by ``"\\n"`` and returns the indexes of
    the lines on which some category's sum may reach the source's limit. Each 2- and 3-gram is
    one integer (its code points side by side, 21 bits each), looked up in a sorted array of the
    model's n-grams; the distinct (line, n-gram) pairs are summed per line and category. The sums
    equal :meth:`ParaphraseModel.decide`'s up to float rounding, so a line within ``margin`` of
    the limit counts as reaching it: the caller decides those exactly, one by one, and every other
    line is one the model would not flag. A gram holding the separator is never an n-gram of the
    model (its n-grams are CJK), so no sum runs across two lines.
    """

    __slots__ = ("_np", "_ids", "_weights", "_limit", "_min_length")

    def __init__(self, model: ParaphraseModel, source: Source) -> None:
        import numpy as np  # imported here: only batch callers pay its import time

        self._np = np
        table = model.weights.get(source, {})
        limit = model.limit(source)
        self._limit = math.inf if limit is None else limit
        self._min_length = model.min_length
        grams = sorted(table, key=_gram_id)
        self._ids = np.array([_gram_id(g) for g in grams], dtype=np.uint64)
        k = len(model.categories)
        self._weights = np.array([table[g] for g in grams], dtype=np.float64).reshape(len(grams), k)

    def lines_reaching(self, joined: str, margin: float = 1e-6) -> list[int]:
        """Indexes of the lines of ``joined`` (normalised, ``"\\n"``-separated, no other newline)
        on which some category's sum is at least the limit minus ``margin``; lines shorter than
        the model's minimum length are left out."""
        np = self._np
        ids = self._ids
        if not len(ids) or self._limit == math.inf or not joined:
            return []
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
        newline = codes == 10
        line_of = np.cumsum(newline)  # the line of each position
        n_lines = int(line_of[-1]) + 1
        pairs = []
        for size in NGRAM_SIZES:
            if len(codes) < size:
                continue
            gram = codes[: len(codes) - size + 1].copy()
            for j in range(1, size):
                gram <<= np.uint64(21)
                gram |= codes[j : len(codes) - size + 1 + j]
            at = np.searchsorted(ids, gram)
            at[at == len(ids)] = 0
            found = np.flatnonzero(ids[at] == gram)
            pairs.append(line_of[found] * np.uint64(len(ids)) + at[found].astype(np.uint64))
        if not pairs:
            return []
        unique = np.unique(np.concatenate(pairs))
        if not len(unique):
            return []
        lines = (unique // np.uint64(len(ids))).astype(np.int64)
        rows = self._weights[(unique % np.uint64(len(ids))).astype(np.int64)]
        sums = np.empty((n_lines, rows.shape[1]), dtype=np.float64)
        for c in range(rows.shape[1]):
            sums[:, c] = np.bincount(lines, weights=rows[:, c], minlength=n_lines)
        reaching = sums.max(axis=1) >= self._limit - margin
        if self._min_length:
            # the normalised length of each line: its span between separators
            ends = np.flatnonzero(newline)
            starts = np.concatenate(([0], ends + 1))
            ends = np.concatenate((ends, [len(codes)]))
            reaching &= (ends - starts) >= self._min_length
        return np.flatnonzero(reaching).tolist()  # type: ignore[no-any-return]


def _gram_id(gram: str) -> int:
    """An n-gram as one integer: its code points, 21 bits each (see BatchScorer)."""
    out = 0
    for ch in gram:
        out = (out << 21) | ord(ch)
    return out

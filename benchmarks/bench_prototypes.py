"""Evidence for parts of the proposed engine change that a whole-engine A/B cannot isolate.

The proposed change itself is a diff in ``bench_proposals.py``, measured against the engine by
``run.py`` (A/B). This module only isolates one of its parts, P6: for a line with a word-boundary
candidate the engine segments the *whole* normalised line with jieba, although the verdict only looks
at the words overlapping the hit; segmenting a window around the hit gives the same verdicts for far
less work on long lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


# --------------------------------------------------------------------------- P6: windowed word boundaries
def jieba_window_evidence(checker: Any, samples: Sequence[tuple[str, Any]], window: int = 12,
                          limit: int = 3_000) -> dict[str, float]:
    """Word-boundary verdicts from jieba on the whole line vs on ``window`` characters either side of the hit.

    ``_verify`` segments the whole normalised line for every line with a ``word_boundary`` candidate;
    the verdict only looks at words overlapping the hit. Returns agreement and time per candidate.
    """
    import time

    from livestream_compliance import engine as E
    from livestream_compliance.verify import splits_a_word

    seg = checker.segmenter
    cases: list[tuple[str, int, int]] = []
    for text, source in samples:
        norm = text.translate(checker._table)
        auto = checker._automata[source]
        for k, s, e in auto.matcher.find(norm):
            if any(en.kind in (E._TERM, getattr(E, "_VARIANT", E._TERM)) and en.rule.word_boundary
                   for en in auto.entries[k]):
                cases.append((norm, s, e))
        if len(cases) >= limit:
            break
    if not cases:
        return {"cases": 0}
    keys = checker._term_keys

    def full(norm: str, s: int, e: int) -> Any:
        return splits_a_word(seg.spans(norm), s, e, norm, keys)

    def windowed(norm: str, s: int, e: int) -> Any:
        lo, hi = max(0, s - window), min(len(norm), e + window)
        words = tuple((a + lo, b + lo) for a, b in seg.spans(norm[lo:hi]))
        return splits_a_word(words, s, e, norm, keys)

    t0 = time.perf_counter()
    v_full = [full(*c) for c in cases]
    t1 = time.perf_counter()
    v_win = [windowed(*c) for c in cases]
    t2 = time.perf_counter()
    same = sum(1 for a, b in zip(v_full, v_win) if bool(a) == bool(b))
    return {
        "cases": len(cases),
        "mean_line_chars": sum(len(c[0]) for c in cases) / len(cases),
        "agree": same / len(cases),
        "full_us": (t1 - t0) / len(cases) * 1e6,
        "window_us": (t2 - t1) / len(cases) * 1e6,
    }

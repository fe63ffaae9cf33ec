"""The proposed engine change as a diff, applied to a temporary copy of ``compliance/`` and measured
against the engine as it is (A/B, same process, interleaved, CPU time). Nothing here edits the project.

``DIFF`` is against the engine at commit b168dbb; when the engine has moved on and the diff no longer
applies, the run says so and the prototypes in ``bench_prototypes.py`` still measure the parts of it
that can run on the engine unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ANALYSIS = """
(analysis placeholder)
"""

DIFF_BASE = "b168dbb"

DIFF = r'''diff -ru a/compliance/engine.py b/compliance/engine.py
--- a/compliance/engine.py	2026-11-23 19:43:53.691123421 +0000
+++ b/compliance/engine.py	2026-11-23 19:44:03.348949288 +0000
@@ -10,7 +10,6 @@
 import re
 from collections.abc import Iterable, Mapping, Sequence
 from dataclasses import dataclass, field
-from itertools import accumulate
 from typing import Literal
 
 from .errors import InputError, RuleError, RuleIssue, UsageError
@@ -21,11 +20,20 @@
 from .literals import required_literals
 from .verify import Segmenter, WholeTextSegmenter, negation_before, splits_a_word
 
+#: Lines up to this many (normalised) characters are segmented whole, once; longer lines are
+#: segmented in a window of ``_SEGMENT_WINDOW`` characters either side of each word-boundary hit.
+_SEGMENT_WHOLE_LINE = 48
+_SEGMENT_WINDOW = 12
+
 #: Longest text ``check`` accepts (characters). Longer input is a caller error, not a hang.
 MAX_TEXT_LENGTH = 100_000
 
 _ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
 
+#: Source by member or value: ``Source`` is a ``str`` enum, so ``"chat"`` and ``Source.CHAT`` are the
+#: same key. A dict lookup instead of ``Source.parse`` (~2 µs) for callers that pass plain strings.
+_SOURCES: dict[str, Source] = {s.value: s for s in Source}
+
 _TERM, _EXCEPTION, _VARIANT, _TRIGGER, _ALIAS = 0, 1, 2, 3, 4
 
 Verdict = Literal["kept", "exception", "boundary", "negation", "speaker", "product", "contained"]
@@ -258,7 +266,9 @@
             raise InputError(f"text must be a str, not {type(text).__name__}")
         if len(text) > MAX_TEXT_LENGTH:
             raise InputError(f"text is {len(text)} characters; the limit is {MAX_TEXT_LENGTH}")
-        if type(source) is not Source:
+        try:
+            source = _SOURCES[source]  # Source members and their plain-string values alike
+        except (KeyError, TypeError):
             source = Source.parse(source)
         if product is not None and product not in PRODUCT_CATEGORIES:
             raise UsageError(f"unknown product category {product!r}; expected one of {', '.join(PRODUCT_CATEGORIES)}")
@@ -281,7 +291,9 @@
         Equivalent to ``[check(t, source, product) for t in texts]`` but several times faster on
         mostly clean text: offsets are mapped back only for lines with candidate hits.
         """
-        if type(source) is not Source:
+        try:
+            source = _SOURCES[source]  # Source members and their plain-string values alike
+        except (KeyError, TypeError):
             source = Source.parse(source)
         if product is not None and product not in PRODUCT_CATEGORIES:
             raise UsageError(f"unknown product category {product!r}")
@@ -293,35 +305,43 @@
             # a text with its own newline (or a huge batch): fall back to per-line checks
             return [self.check(t, source, product) for t in texts]
         norm_joined = joined.translate(self._batch_table)
-        norm_lines = norm_joined.split("\n")
-        ends = list(accumulate(len(x) + 1 for x in norm_lines))  # end (exclusive, incl. separator) per line
         auto = self._automata[source]
         hits = auto.matcher.find(norm_joined)  # type: ignore[union-attr]
         prefilter, _pats = self._patterns[source]
-        flagged: dict[int, list[tuple[int, int, int]]] = {}
-        if hits:
-            from bisect import bisect_right
-
-            for key_index, s, e in hits:
-                li = bisect_right(ends, s)
-                base = ends[li - 1] if li else 0
-                flagged.setdefault(li, []).append((key_index, s - base, e - base))
         if prefilter is not None:
-            from bisect import bisect_right
-
-            for m in prefilter.finditer(norm_joined):
-                flagged.setdefault(bisect_right(ends, m.start()), [])
+            hits = hits + [(-1, m.start(), m.start()) for m in prefilter.finditer(norm_joined)]
         out: list[tuple[Finding, ...]] = [()] * n
-        for li, line_hits in flagged.items():
+        if not hits:
+            return out
+        # only lines with hits need their bounds: count separators between consecutive hits
+        hits.sort(key=lambda h: h[1])
+        flagged: dict[int, tuple[int, int, list[tuple[int, int, int]]]] = {}
+        line = pos = 0
+        current = -1
+        entry: tuple[int, int, list[tuple[int, int, int]]] = (0, 0, [])
+        for key_index, s, e in hits:
+            if s > pos:
+                line += norm_joined.count("\n", pos, s)
+                pos = s
+            if line != current:
+                current = line
+                lo = norm_joined.rfind("\n", 0, s) + 1
+                hi = norm_joined.find("\n", s)
+                entry = flagged.setdefault(line, (lo, len(norm_joined) if hi < 0 else hi, []))
+            if key_index >= 0:
+                entry[2].append((key_index, s - entry[0], e - entry[0]))
+        for li, (lo, hi, line_hits) in flagged.items():
             text = texts[li]
             if len(text) > MAX_TEXT_LENGTH:
                 raise InputError(f"text {li} is {len(text)} characters; the limit is {MAX_TEXT_LENGTH}")
-            out[li] = self._verify(text, norm_lines[li], source, product, line_hits, None)
+            out[li] = self._verify(text, norm_joined[lo:hi], source, product, line_hits, None)
         return out
 
     def explain(self, text: str, source: Source | str = Source.HOST, product: str | None = None) -> Explanation:
         """Every step of a check: normalised text, tokens, each candidate and why it was kept or dropped."""
-        if type(source) is not Source:
+        try:
+            source = _SOURCES[source]  # Source members and their plain-string values alike
+        except (KeyError, TypeError):
             source = Source.parse(source)
         norm = text.translate(self._table)
         trace: list[Candidate] = []
@@ -411,13 +431,22 @@
             ):
                 verdict, detail = "boundary", "part of a longer Latin word or number"
             elif rule.word_boundary and not is_pattern:
-                if words is None:
-                    words = self.segmenter.spans(norm)
+                if len(norm) <= _SEGMENT_WHOLE_LINE:
+                    if words is None:
+                        words = self.segmenter.spans(norm)
+                        if positions is not None:
+                            # where the original had a space or symbol, jieba's words are cut:
+                            # 刷单 一单五块 is 刷单 + 一单五块 even though the space is gone
+                            words = _cut_at_gaps(words, positions)
+                    hit_words = words
+                else:
+                    # a long line: segment a window around the hit (the verdict only looks at words
+                    # overlapping it; jieba's cost grows with the text it is given)
+                    lo, hi = max(0, s - _SEGMENT_WINDOW), min(len(norm), e + _SEGMENT_WINDOW)
+                    hit_words = tuple((a + lo, b + lo) for a, b in self.segmenter.spans(norm[lo:hi]))
                     if positions is not None:
-                        # where the original had a space or symbol, jieba's words are cut:
-                        # 刷单 一单五块 is 刷单 + 一单五块 even though the space is gone
-                        words = _cut_at_gaps(words, positions)
-                why = splits_a_word(words, s, e, norm, self._term_keys)
+                        hit_words = _cut_at_gaps(hit_words, positions)
+                why = splits_a_word(hit_words, s, e, norm, self._term_keys)
                 if why:
                     verdict, detail = "boundary", f"{why} (jieba)"
             if verdict == "kept" and rule.negatable:
diff -ru a/compliance/matcher.py b/compliance/matcher.py
--- a/compliance/matcher.py	2026-11-23 19:43:53.691102446 +0000
+++ b/compliance/matcher.py	2026-11-23 19:43:53.709647027 +0000
@@ -18,6 +18,9 @@
 
 BACKENDS = ("ahocorasick-rs", "pyahocorasick")
 
+#: Largest automaton the ahocorasick-rs backend builds as a DFA (measured: faster up to ~20k keys, slower at ~60k).
+DFA_MAX_KEYS = 30_000
+
 
 class Matcher(Protocol):
     name: str
@@ -53,7 +56,11 @@
 
         self._empty = not keys
         if not self._empty:
-            self._automaton = ahocorasick_rs.AhoCorasick(list(keys), matchkind=ahocorasick_rs.MATCHKIND_STANDARD)
+            # a DFA scans faster than the default NFA while it fits in cache; large automata keep the NFA
+            impl = ahocorasick_rs.Implementation.DFA if len(keys) <= DFA_MAX_KEYS else None
+            self._automaton = ahocorasick_rs.AhoCorasick(
+                list(keys), matchkind=ahocorasick_rs.MATCHKIND_STANDARD, implementation=impl
+            )
             self._find = self._automaton.find_matches_as_indexes
 
     def find(self, text: str) -> list[tuple[int, int, int]]:
'''


def apply_to_copy(project: Path) -> tuple[Path | None, str]:
    """Copy ``compliance/`` to a temporary ``livestream_compliance`` package and apply ``DIFF`` to it."""
    patch = shutil.which("patch")
    if patch is None:
        return None, "the `patch` program is not installed"
    root = Path(tempfile.mkdtemp(prefix="bench-proposed-"))
    pkg = root / "livestream_compliance"
    shutil.copytree(project / "compliance", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for dry in (True, False):
        p = subprocess.run([patch, "-p2", "-s", "-d", str(pkg)] + (["--dry-run"] if dry else []),
                           input=DIFF, capture_output=True, text=True)
        if p.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            return None, f"the diff no longer applies to compliance/ ({(p.stdout + p.stderr).strip()[:200]})"
    return root, ""


def load_copy(root: Path) -> ModuleType:
    """Import the patched copy under another name, next to the real package."""
    pkg = root / "livestream_compliance"
    spec = importlib.util.spec_from_file_location("proposed_livestream_compliance", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def cold_start_pair(root: Path, reps: int) -> dict[str, list[float]]:
    """Spawn → ready of ``load_checker(); check('x')`` for the engine (A) and the patched copy (B), interleaved."""
    code = ("import time; t=time.perf_counter(); from livestream_compliance import load_checker; "
            "c=load_checker(); c.check('x'); print(time.perf_counter()-t)")
    out: dict[str, list[float]] = {"A": [], "B": []}
    env_b = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for _ in range(reps):
        for label, env in (("A", None), ("B", env_b)):
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                               cwd=tempfile.gettempdir())
            if p.returncode == 0:
                out[label].append(time.perf_counter() - t0)
    return out


def finding_keys(findings: Any) -> list[tuple]:
    return [(f.rule_id, f.start, f.end, f.text, f.matched, int(f.severity)) for f in findings]

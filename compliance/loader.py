"""Loading rules and building a ready checker: the file-system edge of the engine.

``load_rule_set(dirs)`` reads the default packs (shipped as the ``livestream_compliance_rules``
package) and then each given directory or file in order; a later rule with the same id replaces
an earlier one. ``load_checker()`` additionally builds the normaliser, the jieba segmenter and the
automata, so that the first message costs no more than any other.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

from .engine import Checker
from .errors import RuleError, RuleIssue
from .normalize import Normalizer
from .rules import RuleSet, build_rule_set
from .tables import pinyin_table, traditional_to_simplified
from .verify import JiebaSegmenter

RULE_SUFFIX = ".toml"


def default_rule_files() -> list[tuple[str, str]]:
    """``(name, text)`` of every default rule pack, in name order."""
    root = resources.files("livestream_compliance_rules")
    out = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(RULE_SUFFIX) and entry.is_file():
            out.append((f"<default>/{entry.name}", entry.read_text(encoding="utf-8")))
    return out


def read_rule_path(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(name, text)`` of a rule file, or of every ``*.toml`` file in a directory (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == RULE_SUFFIX and f.is_file())
        if not files:
            raise RuleError(RuleIssue(str(p), None, None, f"no *{RULE_SUFFIX} rule files in this directory"))
    elif p.is_file():
        files = [p]
    else:
        raise RuleError(RuleIssue(str(p), None, None, "no such rule file or directory"))
    out = []
    for f in files:
        try:
            out.append((str(f), f.read_bytes().decode("utf-8-sig")))
        except UnicodeDecodeError as exc:
            raise RuleError(RuleIssue(str(f), None, None, f"rule files must be UTF-8: {exc}")) from None
        except OSError as exc:
            raise RuleError(RuleIssue(str(f), None, None, f"cannot read: {exc.strerror}")) from None
    return out


def load_rule_set(paths: Iterable[str | os.PathLike[str]] = (), *, defaults: bool = True) -> RuleSet:
    layers: list[list[tuple[str, str]]] = []
    if defaults:
        layers.append(default_rule_files())
    for p in paths:
        layers.append(read_rule_path(p))
    return build_rule_set(layers)


def build_checker(
    rule_set: RuleSet,
    *,
    backend: str = "ahocorasick-rs",
    segmenter: JiebaSegmenter | None = None,
    jieba_cache_dir: str | None = None,
) -> Checker:
    """A ready checker for ``rule_set``: translate table, taught jieba, automata."""
    normalizer = Normalizer.build(traditional_to_simplified())
    terms = {normalizer.normalize(t) for r in rule_set.rules for t in r.terms}
    if segmenter is None:
        protected = {normalizer.normalize(x) for r in rule_set.rules for x in r.exceptions}
        segmenter = JiebaSegmenter(sorted(terms), sorted(protected), cache_dir=jieba_cache_dir)
    return Checker(rule_set, normalizer=normalizer, segmenter=segmenter, backend=backend, romanize=pinyin_table("".join(terms)))


def load_checker(
    paths: Sequence[str | os.PathLike[str]] = (),
    *,
    defaults: bool = True,
    backend: str = "ahocorasick-rs",
) -> Checker:
    """Load the default rules (plus ``paths``, which extend or override them) and build a checker."""
    return build_checker(load_rule_set(paths, defaults=defaults), backend=backend)

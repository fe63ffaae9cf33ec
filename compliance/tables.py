"""Character tables derived from installed packages (no network, no files of our own).

The traditional -> simplified table comes from OpenCC's ``t2s`` conversion (its dictionaries ship
inside the ``opencc`` wheel), applied to every CJK ideograph one at a time, keeping the
one-to-one mappings. Built once at load time in about 20 ms.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

_CJK_RANGES = ((0x3400, 0x4DC0), (0x4E00, 0xA000), (0xF900, 0xFB00))


@lru_cache(maxsize=1)
def traditional_to_simplified() -> dict[str, str]:
    import opencc

    converter = opencc.OpenCC("t2s")
    chars = [chr(c) for lo, hi in _CJK_RANGES for c in range(lo, hi)]
    converted = converter.convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):  # pragma: no cover - OpenCC never merges lines
        return {}
    return {a: b for a, b in zip(chars, converted) if a != b and len(b) == 1}


def pinyin_table(chars: Iterable[str]) -> dict[str, str]:
    """CJK character -> its most common pinyin (lower case, no tone), from pypinyin's bundled data.

    Only for ``chars`` (the characters of the rule terms: a few thousand, about 50 ms). Empty when
    pypinyin is not installed (pinyin spellings of terms are then not indexed).
    """
    try:
        from pypinyin import Style, lazy_pinyin
    except ImportError:  # pragma: no cover - a declared dependency
        return {}
    cjk = sorted({c for c in chars if "\u4e00" <= c <= "\u9fff"})
    readings = lazy_pinyin(cjk, style=Style.NORMAL, errors=lambda x: [""] * len(x))
    return {c: r for c, r in zip(cjk, readings) if r and r.isascii() and r.isalpha()}

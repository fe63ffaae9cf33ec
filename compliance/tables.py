"""Character tables derived from installed packages (no network, no files of our own).

The traditional -> simplified table comes from OpenCC's ``t2s`` conversion (its dictionaries ship
inside the ``opencc`` wheel), applied to every CJK ideograph one at a time, keeping the
one-to-one mappings. Built once at load time in about 20 ms.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

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


@lru_cache(maxsize=1)
def _pinyin_data() -> dict[str, str]:
    text = resources.files("livestream_compliance").joinpath("data/pinyin.tsv").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            char, reading = line.split("\t")
            out[char] = reading
    return out


def pinyin_table(chars: Iterable[str]) -> dict[str, str]:
    """CJK character -> its most common pinyin (lower case, no tone) for ``chars``.

    From ``data/pinyin.tsv``, generated from pypinyin's dictionary (MIT) by scripts/gen_pinyin.py.
    """
    data = _pinyin_data()
    return {c: data[c] for c in set(chars) if c in data}

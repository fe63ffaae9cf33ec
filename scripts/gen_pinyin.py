"""Regenerate compliance/data/pinyin.tsv: the most common toneless pinyin of each CJK ideograph.

    pip install pypinyin && python scripts/gen_pinyin.py

Derived from pypinyin's bundled dictionary (MIT licence, https://github.com/mozillazg/python-pinyin);
shipped as data so that the checker neither downloads nor imports a 40,000-entry dictionary at start.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from pypinyin.pinyin_dict import pinyin_dict

OUT = Path(__file__).resolve().parents[1] / "compliance" / "data" / "pinyin.tsv"


def toneless(reading: str) -> str:
    decomposed = unicodedata.normalize("NFD", reading).replace("u\u0308", "v")  # ü, ǜ, ǘ... -> v
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.lower()


def main() -> None:
    lines = ["# char<TAB>pinyin, from pypinyin's dictionary (MIT licence); regenerate with scripts/gen_pinyin.py"]
    for cp in range(0x4E00, 0xA000):
        entry = pinyin_dict.get(cp)
        if not entry:
            continue
        first = toneless(entry.split(",")[0])
        if first.isascii() and first.isalpha():
            lines.append(f"{chr(cp)}\t{first}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines) - 1} characters -> {OUT}")


if __name__ == "__main__":
    main()

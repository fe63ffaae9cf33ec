"""Regenerate compliance/data/homophones.tsv: the common characters of each toneless pinyin syllable.

    python scripts/gen_homophones.py

A character's frequency is the summed frequency of the words of jieba's dictionary (MIT licence,
https://github.com/fxsjy/jieba) that contain it; its syllable is its most common reading from
compliance/data/pinyin.tsv (itself derived from pypinyin, MIT). Only simplified characters among the
``COMMON`` most frequent ones are kept, at most ``PER_SYLLABLE`` per syllable, most frequent first.
The checker indexes a short term with one character swapped for one of these (降雪压 for 降血压,
刷丹 for 刷单): evaders pick a common character that reads the same, not a rare one.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import opencc

from livestream_compliance.verify import import_jieba

ROOT = Path(__file__).resolve().parents[1]
PINYIN = ROOT / "compliance" / "data" / "pinyin.tsv"
OUT = ROOT / "compliance" / "data" / "homophones.tsv"

#: characters ranked by this frequency that count as "common" (about the size of the 常用字 list)
COMMON = 3000
#: characters kept per syllable (the most frequent ones)
PER_SYLLABLE = 6


def main() -> None:
    jieba = import_jieba()
    dict_path = Path(jieba.__file__).resolve().parent / "dict.txt"
    freq: Counter[str] = Counter()
    with open(dict_path, encoding="utf-8") as f:
        for line in f:
            word, count = line.split(" ")[:2]
            for ch in set(word):
                if "\u4e00" <= ch <= "\u9fff":
                    freq[ch] += int(count)
    reading = {}
    for line in PINYIN.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            ch, py = line.split("\t")
            reading[ch] = py
    t2s = opencc.OpenCC("t2s")
    by_syllable: dict[str, list[str]] = defaultdict(list)
    for ch, _count in freq.most_common(COMMON):
        if ch in reading and t2s.convert(ch) == ch:
            by_syllable[reading[ch]].append(ch)
    lines = [
        "# pinyin<TAB>its most common simplified characters, most frequent first; regenerate with"
        " scripts/gen_homophones.py",
        "# frequencies from jieba's dictionary (MIT licence), readings from pinyin.tsv (pypinyin, MIT licence)",
    ]
    for syllable in sorted(by_syllable):
        chars = by_syllable[syllable][:PER_SYLLABLE]
        if len(chars) >= 2:
            lines.append(f"{syllable}\t{''.join(chars)}")
    OUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines) - 2} syllables -> {OUT}")


if __name__ == "__main__":
    main()

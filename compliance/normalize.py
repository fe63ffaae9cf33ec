"""Text normalisation that defeats common evasions while keeping exact offsets.

Everything here is one ``str.translate`` table in which every character maps to exactly one
character or is deleted. That single C-level call does:

* full-width forms -> ASCII, ASCII case folding, look-alike letters (``ν``, ``Ⅴ`` -> ``v``);
* traditional -> simplified Chinese, character by character (the table is passed in, see
  :mod:`livestream_compliance.tables`);
* deletion of noise: whitespace, zero-width and format characters, punctuation, symbols and
  emoji that evaders put between characters (``国 家 级``, ``最#佳``, ``加❤V``);
* numerals used to hide contact numbers: ``①``, ``⑴``, ``❶``, ``壹``, ``〇`` -> ASCII digits
  (Chinese ``一二三`` stay as they are, so ``第一`` keeps its meaning; contact patterns accept them).

Because no character expands, the offset map is simply "which original positions survived":
:func:`offset_map` computes it only when a line has a hit, and a line in which nothing was deleted
needs no map at all. Repeated characters (``微微信``) are handled by the matcher, which also
indexes each term with one character doubled or tripled, so they cost nothing here.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Characters kept although they are punctuation: they carry meaning in claims and contacts.
KEPT_PUNCTUATION = frozenset("%+")

#: Clause-ending punctuation is not deleted but becomes this separator, so that a term cannot
#: run across a sentence (好嘞私聊。我跟你说 is not 私聊我). Evaders separate characters with
#: spaces and symbols, rarely with a full stop, so evasions are still folded.
CLAUSE_BREAK = "\u2029"
CLAUSE_PUNCTUATION = "。！？；，、!?;\u2029"

_DIGIT_FORMS = {
    # enclosed and parenthesised digits
    **{chr(0x2460 + i): str(i + 1) for i in range(9)},  # ①..⑨
    **{chr(0x2474 + i): str(i + 1) for i in range(9)},  # ⑴..⑼
    **{chr(0x2488 + i): str(i + 1) for i in range(9)},  # ⒈..⒐
    **{chr(0x2776 + i): str(i + 1) for i in range(9)},  # ❶..❾
    **{chr(0x2780 + i): str(i + 1) for i in range(9)},  # ➀..➈
    **{chr(0x278A + i): str(i + 1) for i in range(9)},  # ➊..➒
    **{chr(0x24F5 + i): str(i + 1) for i in range(9)},  # ⓵..⓽
    "⓪": "0",
    "⓿": "0",
    "〇": "0",
    "零": "零",
    # financial (capital) numerals
    **dict(zip("壹贰叁肆伍陆柒捌玖", "123456789")),
    **dict(zip("貳參陸", "236")),
    # capital and enclosed numerals that are not one digit read as the plain Chinese numeral, one
    # character each: 贰佰伍 -> 2百5 (二百五's digit form), 叁仟 -> 3千, ⑩个点 -> 十个点
    "佰": "百", "仟": "千", "⑩": "十", "⑽": "十", "⒑": "十", "❿": "十", "➉": "十", "➓": "十", "⓾": "十",
}

_LOOKALIKES = {
    "ν": "v",  # Greek nu
    "Ⅴ": "v",
    "ⅴ": "v",
    "ｖ": "v",
    "Ｖ": "v",
    "ѵ": "v",
    "ⓥ": "v",
    "Ⓥ": "v",
    "ⓧ": "x",
    "Ⓧ": "x",
    "ⓠ": "q",
    "Ⓠ": "q",
    "ⓦ": "w",
    "Ⓦ": "w",
    "×": "x",
    "➕": "+",
    "＋": "+",
    "﹢": "+",
    "ℚ": "q",
    "о": "o",  # Cyrillic o
    "а": "a",
    "е": "e",
    "х": "x",
    "Ｘ": "x",
    "ｘ": "x",
    "％": "%",
}


#: Emoji that stand for one character (a rebus): 🐘牙 is 象牙, 降血🍬 is 降血糖, 🦆题 is 押题 (through
#: 鸭, a homophone the terms' swaps cover), 🐧 is QQ (企鹅), 🐶东西 is 狗东西, 草泥🐴 is 草泥马.
#: Only pictographs of a thing that is read as its one-character name. Any of them is also put
#: between characters as decoration (电🚬子烟, 专家👍推荐), so the main table deletes them like
#: every emoji; a line holding one is checked a second time in the *rebus view*
#: (``Normalizer.rebus_view``), where each maps to exactly one character, so offsets stay exact.
#: Hearts, stars, sparkles, flowers, faces and money stand for too many things to be read at all.
REBUS_EMOJI: dict[str, str] = {
    # animals read as their name (and in insults: 🐶东西, 🐷头, 草泥🐴)
    "🐘": "象", "🐶": "狗", "🐕": "狗", "🐷": "猪", "🐖": "猪", "🐴": "马", "🐎": "马",
    "🐍": "蛇", "🐔": "鸡", "🐓": "鸡", "🐮": "牛", "🐂": "牛", "🐄": "牛", "🐟": "鱼",
    "🐱": "猫", "🐈": "猫", "🐭": "鼠", "🐀": "鼠", "🐯": "虎", "🐅": "虎", "🐰": "兔",
    "🐇": "兔", "🐲": "龙", "🐉": "龙", "🐵": "猴", "🐒": "猴", "🐑": "羊", "🐏": "羊",
    "🐐": "羊", "🐢": "龟", "🐸": "蛙", "🐺": "狼", "🦊": "狐", "🦆": "鸭", "🐻": "熊",
    "🦏": "犀", "🐊": "鳄", "🦈": "鲨", "🐼": "熊",
    # 🐧 is QQ's mascot: 🐧号, 加🐧 (one character: q; 🐧🐧 is qq)
    "🐧": "q",
    # things read as their name
    "🍬": "糖", "🍭": "糖", "🚬": "烟", "💊": "药", "💉": "针", "🔫": "枪", "🍵": "茶",
    "🍺": "酒", "🍷": "酒", "🍶": "酒", "🖌": "刷", "📈": "涨", "📉": "跌", "🌿": "草",
    "🍄": "菇", "🥚": "蛋", "🍚": "饭", "🍞": "面", "⛽": "油", "🔑": "钥", "🧠": "脑",
    # 👍 is read as 好 (最👍, 👍评): a thumb between two characters of a word is rare
    "👍": "好",
    # signs read as their one character: 🔝 顶 (🔝级), 🩺 医 (🩺推荐), 🟢 绿 (🟢泡泡 for WeChat),
    # 💩 屎 (in insults), 👑 冠 (销量👑)
    "🔝": "顶", "🩺": "医", "🟢": "绿", "💩": "屎", "👑": "冠",
    # ⚕ (the staff of Aesculapius) is 医, also inside the health-worker sequences 🧑‍⚕️ 👩‍⚕️ 👨‍⚕️
    # (person + ZWJ + ⚕ + VS16): the person and the joiner are deleted, so 👩‍⚕️推荐 reads 医推荐
    "⚕": "医",
    # 🏛 (a classical building) is the 堂 of 人民大会🏛 and 大会🏛
    "🏛": "堂",
    # 💯 is the hundred of 100% (💯%有效, 💯有效): read as 百 (patterns accept 百% and 1百% for 100%)
    "💯": "百",
}


def _letter_and_ideograph_forms() -> dict[int, str]:
    """Symbols that are a letter or an ideograph in their own right, folded in the main table:
    circled, squared and negative squared letters (Ⓑ, 🄱, 🅑, 🅱) and enclosed ideographs (🈚 無,
    🈶 有, ㊙ 秘: their NFKC form)."""
    out: dict[int, str] = {}
    letters = "abcdefghijklmnopqrstuvwxyz"
    for base in (0x24B6, 0x24D0, 0x1F130, 0x1F150, 0x1F170):  # Ⓐ ⓐ 🄰 🅐 🅰
        for i, letter in enumerate(letters):
            out[base + i] = letter
    for cp in list(range(0x3280, 0x32B1)) + list(range(0x1F210, 0x1F252)):  # ㊀..㊰, 🈐..🉑
        folded = unicodedata.normalize("NFKC", chr(cp))
        if len(folded) == 1 and "\u4e00" <= folded <= "\u9fff":
            out[cp] = folded
    return out


def _rebus_targets() -> dict[int, str]:
    """Code point -> the one character it stands for in the rebus view: ``REBUS_EMOJI`` and the
    regional indicator letters (🇻🇽 is vx; in pairs they are mostly flags, hence not in the main table)."""
    out = {ord(k): v for k, v in REBUS_EMOJI.items()}
    for i, letter in enumerate("abcdefghijklmnopqrstuvwxyz"):
        out[0x1F1E6 + i] = letter
    return out


def _is_noise(ch: str) -> bool:
    """True for characters evaders insert between the characters of a term."""
    if ch in KEPT_PUNCTUATION:
        return False
    cat = unicodedata.category(ch)
    # Z*: separators; Cc/Cf: control and format (zero-width space/joiner, BOM, soft hyphen...);
    # P*: punctuation; S*: symbols (emoji, dingbats, arrows, currency, modifiers); Mn/Me: marks
    # (variation selectors, keycap combining mark, enclosing circles) that ride on other characters.
    if cat[0] in "ZPS" or cat in ("Cc", "Cf", "Mn", "Me", "Co", "Cs"):
        return True
    return False


#: The translate table is a list indexed by code point up to here (2.4x faster than a dict in
#: ``str.translate``); characters above it (rare CJK extensions, tags) are left unchanged.
TABLE_SIZE = 0x20000


@dataclass(frozen=True)
class Normalizer:
    """Holds the translate table; ``normalize(text)`` is ``text.translate(table)``.

    ``mapping`` is the canonical form (only the code points that change; ``None`` deletes);
    ``table`` is the same as a dense list for speed.
    """

    mapping: Mapping[int, int | None]
    table: list[int | None]
    #: emoji -> the character it stands for (``REBUS_EMOJI``); deleted by ``table``, see ``rebus_view``
    rebus: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def build(cls, traditional_to_simplified: Mapping[str, str] | None = None) -> Normalizer:
        table: dict[int, int | None] = {}
        # 1. noise deletion over the BMP and the emoji planes
        for cp in list(range(0x0000, 0x3400)) + list(range(0xA000, 0x10000)) + list(range(0x1F000, 0x1FB00)):
            if 0xD800 <= cp <= 0xDFFF:
                continue
            ch = chr(cp)
            if _is_noise(ch):
                table[cp] = None
        for cp in range(0xE0000, 0xE0080):  # tag characters (emoji flags)
            table[cp] = None
        # 2. width and case folding: NFKC for the compatibility forms, then lower()
        for cp in list(range(0xFF01, 0xFF5F)) + list(range(0x41, 0x5B)):
            ch = chr(cp)
            folded = unicodedata.normalize("NFKC", ch).lower()
            if len(folded) == 1:
                table[cp] = None if _is_noise(folded) else ord(folded)
        table[0x3000] = None  # ideographic space
        # mathematical alphanumerics (𝓋, 𝐕, 𝟏): styled letters and digits used to dodge filters
        for cp in range(0x1D400, 0x1D800):
            folded = unicodedata.normalize("NFKC", chr(cp)).lower()
            if len(folded) == 1 and folded != chr(cp) and folded.isascii() and folded.isalnum():
                table[cp] = ord(folded)
        for ch in CLAUSE_PUNCTUATION:
            table[ord(ch)] = ord(CLAUSE_BREAK)
        # 3. digits and look-alikes
        for src, dst in {**_DIGIT_FORMS, **_LOOKALIKES}.items():
            table[ord(src)] = ord(dst)
        # 4. traditional -> simplified, one character to one character
        if traditional_to_simplified:
            for src, dst in traditional_to_simplified.items():
                if len(src) == 1 and len(dst) == 1 and src != dst:
                    # a converted character may itself need folding (e.g. full-width)
                    table[ord(src)] = table.get(ord(dst), ord(dst))
        # 5. symbols that are a letter or an ideograph: 🅱 -> b, 🈚 -> 无
        def target(dst: str) -> int:
            if traditional_to_simplified and len(traditional_to_simplified.get(dst, "")) == 1:
                dst = traditional_to_simplified[dst]
            return table.get(ord(dst), ord(dst))  # type: ignore[return-value]

        for cp, dst in _letter_and_ideograph_forms().items():
            table[cp] = target(dst)
        # 6. the rebus view (🐘 -> 象): a separate mapping, the main table keeps deleting these
        rebus = {cp: target(dst) for cp, dst in _rebus_targets().items() if cp < TABLE_SIZE}
        return cls.from_mapping(table, rebus)

    @classmethod
    def from_mapping(cls, mapping: Mapping[int, int | None], rebus: Mapping[int, int] | None = None) -> Normalizer:
        """The normaliser for a canonical ``mapping`` (as in ``Normalizer.build(...).mapping``) and
        ``rebus`` (``Normalizer.build(...).rebus``)."""
        table = {k: v for k, v in mapping.items() if k < TABLE_SIZE and v != k}
        dense: list[int | None] = list(range(TABLE_SIZE))
        for k, v in table.items():
            dense[k] = v
        return cls(mapping=table, table=dense, rebus=dict(rebus or {}))

    def rebus_view(self) -> tuple[dict[int, int | None], list[int | None]]:
        """``(mapping, table)`` of the rebus view: the main table, but emoji of ``rebus`` become the
        character they stand for instead of being deleted (降血🍬 -> 降血糖)."""
        mapping: dict[int, int | None] = {**self.mapping, **self.rebus}
        dense = list(self.table)
        for k, v in self.rebus.items():
            dense[k] = v
        return mapping, dense

    def batch_table(self, separator: str = "\n") -> list[int | None]:
        """The table, but keeping ``separator`` (for joined batches)."""
        dense = list(self.table)
        dense[ord(separator)] = ord(separator)
        return dense

    def normalize(self, text: str) -> str:
        return text.translate(self.table)


#: Joined batches at least this long are normalised by :class:`VectorTable` (numpy) instead of
#: ``str.translate``: once a string holds any non-ASCII character, ``str.translate`` costs 40-70 ns
#: a character (a Python int per lookup); one vectorised lookup costs a few. Below this length the
#: fixed cost of the numpy calls (a few microseconds) is more than it saves.
VECTOR_MIN_CHARS = 2048

_DELETED = 0xFFFFFFFF


class VectorTable:
    """A dense translate table applied to a whole string with numpy; same result as ``str.translate``.

    The string is viewed as UTF-32 code units, looked up in one array (deleted characters map to a
    sentinel, removed with one mask) and decoded back. Lone surrogates pass through as they do in
    ``str.translate``. Code points beyond the table are left unchanged, as the list table does.
    """

    __slots__ = ("_np", "_array")

    def __init__(self, table: list[int | None]) -> None:
        import numpy as np  # imported here: only batch callers pay its import time

        self._np = np
        self._array = np.array([_DELETED if v is None else v for v in table], dtype=np.uint32)

    def translate(self, text: str) -> str:
        return self.apply(self.codes(text))

    def codes(self, text: str) -> Any:
        """``text`` as a numpy array of code points (to ``apply`` several tables to one encoding)."""
        return self._np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=self._np.uint32)

    def marks(self, chars: Iterable[int]) -> Any:
        """A mask for ``positions``: True at the code points of ``chars`` (each below the table size)."""
        mark = self._np.zeros(len(self._array), dtype=bool)
        mark[list(chars)] = True
        return mark

    def positions(self, codes: Any, mark: Any) -> list[int]:
        """Indexes in ``codes`` of the code points marked in ``mark`` (see ``marks``)."""
        np = self._np
        inside = codes < len(mark)
        found = mark[np.where(inside, codes, 0)] if not inside.all() else mark[codes]
        if not inside.all():
            found &= inside
        return np.flatnonzero(found).tolist()  # type: ignore[no-any-return]

    def apply(self, codes: Any) -> str:
        """``codes`` (see ``codes``) translated by this table, as a string."""
        np, array = self._np, self._array
        beyond = codes >= len(array)
        if beyond.any():
            out = array[np.where(beyond, 0, codes)]
            out[beyond] = codes[beyond]
        else:
            out = array[codes]
        out = out[out != _DELETED]
        return out.tobytes().decode("utf-32-le", "surrogatepass")


def offset_map(original: str, mapping: Mapping[int, int | None]) -> list[int]:
    """For each character of ``original.translate(table)``, its index in ``original``.

    The list has one extra trailing element, ``len(original)``, so that a normalised end offset
    ``e`` maps to ``positions[e - 1] + 1`` and an empty tail maps cleanly.
    """
    positions = [i for i, ch in enumerate(original) if mapping.get(ord(ch), 0) is not None]
    positions.append(len(original))
    return positions


def to_original_span(start: int, end: int, positions: list[int] | None) -> tuple[int, int]:
    """Map a normalised span ``[start, end)`` back to the original text (``positions=None``: identity)."""
    if positions is None:
        return start, end
    return positions[start], positions[end - 1] + 1

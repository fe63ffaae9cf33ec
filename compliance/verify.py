"""Checks that decide whether a candidate hit is real: word boundaries and negation.

These only ever run on lines that already have a candidate hit, so clean lines never reach
jieba or the negation regexes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Protocol


class Segmenter(Protocol):
    """Splits text into words: ``spans(text)`` gives each word's ``(start, end)`` in order."""

    def spans(self, text: str) -> tuple[tuple[int, int], ...]: ...


def splits_a_word(
    spans: tuple[tuple[int, int], ...],
    start: int,
    end: int,
    text: str = "",
    terms: frozenset[str] | set[str] = frozenset(),
) -> str | None:
    """Why the hit ``[start, end)`` is not a word of its own in this segmentation, or None.

    A hit is rejected when one word strictly contains it (第一 in 第一次, 最好 in 最好看), or when
    a word crossing its start or end shares only one character with it (大麻 in 大/麻烦). A
    compound term that merely ends inside a longer word (全网最低 in 全网/最低价) stands, and so
    does a hit inside a word that is itself a rule term (``terms``: 全网最低 in 全网最低价).
    """
    for ts, te in spans:
        if te <= start:
            continue
        if ts >= end:
            break
        if terms and text[ts:te] in terms:
            continue
        if ts <= start and te >= end and te - ts > end - start:
            return "part of a longer word"
        if ts < start < te and min(te, end) - start == 1:
            return "splits a word at its start"
        if ts < end < te and end - max(ts, start) == 1:
            return "splits a word at its end"
    return None


def crosses_a_word(spans: tuple[tuple[int, int], ...], start: int, end: int) -> bool:
    """Does a word of this segmentation cross the start or the end of ``[start, end)``?

    Stricter than :func:`splits_a_word`, for spellings that are not words themselves (a generic
    homophone, 叫珊瑚 in 叫/珊瑚红): both edges must be word boundaries.
    """
    for ts, te in spans:
        if te <= start:
            continue
        if ts >= end:
            break
        if ts < start < te or ts < end < te:
            return True
    return False


def import_jieba():  # type: ignore[no-untyped-def]
    """``import jieba`` without ``pkg_resources``.

    jieba imports ``pkg_resources`` (setuptools, ~0.1 s) only to open its own data files and
    falls back to plain ``open`` next to its module when that import fails; the import is made
    to fail for the duration of jieba's own import only.
    """
    import sys

    if "jieba" in sys.modules:
        return sys.modules["jieba"]
    block = "pkg_resources" not in sys.modules
    if block:
        sys.modules["pkg_resources"] = None  # type: ignore[assignment]  # makes the import raise ImportError
    try:
        import jieba
    finally:
        if block and sys.modules.get("pkg_resources", 0) is None:
            del sys.modules["pkg_resources"]
    return jieba


class JiebaSegmenter:
    """A private ``jieba.Tokenizer`` (never jieba's global one), taught the rule vocabulary.

    Initialising loads jieba's dictionary from inside its wheel (about 0.9 s); construct this
    once at start-up so that no message ever pays for it. jieba keeps a cache of the parsed
    dictionary; ``cache_dir`` says where (``None``: jieba's default temporary directory).
    """

    def __init__(
        self,
        terms: Iterable[str] = (),
        protected: Iterable[str] = (),
        *,
        cache_dir: str | None = None,
        dictionary: tuple[dict[str, int], int] | None = None,
    ) -> None:
        """``dictionary``: jieba's prefix dictionary ``(FREQ, total)`` as already read by the caller
        (e.g. from jieba's cache file); ``None``: jieba loads it itself. The terms are taught on top.
        """
        self._tk = self._tokenizer(cache_dir)
        if dictionary is not None:
            self._tk.FREQ, self._tk.total = dictionary
            self._tk.initialized = True
        else:
            self._tk.initialize()
        # rule terms become words of their own ...
        for t in terms:
            if len(t) >= 2:
                self._tk.add_word(t)
        # ... and exception phrases (第一次, 大麻烦) outrank the terms they contain
        for p in protected:
            if len(p) >= 2:
                self._tk.add_word(p, freq=max(self._tk.suggest_freq(p, False), 1) * 50)

    @staticmethod
    def _tokenizer(cache_dir: str | None = None):  # type: ignore[no-untyped-def]
        jieba = import_jieba()
        logging.getLogger("jieba").setLevel(logging.WARNING)
        jieba.setLogLevel(logging.WARNING)
        tk = jieba.Tokenizer()
        if cache_dir is not None:
            tk.tmp_dir = cache_dir
        return tk

    @classmethod
    def taught(cls, freq: dict[str, int], total: int) -> JiebaSegmenter:
        """A segmenter from a dictionary that already holds the rule words (see :meth:`dictionary`)."""
        self = cls.__new__(cls)
        self._tk = cls._tokenizer()
        self._tk.FREQ, self._tk.total = freq, total
        self._tk.initialized = True
        return self

    def dictionary(self) -> tuple[dict[str, int], int]:
        """The taught prefix dictionary ``(FREQ, total)`` (shared, not copied: do not modify)."""
        return self._tk.FREQ, self._tk.total

    def tokens(self, text: str) -> list[tuple[str, int, int]]:
        return list(self._tk.tokenize(text, HMM=False))

    def spans(self, text: str) -> tuple[tuple[int, int], ...]:
        return tuple((s, e) for _w, s, e in self._tk.tokenize(text, HMM=False))


class WholeTextSegmenter:
    """A trivial segmenter (every character a word): disables word-boundary checks."""

    def spans(self, text: str) -> tuple[tuple[int, int], ...]:
        return tuple((i, i + 1) for i in range(len(text)))


#: Clause breaks: a negation before one of these does not reach a hit after it. Spaces count:
#: chat and speech-recognition text separate clauses with them (这个价格不便宜 加我微信).
_SENTENCE_BREAK = re.compile(r"[。！？!?；;，,、\s…~～:：（）()【】\[\]\u2029]")

#: Plain negators reach a few characters (不能代替药物, 没有副作用); warnings reach further
#: (小心那些叫你加微信私下交易的人).
_NEGATORS = re.compile(r"不|没|沒|别|別|勿|莫|无需|無需|无须|并非|绝非|未经")
_WARNERS = re.compile(
    r"禁止|严禁|嚴禁|杜绝|拒绝|谨防|谨慎|小心|警惕|防止|切忌|当心|提防|远离|请勿|切勿|不要|千万别|千万不能|别信|举报|骗子|诈骗|冒充|"
    r"有人(?:让|叫|说|问|私信|私聊)|有(?:宝宝|家人|朋友|姐妹|粉丝|观众)问"  # reported speech and questions: 有人让我加薇信是你们客服吗, 有宝宝问能不能降血压
)

#: Phrases that contain a negator character but do not negate (questions, idioms, intensifiers).
_NOT_NEGATION = re.compile(
    r"不要错过|不要太|不得不|不管|不论|不仅|不但|不光|不只|不止|不过|不错|不少|不断|不用说|"
    r"忍不住|了不起|不一样|没想到|没错|没得说|没话说|没的说|差不多|别人|别家|别的|特别|区别|级别|类别|"
    r"有没有|是不是|要不要|能不能|好不好|对不对|行不行|会不会|可不可以|用不用|买不买|信不信|"
    r"不可思议|不得了|不然|要不|不愧|不负|不二|莫过于|不如|不妨|不粘锅|不粘|不锈钢|不倒翁|不干胶|不织布|无纺布|没事|"
    r"[\u4e00-\u9fff]不[\u4e00-\u9fff]?了"  # 受不了 / 少不了: potential complements
)

NEGATION_WINDOW = 6
WARNING_WINDOW = 16


def negation_before(original: str, start: int, window: int = NEGATION_WINDOW) -> str | None:
    """The negating or warning word shortly before ``original[start]`` in the same clause, or None.

    A warning (小心, 谨防, 禁止…) reaches back ``WARNING_WINDOW`` characters, a plain negator
    (不, 没, 别…) ``window`` characters; neither crosses a clause break (punctuation or a space).
    Look-alike phrases (有没有, 不要错过, 特别…) are ignored, and so is a negation inside a
    relative clause that modifies the hit (全网没有的电子烟).
    """
    lo = max(0, start - WARNING_WINDOW)
    wide = original[lo:start]
    breaks = list(_SENTENCE_BREAK.finditer(wide))
    if breaks:
        wide = wide[breaks[-1].end() :]
    wide = _NOT_NEGATION.sub(lambda m: "\0" * len(m.group()), wide)
    m = _WARNERS.search(wide)
    if m:
        return m.group()
    lo = max(0, start - window)
    ctx = original[lo:start]
    breaks = list(_SENTENCE_BREAK.finditer(ctx))
    if breaks:
        ctx = ctx[breaks[-1].end() :]
    if not ctx:
        return None
    ctx = _NOT_NEGATION.sub(lambda m: "\0" * len(m.group()), ctx)
    for m in reversed(list(_NEGATORS.finditer(ctx))):
        # 全网没有的电子烟 / 别家买不到的高仿包: the negation sits in a relative clause that
        # modifies the hit (a 的 between them), it does not negate the hit
        if "的" in ctx[m.end() :]:  # 没有的X / 买不到的X / 不方便说的都私我
            return None
        return m.group()
    return None

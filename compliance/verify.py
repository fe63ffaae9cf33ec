"""Checks that decide whether a candidate hit is real: word boundaries and negation.

These only ever run on lines that already have a candidate hit, so clean lines never reach
jieba or the negation regexes.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Protocol

from .literals import required_sets

try:  # the package's optional C extension: jieba's segmentation without a Python frame per character
    from ._native import Lexicon
    from ._native import jieba_spans as _jieba_spans

    #: the dictionaries _jieba_spans reads: a dict, or the packed Lexicon a state start makes
    _FREQ_TYPES: tuple[type, ...] = (dict, Lexicon)
except ImportError:  # not built (no C compiler at install time): jieba itself
    _jieba_spans = None
    _FREQ_TYPES = (dict,)


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
        self._native = _native_segmentation(self._tk)
        if dictionary is not None:
            self._tk.FREQ, self._tk.total = dictionary
            self._tk.initialized = True
        else:
            self._tk.initialize()
        terms = [t for t in terms if len(t) >= 2]
        protected = [p for p in protected if len(p) >= 2]
        #: what teaching changes (a state keeps the base and what teaching set apart, see
        #: loader._jieba_state): every word taught and each of its prefixes (add_word makes a
        #: missing prefix a word of frequency 0) -> its frequency in the base dictionary (None:
        #: absent), and the base's total
        freq = self._tk.FREQ
        before: dict[str, int | None] = {}
        for w in (*terms, *protected):
            for i in range(len(w), 0, -1):
                p = w[:i]
                if p in before:
                    break  # and so are its shorter prefixes
                before[p] = freq.get(p)
        self.undo: tuple[dict[str, int | None], int] | None = (before, self._tk.total)
        # rule terms become words of their own ...
        suggest = self._suggest_freq
        for t in terms:
            self._tk.add_word(t, suggest(t))
        # ... and exception phrases (第一次, 大麻烦) outrank the terms they contain
        for p in protected:
            self._tk.add_word(p, freq=max(suggest(p), 1) * 50)

    def _suggest_freq(self, word: str) -> int:
        """jieba's ``suggest_freq(word, False)`` (what ``add_word(word)`` gives a word by default),
        its segmentation of ``word`` by the C extension where it segments as jieba does: teaching
        the default packs' 6,600 words cut each with jieba's Python DAG (~0.1 s of a build)."""
        tk = self._tk
        freq_of = tk.FREQ
        if not self._native or type(freq_of) not in _FREQ_TYPES:
            return int(tk.suggest_freq(word, False))
        ftotal = float(tk.total)
        freq = 1.0
        for s, e in _jieba_spans(word, freq_of, tk.total):  # type: ignore[misc]
            freq *= freq_of.get(word[s:e], 1) / ftotal  # the same operations, in jieba's order
        return max(int(freq * tk.total) + 1, freq_of.get(word, 1))

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
    def taught(
        cls, freq: Mapping[str, int], total: int, undo: tuple[dict[str, int | None], int] | None = None
    ) -> JiebaSegmenter:
        """A segmenter from a dictionary that already holds the rule words (see :meth:`dictionary`):
        a dict, or a packed ``Lexicon`` whose overlay holds them. ``undo``: what teaching changed,
        as :attr:`undo` (None: not known)."""
        self = cls.__new__(cls)
        self._tk = cls._tokenizer()
        self._native = _native_segmentation(self._tk)
        self._tk.FREQ, self._tk.total = freq, total
        self._tk.initialized = True
        self.undo = undo
        return self

    def dictionary(self) -> tuple[dict[str, int], int]:
        """The taught prefix dictionary ``(FREQ, total)`` (shared, not copied: do not modify): a dict,
        or a ``Lexicon`` (a mapping) when it was read from a state."""
        return self._tk.FREQ, self._tk.total

    def tokens(self, text: str) -> list[tuple[str, int, int]]:
        return list(self._tk.tokenize(text, HMM=False))

    def spans(self, text: str) -> tuple[tuple[int, int], ...]:
        """The spans of jieba's words (no HMM), from the C extension where it was built: the same
        spans as ``tokenize`` (tests/test_verify.py holds them equal), 7-10× faster."""
        tk = self._tk
        if self._native and type(tk.FREQ) in _FREQ_TYPES:
            return _jieba_spans(text, tk.FREQ, tk.total)  # type: ignore[misc, no-any-return]
        return tuple((s, e) for _w, s, e in tk.tokenize(text, HMM=False))


#: jieba versions whose segmentation _native.jieba_spans reproduces (0.42 and 0.42.1, the latest
#: release since 2020); any other version segments with jieba itself
_JIEBA_SAME_ALGORITHM = re.compile(r"0\.42(?:\.1)?$")


def _native_segmentation(tk: object) -> bool:
    """Whether _native.jieba_spans segments exactly as ``tk`` (a jieba Tokenizer) does."""
    version = str(getattr(sys.modules.get(type(tk).__module__), "__version__", ""))
    return _jieba_spans is not None and bool(_JIEBA_SAME_ALGORITHM.match(version))


class WholeTextSegmenter:
    """A trivial segmenter (every character a word): disables word-boundary checks."""

    def spans(self, text: str) -> tuple[tuple[int, int], ...]:
        return tuple((i, i + 1) for i in range(len(text)))


#: Clause breaks: a negation before one of these does not reach a hit after it. Spaces count:
#: chat and speech-recognition text separate clauses with them (这个价格不便宜 加我微信).
_SENTENCE_BREAK = re.compile(r"[。！？!?；;，,、\s…~～:：（）()【】\[\]\u2029]")

#: Plain negators reach a few characters (不能代替药物, 没有副作用); warnings reach further
#: (小心那些叫你加微信私下交易的人).
_NEGATORS = re.compile(r"不|没|沒|别|別|勿|莫|无需|無需|无须|并非|绝非|未经|哪有什么|哪来的|哪里有什么")
_WARNERS = re.compile(
    r"禁止|严禁|嚴禁|杜绝|拒绝|谨防|谨慎|小心|警惕|防止|切忌|当心|提防|远离|请勿|切勿|不要|千万别|千万不能|别信|举报|骗子|诈骗|冒充|"
    r"有人(?:让|叫|说|问|私信|私聊|加|找|冒充|打着|借)|"
    r"(?:那些|任何|某些)[^\u2029]{0,6}?(?:说|讲|号称|宣传|吹嘘|承诺)|"
    r"(?<!就是)(?<!这是)(?<!正是)(?<!才是)所谓的?|"  # 所谓排毒都是营销话术: the speaker distances themselves from the word  # 网上那些说包过的…, 任何跟你说稳赚的…: others' claims reported
    r"有人$|有人在(?:评论区|直播间|弹幕|公屏|群里|评论里)|有(?:宝宝|家人|朋友|姐妹|粉丝|观众)问"  # reported speech and questions: 有人让我加薇信是你们客服吗, 有宝宝问能不能降血压
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


def _hitting_set(strings: set[str]) -> set[str]:
    """A small set of characters, one of which each of ``strings`` holds (greedy, deterministic)."""
    chosen: set[str] = set()
    left = [set(x) for x in strings]
    while left:
        counts = Counter(ch for x in left for ch in x)
        best = max(sorted(counts), key=counts.__getitem__)
        chosen.add(best)
        left = [x for x in left if best not in x]
    return chosen


def _gate(rx: re.Pattern[str]) -> re.Pattern[str] | None:
    """A character-class pattern that finds nothing in a text where ``rx`` cannot match (every match
    of ``rx`` holds one of its characters: a character of each string of one of the sets of
    strings literals.required_sets finds in every match): a search for it costs a fraction of a
    search for ``rx``. None where no small such set is known (then ``rx`` is always run)."""
    if rx.flags & re.IGNORECASE:
        return None
    try:
        sets = required_sets(rx.pattern, rx.flags)
    except Exception:  # the parser is a private module: any change there only loses the shortcut
        return None
    chars = min((_hitting_set(s) for s in sets), key=len, default=None)
    if not chars or len(chars) > 24:
        return None
    return re.compile("[" + "".join(re.escape(ch) for ch in sorted(chars)) + "]")


def _blank(m: re.Match[str]) -> str:
    return "\0" * len(m.group())


#: a search for these finds nothing where the pattern cannot match (see _gate)
_NOT_NEGATION_GATE = _gate(_NOT_NEGATION)
_WARNERS_GATE = _gate(_WARNERS)
_NEGATORS_GATE = _gate(_NEGATORS)
#: matched from a window's start: its end is just past the window's last clause break
_LAST_BREAK = re.compile("(?s:.*)" + _SENTENCE_BREAK.pattern)
#: both look-back gates in one: a text before a hit without any of these holds neither a warning nor a negator
_BEFORE_GATE = (
    re.compile(_WARNERS_GATE.pattern[:-1] + _NEGATORS_GATE.pattern[1:])
    if _WARNERS_GATE is not None and _NEGATORS_GATE is not None
    else None
)


def _masked(text: str) -> str:
    """``text`` with the look-alike phrases (_NOT_NEGATION) blanked out, as long as it."""
    if _NOT_NEGATION_GATE is not None and _NOT_NEGATION_GATE.search(text) is None:
        return text
    return _NOT_NEGATION.sub(_blank, text)


def negation_before(original: str, start: int, window: int = NEGATION_WINDOW) -> str | None:
    """The negating or warning word shortly before ``original[start]`` in the same clause, or None.

    A warning (小心, 谨防, 禁止…) reaches back ``WARNING_WINDOW`` characters, a plain negator
    (不, 没, 别…) ``window`` characters; neither crosses a clause break (punctuation or a space).
    Look-alike phrases (有没有, 不要错过, 特别…) are ignored, and so is a negation inside a
    relative clause that modifies the hit (全网没有的电子烟).
    """
    if start <= 0:
        return None  # nothing before the hit (both windows below are empty)
    if _BEFORE_GATE is not None:
        reach = max(window, WARNING_WINDOW)
        if _BEFORE_GATE.search(original, start - reach if start > reach else 0, start) is None:
            return None  # neither a warning nor a negator can match in either window (see _gate)
    lo = start - WARNING_WINDOW if start > WARNING_WINDOW else 0
    m = _LAST_BREAK.match(original, lo, start)
    cut = m.end() if m else lo  # the clause's start within the window
    wide = original[cut:start]
    if wide and (_WARNERS_GATE is None or _WARNERS_GATE.search(wide) is not None):
        m = _WARNERS.search(_masked(wide))
        if m:
            return m.group()
    lo = start - window if start > window else 0
    if window > WARNING_WINDOW:  # the clause's start within the wider window
        m = _LAST_BREAK.match(original, lo, start)
        cut = m.end() if m else lo
    ctx = original[max(cut, lo):start]  # the last clause break of this window is the wide one's
    if not ctx or (_NEGATORS_GATE is not None and _NEGATORS_GATE.search(ctx) is None):
        return None
    ctx = _masked(ctx)
    last = None
    for last in _NEGATORS.finditer(ctx):
        pass
    if last is None:
        return None
    # 全网没有的电子烟 / 别家买不到的高仿包: the negation sits in a relative clause that
    # modifies the hit (a 的 between them), it does not negate the hit
    if "的" in ctx[last.end() :]:  # 没有的X / 买不到的X / 不方便说的都私我
        return None
    return last.group()


#: A sentence ends here: the look-ahead for a verdict on the hit (…，都是骗子) and the sentence-wide
#: report cue (举报了，刚才那个…) do not cross it. Commas do not end a sentence.
_SENTENCE_END = re.compile(r"[。！？!?；;\n\u2029]")

#: Cues *after* a hit, in the same clause, that make it a refusal or a warning rather than a
#: claim: 扫码进群这种事我们从来不做, 电子烟我们直播间不卖, 刷单违法, 稳赚不赔的话别信. A 不卖 / 不做
#: must end its clause (全网最低价不卖199 still fires).
_AFTER_CLAUSE = re.compile(
    r"(?:从来不|从不|绝对不|坚决不|一律不|一概不|永远不|我们不|咱们不|我们没|咱们没|本店不|直播间不|我们直播间不|我们也不|我们都不)"
    r"(?:做|干|搞|碰|卖|说|提|承诺|敢说|会说|会做|会卖)(?=$|[了的过这])|"
    r"不(?:能|可以|会|敢)?(?:卖|做)(?=$)|"
    # …直播间不卖有需要的请到医院开: a refusal running on without punctuation (not 最低价不卖199, 不卖贵的)
    r"(?:我们|咱们|本店|直播间|我们直播间)(?:是|也|都)?不(?:能|可以|会|敢)?卖(?=有需要|需要的|大家|请|要买|想要的|您|你)|"
    r"(?:违规|违法|犯法|违禁)(?:的|了|行为)?(?=$)|是(?:违规|违法|犯法|违禁)|"
    r"(?:别|不要|千万别|千万不要|切勿|勿)(?:信|相信|上当|被骗)|举报|"
    # a warning about someone else: 楼上是骗子别加他 (not 别加错了, 别买贵了: a third-person object)
    r"(?:别|不要|千万别|千万不要|切勿|勿)(?:加|信|理|买|私聊|转账给?|联系|搭理)(?:他|她|它|这人|这个人|此人|那人|那个人)(?!家|们家)|"
    # refusing the words themselves: 没有副作用这种话我不会说, 保本这个说法早就没有了, …是不存在的
    r"(?:这种|这类|这样的|这个|这些)(?:话|说法|字眼|词|宣传)(?:我|我们|咱|咱们)?(?:是|也|都|从来|绝对|坚决)?(?:不会|不能|不敢|不|没|绝不)(?:说|讲|提|用|承诺)|"
    r"(?:这个|这种)?说法(?:早就|早已|已经|现在)?(?:没有了|不存在了|取消了|过时了|被取消了|不让说了|不能说了)|"
    r"是不存在的|根本不存在|不存在(?=$|的|了)|"
    # 这种话化妆品不能说, 这种东西没有: a refusal of the words or the thing, a subject between
    r"(?:这种|这类|这样的)(?:话|说法|字眼|东西|事|事情|服务)[\u4e00-\u9fff]{0,4}?(?:不能|不会|不敢|不可以|不允许)(?:说|讲|提|用|卖|做)|"
    r"(?:这种|这类|这样的)(?:东西|事|事情|服务|产品)(?:是|都)?(?:没有|不存在|不可能有)(?=$|的|了)|"
    # a warning of what it costs the buyer: 私下交易不受平台保护
    r"不受(?:平台|法律)?(?:的)?保护|平台不(?:管|负责|保障)|没有(?:任何)?保障(?=$)|"
    # a ban on whoever says it: 评论区说代考的一律拉黑
    r"的?(?:一律|直接|统统|全部|都会被?|会被)(?:拉黑|封号|踢出|踢了|禁言|移出|删除)"
)

#: Cues after a hit anywhere in the same sentence (commas allowed) that call it a scam or a lie:
#: 叫你加微信私下转账的，百分百是骗子 / 说保本的都是假的 / 谁说包过谁就是骗你. Not after a 不/没/非
#: (加微信，绝对不是骗子 still fires), nor when someone else is the subject (全网最低价，别家的都是假的).
_AFTER_SENTENCE = re.compile(
    r"是(?:个|一个)?(?:骗子|骗人|骗你|骗钱|诈骗|骗局|谣言|违规|违法|犯法)|的(?:都|全|也|就)?是假的|都是骗|全是骗|纯属(?:骗|谣言|虚构)|"
    r"[那这](?:个|些|种话)?(?:都|也|就|全|纯粹)?是(?:假的|瞎说|胡说|乱说|胡扯|瞎扯)|(?:都|全)是假(?:的|货)|"
    # a past figure with its risk disclosure: 年化是百分之二点一但不代表以后也是这个数
    r"不(?:代表|预示|保证|意味着)(?:未来|以后|将来|今后)|(?:都是|全是|纯属)(?:瞎说|胡说|乱说|胡扯|瞎扯)|"
    r"(?:别|不要|千万别|千万不要)(?:信|相信|上当|被骗)(?:了|啊|哦|呀|哈)?$|"  # closing the sentence: …的 别信
    r"谁说谁(?:就|就是)?(?:骗|是骗|违规|违法|犯法|被罚|被封)|"
    r"(?:都是|全是|就是|纯属|纯粹是)(?:忽悠|营销话术|智商税|噱头|套路|骗局)|"  # 包过这种话谁说谁骗人
    r"认准(?:官方|正规|品牌方|品牌官方)|"  # 市面上高仿很多 认准官方旗舰店: a warning about the market
    r"是真的吗|是真的假的|是不是真的|"  # a viewer asking whether an offer is real
    # a warning closing the sentence: …的培训班大家一定要小心, …千万要当心
    r"(?:一定|千万|可|都|务必|还是|更)?(?:要|得)(?:小心|当心|警惕|提防|谨慎|擦亮眼睛|注意甄别|注意辨别)(?:了|啊|哦|呀|哈|点|一点|些)?$|(?:谨防|当心|小心)(?:上当|受骗|被骗)"
)
#: What may follow an A-not-A form of the hit for it to be a question (见效快不快因人而异, 有效不有效要看体质).
_A_NOT_A_TAIL = re.compile(r"$|[啊呀呢吗么嘛？?\s，,。]|要看|得看|取决|因人而异|看个人|看体质|看情况|谁知道|不好说|说不准|的问题|这个问题")
_OTHER_PARTY = re.compile(r"别家|别人|别的|其他|其它|他们|外面|人家|同行|友商|某些")

#: A report cue earlier in the same sentence, across commas: 举报了，刚才那个刷屏加微信的.
_REPORT_BEFORE = re.compile(r"举报|已拉黑|拉黑了")

AFTER_WINDOW = 24


#: 和招财转运没关系 / 跟治病无关: a 和/跟/与 just before the hit and a denial of relation after it in the clause.
_UNRELATED_BEFORE = re.compile(r"(?:和|跟|与|同)[^\u2029]{0,2}$")
_UNRELATED_AFTER = re.compile(r"^[^\u2029]{0,6}?(?:没有?(?:任何|什么|半点|一点)?关系|无关|不相关|毫无关系|扯不上|不沾边|不搭边)")


_AFTER_CLAUSE_GATE = _gate(_AFTER_CLAUSE)
_AFTER_SENTENCE_GATE = _gate(_AFTER_SENTENCE)
_REPORT_BEFORE_GATE = _gate(_REPORT_BEFORE)
_LAST_END = re.compile("(?s:.*)" + _SENTENCE_END.pattern)


def negation_after(original: str, end: int, start: int | None = None) -> str | None:
    """A refusal, ban or scam verdict on the hit shortly after ``original[end]``, or None.

    In the same clause: 从来不做, 我们不卖, 是违规的, 别信, 举报; in the same sentence (across commas,
    up to ``AFTER_WINDOW`` characters): 都是骗子, 是假的, 就是骗你 — unless a 不/没/非 stands right
    before the 是 (加微信，绝对不是骗子). The question form (…是骗子吗) counts as well: a viewer asking
    whether it is a scam is not promoting it. Also a report earlier in the sentence (举报了，刚才那个…).
    """
    after = original[end : end + AFTER_WINDOW]
    stop = _SENTENCE_END.search(after)
    if stop:
        after = after[: stop.start()]
    if after:
        clause = after
        brk = _SENTENCE_BREAK.search(clause)
        if brk:
            clause = clause[: brk.start()]
        if _AFTER_CLAUSE_GATE is None or _AFTER_CLAUSE_GATE.search(clause) is not None:
            m = _AFTER_CLAUSE.search(_masked(clause))
            if m:
                return m.group()
        if end > 0 and len(after) >= 2 and after[0] == "不" and after[1] == original[end - 1] and _A_NOT_A_TAIL.match(after, 2):
            return after[:2]  # 见效快不快因人而异: the A-not-A question form (not 保过不过退钱)
        if start is not None and _UNRELATED_BEFORE.search(original, max(0, start - 3), start):
            m = _UNRELATED_AFTER.search(_masked(clause))
            if m:
                return m.group()
        if _AFTER_SENTENCE_GATE is None or _AFTER_SENTENCE_GATE.search(after) is not None:
            for m in _AFTER_SENTENCE.finditer(after):
                before = after[max(0, m.start() - 3) : m.start()]
                if "的" in before:  # 不赔的都是骗子: the 不 belongs to the claim, not to the verdict
                    before = before[before.rindex("的") + 1 :]
                if any(ch in before for ch in "不没非") or _OTHER_PARTY.search(after, 0, m.start()):
                    continue
                return m.group()
    lo = end - AFTER_WINDOW * 2 if end > AFTER_WINDOW * 2 else 0
    if _REPORT_BEFORE_GATE is not None and _REPORT_BEFORE_GATE.search(original, lo, end) is None:
        return None  # no report cue anywhere before (the sentence's head below is a part of this)
    stop = _LAST_END.match(original, lo, end)
    head = original[stop.end() if stop else lo : end]
    m = _REPORT_BEFORE.search(head)
    if m:
        return m.group()
    return None


#: A viewer's question about what an item *is* or whether the item on show may be bought (rule context
#: ``question``, viewer chat only) is not an offer: 这个是真象牙吗, 会不会是高仿啊, 看着像是高仿,
#: 这个电子烟可以买吗. Asking where to get such goods stays a finding (有熊胆粉吗, 有没有卖电子烟的,
#: 蒙汗药有卖吗: a request to deal), and so does any sentence that makes an offer (有象牙要的私我,
#: 要不要电子烟, 谁要高仿包, 便宜出).
_Q_DOUBT = re.compile(r"(?:是不是|会不会|难道|该不会|不会是|是否|确定是|像是|好像是|看着像|看起来像|怕不是)[^\u2029]{0,4}$")
_Q_COPULA = re.compile(r"(?:是|是真的?|真的是|是正宗的?|是纯的?|是天然的?)$")
#: A viewer accusing the seller of selling it (骗子主播卖高仿, 你们家卖的是假货) reports the goods, it does not offer them.
_Q_ACCUSE = re.compile(r"(?:主播|你们?家?|他们?家?|她家|商家|店家|这家店?|直播间)(?:就|是|在|居然|竟然|还|又|也|一直|明明)*(?:卖|在卖|卖的是?|拿)$")
_Q_PARTICLE = re.compile(r"^[^\u2029]{0,8}?(?:[吗么嘛吧](?![\u4e00-\u9fff]{0,1}(?:私|要))|[？?]|还是)")
_Q_DEMONSTRATIVE = re.compile(r"(?:这|那)(?:个|款|种|只|支|把|件|条|串|块|些|是)?[^\u2029]{0,4}$")
_Q_PERMISSION = re.compile(r"^[^\u2029]{0,4}?(?:可以|能|能不能|可不可以|敢)(?:买|用|抽|带|戴|入|拍)(?:吗|么|嘛|不|啊|呀|[？?]|$)")
_OFFER = re.compile(
    r"私|加我|加v|找我|联系|滴我|滴滴|扣我|扣1|要的|需要的|想要的|有需要|有货|出货|拿货|货源|渠道|代购|批发|包邮|出售|便宜出|"
    r"谁要|要不要|需不需要|有人要|有要的|收(?![到藏获])|出[一个两几]|现货|(?<!收)到货|微信|vx|wx|v信|"
    r"我(?:这|这里|这边|家|们)?(?:就|也|都|还)?(?:有|货|收)|货多|有的是|管够|"
    r"有没有|有卖|有的卖|出吗|有吗|有么|哪里|哪儿|哪有|怎么买|去哪|在哪|多少钱一"
)
#: Whether the item may be sold or bought at all (电子烟能买吗, 能在这卖吗, 不是不让卖吗, 不是违法吗):
#: a question about the rules, with or without a demonstrative.
_Q_LEGALITY = re.compile(
    r"^[^\u2029]{0,6}?(?:(?:能|可以|让|准|允许)(?:在这里?|在直播间|在平台|在网上)?(?:卖|买|带|寄)(?:吗|么|嘛|不|[？?])|"
    r"不是(?:不让|不能|禁止)[^\u2029]{0,3}?(?:吗|么|嘛)|(?:违法|违规|犯法|合法)(?:吗|么|嘛|不|[？?])|是不是(?:违法|违规|犯法|禁止))"
)
_Q_CLAUSE_END = re.compile(r"[。！!；;\n\u2029]")
QUESTION_WINDOW = 16


def question_about(original: str, start: int, end: int) -> str | None:
    """The question frame around the hit ``original[start:end]``, or None (see ``_Q_DOUBT``).

    Within the sentence around the hit (up to ``QUESTION_WINDOW`` characters each side, cut at
    。！；): a doubting frame before it (会不会是, 是不是, 像是), a copula before it and a question
    particle after it (是真象牙吗, 是高仿的吧), or a demonstrative before it and a question of
    permission after it (这个电子烟可以买吗); and no offer or request to deal anywhere in it.
    """
    head = original[max(0, start - QUESTION_WINDOW) : start]
    stops = list(_Q_CLAUSE_END.finditer(head))
    if stops:
        head = head[stops[-1].end() :]
    tail = original[end : end + QUESTION_WINDOW]
    stop = _Q_CLAUSE_END.search(tail)
    if stop:
        tail = tail[: stop.start()]
    head, tail = head.replace(" ", ""), tail.replace(" ", "")
    if _OFFER.search(head) or _OFFER.search(tail) or head.endswith("有"):
        return None
    m = _Q_DOUBT.search(head) or _Q_ACCUSE.search(head)
    if m:
        return m.group()
    if _Q_COPULA.search(head):
        m = _Q_PARTICLE.search(tail)
        if m:
            return m.group()
    m = _Q_LEGALITY.search(tail)
    if m:
        return m.group()
    if _Q_DEMONSTRATIVE.search(head):
        m = _Q_PERMISSION.search(tail)
        if m:
            return m.group()
    return None


#: A superlative scoped to the shop's own range (rule context ``own_range``): the SAMR guide on
#: absolute terms does not punish self-comparison inside one brand (我们家三个色号里卖得最好的,
#: 自家系列里目前最保湿的一款). Both a shop/brand marker and a range with 里/中 must come before the
#: hit in its clause; 我们家这款是最保暖的 (no range) stays a finding.
_OWN_RANGE = re.compile(
    r"(?:我们家|咱们家|咱家|我家|自家|本店|店里|我们店|我们品牌|本品牌|品牌自己|我们自己)[^\u2029，,。！？\s]{0,8}?"
    r"(?:系列|产品线|色号|款|型号|产品|单品|几个|几样|口味|香型)(?:里面|里|中|当中|之中)(?:目前|现在|现阶段)?(?:是|算是)?"
    r"[^\u2029，,。！？\s]{0,3}$"
)


def own_range_before(original: str, start: int) -> str | None:
    """The shop's own range scoping a superlative at ``original[start]`` (see ``_OWN_RANGE``), or None."""
    head = original[max(0, start - WARNING_WINDOW) : start]
    m = _OWN_RANGE.search(head)
    return m.group() if m else None

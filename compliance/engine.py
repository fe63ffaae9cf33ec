"""The checker: normalise -> automaton -> verify -> findings. Pure: no I/O, no clocks, no globals.

Build one :class:`Checker` per rule set (it compiles the automata, patterns and the segmenter
vocabulary) and call :meth:`Checker.check` per message or :meth:`Checker.check_batch` for many
lines at once. Every decision the checker takes can be replayed with :meth:`Checker.explain`.
"""

from __future__ import annotations

from array import array

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import partial
from itertools import compress, product
from operator import methodcaller
from typing import Any, Literal, TypeVar

from .classifier import BatchScorer, ParaphraseModel
from .errors import InputError, RuleError, RuleIssue, UsageError
from .findings import Finding, Source
from .matcher import DEFAULT_BACKEND, Matcher, MatcherBuild, _native, build_matcher, translate_table
from .normalize import VECTOR_MIN_CHARS, Normalizer, VectorTable, offset_map, to_original_span
from .rules import PRODUCT_CATEGORIES, Rule, RuleSet
from .literals import prepare
from .verify import (
    Segmenter,
    WholeTextSegmenter,
    crosses_a_word,
    negation_after,
    negation_before,
    own_range_before,
    question_about,
    splits_a_word,
)

#: Longest text ``check`` accepts (characters). Longer input is a caller error, not a hang.
MAX_TEXT_LENGTH = 100_000

_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")

#: Source by member or value: ``Source`` is a ``str`` enum, so ``"chat"`` and ``Source.CHAT`` are the
#: same key. A dict lookup instead of ``Source.parse`` (~2 µs) for callers that pass plain strings.
_SOURCES: dict[str, Source] = {s.value: s for s in Source}

_PRODUCTS = frozenset(PRODUCT_CATEGORIES)

#: entry kinds; ``_Entry.width`` of a ``_GAP`` entry is where its term lost a character (see ``gap_forms``)
_TERM, _EXCEPTION, _VARIANT, _TRIGGER, _ALIAS, _GAP, _HOMOPHONE = 0, 1, 2, 3, 4, 5, 6
#: the kinds verified as a term's spelling (what _verify turns into term hits before its verdicts)
_TERM_KINDS = frozenset({_TERM, _VARIANT, _ALIAS, _HOMOPHONE})

Verdict = Literal["kept", "exception", "boundary", "negation", "speaker", "product", "contained", "gap", "context"]
#: candidate verdicts by which a rule judged its words lawful where they stand (an exception, a
#: negation or refusal, a question or other context, its product scope, a word boundary: 最 in 最近):
#: the paraphrase model then does not report that rule's category on the line (see check)
_JUDGED_LAWFUL = frozenset({"exception", "negation", "product", "context", "boundary"})
_NOTHING_JUDGED: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Candidate:
    """One automaton or pattern hit and what the checker decided about it (for ``explain``)."""

    rule_id: str
    key: str
    norm_start: int
    norm_end: int
    start: int
    end: int
    verdict: Verdict
    detail: str = ""


@dataclass(frozen=True)
class Explanation:
    text: str
    normalized: str
    source: Source
    product: str | None
    tokens: tuple[tuple[str, int, int], ...]
    candidates: tuple[Candidate, ...]
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: int
    rule: Rule
    pattern: re.Pattern[str] | None = None  # for triggers: the pattern to run
    #: for triggers: the pattern's longest match and how far it reads past a match start (None:
    #: unbounded), so a trigger occurrence needs only the pattern searched around it
    width: int | None = None
    reach: int | None = None
    #: for triggers: strings one of which every match contains (literals.prepare), or None
    guard: tuple[str, ...] | None = None
    #: for triggers: every match begins with a trigger, so only a match at an occurrence is possible
    anchored: bool = False

    def __reduce__(self) -> tuple[type[_Entry], tuple[object, ...]]:
        # unpickled by the constructor: the dataclass's own __setstate__ costs ~20 µs an entry at start-up
        return _Entry, (self.kind, self.rule, self.pattern, self.width, self.reach, self.guard, self.anchored)


@dataclass
class _Automaton:
    keys: list[str] = field(default_factory=list)
    entries: list[tuple[_Entry, ...]] = field(default_factory=list)
    matcher: Matcher | None = None
    #: per key: the patterns it triggers if that is all the key does, else None (see _verify)
    trigger_only: list[tuple[int, _TriggerOnly] | None] = field(default_factory=list)


def _variants(key: str) -> set[str]:
    """The key plus every form with one character doubled or tripled (微微信, 全网网最低, 笑笑气).

    Edge doublings matter too: with word-boundary checks, 笑气 inside 笑笑气 would be cut.
    A doubled form only counts when its characters are adjacent in the original text.
    """
    out = {key}
    for i, ch in enumerate(key):
        if ch.isdigit():
            continue
        out.add(key[: i + 1] + ch + key[i + 1 :])
        out.add(key[: i + 1] + ch + ch + key[i + 1 :])
    return out


#: Characters evaders swap for a homophone or near-homophone (醉好 for 最好, 薇信 for 微信).
#: Each term is also indexed with one of its characters swapped for one of these.
HOMOPHONES: dict[str, str] = {
    "最": "醉嘴蕞罪",
    "佳": "嘉",
    "低": "滴",
    "第": "弟地",
    "微": "薇威徽维溦",
    "信": "芯",
    "返": "反饭",
    "治": "质",
    "愈": "玉",
    "疗": "辽聊",
    "保": "宝",
    "赚": "转攒",
    "刷": "唰",
    "私": "丝斯",
    "聊": "撩",
    "加": "佳嘉家",
    "牙": "芽",
    "医": "衣",
    "供": "共",
    "原": "愿",
    "宴": "燕晏",
    "象": "相",
    "癌": "岩",
    "级": "鸡",
    "押": "鸭",  # 国家鸡, 顶鸡: too common a word to fold, listed instead
}

#: Homophones of *common* characters (正 for 证, 笑 for 效), listed like ``HOMOPHONES`` but only
#: swapped into CJK terms of at least ``MIN_LONG_SWAP_TERM`` characters (保正有效, 无笑退款, 治失绵,
#: 岭导人): the rest of the term anchors the reading, whereas in a 2-character term such a swap is
#: ordinary text (有笑, 保正). Generic swaps and folding skip them as too common a word on their own.
LONG_TERM_HOMOPHONES: dict[str, str] = {
    "证": "正",
    "效": "笑校",
    "眠": "绵棉",
    "领": "岭",
    "宴": "燕艳",
    "导": "倒",
}

#: Shortest CJK term that gets the swaps of ``LONG_TERM_HOMOPHONES``.
MIN_LONG_SWAP_TERM = 3

#: Chinese numerals a term is also indexed with as ASCII digits (第一 -> 第1, 零风险 -> 0风险): the
#: normaliser leaves 一二三 alone (第一 keeps its meaning), evaders write the digit. 十 and 两 are not
#: one digit. A digit edge is subject to the Latin boundary check (第1 is not in 第12).
NUMERAL_DIGITS = str.maketrans("零一二三四五六七八九", "0123456789")


def digit_form(key: str) -> str | None:
    """``key`` with its Chinese numerals as ASCII digits, or None when it has none (or is all numerals)."""
    d = key.translate(NUMERAL_DIGITS)
    if d == key or d.isdigit():
        return None
    return d


#: Terms longer than this get no pinyin or homophone spellings (keeps the automaton small).
MAX_ALIAS_TERM = 6

#: Terms of this many characters at most are also spelt with one character in pinyin (降xue压, bao过);
#: longer ones only with two adjacent characters or all of them in pinyin.
MAX_SINGLE_PINYIN_TERM = 6

#: CJK terms of 3 to this many characters are also spelt with any set of their characters in pinyin
#: (zhuan家tui荐 for 专家推荐, each syllable of two letters or more), and terms of 2 to this many
#: characters with one character in pinyin and another swapped for a listed homophone (zhi玉).
MAX_SCATTERED_PINYIN_TERM = 4

#: Terms of this many characters at most (and at least 2) are also indexed with one character
#: swapped for any *common* character of the same toneless pinyin (``homophones``): 降雪压, 刷丹,
#: 鼎级. Longer terms only get the listed ``HOMOPHONES`` (each generic swap costs keys).
MAX_HOMOPHONE_TERM = 3

#: CJK terms of at least this many characters (of rules with ``homophones``) are also found with any
#: number of their characters written as another character of the same toneless pinyin (稳赚不赔 as
#: 稳赚不陪, 专家推荐 as 专佳推荐): the automaton holds every key in *folded* form and scans the
#: folded text (see ``fold_key`` and ``Checker._resolve``), so this costs nothing per term. Shorter
#: terms only get the indexed swaps of ``homophone_swaps``: two syllables collide too often.
MIN_FOLD_TERM = 3


def fold_key(key: str, fold: Mapping[str, str]) -> str:
    """``key`` with every character replaced by the representative of its toneless pinyin (``fold``:
    character -> one character per syllable; others are kept). Same length as ``key``."""
    return "".join([fold.get(ch, ch) for ch in key])


#: For folded terms shorter than 4 characters, a swapped-in character must be rarer than this as a
#: word on its own (忘 in 忘事业 is not 旺; 苞 in 苞过 is 包): short spellings collide with real text.
MAX_SHORT_FOLD_WORD_FREQ = 3_000


def fold_spelling_ok(
    term: str, spelling: str, lexicon: Mapping[str, int] | None, fold: Sequence[int] | None = None
) -> bool:
    """Is ``spelling`` (same pinyin as ``term``, different characters) an evasion of ``term``? Not
    when a swapped-in character is a particle, pronoun or numeral (``FUNCTION_CHARACTERS``) or a
    common word on its own (``MAX_SWAP_WORD_FREQ``; ``MAX_SHORT_FOLD_WORD_FREQ`` in terms shorter
    than 4 characters), nor when the spelling is itself a word. ``fold``: the exact-syllable folding
    table (code point -> representative), to tell near homophones apart (see near_spelling_ok)."""
    if spelling == term:
        return False
    limit = MAX_SWAP_WORD_FREQ if len(term) >= 4 else MAX_SHORT_FOLD_WORD_FREQ
    for a, b in zip(term, spelling):
        if a != b and (b in FUNCTION_CHARACTERS or (lexicon is not None and lexicon.get(b, 0) >= limit)):
            return False
    if fold is not None and not near_spelling_ok(term, spelling, fold):
        return False
    return lexicon is None or lexicon.get(spelling, 0) == 0


def near_spelling_ok(term: str, spelling: str, fold: Sequence[int]) -> bool:
    """Long terms are also indexed with a near homophone (z/zh, c/ch, s/sh, n/l, -n/-ng:
    ``tables.near_folds``); such a spelling counts only with one near-homophone character (医僧推荐 for 医生推荐, 加我卫星 for
    加我微信), and in a 3-character term not at its edge, where neighbouring words collide (吊坠 天然
    is not 最天然). A character is a near one when ``fold`` (exact syllables, see
    ``tables.fold_table``) gives it another representative than the term's character."""
    def rep(ch: str) -> int:
        cp = ord(ch)
        return fold[cp] if cp < len(fold) else cp

    near = [i for i, (a, b) in enumerate(zip(term, spelling)) if a != b and rep(a) != rep(b)]
    return not near or (len(near) == 1 and (len(term) >= 4 or 0 < near[0] < len(term) - 1))


#: Terms of this many characters (CJK only) are also indexed with one interior character dropped,
#: counted only where the original text has a symbol or emoji in its place (加❤信 for 加微信).
GAP_TERM_LENGTHS = (3, 4)


#: Never swapped in as a homophone: particles, pronouns, prepositions, auxiliaries and numerals glue
#: to any neighbour (去吧 is not 祛疤, 大吗 is not 大麻, 女拳是 is not 女拳师).
FUNCTION_CHARACTERS = frozenset(
    "的地得了着过吗吧呢啊呀哦嘛么是你您我他她它们在有和与就都也不没这那哪什个把被给让对从向跟为很还又才再会能要可以"
    "一二三四五六七八九十百千万"
)


#: Nor a character that is this common as a one-character word in jieba's dictionary (叫, 去, 家, 但).
MAX_SWAP_WORD_FREQ = 20_000

#: In 2-character terms, where the other character is all the context there is, the swapped-in
#: character must be rarer still: 题 in 这道题|考了 is not 替, 建 in 胡建人 is not 贱.
MAX_PAIR_SWAP_WORD_FREQ = 5_000


def homophone_swaps(
    key: str,
    romanize: Mapping[str, str],
    homophones: Mapping[str, str],
    lexicon: Mapping[str, int] | None = None,
) -> set[str]:
    """``key`` with one character swapped for a common character of the same toneless pinyin.

    ``homophones``: syllable -> its common characters (``data/homophones.tsv``). A spelling that is
    itself a word of ``lexicon`` (jieba's dictionary: 定级 for 顶级, 至于 for 治愈) is skipped: a
    real word is not an evasion; nor is a swap to a ``FUNCTION_CHARACTERS`` character or to a
    character that is a very common word on its own (``MAX_SWAP_WORD_FREQ``). Only terms of 2 to
    ``MAX_HOMOPHONE_TERM`` characters.
    """
    out: set[str] = set()
    if not (2 <= len(key) <= MAX_HOMOPHONE_TERM) or not homophones:
        return out
    for i, ch in enumerate(key):
        py = romanize.get(ch)
        if py is None:
            continue
        for alt in homophones.get(py, ""):
            if alt == ch or alt in FUNCTION_CHARACTERS:
                continue
            if lexicon is not None and lexicon.get(alt, 0) >= (MAX_SWAP_WORD_FREQ if len(key) > 2 else MAX_PAIR_SWAP_WORD_FREQ):
                continue  # 叫, 去, 家: a common word on its own glues to any neighbour (叫珊瑚 is not 角珊瑚)
            v = key[:i] + alt + key[i + 1 :]
            if (lexicon is not None and lexicon.get(v, 0) > 0) or v in SHOPPING_WORDS:
                continue
            out.add(v)
    return out


#: Everyday shopping words jieba's dictionary lacks, never taken for a homophone spelling
#: (大码 is a size, not 大麻).
SHOPPING_WORDS = frozenset({"大码", "小码", "中码", "均码", "加大码", "特大码"})


def gap_forms(key: str) -> dict[str, int]:
    """``key`` with one interior character dropped -> where the gap is (加信 -> 1 for 加微信).

    Only for CJK terms of ``GAP_TERM_LENGTHS`` characters; such a key counts only where the original
    text has a deleted symbol or emoji at the gap (see ``Checker._verify``), so 加信 alone never fires.
    A form made only of ``FUNCTION_CHARACTERS`` (你吗 for 你瞎吗) is left out: such common text
    would send many clean lines to verification.
    """
    if len(key) not in GAP_TERM_LENGTHS or not all("\u4e00" <= ch <= "\u9fff" for ch in key):
        return {}
    out = {}
    for i in range(1, len(key) - 1):
        g = key[:i] + key[i + 1 :]
        if all(ch in FUNCTION_CHARACTERS for ch in g):
            continue
        out[g] = i
    return out


def aliases(key: str, romanize: Mapping[str, str]) -> set[str]:
    """Other spellings of a normalised term that evaders use.

    * pinyin for the whole term, any two adjacent characters or, in terms of at most
      ``MAX_SINGLE_PINYIN_TERM`` characters, any one character (kaiguang, 全网zuidi价, 降xue压,
      bao过), when ``romanize`` knows them (the loader builds it from pypinyin's dictionary); a
      one-character pinyin needs at least two letters;
    * one character swapped for a listed homophone (醉好, 全网醉低价, 薇信).
    Generic homophones of short terms are :func:`homophone_swaps`, a kind of their own (always
    checked against jieba's word boundaries). Latin edges are still subject to the Latin word-boundary check, jieba boundaries still apply.
    """
    out: set[str] = set()
    n = len(key)
    if n > MAX_ALIAS_TERM:
        return out
    if romanize:
        spans = {(0, n)} | {(i, i + 2) for i in range(n - 1)}  # the whole term, or two characters of it
        for i, j in spans:
            py = [romanize.get(ch) for ch in key[i:j]]
            if j - i >= 2 and all(py):
                out.add(key[:i] + "".join(py) + key[j:])  # type: ignore[arg-type]
        if 2 <= n <= MAX_SINGLE_PINYIN_TERM:
            for i, ch in enumerate(key):  # one character (降xue压, jiang血压, bao过)
                py1 = romanize.get(ch)
                if py1 is not None and len(py1) >= 2:
                    out.add(key[:i] + py1 + key[i + 1 :])
        if 3 <= n <= MAX_SCATTERED_PINYIN_TERM:
            # any other set of characters in pinyin (zhuan家tui荐, 稳zhuan不pei): each syllable of
            # two letters or more, CJK terms only (a Latin part would run into the pinyin)
            py_all = [romanize.get(ch) for ch in key]
            if all(p is not None and len(p) >= 2 for p in py_all):
                # every mix of characters and syllables but the key itself (the all-pinyin one is
                # added above too)
                mixes = set(map("".join, product(*zip(key, py_all))))  # type: ignore[arg-type]
                mixes.discard(key)
                out |= mixes
        if 2 <= n <= MAX_SCATTERED_PINYIN_TERM:
            # one character in pinyin and another swapped for a listed homophone (zhi玉 for 治愈)
            for i, ch in enumerate(key):
                py1 = romanize.get(ch)
                if py1 is None or len(py1) < 2:
                    continue
                for j, cj in enumerate(key):
                    if j != i:
                        for alt in HOMOPHONES.get(cj, ""):
                            v = list(key)
                            v[i], v[j] = py1, alt
                            out.add("".join(v))
    for i, ch in enumerate(key):
        for alt in HOMOPHONES.get(ch, ""):
            out.add(key[:i] + alt + key[i + 1 :])
    if n >= MIN_LONG_SWAP_TERM and all("\u4e00" <= ch <= "\u9fff" for ch in key):
        for i, ch in enumerate(key):
            for alt in LONG_TERM_HOMOPHONES.get(ch, ""):
                out.add(key[:i] + alt + key[i + 1 :])
    return out


def _found_keys(find: Callable[[str, bool], list[tuple[int, int, int]]], text: str) -> set[int]:
    """The key indexes ``find`` reports in ``text`` (what the native Automaton.find_keys returns)."""
    return {h[0] for h in find(text, True)}


def _deleting(chars: Iterable[int]) -> list[int | None]:
    """A translate list deleting exactly the code points ``chars`` (see Table.deleted)."""
    cps = list(chars)
    table: list[int | None] = list(range(max(cps, default=-1) + 1))
    for cp in cps:
        table[cp] = None
    return table


def _no_pause() -> None:
    return None


def _absence_test(chars: frozenset[str]) -> Callable[[str], bool]:
    """A function telling whether a text holds none of ``chars``; same answer as
    ``chars.isdisjoint(text)``, which costs ~90 ns a character (a str object per character).

    The rebus emoji are outside the Basic Multilingual Plane but for a few symbols (⚕, ⛽). CPython
    stores a string with no character beyond U+FFFF in 1 or 2 bytes a character, so its size
    (``str.__sizeof__``) is below the header plus 4 bytes a character: such a text needs only a
    substring test per BMP character of ``chars`` (~50 ns each). Any other text (one holding an
    emoji, or whose size says nothing: a str subclass, a cached UTF-8 copy) takes the set test.
    With many BMP characters in ``chars`` the set test alone is used.
    """
    wide = frozenset(ch for ch in chars if ord(ch) > 0xFFFF)
    narrow = tuple(sorted(chars - wide))
    isdisjoint = chars.isdisjoint
    if not chars or len(narrow) > 4 or any(ch.isascii() for ch in narrow):
        return isdisjoint
    sizeof = str.__sizeof__  # not sys.getsizeof (~10x slower), nor a subclass's override
    header = sizeof("\u0100") - 4  # a compact 2-byte string: header + (length + 1) * 2 bytes

    def absent(text: str) -> bool:
        if text.isascii():
            return True
        if sizeof(text) < header + 4 * (len(text) + 1):  # 1 or 2 bytes a character: nothing wide
            for ch in narrow:
                if ch in text:
                    return False
            return True
        return isdisjoint(text)

    return absent


def _only_unmatched_triggers(
    trigger_only: list[tuple[int, _TriggerOnly] | None],
    hits: list[tuple[int, int, int]],
    norm: str,
    prefilter: re.Pattern[str] | None,
    same_length: bool,
    text: str = "",
    stand_in: frozenset[str] | None = None,
    guard_min_length: int | None = None,
) -> bool:
    """True when every hit is a pattern trigger or a Latin-edged term glued to another letter or
    digit, and none of the triggered patterns (nor the untriggered ones) matches: the line has no
    finding, decided without building candidates or the offset map. Exact: anything else (or any
    doubt) returns False and the full verification decides.

    Most lines that reach verification are like this (a trigger such as 我们 or a digit pair and
    no pattern match; sb inside a random Latin string), so this is the common verification path.
    A pattern of bounded width is searched only around the trigger occurrence (``literals.analyse``).
    A term with a dropped character (``gap_forms``) is no finding on a line of ``text`` in which
    nothing was deleted or which has no character of ``stand_in`` (symbols and emoji; None: any line).
    """
    guard_min = _GUARD_MIN_LENGTH if guard_min_length is None else guard_min_length
    ran: set[int] = set()  # patterns already searched over the whole line
    for key_index, _s, _e in hits:
        if trigger_only[key_index] is None:
            return False  # a term of a Chinese-edged key (or one that is an exception too): the full path, no search
    for key_index, s, e in hits:
        edges, pats = trigger_only[key_index]  # type: ignore[misc]  # (no None left: see above)
        if edges & 4:
            # a term with a dropped character: only where a symbol or emoji was deleted from the line
            if not same_length and (stand_in is None or not stand_in.isdisjoint(text)):
                return False
        elif edges and not (
            # a term whose Latin edge is glued to another letter or digit (sb in xsbq) is dropped
            # whatever else holds (see _verify). Judged on ``norm`` only when nothing was deleted,
            # so that norm and the original text align.
            same_length
            and ((edges & 1 and s > 0 and norm[s - 1] in _ASCII_ALNUM) or (edges & 2 and e < len(norm) and norm[e] in _ASCII_ALNUM))
        ):
            return False
        for rx, width, reach, guard, anchored in pats:
            if id(rx) in ran:
                continue
            if anchored:
                # every match begins with a trigger, and every trigger occurrence is a hit: a match
                # can only start at one of them, and up to s + reach is all it reads from here
                if (rx.match(norm, s) if reach is None else rx.match(norm, s, s + reach)) is not None:
                    return False
                continue
            if width is not None:
                # a match containing this occurrence starts in [e - width, s]; the slice up to
                # s + reach is all the regex engine reads for such a start (see literals.analyse)
                m = rx.search(norm, e - width if e > width else 0, s + reach)
                if m is None:
                    continue
                if m.start() <= s:
                    return False
                # a match starting later in the slice may be an artefact of its end: whole line
            # (unless the line lacks all of another set of strings the pattern requires)
            # (on short lines the search costs less than the substring tests)
            if (guard is None or len(norm) < guard_min or any(map(norm.__contains__, guard))) and (
                rx.search(norm) is not None
            ):
                return False
            ran.add(id(rx))
    return prefilter is None or prefilter.search(norm) is None


def _may_cross(entries: list[tuple[_Entry, ...]], hits: list[tuple[int, int, int]], norm: str, n: int) -> bool:
    """Can _verify find anything crossing offset ``n`` of ``norm`` from ``hits``? Only from a hit
    crossing it, or from a match of a pattern they trigger that crosses it (its ``hit`` group's
    span where the pattern has one, as _verify reports it)."""
    for _k, s, e in hits:
        if s < n < e:
            return True
    ran: set[int] = set()
    for key_index, _s, _e in hits:
        for entry in entries[key_index]:
            rx = entry.pattern
            if entry.kind != _TRIGGER or id(rx) in ran:
                continue
            ran.add(id(rx))
            has_hit = "hit" in rx.groupindex  # type: ignore[union-attr]
            for m in rx.finditer(norm):  # type: ignore[union-attr]
                ms, me = m.span("hit") if has_hit and m.group("hit") is not None else m.span()
                if ms < n < me:
                    return True
    return False


#: Lines shorter than this skip the guard test (see _only_unmatched_triggers): measured on host speech
#: (mostly < 40 characters) the test costs more than the searches it saves; on long lines it wins.
_GUARD_MIN_LENGTH = 64

_TriggerOnly = tuple[tuple[re.Pattern[str], "int | None", "int | None", "tuple[str, ...] | None", bool], ...]


#: ``(edges, no patterns)`` for keys that stand only for terms, by their Latin-edge bits
_TERM_EDGES: tuple[tuple[int, tuple[()]] | None, ...] = (None, (1, ()), (2, ()), (3, ()), (4, ()))


def _trigger_only(keys: list[str], entries: list[tuple[_Entry, ...]]) -> list[tuple[int, _TriggerOnly] | None]:
    """Per key, what the common no-finding path (``_only_unmatched_triggers``) may do with a hit:
    ``(edges, patterns)``, or None for the full verification (terms without a Latin edge, keys that
    are both an exception and a term).

    * ``patterns``: ``(pattern, width, reach, guard, anchored)`` of the patterns the key triggers;
    * ``edges``: 0 when the key stands for no term (a pattern trigger, an exception), else bit 1/2
      for a Latin first/last character of a key that stands for terms (term, variant, alias): such
      a hit glued to another letter or digit is never a finding; 4 for a key that stands only for
      terms with a dropped character (``gap_forms``): never a finding on a line from which nothing
      was deleted.
    """
    # classify each distinct entry tuple once: (patterns, stands for terms) or None (full path)
    kinds: dict[int, tuple[_TriggerOnly, bool] | None] = {}
    for group in dict(zip(map(id, entries), entries)).values():
        others = [e.kind for e in group if e.kind != _TRIGGER]
        if others and not all(kind in (_TERM, _VARIANT, _ALIAS, _HOMOPHONE) for kind in others) and not (
            # only dropped-character forms, or only exceptions: an exception makes no candidate of
            # its own, it only keeps its rule's hits inside it from firing (第一次 for 第一), so a
            # line whose other hits make none has no finding
            all(kind == _GAP for kind in others) or all(kind == _EXCEPTION for kind in others)
        ):
            kinds[id(group)] = None
            continue
        pats = tuple({id(e.pattern): (e.pattern, e.width, e.reach, e.guard, e.anchored)
                      for e in group if e.kind == _TRIGGER}.values())
        if others and all(kind == _GAP for kind in others):
            kinds[id(group)] = (pats, 4)  # type: ignore[assignment]
        else:  # terms (True), exceptions only or no other entry (False)
            kinds[id(group)] = (pats, bool(others) and others[0] != _EXCEPTION)  # type: ignore[assignment]
    alnum = _ASCII_ALNUM
    out: list[tuple[int, _TriggerOnly] | None] = []
    append = out.append
    for key, group in zip(keys, entries):
        c = kinds[id(group)]
        if c is None:
            append(None)
            continue
        pats, terms = c
        if not terms:
            append((0, pats))
            continue
        if terms == 4:  # only dropped-character forms
            append(_TERM_EDGES[4] if not pats else (4, pats))
            continue
        edges = (key[0] in alnum) | ((key[-1] in alnum) << 1)
        append(_TERM_EDGES[edges] if not pats else ((edges, pats) if edges else None))
    return out


def _fold_groups(keys: list[str], table: list[int]) -> tuple[list[str], list[int], dict[int, tuple[int, ...]], dict[str, int]]:
    """``keys`` grouped by their folded form (``key.translate(table)``, ``table`` a list of code
    points): the distinct folded keys in order of first appearance, per folded key the index of its
    first key, for the folded keys of more than one key the indexes of the others in key order
    (ordered by folded-key index), and folded key -> its index (see Checker._build_fold).

    In one C pass with the extension (this loop was a quarter of a build of the default packs'
    209,000 keys); tests/test_engine.py holds both equal.
    """
    if _native is not None and type(keys) is list and type(table) is list:
        fkeys, first, more, index = _native.fold_groups(keys, table)
        return fkeys, first, dict(sorted(more.items())), index
    index: dict[str, int] = {}
    groups: list[list[int]] = []
    for ki, key in enumerate(keys):
        folded = key.translate(table)
        fi = index.get(folded)
        if fi is None:
            index[folded] = len(groups)
            groups.append([ki])
        else:
            groups[fi].append(ki)
    return list(index), [g[0] for g in groups], {fi: tuple(g[1:]) for fi, g in enumerate(groups) if len(g) > 1}, index


def _unique_entries(
    entries: list[_Entry], shared_tuples: dict[tuple[int, ...], tuple[_Entry, ...]], term_kinds: tuple[int, ...]
) -> tuple[tuple[_Entry, ...], bool]:
    """A key's entries deduplicated (a term listed twice, or a variant equal to another term), as
    the one shared tuple of those entries, and whether the key stands for a term."""
    if len(entries) == 1:
        uniq_entries: tuple[_Entry, ...] = (entries[0],)
    else:
        uniq: dict[tuple[int, str, int], _Entry] = {}
        for e in entries:
            if e.kind in (_VARIANT, _ALIAS, _GAP, _HOMOPHONE) and (_TERM, e.rule.id, 0) in uniq:
                continue  # the doubled form is also a real term of this rule
            uniq.setdefault((e.kind, e.rule.id, id(e.pattern) if e.pattern else -(e.width or 0)), e)
        uniq_entries = tuple(uniq.values())
    uniq_entries = shared_tuples.setdefault(tuple(map(id, uniq_entries)), uniq_entries)
    return uniq_entries, any(x.kind in term_kinds for x in uniq_entries)


#: how a candidate hit came about (``Checker._verify``)
_HOW_TERM, _HOW_PATTERN, _HOW_ALIAS, _HOW_GAP, _HOW_HOMOPHONE, _HOW_FOLD = 0, 1, 2, 3, 4, 5


#: punctuation that masks a character as a symbol does (加*信, 加＊信)
_STAND_INS = frozenset("*＊")
#: symbols used as punctuation in chat (找你～我不…): they separate words, they stand for nothing
_NOT_STAND_INS = frozenset("~～〜^＾`｀|｜")


def _is_stand_in(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return (cat[0] == "S" and ch not in _NOT_STAND_INS) or cat == "Co" or ch in _STAND_INS


def _stand_ins(mapping: Mapping[int, int | None]) -> frozenset[str]:
    """The characters the normaliser deletes that ``_symbol_between`` accepts (``set.isdisjoint(text)``
    then tells in C whether a line has one)."""
    return frozenset(chr(cp) for cp, v in mapping.items() if v is None and _is_stand_in(chr(cp)))


def _symbol_between(text: str, a: int, b: int) -> bool:
    """Does ``text[a+1:b]`` (characters the normaliser deleted) hold a symbol or emoji that can stand
    for a character (加❤信, 加*信)? Spaces, zero-width characters and punctuation (你，我) do not.
    """
    return any(_is_stand_in(ch) for ch in text[a + 1 : b])


#: Latin words that equal the pinyin of a term but are names in their own right (知乎 is zhihu, as is
#: 指虎): a whole-term pinyin alias equal to one of these never fires on its own.
LATIN_STOP_WORDS = frozenset({"zhihu"})

#: Characters that, next to a Latin run, make it part of a URL, an e-mail address, a file name or a handle.
_URLISH = frozenset("./@:_-#&=?~\\")


def latin_context(text: str, start: int, end: int, key: str) -> str | None:
    """Why the all-Latin hit ``text[start:end]`` (a whole-term pinyin alias) is not a spelling of the
    term, or None: it is a listed name (``LATIN_STOP_WORDS``, e.g. zhihu), or it belongs to a URL,
    e-mail address, file name or handle (a ``.``, ``/``, ``@``… joins it to more Latin text).
    """
    if key in LATIN_STOP_WORDS:
        return f"the name {key!r}"
    n = len(text)

    def latin(i: int) -> bool:
        return 0 <= i < n and text[i].isascii() and text[i].isalnum()

    for i, step in ((start - 1, -1), (end, 1)):
        # skip the URL-ish characters next to the hit; Latin text beyond them (zhihu.com, www.zhihu)
        j = i
        while 0 <= j < n and text[j] in _URLISH:
            j += step
        if j != i and latin(j):
            return "a URL, address or handle"
    return None


def _cut_at_gaps(words: tuple[tuple[int, int], ...], positions: list[int]) -> tuple[tuple[int, int], ...]:
    """Split word spans wherever characters were deleted between two normalised characters."""
    out: list[tuple[int, int]] = []
    for ws, we in words:
        start = ws
        for i in range(ws + 1, we):
            if positions[i] - positions[i - 1] > 1:
                out.append((start, i))
                start = i
        out.append((start, we))
    return tuple(out)


_LONG_CJK = re.compile("[\u4e00-\u9fff]{%d,}" % MIN_FOLD_TERM)


def long_term_spellings(
    rule: Rule, norm_table: Any, table: list[int], near: Mapping[str, str] | None
) -> list[tuple[str, str]]:
    """The folded spellings under which ``rule``'s long terms are indexed (see Checker._build_fold),
    as ``(folded spelling, normalised term)`` in the order the build meets them: each CJK term of
    ``MIN_FOLD_TERM`` characters or more folded, and with one folded character (an inner one in
    3-character terms) swapped for a near syllable's (``near``); none for a rule without homophones."""
    out: list[tuple[str, str]] = []
    if not rule.homophones:
        return out
    for term in rule.terms:
        key = term.translate(norm_table)
        if len(key) >= MIN_FOLD_TERM and _LONG_CJK.fullmatch(key):
            folded = key.translate(table)
            out.append((folded, key))
            for i in range(len(folded)) if len(folded) >= 4 else (1,):
                for alt in (near or {}).get(folded[i], ""):
                    out.append((folded[:i] + alt + folded[i + 1 :], key))
    return out


def prefilter_of(pats: list[tuple[Rule, re.Pattern[str]]] | tuple[tuple[Rule, re.Pattern[str]], ...]) -> re.Pattern[str] | None:
    """One regex matching where any of the untriggered patterns ``pats`` might (their alternation,
    named groups dropped), or None when there are none."""
    return re.compile("|".join(f"(?:{p.pattern})" for _, p in pats).replace("(?P<hit>", "(?:")) if pats else None


class RuleCompiler:
    """Turns rules, one at a time, into automaton keys and their entries: ``add_rule`` appends a
    rule's entries to ``by_key`` (key -> entries, in the order the rule makes them) and its
    untriggered patterns to ``pats``. What a rule makes depends on the rule and on the tables given
    here, never on the other rules, so a full build (``Checker._compile``: every rule in rule-set
    order) and a delta build (``delta.patch``: the changed rules) make the same entries.

    Problems (a term too short once normalised, an exception that cannot apply) are collected in
    ``issues``; ``recipes``: pattern -> what ``re`` compiled it from, for the state cache.
    """

    def __init__(
        self, normalize: Callable[[str], str], romanize: Mapping[str, str], homophones: Mapping[str, str],
        lexicon: Mapping[str, int] | None, compiled_patterns: Mapping[str, re.Pattern[str]] | None = None,
    ) -> None:
        """``compiled_patterns``: pattern -> the compiled object to use for it (a delta build passes
        its base's, so that a pattern two rules share is one object, as in a full build: the trigger
        classification runs each distinct object once)."""
        self._known_rx = compiled_patterns or {}
        self.normalize = normalize
        self.romanize = romanize
        self.homophones = homophones
        self.lexicon = lexicon
        self.issues: list[RuleIssue] = []
        self.recipes: dict[str, tuple[object, ...]] = {}
        self._compiled: dict[str, tuple[re.Pattern[str], set[str] | None, int | None, int | None, tuple[str, ...] | None, bool]] = {}
        self._alias_cache: dict[str, tuple[set[str], set[str]]] = {}
        #: normalised term -> its doubled-character variants, dropped-character forms and digit form
        self._forms: dict[str, tuple[tuple[str, ...], tuple[tuple[str, int], ...], str | None]] = {}
        # one shared _Entry per (kind, rule, pattern) and one shared tuple per distinct entry list:
        # thousands of keys point at the same few hundred objects (less to build, keep and pickle)
        self._shared: dict[tuple[int, str, int], _Entry] = {}
        self.shared_tuples: dict[tuple[int, ...], tuple[_Entry, ...]] = {}  # by the entries' ids (no deep hashing)

    def entry(self, kind: int, rule: Rule, pattern: re.Pattern[str] | None = None, width: int | None = None,
              reach: int | None = None, guard: tuple[str, ...] | None = None, anchored: bool = False) -> _Entry:
        k = (kind, rule.id, id(pattern) if pattern is not None else -(width or 0))
        e = self._shared.get(k)
        if e is None or e.rule is not rule:
            e = self._shared[k] = _Entry(kind, rule, pattern, width, reach, guard, anchored)
        return e

    def add_rule(self, rule: Rule, by_key: dict[str, list[_Entry]], pats: list[tuple[Rule, re.Pattern[str]]]) -> None:
        entry, normalize, issues = self.entry, self.normalize, self.issues
        forms, alias_cache = self._forms, self._alias_cache
        norm_terms = []
        e_term, e_variant, e_alias = entry(_TERM, rule), entry(_VARIANT, rule), entry(_ALIAS, rule)
        e_homophone = entry(_HOMOPHONE, rule)
        for term in rule.terms:
            key = normalize(term)
            if len(key) < 2:
                issues.append(RuleIssue(rule.file, rule.id, "terms", f"term {term!r} normalises to {key!r}: too short to match"))
                continue
            norm_terms.append(key)
            if not rule.disguised_only:  # else only its disguised spellings below
                by_key.setdefault(key, []).append(e_term)
            made = forms.get(key)
            if made is None:  # once per key, whatever the number of rules and sources
                made = forms[key] = (tuple(_variants(key) - {key}), tuple(gap_forms(key).items()), digit_form(key))
            variants, gaps, d = made
            for v in variants:
                by_key.setdefault(v, []).append(e_variant)
            for g, gap in gaps:
                by_key.setdefault(g, []).append(entry(_GAP, rule, None, gap))
            if d is not None:
                by_key.setdefault(d, []).append(e_term)  # 第1, 0风险: the term as written with digits
            if not (rule.aliases or rule.homophones):
                continue
            if key not in alias_cache:
                spellings = aliases(key, self.romanize) - {key}
                swaps = homophone_swaps(key, self.romanize, self.homophones, self.lexicon) - spellings - {key}
                alias_cache[key] = (spellings, swaps)
            spellings, swaps = alias_cache[key]
            if rule.aliases:
                for a in spellings:
                    by_key.setdefault(a, []).append(e_alias)
            if rule.homophones:
                for a in swaps:
                    by_key.setdefault(a, []).append(e_homophone)
        for exc in rule.exceptions:
            key = normalize(exc)
            if not key:
                issues.append(RuleIssue(rule.file, rule.id, "exceptions", f"exception {exc!r} is empty once normalised"))
                continue
            if not rule.patterns and not any(t in key for t in norm_terms):
                issues.append(
                    RuleIssue(rule.file, rule.id, "exceptions", f"exception {exc!r} contains none of the rule's terms, so it can never apply")
                )
                continue
            by_key.setdefault(key, []).append(entry(_EXCEPTION, rule))
            d = digit_form(key)
            if d is not None and any(digit_form(t) and digit_form(t) in d for t in norm_terms):
                # the exception as written with digits covers the term's digit form (第1次)
                by_key.setdefault(d, []).append(entry(_EXCEPTION, rule))
        for p in rule.patterns:
            got = self._compiled.get(p)
            if got is None:  # each pattern once, whatever the number of speakers
                prep = prepare(p)  # shared with the rule validator: parsed and compiled once
                rx = self._known_rx.get(p, prep.rx)
                if rx.flags != prep.rx.flags:
                    rx = prep.rx
                got = self._compiled[p] = (rx, prep.literals, prep.width, prep.reach, prep.guard, prep.anchored)
                if prep.recipe is not None:
                    self.recipes[p] = prep.recipe
            rx, triggers, width, reach, guard, anchored = got
            if triggers:
                # the pattern runs only on lines where one of these occurs
                e_trigger = entry(_TRIGGER, rule, rx, width, reach, guard, anchored)
                for t in triggers:
                    by_key.setdefault(t, []).append(e_trigger)
            else:
                pats.append((rule, rx))


@dataclass(frozen=True)
class CompiledRules:
    """What :class:`Checker` derives from a rule set at build time, as plain picklable data.

    ``Checker.compiled()`` returns it and ``Checker(rules, compiled=...)`` takes it back, skipping
    the build (term variants, aliases, pattern triggers); the automata are rebuilt from ``keys``.
    The engine never stores it anywhere: the loader may keep it in a cache keyed by the rule files'
    content (see :func:`livestream_compliance.loader.load_checker`).
    """

    rules_version: str
    keys: dict[Source, list[str]]
    entries: dict[Source, list[tuple[_Entry, ...]]]
    patterns: dict[Source, tuple[re.Pattern[str] | None, tuple[tuple[Rule, re.Pattern[str]], ...]]]
    term_keys: frozenset[str]
    #: per source and key, the fast-path classification (see ``_trigger_only``); derived, kept to save its loop
    trigger_only: dict[Source, list[tuple[int, _TriggerOnly] | None]] | None = None
    #: pattern -> what ``re`` compiled it from (``literals.compile_parsed``), so a cache can skip recompiling
    recipes: dict[str, tuple[object, ...]] | None = None
    #: per source, the indexes of keys that stand only for dropped-character forms; derived, kept to save its loop
    gap_only: dict[Source, frozenset[int]] | None = None

    def fits(self, rules: RuleSet) -> bool:
        """Is this the compiled form of ``rules``: same version, its rule objects, consistent shapes?"""
        if self.rules_version != rules.version:
            return False
        if not (set(self.keys) == set(self.entries) == set(self.patterns) == set(Source)):
            return False
        ids = {id(r) for r in rules.rules}
        for s in Source:
            keys, entries = self.keys[s], self.entries[s]
            if type(keys) is not list or type(entries) is not list or len(keys) != len(entries):
                return False
            if self.trigger_only is not None and (
                type(self.trigger_only.get(s)) is not list or len(self.trigger_only[s]) != len(keys)
            ):
                return False
            if self.gap_only is not None and type(self.gap_only.get(s)) is not frozenset:
                return False
            for group in dict(zip(map(id, entries), entries)).values():  # entry tuples are shared
                if type(group) is not tuple or not group:
                    return False
                for e in group:
                    if type(e) is not _Entry or id(e.rule) not in ids:
                        return False
            prefilter, pats = self.patterns[s]
            if not all(id(r) in ids and isinstance(rx, re.Pattern) for r, rx in pats):
                return False
        return True


class Checker:
    """Checks text against a :class:`RuleSet`.

    ``segmenter`` verifies word boundaries of candidate hits for rules that ask for it
    (pass a :class:`~livestream_compliance.verify.JiebaSegmenter`; the default disables the
    check). ``normalizer`` holds the translate table. ``backend`` picks the automaton.
    """

    def __init__(
        self,
        rules: RuleSet,
        *,
        normalizer: Normalizer | None = None,
        segmenter: Segmenter | None = None,
        backend: str = DEFAULT_BACKEND,
        romanize: Mapping[str, str] | None = None,
        homophones: Mapping[str, str] | None = None,
        lexicon: Mapping[str, int] | None = None,
        compiled: CompiledRules | None = None,
        fold: Mapping[str, str] | None = None,
        near_fold: Mapping[str, str] | None = None,
        fold_index: tuple[list[int], dict[Source, tuple[list[str], list[tuple[tuple[Rule, str], ...]]]]] | None = None,
        model: ParaphraseModel | None = None,
        pause: Callable[[], None] | None = None,
        matchers: Mapping[Source, MatcherBuild] | None = None,
    ) -> None:
        """``pause``: called between the long steps of the build (each a call into C or Rust that
        may hold the interpreter lock throughout), so that a caller building in a thread can let its
        other threads run in between; nothing else depends on it. ``matchers``: per source, a build
        a caller started early (e.g. from a state's folded keys, see the loader) to run beside its
        other work; used only if started for the very key list this checker scans (``keys is``)."""
        pause = pause or _no_pause
        self.rules = rules
        #: the paraphrase model (see classifier.py) and, per source it serves, category -> its
        #: classifier rule: it is asked only about lines no term or pattern rule flagged
        self.model = model
        self._model_rules: dict[Source, dict[str, Rule]] = {}
        if model is not None:
            for rule in rules.rules:
                if rule.classifier:
                    for s in rule.sources & model.sources:
                        self._model_rules.setdefault(s, {})[rule.category] = rule
        self._model_sources = frozenset(self._model_rules)
        self._rule_category = {r.id: r.category for r in rules.rules}
        #: ids of the rules the model reports through (a session drops them from join checks)
        self.classifier_rule_ids = frozenset(r.id for by_cat in self._model_rules.values() for r in by_cat.values())
        #: per source the model serves: an automaton over its n-grams and their weight rows, so a
        #: line's known n-grams are found in one C-level pass (see _classified): ``scan(norm)`` is
        #: the set of n-gram indexes the line holds, or (the C extension's ModelScanner) None where
        #: the per-category sums show in the same pass that no category can reach the limit
        self._model_scan: dict[Source, tuple[Callable[[str], set[int] | None], list[tuple[float, ...]], list[float], float]] = {}
        #: the sources whose scan is the C ModelScanner: a batch asks it line by line (1.5x the numpy
        #: BatchScorer's rate on host lines) instead of scoring the joined batch with numpy
        self._model_native: set[Source] = set()
        for s in self._model_sources:
            table = model.weights[s]  # type: ignore[union-attr]
            rows = list(table.values())
            limit = model.limit(s)  # type: ignore[union-attr]
            # small=True: a non-DFA automaton, built in ~20 ms at every start (a DFA: ~70 ms). Per
            # n-gram its largest positive weight: their sum over a line bounds every category's
            # score and rejects most lines before the per-category sums (see _classified)
            ngrams = build_matcher(list(table), backend, small=True)
            automaton = getattr(ngrams, "automaton", None)  # the native backend's C automaton
            if automaton is not None and _native is not None:
                scan: Callable[[str], set[int] | None] = _native.ModelScanner(automaton, rows, limit, list(table)).scan
                self._model_native.add(s)
            else:  # the set of n-grams a line holds: in one native call, or from the hits
                scan = getattr(ngrams, "find_keys", None) or partial(_found_keys, ngrams.find_overlapping)
            self._model_scan[s] = (scan, rows, [max(0.0, *r) for r in rows], limit)  # type: ignore[arg-type]
        #: character -> pinyin (lower case, no tones) for pinyin spellings of terms; see aliases()
        self._romanize = romanize or {}
        #: syllable -> its common characters, for generic homophone spellings (see homophone_swaps)
        self._homophones = homophones or {}
        #: word -> frequency (jieba's dictionary): a homophone spelling that is a real word is skipped
        self._lexicon = lexicon
        self.version = rules.version
        self.backend = backend
        self.normalizer = normalizer or Normalizer.build()
        self._table = self.normalizer.table
        self._mapping = self.normalizer.mapping
        #: with the native backend, the table in C (Table.translate(text) is text.translate(list), in
        #: a fifth of the time), else None; ``_norm``: text -> normalised
        self._native = backend == "native"
        #: _only_unmatched_triggers, in C with the native backend (the same verdict, call for call on
        #: the regexes; tests/test_fast_verify.py holds them equal)
        self._trigger_verdict: Callable[..., bool] = (
            _native.only_unmatched_triggers if self._native and _native is not None else _only_unmatched_triggers
        )
        self._ntable = translate_table(self._table) if self._native else None
        self._norm: Callable[[str], str] = self._ntable.translate if self._ntable is not None else methodcaller("translate", self._table)
        self._batch_table = self.normalizer.batch_table("\n")
        self._vector_table: VectorTable | None = None  # built on the first long batch (numpy import)
        #: emoji read as a character in the rebus view (🐘 -> 象); its mapping and table are built on
        #: the first line that holds one (see _with_rebus)
        self._rebus_chars = frozenset(map(chr, self.normalizer.rebus))
        #: the rebus emoji are deleted by the main table (their usual reading is decoration), so a line
        #: from which nothing was deleted holds none: check() then skips the set test (~1 µs a line)
        self._rebus_deleted = all(self.normalizer.mapping.get(cp, cp) is None for cp in self.normalizer.rebus)
        self._rebus_absent = _absence_test(self._rebus_chars)
        self._rebus_view: tuple[dict[int, int | None], list[int | None]] | None = None
        #: the deleted characters that can stand for a dropped one (see gap_forms, _symbol_between);
        #: until a line needs them (about 10 ms), an empty set that stands for "not computed yet"
        self._stand_in: frozenset[str] = frozenset()
        self._fast_cfgs: list[list[object]] = []  # the _fast_check configurations, given _stand_in once known
        #: per source with _fast_check's path: its batch form, ``many(texts, limit)`` (see check_batch)
        self._fast_many: dict[Source, Callable[[list[str], int], list[tuple[int, Any, Any, int, int]]]] = {}
        self.segmenter: Segmenter = segmenter or WholeTextSegmenter()
        self._automata: dict[Source, _Automaton] = {}
        self._patterns: dict[Source, tuple[re.Pattern[str] | None, tuple[tuple[Rule, re.Pattern[str]], ...]]] = {}
        self._term_keys: set[str] = set()
        #: pattern -> the compiled code ``re`` built it from (see literals.compile_parsed), for the state cache
        self._recipes: dict[str, tuple[object, ...]] = {}
        #: per source (keyed by the member and its plain-string value alike): what check() needs
        self._scan: dict[str, tuple[Callable[[str, bool], list[tuple[int, int, int]]], re.Pattern[str] | None, Source, frozenset[int], tuple[array[int], dict[int, tuple[int, ...]]] | None, Callable[[str, Any], tuple[list[tuple[int, int, int]], int]] | None, Callable[[str], tuple[list[tuple[int, int, int]], list[tuple[int, int, int]], int]] | None]] = {}
        self._gap_only: dict[Source, frozenset[int]] = {}  # see CompiledRules.gap_only
        self._rule_version = {r.id: f"{r.pack}@{r.version}#{rules.version}" for r in rules.rules}
        if compiled is not None and compiled.fits(rules):
            self._load(compiled)
        else:
            self._compile()
            pause()
        for source in Source:
            auto = self._automata[source]
            if len(auto.trigger_only) != len(auto.keys):
                auto.trigger_only = _trigger_only(auto.keys, auto.entries)
            #: keys that stand only for terms with a dropped character (gap_forms): never a finding on
            #: a line from which nothing was deleted, so such lines skip verification altogether
            gap_only = self._gap_only.get(source)
            if gap_only is None:
                gap_only = frozenset(i for i, t in enumerate(auto.trigger_only) if t is not None and t[0] == 4 and not t[1])
                self._gap_only[source] = gap_only
        #: Homophone folding (see MIN_FOLD_TERM and _resolve). With a folding table (a list indexed by
        #: code point, CJK only: each character -> one character of the same toneless pinyin), each
        #: automaton holds the *folded* keys and scans text put through the main table and the
        #: folding table in one translate (``_ftable``); a hit is then resolved to the key spelt
        #: exactly there (``_groups``: folded key -> the first index of a key that folds to it, or -1,
        #: and for the few folded keys with more, the others), and to the
        #: long terms spelt with same-pinyin characters (``_fold``: folded key -> (rule, term)).
        #: One translate and one scan per line either way; without a folding table, the plain keys.
        self._fold_table: list[int] | None = None
        self._ftable: list[int | None] = self._table
        self._fbatch_table: list[int | None] = self._batch_table
        self._groups: dict[Source, tuple[array[int], dict[int, tuple[int, ...]]]] = {}
        self._fold: dict[Source, dict[int, tuple[tuple[Rule, str], ...]]] = {}
        self._folded_keys: dict[Source, list[str]] = {}
        if fold_index is not None and self._fold_index_fits(fold_index):
            self._build_fold(None, fold_index)
        elif fold:
            self._build_fold(fold, near=near_fold)
            pause()
        if self._fold_table is not None:
            ft = self._fold_table
            self._ftable = [v if v is None or v >= 0xA000 else ft[v] for v in self._table]
            self._fbatch_table = list(self._ftable)  # as batch_table("\n") is the table keeping the separator
            self._fbatch_table[ord("\n")] = ord("\n")
        #: the folding table in C (see _ntable); ``_fnorm``: text -> normalised and folded
        self._nftable = self._ntable if self._ftable is self._table or not self._native else translate_table(self._ftable)
        self._fnorm: Callable[[str], str] = self._nftable.translate if self._nftable is not None else methodcaller("translate", self._ftable)
        #: the batch tables in C, and a table deleting exactly the rebus emoji (to find them), or None
        self._nbatch = translate_table(self._batch_table) if self._native else None
        self._nfbatch = self._nbatch if self._fbatch_table is self._batch_table else translate_table(self._fbatch_table) if self._native else None
        self._nrebus = translate_table(_deleting(self.normalizer.rebus)) if self._native else None
        self._fvector_table: VectorTable | None = None  # _fbatch_table for long batches, built on first use
        self._rebus_marks: object = None  # the rebus emoji as a VectorTable mask, built with it
        #: per source, key -> has it a pattern trigger or an exception (see _crossing), filled as keys are met
        self._context_keys: dict[Source, dict[int, bool]] = {}
        #: per source, scan index (folded key, or key without folding) -> the widest pattern one of
        #: its keys triggers, or -1 (see _join_relevant), filled as indexes are met
        self._trigger_widths: dict[tuple[Source, bool], dict[int, int]] = {}
        #: per source, the paraphrase model's batch scorer, built on the first long batch
        self._batch_scorers: dict[Source, BatchScorer] = {}
        #: per source, the folded scan over the batch tables (see _folded_scanner), built on the first batch
        self._batch_scans: dict[Source, Callable[[str], tuple[list[tuple[int, int, int]], list[tuple[int, int, int]], int]] | None] = {}
        # every automaton started before the first is awaited: with the native backend they build
        # side by side, without the interpreter lock (see MatcherBuild)
        builds: dict[Source, MatcherBuild] = {}
        for source in Source:
            auto = self._automata[source]
            keys = self._folded_keys.get(source, auto.keys)
            started = (matchers or {}).get(source)
            if started is None or started.keys is not keys:
                pause()
                started = MatcherBuild(keys, self.backend)
            builds[source] = started
        for source in Source:
            auto = self._automata[source]
            auto.matcher = builds[source].result()
            # with folding, the native backend normalises, scans and resolves a line in one call
            find_r = self._folded_scanner(source, self._ntable, self._nftable)
            self._scan[source] = (
                auto.matcher.find_overlapping, self._patterns[source][0], source, self._gap_only[source],  # type: ignore[union-attr]
                self._groups.get(source),
                # the native backend normalises and scans a line in one call
                getattr(auto.matcher, "find_translated", None) if self._nftable is not None else None,
                find_r,  # (see _resolve)
                self._fast_check(source, find_r),
            )

    # ------------------------------------------------------------------ build
    def _fold_index_fits(self, fold_index: object) -> bool:
        """Is ``fold_index`` (from ``fold_index()``, e.g. a state cache) made for this rule set and its keys?"""
        ids = {id(r) for r in self.rules.rules}
        try:
            table, by_source = fold_index  # type: ignore[misc]
            if type(table) is not list or len(table) != 0xA000 or not isinstance(by_source, dict):
                return False
            if set(by_source) != set(Source):
                return False
            for source, (fkeys, groups, entries) in by_source.items():
                n_keys = len(self._automata[source].keys)
                first, more = groups
                if type(fkeys) is not list or type(first) is not array or len(fkeys) != len(first) or type(entries) is not dict:
                    return False
                if type(more) is not dict or len(first) - first.count(-1) + sum(map(len, more.values())) != n_keys:
                    return False
                if n_keys and not (-1 <= min(first) and max(first) < n_keys):
                    return False
                if entries and (min(entries) < 0 or max(entries) >= len(fkeys)):
                    return False
                if not {id(rule) for group in entries.values() for rule, _term in group} <= ids:
                    return False
        except (TypeError, ValueError, KeyError):
            return False
        return True

    def fold_index(self) -> tuple[list[int], dict[Source, tuple[list[str], tuple[array[int], dict[int, tuple[int, ...]]], dict[int, tuple[tuple[Rule, str], ...]]]]] | None:
        """The folding table and per source the folded keys, their groups and fold entries (what a
        cache may keep, see ``fold_index=``; about 0.3 s to derive for the default packs)."""
        if self._fold_table is None:
            return None
        return self._fold_table, {s: (self._folded_keys[s], self._groups[s], self._fold.get(s, {})) for s in Source}

    def _build_fold(
        self, fold: Mapping[str, str] | None, index: tuple | None = None, near: Mapping[str, str] | None = None
    ) -> None:
        """``near``: a representative -> those of its near syllables (``tables.near_folds``): each long
        term is also indexed with one of its folded characters (an inner one in 3-character terms)
        swapped for a near one, so 医身推荐 is found as 医生推荐 while short keys keep exact syllables."""
        if index is not None:
            self._fold_table, by_source = index
            for source, (fkeys, groups, entries) in by_source.items():
                self._folded_keys[source] = fkeys
                self._groups[source] = groups
                if entries:
                    self._fold[source] = entries
            return
        assert fold is not None
        table = list(range(0xA000))
        for ch, rep in fold.items():
            if len(ch) == 1 and len(rep) == 1 and ord(ch) < 0xA000:
                table[ord(ch)] = ord(rep)
        # a character that is a key on its own (a pattern trigger such as 薇) keeps its identity:
        # folded, every character of its syllable (为, 位, 味) would be a candidate to resolve
        for auto in self._automata.values():
            for key in auto.keys:
                if len(key) == 1 and ord(key) < 0xA000:
                    table[ord(key)] = ord(key)
        self._fold_table = table
        long_terms: dict[Source, dict[str, dict[tuple[str, str], tuple[Rule, str]]]] = {s: {} for s in Source}
        for rule in self.rules.rules:
            spellings = long_term_spellings(rule, self._table, table, near)
            for source in rule.sources:
                by_folded = long_terms[source]
                for folded, key in spellings:
                    by_folded.setdefault(folded, {})[(rule.id, key)] = (rule, key)
        for source in Source:
            fkeys, first, more, index = _fold_groups(self._automata[source].keys, table)
            entries: dict[int, tuple[tuple[Rule, str], ...]] = {}
            for folded, by_term in long_terms[source].items():
                fi = index.get(folded)
                if fi is None:  # not a key itself (cannot happen for a term, kept for safety)
                    fi = index[folded] = len(fkeys)
                    fkeys.append(folded)
                    first.append(-1)
                entries[fi] = tuple(by_term.values())
            self._folded_keys[source] = fkeys
            self._groups[source] = (array("i", first), more)
            if entries:
                self._fold[source] = entries

    def _folded_scanner(self, source: Source, norm: Any, fold: Any) -> Callable[[str], tuple[list[tuple[int, int, int]], list[tuple[int, int, int]], int]] | None:
        """With the native backend and folding: the C scan that also resolves (see _resolve): its
        ``find(text)`` gives ``(hits, fold_hits, normalised length)``, where ``_resolve`` would give
        ``hits`` and ``_fold_filter``'s input. ``norm`` and ``fold``: the C tables it reads the
        text through (the per-message ones, or the batch ones that keep the separator). Else None."""
        groups = self._groups.get(source)
        automaton = getattr(self._automata[source].matcher, "automaton", None)
        if groups is None or automaton is None or norm is None or fold is None or _native is None:
            return None
        first, more = groups
        keys = self._automata[source].keys
        return _native.FoldedScanner(automaton, norm, fold, keys if isinstance(keys, list) else list(keys),
                                     first, more, self._fold.get(source, {})).find

    def _fast_check(self, source: Source, find_r: Any) -> Callable[[str], Any] | None:
        """With the native folded scan ``find_r`` (see _folded_scanner), and where ``source`` has no
        untriggered pattern and its paraphrase model (if any) has the C ModelScanner: check()'s
        common path in one C call. ``fast(text)`` is None where the line certainly has no finding
        (no folded long term, no rebus emoji, every hit passing _only_unmatched_triggers, no model
        category within reach), else ``find(text)``'s triple and the trigger verdict for the full
        path, or False for a text check() must reject. Else None. The batch form (check_many) goes
        to ``_fast_many``."""
        if find_r is None or self._patterns[source][0] is not None:
            return None
        model: object = None
        min_length = 0
        if source in self._model_sources:
            if source not in self._model_native:
                return None
            model = self._model_scan[source][0].__self__  # type: ignore[attr-defined]  # the bound ModelScanner.scan
            min_length = self.model.min_length  # type: ignore[union-attr]
        rebus = array("I", sorted(self.normalizer.rebus))
        if rebus.itemsize != 4:
            return None
        # [trigger_only, stand_in (filled by _stand_ins; None: any deletion may stand in), guard
        # length, model, its minimum length, rebus code points, look for them among kept ones too,
        # the longest text (beyond it, and for a non-str, the answer is False: check() reports it)]
        cfg: list[object] = [self._automata[source].trigger_only, self._stand_in or None, _GUARD_MIN_LENGTH, model,
                             min_length, rebus.tobytes(), not self._rebus_deleted, MAX_TEXT_LENGTH]
        self._fast_cfgs.append(cfg)
        scanner = find_r.__self__  # the FoldedScanner whose find() find_r is
        self._fast_many[source] = partial(scanner.check_many, cfg)
        return partial(scanner.check, cfg)

    def _resolve(
        self, norm: str, fhits: list[tuple[int, int, int]], source: Source, table: list[int | None] | None = None,
    ) -> tuple[list[tuple[int, int, int]], list[tuple[Rule, str, int, int]] | None]:
        """Folded-automaton hits on ``norm`` -> ``(hits, folded)``: the keys spelt exactly there, as
        ``(key_index, start, end)``, and the long terms spelt with same-pinyin characters there
        (``(rule, term, start, end)``, see fold_spelling_ok) or None. With ``table``, ``norm`` is the
        original text, from which the table deletes nothing: each span is normalised on its own."""
        keys = self._automata[source].keys
        first, more = self._groups[source]
        long_terms = self._fold.get(source)
        hits: list[tuple[int, int, int]] = []
        fold_hits: list[tuple[int, int, int]] | None = None
        for fi, s, e in fhits:
            ki = first[fi]
            if ki >= 0:
                seg = norm[s:e] if table is None else norm[s:e].translate(table)
                if keys[ki] == seg:
                    hits.append((ki, s, e))
                elif fi in more:
                    for ki in more[fi]:
                        if keys[ki] == seg:
                            hits.append((ki, s, e))
                            break
            if long_terms is not None and fi in long_terms:
                if fold_hits is None:
                    fold_hits = []
                fold_hits.append((fi, s, e))
        if not fold_hits:
            return hits, None
        return hits, self._fold_filter(norm if table is None else norm.translate(table), source, fold_hits)

    def _crossing(
        self, text: str, at: int, source: Source, hits: list[tuple[int, int, int]],
        folded: list[tuple[Rule, str, int, int]] | None, n: int | None = None,
    ) -> tuple[list[tuple[int, int, int]], list[tuple[Rule, str, int, int]] | None]:
        """``hits`` and ``folded`` without the term hits that do not cross ``text[:at]``'s end (see
        ``check(crossing=)``). Pattern triggers and exceptions stay whatever their place: a pattern
        may match across the join from a trigger on one side, an exception may cover a crossing hit.
        ``n``: the join's offset in the normalised text, if known."""
        if n is None:
            n = len(self._norm(text[:at]))
        keep = self._context_keys.get(source)
        if keep is None:
            keep = self._context_keys[source] = {}
        entries = self._automata[source].entries
        for h in hits:  # filled per key as keys are met: a build over every key stalled the first join
            if h[0] not in keep:
                keep[h[0]] = any(e.kind == _TRIGGER or e.kind == _EXCEPTION for e in entries[h[0]])
        if folded:
            folded = [f for f in folded if f[2] < n < f[3]] or None
            if folded:
                # a folded spelling gives way to any other hit of its category overlapping it
                # (see _verify), crossing or not: keep them all
                return hits, folded
        crossing = [h for h in hits if h[1] < n < h[2] or keep[h[0]]]
        if len(crossing) == len(hits):
            return hits, None
        # one rule's overlapping hits merge into one finding (_merge_overlaps): the hits of a rule
        # that has a crossing hit or a pattern to run stay, wherever they lie
        rules = {e.rule.id for h in crossing for e in entries[h[0]]}
        return [h for h in hits if h[1] < n < h[2] or keep[h[0]] or any(e.rule.id in rules for e in entries[h[0]])], None

    def _scan_norm(
        self, norm: str, source: Source
    ) -> tuple[list[tuple[int, int, int]], list[tuple[Rule, str, int, int]] | None]:
        """``(hits, folded)`` of ``source``'s automaton in normalised text (see _resolve)."""
        find = self._automata[source].matcher.find  # type: ignore[union-attr]
        if source not in self._groups:
            return find(norm), None
        fhits = find(norm.translate(self._fold_table))  # type: ignore[arg-type]
        return self._resolve(norm, fhits, source) if fhits else ([], None)

    def _fold_filter(self, norm: str, source: Source, hits: list[tuple[int, int, int]]) -> list[tuple[Rule, str, int, int]] | None:
        """The folded-automaton ``hits`` that are evasions of a term (see fold_spelling_ok)."""
        entries = self._fold[source]
        lexicon = self._lexicon if self._lexicon is not None else self._words()
        out = [
            (rule, term, s, e)
            for key_index, s, e in hits
            for rule, term in entries[key_index]
            if fold_spelling_ok(term, norm[s:e], lexicon, self._fold_table)
        ]
        return out or None

    def _stand_ins(self) -> frozenset[str]:
        if not self._stand_in:
            self._stand_in = _stand_ins(self._mapping) or frozenset("*")
            for cfg in self._fast_cfgs:
                cfg[1] = self._stand_in
        return self._stand_in

    def normalize(self, text: str) -> str:
        return self._norm(text)

    def compiled(self) -> CompiledRules:
        """The build result (term variants, aliases, triggers, entries), to skip the build next time."""
        return CompiledRules(
            rules_version=self.rules.version,
            keys={s: a.keys for s, a in self._automata.items()},
            entries={s: a.entries for s, a in self._automata.items()},
            patterns=dict(self._patterns),
            term_keys=frozenset(self._term_keys),
            trigger_only={s: a.trigger_only for s, a in self._automata.items()},
            gap_only=dict(self._gap_only),
            recipes=dict(self._recipes),
        )

    def _load(self, compiled: CompiledRules) -> None:
        for source in Source:
            auto = _Automaton(list(compiled.keys[source]), list(compiled.entries[source]))
            if compiled.trigger_only is not None:
                auto.trigger_only = compiled.trigger_only[source]
            if compiled.gap_only is not None and compiled.trigger_only is not None:
                self._gap_only[source] = compiled.gap_only[source]
            self._automata[source] = auto  # its matcher is built once the folding is known (__init__)
            self._patterns[source] = compiled.patterns[source]
        self._term_keys = set(compiled.term_keys)

    def _compile(self) -> None:
        rc = RuleCompiler(self.normalize, self._romanize, self._homophones, self._lexicon)
        term_kinds = (_TERM, _VARIANT, _ALIAS)
        for source in Source:
            by_key: dict[str, list[_Entry]] = {}
            pats: list[tuple[Rule, re.Pattern[str]]] = []
            for rule in self.rules.rules:
                if source in rule.sources:
                    rc.add_rule(rule, by_key, pats)
            auto = _Automaton()
            # (generic homophone spellings are not: they are never words of jieba's, see homophone_swaps)
            # keys share few distinct entry lists (every variant of a rule's terms has [variant]):
            # deduplicate and classify each distinct list once, by its entries' ids
            by_ids: dict[tuple[int, ...], tuple[tuple[_Entry, ...], bool]] = {}
            auto.keys = list(by_key)
            groups: list[tuple[tuple[_Entry, ...], bool]] = []
            for entries in by_key.values():
                ids = tuple(map(id, entries))
                group = by_ids.get(ids)
                if group is None:
                    group = by_ids[ids] = _unique_entries(entries, rc.shared_tuples, term_kinds)
                groups.append(group)
            auto.entries = [g for g, _ in groups]
            self._term_keys.update(compress(auto.keys, [is_term for _, is_term in groups]))
            self._automata[source] = auto  # its matcher is built once the folding is known (__init__)
            self._patterns[source] = (prefilter_of(pats), tuple(pats))
        self._recipes.update(rc.recipes)
        if rc.issues:
            raise RuleError(list(dict.fromkeys(rc.issues)))  # each problem once, not once per speaker

    # ------------------------------------------------------------------ check
    #: ``check`` takes ``crossing=`` (see there); sessions look for this before passing it
    supports_crossing = True

    def check(
        self, text: str, source: Source | str = Source.HOST, product: str | None = None, *, crossing: int | None = None
    ) -> tuple[Finding, ...]:
        """Findings for one utterance, ordered by position. Raises InputError/UsageError on bad input.

        ``crossing``: an offset in ``text`` where two utterances were joined (a session's tail and
        the head of the next message). Only findings that cross it are wanted then: term hits lying
        wholly on one side are dropped before verification, so a violation already reported on its
        own is not verified again. Findings that do not cross it may still be returned (from
        patterns); the caller keeps those with ``start < crossing < end``.
        """
        try:
            scan: tuple[Any, ...] | None = self._scan[source]
        except (KeyError, TypeError):
            scan = None  # validated below
        if (
            scan is not None and crossing is None and scan[7] is not None
            and (product is None or (type(product) is str and product in _PRODUCTS))
        ):
            # the common path: one native call says "no finding" (see _fast_check) or gives the hits
            found = scan[7](text)
            if found is None:
                return ()
            if found is not False:  # (False: not a str, or too long; reported below)
                return self._checked(text, scan[2], product, None, found[0], found[1], found[2], "", found[3])
        if not isinstance(text, str):
            raise InputError(f"text must be a str, not {type(text).__name__}")
        if len(text) > MAX_TEXT_LENGTH:
            raise InputError(f"text is {len(text)} characters; the limit is {MAX_TEXT_LENGTH}")
        try:
            find, prefilter, source, gap_only, groups, find_t, find_r, fast = self._scan[source]  # Source members and their plain-string values alike
        except (KeyError, TypeError):
            find, prefilter, source, gap_only, groups, find_t, find_r, fast = self._scan[Source.parse(source)]
        if product is not None and (not isinstance(product, str) or product not in _PRODUCTS):
            raise UsageError(f"unknown product category {product!r}; expected one of {', '.join(PRODUCT_CATEGORIES)}")
        # ftext: normalised and folded (see _resolve), as long as the normalised text (flen)
        fold_hits: list[tuple[int, int, int]] | None = None  # set: the hits are resolved already
        verdict = -1  # the C trigger verdict on these hits, where the one-call path asked it
        if fast is not None and crossing is None:  # a source named otherwise than above (Source.parse)
            found = fast(text)
            if found is None:
                return ()
            hits, fold_hits, flen, verdict = found
            ftext = ""
        elif find_r is not None:
            # one native call: normalised, folded, scanned, and the hits resolved (see _resolve)
            hits, fold_hits, flen = find_r(text)
            ftext = ""  # not read: the folded text serves only the scan
        elif find_t is not None:  # one native call; the text itself only where it is read
            hits, flen = find_t(text, self._nftable)
            ftext = self._nftable.translate(text) if hits or prefilter is not None else ""  # type: ignore[union-attr]
        else:
            ftext = text.translate(self._ftable)
            flen = len(ftext)
            hits = find(ftext, True)
        return self._checked(text, source, product, crossing, hits, fold_hits, flen, ftext, verdict)

    def _checked(
        self, text: str, source: Source, product: str | None, crossing: int | None, hits: list[tuple[int, int, int]],
        fold_hits: list[tuple[int, int, int]] | None, flen: int, ftext: str, verdict: int = -1,
    ) -> tuple[Finding, ...]:
        """check() after the scan: ``hits`` (and ``fold_hits``, where the folded C scan resolved
        them; else None) in the normalised text of length ``flen``; ``ftext``: the text normalised
        and folded, where the scan made it (else ""); ``verdict``: the one-call path's trigger
        verdict on ``hits`` (1 or 0), or -1 (see _verify's ``known``)."""
        _find, prefilter, _source, gap_only, groups, _find_t, _find_r, _fast = self._scan[source]
        if (
            not hits
            and not fold_hits
            and prefilter is None
            and (crossing is not None or source not in self._model_sources)
            and ((self._rebus_deleted and flen == len(text)) or self._rebus_absent(text))
        ):
            return ()  # a clean line (most chat): no candidate, no pattern, no rebus emoji, no model
        joined_at: int | None = None  # the join's offset in the normalised text, once known
        if crossing is not None and (hits or fold_hits) and prefilter is None:
            joined_at = self._join_at(text, flen, crossing)
            if not self._join_relevant(joined_at, source, hits, fold_hits is not None) and not (
                fold_hits and any(s < joined_at < e for _i, s, e in fold_hits)
            ):
                # nothing can cross the join: nothing to resolve or verify (the rebus view still looks)
                hits = []
                fold_hits = [] if fold_hits is not None else None
        result: tuple[Finding, ...] = ()
        # where the model may be asked, the verdicts of both views are kept: where a rule judged its
        # words lawful in their context (see _JUDGED_LAWFUL), the model does not overrule it for
        # that category (好评返现是违规的 is a warning, not an offer; 销量第12 is not 第1)
        model = crossing is None and source in self._model_sources
        fast_judged: set[str] | None = None  # categories a rule judged lawful (see _verify's ``judged``)
        known: str | None = None  # the normalised text, once computed (the model reads it too)
        if hits or prefilter is not None or fold_hits:
            folded = None
            if fold_hits is not None:
                norm = known = self._norm(text)
                if fold_hits:
                    folded = self._fold_filter(norm, source, fold_hits)
            elif groups is None:
                norm = known = ftext
            elif hits and flen == len(text) and prefilter is None:
                # nothing deleted: the candidates are resolved on their own spans, and the whole
                # line is normalised only when one of them is a key spelt exactly (most are not)
                hits, folded = self._resolve(text, hits, source, self._table)
                if hits or folded is not None:
                    norm = known = self._norm(text)
                else:
                    norm = ftext  # no candidate left, and no pattern prefilter on this path: not read
            else:
                norm = known = self._norm(text)
                if hits:
                    hits, folded = self._resolve(norm, hits, source)
            if crossing is not None and (hits or folded):
                hits, folded = self._crossing(text, crossing, source, hits, folded, joined_at)
            if folded is None and (prefilter is None or prefilter.search(norm) is None) and (
                not hits
                or (
                    hits[0][0] in gap_only  # (most lines fail here, before the generator is made)
                    and all(h[0] in gap_only for h in hits)
                    and (len(norm) == len(text) or self._stand_ins().isdisjoint(text))
                )
            ):
                pass  # nothing, or only dropped-character forms (加信) where no symbol was deleted
            else:
                fast_judged = set() if model else None
                result = self._verify(text, norm, source, product, hits, None, None, folded, fast_judged,
                                      joined_at if crossing is not None and prefilter is None else None, verdict)
        if not ((self._rebus_deleted and flen == len(text)) or self._rebus_absent(text)):
            if model and fast_judged is None:
                fast_judged = set()
            result = self._with_rebus(text, source, product, result, None, fast_judged)
        if result or not model:
            return result
        if known is None and groups is None:
            known = ftext or self._fnorm(text)  # without a folding table, the scanned text is the normalised text
        judged = frozenset(fast_judged) if fast_judged else _NOTHING_JUDGED
        return self._classified(text, source, product, None, judged, known)

    def _glued_judged(self, auto: _Automaton, hits: list[tuple[int, int, int]], source: Source, product: str | None) -> set[str]:
        """What the full verification's trace would give _judged for ``hits`` that passed
        _only_unmatched_triggers: its only candidates are the Latin-edged terms glued to another
        letter or digit (pattern triggers without a match and dropped-character forms make none),
        each judged by its rule's product scope ("product") or else by the word boundary
        ("boundary", which counts only for a term's own spelling)."""
        out: set[str] = set()
        terms = self._term_keys
        for ki, _s, _e in hits:
            edges = auto.trigger_only[ki][0]  # type: ignore[index]
            if not edges & 3 or edges & 4:
                continue
            key_is_term = auto.keys[ki] in terms
            for entry in auto.entries[ki]:
                if entry.kind in _TERM_KINDS and (key_is_term or not entry.rule.applies(source, product)):
                    out.add(entry.rule.category)
        return out

    def _join_at(self, text: str, flen: int, at: int) -> int:
        """Where ``text[:at]`` ends in the normalised text (``flen``: the length of ``text`` normalised)."""
        return at if flen == len(text) else len(self._norm(text[:at]))

    def _join_relevant(self, n: int, source: Source, hits: list[tuple[int, int, int]], exact: bool = False) -> bool:
        """Can a finding of the scan ``hits`` cross offset ``n`` of the normalised text (a session's
        join, see check(crossing=))? Only if a hit crosses it, or a pattern trigger lies close
        enough for a match of its pattern to reach across (a match holds a trigger occurrence and
        is at most the pattern's width long; unbounded patterns always may). Exceptions and the
        hits of one side alone make no crossing finding. Exact: when False, the full path finds
        nothing that crosses. ``exact``: ``hits`` are resolved already (key indexes, not scan
        indexes; see _folded_scanner)."""
        widths = self._trigger_widths.get((source, exact))
        if widths is None:
            widths = self._trigger_widths[(source, exact)] = {}
        for i, s, e in hits:
            if s < n < e:
                return True
            w = widths.get(i)
            if w is None:
                w = widths[i] = self._trigger_width(source, i, exact)
            if w >= 0 and e - w < n < s + w:
                return True
        return False

    def _trigger_width(self, source: Source, index: int, exact: bool = False) -> int:
        """The widest pattern triggered by a key that scan index ``index`` stands for (an unbounded
        pattern counts as wider than any line), or -1 if none is a trigger. Computed per index as
        indexes are met (a build over every key stalled the first join check by ~0.1 s).
        ``exact``: ``index`` is a key index."""
        auto = self._automata[source]
        groups = self._groups.get(source)
        if groups is None or exact:
            members: tuple[int, ...] = (index,)
        else:
            first, more = groups
            members = ((first[index],) if first[index] >= 0 else ()) + more.get(index, ())
        widest = -1
        for ki in members:
            for entry in auto.entries[ki]:
                if entry.kind == _TRIGGER:
                    widest = max(widest, MAX_TEXT_LENGTH * 2 if entry.width is None else entry.width)
        return widest

    def warm(self) -> Checker:
        """Build now what a check otherwise builds on its first use (the rebus view's table, ~10 ms;
        the stand-in characters; the lexicon), so that no message pays for it. A long-running caller
        (the sidecar) calls this off its event loop after loading; the result is the same either way."""
        if self._rebus_view is None:
            self._rebus_view = self.normalizer.rebus_view()
        self._stand_ins()
        if self._lexicon is None:
            self._words()
        return self

    def _words(self) -> Mapping[str, int] | None:
        """The segmenter's dictionary (word -> frequency), kept as the lexicon on first use; None
        when the segmenter has none."""
        dictionary = getattr(self.segmenter, "dictionary", None)
        self._lexicon = dictionary()[0] if callable(dictionary) else None
        return self._lexicon

    def _judged(self, trace: list[Candidate]) -> frozenset[str]:
        """The categories of the candidates in ``trace`` that a rule judged lawful where they stand."""
        category = self._rule_category
        terms = self._term_keys
        return frozenset(
            category[c.rule_id] for c in trace
            if c.verdict in _JUDGED_LAWFUL and c.rule_id in category
            # a word boundary judges a term's own spellings (最 in 最近), not a generic homophone swap
            and (c.verdict != "boundary" or c.key in terms)
        )

    def _classified(
        self, text: str, source: Source, product: str | None, trace: list[Candidate] | None = None,
        judged: frozenset[str] = frozenset(), norm: str | None = None,
    ) -> tuple[Finding, ...]:
        """The paraphrase model's finding for a line no rule flagged: the best category above the
        source's threshold whose classifier rule applies to ``product``, over the whole utterance.
        ``judged``: categories a rule judged lawful on this line, which the model does not report.
        ``norm``: ``text`` normalised, if the caller has it."""
        model = self.model
        assert model is not None
        if norm is None:
            norm = self._norm(text)
        if len(norm) < model.min_length:
            return ()
        scan, rows, bounds, limit = self._model_scan[source]
        known = scan(norm)
        if known is None or sum(map(bounds.__getitem__, known)) < limit:
            return ()  # no category can reach the threshold
        verdict = model.decide([rows[i] for i in known], source)
        if verdict is None:
            return ()
        rules = self._model_rules[source]
        start = len(text) - len(text.lstrip())
        end = len(text.rstrip())
        for category, p in verdict.categories:
            rule = rules.get(category)
            if rule is None:
                continue
            evidence = "/".join(model.evidence(norm, source, category))
            if category in judged:
                if trace is not None:
                    trace.append(Candidate(rule.id, evidence, 0, len(norm), start, end, "context",
                                           f"paraphrase model p={p:.2f}; a {category} rule judged this line lawful"))
                continue
            if not rule.applies(source, product):
                if trace is not None:
                    trace.append(Candidate(rule.id, evidence, 0, len(norm), start, end, "product",
                                           f"paraphrase model p={p:.2f}; rule does not apply to product {product}"))
                continue
            if trace is not None:
                trace.append(Candidate(rule.id, evidence, 0, len(norm), start, end, "kept",
                                       f"paraphrase model p={p:.2f} (threshold {model.thresholds[source]})"))
            return (_new_finding(rule.id, rule.category, rule.severity, source, start, end, text[start:end], evidence,
                            rule.message, rule.suggestion, rule.legal_basis, self._rule_version[rule.id]),)
        return ()

    def _classified_batch(
        self, texts: Sequence[str], source: Source, product: str | None, out: list[tuple[Finding, ...]],
        judged: Mapping[int, frozenset[str]] | None = None, norm_joined: str | None = None,
    ) -> list[tuple[Finding, ...]]:
        """``out`` with the model's findings for the lines without one; ``judged``: per verified line,
        the categories a rule judged lawful there (see check). ``norm_joined``: the batch normalised
        and joined by newlines, if the caller has it; a long batch is then scored all at once
        (BatchScorer), and only the lines that may reach the threshold are classified one by one."""
        if source not in self._model_sources:
            return out
        if norm_joined is not None and len(norm_joined) >= VECTOR_MIN_CHARS and source not in self._model_native:
            scorer = self._batch_scorers.get(source)
            if scorer is None:
                scorer = self._batch_scorers[source] = BatchScorer(self.model, source)  # type: ignore[arg-type]
            lines: Iterable[int] = scorer.lines_reaching(norm_joined)
        else:
            lines = range(len(out))
        for i in lines:
            if not out[i]:
                out[i] = self._classified(texts[i], source, product, None, judged.get(i, _NOTHING_JUDGED) if judged else _NOTHING_JUDGED)
        return out

    def _with_rebus(
        self, text: str, source: Source, product: str | None, result: tuple[Finding, ...], trace: list[Candidate] | None = None,
        judged: set[str] | None = None,
    ) -> tuple[Finding, ...]:
        """``result`` plus the findings of the rebus view of ``text``, in which emoji that stand for a
        character are that character (降血🍬 is 降血糖) instead of being deleted as decoration (电🚬子烟
        is 电子烟, found by the main view). A finding strictly inside a longer one of the same
        category is dropped, as within one view."""
        if self._rebus_view is None:
            self._rebus_view = self.normalizer.rebus_view()
        mapping, table = self._rebus_view
        norm = text.translate(table)
        hits, folded = self._scan_norm(norm, source)
        extra = self._verify(text, norm, source, product, hits, trace, mapping, folded, judged)
        if not extra:
            return result
        merged = {(f.rule_id, f.start, f.end): f for f in (*result, *extra)}
        out = [
            f for f in merged.values()
            if not any(g.category == f.category and g.start <= f.start and f.end <= g.end and g.end - g.start > f.end - f.start
                       for g in merged.values())
        ]
        # the two views can find one rule over overlapping spans (降血🍬 and 血糖高): one finding
        if len(out) > 1:
            out = _merge_overlaps(out, lambda f: (f.rule_id, f.start, f.end),
                                  lambda f, end: replace(f, end=end, text=text[f.start:end]))
        out.sort(key=_finding_order)
        return tuple(out)

    def check_batch(
        self,
        texts: Sequence[str],
        source: Source | str = Source.HOST,
        product: str | None = None,
    ) -> list[tuple[Finding, ...]]:
        """Findings for many utterances at once, equal to ``[check(t, source, product) for t in texts]``.

        Where the source has no paraphrase model (viewer chat by default): one translate and one
        automaton pass over the joined batch, offsets mapped back only for lines with candidate
        hits. Where the model reads every line anyway (host speech, with the C extension): one C
        call checks every line as check()'s one-call path does (FoldedScanner.check_many), and
        only the lines it does not clear take the full path.
        """
        try:
            source = _SOURCES[source]  # Source members and their plain-string values alike
        except (KeyError, TypeError):
            source = Source.parse(source)
        if product is not None and (not isinstance(product, str) or product not in _PRODUCTS):
            raise UsageError(f"unknown product category {product!r}")
        n = len(texts)
        if n == 0:
            return []
        many = self._fast_many.get(source)
        if many is not None and source in self._model_sources:
            # the model reads every line anyway: the one-call check of each line, in one C call for
            # the batch, and the full path for the few it does not clear (see _fast_check)
            each: list[tuple[Finding, ...]] = [()] * n
            listed = texts if type(texts) is list else list(texts)
            for i, hits, fold_hits, flen, verdict in many(listed, MAX_TEXT_LENGTH):
                each[i] = (self.check(listed[i], source, product) if flen < 0
                           else self._checked(listed[i], source, product, None, hits, fold_hits, flen, "", verdict))
            return each
        joined = "\n".join(texts)
        if joined.count("\n") != n - 1 or len(joined) > MAX_TEXT_LENGTH * 50:
            # a text with its own newline (or a huge batch): fall back to per-line checks
            return [self.check(t, source, product) for t in texts]
        long_batch = len(joined) >= VECTOR_MIN_CHARS
        rebus_at: list[int] | None = None  # positions of rebus emoji in joined (None: not looked for yet)
        if source not in self._batch_scans:
            self._batch_scans[source] = self._folded_scanner(source, self._nbatch, self._nfbatch)
        batch_scan = self._batch_scans[source]
        prefilter, _pats = self._patterns[source]
        folded_all: list[tuple[Rule, str, int, int]] | None = None
        fjoined: str | None  # the batch normalised and folded, where it was made
        codes = None  # the batch as a numpy array (the vectorised path without the C tables)
        if self._nrebus is not None:
            rebus_at = self._nrebus.deleted(joined)
        if batch_scan is not None:
            # one C pass scans and resolves (see _folded_scanner); the batch is normalised once, and
            # no folded copy is made (its separators stand where the normalised text's do)
            hits, fold_hits, _n = batch_scan(joined)
            fjoined = None
            norm_joined = self._nbatch.translate(joined)  # type: ignore[union-attr]
            if fold_hits:
                folded_all = self._fold_filter(norm_joined, source, fold_hits)
                if folded_all:
                    hits.extend((-2 - i, f[2], f[3]) for i, f in enumerate(folded_all))
        elif self._nfbatch is not None:  # the C tables: one pass each, whatever the batch's length
            fjoined = self._nfbatch.translate(joined)
        elif long_batch:
            if self._fvector_table is None:
                self._fvector_table = VectorTable(self._fbatch_table)
                self._rebus_marks = self._fvector_table.marks(self.normalizer.rebus)
            codes = self._fvector_table.codes(joined)  # encoded once for every table below
            fjoined = self._fvector_table.apply(codes)
            rebus_at = self._fvector_table.positions(codes, self._rebus_marks)
        else:
            fjoined = joined.translate(self._fbatch_table)
        if batch_scan is None:
            hits, norm_joined, folded_all = self._batch_hits(joined, fjoined, codes, long_batch, source)  # type: ignore[arg-type]
        if prefilter is not None:
            hits = hits + [(-1, m.start(), m.start()) for m in prefilter.finditer(norm_joined)]
        out: list[tuple[Finding, ...]] = [()] * n
        if not hits:
            judged: dict[int, frozenset[str]] = {}
            out = self._rebus_batch(texts, joined, source, product, out, rebus_at, judged)
            return self._classified_batch(texts, source, product, out, judged, self._model_text(joined, fjoined, norm_joined, source, codes))
        # only lines with hits need their bounds: count separators between consecutive hits
        hits.sort(key=lambda h: h[1])
        flagged: dict[int, tuple[int, int, list[tuple[int, int, int]]]] = {}
        line = pos = 0
        current = -1
        entry: tuple[int, int, list[tuple[int, int, int]]] = (0, 0, [])
        pre_lines: set[int] = set()  # lines where an untriggered pattern may match
        fold_lines: dict[int, list[tuple[Rule, str, int, int]]] = {}  # lines with long terms in same-pinyin spelling
        for key_index, s, e in hits:  # the separators stand at the same places in every view of the batch
            if s > pos:
                line += norm_joined.count("\n", pos, s)
                pos = s
            if line != current:
                current = line
                lo = norm_joined.rfind("\n", 0, s) + 1
                hi = norm_joined.find("\n", s)
                entry = flagged.setdefault(line, (lo, len(norm_joined) if hi < 0 else hi, []))
            if key_index >= 0:
                entry[2].append((key_index, s - entry[0], e - entry[0]))
            elif key_index == -1:
                pre_lines.add(line)
            else:
                rule, term, fs, fe = folded_all[-2 - key_index]  # type: ignore[index]
                fold_lines.setdefault(line, []).append((rule, term, fs - entry[0], fe - entry[0]))
        gap_only = self._gap_only[source]
        model = source in self._model_sources
        judged: dict[int, frozenset[str]] = {}  # per verified line: categories a rule judged lawful (see check)
        for li, (lo, hi, line_hits) in flagged.items():
            text = texts[li]
            if len(text) > MAX_TEXT_LENGTH:
                raise InputError(f"text {li} is {len(text)} characters; the limit is {MAX_TEXT_LENGTH}")
            folded = fold_lines.get(li)
            if (
                line_hits
                and li not in pre_lines
                and folded is None
                and line_hits[0][0] in gap_only
                and all(h[0] in gap_only for h in line_hits)
                and (len(text) == hi - lo or self._stand_ins().isdisjoint(text))
            ):
                continue  # only dropped-character forms (加信) where no symbol was deleted
            fast_judged: set[str] | None = set() if model else None
            out[li] = self._verify(text, norm_joined[lo:hi], source, product, line_hits, None, None, folded, fast_judged)
            if fast_judged and not out[li]:
                judged[li] = frozenset(fast_judged)
        out = self._rebus_batch(texts, joined, source, product, out, rebus_at, judged)
        return self._classified_batch(texts, source, product, out, judged, self._model_text(joined, fjoined, norm_joined, source, codes))

    def _batch_hits(
        self, joined: str, fjoined: str, codes: object, long_batch: bool, source: Source
    ) -> tuple[list[tuple[int, int, int]], str, list[tuple[Rule, str, int, int]] | None]:
        """check_batch without the folded C scan: the automaton's hits in ``fjoined`` (the batch
        normalised and folded), resolved (see _resolve), the normalised batch, and the long terms'
        same-pinyin spellings (as _resolve gives them) or None."""
        hits = self._automata[source].matcher.find(fjoined)  # type: ignore[union-attr]
        prefilter = self._patterns[source][0]
        # verification and untriggered patterns read the normalised (not folded) text
        norm_joined = fjoined
        if (hits or prefilter is not None) and self._fbatch_table is not self._batch_table:
            if self._nbatch is not None:
                norm_joined = self._nbatch.translate(joined)
            elif long_batch:
                if self._vector_table is None:
                    self._vector_table = VectorTable(self._batch_table)
                norm_joined = self._vector_table.apply(codes)
            else:
                norm_joined = joined.translate(self._batch_table)
        folded_all: list[tuple[Rule, str, int, int]] | None = None
        if hits and source in self._groups:
            # resolved over the whole batch at once: most lines with a hit of another spelling of
            # the same pinyin (为 for 薇) are then never looked at
            hits, folded_all = self._resolve(norm_joined, hits, source)
            if folded_all:
                hits.extend((-2 - i, f[2], f[3]) for i, f in enumerate(folded_all))
        return hits, norm_joined, folded_all

    def _model_text(self, joined: str, fjoined: str | None, norm_joined: str, source: Source, codes: object) -> str | None:
        """The normalised batch for the model's batch pass (see _classified_batch), or None when the
        model does not serve ``source`` or the batch is short. ``norm_joined`` may still be the folded
        ``fjoined`` (no line had a hit): the model reads normalised, not folded, text. None too
        where the C ModelScanner serves ``source``: the lines are then asked one by one."""
        if source not in self._model_sources or source in self._model_native or len(joined) < VECTOR_MIN_CHARS:
            return None
        if norm_joined is not fjoined or self._fbatch_table is self._batch_table:
            return norm_joined
        if codes is None:
            return self._nbatch.translate(joined) if self._nbatch is not None else joined.translate(self._batch_table)
        if self._vector_table is None:
            self._vector_table = VectorTable(self._batch_table)
        return self._vector_table.apply(codes)

    def _rebus_batch(
        self, texts: Sequence[str], joined: str, source: Source, product: str | None, out: list[tuple[Finding, ...]],
        positions: list[int] | None = None, judged: dict[int, frozenset[str]] | None = None,
    ) -> list[tuple[Finding, ...]]:
        """``out`` plus the rebus view's findings of the lines holding a rebus emoji (see _with_rebus).
        ``positions``: where ``joined`` holds one, if known (the vectorised batch path finds them)."""
        if positions is None:
            # found with one str.find per rebus character over the joined batch (a set test per
            # line cost ~1.4 µs a line, more than the rest of the batch path)
            find = joined.find
            positions = []
            for ch in self._rebus_chars:
                i = find(ch)
                while i != -1:
                    positions.append(i)
                    i = find(ch, i + 1)
        if positions:
            lines: dict[int, None] = {}
            line = previous = 0
            for p in sorted(positions):  # count the separators between consecutive positions
                line += joined.count("\n", previous, p)
                previous = p
                lines[line] = None
            for li in lines:
                seen: set[str] | None = set() if judged is not None and source in self._model_sources else None
                out[li] = self._with_rebus(texts[li], source, product, out[li], None, seen)
                if seen and not out[li]:  # as in check(): the rebus view's verdicts count too
                    judged[li] = judged.get(li, _NOTHING_JUDGED) | seen  # type: ignore[index,union-attr]
        return out

    def explain(self, text: str, source: Source | str = Source.HOST, product: str | None = None) -> Explanation:
        """Every step of a check: normalised text, tokens, each candidate and why it was kept or dropped."""
        try:
            source = _SOURCES[source]  # Source members and their plain-string values alike
        except (KeyError, TypeError):
            source = Source.parse(source)
        norm = text.translate(self._table)
        trace: list[Candidate] = []
        # speaker: show hits of rules that do not apply to this source, too
        for other in Source:
            if other is source:
                continue
            for key_index, s, e in self._scan_norm(norm, other)[0]:
                for entry in self._automata[other].entries[key_index]:
                    if entry.kind not in (_EXCEPTION, _GAP) and source not in entry.rule.sources:
                        os_, oe = to_original_span(s, e, offset_map(text, self._mapping))
                        trace.append(
                            Candidate(entry.rule.id, self._automata[other].keys[key_index], s, e, os_, oe, "speaker",
                                      f"rule applies to {'/'.join(sorted(x.value for x in entry.rule.sources))} only")
                        )
        hits, folded = self._scan_norm(norm, source)
        findings = self._verify(text, norm, source, product, hits, trace, None, folded)
        if not self._rebus_chars.isdisjoint(text):
            findings = self._with_rebus(text, source, product, findings, trace)
        if not findings and source in self._model_sources:
            findings = self._classified(text, source, product, trace, self._judged(trace))
        tokens: tuple[tuple[str, int, int], ...] = ()
        tok = getattr(self.segmenter, "tokens", None)
        if tok is not None and norm:
            tokens = tuple(tok(norm))
        return Explanation(text, norm, source, product, tokens, tuple(trace), findings)

    # ------------------------------------------------------------------ verify
    def _alnum_at(self, text: str, i: int, mapping: Mapping[int, int | None] | None = None) -> bool:
        """Is the original character at ``i`` a Latin letter or digit (after width/case folding)?

        Judged on the original text, so a separator (``vx：abc``, ``vx abc``) is a boundary.
        """
        if i < 0 or i >= len(text):
            return False
        mapped = (mapping or self._mapping).get(ord(text[i]), ord(text[i]))
        return mapped is not None and chr(mapped) in _ASCII_ALNUM

    def _verify(
        self,
        text: str,
        norm: str,
        source: Source,
        product: str | None,
        hits: list[tuple[int, int, int]],
        trace: list[Candidate] | None,
        mapping: Mapping[int, int | None] | None = None,
        folded: list[tuple[Rule, str, int, int]] | None = None,
        judged: set[str] | None = None,
        join: int | None = None,
        known: int = -1,
    ) -> tuple[Finding, ...]:
        """``mapping``: the normaliser mapping ``norm`` was made with (None: the main one; the rebus
        view passes its own). ``folded``: long terms found in same-pinyin spelling (_resolve).
        ``join``: check(crossing=)'s join, as an offset in ``norm``, when only findings crossing it
        are wanted and the source has no untriggered pattern: if no hit and no match of a
        triggered pattern crosses it, nothing does (a finding's span is a candidate's, and only
        overlapping candidates merge), and the line is not verified.
        ``judged``: where the caller wants only the categories a rule judged lawful (check() for
        the paraphrase model), not a trace: a set that receives them (what _judged would read from
        the trace), ``trace`` being None.
        ``known``: the one-call path's trigger verdict on these very hits and text (FoldedScanner.check):
        1 (passed) or 0 (failed; perhaps only for want of the stand-in set, so the full path, which
        decides the same), or -1: not asked."""
        auto = self._automata[source]
        if mapping is None:
            mapping = self._mapping
        if (trace is None or judged is not None) and folded is None and known != 0 and (
            known == 1 or self._trigger_verdict(
                auto.trigger_only, hits, norm, self._patterns[source][0], len(norm) == len(text), text,
                self._stand_in or self._stand_ins(), _GUARD_MIN_LENGTH,
            )
        ):
            if judged is not None:
                judged.update(self._glued_judged(auto, hits, source, product))
            return ()
        if join is not None and folded is None and not _may_cross(auto.entries, hits, norm, join):
            return ()
        if len(norm) == len(text):
            positions = None
        elif mapping is self._mapping and self._ntable is not None:
            positions = self._ntable.kept(text)  # offset_map in C (the table is the mapping's)
        else:
            positions = offset_map(text, mapping)
        #: (rule, key, start, end, how): how is _HOW_TERM, _HOW_PATTERN, _HOW_ALIAS or _HOW_GAP
        term_hits: list[tuple[Rule, str, int, int, int]] = []
        exc_spans: dict[str, list[tuple[int, int]]] = {}
        #: by the pattern's id and the rule's: hashing a Pattern hashes its code, and two rules may share
        #: one compiled pattern (the same regex in a drug rule and a food rule)
        triggered: dict[tuple[int, str], _Entry] = {}
        if folded:
            term_hits.extend((rule, term, s, e, _HOW_FOLD) for rule, term, s, e in folded)
        all_entries, keys = auto.entries, auto.keys
        for key_index, s, e in hits:
            for entry in all_entries[key_index]:
                kind = entry.kind
                if kind == _TRIGGER:  # the most common kind first
                    triggered[(id(entry.pattern), entry.rule.id)] = entry
                elif kind == _TERM:
                    term_hits.append((entry.rule, keys[key_index], s, e, _HOW_TERM))
                elif kind == _ALIAS:
                    term_hits.append((entry.rule, keys[key_index], s, e, _HOW_ALIAS))
                elif kind == _HOMOPHONE:
                    term_hits.append((entry.rule, keys[key_index], s, e, _HOW_HOMOPHONE))
                elif kind == _EXCEPTION:
                    exc_spans.setdefault(entry.rule.id, []).append((s, e))
                elif kind == _GAP:
                    # a term with a dropped character: a symbol or emoji must stand where it was
                    if positions is not None and _symbol_between(text, positions[s + entry.width - 1], positions[s + entry.width]):  # type: ignore[operator]
                        term_hits.append((entry.rule, keys[key_index], s, e, _HOW_GAP))
                    elif trace is not None:
                        os_, oe = to_original_span(s, e, positions)
                        trace.append(Candidate(entry.rule.id, keys[key_index], s, e, os_, oe, "gap",
                                               "a character is missing and no symbol or emoji stands in its place"))
                # a doubled-character form only counts when written without separators
                elif positions is None or positions[e - 1] - positions[s] == e - s - 1:
                    term_hits.append((entry.rule, keys[key_index], s, e, _HOW_TERM))
        prefilter, pats = self._patterns[source]
        # a pattern's guard: strings one of which every match holds (literals.prepare); a line
        # without any of them is not searched (in C, a few substring tests cost a fraction of a search)
        to_run = [(entry.pattern, entry.rule) for entry in triggered.values()
                  if entry.guard is None or _has_any(norm, entry.guard)]
        if prefilter is not None and prefilter.search(norm) is not None:
            to_run.extend((rx, rule) for rule, rx in pats)
        for rx, rule in to_run:
            for m in rx.finditer(norm):
                if "hit" in rx.groupindex and m.group("hit") is not None:
                    s, e = m.span("hit")
                else:
                    s, e = m.span()
                if e > s:
                    term_hits.append((rule, rx.pattern, s, e, _HOW_PATTERN))
        words: tuple[tuple[int, int], ...] | None = None
        kept: dict[tuple[str, int, int], tuple[Rule, str, int, int]] = {}
        direct: set[tuple[str, int, int]] = set()  # kept keys found otherwise than by folding
        #: the look-around's answers by span: rules sharing a term ask it about the same span
        negated: dict[tuple[int, int, bool], str | None] = {}
        #: without a trace, per rule the spans of its kept hits not found by folding, longest first:
        #: a hit strictly inside one of them changes no finding (it would merge into it, see
        #: _merge_overlaps), so it is not verified. Findings only: were nothing kept, every hit
        #: would still be judged (``judged``); with one kept, the result is not empty.
        covered: dict[str, list[tuple[int, int]]] | None = None
        if trace is None and len(term_hits) > 1:
            covered = {}
            term_hits.sort(key=_longest_first)
        for rule, key, s, e, how in term_hits:
            if covered is not None:
                spans_of_rule = covered.get(rule.id)
                if spans_of_rule is not None and _strictly_inside_one(spans_of_rule, s, e):
                    continue  # it would merge into a kept hit of its own rule
            is_pattern = how == _HOW_PATTERN
            os_, oe = (s, e) if positions is None else (positions[s], positions[e - 1] + 1)  # to_original_span
            verdict: Verdict = "kept"
            detail = ""
            excepted = exc_spans.get(rule.id) if exc_spans else None
            if not rule.applies(source, product):
                verdict, detail = "product", f"rule does not apply to product category {product!r}"
            elif excepted is not None and any(xs <= s and e <= xe for xs, xe in excepted):
                xs, xe = next((xs, xe) for xs, xe in excepted if xs <= s and e <= xe)
                verdict, detail = "exception", f"inside exception {norm[xs:xe]!r}"
            elif not is_pattern and (
                (key[0] in _ASCII_ALNUM and self._alnum_at(text, os_ - 1, mapping))
                or (key[-1] in _ASCII_ALNUM and self._alnum_at(text, oe, mapping))
            ):
                verdict, detail = "boundary", "part of a longer Latin word or number"
            elif how == _HOW_ALIAS and key[0] in _ASCII_ALNUM and key[-1] in _ASCII_ALNUM and latin_context(text, os_, oe, key):
                verdict, detail = "context", f"pinyin spelling inside {latin_context(text, os_, oe, key)}"
            elif (rule.word_boundary or how >= _HOW_HOMOPHONE) and not is_pattern:
                # a generic homophone spelling is always checked: 福建人 is not 贱人
                if words is None:
                    words = self.segmenter.spans(norm)
                    if positions is not None:
                        # where the original had a space or symbol, jieba's words are cut:
                        # 刷单 一单五块 is 刷单 + 一单五块 even though the space is gone
                        words = _cut_at_gaps(words, positions)
                why = splits_a_word(words, s, e, norm, self._term_keys)
                if why:
                    verdict, detail = "boundary", f"{why} (jieba)"
                elif how >= _HOW_HOMOPHONE and crosses_a_word(words, s, e):
                    verdict, detail = "boundary", "a homophone spelling must be whole words (jieba)"
            if verdict == "kept" and rule.negatable:
                neg = negated.get((os_, oe, True), _UNSEEN)
                if neg is _UNSEEN:
                    neg = negated[(os_, oe, True)] = negation_before(text, os_) or negation_after(text, oe, os_)
                if neg:
                    verdict, detail = "negation", f"negated or warned against by {neg!r}"
            if verdict == "kept" and not rule.negatable and "verdict" in rule.contexts:
                # terms that carry their own negation (无效退款, 不反弹): no look back, but a refusal
                # or scam verdict after them still makes them a warning (这种话不能说, 都是骗人的)
                neg = negated.get((os_, oe, False), _UNSEEN)
                if neg is _UNSEEN:
                    neg = negated[(os_, oe, False)] = negation_after(text, oe, os_)
                if neg:
                    verdict, detail = "negation", f"refused or called a scam by {neg!r}"
            if verdict == "kept" and rule.contexts:
                if "question" in rule.contexts and source is Source.CHAT:
                    cue = question_about(text, os_, oe)
                    if cue:
                        verdict, detail = "negation", f"a viewer's question about the item ({cue!r}), not an offer"
                if verdict == "kept" and "own_range" in rule.contexts:
                    cue = own_range_before(text, os_)
                    if cue:
                        verdict, detail = "negation", f"compared within the shop's own range ({cue!r})"
            if trace is None:
                # the categories a rule judged lawful here, as _judged would read them from the trace
                if judged is not None and verdict in _JUDGED_LAWFUL and (verdict != "boundary" or key in self._term_keys):
                    judged.add(rule.category)
            else:
                if verdict == "kept" and how == _HOW_ALIAS:
                    detail = "pinyin or listed homophone spelling of a term"
                elif verdict == "kept" and how == _HOW_HOMOPHONE:
                    detail = "a character swapped for a common one of the same pinyin"
                elif verdict == "kept" and how == _HOW_GAP:
                    detail = "a symbol or emoji stands for a dropped character of a term"
                elif verdict == "kept" and how == _HOW_FOLD:
                    detail = "characters written as others of the same pinyin (folded)"
                trace.append(Candidate(rule.id, key, s, e, os_, oe, verdict, detail))
            if verdict == "kept":
                prev = kept.get((rule.id, s, e))
                if prev is None or key < prev[1]:  # one rule, one span: the same key whatever the hit order (check, check_batch)
                    kept[(rule.id, s, e)] = (rule, key, s, e)
                if how != _HOW_FOLD:
                    direct.add((rule.id, s, e))
                    if covered is not None:
                        covered.setdefault(rule.id, []).append((s, e))
        if not kept:
            return ()
        if len(direct) < len(kept):
            # a folded spelling is a fallback: where any other hit of its category overlaps it,
            # that hit stands (胃信 by its listed spelling, not 胃信找我 folded to 微信找我)
            for k in [k for k in kept if k not in direct]:
                rule, _key, s, e = kept[k]
                if any(kept[d][2] < e and s < kept[d][3] and kept[d][0].category == rule.category for d in direct):
                    del kept[k]
                    if trace is not None:
                        os_, oe = to_original_span(s, e, positions)
                        trace.append(Candidate(rule.id, _key, s, e, os_, oe, "contained", "another hit of its category overlaps this folded spelling"))
            if not kept:
                return ()
        # one finding per category per region: drop hits strictly inside a longer hit of the
        # same category (全网最低价 is one price finding); other categories stand on their own
        spans = list(kept.values())
        if len(spans) > 1:
            spans = _merge_overlaps(spans, lambda h: (h[0].id, h[2], h[3]), lambda h, end: (h[0], h[1], h[2], end))
        result: list[Finding] = []
        several = len(spans) > 1
        for rule, key, s, e in spans:
            container = None
            if several:
                for r2, _k2, s2, e2 in spans:
                    if s2 <= s and e <= e2 and (e2 - s2) > (e - s) and r2.category == rule.category:
                        container = (r2, s2, e2)
                        break
            if container is not None:
                if trace is not None:
                    os_, oe = to_original_span(s, e, positions)
                    trace.append(Candidate(rule.id, key, s, e, os_, oe, "contained", f"inside a longer hit of {container[0].id}"))
                continue
            os_, oe = to_original_span(s, e, positions)
            result.append(
                _new_finding(rule.id, rule.category, rule.severity, source, os_, oe, text[os_:oe], key, rule.message,
                             rule.suggestion, rule.legal_basis, self._rule_version[rule.id])
            )
        if len(result) > 1:
            result.sort(key=_finding_order)
        return tuple(result)


def _finding_order(f: Finding) -> tuple[int, int, str]:
    """Findings in text order (then by rule, for equal spans)."""
    return (f.start, f.end, f.rule_id)


_H = TypeVar("_H")

#: Finding(*values), in field order. With the C extension, made without the frozen dataclass's
#: __init__, which sets each of the 12 fields by object.__setattr__ (~3.5 µs a finding; this is
#: ~0.2 µs): the same object, as Finding's __init__ only stores its arguments (tests/test_findings.py)
_new_finding: Callable[..., Finding] = (
    _native.SlotMaker(Finding, [f.name for f in fields(Finding)])
    if _native is not None and hasattr(_native, "SlotMaker") and not hasattr(Finding, "__post_init__")
    else Finding
)

def _may_hold_any(text: str, strings: tuple[str, ...]) -> bool:
    """_native.has_any's stand-in without the C extension: True, so every triggered pattern is
    searched (the answer is the same; in Python the substring tests cost more than they save)."""
    return True


#: does ``text`` hold one of ``strings`` (a pattern's guard)? False only where it certainly does not
_has_any: Callable[[str, tuple[str, ...]], bool] = getattr(_native, "has_any", None) or _may_hold_any


#: a marker for "not computed yet" where None is an answer
_UNSEEN: Any = object()


def _strictly_inside_one(spans: list[tuple[int, int]], s: int, e: int) -> bool:
    """Is ``[s, e)`` inside one of ``spans`` and shorter than it?"""
    for cs, ce in spans:
        if cs <= s and e <= ce and ce - cs > e - s:
            return True
    return False


def _longest_first(hit: tuple[Rule, str, int, int, int]) -> int:
    """_verify's candidates, longest first (a stable sort: equal lengths keep their order)."""
    return hit[2] - hit[3]


def _merge_overlaps(
    items: list[_H], where: Callable[[_H], tuple[str, int, int]], widen: Callable[[_H, int], _H]
) -> list[_H]:
    """One finding per rule per region: overlapping hits of the same rule become one over their
    union (加v信 is one warning, not 加v + v信; 加我微信 + 微信详聊 is 加我微信详聊). ``where`` gives an
    item's (rule id, start, end); ``widen(item, end)`` the item extended to ``end``. The merged item
    is its first part widened. Used on the hits of one view (_verify) and on findings of two views."""
    by_rule: dict[str, list[_H]] = {}
    for item in items:
        by_rule.setdefault(where(item)[0], []).append(item)
    if len(by_rule) == len(items):
        return items
    out: list[_H] = []
    for group in by_rule.values():
        group.sort(key=lambda h: (where(h)[1], -where(h)[2]))
        first, end = group[0], where(group[0])[2]
        for item in group[1:]:
            _rid, s2, e2 = where(item)
            if s2 < end:
                end = max(end, e2)
            else:
                out.append(first if end == where(first)[2] else widen(first, end))
                first, end = item, e2
        out.append(first if end == where(first)[2] else widen(first, end))
    return out


def check_many(checker: Checker, items: Iterable[tuple[str, Source, str | None]]) -> list[tuple[Finding, ...]]:
    """Check ``(text, source, product)`` triples, batching consecutive items with equal source/product."""
    out: list[tuple[Finding, ...]] = []
    batch: list[str] = []
    key: tuple[Source, str | None] | None = None
    for text, source, product in items:
        if key is not None and key != (source, product):
            out.extend(checker.check_batch(batch, *key))
            batch = []
        key = (source, product)
        batch.append(text)
    if batch and key is not None:
        out.extend(checker.check_batch(batch, *key))
    return out

"""The negation look-around (verify.negation_before / negation_after) gives what its plain
reference gives: the character gates (_gate) and the one-pass clause cut only skip work."""

from __future__ import annotations

import re

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance import Checker, verify
from livestream_compliance.verify import (
    _A_NOT_A_TAIL,
    _AFTER_CLAUSE,
    _AFTER_SENTENCE,
    _NEGATORS,
    _NOT_NEGATION,
    _OTHER_PARTY,
    _REPORT_BEFORE,
    _SENTENCE_BREAK,
    _SENTENCE_END,
    _UNRELATED_AFTER,
    _UNRELATED_BEFORE,
    _WARNERS,
    AFTER_WINDOW,
    NEGATION_WINDOW,
    WARNING_WINDOW,
)

# --- the functions as written before the gates (session 9), the reference

def _reference_before(original: str, start: int, window: int = NEGATION_WINDOW) -> str | None:
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


def _reference_after(original: str, end: int, start: int | None = None) -> str | None:
    after = original[end : end + AFTER_WINDOW]
    stop = _SENTENCE_END.search(after)
    if stop:
        after = after[: stop.start()]
    if after:
        clause = after
        brk = _SENTENCE_BREAK.search(clause)
        if brk:
            clause = clause[: brk.start()]
        clause = _NOT_NEGATION.sub(lambda m: "\0" * len(m.group()), clause)
        m = _AFTER_CLAUSE.search(clause)
        if m:
            return m.group()
        if end > 0 and len(after) >= 2 and after[0] == "不" and after[1] == original[end - 1] and _A_NOT_A_TAIL.match(after, 2):
            return after[:2]  # 见效快不快因人而异: the A-not-A question form (not 保过不过退钱)
        if start is not None and _UNRELATED_BEFORE.search(original, max(0, start - 3), start):
            m = _UNRELATED_AFTER.search(clause)
            if m:
                return m.group()
        for m in _AFTER_SENTENCE.finditer(after):
            before = after[max(0, m.start() - 3) : m.start()]
            if "的" in before:  # 不赔的都是骗子: the 不 belongs to the claim, not to the verdict
                before = before[before.rindex("的") + 1 :]
            if any(ch in before for ch in "不没非") or _OTHER_PARTY.search(after, 0, m.start()):
                continue
            return m.group()
    lo = max(0, end - AFTER_WINDOW * 2)
    head = original[lo:end]
    stop = None
    for stop in _SENTENCE_END.finditer(head):
        pass
    if stop is not None:
        head = head[stop.end() :]
    m = _REPORT_BEFORE.search(head)
    if m:
        return m.group()
    return None


# the characters the patterns are made of, clause and sentence breaks, and others
_PATTERN_CHARS = sorted({ch for rx in (_NOT_NEGATION, _WARNERS, _NEGATORS, _AFTER_CLAUSE, _AFTER_SENTENCE, _REPORT_BEFORE,
                                       _UNRELATED_BEFORE, _UNRELATED_AFTER, _OTHER_PARTY)
                         for ch in rx.pattern if "\u4e00" <= ch <= "\u9fff"})
_ALPHABET = _PATTERN_CHARS + list("。，！？ ,;\n\u2029的了吗啊好货价最微信") + ["a", "1"]


@given(st.text(alphabet=_ALPHABET, max_size=40), st.data())
@settings(max_examples=1500)
def test_the_same_verdicts_as_the_reference_on_any_text(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = data.draw(st.integers(min_value=start, max_value=len(text)))
    window = data.draw(st.sampled_from([NEGATION_WINDOW, 3, WARNING_WINDOW, WARNING_WINDOW + 5]))
    assert verify.negation_before(text, start, window) == _reference_before(text, start, window)
    assert verify.negation_after(text, end, start) == _reference_after(text, end, start)
    assert verify.negation_after(text, end) == _reference_after(text, end)


def test_the_same_verdicts_as_the_reference_on_every_rule_example(checker: Checker) -> None:
    texts = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    found = 0
    for text in texts:
        for i in range(len(text) + 1):
            want = _reference_before(text, i)
            assert verify.negation_before(text, i) == want, (text, i)
            for j in range(i, min(len(text), i + 8) + 1):
                after = _reference_after(text, j, i)
                assert verify.negation_after(text, j, i) == after, (text, j, i)
                found += after is not None
            found += want is not None
    assert found > 1000  # the examples do hold negations and refusals


def test_the_gates_hold_a_character_of_every_match(checker: Checker) -> None:
    """A gate's characters: one of them in every match of its pattern; patterns without a small
    set have none (the pattern is then always run)."""
    gate = verify._gate(re.compile("不要错过|没想到|特别|[\u4e00-\u9fff]不[\u4e00-\u9fff]?了"))
    assert gate is not None and len(gate.pattern) == 5  # three characters, one in each alternative
    assert all(gate.search(m) for m in ("不要错过", "没想到", "特别", "好不了"))
    assert verify._gate(re.compile("a|b*")) is None  # b* may match nothing
    assert verify._gate(re.compile("[^x]y?")) is None
    assert verify._gate(re.compile("(?:ab|cd)+e")).pattern == "[e]"  # type: ignore[union-attr]
    assert verify._gate(re.compile("abc", re.IGNORECASE)) is None
    texts = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    for rx in (_NOT_NEGATION, _WARNERS, _NEGATORS, _AFTER_CLAUSE, _AFTER_SENTENCE, _REPORT_BEFORE):
        gate = verify._gate(rx)
        assert gate is not None, rx.pattern[:40]
        matches = [m.group() for text in texts for m in rx.finditer(text)]
        assert matches and all(gate.search(m) for m in matches), rx.pattern[:40]


@pytest.mark.parametrize(
    "text",
    [
        "举报了，刚才那个刷屏加微信的",  # a report cue at the very start of the look-back
        "拉黑了 加我微信的都是骗子",
        "小心那些叫你加微信私下交易的人",  # a warning at the window's start
        "，不能代替药物",  # a clause break first
        "没有的电子烟",
        "我们直播间不卖电子烟。有人说全网最低价",
        "不要错过全网最低价 别信加微信的",
        "最好，不是最好的",
        "和招财转运没关系",
        "见效快不快因人而异",
    ],
)
def test_the_same_verdicts_at_every_offset_of_edge_cases(text: str) -> None:
    for i in range(len(text) + 1):
        for window in (NEGATION_WINDOW, WARNING_WINDOW):
            assert verify.negation_before(text, i, window) == _reference_before(text, i, window), (i, window)
        for j in range(i, len(text) + 1):
            assert verify.negation_after(text, j, i) == _reference_after(text, j, i), (i, j)

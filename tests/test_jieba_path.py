"""jieba stays off the path of lines without a candidate hit, and is ready before the first message.

Issue 4 asks for both: segmentation (the word-boundary verdicts) runs only where the scan found a
candidate that needs it, and jieba's dictionary is loaded at start-up, never by a message.
"""

from __future__ import annotations

from typing import Any

import pytest

from livestream_compliance import Checker, Source, load_checker

# ordinary speech and chat (written for this test), none of it naming a rule's term
CLEAN = [
    "大家晚上好，欢迎来到直播间",
    "今天给大家带来的是一款秋冬的外套",
    "这个颜色特别显白，黑色和灰色都有",
    "主播身高一米六五，穿的是M码",
    "拍之前可以先看一下尺码表",
    "下单之后四十八小时内发货",
    "面料是纯棉的，摸起来很舒服",
    "有没有小个子穿的款式呀",
    "刚拍了两件，等着收货",
    "主播声音好好听",
    "这个包装看起来挺结实的",
    "已经关注了，期待下次直播",
    "1号链接还有货吗",
    "好的好的，谢谢主播",
    "hello everyone",
    "哈哈哈哈哈",
    "😂😂😂",
    "",
]


class Counted:
    """The segmenter's ``spans`` with a count of its calls."""

    def __init__(self, spans: Any) -> None:
        self.spans = spans
        self.calls = 0

    def __call__(self, text: str) -> Any:
        self.calls += 1
        return self.spans(text)


@pytest.fixture()
def counted(checker: Checker, monkeypatch: pytest.MonkeyPatch) -> Counted:
    c = Counted(checker.segmenter.spans)
    monkeypatch.setattr(checker.segmenter, "spans", c)
    return c


def _no_candidate(checker: Checker, text: str, source: Source) -> bool:
    hits, fold_hits, _n = checker._scan[source][6](text)
    return not hits and not fold_hits


@pytest.mark.parametrize("source", list(Source))
def test_lines_without_a_candidate_never_reach_jieba(checker: Checker, counted: Counted, source: Source) -> None:
    lines = [t for t in CLEAN if _no_candidate(checker, t, source)]
    assert len(lines) >= len(CLEAN) - 2  # the lines really are candidate-free
    for text in lines:
        assert checker.check(text, source) == ()
    assert checker.check_batch(lines, source) == [()] * len(lines)
    assert counted.calls == 0


def test_a_word_boundary_candidate_is_segmented(checker: Checker, counted: Counted) -> None:
    """The control: 最好 is a word-boundary term; inside 最好看 jieba says it is not a word of its own."""
    assert not _no_candidate(checker, "这件衣服最好看了", Source.HOST)
    assert checker.check("这件衣服最好看了", Source.HOST) == ()
    assert counted.calls >= 1


def test_jieba_is_loaded_before_the_first_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new checker's first messages (a word-boundary candidate among them) never initialise jieba:
    its dictionary was loaded (or restored from the state) by load_checker."""
    fresh = load_checker()
    tk = fresh.segmenter._tk  # type: ignore[attr-defined]
    assert tk.initialized and len(tk.FREQ) > 100_000

    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("jieba initialised on a message")

    monkeypatch.setattr(tk, "initialize", refuse)
    monkeypatch.setattr(tk, "check_initialized", refuse)
    assert [f.rule_id for f in fresh.check("这是全网第一的品牌", Source.HOST)]
    assert fresh.check("这件衣服最好看了", Source.HOST) == ()  # segmented: jieba was ready
    assert fresh.check_batch(["这件衣服最好看了", "大家晚上好"], Source.HOST) == [(), ()]

"""The segmenter's C path (``_native.jieba_spans``) gives exactly jieba's own words: the same
blocks, DAG, route and merging of single Latin letters and digits, on the taught dictionary and on
small dictionaries with odd values (zero, float, missing prefixes)."""

from __future__ import annotations


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance import Checker, verify

native = pytest.importorskip("livestream_compliance._native")


def _jieba(tk, text: str) -> tuple[tuple[int, int], ...]:  # type: ignore[no-untyped-def]
    return tuple((s, e) for _w, s, e in tk.tokenize(text, HMM=False))


@pytest.fixture(scope="module")
def segmenter(checker: Checker) -> verify.JiebaSegmenter:
    seg = checker.segmenter
    assert isinstance(seg, verify.JiebaSegmenter)
    return seg


#: characters from the rule vocabulary and jieba's words, Latin letters and digits, the symbols
#: jieba keeps inside a block (+#&._%-), spaces and line breaks, and characters outside any block
_PIECES = list("最好第一国家级加微信私聊减肥降血压治疗效果全网低价主播朋友们今天这个真的是非常") + list(
    "abcxyzABCvxqq0123456789+#&._%-"
) + [" ", "\t", "\r", "\n", "\r\n", "，", "。", "！", "😀", "\u9fd6", "\U00020000", "ａ", "①", "\u3000", "\x00"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=60).map("".join))
def test_the_same_words_as_jieba_on_the_taught_dictionary(segmenter: verify.JiebaSegmenter, text: str) -> None:
    assert native.jieba_spans(text, segmenter._tk.FREQ, segmenter._tk.total) == _jieba(segmenter._tk, text)


def test_the_same_words_as_jieba_on_every_rule_example(checker: Checker, segmenter: verify.JiebaSegmenter) -> None:
    texts = [e.text for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    texts += [checker.normalize(t) for t in texts]
    texts += ["a" * 300, "一" * 300, "中华人民共和国" * 40, "", "\r\n\r\r\n", "iphone15promax", "3.14%+-#&_"]
    for text in texts:
        assert segmenter.spans(text) == _jieba(segmenter._tk, text), text


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.text("abc一二三", min_size=1, max_size=4),
                    st.one_of(st.integers(0, 50), st.floats(0.5, 50.0), st.just(0)), max_size=25),
    st.integers(1, 10_000),
    st.text("abc一二三 d+\r\n", max_size=30),
)
def test_the_same_words_as_jieba_on_any_dictionary(freq: dict[str, float], total: int, text: str) -> None:
    """Ties, zero and float frequencies, and dictionaries that are not prefix-closed (the walk stops
    where jieba's does)."""
    tk = verify.import_jieba().Tokenizer()
    tk.FREQ, tk.total, tk.initialized = freq, total, True
    assert native.jieba_spans(text, freq, total) == _jieba(tk, text)


def test_errors() -> None:
    with pytest.raises(TypeError):
        native.jieba_spans(b"abc", {}, 10)
    with pytest.raises(TypeError):
        native.jieba_spans("abc", [], 10)
    with pytest.raises(ValueError):
        native.jieba_spans("abc", {}, 0)  # log(0): jieba raises too
    with pytest.raises(ValueError):
        native.jieba_spans("ab", {"a": -1}, 10)
    assert native.jieba_spans("ab", {"ab": 3, "a": 0}, 10) == ((0, 2),)


def test_another_jieba_version_segments_with_jieba_itself(segmenter: verify.JiebaSegmenter, monkeypatch: pytest.MonkeyPatch) -> None:
    """jieba_spans reproduces jieba 0.42's algorithm: under any other version jieba itself segments."""
    freq, total = segmenter.dictionary()
    this = verify.JiebaSegmenter.taught(freq, total)
    assert this.spans("加我微信最好") == ((0, 4), (4, 6)) and this._native is True  # the C path, under 0.42.1
    monkeypatch.setattr(verify, "_JIEBA_SAME_ALGORITHM", verify.re.compile("never$"))
    monkeypatch.setattr(verify, "_jieba_spans", lambda *a: pytest.fail("C path used under another jieba version"))
    other = verify.JiebaSegmenter.taught(freq, total)
    assert other.spans("加我微信最好") == _jieba(other._tk, "加我微信最好") == ((0, 4), (4, 6))


def test_teaching_gives_jiebas_own_dictionary(checker: Checker, monkeypatch: pytest.MonkeyPatch) -> None:
    """The taught dictionary (its words' frequencies from the C segmentation) is the one jieba's
    own ``add_word``/``suggest_freq`` make, on every rule term and exception and odd words."""
    freq, total = verify.JiebaSegmenter().dictionary()  # jieba's dictionary alone
    words = sorted({t for r in checker.rules.rules for t in (*r.terms, *r.exceptions)})
    words += ["ab 12", "微信+qq", "１２３", "\u9fd6\u9fd6", "最好😀最好", "a\nb", "x"]
    protected = words[::3]
    fast = verify.JiebaSegmenter(words, protected, dictionary=(dict(freq), total))
    monkeypatch.setattr(verify, "_native_segmentation", lambda tk: False)
    slow = verify.JiebaSegmenter(words, protected, dictionary=(dict(freq), total))
    assert fast._native is True and slow._native is False
    assert fast.dictionary() == slow.dictionary()
    assert fast.dictionary()[1] > total  # something was taught

"""The paraphrase model: its text format, its scoring, and how the engine reports it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livestream_compliance import ComplianceError, RuleError, Severity, Source, build_checker, load_rule_set
from livestream_compliance.classifier import BatchScorer, ModelError, _grams, features, format_model, parse_model
from livestream_compliance.rules import build_rule_set

FIXTURES = Path(__file__).parent / "fixtures"
TINY = (FIXTURES / "models" / "tiny.tsv").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tiny():
    return parse_model(TINY, "tiny.tsv")


@pytest.fixture(scope="module")
def ck(tiny):
    return build_checker(load_rule_set([FIXTURES / "rules" / "classifier"], defaults=False), model=tiny)


def test_parse_reads_every_part(tiny) -> None:
    assert tiny.version == "fixture1"
    assert tiny.categories == ("efficacy_guarantee", "abuse")
    assert tiny.thresholds == {Source.HOST: 0.7}
    assert tiny.sources == frozenset({Source.HOST})
    assert tiny.weights[Source.HOST]["保证"] == (1.0, -0.5)
    assert tiny.weights[Source.CHAT]["蠢货"] == (0.0, 3.0)  # weights without a threshold serve nothing


def test_format_round_trips(tiny) -> None:
    text = format_model(tiny.version, tiny.categories, tiny.thresholds, tiny.weights, ["header"])
    again = parse_model(text)
    assert again == tiny
    assert text.startswith("# header\n")


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("@categories\ta,b\n@threshold\thost\t0.7\n", "m.tsv:", "@version and @categories are required"),
        ("@version\t1\n@categories\ta,b\n@threshold\thost\t0.3\n", "m.tsv:3", "not in [0.5, 1)"),
        ("@version\t1\n@categories\ta,b\n@threshold\tviewer\t0.8\n", "m.tsv:3", "viewer"),
        ("@version\t1\n@categories\ta,b\nhost\t见效\t1\n", "m.tsv:3", "1 weights for 2 categories"),
        ("@version\t1\n@categories\ta,b\nhost\t见效\t1 x\n", "m.tsv:3", "could not convert"),
        ("@version\t1\n@categories\ta,b\nhost\t见效\n", "m.tsv:3", "not enough values"),
        ("@version\t1\n@bias\t2\n", "m.tsv:2", "unknown directive '@bias'"),
        ("@version\t1\n@categories\ta,b\n@weights\thost\tAAAA\n", "m.tsv:3", "before the @grams"),
        ("@version\t1\n@categories\ta,b\n@grams\thost\tx\ty\n@weights\thost\tAAAAAA==\n", "m.tsv:4", "1 weights for 2 n-grams x 2 categories"),
        ("@version\t1\n@categories\ta,b\n@grams\thost\tx\n@weights\thost\t!!\n", "m.tsv:4", ""),
    ],
)
def test_parse_errors_name_file_and_line(text: str, where: str, why: str) -> None:
    with pytest.raises(ModelError) as exc:
        parse_model(text, "m.tsv")
    assert isinstance(exc.value, ComplianceError)
    assert where in str(exc.value) and why in str(exc.value)


def test_features_are_cjk_ngrams_within_runs() -> None:
    assert features("保证见效a你好") == ["保证", "证见", "见效", "保证见", "证见效", "你好"]
    assert features("a1") == []


def test_scores_and_classify(tiny) -> None:
    p = tiny.scores("三天见效", Source.HOST)
    assert p[0] == pytest.approx(1 / (1 + math.exp(-2.375)))
    assert p[1] == pytest.approx(0.5)
    verdict = tiny.classify("三天见效", Source.HOST)
    assert verdict is not None and [c for c, _ in verdict.categories] == ["efficacy_guarantee"]
    assert tiny.evidence("三天见效", Source.HOST, "efficacy_guarantee") == ("见效", "天见", "三天见")
    assert tiny.classify("见效必须看体质", Source.HOST) is None  # 2 - 3: below
    assert tiny.classify("今天天气好", Source.HOST) is None  # no known n-gram
    assert tiny.classify("你这个蠢货", Source.CHAT) is None  # no chat threshold


_ALPHABET = "保证见效必须三天蠢货你好a1 ，"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=_ALPHABET, max_size=30))
def test_fast_scoring_equals_feature_scoring(tiny, text: str) -> None:
    """classify() looks up every 2-/3-gram (``_grams``), training uses ``features``: same sums."""
    table = tiny.weights[Source.HOST]
    assert {g for g in _grams(text) if g in table} == {g for g in features(text) if g in table}
    expected = [c for c, p in zip(tiny.categories, tiny.scores(text, Source.HOST)) if p >= 0.7]
    verdict = tiny.classify(text, Source.HOST)
    got = [] if verdict is None else sorted(c for c, _ in verdict.categories)
    assert got == sorted(expected)


def test_engine_reports_a_classifier_rule_over_the_stripped_line(ck) -> None:
    (f,) = ck.check(" 保证见效 ", Source.HOST)
    assert (f.rule_id, f.category, f.severity, f.start, f.end, f.text) == (
        "P-EFFICACY", "efficacy_guarantee", Severity.WARNING, 1, 5, "保证见效")
    assert f.matched == "见效/保证"
    assert f.message == "疑似功效保证。" and f.legal_basis[0].article == "第十六条"


def test_model_is_asked_only_when_no_rule_flagged(ck) -> None:
    findings = ck.check("保证见效 无效退款", Source.HOST)
    assert [f.rule_id for f in findings] == ["T-REFUND"]


def test_model_respects_source_product_and_crossing(ck) -> None:
    assert ck.check("你这个蠢货", Source.CHAT) == ()  # the model serves host speech only
    assert [f.rule_id for f in ck.check("你这个蠢货", Source.HOST)] == ["P-ABUSE"]
    assert ck.check("三天见效", Source.HOST, "drug") == ()  # exempt product
    assert [f.rule_id for f in ck.check("三天见效", Source.HOST, "food")] == ["P-EFFICACY"]
    # a session's join check asks only for findings across the join: never the model's
    assert ck.check("三天见效", Source.HOST, crossing=2) == ()


def test_second_category_when_the_first_does_not_apply(tiny) -> None:
    text = format_model("2", tiny.categories, tiny.thresholds,
                        {Source.HOST: {"见效": (2.0, 0.0), "蠢货": (0.0, 3.0)}})
    ck = build_checker(load_rule_set([FIXTURES / "rules" / "classifier"], defaults=False), model=parse_model(text))
    # both categories above threshold; efficacy is exempt for drugs, so abuse is reported
    assert [f.rule_id for f in ck.check("蠢货见效", Source.HOST, "drug")] == ["P-ABUSE"]
    assert [f.rule_id for f in ck.check("蠢货见效", Source.HOST, "food")] == ["P-ABUSE"]  # abuse scores higher


def test_batch_equals_per_line(ck) -> None:
    lines = ["三天见效", "保证见效 无效退款", "你好", "", "  你这个蠢货", "见效必须看体质"] * 3
    for source in Source:
        assert ck.check_batch(lines, source) == [ck.check(t, source) for t in lines]
    long = lines * 2000  # the vectorised batch path
    assert ck.check_batch(long, Source.HOST) == [ck.check(t, Source.HOST) for t in long]


def test_explain_shows_the_model(ck) -> None:
    ex = ck.explain("三天见效", Source.HOST)
    (c,) = [c for c in ex.candidates if c.rule_id == "P-EFFICACY"]
    assert c.verdict == "kept" and "paraphrase model p=0.91" in c.detail
    assert [f.rule_id for f in ex.findings] == ["P-EFFICACY"]
    ex = ck.explain("三天见效", Source.HOST, "drug")
    assert [c.verdict for c in ex.candidates if c.rule_id == "P-EFFICACY"] == ["product"]


def test_without_a_model_classifier_rules_are_silent() -> None:
    ck = build_checker(load_rule_set([FIXTURES / "rules" / "classifier"], defaults=False))
    assert ck.check("三天见效", Source.HOST) == ()


def test_a_classifier_rule_takes_no_terms() -> None:
    text = (FIXTURES / "rules" / "classifier" / "pack.toml").read_text(encoding="utf-8")
    bad = text.replace('classifier = true\nexempt_products', 'classifier = true\nterms = ["见效"]\nexempt_products')
    with pytest.raises(RuleError) as exc:
        build_rule_set([[("bad.toml", bad)]])
    (issue,) = exc.value.issues
    assert (issue.file, issue.rule_id) == ("bad.toml", "P-EFFICACY")
    assert "classifier rule has no terms" in issue.message


def test_default_checker_ships_the_model_and_its_rules(checker) -> None:
    assert checker.model is not None and Source.HOST in checker.model.sources
    para = {r.category for r in checker.rules.rules if r.classifier}
    assert para <= set(checker.model.categories) and len(para) >= 12


def test_check_batch_and_explain_agree_on_lines_read_through_rebus_emoji(checker) -> None:
    """Both views' verdicts decide what the model may report, in check, check_batch and explain."""
    import json

    labelled = Path(__file__).parent.parent / "benchmarks" / "labelled"
    rebus = set(map(chr, checker.normalizer.rebus))
    rows = [json.loads(line) for f in sorted(labelled.glob("*.jsonl")) for line in f.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    lines = [r for r in rows if r["source"] == "host" and not rebus.isdisjoint(r["text"])]
    assert len(lines) > 50
    for r in lines:
        one = checker.check(r["text"], Source.HOST, r["product"])
        assert checker.explain(r["text"], Source.HOST, r["product"]).findings == one, r["text"]
        assert checker.check_batch([r["text"], "你好"], Source.HOST, r["product"])[0] == one, r["text"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=_ALPHABET.replace(" ", "") + "。", max_size=30), min_size=1, max_size=12))
def test_batch_scorer_keeps_every_line_the_model_flags(tiny, lines: list[str]) -> None:
    """BatchScorer is a filter: every line classify() flags is among its lines, and every line it
    keeps has a category sum within rounding of the limit."""
    norms = [t.replace("\n", "") for t in lines]
    reaching = set(BatchScorer(tiny, Source.HOST).lines_reaching("\n".join(norms)))
    limit = tiny.limit(Source.HOST)
    for i, norm in enumerate(norms):
        flagged = tiny.classify(norm, Source.HOST) is not None
        if flagged:
            assert i in reaching, norm
        if i in reaching:
            sums = [math.log(p / (1 - p)) for p in tiny.scores(norm, Source.HOST)]
            assert max(sums) >= limit - 1e-5 and len(norm) >= tiny.min_length, norm


def test_batch_scorer_on_the_shipped_model_and_labelled_host_lines(checker) -> None:
    """The shipped model scored in one batch keeps exactly the host lines it flags one by one
    (nothing lies within rounding of the threshold), and check_batch reports what check does."""
    import json

    labelled = Path(__file__).parent.parent / "benchmarks" / "labelled"
    texts = [json.loads(line)["text"] for f in sorted(labelled.glob("*.jsonl"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip() and '"host"' in line]
    assert len(texts) > 1000
    model = checker.model
    norms = [checker.normalize(t) for t in texts]
    flagged = [i for i, n in enumerate(norms) if len(n) >= model.min_length and model.classify(n, Source.HOST) is not None]
    assert len(flagged) > 300
    assert BatchScorer(model, Source.HOST).lines_reaching("\n".join(norms)) == flagged
    assert checker.check_batch(texts, Source.HOST) == [checker.check(t, Source.HOST) for t in texts]


def test_check_and_explain_agree_where_a_glued_latin_term_judges_a_category(checker) -> None:
    """check() takes the lean no-finding path of verification and collects the categories a glued
    Latin term judges lawful there; explain() builds the whole trace. The model must see the same."""
    import json
    import random

    labelled = Path(__file__).parent.parent / "benchmarks" / "labelled"
    host = [json.loads(line)["text"] for f in sorted(labelled.glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip() and '"host"' in line]
    rng = random.Random(11)
    alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
    glued = ["wxq", "vxx", "qq9", "sbz", "2b0", "jdk", "tbb", "pddx"]  # Latin-edged terms inside Latin words
    lines = [
        f"{rng.choice(glued)}{''.join(rng.choice(alnum) for _ in range(rng.randrange(0, 4)))}{t}{rng.choice(glued)}"
        for t in rng.sample(host, 400)
    ]
    # a diversion term glued into a Latin word (vx in qwevx) is judged lawful there by its word
    # boundary, which keeps the model's diversion verdict on the Chinese words off the line
    lines += [f"{pre}我我给你找个地方聊{post}" for pre in ("qwevx", "abwxq", "xxv") for post in ("", "zz9")]
    for text in lines:
        for product in (None, "cosmetics"):
            assert checker.check(text, Source.HOST, product) == checker.explain(text, Source.HOST, product).findings, text
    assert checker.check_batch(lines, Source.HOST) == [checker.check(t, Source.HOST) for t in lines]


# --------------------------------------------------------------------------- the C prefilter
def _model_scanner(model, source, grams: bool = True):  # type: ignore[no-untyped-def]
    """The engine's ModelScanner (grams: with the keys, so it looks n-grams up in a table rather
    than walking the automaton), the n-gram matcher and the weight rows."""
    from livestream_compliance.matcher import build_matcher

    native = pytest.importorskip("livestream_compliance._native")
    table = model.weights[source]
    rows = list(table.values())
    ngrams = build_matcher(list(table), "native", small=True)
    keys = list(table) if grams else None
    return native.ModelScanner(ngrams.automaton, rows, model.limit(source), keys), ngrams, rows


def _scanner_texts(checker, model, source, n: int, seed: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Rule examples, and random strings of the model's own n-grams (many of which reach the limit)."""
    import random

    rng = random.Random(seed)
    grams = [g for g, row in model.weights[source].items() if max(row) > 0]
    texts = [checker.normalize(e.text) for r in checker.rules.rules for e in (*r.must_match, *r.must_not_match)]
    texts += ["".join(rng.choice(grams) for _ in range(rng.randint(1, 12))) for _ in range(n)]
    return texts


@pytest.mark.parametrize("grams", [True, False], ids=["gram-table", "automaton"])
def test_model_scanner_is_none_only_where_the_model_says_no(checker, grams: bool) -> None:  # type: ignore[no-untyped-def]
    """ModelScanner.scan is None only where the model's decision is None; elsewhere it is the very
    set find_keys builds (iteration order included: the model sums floats in that order)."""
    model = checker.model
    (source,) = model.sources  # the default model serves host speech
    scanner, ngrams, rows = _model_scanner(model, source, grams)
    nones = sets = reaching = 0
    for text in _scanner_texts(checker, model, source, 3000, 7):
        known = ngrams.find_keys(text)
        got = scanner.scan(text)
        verdict = model.decide([rows[i] for i in known], source)
        if got is None:
            nones += 1
            assert verdict is None, text
        else:
            sets += 1
            assert got == known and list(got) == list(known), text
            reaching += verdict is not None
    assert nones > 100 and sets > 100 and reaching > 10  # both answers, and lines the model flags, were met


def test_model_scanner_errors() -> None:
    native = pytest.importorskip("livestream_compliance._native")
    a = native.Automaton(["ab", "b"])
    with pytest.raises(ValueError, match="1 rows for an automaton of 2 keys"):
        native.ModelScanner(a, [(1.0,)], 0.5)
    with pytest.raises(ValueError, match="row 1 has 1 weights"):
        native.ModelScanner(a, [(1.0, 2.0), (1.0,)], 0.5)
    with pytest.raises(ValueError, match="not finite"):
        native.ModelScanner(a, [(1.0,), (math.inf,)], 0.5)
    with pytest.raises(TypeError):
        native.ModelScanner(a, [(1.0,), ("x",)], 0.5)
    with pytest.raises(TypeError):
        native.ModelScanner("not an automaton", [], 0.5)
    s = native.ModelScanner(a, [(1.0,), (0.25,)], 1.1)
    assert s.scan("xx") is None and s.scan("ab") == {0, 1}  # 1.25 reaches 1.1
    assert s.scan("b b") is None  # one b counted once: 0.25
    with pytest.raises(TypeError):
        s.scan(b"ab")
    assert native.ModelScanner(native.Automaton([]), [], 0.0).scan("abc") is None


def test_model_scanner_gram_table_meets_what_the_automaton_meets() -> None:
    """With the keys (two or three code points each, none repeated) the scanner looks n-grams up in
    a table; it meets the same keys in the same order as the automaton walk, whatever the text
    (code points beyond the dense range, characters no key holds, overlaps); other keys keep the walk."""
    import random

    from livestream_compliance.matcher import build_matcher

    native = pytest.importorskip("livestream_compliance._native")
    rng = random.Random(5)
    alphabet = list("最好的一二三全网低价") + ["\U00020001", "\U0002A6D6", "x"]
    for trial in range(40):
        keys = list(dict.fromkeys("".join(rng.choice(alphabet) for _ in range(rng.choice((2, 3)))) for _ in range(30)))
        auto = build_matcher(keys, "native", small=True).automaton
        rows = [(1.0,)] * len(keys)
        table = native.ModelScanner(auto, rows, -1.0, keys)  # a limit every line reaches: the set is returned
        walk = native.ModelScanner(auto, rows, -1.0)
        for _ in range(50):
            text = "".join(rng.choice(alphabet + ["?"]) for _ in range(rng.randint(0, 30)))
            want = auto.find_keys(text)
            assert list(table.scan(text)) == list(walk.scan(text)) == list(want), (keys, text)
    # keys of other lengths, or repeated ones: the automaton is walked, with the same answers
    for keys in (["ab", "abcd", "b"], ["ab", "ab", "bc"]):
        auto = build_matcher(keys, "native", small=True).automaton
        s = native.ModelScanner(auto, [(1.0,)] * len(keys), -1.0, keys)
        assert list(s.scan("xabcdab")) == list(auto.find_keys("xabcdab"))
    auto = native.Automaton(["ab", "bc"])
    with pytest.raises(ValueError, match="1 keys for an automaton of 2"):
        native.ModelScanner(auto, [(1.0,), (1.0,)], 0.5, ["ab"])
    with pytest.raises(TypeError):
        native.ModelScanner(auto, [(1.0,), (1.0,)], 0.5, ["ab", 3])

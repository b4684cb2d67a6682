"""Leakage and statistics against hand-computed expectations on constructed vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparse_demo.analysis import (
    Analyzer,
    batch_leakage,
    classify_token,
    leakage_report,
    normalize_surface,
    vector_stats,
)
from sparse_demo.encoder import SpladeEncoder
from sparse_demo.korean import StopwordRule, is_punctuation, strip_marker


def test_leakage_on_constructed_vector():
    # weights deliberately unsorted; ranks by weight: 있습니다(3.0) 당뇨병(2.0) <s>(1.5) 치료(1.0) 수(0.5) .(0.25)
    weights = [2.0, 0.5, 3.0, 1.5, 1.0, 0.25]
    cats = ["content", "stopword", "stopword", "special", "content", "punctuation"]
    toks = ["당뇨병", "수", "있습니다", "<s>", "치료", "."]
    total = 2.0 + 0.5 + 3.0 + 1.5 + 1.0 + 0.25  # 8.25
    r = leakage_report(weights, cats, toks, top_k=3)
    assert r.total_mass == pytest.approx(total)
    assert r.stopword_mass == pytest.approx(3.5)
    assert r.stopword_mass_ratio == pytest.approx(3.5 / 8.25)
    assert r.special_mass_ratio == pytest.approx(1.5 / 8.25)
    # top-3 slots: 있습니다, 당뇨병, <s>  -> 1 stopword, 1 special
    assert r.stopword_topk_ratio == pytest.approx(1 / 3)
    assert r.special_topk_ratio == pytest.approx(1 / 3)
    assert r.first_stopword_rank == 1
    assert r.stopword_tokens == ("있습니다",)
    assert r.special_tokens == ("<s>",)
    # a top-k larger than the vector uses every active slot
    r10 = leakage_report(weights, cats, toks, top_k=10)
    assert r10.stopword_topk_ratio == pytest.approx(2 / 6)


def test_leakage_without_stopwords_and_empty():
    r = leakage_report([1.0, 2.0], ["content", "content"], top_k=5)
    assert r.first_stopword_rank is None and r.stopword_mass_ratio == 0.0
    e = leakage_report([], [], top_k=5)
    assert e.total_mass == 0 and e.stopword_topk_ratio == 0.0
    with pytest.raises(ValueError):
        leakage_report([1.0], [], top_k=5)
    with pytest.raises(ValueError):
        leakage_report([1.0], ["content"], top_k=0)


def test_vector_stats_by_hand():
    w = np.array([0.5, 2.0, 1.0, 0.0])
    s = vector_stats(w, top_k=2)
    assert s.active_dims == 3
    assert s.l1 == pytest.approx(3.5)
    assert s.flops == pytest.approx(0.25 + 4.0 + 1.0)
    assert s.topk_mass_ratio == pytest.approx(3.0 / 3.5)


@pytest.mark.parametrize(
    ("raw", "tid", "expected"),
    [
        ("<s>", 0, "special"),
        ("▁있습니다", 10, "stopword"),
        ("▁수", 11, "stopword"),
        ("하는", 12, "stopword"),
        ("에서", 13, "stopword"),  # particle: in the list and by the POS rule
        ("▁혈당", 14, "content"),
        ("##료", 15, "content"),
        ("▁.", 16, "punctuation"),
        ("▁", 17, "punctuation"),
        ("?!", 18, "punctuation"),
        ("▁the", 19, "stopword"),
        ("▁Python", 20, "content"),
    ],
)
def test_classify_token(raw, tid, expected):
    assert classify_token(raw, tid, frozenset({0, 1, 2}), StopwordRule()) == expected


def test_pos_rule_catches_unlisted_function_morphemes():
    rule = StopwordRule(frozenset({"수"}))  # tiny list: only the POS rule can catch "에게서는"
    assert rule.is_stopword("▁에게서는")
    assert not StopwordRule(frozenset({"수"}), use_pos_rule=False).is_stopword("▁에게서는")
    assert not rule.is_stopword("▁당뇨병")


def test_normalize_surface_across_vocabularies():
    assert normalize_surface("▁치료") == normalize_surface("치료") == normalize_surface("##치료") == "치료"
    assert normalize_surface("▁Python") == "python"


@pytest.fixture(scope="module")
def analyzer(tiny_model_dir):
    return Analyzer(SpladeEncoder.load(str(tiny_model_dir), device="cpu"))


def test_rows_describe_source_positions(analyzer):
    a = analyzer.analyze(["당뇨병 치료 방법"], top_k=10)[0]
    enc = a.encoding
    assert len(a.top(10)) == 10
    for row in a.rows:
        s, e = enc.offsets[row.position]
        assert row.source_text == enc.text[s:e]
        assert row.origin == ("input" if row.id in enc.input_ids else "expansion")
        if row.source_text:
            assert row.morpheme is not None and row.morpheme.split("/")[0] in enc.text
    # with the list alone (no context-dependent POS rule) the stopword mass is the plain sum of
    # the weights whose surface is listed
    rule = StopwordRule(use_pos_rule=False)
    listed = Analyzer(analyzer.encoder, rule).analyze_encoding(enc, top_k=10)
    vec = enc.vector
    stop = sum(float(w) for t, w in zip(vec.token_ids, vec.weights)
               if int(t) not in analyzer.encoder.special_ids and rule.in_list(analyzer.encoder.id_to_token(int(t)))
               and strip_marker(analyzer.encoder.id_to_token(int(t))) and not is_punctuation(
                   strip_marker(analyzer.encoder.id_to_token(int(t)))))
    assert listed.leakage.stopword_mass == pytest.approx(stop, rel=1e-6)
    assert a.stats.l1 == pytest.approx(float(np.sum(vec.weights, dtype=np.float64)), rel=1e-9)


def test_batch_leakage_aggregates(analyzer):
    queries = ["당뇨병 치료 방법", "있습니다 수 하는", "고혈압"]
    analyses = analyzer.analyze(queries, top_k=5)
    b = batch_leakage(analyses, top_k=5)
    assert b.summary["queries"] == 3
    expected = sum(a.leakage.stopword_mass_ratio for a in analyses) / 3
    assert b.summary["mean_stopword_mass_ratio"] == pytest.approx(expected, abs=1e-4)
    top5 = [any(r.category == "stopword" for r in a.rows[:5]) for a in analyses]
    assert b.summary["share_stopword_in_top5"] == pytest.approx(sum(top5) / 3)
    assert list(b.per_query["query"]) == queries
    for _, row in b.leaking_tokens.iterrows():
        n = sum(any(r.token == row["token"] for r in a.rows[:5]) for a in analyses)
        assert row["queries"] == n
    assert batch_leakage([], 5).summary == {"queries": 0}


def test_truncation_note(analyzer):
    a = analyzer.analyze(["당뇨병 " * 400], top_k=5)[0]
    assert a.encoding.truncated and any("truncated" in n for n in a.notes)
    assert math.isfinite(a.stats.l1)


def test_pos_rule_does_not_flag_fragments_of_content_words(tiny_model_dir):
    """뇨 alone looks like an ending to Kiwi; inside 당뇨병 of the query it is part of a noun."""
    enc = SpladeEncoder.load(str(tiny_model_dir), device="cpu")
    analyzer = Analyzer(enc, StopwordRule(frozenset({"수"})))
    a = analyzer.analyze(["당뇨병 치료"], top_k=5)[0]
    fragment_ids = [i for i in a.encoding.input_ids if enc.id_to_token(i) == "뇨"]
    if not fragment_ids:
        pytest.skip("this tokenizer does not split 당뇨병 into a 뇨 piece")
    assert StopwordRule(frozenset({"수"})).is_stopword("뇨")  # the POS rule alone says stopword
    where = np.flatnonzero(a.encoding.vector.token_ids == fragment_ids[0])
    assert where.size == 1 and a.categories[where[0]] == "content"
    # a listed stopword stays a stopword even inside the input
    listed = Analyzer(enc, StopwordRule(frozenset({"뇨"}))).analyze(["당뇨병 치료"], top_k=5)[0]
    assert listed.categories[where[0]] == "stopword"

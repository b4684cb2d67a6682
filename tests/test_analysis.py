"""Leakage and statistics against hand-computed expectations on constructed vectors."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sparse_demo.analysis import (
    CATEGORIES,
    Analyzer,
    LeakageReport,
    QueryAnalysis,
    TokenRow,
    VectorStats,
    batch_leakage,
    classify_token,
    in_context_categories,
    leakage_report,
    morpheme_category,
    normalize_surface,
    vector_stats,
)
from sparse_demo.encoder import Encoding, SparseVector, SpladeEncoder
from sparse_demo.korean import Morpheme, StopwordRule


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
    assert s.sum_squares == pytest.approx(0.25 + 4.0 + 1.0)
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
        ("▁", 17, "whitespace"),  # a bare word-start piece is whitespace, not punctuation
        ("?!", 18, "punctuation"),
        ("▁the", 19, "stopword"),
        ("▁Python", 20, "content"),
    ],
)
def test_classify_token(raw, tid, expected):
    assert classify_token(raw, tid, frozenset({0, 1, 2}), StopwordRule()) == expected


# "전세 보증금은" as XLM-R splits it (▁전 세 ▁보증금 은) and as Kiwi analyses it, written out by hand so the
# test does not depend on either: 전세/NNG [0, 2), 보증금/NNG [3, 6), 은/JX [6, 7).
_TEXT_MORPHS = [Morpheme("전세", "NNG", 0, 2), Morpheme("보증금", "NNG", 3, 6), Morpheme("은", "JX", 6, 7)]
_INPUT_IDS = (0, 10, 11, 12, 13, 2)  # <s> ▁전 세 ▁보증금 은 </s>
_OFFSETS = ((0, 0), (0, 1), (1, 2), (3, 6), (6, 7), (0, 0))


def test_in_context_categories_on_fixed_kiwi_output():
    rule = StopwordRule()
    # the premise: by vocabulary entry, 전 (a listed word) and 은 are stopwords, 보증금 is content
    assert [classify_token(t, i, frozenset({0, 2}), rule) for t, i in [("▁전", 10), ("은", 13), ("▁보증금", 12)]] == [
        "stopword",
        "stopword",
        "content",
    ]
    # vector: ▁보증금, ▁전, 은 (input), 임대 and 을 (expansions), a bare ▁, <s>
    token_ids = [12, 10, 13, 20, 21, 6, 0]
    vocab = ["content", "stopword", "stopword", "content", "stopword", "whitespace", "special"]
    cats = in_context_categories(token_ids, vocab, _INPUT_IDS, _OFFSETS, _TEXT_MORPHS, rule)
    assert cats.tolist() == ["content", "content", "stopword", "content", "stopword", "whitespace", "special"]
    assert morpheme_category(Morpheme("수", "NNB", 0, 1), rule) == "stopword"  # a listed morpheme form
    assert morpheme_category(Morpheme("권", "XSN", 0, 1), rule) == "content"  # 권 of 청구권: part of the noun
    assert morpheme_category(Morpheme("적", "XSN", 0, 1), rule) == "content"  # listed, but here a noun's suffix
    assert morpheme_category(Morpheme("하", "XSV", 0, 1), rule) == "stopword"  # 하 of 치료하다: a light-verb suffix
    assert morpheme_category(Morpheme("?", "SF", 0, 1), rule) == "punctuation"
    # without the POS rule, an unlisted particle form counts as content
    assert morpheme_category(
        Morpheme("에게서는", "JKB", 0, 4), StopwordRule(frozenset({"수"}), use_pos_rule=False)
    ) == ("content")


def test_in_context_categories_content_wins_across_occurrences():
    # 은 twice: once as a particle, once as the first syllable of 은행/NNG -> the token carries content here
    morphs = [Morpheme("은행", "NNG", 0, 2), Morpheme("은", "JX", 2, 3)]
    cats = in_context_categories(
        [13], ["stopword"], (0, 13, 14, 13, 2), ((0, 0), (0, 1), (1, 2), (2, 3), (0, 0)), morphs, StopwordRule()
    )
    assert cats.tolist() == ["content"]
    # a piece no morpheme covers keeps its vocabulary-level category
    assert in_context_categories([13], ["stopword"], (13,), ((5, 6),), morphs, StopwordRule()).tolist() == ["stopword"]


def test_both_leakage_figures_by_hand():
    weights = [3.0, 2.0, 1.0, 0.5, 0.25, 0.74, 0.5]  # ▁보증금 ▁전 은 임대 을 ▁ <s>
    vocab = ["content", "stopword", "stopword", "content", "stopword", "whitespace", "special"]
    cats = in_context_categories([12, 10, 13, 20, 21, 6, 0], vocab, _INPUT_IDS, _OFFSETS, _TEXT_MORPHS, StopwordRule())
    r = leakage_report(weights, cats, None, top_k=3, vocab_categories=vocab)
    total = 3.0 + 2.0 + 1.0 + 0.5 + 0.25 + 0.74 + 0.5  # 7.99
    # in context: 은 (particle) and 을 (expansion, a stopword entry); 전 of 전세 is content
    assert r.stopword_mass == pytest.approx(1.0 + 0.25)
    assert r.stopword_mass_ratio == pytest.approx(1.25 / total)
    # vocabulary-level: 전 counts too
    assert r.vocab_stopword_mass == pytest.approx(2.0 + 1.0 + 0.25)
    assert r.vocab_stopword_mass_ratio == pytest.approx(3.25 / total)
    # top-3 slots ▁보증금 ▁전 은: one stopword in context, two by vocabulary entry
    assert r.stopword_topk_ratio == pytest.approx(1 / 3) and r.vocab_stopword_topk_ratio == pytest.approx(2 / 3)
    assert r.first_stopword_rank == 3
    assert r.special_mass_ratio == pytest.approx(0.5 / total)  # the bare ▁ is neither stopword nor special
    # a report without vocabulary-level categories gives the same figure twice
    same = leakage_report(weights, cats, None, top_k=3)
    assert same.vocab_stopword_mass_ratio == same.stopword_mass_ratio == pytest.approx(1.25 / total)
    with pytest.raises(ValueError, match="vocabulary-level"):
        leakage_report(weights, cats, None, top_k=3, vocab_categories=vocab[:2])


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


def _card_vector(model_dir, text: str) -> np.ndarray:
    """The card's formula written out on the full logits: ``max_t log(1 + relu(logits[t]))`` (no padding)."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    with torch.no_grad():
        logits = model(**tokenizer(text, return_tensors="pt")).logits[0].double()
    return torch.log1p(torch.relu(logits)).max(dim=0).values.numpy()


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


@pytest.mark.slow
def test_mass_and_list_leakage_match_the_card_formula(analyzer, tiny_model_dir):
    """L1 and the stopword mass of a hand-picked list, from the card's formula on the model's raw logits."""
    from transformers import AutoTokenizer

    text = "당뇨병 치료 방법"
    card = _card_vector(tiny_model_dir, text)
    assert analyzer.analyze([text], top_k=10)[0].stats.l1 == pytest.approx(card.sum(), rel=1e-5)
    # a hand-picked list (no POS rule): the stopword mass is the card weight of each listed surface form,
    # with and without the SentencePiece word marker, looked up in the tokenizer's own vocabulary
    words = frozenset({"수", "있습니다", "하는", "에서", "것"})
    vocab = AutoTokenizer.from_pretrained(str(tiny_model_dir)).get_vocab()
    ids = [vocab[t] for w in words for t in (w, "▁" + w) if t in vocab]
    assert ids, "the tokenizer has none of the listed words"
    listed = Analyzer(analyzer.encoder, StopwordRule(words, use_pos_rule=False)).analyze([text], top_k=10)[0]
    assert listed.leakage.stopword_mass == pytest.approx(card[ids].sum(), rel=1e-5)
    assert listed.leakage.stopword_mass_ratio == pytest.approx(card[ids].sum() / card.sum(), rel=1e-5)
    assert set(listed.leakage.stopword_tokens) <= words
    # none of the listed words is in the text: every listed token is an expansion, judged by its vocabulary entry
    assert listed.leakage.vocab_stopword_mass == pytest.approx(card[ids].sum(), rel=1e-5)


def _hand_analysis(
    text: str,
    rows: list[tuple[str, str, float]],
    stop_ratio: float,
    special_ratio: float,
    topk_ratio: float,
    first_stop: int | None,
) -> QueryAnalysis:
    """A QueryAnalysis built by hand: ``rows`` are (token, category, weight) in rank order."""
    token_rows = [
        TokenRow(
            rank=i,
            token=t,
            raw=t,
            id=i,
            weight=w,
            position=0,
            source_subword=t,
            source_text=t,
            origin="input",
            category=c,
            morpheme=None,
        )
        for i, (t, c, w) in enumerate(rows, start=1)
    ]
    weights = np.array([w for _, _, w in rows], dtype=np.float32)
    vector = SparseVector(np.arange(len(rows), dtype=np.int64), weights, np.zeros(len(rows), dtype=np.int64))
    encoding = Encoding(text, (0,), ((0, 0),), vector, num_text_tokens=1)
    l1 = float(sum(w for _, _, w in rows))
    stats = VectorStats(active_dims=len(rows), l1=l1, sum_squares=0.0, top_k=3, topk_mass_ratio=0.0)
    leakage = LeakageReport(
        top_k=3,
        total_mass=l1,
        stopword_mass=stop_ratio * l1,
        special_mass=special_ratio * l1,
        stopword_mass_ratio=stop_ratio,
        special_mass_ratio=special_ratio,
        stopword_topk_ratio=topk_ratio,
        special_topk_ratio=0.0,
        first_stopword_rank=first_stop,
    )
    return QueryAnalysis(encoding, token_rows, stats, leakage, model="hand")


def test_batch_leakage_aggregates_by_hand():
    analyses = [
        # top-3: 당뇨, 은 (stopword), <s> (special)
        _hand_analysis(
            "q1",
            [("당뇨", "content", 2.0), ("은", "stopword", 1.0), ("<s>", "special", 0.5), ("치료", "content", 0.5)],
            0.25,
            0.125,
            1 / 3,
            2,
        ),
        # 은 at rank 1; 의 at rank 4: outside the top-3 but inside the top-5
        _hand_analysis(
            "q2",
            [("은", "stopword", 3.0), ("혈당", "content", 1.0), ("관리", "content", 0.5), ("의", "stopword", 0.2)],
            0.68,
            0.0,
            1 / 3,
            1,
        ),
        _hand_analysis("q3", [("전세", "content", 1.0)], 0.0, 0.0, 0.0, None),
    ]
    b = batch_leakage(analyses, top_k=3)
    assert b.summary == pytest.approx(
        {
            "queries": 3,
            "mean_stopword_mass_ratio": (0.25 + 0.68 + 0.0) / 3,
            "mean_vocab_stopword_mass_ratio": (0.25 + 0.68 + 0.0) / 3,  # built without vocabulary-level figures
            "mean_special_mass_ratio": 0.125 / 3,
            "mean_stopword_topk_ratio": (1 / 3 + 1 / 3) / 3,
            "mean_vocab_stopword_topk_ratio": (1 / 3 + 1 / 3) / 3,
            "mean_active_dims": (4 + 4 + 1) / 3,
            "share_stopword_in_top1": 1 / 3,  # q2 only
            "share_stopword_in_top5": 2 / 3,  # q1 (rank 2) and q2
        }
    )
    assert list(b.per_query["query"]) == ["q1", "q2", "q3"]
    ranks = b.per_query["first_stopword_rank"]
    assert ranks.iloc[:2].tolist() == [2, 1] and ranks.isna().iloc[2]
    assert list(b.per_query["top_tokens"]) == ["당뇨 은 <s>", "은 혈당 관리", "전세"]  # the top-3 only
    # leaking tokens: within each query's top-3 only (의 is rank 4), most frequent first
    leaking = b.leaking_tokens.set_index("token")
    assert list(b.leaking_tokens["token"]) == ["은", "<s>"]
    assert leaking.loc["은", "queries"] == 2 and leaking.loc["은", "mean_weight"] == pytest.approx((1.0 + 3.0) / 2)
    assert leaking.loc["은", "share_of_queries"] == pytest.approx(round(2 / 3, 4))
    assert leaking.loc["<s>", "category"] == "special" and leaking.loc["<s>", "queries"] == 1
    assert batch_leakage([], 5).summary == {"queries": 0}


def test_batch_leakage_on_model_output(analyzer):
    queries = ["당뇨병 치료 방법", "있습니다 수 하는", "고혈압"]
    b = batch_leakage(analyzer.analyze(queries, top_k=5), top_k=5)
    assert b.summary["queries"] == 3 and list(b.per_query["query"]) == queries
    assert 0.0 <= b.summary["mean_stopword_mass_ratio"] <= 1.0


@pytest.mark.slow
def test_category_cache_is_shared_across_threads(tiny_model_dir):
    """Analyzers built at once by concurrent handlers share one code array per (encoder, rule)."""
    encoder = SpladeEncoder.load(str(tiny_model_dir), device="cpu")
    rule = StopwordRule(frozenset({"수"}))
    start = threading.Barrier(8)

    def build(_: int) -> Analyzer:
        start.wait()
        return Analyzer(encoder, rule)

    with ThreadPoolExecutor(8) as pool:
        analyzers = list(pool.map(build, range(8)))
    assert len({id(a._codes) for a in analyzers}) == 1
    assert Analyzer(encoder, StopwordRule(frozenset({"것"})))._codes is not analyzers[0]._codes
    # concurrent classification of the same ids gives the single-threaded answer
    ids = np.arange(0, 2000, dtype=np.int64)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: a.categories(ids).copy(), analyzers[:4]))
    expected = [
        CATEGORIES.index(classify_token(encoder.id_to_token(int(i)), int(i), encoder.special_ids, rule)) for i in ids
    ]
    for got in results:
        assert got.tolist() == expected


def test_truncation_note(analyzer):
    a = analyzer.analyze(["당뇨병 " * 400], top_k=5)[0]
    assert a.encoding.truncated and any("truncated" in n for n in a.notes)
    assert math.isfinite(a.stats.l1)


@pytest.mark.slow
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
    # a listed piece inside a content morpheme of the input is content in context, a stopword by vocabulary entry
    listed = Analyzer(enc, StopwordRule(frozenset({"뇨"}))).analyze(["당뇨병 치료"], top_k=5)[0]
    assert listed.categories[where[0]] == "content" and listed.vocab_categories[where[0]] == "stopword"
    assert ("뇨", "content", "stopword") in listed.recategorised

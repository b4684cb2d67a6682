"""BM25: Lucene's formula checked by hand, OpenSearch's norms, and rankings equal to bm25s."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from sparse_demo.index.bm25 import (
    BM25Index,
    byte4_to_int,
    int_to_byte4,
    lucene_doc_length,
    top_k_indices,
)

DOCS = {
    "d1": ["혈당/NNG", "관리/NNG", "혈당/NNG", "운동/NNG"],
    "d2": ["운동/NNG", "필요/NNG"],
    "d3": ["소금/NNG", "섭취/NNG", "줄이/VV", "혈당/NNG", "관리/NNG", "필요/NNG"],
}


def hand_bm25(query: list[str], doc: list[str], docs: list[list[str]], k1=1.2, b=0.75) -> float:
    """The formula written out directly (no numpy, no code under test)."""
    n_docs = len(docs)
    avgdl = sum(len(d) for d in docs) / n_docs
    total = 0.0
    for term in query:
        n = sum(1 for d in docs if term in d)
        idf = math.log(1 + (n_docs - n + 0.5) / (n + 0.5))
        tf = doc.count(term)
        total += idf * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
    return total


def build(opensearch_compat: bool) -> BM25Index:
    idx = BM25Index(opensearch_compat=opensearch_compat)
    idx.add(list(DOCS), list(DOCS.values()))
    return idx


@pytest.mark.parametrize(
    "query",
    [["혈당/NNG"], ["혈당/NNG", "관리/NNG"], ["운동/NNG", "필요/NNG", "없음/NNG"], ["혈당/NNG", "혈당/NNG"]],
)
def test_scores_match_hand_computation(query):
    docs = list(DOCS.values())
    plain = {h.id: h.score for h in build(False).search(query, k=10)}
    compat = {h.id: h.score for h in build(True).search(query, k=10)}
    for doc_id, terms in DOCS.items():
        expected = hand_bm25(query, terms, docs)
        if expected == 0:
            assert doc_id not in plain
            continue
        assert plain[doc_id] == pytest.approx(expected, rel=1e-12)
        # OpenSearch's LegacyBM25Similarity scales by k1 + 1; lengths < 24 are stored exactly.
        assert compat[doc_id] == pytest.approx(2.2 * expected, rel=1e-6)


def test_first_query_numbers():
    # "혈당" is in d1 (tf 2, len 4) and d3 (tf 1, len 6); N = 3, avgdl = 4.
    idf = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))
    d1 = idf * 2 / (2 + 1.2 * (0.25 + 0.75 * 4 / 4))
    d3 = idf * 1 / (1 + 1.2 * (0.25 + 0.75 * 6 / 4))
    hits = build(False).search(["혈당/NNG"], k=10)
    assert [h.id for h in hits] == ["d1", "d3"]
    assert [h.score for h in hits] == pytest.approx([d1, d3], rel=1e-12)


def test_repeated_query_term_counts_twice():
    idx = build(False)
    one = {h.id: h.score for h in idx.search(["관리/NNG"])}
    two = {h.id: h.score for h in idx.search(["관리/NNG", "관리/NNG"])}
    assert two == pytest.approx({k: 2 * v for k, v in one.items()})


def test_documents_without_terms_are_not_counted():
    idx = BM25Index(opensearch_compat=False)
    idx.add(["a", "b", "empty"], [["x/NNG"], ["y/NNG"], []])
    assert idx.n_docs == 2
    assert idx.search(["x/NNG"])[0].score == pytest.approx(math.log(1 + 1.5 / 1.5) * 1 / (1 + 1.2))


def test_replacing_a_document():
    idx = build(False)
    idx.add(["d2"], [["소금/NNG"]])
    assert len(idx) == 3
    assert [h.id for h in idx.search(["소금/NNG"])] == ["d2", "d3"]
    assert idx.search(["필요/NNG"])[0].id == "d3"


def test_lucene_length_encoding():
    # Lengths below 24 are exact; longer ones keep 4 significant bits.
    assert [byte4_to_int(int_to_byte4(n)) for n in (0, 1, 23, 24, 25)] == [0, 1, 23, 24, 25]
    assert byte4_to_int(int_to_byte4(150)) == 144
    assert byte4_to_int(int_to_byte4(300)) == 280
    lengths = np.arange(0, 5000)
    decoded = lucene_doc_length(lengths)
    assert np.all(decoded <= lengths) and np.all(np.diff(decoded) >= 0)
    assert np.all(decoded[lengths >= 24] >= 0.875 * lengths[lengths >= 24])


def test_ties_broken_by_id():
    idx = BM25Index()
    idx.add(["c", "a", "b"], [["x/NNG"], ["x/NNG"], ["x/NNG"]])
    assert [h.id for h in idx.search(["x/NNG"])] == ["a", "b", "c"]


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k must"):
        build(False).search(["혈당/NNG"], k=k)


def test_bad_parameters():
    with pytest.raises(ValueError, match="b must"):
        BM25Index(b=1.5)
    with pytest.raises(ValueError, match="k1 must"):
        BM25Index(k1=-1)


def test_rankings_equal_bm25s_lucene():
    bm25s = pytest.importorskip("bm25s")
    rng = random.Random(7)
    vocab = [f"t{i}" for i in range(400)]
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf-like
    corpus = [rng.choices(vocab, weights, k=rng.randint(5, 120)) for _ in range(300)]
    ids = [f"doc{i:03d}" for i in range(len(corpus))]

    ours = BM25Index(opensearch_compat=False)
    ours.add(ids, corpus)
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(corpus, show_progress=False)

    for _ in range(40):
        query = list(dict.fromkeys(rng.choices(vocab, weights, k=rng.randint(1, 6))))
        ref_scores = ref.get_scores(query)
        our_scores = dict(zip(ids, ours.scores(query).tolist()))
        assert [our_scores[i] for i in ids] == pytest.approx(ref_scores.tolist(), rel=1e-5, abs=1e-6)
        hits = ours.search(query, k=10)
        order = sorted(range(len(ids)), key=lambda i: (-float(ref_scores[i]), ids[i]))
        ref_top = [ids[i] for i in order if ref_scores[i] > 0][:10]
        assert [h.id for h in hits] == ref_top


@pytest.mark.parametrize("k", [1, 10, 100])
def test_top_k_matches_a_full_sort(k):
    # Large enough for the block-max prefilter (>= 4 * k blocks of 128 rows), with many ties
    # and zeros; the expected order is a plain sort by (-score, id rank).
    rng = np.random.default_rng(k)
    n = 200_000
    scores = np.where(rng.random(n) < 0.7, rng.integers(0, 50, n) / 7.0, 0.0)
    id_rank = rng.permutation(n)
    expected = sorted((i for i in range(n) if scores[i] > 0), key=lambda i: (-scores[i], id_rank[i]))[:k]
    assert top_k_indices(scores, k, id_rank).tolist() == expected
    few = np.zeros(n)
    few[[5, 70_000, 123]] = [1.0, 3.0, 1.0]
    assert top_k_indices(few, k, np.arange(n)).tolist() == [70_000, 5, 123][:k]
    assert top_k_indices(np.zeros(n), k, np.arange(n)).tolist() == []


@pytest.mark.slow
def test_large_corpus_equals_bm25s_lucene():
    # Enough documents for the block-max top-k path; scores and rankings as bm25s computes them.
    bm25s = pytest.importorskip("bm25s")
    rng = np.random.default_rng(3)
    n_docs, vocab = 6_000, 300
    p = 1 / np.arange(1, vocab + 1)
    p /= p.sum()
    corpus = [[f"t{j}" for j in rng.choice(vocab, size=int(rng.integers(1, 40)), p=p)] for _ in range(n_docs)]
    ids = [f"d{i:05d}" for i in range(n_docs)]
    ours = BM25Index(opensearch_compat=False)
    ours.add(ids, corpus)
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(corpus, show_progress=False)
    for _ in range(20):
        query = list(dict.fromkeys(f"t{j}" for j in rng.choice(vocab, size=int(rng.integers(1, 8)), p=p)))
        ref_scores = np.asarray(ref.get_scores(query), dtype=np.float64)
        assert ours.scores(query) == pytest.approx(ref_scores, rel=1e-5, abs=1e-6)
        hits = ours.search(query, k=10)
        assert [h.score for h in hits] == pytest.approx(sorted(ref_scores[ref_scores > 0], reverse=True)[:10], rel=1e-5)

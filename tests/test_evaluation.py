"""Retrieval metrics, min-max hybrid and the paired randomization test against hand computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sparse_demo.evaluation import (
    hybrid_score_matrix,
    minmax_hybrid,
    paired_randomization_test,
    rankings_from_scores,
    retrieval_metrics,
)


def test_metrics_by_hand():
    rankings = [["a", "b", "c"], ["x", "y", "z", "w"], ["p", "q"]]
    golds = [{"b"}, {"z", "w"}, {"r"}]
    m = retrieval_metrics(rankings, golds, ks=(1, 2, 5))
    assert m.recall[1] == pytest.approx(0.0)
    assert m.recall[2] == pytest.approx((1 + 0 + 0) / 3)
    assert m.recall[5] == pytest.approx((1 + 1 + 0) / 3)
    assert m.mrr10 == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    ndcg1 = (1 / math.log2(3)) / 1.0
    ndcg2 = (1 / math.log2(4) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m.ndcg10 == pytest.approx((ndcg1 + ndcg2 + 0) / 3)
    assert m.reciprocal_ranks == pytest.approx((0.5, 1 / 3, 0.0))
    assert set(m.as_row()) == {"R@1", "R@2", "R@5", "MRR@10", "nDCG@10"}


def test_mrr_only_counts_top_ten_and_duplicates_once():
    ranking = [f"d{i}" for i in range(10)] + ["gold"]
    assert retrieval_metrics([ranking], [{"gold"}]).mrr10 == 0.0
    assert retrieval_metrics([["x", "x", "gold"]], [{"gold"}]).mrr10 == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("rankings", "golds", "match"),
    [([["a"]], [], "1 rankings but 0 gold"), ([["a"]], [set()], "empty gold"), ([["a"]], [{"a"}], "k must")],
)
def test_metric_errors(rankings, golds, match):
    ks = (0,) if match == "k must" else (1,)
    with pytest.raises(ValueError, match=match):
        retrieval_metrics(rankings, golds, ks=ks)


def test_rankings_from_scores_breaks_ties_by_index():
    scores = np.array([[0.1, 0.5, 0.5, 0.2], [3.0, 1.0, 2.0, 0.0]])
    assert rankings_from_scores(scores, ["a", "b", "c", "d"], k=3) == [["b", "c", "d"], ["a", "c", "b"]]


def test_minmax_hybrid_by_hand():
    a = {"d1": 10.0, "d2": 6.0, "d3": 2.0}
    b = {"d2": 4.0, "d4": 3.0, "d1": 1.0}
    fused = dict(minmax_hybrid(a, b, 0.3))
    # a normalised: d1 1, d2 0.5, d3 0.001 (OpenSearch floors a leg's minimum at 0.001);
    # b normalised: d2 1, d4 2/3, d1 0.001
    expected = {"d1": 0.3 * 1 + 0.7 * 0.001, "d2": 0.3 * 0.5 + 0.7 * 1, "d3": 0.3 * 0.001, "d4": 0.7 * 2 / 3}
    assert fused == pytest.approx(expected)
    assert [d for d, _ in minmax_hybrid(a, b, 0.3)] == ["d2", "d4", "d1", "d3"]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        minmax_hybrid(a, b, 1.5)


def test_hybrid_matrix_matches_dict_version():
    rng = np.random.default_rng(0)
    sa, sb = rng.random((4, 30)), rng.random((4, 30))
    mat = hybrid_score_matrix(sa, sb, 0.4, depth=5)
    for q in range(4):
        top_a = {j: sa[q, j] for j in np.argsort(-sa[q])[:5]}
        top_b = {j: sb[q, j] for j in np.argsort(-sb[q])[:5]}
        for doc, score in minmax_hybrid(top_a, top_b, 0.4):
            assert mat[q, doc] == pytest.approx(score)
        outside = set(range(30)) - set(top_a) - set(top_b)
        assert all(mat[q, j] == -np.inf for j in outside)


def test_randomization_test_exact_on_small_case():
    a, b = [0.0, 0.5, 1.0, 0.2], [1.0, 1.0, 1.0, 0.7]
    diff = np.subtract(b, a)
    observed = abs(diff.mean())
    flips = [abs(np.mean(np.array(s) * diff)) >= observed - 1e-12 for s in itertools.product([-1, 1], repeat=4)]
    exact = sum(flips) / 16  # = 2/16: only all-plus and all-minus reach the observed mean
    res = paired_randomization_test(a, b, trials=20_000, seed=1)
    assert res.difference == pytest.approx(diff.mean())
    assert res.p_value == pytest.approx(exact, abs=0.01)
    same = paired_randomization_test(a, a, trials=100)
    assert same.p_value == 1.0 and not same.significant
    with pytest.raises(ValueError, match="equal length"):
        paired_randomization_test([1.0], [1.0, 2.0])

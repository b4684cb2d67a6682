"""Retrieval metrics, min-max hybrid and the paired randomization test against hand computations."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sparse_demo.evaluation import (
    RetrievalMetrics,
    paired_randomization_test,
    rankings_from_scores,
    run_metrics,
)

SUMMARY = ("recall@1", "recall@2", "recall@5", "mrr@10", "ndcg@10")


def _summary(rankings, golds, ks=(1, 2, 5)):
    """Binary gold sets as grade-1 qrels, through the one metrics implementation."""
    run = {f"q{i}": r for i, r in enumerate(rankings)}
    qrels = {f"q{i}": dict.fromkeys(g, 1) for i, g in enumerate(golds)}
    return RetrievalMetrics.from_per_query(run_metrics(run, qrels, SUMMARY), ks=ks)


def test_metrics_by_hand():
    rankings = [["a", "b", "c"], ["x", "y", "z", "w"], ["p", "q"]]
    golds = [{"b"}, {"z", "w"}, {"r"}]
    m = _summary(rankings, golds)
    assert m.recall[1] == pytest.approx(0.0)
    assert m.recall[2] == pytest.approx((1 + 0 + 0) / 3)
    assert m.recall[5] == pytest.approx((1 + 1 + 0) / 3)
    assert m.mrr10 == pytest.approx((1 / 2 + 1 / 3 + 0) / 3)
    ndcg1 = (1 / math.log2(3)) / 1.0
    ndcg2 = (1 / math.log2(4) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m.ndcg10 == pytest.approx((ndcg1 + ndcg2 + 0) / 3)
    per_query = run_metrics(
        {"a": rankings[0], "b": rankings[1], "c": rankings[2]},
        {"a": {"b": 1}, "b": {"z": 1, "w": 1}, "c": {"r": 1}},
        ("mrr@10",),
    )["mrr@10"]
    assert list(per_query.values()) == pytest.approx([0.5, 1 / 3, 0.0])
    assert set(m.as_row()) == {"R@1", "R@2", "R@5", "MRR@10", "nDCG@10"}


def test_mrr_only_counts_top_ten_and_duplicates_once():
    ranking = [f"d{i}" for i in range(10)] + ["gold"]
    assert _summary([ranking], [{"gold"}]).mrr10 == 0.0
    assert _summary([["x", "x", "gold"]], [{"gold"}]).mrr10 == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("qrels", "metrics", "match"),
    [
        ({"q": {}}, ("mrr@10",), "no relevant document"),
        ({"q": {"a": 0}}, ("mrr@10",), "no relevant document"),
        ({"q": {"a": 1}}, ("recall@0",), "cut-off must be >= 1"),
        ({"q": {"a": 1}}, ("map",), "needs a cut-off"),
    ],
)
def test_metric_errors(qrels, metrics, match):
    with pytest.raises(ValueError, match=match):
        run_metrics({"q": ["a"]}, qrels, metrics)


def test_rankings_from_scores_breaks_ties_by_index():
    scores = np.array([[0.1, 0.5, 0.5, 0.2], [3.0, 1.0, 2.0, 0.0]])
    assert rankings_from_scores(scores, ["a", "b", "c", "d"], k=3) == [["b", "c", "d"], ["a", "c", "b"]]


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


# --------------------------------------------------------------------------- graded metrics vs ranx
def _random_run(seed: int, n_queries: int = 40, n_docs: int = 150):
    rng = np.random.default_rng(seed)
    docs = [f"d{i}" for i in range(n_docs)]
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.choice(n_docs, size=int(rng.integers(1, 6)), replace=False)
        qrels[qid] = {docs[j]: int(rng.integers(1, 4)) for j in judged}
        if q % 7 == 0:  # a judged-but-not-relevant document too
            qrels[qid][docs[(judged[0] + 1) % n_docs]] = 0
        order = rng.permutation(n_docs)[: int(rng.integers(5, 120))]
        run[qid] = [docs[j] for j in order]
    return qrels, run


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_run_metrics_equal_ranx(seed):
    ranx = pytest.importorskip("ranx")
    from sparse_demo.evaluation import METRICS, run_metrics

    qrels, run = _random_run(seed)
    ours = run_metrics(run, qrels, METRICS)
    ranx_qrels = ranx.Qrels({q: {d: g for d, g in j.items()} for q, j in qrels.items()})
    ranx_run = ranx.Run({q: {d: float(len(r) - i) for i, d in enumerate(r)} for q, r in run.items()})
    theirs = ranx.evaluate(ranx_qrels, ranx_run, list(METRICS), return_mean=False)
    order = sorted(qrels)  # ranx reports queries in sorted id order
    for m in METRICS:
        assert np.asarray([ours[m][q] for q in order]) == pytest.approx(np.asarray(theirs[m]), abs=1e-6), m
        assert np.mean(list(ours[m].values())) == pytest.approx(float(np.mean(theirs[m])), abs=1e-6)


def test_query_metrics_by_hand_graded():
    from sparse_demo.evaluation import query_metrics

    m = query_metrics(["x", "b", "a"], {"a": 1, "b": 2, "z": 0}, ("ndcg@10", "mrr@10", "recall@1", "recall@5"))
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 + 1 / math.log2(3)
    assert m == pytest.approx({"ndcg@10": dcg / idcg, "mrr@10": 0.5, "recall@1": 0.0, "recall@5": 1.0})


@pytest.mark.parametrize(
    ("qrels", "metrics", "match"),
    [
        ({"a": 0}, ("ndcg@10",), "no relevant"),
        ({"a": 1}, ("ndcg",), "cut-off"),
        ({"a": 1}, ("map@10",), "unknown"),
        ({"a": 1}, ("ndcg@0",), ">= 1"),
    ],
)
def test_query_metrics_errors(qrels, metrics, match):
    from sparse_demo.evaluation import query_metrics

    with pytest.raises(ValueError, match=match):
        query_metrics(["a"], qrels, metrics)


# --------------------------------------------------------------------------- significance with known answers
def test_identical_runs_give_p_one_and_zero_interval():
    from sparse_demo.evaluation import bootstrap_ci

    vals = np.random.default_rng(3).random(50)
    for trials in (8, 10_000):  # Monte Carlo (2**50 > trials)
        assert paired_randomization_test(vals, vals, trials=trials).p_value == 1.0
    small = vals[:6]
    exact = paired_randomization_test(small, small, trials=1000)
    assert exact.exact and exact.p_value == 1.0
    ci = bootstrap_ci(vals, vals)
    assert (ci.difference, ci.low, ci.high) == (0.0, 0.0, 0.0) and not ci.excludes_zero


def test_always_better_hits_the_floor():
    rng = np.random.default_rng(4)
    a = rng.random(40)
    b = a + 0.1 + rng.random(40) * 0.01
    res = paired_randomization_test(a, b, trials=5000, seed=2)
    assert not res.exact and res.p_value == pytest.approx(1 / 5001) and res.p_value == res.floor
    small = paired_randomization_test(a[:5], b[:5], trials=10_000)
    assert small.exact and small.p_value == pytest.approx(2 / 32) == small.floor  # all-plus and all-minus


def test_bootstrap_interval_of_a_constant_shift_and_its_errors():
    from sparse_demo.evaluation import bootstrap_ci

    a = np.linspace(0, 1, 30)
    ci = bootstrap_ci(a, a + 0.25, resamples=300)
    assert (ci.low, ci.high) == pytest.approx((0.25, 0.25)) and ci.excludes_zero
    noisy = bootstrap_ci(a, a[::-1], resamples=2000, seed=1)
    assert noisy.low < 0 < noisy.high
    for kwargs, match in (({"level": 1.0}, "level"), ({"resamples": 0}, "resamples")):
        with pytest.raises(ValueError, match=match):
            bootstrap_ci(a, a, **kwargs)
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([], [])


def test_holm_by_hand():
    from sparse_demo.evaluation import holm_adjust

    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04)
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([1.5])

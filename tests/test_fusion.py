"""Fusion: OpenSearch normalization-processor (min-max + arithmetic mean) and RRF semantics."""

from __future__ import annotations

import pytest

from sparse_demo.index.base import Hit, SearchResult
from sparse_demo.index.fusion import (
    fuse,
    fuse_minmax,
    fuse_rrf,
    minmax_normalize,
    validate_weights,
)


def leg(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(i, s, r) for r, (i, s) in enumerate(pairs, start=1)]


BM25 = leg(("a", 10.0), ("b", 6.0), ("c", 2.0))
SPARSE = leg(("c", 4.0), ("d", 3.0), ("a", 1.0))


def scores(result) -> dict[str, float]:
    return {h.id: h.score for h in result.hits}


def test_minmax_normalize_by_hand():
    # (s - 2) / (10 - 2): 1.0, 0.5, and the minimum becomes 0.001 (not 0).
    assert minmax_normalize([10.0, 6.0, 2.0]) == [1.0, 0.5, 0.001]


@pytest.mark.parametrize("values", [[5.0], [3.0, 3.0, 3.0]])
def test_minmax_all_equal_scores_become_one(values):
    assert minmax_normalize(values) == [1.0] * len(values)


def test_minmax_arithmetic_mean_by_hand():
    result = fuse_minmax([BM25, SPARSE], weights=(0.5, 0.5))
    # bm25 normalized: a 1.0, b 0.5, c 0.001; sparse (min 1, max 4): c 1.0, d 2/3, a 0.001.
    expected = {
        "a": 0.5 * 1.0 + 0.5 * 0.001,
        "b": 0.5 * 0.5 + 0.5 * 0.0,  # missing from sparse: 0 there, weight still counts
        "c": 0.5 * 0.001 + 0.5 * 1.0,
        "d": 0.5 * 0.0 + 0.5 * (2.0 / 3.0),
    }
    assert scores(result) == pytest.approx(expected, rel=1e-12)
    # a and c tie at 0.5005: id order breaks the tie.
    assert result.ids == ["a", "c", "d", "b"]
    assert [h.rank for h in result.hits] == [1, 2, 3, 4]


def test_minmax_weighted_and_leg_evidence():
    result = fuse_minmax([BM25, SPARSE], weights=(0.2, 0.8))
    got = {h.id: h for h in result.hits}
    assert got["d"].score == pytest.approx(0.8 * 2.0 / 3.0)
    assert got["b"].score == pytest.approx(0.2 * 0.5)
    assert got["d"].leg_scores == (None, 3.0)
    assert got["d"].leg_ranks == (None, 2)
    assert got["d"].leg_normalized == pytest.approx((0.0, 2.0 / 3.0))
    assert got["a"].leg_scores == (10.0, 1.0)
    assert got["a"].leg_ranks == (1, 3)
    assert result.ids[0] == "c"  # 0.2*0.001 + 0.8*1.0


def test_minmax_single_hit_legs():
    result = fuse_minmax([leg(("x", 7.0)), leg(("y", 0.3))])
    assert scores(result) == {"x": 0.5, "y": 0.5}
    assert result.ids == ["x", "y"]


def test_minmax_empty_leg():
    result = fuse_minmax([BM25, []], weights=(0.5, 0.5))
    assert scores(result) == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.0005})


def test_rrf_by_hand():
    result = fuse_rrf([BM25, SPARSE])
    expected = {
        "a": 1 / 61 + 1 / 63,
        "b": 1 / 62,
        "c": 1 / 63 + 1 / 61,
        "d": 1 / 62,
    }
    assert scores(result) == pytest.approx(expected, rel=1e-12)
    assert result.ids == ["a", "c", "b", "d"]  # ties by id
    assert result.rank_constant == 60


def test_rrf_weights_and_rank_constant():
    result = fuse_rrf([BM25, SPARSE], rank_constant=1, weights=(0.25, 0.75))
    assert scores(result)["d"] == pytest.approx(0.75 / 3)
    assert scores(result)["a"] == pytest.approx(0.25 / 2 + 0.75 / 4)


def test_legs_are_reranked_by_score_then_id():
    unordered = [Hit("z", 1.0, 1), Hit("b", 2.0, 2), Hit("a", 2.0, 3)]
    result = fuse_rrf([unordered])
    assert result.ids == ["a", "b", "z"]
    assert [h.leg_ranks[0] for h in result.hits] == [1, 2, 3]


def test_search_results_accepted_and_named():
    result = fuse([SearchResult("bm25", BM25), SearchResult("sparse", SPARSE)], method="rrf", k=2)
    assert result.leg_names == ("bm25", "sparse")
    # a: ranks 1 and 3, c: ranks 3 and 1 -> both 1/61 + 1/63; b and d (1/62) are cut by k=2.
    assert result.ids == ["a", "c"]
    assert [h.score for h in result.hits] == pytest.approx([1 / 61 + 1 / 63] * 2, rel=1e-12)
    assert result.hits[0].leg_normalized == pytest.approx((1 / 61, 1 / 63), rel=1e-12)
    legs = [SearchResult("bm25", BM25), SearchResult("sparse", SPARSE)]
    minmax = fuse(legs, method="minmax", weights=(0.5, 0.5), k=1)
    assert [(h.id, h.score) for h in minmax.hits] == [("a", pytest.approx(0.5005, rel=1e-12))]


@pytest.mark.parametrize(
    "weights",
    [(0.5,), (0.5, 0.6), (-0.1, 1.1), (float("nan"), 1.0), (0.3, 0.3, 0.4), ("a", "b")],
)
def test_weights_validation(weights):
    with pytest.raises(ValueError):
        fuse_minmax([BM25, SPARSE], weights=weights)


def test_weights_sum_tolerance():
    assert validate_weights((0.1 + 0.2, 0.7), 2) == pytest.approx((0.3, 0.7))


def test_unknown_method_names_choices():
    with pytest.raises(ValueError, match="minmax, rrf"):
        fuse([BM25, SPARSE], method="max")


@pytest.mark.parametrize("rank_constant", [0, -5, 1.5, True])
def test_bad_rank_constant(rank_constant):
    with pytest.raises(ValueError, match="rank_constant"):
        fuse_rrf([BM25], rank_constant=rank_constant)


def test_duplicate_ids_in_leg_rejected():
    with pytest.raises(ValueError, match="twice"):
        fuse_minmax([leg(("a", 1.0), ("a", 0.5))], weights=(1.0,))


def test_no_legs_rejected():
    with pytest.raises(ValueError):
        fuse_minmax([])

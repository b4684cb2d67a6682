"""Model comparison: overlap metrics against hand computation, alignment, set mode, UI handlers, CLI."""

from __future__ import annotations

import argparse
import io
import json
import random

import numpy as np
import pytest

from sparse_demo.analysis import QueryAnalysis, TokenRow, leakage_report, vector_stats
from sparse_demo.compare import (
    add_compare_parser,
    align,
    compare_analyses,
    compare_query_set,
    jaccard,
    keyed_top,
    rbo,
    run_compare,
    token_key,
    weighted_overlap,
)
from sparse_demo.encoder import Encoding, SparseVector


# ---------------------------------------------------------------------- helpers
def _rbo_direct(a: list[str], b: list[str], p: float) -> float:
    """Webber et al. (2010) eq. 32 by direct set intersections at every depth (independent of rbo())."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    s, l_ = len(short), len(long_)

    def x(d: int) -> int:
        return len(set(short[: min(d, s)]) & set(long_[:d]))

    first = sum(x(d) / d * p**d for d in range(1, l_ + 1))
    second = sum(x(s) * (d - s) / (s * d) * p**d for d in range(s + 1, l_ + 1))
    return (1 - p) / p * (first + second) + ((x(l_) - x(s)) / l_ + x(s) / s) * p**l_


def _row(rank: int, raw: str, weight: float, category: str = "content", position: int = 1,
         token: str | None = None) -> TokenRow:
    tok = token if token is not None else raw.lstrip("▁").removeprefix("##")
    return TokenRow(rank=rank, token=tok or raw, raw=raw, id=rank, weight=weight, position=position,
                    source_subword=tok, source_text=tok, origin="input", category=category, morpheme=None)


def _analysis(text: str, rows: list[TokenRow], offsets: list[tuple[int, int]], model: str) -> QueryAnalysis:
    """A QueryAnalysis built by hand: the vector is exactly ``rows``."""
    weights = np.array([r.weight for r in rows], dtype=np.float32)
    vec = SparseVector(np.array([r.id for r in rows], dtype=np.int64), weights,
                       np.array([r.position for r in rows], dtype=np.int32))
    enc = Encoding(text=text, input_ids=tuple(range(len(offsets))), offsets=tuple(offsets), vector=vec,
                   num_text_tokens=len(offsets))
    cats = [r.category for r in rows]
    return QueryAnalysis(enc, rows, vector_stats(weights, 20), leakage_report(weights, cats, None, 20), model)


# ---------------------------------------------------------------------- metrics by hand
def test_jaccard_by_hand():
    assert jaccard(["a", "b", "c", "d"], ["b", "d", "e"]) == pytest.approx(2 / 5)
    assert jaccard([], []) == 1.0
    assert jaccard(["a"], []) == 0.0


def test_weighted_overlap_by_hand():
    # min: a 0 + b 2 + c 1 + d 0 = 3 ; max: 3 + 4 + 1 + 2 = 10
    assert weighted_overlap({"a": 3, "b": 2, "c": 1}, {"b": 4, "c": 1, "d": 2}) == pytest.approx(0.3)
    assert weighted_overlap({"a": 1.5}, {"a": 1.5}) == pytest.approx(1.0)
    assert weighted_overlap({"a": 1.0}, {"b": 1.0}) == 0.0
    assert weighted_overlap({}, {}) == 1.0


def test_rbo_hand_examples():
    # [a,b] vs [b,a]: X1=0, X2=2 -> 0.1/0.9 * (2/2 * 0.81) + 2/2 * 0.81 = 0.09 + 0.81
    assert rbo(["a", "b"], ["b", "a"], 0.9) == pytest.approx(0.9, abs=1e-12)
    # [a,b,c] vs [a,c,d]: X = 1, 1, 2 -> 0.1/0.9 * (0.9 + 0.405 + 0.486) + 2/3 * 0.729 = 0.199 + 0.486
    assert rbo(["a", "b", "c"], ["a", "c", "d"], 0.9) == pytest.approx(0.685, abs=1e-12)
    # uneven: S=[a,b] (s=2), L=[b,c,a] (l=3): X1=0, X2=1, X3=2
    # (0.1/0.9) * (0.405 + 0.486 + 1*(1)/(2*3)*0.729) + ((2-1)/3 + 1/2) * 0.729 = 0.1125 + 0.6075
    assert rbo(["a", "b"], ["b", "c", "a"], 0.9) == pytest.approx(0.72, abs=1e-12)
    assert rbo(["b", "c", "a"], ["a", "b"], 0.9) == pytest.approx(0.72, abs=1e-12)


def test_rbo_extremes_and_errors():
    items = [f"t{i}" for i in range(20)]
    assert rbo(items, items) == pytest.approx(1.0)
    assert rbo(items[:10], items[10:]) == 0.0
    assert rbo([], []) == 1.0 and rbo(["a"], []) == 0.0
    with pytest.raises(ValueError, match="p must be"):
        rbo(["a"], ["a"], 1.0)
    with pytest.raises(ValueError, match="repeats"):
        rbo(["a", "a"], ["a"])


def test_rbo_matches_direct_summation_on_random_rankings():
    rng = random.Random(7)
    pool = [f"w{i}" for i in range(30)]
    for _ in range(200):
        a = rng.sample(pool, rng.randint(1, 20))
        b = rng.sample(pool, rng.randint(1, 20))
        p = rng.choice([0.5, 0.8, 0.9, 0.95])
        assert rbo(a, b, p) == pytest.approx(_rbo_direct(a, b, p), abs=1e-12)


# ---------------------------------------------------------------------- keys and alignment
def test_token_keys_are_vocabulary_independent():
    assert token_key("▁치료") == token_key("치료") == token_key("Ġ치료") == "치료"
    assert token_key("##료") == "료"
    assert token_key("▁Python") == "python"
    assert token_key("<s>", "special") == token_key("[CLS]", "special") == "[CLS]"
    assert token_key("</s>", "special") == token_key("[SEP]", "special") == "[SEP]"
    assert token_key("▁", "punctuation") == "▁"  # an empty surface keeps its raw form


# Model A (XLM-R style): ▁치료 and 치료 merge into one key.
ROWS_A = [
    _row(1, "▁치료", 2.0),
    _row(2, "▁방법", 1.5),
    _row(3, "치료", 1.2),
    _row(4, "▁당뇨", 1.0),
    _row(5, "<s>", 0.5, "special", 0, "<s>"),
    _row(6, "▁혈당", 0.2),
]
# Model B (WordPiece style).
ROWS_B = [
    _row(1, "치료", 1.8),
    _row(2, "당뇨", 1.6),
    _row(3, "혈당", 0.9),
    _row(4, "[CLS]", 0.4, "special", 0, "[CLS]"),
    _row(5, "##료", 0.3),
]


def test_keyed_top_merges_same_surface_with_max_weight():
    ka = keyed_top(ROWS_A, top_k=4)
    assert ka.keys == ["치료", "방법", "당뇨", "[CLS]"]
    assert ka.get("치료").weight == 2.0 and ka.get("치료").merged == ("치료",)
    assert ka.beyond == {"혈당": 5}
    assert len(ka.merges) == 1 and "▁치료" in ka.merges[0] and "max" in ka.merges[0]


def test_alignment_of_shared_and_only_tokens():
    ka, kb = keyed_top(ROWS_A, 4), keyed_top(ROWS_B, 4)
    rows = align(ka, kb)
    by_key = {r.key: r for r in rows}
    assert set(by_key) == {"치료", "방법", "당뇨", "[CLS]", "혈당"}
    assert [r.key for r in rows if r.status == "both"] == ["치료", "당뇨", "[CLS]"]
    assert by_key["방법"].status == "only_a" and by_key["방법"].weight_b is None
    assert by_key["혈당"].status == "only_b" and by_key["혈당"].beyond_rank_a == 5
    d = by_key["당뇨"]
    assert (d.rank_a, d.rank_b, d.rank_shift) == (3, 2, 1)
    assert d.weight_delta == pytest.approx(0.6)
    assert by_key["[CLS]"].token_a == "<s>" and by_key["[CLS]"].token_b == "[CLS]"
    # rows read top-down by the better rank
    assert [r.key for r in rows][:2] == ["치료", "방법"]


def test_compare_analyses_on_constructed_vectors():
    text = "당뇨 치료 방법"
    offsets = [(0, 0), (0, 2), (3, 5), (6, 8), (0, 0)]
    rows_a = [_row(r.rank, r.raw, r.weight, r.category, p) for r, p in zip(ROWS_A, [2, 3, 2, 1, 0, 1])]
    rows_b = [_row(r.rank, r.raw, r.weight, r.category, p) for r, p in zip(ROWS_B, [2, 1, 1, 0, 2])]
    a = _analysis(text, rows_a, offsets, "A")
    b = _analysis(text, rows_b, offsets, "B")
    c = compare_analyses(a, b, top_k=4)
    # by hand: A = {치료 2.0, 방법 1.5, 당뇨 1.0, [CLS] 0.5}, B = {치료 1.8, 당뇨 1.6, 혈당 0.9, [CLS] 0.4}
    assert c.overlap.jaccard == pytest.approx(3 / 5)
    assert c.overlap.weighted_overlap == pytest.approx((1.8 + 1.0 + 0.4) / (2.0 + 1.5 + 1.6 + 0.9 + 0.5))
    assert c.overlap.rbo == pytest.approx(
        _rbo_direct(["치료", "방법", "당뇨", "[CLS]"], ["치료", "당뇨", "혈당", "[CLS]"], 0.9))
    assert [r.key for r in c.only_a] == ["방법"] and [r.key for r in c.only_b] == ["혈당"]
    assert any("merged" in n for n in c.notes)
    # morpheme view: masses follow source positions; position 0 / 4 (no span) go to the last row
    # positions: 1 -> 당뇨, 2 -> 치료, 3 -> 방법, 0 and 4 have no text span
    morph = {m.text: m for m in c.morphemes}
    assert set(morph) == {"당뇨", "치료", "방법", ""}
    assert (morph["당뇨"].mass_a, morph["당뇨"].mass_b) == (pytest.approx(1.0 + 0.2), pytest.approx(1.6 + 0.9))
    assert (morph["치료"].mass_a, morph["치료"].mass_b) == (pytest.approx(2.0 + 1.2), pytest.approx(1.8 + 0.3))
    assert (morph["방법"].mass_a, morph["방법"].mass_b) == (pytest.approx(1.5), 0.0)
    assert (morph[""].mass_a, morph[""].mass_b) == (pytest.approx(0.5), pytest.approx(0.4))
    assert morph["치료"].share_a == pytest.approx(3.2 / 6.4, abs=1e-4)
    assert morph["치료"].tokens_a.startswith("치료 2.00")
    frame = c.to_frame()
    assert list(frame["key"])[:2] == ["치료", "방법"]
    assert c.sides_frame().shape[1] == 3


def test_different_texts_rejected():
    a = _analysis("가", ROWS_A, [(0, 1)], "A")
    b = _analysis("나", ROWS_B, [(0, 1)], "B")
    with pytest.raises(ValueError, match="different texts"):
        compare_analyses(a, b)

"""Model comparison: overlap metrics against hand computation, alignment, set mode, UI handlers, CLI.

Expected values come from hand computation (constructed vectors) or from an independent keying
of the encoders' raw vectors written here (:func:`_independent_top_keys`), never from the rows
the comparison itself produced.
"""

from __future__ import annotations

import io
import json
import random
import sys
import unicodedata

import numpy as np
import pytest

from sparse_demo.analysis import QueryAnalysis, TokenRow, leakage_report, vector_stats
from sparse_demo.compare import (
    align,
    compare_analyses,
    jaccard,
    keyed_top,
    rbo,
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


#: Special tokens by role, written out for the two tokenizers the tests use (XLM-R, WordPiece).
_ROLES = {
    "<s>": "[CLS]",
    "[CLS]": "[CLS]",
    "</s>": "[SEP]",
    "[SEP]": "[SEP]",
    "<pad>": "[PAD]",
    "[PAD]": "[PAD]",
    "<unk>": "[UNK]",
    "[UNK]": "[UNK]",
    "<mask>": "[MASK]",
    "[MASK]": "[MASK]",
}


def _independent_top_keys(encoder, text: str, k: int) -> dict[str, float]:
    """The top-``k`` keys of ``encoder``'s raw vector for ``text``, keyed here from the tokenizer's
    own token strings: role for specials, else marker (``▁``/``##``) stripped, NFC, lower case;
    tokens sharing a key keep the larger weight."""
    vec = encoder.encode([text])[0].vector
    raws = encoder.tokenizer.convert_ids_to_tokens([int(i) for i in vec.token_ids])
    best: dict[str, float] = {}
    for raw, w in zip(raws, vec.weights.tolist()):
        if raw in _ROLES:
            key = _ROLES[raw]
        else:
            key = unicodedata.normalize("NFC", raw.removeprefix("▁").removeprefix("##")).lower() or raw
        best[key] = max(best.get(key, 0.0), float(w))
    ranked = sorted(best.items(), key=lambda kv: -kv[1])[:k]
    return dict(ranked)


def _row(
    rank: int, raw: str, weight: float, category: str = "content", position: int = 1, token: str | None = None
) -> TokenRow:
    tok = token if token is not None else raw.lstrip("▁").removeprefix("##")
    return TokenRow(
        rank=rank,
        token=tok or raw,
        raw=raw,
        id=rank,
        weight=weight,
        position=position,
        source_subword=tok,
        source_text=tok,
        origin="input",
        category=category,
        morpheme=None,
    )


def _analysis(text: str, rows: list[TokenRow], offsets: list[tuple[int, int]], model: str) -> QueryAnalysis:
    """A QueryAnalysis built by hand: the vector is exactly ``rows``."""
    weights = np.array([r.weight for r in rows], dtype=np.float32)
    vec = SparseVector(
        np.array([r.id for r in rows], dtype=np.int64), weights, np.array([r.position for r in rows], dtype=np.int32)
    )
    enc = Encoding(
        text=text,
        input_ids=tuple(range(len(offsets))),
        offsets=tuple(offsets),
        vector=vec,
        num_text_tokens=len(offsets),
    )
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
        _rbo_direct(["치료", "방법", "당뇨", "[CLS]"], ["치료", "당뇨", "혈당", "[CLS]"], 0.9)
    )
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


# ---------------------------------------------------------------------- real tiny models
def _sparse_copy(src, dst, active: int, tok=None):
    """Copy a tiny model folder, lowering its MLM decoder bias so a query activates ~``active`` dims.

    Random tiny models activate about half of their vocabulary (230k of XLM-R's 250k ids), which
    makes every analysis slow; trained SPLADE models activate a few hundred. Same tokenizer,
    same weights otherwise.
    """
    import shutil

    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    shutil.copytree(src, dst)
    model = AutoModelForMaskedLM.from_pretrained(dst).eval()
    tok = tok or AutoTokenizer.from_pretrained(dst)
    batch = tok(["당뇨병 치료 방법은 무엇인가요", "전세 보증금 Python 2024"], return_tensors="pt", padding=True)
    with torch.no_grad():
        top = model(**batch).logits.amax(dim=(0, 1)).sort(descending=True).values
        model.get_output_embeddings().bias -= top[min(active, top.numel() - 1)]
    model.save_pretrained(dst)
    return dst


@pytest.fixture(scope="module")
def sparse_dirs(tmp_path_factory, tiny_model_dir, tiny_model_dir_b, wordpiece_model_dir, tiny_tokenizer):
    root = tmp_path_factory.mktemp("compare_sparse")
    return {
        "xa": _sparse_copy(tiny_model_dir, root / "xa", 150, tiny_tokenizer),
        "xb": _sparse_copy(tiny_model_dir_b, root / "xb", 150, tiny_tokenizer),
        "wp": _sparse_copy(wordpiece_model_dir, root / "wp", 60),
    }


@pytest.fixture(scope="module")
def compare_presets(tmp_path_factory, sparse_dirs) -> str:
    """A presets file naming sparse copies of the conftest tiny models, plus a broken one."""
    presets = [
        {"name": n, "source": str(p)}
        for n, p in (("tiny-a", sparse_dirs["xa"]), ("tiny-b", sparse_dirs["xb"]), ("wp", sparse_dirs["wp"]))
    ]
    presets.append({"name": "missing", "source": "/nonexistent/model/folder"})
    path = tmp_path_factory.mktemp("compare_presets") / "models.json"
    path.write_text(json.dumps({"default": "tiny-a", "presets": presets}), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def ctx(compare_presets):
    """An app context on :func:`compare_presets`."""
    from sparse_demo.config import load_settings
    from sparse_demo.ui.common import AppContext

    return AppContext.create(load_settings({"SPARSE_DEMO_MODELS": compare_presets, "SPARSE_DEMO_DEVICE": "cpu"}))


@pytest.fixture(scope="module")
def ui():
    from sparse_demo.ui import compare as ui_compare

    return ui_compare


@pytest.mark.slow
def test_per_query_two_tiny_models(ctx, ui):
    r = ui.compare_query(ctx, "당뇨병 치료 방법", "tiny-a", "tiny-b", top_k=10)
    c = r.comparison
    assert c is not None, r.status
    assert "tiny-a" in r.status and "tiny-b" in r.status
    assert len(c.rows) == len(set(c.to_frame()["key"]))  # one row per key
    # expected from the encoders' raw vectors, keyed independently of compare.keyed_top
    exp_a = _independent_top_keys(ctx.registry.get("tiny-a"), "당뇨병 치료 방법", 10)
    exp_b = _independent_top_keys(ctx.registry.get("tiny-b"), "당뇨병 치료 방법", 10)
    assert [row.key for row in sorted(c.rows, key=lambda r: r.rank_a or 99) if row.rank_a] == list(exp_a)
    assert [row.key for row in sorted(c.rows, key=lambda r: r.rank_b or 99) if row.rank_b] == list(exp_b)
    assert {row.key for row in c.shared} == set(exp_a) & set(exp_b)
    assert c.overlap.jaccard == pytest.approx(len(set(exp_a) & set(exp_b)) / len(set(exp_a) | set(exp_b)))
    union = set(exp_a) | set(exp_b)
    assert c.overlap.weighted_overlap == pytest.approx(
        sum(min(exp_a.get(k, 0), exp_b.get(k, 0)) for k in union)
        / sum(max(exp_a.get(k, 0), exp_b.get(k, 0)) for k in union),
        rel=1e-5,
    )
    for metric in (c.overlap.jaccard, c.overlap.weighted_overlap, c.overlap.rbo):
        assert 0.0 <= metric <= 1.0
    # the morpheme view accounts for the whole vector of each model
    assert r.morphemes["mass_a"].sum() == pytest.approx(c.side_a.stats.l1, rel=1e-3)
    assert r.morphemes["mass_b"].sum() == pytest.approx(c.side_b.stats.l1, rel=1e-3)
    assert "Jaccard" in r.metrics and r.chart is not None and r.csv_path


def test_same_model_twice_is_identical(ctx, ui):
    r = ui.compare_query(ctx, "전세 보증금", "tiny-a", "tiny-a", top_k=15)
    ov = r.comparison.overlap
    assert (ov.jaccard, ov.weighted_overlap, ov.rbo) == (1.0, 1.0, pytest.approx(1.0))
    assert "same model" in r.status


def test_different_tokenizers_meet_on_surface_forms(ctx, ui, sparse_dirs):
    r = ui.compare_query(ctx, "당뇨병 치료 방법", "tiny-a", None, folder_b=str(sparse_dirs["wp"]), top_k=30)
    c = r.comparison
    assert c is not None, r.status
    # WordPiece [CLS]/[SEP] and XLM-R <s>/</s> are keyed by role; surface keys carry no marker
    assert all(not k.startswith(("▁", "##")) or k in ("▁", "##") for k in r.aligned["key"])
    exp_a = _independent_top_keys(ctx.registry.get("tiny-a"), "당뇨병 치료 방법", 30)
    exp_b = _independent_top_keys(ctx.registry.get(str(sparse_dirs["wp"])), "당뇨병 치료 방법", 30)
    assert {row.key for row in c.shared} == set(exp_a) & set(exp_b)
    assert {row.key for row in c.only_a} == set(exp_a) - set(exp_b)
    assert {row.key for row in c.only_b} == set(exp_b) - set(exp_a)


@pytest.mark.slow
def test_failing_model_leaves_the_other_usable(ctx, ui):
    r = ui.compare_query(ctx, "당뇨병 치료 방법", "missing", "tiny-b", top_k=10)
    assert "Model A (missing) could not be loaded" in r.status and "/nonexistent/model/folder" in r.status
    # B's own top-10 in B's columns: no only_b rows, no deltas or rank shifts against a model never analysed
    assert len(r.aligned) == 10 and not set(r.aligned["status"]) & {"only_a", "only_b", "both"}
    assert r.aligned["weight_delta"].isna().all() and r.aligned["rank_shift"].isna().all()
    assert r.aligned["weight_a"].isna().all() and (r.aligned["weight_b"] > 0).all()
    assert r.aligned["rank_b"].tolist() == list(range(1, 11))
    r2 = ui.compare_query(ctx, "당뇨병", "tiny-a", None, folder_b="/no/such/dir", top_k=5)
    assert "Model B (/no/such/dir)" in r2.status and len(r2.aligned) == 5
    assert r2.status.count("\n\n") == 0, r2.status  # one short line about B, nothing else
    assert "Showing A's own figures (tiny-a)" in r2.status and "only_a" not in set(r2.aligned["status"])
    assert list(r2.sides.columns) == ["figure", "A: tiny-a"] and "alone" in r2.metrics
    r3 = ui.compare_query(ctx, "당뇨병", "missing", None, folder_b="/no/such/dir")
    assert r3.status.count("could not be loaded") == 2 and r3.aligned.empty


@pytest.mark.parametrize(
    "text, ok, expect",
    [
        ("", False, "empty"),
        ("   \n\t ", False, "empty"),
        ("가" * 20_001, False, "20,000"),
        ("당뇨병 😀\u200b치료\u200d 방법 🩺", True, "Zero-width"),
        ("Python 3.11로 당뇨병 치료 데이터 2024년 분석 AI", True, "A = tiny-a"),
    ],
)
def test_bad_and_odd_text(ctx, ui, text, ok, expect):
    r = ui.compare_query(ctx, text, "tiny-a", "tiny-b", top_k=10)
    assert (r.comparison is not None) == ok, r.status
    assert expect in r.status


def test_top_k_out_of_range(ctx, ui):
    r = ui.compare_query(ctx, "당뇨병", "tiny-a", "tiny-b", top_k=0)
    assert "top-k" in r.status and r.comparison is None


QUERIES = ["당뇨병 치료 방법", "전세 보증금 돌려받는 방법", "주택담보대출 금리 비교", "Python 3.11 설치"]


def test_set_mode_three_models_one_batched_encode_each(ctx, ui, sparse_dirs, monkeypatch):
    calls: list[tuple[str, int]] = []
    for name in ("tiny-a", "tiny-b"):
        enc = ctx.registry.get(name)
        original = enc.encode

        def counting(texts, *args, _orig=original, _name=name, **kwargs):
            calls.append((_name, len(texts)))
            return _orig(texts, *args, **kwargs)

        monkeypatch.setattr(enc, "encode", counting)
    seen = []
    r = ui.compare_set(
        ctx,
        "\n".join(QUERIES),
        None,
        ["tiny-a", "tiny-b"],
        str(sparse_dirs["wp"]),
        top_k=10,
        progress=lambda frac, desc: seen.append((frac, desc)),
    )
    s = r.comparison
    assert s is not None, r.status
    assert calls == [("tiny-a", 4), ("tiny-b", 4)]
    # one progress for both models and the folder: each model's share of 0..1, named in the message
    assert seen[-1] == (pytest.approx(1.0), f"{s.models[-1]}: 4/4 texts encoded")
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[0][1].startswith("tiny-a: ")
    assert len(s.models) == 3 and len(s.pairs) == 3 and len(r.pair_choices) == 3
    assert list(r.summary["model"]) == s.models
    assert set(r.summary.columns) >= {
        "mean_stopword_mass_ratio",
        "mean_special_mass_ratio",
        "mean_active_dims",
        "share_stopword_in_top1",
        "share_stopword_in_top5",
    }
    assert len(r.pairs) == 3 and len(r.csv_paths) == 2 + 3
    # disagreements: ascending weighted overlap, one row per query
    d = r.disagreements
    assert len(d) == 4 and list(d["weighted_overlap"]) == sorted(d["weighted_overlap"])
    # another pair and metric, from the stored state
    other = ui.disagreement_table(r.state, r.pair_choices[2], "rbo")
    assert list(other["rbo"]) == sorted(other["rbo"])
    # selecting a row gives the same figures as the set for that query and pair
    row = d.iloc[0]
    query, spec_a, spec_b, one = ui.compare_selected(ctx, r.state, r.pair_choices[0], int(row["query_index"]))
    assert query == row["query"] and spec_a == ("tiny-a", None) and spec_b == ("tiny-b", None)
    assert one.comparison.overlap.weighted_overlap == pytest.approx(row["weighted_overlap"], abs=1e-4)
    assert one.comparison.overlap.rbo == pytest.approx(row["rbo"], abs=1e-4)
    # the WordPiece model's pair, in the reverse orientation
    a, b = s.pairs[1]
    flipped = s.pair_frame(b, a)
    straight = s.pair_frame(a, b)
    assert list(flipped["only_a"]) == list(straight["only_b"])


def _specials_on_top(src, dst):
    """A copy of a model folder whose special tokens outweigh every other token (decoder bias raised)."""
    import shutil

    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    shutil.copytree(src, dst)
    model = AutoModelForMaskedLM.from_pretrained(dst).eval()
    with torch.no_grad():
        model.get_output_embeddings().bias[AutoTokenizer.from_pretrained(dst).all_special_ids] += 50.0
    model.save_pretrained(dst)
    return dst


def test_set_mode_lists_special_tokens_in_each_models_own_spelling(sparse_dirs, tmp_path):
    """Alignment keys </s> and [SEP] alike (by role), but each model's columns write its own token, as
    the leaking-tokens table beside them does: XLM-R </s>, WordPiece [SEP]."""
    from sparse_demo.analysis import Analyzer
    from sparse_demo.compare import analyze_query_set, compare_query_set
    from sparse_demo.encoder import SpladeEncoder

    folders = {
        "x": _specials_on_top(sparse_dirs["xa"], tmp_path / "x"),
        "w": _specials_on_top(sparse_dirs["wp"], tmp_path / "w"),
    }
    analyzers = {n: Analyzer(SpladeEncoder.load(str(f), device="cpu")) for n, f in folders.items()}
    s = compare_query_set(analyze_query_set(analyzers, QUERIES[:2], top_k=10), top_k=10)
    frame = s.pair_frame("x", "w")
    xlmr = {t for col in ("top_a", "only_a") for cell in frame[col] for t in cell.split()}
    wordpiece = {t for col in ("top_b", "only_b") for cell in frame[col] for t in cell.split()}
    assert {"<s>", "</s>"} <= xlmr and not xlmr & {"[CLS]", "[SEP]"}
    assert {"[CLS]", "[SEP]"} <= wordpiece and not wordpiece & {"<s>", "</s>"}
    leaking = s.leaking_tokens
    assert {"<s>", "</s>"} <= set(leaking[leaking["model"] == "x"]["token"])
    assert {"[CLS]", "[SEP]"} <= set(leaking[leaking["model"] == "w"]["token"])


def test_set_mode_with_a_failing_model(ctx, ui):
    r = ui.compare_set(ctx, "\n".join(QUERIES[:2]), None, ["tiny-a", "missing", "tiny-b"], top_k=5)
    assert "Model missing could not be loaded" in r.status
    assert r.comparison is not None and r.comparison.models == ["tiny-a", "tiny-b"]
    assert r.comparison.failed.keys() == {"missing"}
    only = ui.compare_set(ctx, "당뇨병", None, ["tiny-a", "missing"], top_k=5)
    assert "Only one model" in only.status and len(only.summary) == 1 and only.pair_choices == []
    none = ui.compare_set(ctx, "당뇨병", None, ["missing"], top_k=5)
    assert "could not be loaded" in none.status and none.comparison is None
    nothing = ui.compare_set(ctx, "당뇨병", None, [], top_k=5)
    assert "two or more models" in nothing.status


@pytest.mark.parametrize(
    "name, data, expect",
    [
        ("cp949.txt", "당뇨병 치료".encode("cp949"), "UTF-8"),
        ("empty.txt", b"  \n\n ", "no text"),
        ("header_only.csv", b"query\n", "no text"),
        ("bad.jsonl", b'{"query": "a"}\n{oops\n', "not valid JSON"),
        ("table.xlsx", b"PK\x03\x04", "unsupported"),
    ],
)
def test_bad_uploads(ctx, ui, tmp_path, name, data, expect):
    path = tmp_path / name
    path.write_bytes(data)
    r = ui.compare_set(ctx, "", str(path), ["tiny-a", "tiny-b"], top_k=5)
    assert r.comparison is None and expect in r.status


def test_set_uploads_and_odd_lines(ctx, ui, tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"_id": "1", "text": "당뇨병 치료"}\n{"query": "전세 😀\u200b보증금"}\n', encoding="utf-8")
    r = ui.compare_set(ctx, "ignored", str(path), ["tiny-a", "tiny-b"], top_k=5)
    assert r.comparison is not None and r.comparison.queries == ["당뇨병 치료", "전세 😀보증금"]
    r2 = ui.compare_set(ctx, "당뇨병\n" + "가" * 20_001, None, ["tiny-a", "tiny-b"], top_k=5)
    assert r2.comparison is not None and len(r2.comparison.queries) == 1 and "skipped" in r2.status
    r3 = ui.compare_set(ctx, "  \n ", None, ["tiny-a", "tiny-b"], top_k=5)
    assert r3.comparison is None and "Paste queries" in r3.status


def test_sample_queries_fall_back(ui, monkeypatch, tmp_path):
    assert len(ui.sample_queries()) >= 8
    monkeypatch.setattr(ui, "SAMPLE_QUERIES_PATH", tmp_path / "absent.jsonl")
    from sparse_demo.ui.common import EXAMPLE_QUERIES

    assert ui.sample_queries() == EXAMPLE_QUERIES


def test_compare_selected_without_a_result(ctx, ui):
    _, _, _, r = ui.compare_selected(ctx, None, None, 0)
    assert "Run a query-set comparison first" in r.status


def test_build_tab_smoke(ctx, ui):
    import gradio as gr

    with gr.Blocks() as demo:
        vm = gr.State({})
        with gr.Tab("Compare"):
            ui.build_tab(ctx, vm)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"compare-query", "compare-run", "compare-aligned", "compare-set-disagreements"} <= ids


def test_build_tab_pickers_refresh_on_load(ctx, ui):
    import gradio as gr

    from sparse_demo.ui.common import model_dropdowns

    with gr.Blocks() as demo:
        ui.build_tab(ctx, gr.State({}))
    assert {d.elem_id for d in model_dropdowns(demo)} == {"compare-a-model", "compare-b-model", "compare-set-models"}


def test_defaults_start_on_the_model_that_loads(compare_presets, sparse_dirs, ui, tmp_path):
    """Where the default preset cannot load, A is the demo model and B skips models that failed."""
    from pathlib import Path

    from sparse_demo.config import load_settings
    from sparse_demo.offline import DEMO_MODEL_NAME as demo_name
    from sparse_demo.ui.common import AppContext

    presets = json.loads(Path(compare_presets).read_text(encoding="utf-8"))
    presets["default"] = "missing"
    path = tmp_path / "models.json"
    path.write_text(json.dumps(presets), encoding="utf-8")
    settings = {"SPARSE_DEMO_MODELS": str(path), "SPARSE_DEMO_DEVICE": "cpu"}
    # without a demo model: A stays on the (unloadable) default, B is the first model that did not fail
    plain = AppContext.create(load_settings(settings))
    assert ui._defaults(plain) == ("missing", "tiny-a")
    with_demo = AppContext.create(load_settings(settings))
    with_demo.registry.register(demo_name, str(sparse_dirs["xb"]), "stand-in demo model")
    assert ui._defaults(with_demo) == (demo_name, "tiny-a")


def test_query_limits_are_stated(ctx, ui, monkeypatch, tmp_path):
    from sparse_demo.limits import Limits

    monkeypatch.setattr(ctx, "limits", Limits(max_query_chars=12, max_batch=2, max_upload_bytes=50))
    one = ui.compare_query(ctx, "당뇨병 치료 방법과 예방에 관한 긴 질문", "tiny-a", "tiny-b", top_k=5)
    assert one.comparison is None and "the limit is 12" in one.status and "SPARSE_DEMO_MAX_QUERY_CHARS" in one.status
    # a set longer than the batch limit: the first two are compared and the cut is stated, never silent
    r = ui.compare_set(ctx, "당뇨병\n전세 보증금\n고혈압\n여권", None, ["tiny-a", "tiny-b"], top_k=5)
    assert r.comparison is not None and r.comparison.queries == ["당뇨병", "전세 보증금"]
    assert "Only the first 2 of 4 queries" in r.status and "SPARSE_DEMO_MAX_BATCH" in r.status
    # a query over the length limit inside a set is skipped, with the reason
    r2 = ui.compare_set(ctx, "당뇨병\n" + "가" * 13, None, ["tiny-a", "tiny-b"], top_k=5)
    assert r2.comparison.queries == ["당뇨병"] and "1 queries skipped" in r2.status and "the limit is 12" in r2.status
    big = tmp_path / "q.txt"
    big.write_text("당뇨병 치료\n" * 10, encoding="utf-8")
    r3 = ui.compare_set(ctx, "", str(big), ["tiny-a", "tiny-b"], top_k=5)
    assert r3.comparison is None and "the limit is 50" in r3.status and "SPARSE_DEMO_MAX_UPLOAD_MB" in r3.status


# ---------------------------------------------------------------------- command line
# In-process runs of ``sparse_demo.cli.main`` on this module's presets (exit codes and the
# one-line errors through ``python -m sparse_demo`` are in tests/test_cli.py).
@pytest.fixture()
def cli(compare_presets, monkeypatch, capsys):
    from sparse_demo.cli import main

    monkeypatch.setenv("SPARSE_DEMO_MODELS", compare_presets)
    monkeypatch.setenv("SPARSE_DEMO_DEVICE", "cpu")

    def run(argv: list[str]) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8"))  # empty pipe
        rc = main(["compare", *argv])
        captured = capsys.readouterr()
        return rc, captured.out, captured.err

    return run


def test_cli_per_query_json(cli, sparse_dirs):
    rc, out, err = cli(
        [
            "--model-a",
            "tiny-a",
            "--model-b",
            str(sparse_dirs["wp"]),
            "--top-k",
            "8",
            "--json",
            "당뇨병 치료 방법",
            "전세 보증금",
        ]
    )
    assert rc == 0, err
    data = json.loads(out)
    assert [q["text"] for q in data["queries"]] == ["당뇨병 치료 방법", "전세 보증금"]
    q = data["queries"][0]
    assert {"tokens", "only_a", "only_b", "jaccard", "weighted_overlap", "rbo", "a", "b"} <= set(q)
    assert set(q["a"]["leakage"]) >= {"stopword_mass_ratio", "special_mass_ratio"}
    assert len([t for t in q["tokens"] if t["rank_a"]]) == 8


@pytest.mark.slow
def test_cli_table_and_set_mode(cli, tmp_path):
    rc, out, _ = cli(["--model-a", "tiny-a", "--model-b", "tiny-b", "--top-k", "5", "당뇨병 치료 방법"])
    assert rc == 0 and "jaccard" in out and "weighted overlap" in out
    qfile = tmp_path / "q.txt"
    qfile.write_text("\n".join(QUERIES), encoding="utf-8")
    rc, out, err = cli(
        [
            "--model",
            "tiny-a",
            "--model",
            "tiny-b",
            "--model",
            "wp",
            "--model",
            "missing",
            "--queries",
            str(qfile),
            "--top-k",
            "5",
            "--json",
        ]
    )
    assert rc == 1 and "missing" in err  # printed, but one model failed
    data = json.loads(out)
    assert len(data["models"]) == 3 and len(data["pairs"]) == 3 and data["queries"] == 4
    assert "missing" in data["failed"]
    assert len(data["pairs"][0]["queries"]) == 4 and data["pairs"][0]["most_disagreeing"]
    rc, out, _ = cli(["--model", "tiny-a", "--model", "tiny-b", "--queries", str(qfile), "--top-k", "5"])
    assert rc == 0 and "most disagreeing" in out


@pytest.mark.parametrize(
    "argv, status, expect",
    [
        (["--model-a", "tiny-a", "당뇨병"], 2, "two different models"),
        (["--model-a", "tiny-a", "--model-b", "tiny-b"], 2, "TEXT"),
        (["--model-a", "tiny-a", "--model-b", "tiny-b", "   "], 2, "TEXT"),
        (["--model-a", "tiny-a", "--model-b", "missing", "당뇨병"], 1, "comparing needs two"),
        (["--model-a", "tiny-a", "--model-b", "tiny-b", "--queries", "/no/file.txt"], 2, "file.txt"),
        (["--model-a", "tiny-a", "--model-b", "tiny-b", "--rbo-p", "1.5", "당뇨병"], 2, "--rbo-p"),
    ],
)
def test_cli_errors(cli, argv, status, expect):
    rc, out, err = cli(argv)
    assert rc == status and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and expect in err, err

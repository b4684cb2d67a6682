"""OpenSearch ``sparse_vector`` folding (``sparse_demo.index.sparse_vector_compat``) and its CLI subcommand.

Expected values come from the neural-search source and its own unit tests, or are worked out by hand
in the comments; the CLI runs on the bundled demo model and the bundled sample corpus.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from sparse_demo.encoder import SparseVector
from sparse_demo.index.sparse_vector_compat import (
    compatibility_report,
    fold_id,
    fold_ids,
    fold_matrix,
    quantize,
    vocabulary_folding,
)

ROOT = Path(__file__).resolve().parent.parent
DEMO_MODEL = ROOT / "assets" / "demo-v26-style"
SAMPLE = ROOT / "assets" / "corpus" / "ko_sample"


def vec(pairs: dict[int, float]) -> SparseVector:
    ids = np.array(list(pairs), dtype=np.int64)
    return SparseVector(ids, np.array(list(pairs.values()), dtype=np.float32), np.zeros(len(ids), dtype=np.int64))


# ---------------------------------------------------------------------- folding, as the engine folds
@pytest.mark.parametrize(
    "token, folded",
    [
        # SparseVectorTests.testConstructorWithTokenIdLargerThanShort: 65537 -> 1, 131074 -> 2, 65539 -> 3
        (1, 1),
        (65537, 1),
        (131074, 2),
        (65539, 3),
        # testConstructorWithTokenFoldingIntoSignedShortRange: 40000 -> 7232, 65535 -> 32767
        (40000, 7232),
        (65535, 32767),
        (0, 0),
        (32767, 32767),
        (32768, 0),
        (250001, 20625),  # 250001 - 7 * 32768
        (2**31 - 1, 32767),  # Integer.MAX_VALUE = 65536 * 32768 - 1
    ],
)
def test_fold_id_matches_the_engine(token, folded):
    assert fold_id(token) == folded
    assert fold_ids(np.array([token])).tolist() == [folded]


def test_fold_ids_keeps_shape_and_takes_another_modulus():
    assert fold_ids([[40000, 3], [98304, 65536]]).tolist() == [[7232, 3], [0, 0]]
    assert fold_ids([40000, 70000], modulus=65536).tolist() == [40000, 4464]


@pytest.mark.parametrize("bad", [-1, 2**31, 1.5, True])
def test_fold_id_refuses_what_the_mapper_refuses(bad):
    with pytest.raises(ValueError):
        fold_id(bad)


def test_quantize_is_the_byte_quantizer():
    # round(clamp(v, 0, ceil) * 255 / ceil), halves up: 1.0/3 -> 85, 0.5/3 -> 42.5 -> 43, 8/16 -> 127.5 -> 128
    assert quantize([0.0, 0.5, 1.0, 3.0, 4.2, -1.0], 3.0).tolist() == [0, 43, 85, 255, 255, 0]
    assert quantize([8.0, 16.0, 0.01], 16.0).tolist() == [128, 255, 0]


def test_fold_matrix_merges_by_max_not_sum():
    # the engine's own case: (1, 10) (65537, 20) (131074, 20) (2, 30) (65539, 40) -> {1: 20, 2: 30, 3: 40}
    m = sp.csr_matrix(
        ([10.0, 20.0, 20.0, 30.0, 40.0], ([0, 0, 0, 0, 0], [1, 65537, 131074, 2, 65539])), shape=(1, 131075)
    )
    folded = fold_matrix(m)
    assert folded.shape == (1, 32768)
    assert dict(zip(folded.indices.tolist(), folded.data.tolist())) == {1: 20.0, 2: 30.0, 3: 40.0}


# ---------------------------------------------------------------------- collision counts
def _hand_docs() -> list[SparseVector]:
    return [
        vec({5: 1.0, 32773: 2.0, 100: 0.5}),
        vec({65541: 1.0, 7: 3.0}),
        vec({32775: 1.0, 40000: 0.25}),
    ]


def test_collision_counts_by_hand():
    r = compatibility_report(_hand_docs(), vocab_size=70_000)
    # folded: 5 -> 5, 32773 -> 5, 65541 -> 5; 7 -> 7, 32775 -> 7; 100 -> 100; 40000 -> 7232
    assert r.distinct_ids == 7
    assert r.colliding_ids == 5  # 5, 32773, 65541, 7, 32775
    assert r.shared_slots == 2  # 5 and 7
    mass = 1.0 + 2.0 + 0.5 + 1.0 + 3.0 + 1.0 + 0.25  # 8.75
    assert r.colliding_mass_share == pytest.approx((1.0 + 2.0 + 1.0 + 3.0 + 1.0) / mass)
    # only document 0 holds two of its own ids on one slot (5 and 32773): max keeps 2.0, loses 1.0
    assert r.merged_mass_share == pytest.approx(1.0 / mass)
    assert r.documents_with_merge_share == pytest.approx(1 / 3)
    assert r.ids_over_modulus_share == pytest.approx(4 / 7)  # 32773, 32775, 40000, 65541
    # id % 65536 >= 32768: 32773, 32775, 40000 (not 65541 -> 5)
    assert r.released_overflow_mass_share == pytest.approx((2.0 + 1.0 + 0.25) / mass)
    assert r.doc_weights_over_ingest_ceiling_share == 0.0  # 3.0 is the ceiling itself, not above
    assert r.queries == 0 and r.folded is None and r.quantized is None


def test_vocabulary_figures_by_hand():
    # 70,000 = 2 * 32768 + 4464: folded ids below 4464 hold 3 ids, the others 2; every slot is shared
    v = vocabulary_folding(70_000)
    assert (v.slots, v.shared_slots, v.colliding_ids, v.max_ids_per_slot) == (32768, 32768, 70_000, 3)
    assert v.released_overflow_ids == 32768  # 32768..65535
    # XLM-R: 250,002 = 7 * 32768 + 20626
    x = vocabulary_folding(250_002)
    assert (x.shared_slots, x.colliding_ids, x.colliding_share, x.max_ids_per_slot) == (32768, 250_002, 1.0, 8)
    assert x.released_overflow_ids == 3 * 32768 + (250_002 - 229_376)  # three full halves and 229376..250001
    # a vocabulary that fits: nothing shared
    small = vocabulary_folding(15_161)
    assert (small.slots, small.shared_slots, small.colliding_ids, small.released_overflow_ids) == (15_161, 0, 0, 0)
    # 40,000 ids: 0..7231 share with 32768..39999
    assert vocabulary_folding(40_000).colliding_ids == 2 * 7232


def test_a_matrix_gives_the_same_report_as_vectors():
    docs = _hand_docs()
    rows = [i for i, d in enumerate(docs) for _ in d.token_ids]
    cols = [int(t) for d in docs for t in d.token_ids]
    vals = [float(w) for d in docs for w in d.weights]
    m = sp.csr_matrix((vals, (rows, cols)), shape=(3, 70_000))
    assert (
        compatibility_report(m, vocab_size=70_000).to_dict() == compatibility_report(docs, vocab_size=70_000).to_dict()
    )


# ---------------------------------------------------------------------- search agreement
def test_recall_is_one_when_no_used_ids_collide():
    # ids at and above the modulus, but on distinct folded ids: 32800 -> 32, 70000 -> 4464, 98310 -> 6
    docs = [
        vec({10: 1.0, 32800: 0.5}),
        vec({70000: 2.0, 10: 0.2}),
        vec({98310: 1.5}),
        vec({20: 0.7, 32800: 1.1}),
        vec({70000: 0.3, 98310: 0.4, 20: 0.1}),
    ]
    queries = [vec({10: 1.0, 70000: 0.5}), vec({32800: 2.0, 98310: 1.0}), vec({20: 1.0})]
    r = compatibility_report(docs, queries, vocab_size=100_000, k=10)
    assert r.colliding_ids == 0 and r.merged_mass_share == 0.0
    assert r.folded.queries == 3 and r.folded.k == 5  # k is cut to the 5 documents
    assert r.folded.recall_at_k == 1.0 and r.folded.top1_changed_share == 0.0
    # matching documents: q0 -> d0, d1, d4 (3 of 5); q1 -> d0, d2, d3, d4 (4); q2 -> d3, d4 (2)
    assert r.folded.overlap_at_k == pytest.approx((3 + 4 + 2) / 3 / 5)
    assert r.query_cross_collision_mass_share == 0.0
    # query mass on ids >= 32768: q0 0.5 of 1.5, q1 all 3.0, q2 none
    assert r.query_mass_over_modulus == pytest.approx(3.5 / 5.5)


def test_a_collision_reorders_the_top_ten():
    # d0..d9 hold id 1 with weights 1.0..1.9; d10 holds id 32769, which folds onto id 1, with weight 5.0.
    # Query {1: 1.0}: exact top-10 is d9..d0 (d10 scores 0); folded, d10 scores 5.0 and comes first, d0 drops.
    docs = [vec({1: 1.0 + 0.1 * i}) for i in range(10)] + [vec({32769: 5.0})]
    queries = [vec({1: 1.0}), vec({3: 1.0})]  # the second matches nothing: skipped
    r = compatibility_report(docs, queries, vocab_size=40_000, k=10)
    assert r.colliding_ids == 2 and r.shared_slots == 1
    assert r.folded.queries == 1
    assert r.folded.recall_at_k == pytest.approx(0.9)
    assert r.folded.overlap_at_k == pytest.approx(0.9)
    assert r.folded.top1_changed_share == 1.0
    # quantized (ceiling 3 for documents): 1.0..1.9 -> 85..162, 5.0 -> 255: the same reordering
    assert r.quantized.recall_at_k == pytest.approx(0.9) and r.quantized.top1_changed_share == 1.0
    # query 0's mass (1.0) sits on id 1, whose folded id also holds document id 32769; query 1's (1.0) does not
    assert r.query_cross_collision_mass_share == 0.5


def test_query_ids_merge_by_max():
    # preprocessQueryTokens: Math.max(old, new) for a folded id seen twice: {1: 1.0, 32769: 0.5} -> {1: 1.0}
    q = sp.csr_matrix(([1.0, 0.5], ([0, 0], [1, 32769])), shape=(1, 40_000))
    folded = fold_matrix(q)
    assert folded.nnz == 1 and folded[0, 1] == 1.0


def test_to_dict_is_full_precision_and_to_frame_rounds():
    r = compatibility_report(_hand_docs(), vocab_size=70_000)
    d = r.to_dict()
    assert d["colliding_mass_share"] == 8.0 / 8.75
    assert d["vocabulary_vocab_size"] == 70_000
    assert d["folded_recall_at_k"] is None and d["quantized_top1_changed_share"] is None
    json.dumps(d)  # plain JSON types
    frame = r.to_frame().set_index("figure")["value"]
    assert frame["colliding_mass_share"] == round(8.0 / 8.75, 4)
    assert frame["distinct_ids"] == 7 and isinstance(frame["distinct_ids"], int)


@pytest.mark.parametrize(
    "docs, vocab_size, k, message",
    [
        ([vec({-1: 1.0})], None, 10, "-1"),
        ([SparseVector(np.array([4, 4]), np.array([1.0, 2.0]), np.zeros(2, dtype=np.int64))], None, 10, "repeats"),
        ([vec({5: 0.0})], None, 10, "positive"),
        ([vec({50: 1.0})], 40, 10, "vocab_size"),
        ([], None, 10, "no document"),
        ([vec({5: 1.0})], None, 0, "k must"),
    ],
)
def test_bad_vectors_are_refused(docs, vocab_size, k, message):
    with pytest.raises(ValueError, match=message):
        compatibility_report(docs, vocab_size=vocab_size, k=k)


# ---------------------------------------------------------------------- the CLI
def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSE_DEMO_")}
    env.update(
        {
            "SPARSE_DEMO_DEVICE": "cpu",
            "SPARSE_DEMO_VECTOR_CACHE": "off",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    return env


def _cli(*args: str):
    from cli_process import run_sparse_demo

    return run_sparse_demo(["sparse-vector-report", *args], env=_env())


def _one_error_line(proc, status: int) -> str:
    err = proc.stderr.decode("utf-8")
    lines = [line for line in err.split("\n") if line.strip()]
    assert proc.returncode == status, (proc.returncode, err)
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


@pytest.mark.slow
def test_cli_on_the_demo_model_and_sample_corpus():
    proc = _cli("--model", str(DEMO_MODEL), "--corpus", str(SAMPLE), "--json")
    assert proc.returncode == 0, proc.stderr.decode("utf-8")
    out = json.loads(proc.stdout.decode("utf-8"))
    vocab = json.loads((DEMO_MODEL / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    assert out["vocabulary_vocab_size"] == vocab < 32768  # a vocabulary that fits: nothing can collide
    assert out["documents"] == _lines(SAMPLE / "corpus.jsonl")
    assert out["queries"] == _lines(SAMPLE / "queries.jsonl")
    assert 0 < out["distinct_ids"] <= vocab
    assert out["colliding_ids"] == 0 and out["merged_mass_share"] == 0.0 and out["vocabulary_shared_slots"] == 0
    assert out["folded_recall_at_k"] == 1.0 and out["folded_top1_changed_share"] == 0.0
    assert 0.0 <= out["quantized_recall_at_k"] <= 1.0 and out["folded_k"] == 10
    assert out["model"] and out["corpus"] == "ko_sample" and out["notes"]


@pytest.mark.slow
def test_cli_vocab_only_needs_no_model():
    proc = _cli("--vocab-only", "250002", "--json")
    assert proc.returncode == 0, proc.stderr.decode("utf-8")
    out = json.loads(proc.stdout.decode("utf-8"))
    assert (out["shared_slots"], out["colliding_ids"], out["max_ids_per_slot"]) == (32768, 250002, 8)
    text = _cli("--vocab-only", "250002")
    assert text.returncode == 0 and "colliding_ids" in text.stdout.decode("utf-8")


@pytest.mark.slow
def test_cli_bad_input_is_one_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    assert "empty.jsonl" in _one_error_line(_cli("--model", str(DEMO_MODEL), "--corpus", str(empty)), 2)
    assert "--vocab-only" in _one_error_line(_cli("--vocab-only", "100", "--model", str(DEMO_MODEL)), 2)
    assert "--vocab-only" in _one_error_line(_cli("--vocab-only", "0"), 2)
    # a model that cannot be loaded is a failed run (exit 1), as in every other subcommand
    missing = tmp_path / "no-such-model"
    assert str(missing) in _one_error_line(_cli("--model", str(missing), "--corpus", str(SAMPLE)), 1)


@pytest.mark.slow
def test_the_search_tab_reports_the_demo_model_on_the_sample(tmp_path):
    """The Search tab's button: a Markdown table of the same figures the pure function gives (no ids collide
    in a 15,161-piece vocabulary, so folding changes nothing), and a clear error for a model that cannot load."""
    import json

    from sparse_demo.config import load_settings
    from sparse_demo.ui.common import SAMPLE_LABEL, AppContext
    from sparse_demo.ui.search_opensearch import run_sparse_vector_report

    models = tmp_path / "models.json"
    demo = str(Path(__file__).resolve().parents[1] / "assets" / "demo-v26-style")
    presets = [{"name": "demo", "source": demo}, {"name": "gone", "source": str(tmp_path / "nothing")}]
    models.write_text(json.dumps({"default": "demo", "presets": presets}), encoding="utf-8")
    ctx = AppContext.create(load_settings({"SPARSE_DEMO_MODELS": str(models), "SPARSE_DEMO_DEVICE": "cpu"}))
    text = run_sparse_vector_report(ctx, SAMPLE_LABEL, None, "demo", None, None)
    assert "| figure | value | meaning |" in text, text
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in text.splitlines()[4:]}
    assert rows["colliding_ids"] == "0", rows
    assert rows["folded_recall_at_k"] == "1", rows
    error = run_sparse_vector_report(ctx, SAMPLE_LABEL, None, "gone", None, None)
    assert error.startswith("⛔ Could not load model 'gone'") and "no such folder" in error, error


@pytest.mark.slow
def test_the_search_tab_report_on_an_upload_stops_at_the_time_budget(tmp_path):
    """A visitor's upload is encoded (and sent to the node) under SPARSE_DEMO_MAX_INDEX_SECONDS, as its search
    index is: over the budget the visitor reads which limit stopped it; the server's own corpus has no budget unless
    the app is public."""
    import dataclasses
    import json

    from sparse_demo.config import load_settings
    from sparse_demo.corpus import load_corpus
    from sparse_demo.ui.common import SAMPLE_LABEL, UPLOAD_LABEL, AppContext
    from sparse_demo.ui.search_opensearch import run_sparse_vector_report

    models = tmp_path / "models.json"
    models.write_text(json.dumps({"default": "demo", "presets": [{"name": "demo", "source": str(DEMO_MODEL)}]}))
    ctx = AppContext.create(load_settings({"SPARSE_DEMO_MODELS": str(models), "SPARSE_DEMO_DEVICE": "cpu"}))
    ctx = dataclasses.replace(ctx, limits=dataclasses.replace(ctx.limits, max_index_seconds=0.0))
    upload = load_corpus(SAMPLE)
    upload.owner = "visitor-a"
    text = run_sparse_vector_report(ctx, UPLOAD_LABEL, upload, "demo", None, None, on_engine=True)
    assert text.startswith("⛔ The sparse_vector report on your upload stopped after"), text
    assert "SPARSE_DEMO_MAX_INDEX_SECONDS" in text, text
    shared = run_sparse_vector_report(ctx, SAMPLE_LABEL, None, "demo", None, None)
    assert "| figure | value | meaning |" in shared, shared
    # on a public app the server's own corpora get the budget too: any visitor could ask for a big one
    public = AppContext.create(
        load_settings(
            {"SPARSE_DEMO_MODELS": str(models), "SPARSE_DEMO_DEVICE": "cpu", "SPARSE_DEMO_MODEL_SOURCES": "public"}
        )
    )
    public = dataclasses.replace(public, limits=dataclasses.replace(public.limits, max_index_seconds=0.0))
    text = run_sparse_vector_report(public, SAMPLE_LABEL, None, "demo", None, None, on_engine=True)
    assert text.startswith("⛔ The sparse_vector report on 'ko_sample'"), text
    assert "SPARSE_DEMO_MAX_INDEX_SECONDS" in text and "Pick a smaller corpus" in text, text
    assert "Upload fewer" not in text, text  # the visitor uploaded nothing

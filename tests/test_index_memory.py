"""In-memory backend: sparse dot products against an independent dense computation."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sparse_demo.index import IndexDocument, MemoryBackend, hybrid_search
from sparse_demo.index.memory import SparseIndex, lucene_feature_value

TOKENS = [f"▁t{i}" for i in range(200)] + ["3.5", "a.b", ".", "%", "100%", "x y", "..."]


def f32(x: float) -> float:
    return float(np.float32(x))


def random_docs(n: int, seed: int = 0) -> list[IndexDocument]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        toks = rng.sample(TOKENS, rng.randint(1, 40))
        # float32-representable weights: the index stores float32, so the reference is exact.
        vec = {t: f32(rng.uniform(0.01, 3.0)) for t in toks}
        terms = [f"w{rng.randint(0, 30)}/NNG" for _ in range(rng.randint(0, 12))]
        docs.append(IndexDocument(f"doc-{i:03d}", f"text {i}", terms, vec))
    return docs


def dense_reference(docs: list[IndexDocument], qvec: dict[str, float]) -> dict[str, float]:
    """Independent computation: a dense doc x vocab matrix and a numpy matrix-vector product."""
    vocab = sorted({t for d in docs for t in d.sparse} | set(qvec))
    col = {t: j for j, t in enumerate(vocab)}
    mat = np.zeros((len(docs), len(vocab)))
    for i, d in enumerate(docs):
        for t, w in d.sparse.items():
            mat[i, col[t]] = w
    q = np.zeros(len(vocab))
    for t, w in qvec.items():
        q[col[t]] = w
    scores = mat @ q
    return {d.id: float(s) for d, s in zip(docs, scores) if s > 0}


@pytest.fixture(scope="module")
def docs():
    return random_docs(150)


@pytest.fixture(scope="module")
def backend(docs):
    be = MemoryBackend()
    assert be.add(docs) == len(docs)
    return be


def test_sparse_scores_equal_dense_product(backend, docs):
    rng = random.Random(1)
    for _ in range(30):
        qvec = {t: rng.uniform(0.05, 2.0) for t in rng.sample(TOKENS, rng.randint(1, 30))}
        expected = dense_reference(docs, qvec)
        result = backend.search_sparse(qvec, k=len(docs))
        got = {h.id: h.score for h in result.hits}
        assert got == pytest.approx(expected, rel=1e-12)
        order = sorted(expected, key=lambda i: (-expected[i], i))
        assert result.ids == order
        assert backend.search_sparse(qvec, k=10).ids == order[:10]


def test_tokens_with_dots_and_percent(backend, docs):
    for token in ("3.5", "a.b", ".", "%", "100%", "x y", "..."):
        holders = {d.id for d in docs if token in d.sparse}
        got = {h.id for h in backend.search_sparse({token: 1.0}, k=len(docs)).hits}
        assert got == holders


def test_unknown_tokens_score_nothing(backend):
    assert backend.search_sparse({"never-seen": 1.0}).hits == []


@pytest.mark.parametrize(
    "vec, match",
    [
        ({"": 1.0}, "non-empty"),
        ({"a": 0.0}, "> 0"),
        ({"a": -1.0}, "> 0"),
        ({"a": float("nan")}, "> 0"),
        ({"a": float("inf")}, "> 0"),
        ({"a": "x"}, "not a number"),
        ({"a": 1e-40}, "smallest"),
    ],
)
def test_bad_vectors_rejected(vec, match):
    be = MemoryBackend()
    with pytest.raises(ValueError, match=match):
        be.add([IndexDocument("d", "t", [], vec)])
    with pytest.raises(ValueError, match=match):
        be.search_sparse(vec)
    assert be.count() == 0


def test_bad_documents_rejected():
    be = MemoryBackend()
    with pytest.raises(ValueError, match="id"):
        be.add([IndexDocument("", "t", [], {})])
    with pytest.raises(ValueError, match="whitespace"):
        be.add([IndexDocument("d", "t", ["two words"], {})])


def test_explain_contributions_sum_to_score(backend, docs):
    rng = random.Random(2)
    qvec = {t: rng.uniform(0.1, 2.0) for t in rng.sample(TOKENS, 25)}
    for hit in backend.search_sparse(qvec, k=10).hits:
        exp = backend.explain_sparse(hit.id, qvec)
        assert exp.score == pytest.approx(hit.score, rel=1e-12)
        assert sum(c.contribution for c in exp.contributions) == pytest.approx(hit.score, rel=1e-12)
        doc = next(d for d in docs if d.id == hit.id)
        for c in exp.contributions:
            assert c.doc_weight == doc.sparse[c.token]
            assert c.contribution == pytest.approx(c.query_weight * c.doc_weight)
        contribs = [c.contribution for c in exp.contributions]
        assert contribs == sorted(contribs, reverse=True)
    with pytest.raises(KeyError):
        backend.explain_sparse("missing", qvec)


def test_replace_clear_and_count():
    be = MemoryBackend()
    be.add([IndexDocument("a", "t", ["x/NNG"], {"x": 1.0}), IndexDocument("b", "t", ["x/NNG"], {"x": 2.0})])
    be.search_sparse({"x": 1.0})  # build, then replace
    be.add([IndexDocument("a", "t2", ["y/NNG"], {"x": 5.0})])
    assert be.count() == 2
    assert [(h.id, h.score) for h in be.search_sparse({"x": 1.0}).hits] == [("a", 5.0), ("b", 2.0)]
    assert be.search_bm25(["x/NNG"]).ids == ["b"]
    assert be.get("a").text == "t2"
    be.clear()
    assert be.count() == 0
    assert be.search_sparse({"x": 1.0}).hits == []


def test_ties_broken_by_id():
    be = MemoryBackend()
    be.add([IndexDocument(i, "t", [], {"x": 1.0}) for i in ("c", "a", "b")])
    assert be.search_sparse({"x": 2.0}).ids == ["a", "b", "c"]


def test_lucene_feature_precision():
    assert float(lucene_feature_value(0.7)) == 0.69921875
    assert float(lucene_feature_value(1.5)) == 1.5
    w = np.random.default_rng(0).uniform(0.001, 100, 1000).astype(np.float32)
    q = lucene_feature_value(w)
    assert np.all(q <= w) and np.all((w - q) / w < 2.0**-8)
    be = MemoryBackend(feature_precision="lucene")
    be.add([IndexDocument("d", "t", [], {"x": 0.7})])
    assert be.search_sparse({"x": 2.0}).hits[0].score == pytest.approx(2 * 0.69921875)
    with pytest.raises(ValueError, match="exact"):
        MemoryBackend(feature_precision="half")


def test_add_encoded_matches_dict_path(docs):
    vocab = sorted({t for d in docs for t in d.sparse})
    col = {t: j for j, t in enumerate(vocab)}
    indptr, cols, vals = [0], [], []
    for d in docs:
        cols += [col[t] for t in d.sparse]
        vals += list(d.sparse.values())
        indptr.append(len(cols))
    be = MemoryBackend()
    be.sparse.add_encoded([d.id for d in docs], np.array(indptr), np.array(cols), np.array(vals), vocab)
    qvec = {"▁t1": 1.0, "3.5": 0.5, "▁t7": 2.0}
    expected = dense_reference(docs, qvec)
    order = sorted(expected, key=lambda i: (-expected[i], i))[:20]
    hits = be.sparse.search(qvec, 20)
    assert [h.id for h in hits] == order
    assert [h.score for h in hits] == pytest.approx([expected[i] for i in order], rel=1e-12)


def test_progress_callback(docs):
    calls = []
    MemoryBackend().add(docs, progress=lambda f, m: calls.append((f, m)), batch_size=64)
    assert calls == [
        (64 / 150, "64/150 documents indexed"),
        (128 / 150, "128/150 documents indexed"),
        (1.0, "150/150 documents indexed"),
    ]


@pytest.mark.parametrize("method", ["minmax", "rrf"])
def test_hybrid_search(backend, method):
    qvec = {"▁t1": 1.0, "▁t2": 0.5, "a.b": 2.0}
    res = hybrid_search(backend, ["w1/NNG", "w2/NNG"], qvec, k=5, method=method)
    assert len(res.hits) == 5
    assert res.bm25.leg == "bm25" and res.sparse.leg == "sparse"
    assert all(h.leg_scores[0] is not None or h.leg_scores[1] is not None for h in res.hits)
    only_sparse = hybrid_search(backend, [], qvec, k=5, method=method)
    assert only_sparse.ids == backend.search_sparse(qvec, k=5).ids
    with pytest.raises(ValueError, match="candidates"):
        hybrid_search(backend, ["w1/NNG"], qvec, k=5, candidates=3)
    with pytest.raises(ValueError, match="minmax, rrf"):
        hybrid_search(backend, ["w1/NNG"], qvec, method="sum")


def test_add_encoded_leaves_caller_arrays_alone():
    indptr = np.array([0, 3])
    cols = np.array([2, 0, 1])
    vals = np.array([0.5, 1.5, 2.5], dtype=np.float32)
    SparseIndex().add_encoded(["d"], indptr, cols, vals, ["a", "b", "c"])
    assert cols.tolist() == [2, 0, 1] and vals.tolist() == [0.5, 1.5, 2.5]

"""OpenSearch 3.x's ``sparse_vector`` field (SEISMIC) measured on a real node.

Against OpenSearch 3.6.0 with the k-NN and neural-search 3.6.0.0 plugins from Maven Central
(``OPENSEARCH_VERSION=3.6.0 OPENSEARCH_NEURAL=1 OPENSEARCH_PORT=9280 scripts/opensearch.sh start``, which
``.ci/run`` starts beside the other nodes). Its URL is ``OPENSEARCH_SPARSE_VECTOR_URL`` (default
``http://127.0.0.1:9280``). Skipped when nothing answers there, unless CI=true, where that is a failure.

Expected values come from outside the code under test: the engine's scores are recomputed here with
neural-search's byte quantization written out from its source (``ByteQuantizer``: round(clamp(w, 0, c) *
255 / c), the score the integer dot product times c_ingest * c_search / 255²) on vectors folded here with
``id % 32768`` (max-merged); the exact top-k is a dense numpy dot product.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
URL = os.environ.get("OPENSEARCH_SPARSE_VECTOR_URL", "http://127.0.0.1:9280")
PLAIN_URL = os.environ.get("OPENSEARCH_URL", "http://127.0.0.1:9200")

pytestmark = pytest.mark.opensearch


@pytest.fixture(scope="module")
def client():
    from opensearchpy import OpenSearch

    c = OpenSearch(URL, timeout=120)
    try:
        c.info()
    except Exception as exc:  # noqa: BLE001 - connection refused and friends
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but no OpenSearch 3.x node answers at {URL}: {exc}")
        pytest.skip(f"no OpenSearch 3.x node at {URL} (OPENSEARCH_VERSION=3.6.0 OPENSEARCH_NEURAL=1): {exc}")
    return c


def _vectors(seed: int = 0):
    """300 documents and 25 queries over XLM-R-sized ids, drawn from 240 ids that include pairs 32768 apart
    (one folded id) and ids whose fold under 65536 lies in 32768..65535 (what the released field breaks on)."""
    rng = np.random.default_rng(seed)
    base = rng.choice(32_768, size=120, replace=False)
    pool = np.concatenate([base, base[:60] + 32_768 * rng.integers(1, 7, size=60), 40_000 + np.arange(60)])
    vocab = 250_002

    def rows(n: int, size: int, low: float, high: float) -> sp.csr_matrix:
        r, c, v = [], [], []
        for i in range(n):
            ids = rng.choice(pool, size=size, replace=False)
            r += [i] * size
            c += ids.tolist()
            v += rng.uniform(low, high, size).tolist()
        return sp.csr_matrix((v, (r, c)), shape=(n, vocab))

    return rows(300, 24, 0.05, 2.9), rows(25, 8, 0.1, 2.0)


def _fold(m: sp.csr_matrix) -> np.ndarray:
    """Dense ``[rows, 32768]``: columns folded with ``% 32768``, equal folded columns merged by max."""
    out = np.zeros((m.shape[0], 32_768))
    coo = m.tocoo()
    np.maximum.at(out, (coo.row, coo.col % 32_768), coo.data)
    return out


def _bytes(x: np.ndarray, ceiling: float) -> np.ndarray:
    c = np.float32(ceiling)
    v = np.clip(x.astype(np.float32), 0, c) * np.float32(255) / c
    return np.floor(v.astype(np.float64) + 0.5)


def test_the_engine_scores_and_ranks_folded_vectors_as_its_source_says(client):
    from sparse_demo.index.opensearch.sparse_vector import INDEX_PREFIX, engine_agreement

    docs, queries = _vectors()
    a = engine_agreement(client, docs, queries, k=10)
    assert a.version.startswith("3.")
    assert a.approximate and a.documents == 300
    assert len(a.hits) == 25 and all(len(h) == 10 for h in a.hits)
    # every score is the byte-quantized dot product of the folded vectors (ceilings 3 and 16)
    expected = (_bytes(_fold(queries), 16.0) @ _bytes(_fold(docs), 3.0).T) * (3.0 * 16.0 / 255**2)
    for q, found in enumerate(a.hits):
        for d, score in found:
            assert score == pytest.approx(expected[q, d], rel=1e-5), (q, d)
    # recall against the exact top-10 of the unfolded vectors, recomputed here
    exact = (queries @ docs.T).toarray()
    recalls = [len(set(np.argsort(-exact[q], kind="stable")[:10]) & {d for d, _ in a.hits[q]}) / 10 for q in range(25)]
    assert a.recall_at_k == pytest.approx(np.mean(recalls))
    assert 0.3 < a.recall_at_k < 1.0  # folding merges the pairs 32768 apart: something is lost, not everything
    assert a.score_max_rel_error < 1e-5
    # the measured index is gone
    assert not client.indices.get(index=f"{INDEX_PREFIX}*", ignore_unavailable=True, allow_no_indices=True)


@pytest.mark.parametrize("wait", [0.001, lambda: 0.001], ids=["seconds", "asked-at-the-merge"])
def test_a_merge_past_its_timeout_stops_and_leaves_no_index(client, wait):
    """The wait for SEISMIC's merge is bounded (a visitor's upload gets what is left of its time budget when
    the merge starts): past it, a TimeoutError names the wait and the temporary index is deleted."""
    from sparse_demo.index.opensearch.sparse_vector import INDEX_PREFIX, engine_agreement

    docs, queries = _vectors(seed=1)
    with pytest.raises(TimeoutError, match=r"merge of 300 documents did not finish within 0.001 s"):
        engine_agreement(client, docs, queries, k=10, merge_timeout_s=wait)
    assert not client.indices.get(index=f"{INDEX_PREFIX}*", ignore_unavailable=True, allow_no_indices=True)


def test_a_node_without_the_field_is_refused_with_the_reason():
    from opensearchpy import OpenSearch

    from sparse_demo.index.opensearch.sparse_vector import engine_agreement, sparse_vector_support

    plain = OpenSearch(PLAIN_URL, timeout=30)
    try:
        version = plain.info()["version"]["number"]
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the plugin-free node is not reachable at {PLAIN_URL}: {exc}")
        pytest.skip(f"no plugin-free node at {PLAIN_URL}: {exc}")
    why = sparse_vector_support(plain)
    assert why is not None and version in why and "3.3" in why
    docs, queries = _vectors()
    with pytest.raises(ValueError, match="no sparse_vector field"):
        engine_agreement(plain, docs, queries)


@pytest.mark.slow
def test_cli_measures_the_demo_model_on_the_node(client, tmp_path, monkeypatch, capsys):
    """``sparse-vector-report --opensearch`` (its ``main``, in this process) on 80 documents of the bundled
    sample and 30 of its queries: the engine block counts them, SEISMIC searched them, and its scores are the
    in-memory model's; a node without the field is refused, with the reason."""
    from sparse_demo.cli import main
    from sparse_demo.corpus import load_corpus

    corpus = load_corpus(ROOT / "assets" / "corpus" / "ko_sample")
    docs = tmp_path / "docs.jsonl"
    docs.write_text(
        "\n".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}) for d in corpus.documents[:80]),
        encoding="utf-8",
    )
    queries = tmp_path / "queries.txt"
    queries.write_text("\n".join(q.text for q in corpus.queries[:30]), encoding="utf-8")
    argv = ["sparse-vector-report", "--model", str(ROOT / "assets" / "demo-v26-style"), "--corpus", str(docs)]
    argv += ["--queries", str(queries), "--opensearch"]

    monkeypatch.setenv("OPENSEARCH_URL", URL)
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    engine = out["engine"]
    assert engine["documents"] == out["documents"] == 80
    assert engine["approximate"] is True
    assert 0 < engine["queries"] <= 30 and 0.5 < engine["recall_at_k"] <= 1.0
    assert engine["score_max_rel_error"] < 1e-5
    monkeypatch.setenv("OPENSEARCH_URL", PLAIN_URL)
    assert main(argv) != 0
    assert "no sparse_vector field" in capsys.readouterr().err


@pytest.mark.slow
def test_the_search_tab_measures_on_the_node_or_says_why_not(client, tmp_path, monkeypatch):
    """The Search tab's report with "also measure it on the OpenSearch node": a second table from the node
    (its version, SEISMIC, the documents of the visitor's corpus); on a node without the field, the in-memory
    table and a warning naming the reason."""
    from sparse_demo.config import load_settings
    from sparse_demo.corpus import Corpus, load_corpus
    from sparse_demo.ui.common import UPLOAD_LABEL, AppContext
    from sparse_demo.ui.search_opensearch import run_sparse_vector_report

    sample = load_corpus(ROOT / "assets" / "corpus" / "ko_sample")
    ids = {d.id for d in sample.documents[:60]}
    queries = [q for q in sample.queries if set(sample.qrels.get(q.id, {})) & ids][:20]
    small = Corpus("sixty passages", sample.documents[:60], queries, {q.id: sample.qrels[q.id] for q in queries})
    models = tmp_path / "models.json"
    demo = str(ROOT / "assets" / "demo-v26-style")
    models.write_text(json.dumps({"default": "demo", "presets": [{"name": "demo", "source": demo}]}), encoding="utf-8")
    ctx = AppContext.create(load_settings({"SPARSE_DEMO_MODELS": str(models), "SPARSE_DEMO_DEVICE": "cpu"}))

    monkeypatch.setenv("OPENSEARCH_URL", URL)
    text = run_sparse_vector_report(ctx, UPLOAD_LABEL, small, "demo", None, None, on_engine=True)
    assert text.count("| figure | value | meaning |") == 2, text
    engine = text.split("Measured on the OpenSearch ")[1]
    assert engine.startswith("3.") and "searched by SEISMIC" in engine, engine
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1] for line in engine.splitlines() if " | " in line}
    assert rows["documents"] == "60" and rows["approximate"] == "yes", rows
    assert 0 < float(rows["recall_at_k"]) <= 1, rows
    monkeypatch.setenv("OPENSEARCH_URL", PLAIN_URL)
    text = run_sparse_vector_report(ctx, UPLOAD_LABEL, small, "demo", None, None, on_engine=True)
    assert text.count("| figure | value | meaning |") == 1 and "no sparse_vector field" in text, text

"""OpenSearch as clusters run it: the neural-search plugin and a two-node cluster that loses a node.

Against a real cluster started by ``scripts/opensearch.sh`` with ``OPENSEARCH_NEURAL=1 OPENSEARCH_NODES=2
OPENSEARCH_PORT=9250`` (what ``.ci/run`` starts beside the plugin-free node): OpenSearch 2.19.1 with the
k-NN and neural-search plugins from Maven Central. Its URL is ``OPENSEARCH_NEURAL_URL`` (default
``http://127.0.0.1:9250``, node 0). Skipped when nothing answers there, unless CI=true, where that is a
failure.

Expected values come from outside the code under test: sparse scores are recomputed here from the
stored vectors with the engine's 9-bit truncation (numpy), fused rankings come from the pure fusion
functions applied to the cluster's own legs (those functions are checked against hand values in
test_fusion), and the document count and ids come from the corpus.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from sparse_demo.index import IndexDocument, fuse
from sparse_demo.index.opensearch import ConnectionSettings, OpenSearchBackend, OpenSearchUnavailable

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "opensearch.sh"
URL = os.environ.get("OPENSEARCH_NEURAL_URL", "http://127.0.0.1:9250")
DEMO = ROOT / "assets" / "demo-v26-style"


def _settings() -> ConnectionSettings:
    return ConnectionSettings(url=URL)


@pytest.fixture(scope="module")
def cluster() -> OpenSearchBackend:
    probe = OpenSearchBackend(f"probe-{uuid.uuid4().hex[:8]}", _settings())
    try:
        probe.ping()
    except OpenSearchUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the neural-search cluster is not reachable at {URL}: {exc}")
        pytest.skip(f"no neural-search cluster at {URL} (scripts/opensearch.sh with OPENSEARCH_NEURAL=1): {exc}")
    if not probe.has_neural_plugin():
        pytest.fail(f"the node at {URL} has no neural-search plugin")
    return probe


@pytest.fixture(scope="module")
def sample(cluster):
    """The bundled sample corpus in a fresh index (1 shard, so the legs and the fusion see the same lists),
    encoded by the V26-style demo model, and its queries."""
    from sparse_demo.corpus import load_corpus
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.search import build_index

    corpus = load_corpus(ROOT / "assets" / "corpus" / "ko_sample")
    encoder = SpladeEncoder.load(str(DEMO), device="cpu")
    name = f"test-neural-{uuid.uuid4().hex[:10]}"
    index = build_index(corpus, encoder, "opensearch", index_name=name, opensearch_settings=_settings())
    yield index, [q.text for q in corpus.queries][:60]
    index.backend.clear()


def _nine_bits(x: float) -> float:
    """Lucene's stored feature value: a float32 with its 15 low mantissa bits dropped."""
    bits = np.array([x], dtype=np.float32).view(np.uint32) >> np.uint32(15) << np.uint32(15)
    return float(bits.view(np.float32)[0])


def test_neural_sparse_scores_are_the_dot_products_of_the_stored_vectors(sample):
    index, queries = sample
    be = index.backend
    assert be.has_neural_plugin()
    assert "neural_sparse" in str(be.sparse_query({"▁a": 1.0}))
    checked = 0
    for text in queries[:20]:
        qvec, _ = index.query_vector(text)
        res = be.search_sparse(qvec, 10)
        assert res.hits, text
        for hit in res.hits:
            stored = be.get(hit.id).sparse
            expected = sum(w * _nine_bits(stored[t]) for t, w in qvec.items() if t in stored)
            assert hit.score == pytest.approx(expected, rel=1e-5), (text, hit.id)
            checked += 1
    assert checked == 200


def test_the_engines_explanation_is_decoded_into_tokens_and_agrees(sample):
    """``_explain`` leaves decoded back into tokens: each equals q[t] x the 9-bit stored weight (numpy here),
    and the Search tab's explanation says the engine agrees."""
    from sparse_demo.search import explain

    index, queries = sample
    be = index.backend
    for text in queries[:5]:
        qvec, _ = index.query_vector(text)
        top = be.search_sparse(qvec, 3).hits
        for hit in top:
            stored = be.get(hit.id).sparse
            engine = be.engine_explain_sparse(hit.id, qvec)
            expected = {t: w * _nine_bits(stored[t]) for t, w in qvec.items() if t in stored}
            assert set(engine) == set(expected), (text, hit.id)
            assert all(engine[t] == pytest.approx(v, rel=1e-5) for t, v in expected.items())
            assert sum(engine.values()) == pytest.approx(hit.score, rel=1e-5)
            line = explain(index, hit.id, text).engine_agreement()
            assert line is not None and "agrees" in line, line


def _tied(blocks: list[dict[str, range]], docs) -> bool:
    """Whether any of ``docs`` shares its score (so its rank is open) with another document in a leg."""
    return any(len(b[d]) > 1 for b in blocks for d in docs if d in b)


def _rank_blocks(leg) -> dict[str, range]:
    """Each document's possible 1-based ranks in a leg: the ranks its tied scores share."""
    by_score: dict[float, list[int]] = {}
    for h in leg.hits:
        by_score.setdefault(h.score, []).append(h.rank)
    return {h.id: range(min(by_score[h.score]), max(by_score[h.score]) + 1) for h in leg.hits}


def _rrf_possible(doc: str, score: float, blocks: list[dict[str, range]]) -> bool:
    """Whether some order of the tied documents gives ``doc`` the RRF score ``score`` (rank constant 60)."""
    options = [[1 / (60 + r) for r in b[doc]] if doc in b else [0.0] for b in blocks]
    sums = {0.0}
    for opts in options:
        sums = {a + o for a in sums for o in opts}
    return any(abs(x - score) < 2e-6 for x in sums)


@pytest.mark.parametrize(("fusion", "weights"), [("minmax", (0.7, 0.3)), ("minmax", (0.2, 0.8)), ("rrf", None)])
def test_server_side_hybrid_ranks_as_client_side_fusion_of_the_same_legs(sample, fusion, weights):
    """The cluster's hybrid query (search pipeline) and :func:`fuse` on the cluster's own legs agree.

    RRF only looks at ranks, and where a leg has tied scores the engine ranks the tied documents in
    index order and the client by id: where a document of either top 10 is tied in a leg, every fused score
    must be one that some order of the tied documents gives, in descending order; where none is (ties further
    down a leg change no rank of theirs), the two lists are equal."""
    index, queries = sample
    be = index.backend
    exact = 0
    for text in queries:
        terms = index.query_terms(text)
        qvec, _ = index.query_vector(text)
        server, pipeline = be.search_hybrid(terms, qvec, 10, fusion=fusion, weights=weights, candidates=100)
        assert pipeline.startswith(f"sparse-demo-hybrid-{fusion}")
        legs = [be.search_bm25(terms, 100), be.search_sparse(qvec, 100)]
        client = fuse(legs, method=fusion, weights=weights, k=10)
        assert len(server.hits) == len(client.hits), text
        got = [(h.id, h.score) for h in server.hits]
        want = [(h.id, h.score) for h in client.hits]
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        if fusion == "rrf":
            blocks = [_rank_blocks(leg) for leg in legs]
            if _tied(blocks, {d for d, _ in got + want}):
                assert all(_rrf_possible(d, sc, blocks) for d, sc in got), (text, got, want)
                continue
        for (gid, gs), (wid, ws) in zip(got, want, strict=True):
            assert gs == pytest.approx(ws, abs=2e-6), (text, got, want)
            if gid != wid:  # only a float32 near-tie may swap
                assert gid in dict(want) and abs(dict(want)[gid] - ws) < 2e-6, (text, got, want)
        exact += 1
    assert exact >= (1 if fusion == "rrf" else len(queries)), exact  # RRF: many queries have ties in their top 10


def test_the_search_function_fuses_on_the_cluster_and_says_so(sample):
    from sparse_demo.search import search

    index, queries = sample
    out = search(index, queries[0], method="hybrid", fusion="minmax", weight=0.3)
    assert out.fused_by == "server: sparse-demo-hybrid-minmax-0.7000-0.3000"
    assert [h.bm25_score is not None or h.sparse_score is not None for h in out.hits] == [True] * len(out.hits)
    here = search(index, queries[0], method="hybrid", fusion="minmax", weight=0.3, fusion_side="client")
    assert here.fused_by == "client"
    assert [h.id for h in out.hits] == [h.id for h in here.hits]


def test_two_phase_keeps_the_full_score_of_what_it_returns(sample):
    """neural_sparse_two_phase_processor: high-weight tokens retrieve, the rest only rescore; every document
    it returns has its one-phase score, and it returns no document the one-phase search would not."""
    from sparse_demo.index.opensearch import TwoPhase
    from sparse_demo.search import search

    index, queries = sample
    be = index.backend
    tp = TwoPhase(prune_ratio=0.6, expansion_rate=2.0, max_window_size=1000)
    with pytest.raises(ValueError, match="exceeds max_window_size"):
        be.search_sparse({"▁a": 1.0}, 600, two_phase=tp)  # said before the engine refuses it
    fewer = 0
    for text in queries[:20]:
        qvec, _ = index.query_vector(text)
        full = {h.id: h.score for h in be.search_sparse(qvec, 1000).hits}  # every match (313 documents)
        two = be.search_sparse(qvec, 300, two_phase=tp).hits
        assert two and {h.id for h in two} <= set(full), text
        assert all(h.score == pytest.approx(full[h.id], rel=1e-6) for h in two), text
        fewer += len(two) < len(full)
    assert fewer > 0  # the low-weight tokens alone match documents that two phases leave out
    out = search(index, queries[0], method="hybrid", weight=0.5, two_phase=tp)
    assert out.fused_by.endswith(tp.name) and any("Two-phase" in n for n in out.notes), (out.fused_by, out.notes)


# ---------------------------------------------------------------------- a lost node
def _script_env() -> dict[str, str]:
    port = urlparse(URL).port or 9250
    return {**os.environ, "OPENSEARCH_NEURAL": "1", "OPENSEARCH_NODES": "2", "OPENSEARCH_PORT": str(port)}


def test_a_two_node_cluster_answers_every_search_while_a_node_is_lost(cluster):
    """2 shards, 1 replica; node 1 is stopped while a loop of searches runs against node 0."""
    from sparse_demo.korean import get_analyzer

    health = cluster.health()
    if health["number_of_nodes"] < 2:
        pytest.skip(f"the cluster at {URL} has {health['number_of_nodes']} node(s); this test needs 2")
    analyzer = get_analyzer("default")
    texts = [f"문서 {i}번: 서울 {i % 7} 지역의 날씨와 교통 정보 {i % 13}" for i in range(300)]
    docs = [
        IndexDocument(f"d{i:03d}", t, analyzer.terms(t), {"▁서울": 1.0 + i % 5, f"▁n{i % 17}": 0.5 + i % 3})
        for i, t in enumerate(texts)
    ]
    be = OpenSearchBackend(f"test-failover-{uuid.uuid4().hex[:8]}", _settings(), shards=2, replicas=1)
    be.add(docs)
    deadline = time.monotonic() + 180  # every replica assigned before a node goes (slow on a busy machine)
    while cluster.client.cluster.health(index=be.index)["status"] != "green":
        assert time.monotonic() < deadline, cluster.client.cluster.health(index=be.index)
        time.sleep(0.5)
    answers: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def searches() -> None:
        while not stop.is_set():
            try:
                hits = be.search_sparse({"▁서울": 1.0, "▁n3": 2.0}, 10).hits
                terms = be.search_bm25(analyzer.terms("서울 교통"), 10).hits
                fused, _ = be.search_hybrid(analyzer.terms("서울 교통"), {"▁n3": 1.0}, 10, weights=(0.5, 0.5))
                assert all(0 <= h.score <= 1 for h in fused.hits), fused  # normalized by the pipeline
                answers.append((len(hits), len(terms), len(fused.hits)))
            except Exception as e:  # noqa: BLE001 - every failure is reported below
                failures.append(repr(e))
            time.sleep(0.05)

    loop = threading.Thread(target=searches)
    loop.start()
    try:
        time.sleep(1)
        before = len(answers)
        subprocess.run(["bash", str(SCRIPT), "stop-node", "1"], env=_script_env(), check=True, timeout=120)
        after_stop = len(answers)
        deadline = time.monotonic() + 60  # the manager notices the lost node (seconds on a busy machine)
        while (degraded := be.health(index_only=True))["number_of_nodes"] != 1 and time.monotonic() < deadline:
            time.sleep(0.5)  # `degraded`: this index's copies (others on the cluster may have none left)
        time.sleep(3)  # searches go on against the one node left
        note = be.health_note()
    finally:
        stop.set()
        loop.join(timeout=30)
    try:
        assert not failures, failures[:3]
        assert before > 0 and len(answers) > after_stop >= before, (before, after_stop, len(answers))
        assert all(n == (10, 10, 10) for n in answers), set(answers)  # sparse, BM25, hybrid: all complete
        assert degraded["status"] == "yellow" and degraded["number_of_nodes"] == 1, degraded
        assert note and "yellow" in note and "complete" in note, note
        assert be.count() == len(docs)
        got = {h.id for h in be.search_sparse({"▁서울": 1.0}, 300).hits}
        assert got == {d.id for d in docs}
    finally:
        be.clear()
        if os.environ.get("CI") != "true":  # CI stops the whole cluster next; elsewhere bring node 1 back
            subprocess.run(["bash", str(SCRIPT), "start-node", "1"], env=_script_env(), check=False, timeout=300)


# ---------------------------------------------------------------------- an interrupted ingest
_KILLED_INGEST = """
import os, signal, sys
from sparse_demo.corpus import load_corpus
from sparse_demo.encoder import SpladeEncoder
from sparse_demo.index.opensearch import ConnectionSettings
from sparse_demo.search import build_index

def progress(fraction, desc):
    if desc.endswith("documents indexed"):
        done, total = (int(x.replace(",", "")) for x in desc.split()[0].split("/"))
        if 0 < done < total and done >= total // 2:
            print(done, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # killed halfway, as a lost machine or an impatient user would

corpus = load_corpus(sys.argv[1])
build_index(corpus, SpladeEncoder.load(sys.argv[2], device="cpu"), "opensearch", index_name=sys.argv[3],
            opensearch_settings=ConnectionSettings(url=sys.argv[4]), shards=2, replicas=1, bulk_size=40,
            progress=progress)
"""


def test_an_ingest_killed_halfway_resumes_with_exactly_the_corpus(cluster, tmp_path):
    import json
    import sys

    from sparse_demo.corpus import load_corpus

    docs = load_corpus(ROOT / "assets" / "corpus" / "ko_sample").documents[:120]  # 3 bulks of 40: killed in the 2nd
    folder = tmp_path / "corpus.jsonl"
    folder.write_text(
        "\n".join(json.dumps({"id": d.id, "title": d.title, "text": d.text}, ensure_ascii=False) for d in docs),
        encoding="utf-8",
    )
    want = {d.id for d in docs}
    name = f"test-resume-{uuid.uuid4().hex[:8]}"
    be = OpenSearchBackend(name, _settings())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_INGEST, str(folder), str(DEMO), name, URL],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert killed.returncode == -9, killed.stderr[-2000:]
        sent = int(killed.stdout.split()[-1])
        be.recover()  # what the cluster acknowledged before the kill, made visible
        partial = be.existing_ids()
        assert 0 < len(partial) < len(want) and partial <= want, (sent, len(partial))
        args = ["--corpus", str(folder), "--model", str(DEMO), "--backend", "opensearch", "--index-name", name]
        resumed = subprocess.run(
            [sys.executable, "-m", "sparse_demo", "index", *args, "--no-fallback", "--resume", "--json"],
            env={**env, "OPENSEARCH_URL": URL},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        notes = " ".join(json.loads(resumed.stdout)["notes"])
        assert f"{len(partial):,} documents were already there, {len(want) - len(partial):,} added" in notes, notes
        assert "[##########] 100%" in resumed.stderr
        assert be.count() == len(want)
        assert be.existing_ids() == want
        settings = be.client.indices.get_settings(index=name)[name]["settings"]["index"]
        assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("2", "1")
    finally:
        be.clear()

"""Search service: legs checked against independent computations, fusion, explain, highlight,
the index cache, OpenSearch (real node and fallback) and the index/search CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from sparse_demo import search as svc
from sparse_demo.corpus import Corpus, Document, Query
from sparse_demo.index import fuse
from sparse_demo.korean import bm25_terms

ROOT = Path(__file__).resolve().parent.parent
K1, B = 1.2, 0.75
DOC_TOP_K = 64

# Short documents (< 24 morphemes each) so Lucene's one-byte length norm is exact.
DOCS = [
    Document("med-001", "당뇨병 치료는 식이요법과 운동입니다.", "당뇨병"),
    Document("med-002", "혈당 관리를 위해 운동이 필요합니다.", "혈당"),
    Document("med-003", "고혈압 환자는 소금을 줄여야 합니다.", ""),
    Document("law-001", "전세 보증금을 돌려받는 방법입니다.", "전세"),
    Document("tax-001", "연말정산 의료비 공제 방법입니다.", ""),
    Document("food-001", "김치찌개를 맛있게 끓이는 방법입니다.", "요리"),
]
QUERIES = [Query("q1", "당뇨병 치료 방법"), Query("q2", "전세 보증금")]
QRELS = {"q1": {"med-001": 1}, "q2": {"law-001": 1}}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def doc_text(d: Document) -> str:
    return f"{d.title}\n{d.text}" if d.title else d.text


def top_tokens(vec: dict[str, float], k: int | None) -> dict[str, float]:
    """The k heaviest tokens (search_vector is ordered by weight, ties by id; sort is stable)."""
    items = sorted(vec.items(), key=lambda kv: -kv[1])
    return dict(items if k is None else items[:k])


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus("inline", list(DOCS), list(QUERIES), {q: dict(v) for q, v in QRELS.items()})


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    from sparse_demo.encoder import SpladeEncoder

    return SpladeEncoder.load(str(tiny_model_dir), device="cpu", name="tiny-a")


@pytest.fixture(scope="module")
def doc_vectors(encoder) -> dict[str, dict[str, float]]:
    """Full search vectors computed here, one text at a time."""
    return {d.id: encoder.search_vector(encoder.encode([doc_text(d)])[0]) for d in DOCS}


@pytest.fixture(scope="module")
def index(corpus, encoder):
    return svc.build_index(corpus, encoder, "memory", doc_top_k=DOC_TOP_K)


# ----------------------------------------------------------------------------- sparse leg
def test_sparse_scores_are_dot_products(index, encoder, doc_vectors):
    query = "당뇨병 치료 방법"
    qvec = top_tokens(encoder.search_vector(encoder.encode([query])[0]), svc.DEFAULT_QUERY_TOP_K)
    expected = {}
    for doc_id, full in doc_vectors.items():
        dvec = top_tokens(full, DOC_TOP_K)
        expected[doc_id] = sum(w * dvec[t] for t, w in qvec.items() if t in dvec)
    out = svc.search(index, query, method="sparse", k=len(DOCS))
    got = {h.id: h.score for h in out.hits}
    want = {i: s for i, s in expected.items() if s > 0}
    assert got.keys() == want.keys()
    for doc_id, s in want.items():
        assert got[doc_id] == pytest.approx(s, rel=1e-6)
    assert out.ids == sorted(want, key=lambda i: (-want[i], i))
    assert [h.sparse_rank for h in out.hits] == list(range(1, len(out.hits) + 1))
    assert all(h.bm25_score is None and h.bm25_rank is None for h in out.hits)
    assert index.stats.pruned_docs == len(DOCS)  # a random model activates most of the vocabulary


def test_unpruned_index_is_the_full_dot_product(corpus, encoder, doc_vectors):
    small = Corpus("two", list(DOCS[:2]))
    idx = svc.build_index(small, encoder, "memory", doc_top_k=None, query_top_k=None)
    qvec = encoder.search_vector(encoder.encode(["혈당 관리"])[0])
    out = svc.search(idx, "혈당 관리", method="sparse", k=5)
    for h in out.hits:
        dvec = doc_vectors[h.id]
        want = math.fsum(w * dvec[t] for t, w in qvec.items() if t in dvec)
        assert h.score == pytest.approx(want, rel=1e-6)
    assert idx.stats.pruned_docs == 0


# ----------------------------------------------------------------------------- BM25 leg
def lucene_bm25(query_terms: list[str], docs: list[list[str]]) -> list[float]:
    """OpenSearch's BM25 by hand: Lucene's formula times (k1 + 1), exact short lengths."""
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    df = Counter(t for d in docs for t in set(d))
    scores = []
    for d in docs:
        tf = Counter(d)
        s = 0.0
        for t in query_terms:
            if tf[t]:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += (K1 + 1) * idf * tf[t] / (tf[t] + K1 * (1 - B + B * len(d) / avgdl))
        scores.append(s)
    return scores


def test_bm25_matches_the_formula_by_hand(corpus):
    idx = svc.build_index(corpus, None)  # BM25 only: no model
    term_lists = [bm25_terms(doc_text(d)) for d in DOCS]
    assert max(len(t) for t in term_lists) < 24
    for query in ("당뇨병 치료 방법", "전세 보증금 돌려받는 방법", "운동"):
        want = lucene_bm25(bm25_terms(query), term_lists)
        out = svc.search(idx, query, method="bm25", k=10)
        expected = {d.id: s for d, s in zip(DOCS, want) if s > 0}
        assert {h.id: h.score for h in out.hits} == pytest.approx(expected, rel=1e-5)
        assert out.ids == sorted(expected, key=lambda i: (-expected[i], i))
        assert all(h.bm25_rank == h.rank and h.sparse_score is None for h in out.hits)


def test_bm25_only_index_refuses_sparse(corpus):
    idx = svc.build_index(corpus, None)
    with pytest.raises(ValueError, match="without a model"):
        svc.search(idx, "당뇨병", method="sparse")


# ----------------------------------------------------------------------------- hybrid
@pytest.mark.parametrize(("fusion", "weight"), [("minmax", 0.3), ("minmax", 0.5), ("rrf", 0.5)])
def test_hybrid_is_fusion_of_the_legs(index, fusion, weight):
    query = "당뇨병 치료 방법"
    out = svc.search(index, query, method="hybrid", k=4, fusion=fusion, weight=weight)
    bm25 = index.backend.search_bm25(bm25_terms(query), 100)
    sparse = index.backend.search_sparse(index.query_vector(query)[0], 100)
    weights = (1 - weight, weight) if fusion == "minmax" else None
    fused = fuse([bm25, sparse], method=fusion, weights=weights, k=4)
    assert out.ids == fused.ids
    for h, f in zip(out.hits, fused.hits):
        assert h.score == pytest.approx(f.score, rel=1e-12)
        assert (h.bm25_score, h.bm25_rank, h.sparse_score, h.sparse_rank) == (
            f.leg_scores[0], f.leg_ranks[0], f.leg_scores[1], f.leg_ranks[1])
    assert out.total_ms >= out.search_ms >= 0
    assert out.legs["bm25"].ids == bm25.ids


def test_minmax_by_hand_on_two_legs(index):
    """Weight 1 keeps only the sparse leg's normalised score: the top sparse hit scores 1."""
    out = svc.search(index, "당뇨병 치료 방법", method="hybrid", k=3, weight=1.0)
    sparse = svc.search(index, "당뇨병 치료 방법", method="sparse", k=3)
    assert out.hits[0].score == pytest.approx(1.0)
    assert out.ids == sparse.ids


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"method": "dense"}, "method"), ({"fusion": "max"}, "fusion"), ({"k": 0}, "k must"),
     ({"weight": 1.5}, "weight")],
)
def test_bad_options_are_readable(index, kwargs, match):
    with pytest.raises(ValueError, match=match):
        svc.search(index, "당뇨병", **kwargs)


def test_empty_query_is_readable(index):
    with pytest.raises(ValueError, match="empty"):
        svc.search(index, "   ")


# ----------------------------------------------------------------------------- gold, explain
def test_gold_hits_marked_when_query_is_a_corpus_query(index):
    out = svc.search(index, "  당뇨병   치료 방법 ", method="bm25", k=5)
    assert out.gold_query_id == "q1" and out.gold_total == 1
    assert [h.id for h in out.hits if h.gold] == ["med-001"]
    other = svc.search(index, "당뇨병 치료", method="bm25", k=5)
    assert other.gold_query_id is None and all(h.relevance is None for h in other.hits)


def test_explain_products_sum_to_the_sparse_score(index, encoder, doc_vectors):
    query = "혈당 관리 운동"
    out = svc.search(index, query, method="sparse", k=2)
    hit = out.hits[0]
    exp = svc.explain(index, hit.id, query)
    assert exp.sparse_score == pytest.approx(hit.score, rel=1e-9)
    qvec = top_tokens(encoder.search_vector(encoder.encode([query])[0]), svc.DEFAULT_QUERY_TOP_K)
    dvec = top_tokens(doc_vectors[hit.id], DOC_TOP_K)
    assert {c.token for c in exp.contributions} == {t for t in qvec if t in dvec}
    for c in exp.contributions:
        assert c.query_weight == pytest.approx(qvec[c.token], rel=1e-6)
        assert c.doc_weight == pytest.approx(dvec[c.token], rel=1e-6)
        assert c.contribution == pytest.approx(qvec[c.token] * dvec[c.token], rel=1e-6)
    products = [c.contribution for c in exp.contributions]
    assert products == sorted(products, reverse=True)
    assert "혈당/NNG" in svc.explain(index, "med-002", query).matched_terms
    with pytest.raises(KeyError):
        svc.explain(index, "nope", query)


# ----------------------------------------------------------------------------- highlight
def test_highlight_escapes_html_and_marks_matches():
    text = '<script>alert("x")</script> 혈당 관리 & 관리비'
    out = svc.highlight(text, terms=["혈당/NNG"], tokens=["▁관리", "▁리"])
    assert "<script>" not in out and "&lt;script&gt;" in out and "&amp;" in out and "&quot;x&quot;" in out
    assert '<mark class="hl-bm25" style="background:#ffe08a">혈당</mark>' in out
    assert out.count('class="hl-sparse"') == 2  # "관리" twice at a word start; "▁리" never (mid-word)


def test_highlight_both_marks_overlap_and_keeps_text():
    import re

    text = "당뇨병 치료\n방법"
    out = svc.highlight(text, terms=["치료/NNG"], tokens=["▁치료", "법"])
    assert '<mark class="hl-both" style="background:#b2f2bb">치료</mark>' in out
    assert "<br>" in out
    assert re.sub(r"<[^>]+>", "", out.replace("<br>", "\n")) == text
    assert svc.highlight("") == ""
    assert svc.highlight("a < b") == "a &lt; b"


# ----------------------------------------------------------------------------- session cache
class CountingEncoder:
    """Wraps an encoder and counts encode calls."""

    def __init__(self, inner):
        self.inner, self.calls, self.name = inner, 0, inner.name

    def encode(self, texts, **kw):
        self.calls += len(texts)
        return self.inner.encode(texts, **kw)

    def __getattr__(self, item):
        return getattr(self.inner, item)


def test_session_reuses_the_index_for_a_second_visitor(encoder):
    counting = CountingEncoder(encoder)
    session = svc.SearchSession()
    first = Corpus("mine", list(DOCS[:3]))
    idx1, notes1 = session.get_or_build(first, counting, "memory", doc_top_k=16)
    encoded = counting.calls
    assert encoded == 3 and notes1[0].startswith("Built")
    svc.search(idx1, "당뇨병", method="sparse")
    svc.search(idx1, "당뇨병", method="hybrid")  # the query vector is cached too
    assert counting.calls == encoded + 1
    same_content = Corpus("mine", [Document(d.id, d.text, d.title) for d in DOCS[:3]])
    idx2, notes2 = session.get_or_build(same_content, counting, "memory", doc_top_k=16)
    assert idx2 is idx1 and notes2[0].startswith("Reused") and counting.calls == encoded + 1
    other = Corpus("mine", list(DOCS[:2]))
    assert session.key_for(other, counting, "memory") != idx1.key


def test_index_cache_is_bounded(corpus):
    session = svc.SearchSession(max_indexes=2)
    keys = []
    for n in (2, 3, 4):
        idx, _ = session.get_or_build(Corpus(f"c{n}", list(DOCS[:n])), None, "memory")
        keys.append(idx.key)
    assert len(session) == 2 and session.get(keys[0]) is None and session.get(keys[2]) is not None


# ----------------------------------------------------------------------------- OpenSearch
def test_fallback_to_memory_when_opensearch_is_down(corpus, encoder, monkeypatch):
    monkeypatch.setenv("OPENSEARCH_URL", f"http://127.0.0.1:{closed_port()}")
    session = svc.SearchSession(doc_top_k=DOC_TOP_K)
    idx, notes = session.get_or_build(corpus, encoder, "opensearch")
    assert idx.backend_name == "memory"
    assert "not reachable" in notes[0] and "in-memory" in notes[0]
    out, used = session.search(idx, "당뇨병 치료 방법", method="hybrid", k=3)
    assert used is idx and out.backend == "memory" and out.ids


def test_fallback_when_opensearch_stops_mid_session(index, encoder):
    from sparse_demo.index.opensearch import ConnectionSettings, OpenSearchBackend

    dead = OpenSearchBackend("gone", settings=ConnectionSettings(url=f"http://127.0.0.1:{closed_port()}", timeout=3))
    stale = dataclasses.replace(index, backend=dead, key=dataclasses.replace(index.key, backend="opensearch"))
    session = svc.SearchSession(doc_top_k=DOC_TOP_K)
    counting = CountingEncoder(encoder)
    stale.encoder = counting
    out, used = session.search(stale, "당뇨병 치료 방법", method="hybrid", k=3)
    assert out.notes[0].startswith("OpenSearch stopped answering") and "not reachable" in out.notes[0]
    assert out.backend == "memory" and used.backend_name == "memory"
    assert counting.calls <= 1  # the corpus was not encoded again (at most the query)
    want = svc.search(index, "당뇨병 치료 방법", method="hybrid", k=3)
    assert out.ids == want.ids
    exp, _, notes = session.explain(stale, out.ids[0], "당뇨병 치료 방법")
    assert notes and exp.contributions


@pytest.fixture(scope="module")
def node_url():
    ok, text = svc.opensearch_status()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but OpenSearch is not reachable: {text}")
        pytest.skip(f"OpenSearch node not reachable ({text})")
    return text


def test_opensearch_backend_agrees_with_memory(node_url, corpus, encoder, index):
    name = f"test-search-service-{uuid.uuid4().hex[:10]}"
    encoded = svc.EncodedCorpus(index.documents, index.stats.pruned_docs, 0.0)
    os_index = svc.build_index(corpus, encoder, "opensearch", index_name=name, encoded=encoded)
    try:
        assert os_index.backend_name == "opensearch" and os_index.backend.count() == len(DOCS)
        for method in ("bm25", "sparse", "hybrid"):
            got = svc.search(os_index, "당뇨병 치료 방법", method=method, k=5)
            want = svc.search(index, "당뇨병 치료 방법", method=method, k=5)
            assert got.backend == "opensearch"
            if method == "bm25":
                assert got.ids == want.ids
                assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], rel=1e-5)
            if method == "sparse":  # stored weights keep 9 significant bits
                assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], rel=2**-7)
            if method == "hybrid":
                fused = fuse([got.legs["bm25"], got.legs["sparse"]], weights=(0.5, 0.5), k=5)
                assert got.ids == fused.ids
        exp = svc.explain(os_index, "med-001", "당뇨병 치료 방법")
        assert exp.sparse_score > 0
        again = svc.build_index(corpus, encoder, "opensearch", index_name=name)
        assert again.stats.reused and again.documents is None
        assert svc.search(again, "전세 보증금", method="bm25", k=1).ids == ["law-001"]
    finally:
        os_index.backend.clear()


# ----------------------------------------------------------------------------- uploads
def test_load_corpus_file_from_a_beir_zip(tmp_path):
    import zipfile

    src = ROOT / "assets" / "corpus" / "ko_sample"
    zpath = tmp_path / "ko.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in src.rglob("*"):
            if f.is_file():
                zf.write(f, Path("ko_sample") / f.relative_to(src))
    c = svc.load_corpus_file(zpath, workdir=tmp_path)
    assert len(c) == 313 and c.queries and c.qrels
    assert svc.corpus_id(c) == svc.corpus_id(svc.load_sample_corpus())


def test_load_corpus_file_rejects_bad_zips(tmp_path):
    import zipfile

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../outside/corpus.jsonl", '{"id": "a", "text": "b"}\n')
    with pytest.raises(ValueError, match="outside"):
        svc.load_corpus_file(evil, workdir=tmp_path)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", "hi")
    with pytest.raises(ValueError, match="no corpus.jsonl"):
        svc.load_corpus_file(empty, workdir=tmp_path)
    not_zip = tmp_path / "bad.zip"
    not_zip.write_text("nope")
    with pytest.raises(ValueError, match="not a readable zip"):
        svc.load_corpus_file(not_zip)


# ----------------------------------------------------------------------------- CLI
def _cli_prefix() -> list[str]:
    """``python -m sparse_demo`` once cli.py wires the subcommands, else the module's own main."""
    probe = subprocess.run([sys.executable, "-m", "sparse_demo", "search", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    if probe.returncode == 0:
        return [sys.executable, "-m", "sparse_demo"]
    return [sys.executable, "-m", "sparse_demo.search_cli"]


@pytest.fixture(scope="module")
def cli():
    return _cli_prefix()


@pytest.fixture(scope="module")
def jsonl_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"id": d.id, "text": doc_text(d)}, ensure_ascii=False) for d in DOCS),
                    encoding="utf-8")
    return path


def _run(cli, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([*cli, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)


def test_cli_bm25_search_needs_no_model(cli, jsonl_corpus):
    res = _run(cli, "search", "--corpus", str(jsonl_corpus), "--method", "bm25", "--top-k", "3", "--json", "-q",
               "당뇨병 치료 방법", "전세 보증금")
    assert res.returncode == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) == 2
    corpus = Corpus("docs", [Document(d.id, doc_text(d)) for d in DOCS])
    idx = svc.build_index(corpus, None)
    for hits, q in zip(lines, ["당뇨병 치료 방법", "전세 보증금"]):
        want = svc.search(idx, q, method="bm25", k=3)
        assert [h["id"] for h in hits] == want.ids
        assert [h["score"] for h in hits] == pytest.approx([h.score for h in want.hits])
        assert all(h["bm25"]["rank"] == h["rank"] and h["sparse"]["score"] is None for h in hits)


def test_cli_hybrid_search_with_a_model(cli, jsonl_corpus, tiny_model_dir, encoder):
    res = _run(cli, "search", "--corpus", str(jsonl_corpus), "--model", str(tiny_model_dir), "--method", "hybrid",
               "--fusion", "rrf", "--top-k", "4", "--json", "-q", "혈당 관리")
    assert res.returncode == 0, res.stderr
    hits = json.loads(res.stdout.strip().splitlines()[-1])
    corpus = Corpus("docs", [Document(d.id, doc_text(d)) for d in DOCS])
    want = svc.search(svc.build_index(corpus, encoder), "혈당 관리", method="hybrid", fusion="rrf", k=4)
    assert [h["id"] for h in hits] == want.ids
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in want.hits])
    assert {"bm25", "sparse"} <= hits[0].keys()


def test_cli_index_reports_counts_and_errors(cli, jsonl_corpus, tiny_model_dir):
    res = _run(cli, "index", "--corpus", str(jsonl_corpus), "--model", str(tiny_model_dir), "--json", "-q")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["documents"] == len(DOCS) and report["backend"] == "memory"
    assert report["pruned_documents"] == len(DOCS) and report["avg_sparse_tokens"] == svc.DEFAULT_DOC_TOP_K
    bad = _run(cli, "search", "--corpus", "/nonexistent/corpus.jsonl", "--method", "bm25", "--json", "x")
    assert bad.returncode == 1 and "error:" in bad.stderr and "Traceback" not in bad.stderr


# ----------------------------------------------------------------------------- tab handlers
def test_tab_handlers_upload_search_and_fallback(app_context, jsonl_corpus, monkeypatch):
    from sparse_demo.ui import search as tab

    up = tab.load_upload(app_context, str(jsonl_corpus))
    assert up.corpus is not None and "6 documents" in up.status
    assert tab.load_upload(app_context, str(jsonl_corpus.with_suffix(".xml"))).status.startswith("⛔")
    monkeypatch.setenv("OPENSEARCH_URL", f"http://127.0.0.1:{closed_port()}")
    session = svc.SearchSession()
    r = tab.run_search(app_context, session, "전세 보증금", tab.UPLOAD_LABEL, up.corpus, "missing",
                       backend="opensearch", method="bm25", top_k=3)
    assert r.table["id"].tolist()[0] == "law-001", r.status
    assert "not reachable" in r.status and "in-memory" in r.status  # fell back, said so, no crash
    assert r.outcome.backend == "memory" and "<mark" in r.passage
    assert tab.backend_note("opensearch").startswith("⚠️")
    err = tab.run_search(app_context, session, "x", tab.UPLOAD_LABEL, None, "tiny-a")
    assert err.status.startswith("⛔") and "Upload a corpus" in err.status
    bad_model = tab.run_search(app_context, session, "전세", tab.UPLOAD_LABEL, up.corpus, "missing", method="sparse")
    assert bad_model.status.startswith("⛔") and "local model folder" in bad_model.status

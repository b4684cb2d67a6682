"""Search service: legs and fusion checked against independent computations (hand BM25, dot
products of vectors encoded here one text at a time, OpenSearch's min-max / RRF by hand),
explain, highlight, query limits, uploads, the index cache keyed by model fingerprint, and a real
OpenSearch node (agreement with memory, reuse and staleness through the index ``_meta``).

The CLI is covered by tests/test_cli.py."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sparse_demo import search as svc
from sparse_demo.corpus import Corpus, Document, Query
from sparse_demo.korean import bm25_terms
from sparse_demo.search.build import default_index_name
from sparse_demo.ui import render

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
def hand_minmax(scores: dict[str, float]) -> dict[str, float]:
    """OpenSearch's min_max normalization as documented: the minimum maps to 0.001, all-equal to 1."""
    lo, hi = min(scores.values()), max(scores.values())
    if hi == lo:
        return {d: 1.0 for d in scores}
    return {d: 0.001 if s == lo else (s - lo) / (hi - lo) for d, s in scores.items()}


def hand_ranks(scores: dict[str, float]) -> dict[str, int]:
    return {d: r for r, d in enumerate(sorted(scores, key=lambda i: (-scores[i], i)), start=1)}


@pytest.fixture(scope="module")
def hand_legs(encoder, doc_vectors):
    """BM25 (Lucene by hand) and sparse (dot products) scores of the matching documents, per query."""
    term_lists = [bm25_terms(doc_text(d)) for d in DOCS]

    def legs(query: str) -> tuple[dict[str, float], dict[str, float]]:
        bm = {d.id: s for d, s in zip(DOCS, lucene_bm25(bm25_terms(query), term_lists)) if s > 0}
        qvec = top_tokens(encoder.search_vector(encoder.encode([query])[0]), svc.DEFAULT_QUERY_TOP_K)
        sp = {}
        for doc_id, full in doc_vectors.items():
            dvec = top_tokens(full, DOC_TOP_K)
            s = math.fsum(w * dvec[t] for t, w in qvec.items() if t in dvec)
            if s > 0:
                sp[doc_id] = s
        return bm, sp

    return legs


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("query", ["당뇨병 치료 방법", "전세 보증금 돌려받는 방법"])
def test_hybrid_minmax_by_hand(index, hand_legs, query, weight):
    bm, sp = hand_legs(query)
    assert bm and sp
    nb, ns = hand_minmax(bm), hand_minmax(sp)
    want = {d: (1 - weight) * nb.get(d, 0.0) + weight * ns.get(d, 0.0) for d in set(bm) | set(sp)}
    out = svc.search(index, query, method="hybrid", k=len(DOCS), fusion="minmax", weight=weight)
    assert out.ids == sorted(want, key=lambda i: (-want[i], i))
    rb, rs = hand_ranks(bm), hand_ranks(sp)
    for h in out.hits:
        assert h.score == pytest.approx(want[h.id], rel=1e-4, abs=1e-6)  # BM25 is float32, as in Lucene
        assert h.bm25_rank == rb.get(h.id) and h.sparse_rank == rs.get(h.id)
        assert h.bm25_score == (pytest.approx(bm[h.id], rel=1e-5) if h.id in bm else None)
        assert h.sparse_score == (pytest.approx(sp[h.id], rel=1e-6) if h.id in sp else None)
    assert out.total_ms >= out.search_ms >= 0


def test_hybrid_rrf_by_hand(index, hand_legs):
    query = "당뇨병 치료 방법"
    bm, sp = hand_legs(query)
    rb, rs = hand_ranks(bm), hand_ranks(sp)
    want = {d: sum(1 / (60 + r[d]) for r in (rb, rs) if d in r) for d in set(bm) | set(sp)}
    out = svc.search(index, query, method="hybrid", k=4, fusion="rrf")
    assert out.ids == sorted(want, key=lambda i: (-want[i], i))[:4]
    assert [h.score for h in out.hits] == pytest.approx([want[i] for i in out.ids], rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"method": "dense"}, "method"), ({"fusion": "max"}, "fusion"), ({"k": 0}, "k must"), ({"weight": 1.5}, "weight")],
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
    out = render.highlight(text, terms=["혈당/NNG"], tokens=["▁관리", "▁리"])
    assert "<script>" not in out and "&lt;script&gt;" in out and "&amp;" in out and "&quot;x&quot;" in out
    assert '<mark class="hl-bm25" style="background:#ffe08a">혈당</mark>' in out
    assert out.count('class="hl-sparse"') == 2  # "관리" twice at a word start; "▁리" never (mid-word)


def test_highlight_both_marks_overlap_and_keeps_text():
    import re

    text = "당뇨병 치료\n방법"
    out = render.highlight(text, terms=["치료/NNG"], tokens=["▁치료", "법"])
    assert '<mark class="hl-both" style="background:#b2f2bb">치료</mark>' in out
    assert "<br>" in out
    assert re.sub(r"<[^>]+>", "", out.replace("<br>", "\n")) == text
    assert render.highlight("") == ""
    assert render.highlight("a < b") == "a &lt; b"


SPARSE = '<mark class="hl-sparse" style="background:#a5d8ff">{}</mark>'
BM25 = '<mark class="hl-bm25" style="background:#ffe08a">{}</mark>'


@pytest.mark.parametrize(
    ("text", "tokens", "want"),
    [
        # "İ".lower() is two characters: offsets from a lowered copy used to land on 관리 / past the end
        ("İİİ 혈당 관리", ["▁혈당"], "İİİ " + SPARSE.format("혈당") + " 관리"),
        ("İİİ 혈당", ["▁혈당"], "İİİ " + SPARSE.format("혈당")),
        ("ẞẞ 혈당 관리", ["▁관리"], "ẞẞ 혈당 " + SPARSE.format("관리")),
        ("Python 3.11 파이썬", ["▁python"], SPARSE.format("Python") + " 3.11 파이썬"),
        ("aaa", ["aa"], SPARSE.format("aaa")),  # overlapping occurrences
    ],
)
def test_highlight_offsets_are_those_of_the_original_text(text, tokens, want):
    assert render.highlight(text, tokens=tokens) == want


def test_highlight_bm25_marks_after_characters_that_change_length():
    assert render.highlight("İİİ 혈당 관리", terms=["혈당/NNG"]) == "İİİ " + BM25.format("혈당") + " 관리"


def test_a_failing_highlight_never_kills_the_search(app_context, monkeypatch):
    from sparse_demo.ui import search as tab

    session = svc.SearchSession()

    def broken(*_a, **_k):
        raise IndexError("string index out of range")

    monkeypatch.setattr(tab, "passage_html", broken)  # fault injection: no real input breaks it any more
    r = tab.run_search(app_context, session, "전세 보증금", tab.SAMPLE_LABEL, None, "tiny-a", method="bm25", top_k=3)
    assert r.outcome is not None and len(r.table) == 3
    assert "Highlighting this passage failed" in r.explain.status and "<mark" not in r.passage
    assert r.outcome.hits[0].id in r.passage


# ----------------------------------------------------------------------------- session cache
class CountingEncoder:
    """Wraps an encoder and counts encode calls."""

    def __init__(self, inner):
        self.inner, self.calls, self.name = inner, 0, inner.name

    def encode(self, texts, **kw):
        self.calls += len(texts)
        return self.inner.encode(texts, **kw)

    def encode_iter(self, texts, **kw):
        self.calls += len(texts)
        return self.inner.encode_iter(texts, **kw)

    def document_windows(self, texts, settings, **kw):
        self.calls += len(texts)
        return self.inner.document_windows(texts, settings, **kw)

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
    assert counting.calls <= 2  # the corpus was not encoded again (at most the query, once per index)
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
            if method == "hybrid":  # the legs' scores agree, so the fused ranking does too
                assert got.ids == want.ids
                # (min-max scaling can enlarge the stored 9 bits' relative error near a leg's minimum: absolute bound)
                assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], rel=1e-2, abs=2**-6)
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


@pytest.fixture(scope="module")
def jsonl_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "docs.jsonl"
    path.write_text(
        "\n".join(json.dumps({"id": d.id, "text": doc_text(d)}, ensure_ascii=False) for d in DOCS), encoding="utf-8"
    )
    return path


# ----------------------------------------------------------------------------- tab handlers
def test_tab_handlers_upload_search_and_fallback(app_context, jsonl_corpus, monkeypatch):
    from sparse_demo.ui import search as tab

    up = tab.load_upload(app_context, str(jsonl_corpus))
    assert up.corpus is not None and "6 documents" in up.status
    assert tab.load_upload(app_context, str(jsonl_corpus.with_suffix(".xml"))).status.startswith("⛔")
    monkeypatch.setenv("OPENSEARCH_URL", f"http://127.0.0.1:{closed_port()}")
    session = svc.SearchSession()
    r = tab.run_search(
        app_context,
        session,
        "전세 보증금",
        tab.UPLOAD_LABEL,
        up.corpus,
        "missing",
        backend="opensearch",
        method="bm25",
        top_k=3,
    )
    assert r.table["id"].tolist()[0] == "law-001", r.status
    assert "not reachable" in r.status and "in-memory" in r.status  # fell back, said so, no crash
    assert r.outcome.backend == "memory" and "<mark" in r.passage
    assert tab.backend_note("opensearch").startswith("⚠️")
    err = tab.run_search(app_context, session, "x", tab.UPLOAD_LABEL, None, "tiny-a")
    assert err.status.startswith("⛔") and "Upload a corpus" in err.status
    bad_model = tab.run_search(app_context, session, "전세", tab.UPLOAD_LABEL, up.corpus, "missing", method="sparse")
    assert bad_model.status.startswith("⛔") and "local model folder" in bad_model.status


# ----------------------------------------------------------------------------- query limits
def test_an_over_long_query_is_cut_and_the_outcome_says_so(index):
    out = svc.search(index, "전세 보증금 " + "x" * 50, method="bm25", k=3, max_query_chars=6)
    assert out.query == "전세 보증금"
    assert any("only its first 6" in n for n in out.notes)
    assert out.ids[0] == "law-001"
    short = svc.search(index, "전세 보증금", method="bm25", k=3, max_query_chars=6)
    assert not any("characters" in n for n in short.notes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_query_chars": 3, "long_query": "refuse"}, "the limit is 3"),
        ({"long_query": "drop"}, "choose one of cut, refuse"),
        ({"max_query_chars": 0}, "positive integer"),
    ],
)
def test_query_limit_errors_are_readable(index, kwargs, match):
    with pytest.raises(ValueError, match=match):
        svc.search(index, "전세 보증금", method="bm25", **kwargs)


def test_the_default_limit_is_the_limits_max_query_chars(index):
    out = svc.search(index, "전세 " * 20_000, method="bm25", k=1)  # 60,000 characters
    assert 19_990 <= len(out.query) <= 20_000 and any("20,000" in n for n in out.notes)


# ----------------------------------------------------------------------------- corpus encoding
@pytest.mark.slow
def test_encode_corpus_equals_encoding_each_text_alone(encoder):
    """Length-sorted batches across the corpus, then corpus order restored: same vectors as one text at a time."""
    texts = [
        "짧다",
        "전세 계약을 할 때는 확정일자를 받아야 보증금을 보호할 수 있습니다. " * 12,
        "고혈압 환자",
        "Python 3.11 and 5G 네트워크",
        "당뇨병 치료는 식이요법과 운동입니다.",
        "",
        "혈당 " * 30,
    ]
    corpus = Corpus("mixed", [Document(f"d{i}", t) for i, t in enumerate(texts)])
    got = svc.encode_corpus(corpus, encoder, batch_size=3, doc_top_k=None)
    assert [d.id for d in got.documents] == [d.id for d in corpus.documents]
    assert got.pruned == 0
    for doc, text in zip(got.documents, texts):
        alone = encoder.search_vector(encoder.encode([text])[0])
        assert doc.sparse.keys() == {t for t, w in alone.items() if w > 0}
        got_w = np.array(list(doc.sparse.values()))  # ~250k weights: compared as arrays, not one approx each
        want_w = np.array([alone[tok] for tok in doc.sparse])
        bad = np.abs(got_w - want_w) > np.maximum(1e-5 * np.abs(want_w), 1e-6)  # pytest.approx(rel=1e-5, abs=1e-6)
        assert not bad.any(), [(t, doc.sparse[t], alone[t]) for t in np.array(list(doc.sparse))[bad][:5]]
        assert doc.terms == bm25_terms(text)


def test_encode_corpus_reports_progress_and_prunes(encoder):
    seen = []
    got = svc.encode_corpus(
        Corpus("c", list(DOCS)), encoder, batch_size=4, doc_top_k=8, progress=lambda f, d: seen.append((f, d))
    )
    assert got.pruned == len(DOCS) and all(len(d.sparse) == 8 for d in got.documents)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert (0.9 * 1.0, "6/6 texts encoded") in seen  # the model's share of the work is 0..0.9


# ----------------------------------------------------------------------------- analyzer
def test_index_key_records_the_analyzer(corpus):
    idx = svc.build_index(corpus, None)
    assert idx.key.analyzer == "default" and idx.analyzer == "default"
    with pytest.raises(ValueError, match="(?i)bogus"):
        svc.build_index(corpus, None, analyzer="bogus-analyzer")


# ----------------------------------------------------------------------------- fingerprints
@pytest.fixture()
def model_copy(tmp_path, tiny_model_dir) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _replace_weights(folder: Path, source: Path) -> None:
    """Overwrite a checkpoint in place with other weights of the same shapes (a retrained model)."""
    import shutil
    import time

    time.sleep(0.01)  # a visibly newer modification time even on coarse clocks
    for f in source.glob("*.safetensors"):
        shutil.copyfile(f, folder / f.name)


@pytest.mark.slow
def test_a_changed_checkpoint_under_the_same_name_is_not_served_from_the_old_index(
    model_copy, tiny_model_dir_b, corpus
):
    from sparse_demo.encoder import SpladeEncoder

    session = svc.SearchSession(doc_top_k=None, query_top_k=None)
    old = SpladeEncoder.load(str(model_copy), device="cpu", name="my-model")
    idx_old, _ = session.get_or_build(corpus, old, "memory")
    _replace_weights(model_copy, tiny_model_dir_b)
    new = SpladeEncoder.load(str(model_copy), device="cpu", name="my-model")
    assert new.name == old.name and new.fingerprint != old.fingerprint
    idx_new, notes = session.get_or_build(corpus, new, "memory")
    assert idx_new is not idx_old and notes[0].startswith("Built")
    query = "혈당 관리 운동"
    qvec = new.search_vector(new.encode([query])[0])
    out = svc.search(idx_new, query, method="sparse", k=3)
    for h in out.hits:  # the new checkpoint's own dot products, computed here
        dvec = new.search_vector(new.encode([doc_text(corpus.get(h.id))])[0])
        assert h.score == pytest.approx(math.fsum(w * dvec[t] for t, w in qvec.items() if t in dvec), rel=1e-5)


# ----------------------------------------------------------------------------- corrupt uploads
def _deflated_zip(path: Path) -> bytes:
    import zipfile

    rows = "\n".join(
        json.dumps({"id": f"d{i}", "text": "당뇨병 치료 방법 " * 40}, ensure_ascii=False) for i in range(100)
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("corpus.jsonl", rows)
    return path.read_bytes()


def _stored_zip(path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("corpus.jsonl", '{"id": "a", "text": "당뇨병 치료"}\n')
    return path.read_bytes()


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("flipped-deflate", "corrupt"),
        ("bad-crc", "corrupt"),
        ("truncated", "not a readable zip"),
        ("empty", "not a readable zip"),
        ("text", "not a readable zip"),
    ],
)
def test_corrupt_zips_give_one_line_value_errors(tmp_path, case, match):
    path = tmp_path / "up.zip"
    if case == "flipped-deflate":
        data = bytearray(_deflated_zip(path))
        for i in range(60, 200):  # inside the compressed member, before the central directory
            data[i] ^= 0x5A
    elif case == "bad-crc":
        data = bytearray(_stored_zip(path))
        data[data.index("치".encode())] ^= 0x01  # stored bytes changed, CRC no longer matches
    elif case == "truncated":
        data = bytearray(_deflated_zip(path))[:300]
    elif case == "empty":
        data = bytearray()
    else:
        data = bytearray(b"id,text\na,b\n")
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=match) as err:
        svc.load_corpus_file(path, workdir=tmp_path)
    assert "\n" not in str(err.value) and "up.zip" in str(err.value)
    assert list(tmp_path.glob("corpus_*")) == []  # the unpack folder is removed


def test_opensearch_reuse_compares_the_model_fingerprint(node_url, model_copy, tiny_model_dir_b, corpus):
    """Same index name, same documents, other checkpoint under the same folder and name: rebuilt, not reused."""
    from sparse_demo.encoder import SpladeEncoder

    name = f"test-search-stale-{uuid.uuid4().hex[:10]}"
    old = SpladeEncoder.load(str(model_copy), device="cpu", name="my-model")
    first = svc.build_index(corpus, old, "opensearch", index_name=name, doc_top_k=DOC_TOP_K)
    try:
        again = svc.build_index(corpus, old, "opensearch", index_name=name, doc_top_k=DOC_TOP_K)
        assert again.stats.reused and again.documents is None
        assert svc.build_index(corpus, None, "opensearch", index_name=name).stats.reused is False  # BM25-only
        _replace_weights(model_copy, tiny_model_dir_b)
        new = SpladeEncoder.load(str(model_copy), device="cpu", name="my-model")
        rebuilt = svc.build_index(corpus, new, "opensearch", index_name=name, doc_top_k=DOC_TOP_K)
        assert not rebuilt.stats.reused and any("Replaced" in n for n in rebuilt.notes)
        assert rebuilt.backend.count() == len(DOCS)
        mem = svc.build_index(corpus, new, "memory", doc_top_k=DOC_TOP_K)
        got = svc.search(rebuilt, "혈당 관리", method="sparse", k=5)
        want = svc.search(mem, "혈당 관리", method="sparse", k=5)
        assert got.ids == want.ids  # the new checkpoint's vectors, not the old ones
        assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], rel=2**-7)
        assert default_index_name(first.key) != default_index_name(rebuilt.key)
    finally:
        first.backend.clear()


def test_opensearch_index_without_build_metadata_is_replaced(node_url, corpus):
    from sparse_demo.index import IndexDocument
    from sparse_demo.index.opensearch import OpenSearchBackend

    name = f"test-search-nometa-{uuid.uuid4().hex[:10]}"
    be = OpenSearchBackend(name)
    be.add([IndexDocument(d.id, "stale text", ["stale/NNG"], {}, d.title) for d in DOCS])  # same ids and count
    try:
        idx = svc.build_index(corpus, None, "opensearch", index_name=name)
        assert not idx.stats.reused and any("no build metadata" in n for n in idx.notes)
        assert svc.search(idx, "전세 보증금", method="bm25", k=1).ids == ["law-001"]
        assert svc.build_index(corpus, None, "opensearch", index_name=name).stats.reused
    finally:
        be.clear()


def test_opensearch_reuse_compares_the_analyzer(node_url, corpus):
    name = f"test-search-analyzer-{uuid.uuid4().hex[:10]}"
    first = svc.build_index(corpus, None, "opensearch", index_name=name, analyzer="all")
    try:
        assert first.backend.index_meta()["bm25_analyzer"] == "all"
        assert svc.build_index(corpus, None, "opensearch", index_name=name, analyzer="all").stats.reused
        other = svc.build_index(corpus, None, "opensearch", index_name=name)  # the default analyzer
        assert not other.stats.reused and any("BM25 analyzer differs" in n for n in other.notes)
        assert other.backend.index_meta()["bm25_analyzer"] == "default"
        terms = {t for d in other.documents for t in d.terms}
        assert not any(t.endswith(("/JKS", "/JKO", "/EF")) for t in terms)  # particles and endings stopped
        assert svc.search(other, "전세 보증금을", method="bm25", k=1).ids == ["law-001"]
    finally:
        first.backend.clear()


# ----------------------------------------------------------------------------- F2: analyzer, weight, notes, ids
def _model_copy(src: Path, dest: Path, weight: float | None = None, raw: str | None = None) -> Path:
    import shutil

    shutil.copytree(src, dest)
    if raw is not None:
        (dest / "sparse_demo.json").write_text(raw, encoding="utf-8")
    elif weight is not None:
        (dest / "sparse_demo.json").write_text(json.dumps({"hybrid_weight": weight}), encoding="utf-8")
    return dest


@pytest.mark.slow
def test_recommended_weight_comes_from_the_model_folder(tiny_model_dir, tmp_path):
    from sparse_demo.encoder import SpladeEncoder

    with_card = SpladeEncoder.load(str(_model_copy(tiny_model_dir, tmp_path / "w", 0.3)), device="cpu")
    assert svc.recommended_weight(with_card) == 0.3
    assert svc.resolve_weight(with_card, None) == svc.WeightChoice(0.3, "model")
    assert svc.resolve_weight(with_card, None).note == "weight 0.3 recommended by the model card"
    assert svc.resolve_weight(with_card, 0.8) == svc.WeightChoice(0.8, "user")  # the user's choice wins
    broken = SpladeEncoder.load(str(_model_copy(tiny_model_dir, tmp_path / "b", raw="{not json")), device="cpu")
    assert svc.recommended_weight(broken) is None  # logged, never raised
    plain = SpladeEncoder.load(str(tiny_model_dir), device="cpu")
    assert svc.recommended_weight(plain) is None and svc.recommended_weight(None) is None
    assert svc.resolve_weight(plain, None) == svc.WeightChoice(0.5, "default")
    assert svc.resolve_weight(plain, None).note == ""
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        svc.resolve_weight(plain, 1.5)


def test_bundled_demo_model_recommends_its_card_weight():
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.offline import DEMO_MODEL_DIR as folder

    if not (folder / "model.safetensors").is_file():
        pytest.skip("the demo model is not built")
    card = json.loads((folder / "sparse_demo.json").read_text(encoding="utf-8"))
    assert svc.recommended_weight(SpladeEncoder.load(str(folder), device="cpu")) == card["hybrid_weight"]


def test_tab_uses_the_models_weight_until_the_user_moves_the_slider(
    app_context, jsonl_corpus, tiny_model_dir, tmp_path
):
    from sparse_demo.ui import search as tab

    folder = str(_model_copy(tiny_model_dir, tmp_path / "card", 0.3))
    up = tab.load_upload(app_context, str(jsonl_corpus))
    session = svc.SearchSession()
    r = tab.run_search(
        app_context,
        session,
        "전세 보증금",
        tab.UPLOAD_LABEL,
        up.corpus,
        None,
        folder,
        method="hybrid",
        weight=None,
        top_k=3,
    )
    assert r.outcome is not None and r.outcome.weight == 0.3, r.status
    assert "weight 0.3 recommended by the model card" in r.status
    moved = tab.run_search(
        app_context,
        session,
        "전세 보증금",
        tab.UPLOAD_LABEL,
        up.corpus,
        None,
        folder,
        method="hybrid",
        weight=0.7,
        top_k=3,
    )
    assert moved.outcome.weight == 0.7 and "recommended" not in moved.status
    plain = tab.run_search(
        app_context,
        session,
        "전세 보증금",
        tab.UPLOAD_LABEL,
        up.corpus,
        "tiny-a",
        method="hybrid",
        weight=None,
        top_k=3,
    )
    assert plain.outcome.weight == 0.5 and "recommended" not in plain.status


def test_tab_analyzer_choice_reaches_the_index(app_context, jsonl_corpus):
    from sparse_demo.ui import search as tab

    up = tab.load_upload(app_context, str(jsonl_corpus))
    session = svc.SearchSession()
    query = "전세 보증금은"  # 은 is a particle (JX): the default analyzer drops it, "all" keeps it
    default = tab.run_search(
        app_context, session, query, tab.UPLOAD_LABEL, up.corpus, "missing", method="bm25", top_k=3
    )
    assert "analyzer `default`" in default.status
    assert not any(t.endswith("/JX") for t in default.outcome.query_terms)
    every = tab.run_search(
        app_context, session, query, tab.UPLOAD_LABEL, up.corpus, "missing", method="bm25", top_k=3, analyzer=" ALL "
    )
    assert "analyzer `all`" in every.status and "은/JX" in every.outcome.query_terms
    tags = tab.build_search_index(app_context, session, tab.UPLOAD_LABEL, up.corpus, "tiny-a", analyzer="j, e")
    assert "analyzer `E,J`" in tags.status and tags.key.analyzer == "E,J", tags.status
    bad = tab.run_search(
        app_context, session, query, tab.UPLOAD_LABEL, up.corpus, "missing", method="bm25", analyzer="J,QQ"
    )
    assert bad.status.startswith("⛔") and "\n" not in bad.status
    assert "'QQ'" in bad.status and "'default', 'all', 'nori'" in bad.status
    assert tab.build_search_index(
        app_context, session, tab.UPLOAD_LABEL, up.corpus, "tiny-a", analyzer="nope"
    ).status.startswith("⛔")


def test_tab_status_shows_the_corpus_notes(app_context, tmp_path):
    import zipfile

    from sparse_demo.ui import search as tab

    zpath = tmp_path / "beir.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr(
            "b/corpus.jsonl", "\n".join(json.dumps({"_id": d.id, "text": d.text}, ensure_ascii=False) for d in DOCS[:3])
        )
        zf.writestr("b/queries.jsonl", json.dumps({"_id": "q1", "text": "당뇨"}, ensure_ascii=False))
        zf.writestr(
            "b/qrels/test.tsv", f"query-id\tcorpus-id\tscore\nq1\t{DOCS[0].id}\t1\nq1\tghost\t1\nq7\tghost\t1\n"
        )
    up = tab.load_upload(app_context, str(zpath))
    assert up.corpus is not None and up.corpus.dropped_judgements == 2, up.status
    assert "2 relevance judgement(s)" in up.status and "⚠️" in up.status
    built = tab.build_search_index(app_context, svc.SearchSession(), tab.UPLOAD_LABEL, up.corpus, "tiny-a")
    assert "Index ready" in built.status and "2 relevance judgement(s)" in built.status


def test_encoded_corpus_keeps_each_documents_input_ids(corpus, encoder):
    """The ids equal the tokenizer's own output (special tokens added, cut at max_length), packed as int32."""
    enc = svc.encode_corpus(corpus, encoder, doc_top_k=DOC_TOP_K)
    texts = [doc_text(d) for d in corpus.documents]
    want = encoder.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=encoder.max_length)[
        "input_ids"
    ]
    assert enc.input_ids is not None and len(enc.input_ids) == len(corpus)
    assert enc.input_ids.ids.dtype.name == "int32" and enc.input_ids.nbytes < 8 * sum(map(len, want)) + 1000
    assert [list(map(int, row)) for row in enc.input_ids] == want
    idx = svc.build_index(corpus, encoder, "memory", doc_top_k=DOC_TOP_K)
    assert [row.tolist() for row in idx.input_ids] == want
    twin = idx.encoded()
    assert twin is not None and twin.input_ids is idx.input_ids
    assert svc.encode_corpus(corpus, None).input_ids is None  # BM25 only: no model input


def test_token_ids_pack_and_index_like_a_list():
    from sparse_demo.search.encode import TokenIds

    t = TokenIds.from_sequences([[0, 5, 2], [], [7]])
    assert len(t) == 3 and t.indptr.tolist() == [0, 3, 3, 4]
    assert [r.tolist() for r in t] == [[0, 5, 2], [], [7]] and t[-1].tolist() == [7]
    with pytest.raises(IndexError, match="out of range"):
        t[3]
    assert len(TokenIds.from_sequences([])) == 0


# ----------------------------------------------------------------------------- F5: index budget, tuned weights, limits
def _scipy_csc_bytes(rows: list[dict[str, float]]) -> int:
    """Bytes of a float32 CSC matrix (documents x distinct keys, at least one column) of these rows, by scipy."""
    import scipy.sparse as sp

    if not rows:
        return 0
    col = {k: i for i, k in enumerate(dict.fromkeys(k for r in rows for k in r))}
    coo = sp.coo_matrix(
        (
            [1.0 for r in rows for _ in r],
            ([i for i, r in enumerate(rows) for _ in r], [col[k] for r in rows for k in r]),
        ),
        shape=(len(rows), max(1, len(col))),
        dtype=np.float32,
    )
    m = coo.tocsc()
    return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes


def hand_index_bytes(
    docs: list[Document], vectors: dict[str, dict[str, float]] | None, input_ids=None, memory: bool = True
) -> int:
    """The byte estimate as session.estimate_index_bytes's docstring states it, computed from the raw documents."""
    text = sum(len(d.text.encode("utf-8")) + len(d.title.encode("utf-8")) for d in docs)
    terms = [bm25_terms(doc_text(d)) for d in docs]
    entries = sum(len(vectors[d.id]) for d in docs) if vectors else 0
    total = text + 100 * entries + 70 * sum(len(t) for t in terms)
    if memory:  # the postings as scipy lays them out: float32 values, int32 rows and column pointers
        total += _scipy_csc_bytes([dict.fromkeys(t, 1.0) for t in terms])
        total += _scipy_csc_bytes([vectors[d.id] for d in docs] if vectors else [{} for _ in docs])
    if input_ids is not None:
        total += 8 * (len(input_ids) + 1) + 4 * sum(len(row) for row in input_ids)
    return total


def test_index_bytes_estimate_by_hand(encoder, doc_vectors):
    from sparse_demo.search.session import estimate_index_bytes

    bm25_only = svc.build_index(Corpus("b", list(DOCS)), None, "memory")
    assert estimate_index_bytes(bm25_only) == hand_index_bytes(DOCS, None)
    full = svc.build_index(Corpus("s", list(DOCS)), encoder, "memory", doc_top_k=DOC_TOP_K)
    pruned = {d: top_tokens(v, DOC_TOP_K) for d, v in doc_vectors.items()}
    ids = encoder.tokenizer(
        [doc_text(d) for d in DOCS], add_special_tokens=True, truncation=True, max_length=encoder.max_length
    )["input_ids"]
    assert estimate_index_bytes(full) == hand_index_bytes(DOCS, pruned, ids)


def _bm25_index(session: svc.SearchSession, n: int) -> svc.SearchIndex:
    idx, _ = session.get_or_build(Corpus(f"c{n}", list(DOCS[:n])), None, "memory")
    return idx


def test_index_cache_evicts_by_count_least_recently_used_first():
    session = svc.SearchSession(max_indexes=2)
    a, b = _bm25_index(session, 2), _bm25_index(session, 3)
    assert session.get(a.key) is a  # a is now the most recently used
    c = _bm25_index(session, 4)
    assert session.cached_keys() == [a.key, c.key] and session.get(b.key) is None
    again, notes = session.get_or_build(Corpus("c2", list(DOCS[:2])), None, "memory")  # the same key reused
    assert again is a and notes[0].startswith("Reused") and len(session) == 2


def test_index_cache_evicts_by_bytes():
    sizes = {n: hand_index_bytes(DOCS[:n], None) for n in (2, 3, 4)}
    session = svc.SearchSession(max_indexes=10, max_bytes=sizes[3] + sizes[4])
    two, three, four = (_bm25_index(session, n) for n in (2, 3, 4))
    # 2 + 3 + 4 exceeds the budget: the oldest (2) goes; 3 + 4 fit exactly
    assert session.cached_keys() == [three.key, four.key] and session.cached_bytes == sizes[3] + sizes[4]
    assert session.get(three.key) is three  # reuse: 4 is now the least recently used
    rebuilt = _bm25_index(session, 2)
    assert rebuilt is not two and session.cached_keys() == [three.key, rebuilt.key]
    assert session.cached_bytes == sizes[3] + sizes[2]


def test_an_index_over_the_whole_budget_is_kept_alone_and_says_so():
    session = svc.SearchSession(max_bytes=10)
    _bm25_index(session, 2)
    idx, notes = session.get_or_build(Corpus("big", list(DOCS)), None, "memory")
    assert session.cached_keys() == [idx.key]
    assert any("SPARSE_DEMO_INDEX_CACHE_MB" in n and "kept alone" in n for n in notes)


def test_session_budget_comes_from_the_limits():
    from sparse_demo.config import load_limits
    from sparse_demo.limits import Limits

    limits = load_limits({"SPARSE_DEMO_MAX_INDEXES": "3", "SPARSE_DEMO_INDEX_CACHE_MB": "2"})
    session = svc.SearchSession.from_limits(limits)
    assert (session.max_indexes, session.max_bytes) == (3, 2 * 1024 * 1024)
    assert (Limits().max_indexes, Limits().index_cache_bytes) == (8, 1000 * 1024 * 1024)
    with pytest.raises(ValueError, match="SPARSE_DEMO_MAX_INDEXES"):
        load_limits({"SPARSE_DEMO_MAX_INDEXES": "many"})
    with pytest.raises(ValueError, match="max_bytes must be >= 1"):
        svc.SearchSession(max_bytes=0)


def test_an_evicted_index_still_answers_its_holder_and_the_tab_rebuilds_it(app_context, jsonl_corpus):
    from sparse_demo.ui import search as tab

    up = tab.load_upload(app_context, str(jsonl_corpus))
    session = svc.SearchSession(max_indexes=1)
    first = tab.run_search(
        app_context, session, "전세 보증금", tab.UPLOAD_LABEL, up.corpus, None, method="bm25", top_k=3
    )
    held = session.get(first.outcome.key)
    _bm25_index(session, 2)  # evicts the tab's index
    assert session.get(first.outcome.key) is None
    assert svc.search(held, "전세 보증금", method="bm25", k=1).ids == ["law-001"]  # a holder keeps working
    gone = tab.explain_hit(session, first.outcome, 0)
    assert "dropped from the shared index cache" in gone.status and "Search again" in gone.status
    again = tab.run_search(
        app_context, session, "전세 보증금", tab.UPLOAD_LABEL, up.corpus, None, method="bm25", top_k=3
    )
    assert again.table["id"].tolist()[0] == "law-001" and "Built" in again.status


def test_the_index_cache_is_safe_under_concurrent_handlers():
    from concurrent.futures import ThreadPoolExecutor

    sizes = [hand_index_bytes(DOCS[:n], None) for n in (1, 2, 3)]
    session = svc.SearchSession(max_indexes=3, max_bytes=sum(sizes))

    def work(i: int) -> list[str]:
        idx = _bm25_index(session, 1 + i % 6)
        return svc.search(idx, "방법", method="bm25", k=6).ids

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(36)))
    # every answer is the one a single thread gets on a fresh cache, and holds exactly the documents
    # among the first n whose text contains 방법 (a plain substring test, independent of BM25)
    alone = {n: svc.search(_bm25_index(svc.SearchSession(), n), "방법", method="bm25", k=6).ids for n in range(1, 7)}
    for i, ids in enumerate(results):
        n = 1 + i % 6
        assert ids == alone[n], (i, ids)
        assert set(ids) == {d.id for d in DOCS[:n] if "방법" in d.text}, (n, ids)
    assert len(session) <= 3 and session.cached_bytes <= max(sum(sizes), hand_index_bytes(DOCS, None))
    assert session.cached_bytes == sum(
        hand_index_bytes(DOCS[: int(k.corpus_id.split("-")[0][1:])], None) for k in session.cached_keys()
    )


@pytest.mark.parametrize(
    ("user", "tuned", "model", "want"),
    [
        (0.9, 0.7, 0.3, (0.9, "user")),
        (None, 0.7, 0.3, (0.7, "evaluate")),
        (None, None, 0.3, (0.3, "model")),
        (None, None, None, (0.5, "default")),
        (0.0, 0.7, None, (0.0, "user")),  # 0 is a weight, not "unset"
        (None, 0.0, 0.3, (0.0, "evaluate")),
    ],
)
def test_weight_priority(user, tuned, model, want):
    got = svc.choose_weight(user, None if tuned is None else svc.TunedWeight(tuned, "dev"), model)
    assert (got.weight, got.source) == want
    assert got.label  # every source is named in the status


def test_tuned_weights_map():
    tw = svc.TunedWeights(max_entries=2)
    tw.remember("m", "c1", 0.2, "best ndcg@10 on 5 dev queries")
    tw.remember("m", "c2", 0.4)
    assert tw.get("m", "c1") == svc.TunedWeight(0.2, "best ndcg@10 on 5 dev queries") and tw.get("x", "c1") is None
    tw.remember("m", "c3", 0.6)  # bounded: the least recently set (c1) goes
    assert tw.get("m", "c1") is None and len(tw) == 2
    tw.forget("m", "c2")
    assert tw.get("m", "c2") is None
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tw.remember("m", "c", 1.5)
    with pytest.raises(ValueError, match="fingerprint"):
        tw.remember("", "c", 0.5)


def test_resolve_weight_reads_the_tuned_map_for_this_model_and_corpus(tiny_model_dir, tmp_path):
    from sparse_demo.encoder import SpladeEncoder

    with_card = SpladeEncoder.load(str(_model_copy(tiny_model_dir, tmp_path / "w", 0.3)), device="cpu")
    corpus = Corpus("c", list(DOCS))
    tw = svc.TunedWeights()
    tw.remember(with_card.fingerprint, svc.corpus_fingerprint(corpus), 0.8, "best ndcg@10 on 9 dev queries")
    got = svc.resolve_weight(with_card, None, corpus=corpus, tuned=tw)
    assert got == svc.WeightChoice(0.8, "evaluate", "best ndcg@10 on 9 dev queries")
    assert got.note == (
        "weight 0.8 tuned by the Evaluate tab for this model and corpus (best ndcg@10 on 9 dev queries)"
    )
    other = Corpus("c", list(DOCS[:3]))
    assert svc.resolve_weight(with_card, None, corpus=other, tuned=tw).source == "model"
    assert svc.resolve_weight(with_card, 0.1, corpus=corpus, tuned=tw).source == "user"


def test_search_tab_limits_are_messages(app_context, jsonl_corpus, monkeypatch):
    from sparse_demo.limits import Limits
    from sparse_demo.ui import search as tab

    up = tab.load_upload(app_context, str(jsonl_corpus))
    monkeypatch.setattr(app_context, "limits", Limits(max_query_chars=5, max_rows=5, max_upload_bytes=100))
    long = tab.run_search(
        app_context, svc.SearchSession(), "전세 보증금 반환", tab.UPLOAD_LABEL, up.corpus, None, method="bm25"
    )
    assert long.status.startswith("⛔") and "SPARSE_DEMO_MAX_QUERY_CHARS" in long.status and long.outcome is None
    big = tab.load_upload(app_context, str(jsonl_corpus))  # the file is over 100 bytes
    assert big.corpus is None and big.status.startswith("⛔") and "SPARSE_DEMO_MAX_UPLOAD_MB" in big.status
    monkeypatch.setattr(app_context, "limits", Limits(max_rows=5))
    rows = tab.load_upload(app_context, str(jsonl_corpus))
    assert rows.corpus is None and "6 documents; the limit is 5 per upload (SPARSE_DEMO_MAX_ROWS)" in rows.status

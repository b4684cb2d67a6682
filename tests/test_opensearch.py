"""Integration tests against a real local OpenSearch node (``scripts/opensearch.sh start``).

Skipped when no node answers at OPENSEARCH_URL, unless CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import math
import os
import socket
import uuid
import zlib
from collections import Counter
from pathlib import Path

import pytest

from sparse_demo.index import IndexDocument, MemoryBackend, hybrid_search
from sparse_demo.index.opensearch import (
    TERMS_FORMAT,
    AnalyzerMismatchError,
    ConnectionSettings,
    OpenSearchBackend,
    OpenSearchUnavailable,
    decode_feature_name,
    encode_feature_name,
    index_body,
)
from sparse_demo.index.opensearch.mapping import bm25_query, sparse_query_dsl
from sparse_demo.korean import get_analyzer

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "corpus" / "ko_sample"
NINE_BIT_REL = 2.0**-8
DOT_TOKENS = ("3.5", "a.b", ".", "%", "100%")

INLINE_CORPUS = [
    ("med-001", "당뇨병 치료의 기본은 식이요법과 운동, 약물 치료입니다. 혈당을 관리합니다."),
    ("med-002", "고혈압 환자는 소금 섭취를 줄이고 규칙적으로 운동해야 합니다."),
    ("law-001", "전세 계약을 할 때는 확정일자를 받아야 보증금을 보호할 수 있습니다."),
    ("tax-001", "연말정산에서 의료비와 교육비는 세액공제 대상입니다."),
    ("it-001", "클라우드 컴퓨팅은 서버와 저장소를 인터넷으로 빌려 쓰는 방식입니다."),
    ("food-001", "김치찌개는 잘 익은 김치와 돼지고기로 끓이면 맛있습니다."),
]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hand_vector(terms: list[str], doc_index: int) -> dict[str, float]:
    """A deterministic stand-in for an encoder: morpheme forms weighted by tf and a hash."""
    counts = Counter(t.rsplit("/", 1)[0] for t in terms)
    vec = {f"▁{form}": math.log1p(c) * (0.5 + (zlib.crc32(form.encode()) % 97) / 40) for form, c in counts.items()}
    vec[DOT_TOKENS[doc_index % len(DOT_TOKENS)]] = 0.3 + (doc_index % 11) / 7
    return vec


def load_texts() -> tuple[list[tuple[str, str]], list[str]]:
    if (SAMPLE / "corpus.jsonl").is_file() and (SAMPLE / "queries.jsonl").is_file():
        from sparse_demo.corpus import load_corpus

        corpus = load_corpus(SAMPLE)
        docs = [(d.id, f"{d.title}\n{d.text}" if d.title else d.text) for d in corpus.documents]
        queries = [q.text for q in corpus.queries][:40]
        if docs and queries:
            return docs, queries
    return INLINE_CORPUS, ["당뇨병 혈당 관리", "전세 보증금", "김치찌개 끓이는 법", "세액공제 의료비"]


@pytest.fixture(scope="module")
def data():
    analyzer = get_analyzer("default")
    texts, queries = load_texts()
    docs = []
    for i, (doc_id, text) in enumerate(texts):
        terms = analyzer.terms(text)
        docs.append(IndexDocument(doc_id, text, terms, hand_vector(terms, i)))
    qs = []
    for j, q in enumerate(queries):
        terms = analyzer.terms(q)
        qs.append((terms, hand_vector(terms, j)))
    return docs, qs


@pytest.fixture(scope="module")
def node():
    backend = OpenSearchBackend(f"test-sparse-demo-{uuid.uuid4().hex[:12]}", analyzer="default")
    try:
        backend.ping()
    except OpenSearchUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but OpenSearch is not reachable: {exc}")
        pytest.skip(f"OpenSearch node not reachable ({exc})")
    yield backend
    backend.clear()


@pytest.fixture(scope="module")
def indexed(node, data):
    docs, _ = data
    calls = []
    assert node.add(docs, progress=lambda f, m: calls.append((f, m))) == len(docs)
    assert calls[-1] == (1.0, f"{len(docs):,}/{len(docs):,} documents indexed")
    assert node.count() == len(docs)
    exact = MemoryBackend()
    exact.add(docs)
    lucene = MemoryBackend(feature_precision="lucene")
    lucene.add(docs)
    return node, exact, lucene


def test_bm25_matches_memory(indexed, data):
    # The default analyzer's terms on the sample corpus: the same top 10, the same scores.
    node, exact, _ = indexed
    assert node.analyzer.spec == exact.analyzer.spec == "default"
    assert node.index_analyzer() == "default"
    searched = 0
    for terms, _ in data[1]:
        got = node.search_bm25(terms, k=10)
        want = exact.search_bm25(terms, k=10)
        assert got.ids == want.ids, terms
        assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], rel=1e-5)
        searched += bool(want.hits)
    assert searched >= len(data[1]) - 1


def test_analyzer_recorded_and_mismatch_detected(node):
    name = f"test-sparse-demo-{uuid.uuid4().hex[:12]}"
    first = OpenSearchBackend(name, analyzer="all")
    try:
        first.add([IndexDocument("a", "혈당을", get_analyzer("all").terms("혈당을"), {"x": 1.0})])
        assert first.index_meta()["bm25_analyzer"] == "all"
        assert first.index_analyzer() == "all"
        other = OpenSearchBackend(name)  # default analyzer on an index of "all" terms
        with pytest.raises(AnalyzerMismatchError, match="analyzer 'all', not 'default'"):
            other.add([IndexDocument("b", "t", ["x/NNG"], {"x": 1.0})])
        with pytest.raises(AnalyzerMismatchError, match="rebuild the index"):
            OpenSearchBackend(name).search_bm25(["혈당/NNG"])
        assert first.count() == 1
        same = OpenSearchBackend(name, analyzer=" ALL ")
        assert same.search_bm25(["혈당/NNG"]).ids == ["a"]
    finally:
        first.clear()
    assert first.index_meta() == {} and first.index_analyzer() is None


def test_index_without_recorded_analyzer_is_accepted(node):
    backend = OpenSearchBackend(f"test-sparse-demo-{uuid.uuid4().hex[:12]}")
    body = backend.index_body()
    del body["mappings"]["_meta"]  # as indexes made before the analyzer was recorded
    backend.client.indices.create(index=backend.index, body=body)
    try:
        assert backend.index_meta() == {} and backend.index_analyzer() is None
        backend.add([IndexDocument("a", "t", ["x/NNG"], {"x": 1.0})])
        assert backend.search_bm25(["x/NNG"]).ids == ["a"]
    finally:
        backend.clear()


def test_sparse_matches_memory(indexed, data):
    node, exact, lucene = indexed
    for _, qvec in data[1]:
        got = node.search_sparse(qvec, k=10)
        assert got.ids == lucene.search_sparse(qvec, k=10).ids
        want = exact.sparse.scores(qvec)
        row = {d: i for i, d in enumerate(exact.sparse.doc_ids())}
        for h in got.hits:
            assert h.score == pytest.approx(want[row[h.id]], rel=NINE_BIT_REL)
        exact_ids = exact.search_sparse(qvec, k=10).ids
        assert len(set(got.ids) & set(exact_ids)) >= 8  # 9-bit weights may swap near-ties


@pytest.mark.parametrize("method", ["minmax", "rrf"])
def test_hybrid_matches_memory(indexed, data, method):
    node, _, lucene = indexed
    for terms, qvec in data[1][:15]:
        got = hybrid_search(node, terms, qvec, k=10, method=method, weights=(0.3, 0.7), candidates=50)
        want = hybrid_search(lucene, terms, qvec, k=10, method=method, weights=(0.3, 0.7), candidates=50)
        assert got.ids == want.ids
        assert [h.score for h in got.hits] == pytest.approx([h.score for h in want.hits], rel=1e-5)


def test_dot_tokens_round_trip(indexed, data):
    node, _, _ = indexed
    docs = data[0]
    doc = docs[1]
    stored = node.get(doc.id)
    assert set(stored.sparse) == set(doc.sparse)
    assert stored.terms == list(doc.terms)
    for token in DOT_TOKENS:
        holders = {d.id for d in docs if token in d.sparse}
        got = node.search_sparse({token: 1.0}, k=max(len(holders), 1))
        assert set(got.ids) == holders
    exp = node.explain_sparse(doc.id, dict(doc.sparse))
    assert exp.score == pytest.approx(node.search_sparse(dict(doc.sparse), k=1).hits[0].score, rel=1e-5)


def test_feature_name_encoding_is_reversible():
    for token in ("3.5", "a%b", "▁혈당", "a b", "x\ty", "..", "%2E", "*", "sparse.x"):
        encoded = encode_feature_name(token)
        assert "." not in encoded and " " not in encoded
        assert decode_feature_name(encoded) == token
    with pytest.raises(ValueError):
        encode_feature_name("")


def test_invalid_input_rejected_before_sending(node):
    with pytest.raises(ValueError, match="> 0"):
        node.add([IndexDocument("bad", "t", [], {"x": 0.0})])
    with pytest.raises(ValueError, match="non-empty"):
        node.search_sparse({"": 1.0})
    with pytest.raises(ValueError, match="at most 1024"):
        node.sparse_query({f"t{i}": 1.0 for i in range(1025)})


def test_sparse_query_shape(node):
    q = node.sparse_query({"a.b": 2.0})
    if "neural_sparse" in q:
        assert q["neural_sparse"]["sparse"]["query_tokens"] == {"a%2Eb": 2.0}
    else:
        assert q["bool"]["should"] == [{"rank_feature": {"field": "sparse.a%2Eb", "linear": {}, "boost": 2.0}}]
    json.dumps(q)


def test_replace_and_clear(node):
    other = OpenSearchBackend(f"test-sparse-demo-{uuid.uuid4().hex[:12]}")
    try:
        other.add([IndexDocument("a", "t", ["x/NNG"], {"x": 1.0}), IndexDocument("b", "t", ["x/NNG"], {"x": 2.0})])
        other.add([IndexDocument("a", "t2", ["x/NNG"], {"x": 4.0})])
        assert other.count() == 2
        assert [(h.id, h.score) for h in other.search_sparse({"x": 1.0}).hits] == [("a", 4.0), ("b", 2.0)]
    finally:
        other.clear()
    assert other.count() == 0
    assert other.search_bm25(["x/NNG"]).hits == []


def test_unreachable_node_gives_readable_error():
    port = closed_port()
    backend = OpenSearchBackend("anything", ConnectionSettings(url=f"http://127.0.0.1:{port}", timeout=2))
    for call in (
        backend.ping,
        backend.count,
        lambda: backend.search_bm25(["x/NNG"]),
        lambda: backend.search_sparse({"x": 1.0}),
        lambda: backend.add([IndexDocument("a", "t", [], {"x": 1.0})]),
    ):
        with pytest.raises(OpenSearchUnavailable) as info:
            call()
        message = str(info.value)
        assert f"127.0.0.1:{port}" in message and "not reachable" in message
        assert "Traceback" not in message and "scripts/opensearch.sh start" in message
        assert info.value.__cause__ is None


def test_settings_from_env_hide_credentials():
    s = ConnectionSettings.from_env(
        {"OPENSEARCH_URL": "https://admin:s3cret@search.local:9200", "OPENSEARCH_VERIFY_CERTS": "false"}
    )
    assert s.user == "admin" and s.password == "s3cret" and not s.verify_certs
    assert "s3cret" not in s.url and "s3cret" not in s.display_url and "s3cret" not in repr(s)
    with pytest.raises(ValueError, match="true/false"):
        ConnectionSettings.from_env({"OPENSEARCH_VERIFY_CERTS": "maybe"})
    with pytest.raises(ValueError, match="http"):
        ConnectionSettings.from_env({"OPENSEARCH_URL": "localhost:9200"})
    with pytest.raises(ValueError, match="index name"):
        OpenSearchBackend("Bad Name", s)


def test_query_dsl_of_both_sparse_forms_without_a_node():
    encoded = {encode_feature_name("a.b"): 2.0, "▁혈당": 0.5}
    assert sparse_query_dsl(encoded, neural=True) == {
        "neural_sparse": {"sparse": {"query_tokens": {"a%2Eb": 2.0, "▁혈당": 0.5}}}
    }
    assert sparse_query_dsl(encoded, neural=False) == {
        "bool": {
            "should": [
                {"rank_feature": {"field": "sparse.a%2Eb", "linear": {}, "boost": 2.0}},
                {"rank_feature": {"field": "sparse.▁혈당", "linear": {}, "boost": 0.5}},
            ]
        }
    }
    assert bm25_query(["혈당/NNG", "수치/NNG"]) == {"match": {"bm25_terms": {"query": "혈당/NNG 수치/NNG"}}}
    with pytest.raises(ValueError, match="1025 distinct terms.*at most 1024"):
        bm25_query([f"t{i}/NNG" for i in range(1025)])
    with pytest.raises(ValueError, match="1025 tokens.*keep the top tokens"):
        sparse_query_dsl({f"t{i}": 1.0 for i in range(1025)}, neural=True)


def test_index_body_records_the_analyzer():
    body = index_body("E,J")
    assert body["mappings"]["_meta"] == {"bm25_analyzer": "E,J", "bm25_terms": TERMS_FORMAT}
    assert body["settings"]["similarity"]["lucene_bm25"] == {"type": "BM25", "k1": 1.2, "b": 0.75}
    assert body["mappings"]["properties"]["sparse"] == {"type": "rank_features"}
    assert OpenSearchBackend("x", ConnectionSettings()).index_body() == index_body("default")


def test_public_names_stay_importable_from_the_package():
    import sparse_demo.index as index_pkg
    import sparse_demo.index.opensearch as os_pkg

    for name in os_pkg.__all__:
        assert getattr(os_pkg, name) is not None, name
    for name in ("AnalyzerMismatchError", "OpenSearchBackend", "OpenSearchUnavailable"):
        assert getattr(index_pkg, name) is getattr(os_pkg, name)
    assert issubclass(os_pkg.AnalyzerMismatchError, ValueError)
    assert issubclass(os_pkg.IndexingError, RuntimeError)

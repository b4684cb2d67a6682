"""The session keeps the two halves of an encoded corpus apart (issue 14, item 6).

Document vectors depend on the corpus, the model fingerprint and the pruning; BM25 terms on the
corpus and the analyzer. Changing only the analyzer must not run the model again, changing only
the model must not analyse the documents again, and either way the index must rank exactly as one
built from scratch (an independent :func:`build_index` outside any session). The encoder's document
encoding is counted with a thin wrapper around the real method, not a mock.
"""

from __future__ import annotations

import uuid

import pytest

from sparse_demo import search as svc
from sparse_demo.corpus import Corpus, Document
from sparse_demo.korean import get_analyzer
from sparse_demo.search.encode import DocumentTerms, DocumentVectors
from sparse_demo.search.session import PartCache, estimate_part_bytes

DOCS = [
    Document("med-001", "당뇨병 치료는 식이요법과 운동입니다.", "당뇨병"),
    Document("med-002", "혈당 관리를 위해 운동이 필요합니다.", "혈당"),
    Document("med-003", "고혈압 환자는 소금을 줄여야 합니다.", ""),
    Document("law-001", "전세 보증금을 돌려받는 방법입니다.", "전세"),
    Document("tax-001", "연말정산 의료비 공제 방법입니다.", ""),
    Document("food-001", "김치찌개를 맛있게 끓이는 방법은 이것입니다.", "요리"),
]
QUERIES = ["당뇨병 치료 방법", "전세 보증금을 돌려받는 방법은", "운동이 필요합니다"]


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus("parts", list(DOCS))


def counting(encoder) -> list[int]:
    """Count the texts ``encoder.encode_iter`` (which ``encode`` calls too) and ``document_windows`` (the
    documents' path) are given, on this instance."""
    seen = [0]
    real_iter, real_windows = encoder.encode_iter, encoder.document_windows

    def encode_iter(texts, **kwargs):
        seen[0] += len(texts)
        return real_iter(texts, **kwargs)

    def document_windows(texts, settings, **kwargs):
        seen[0] += len(texts)
        return real_windows(texts, settings, **kwargs)

    encoder.encode_iter = encode_iter
    encoder.document_windows = document_windows
    return seen


@pytest.fixture
def encoder_a(tiny_model_dir):
    from sparse_demo.encoder import SpladeEncoder

    enc = SpladeEncoder.load(str(tiny_model_dir), device="cpu", name="tiny-a")
    return enc, counting(enc)


@pytest.fixture
def encoder_b(tiny_model_dir_b):
    from sparse_demo.encoder import SpladeEncoder

    enc = SpladeEncoder.load(str(tiny_model_dir_b), device="cpu", name="tiny-b")
    return enc, counting(enc)


def kept(session: svc.SearchSession, kind: type) -> list:
    """The session's kept halves of one kind (document vectors or BM25 terms), least recently used first."""
    return [k for k in session.parts.cached_keys() if isinstance(session.parts.get(k), kind)]


def rankings(index: svc.SearchIndex, method: str) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 9)) for h in svc.search(index, q, method=method, k=6).hits] for q in QUERIES]


@pytest.mark.slow
def test_changing_only_the_analyzer_runs_the_model_zero_more_times(corpus, encoder_a, tiny_model_dir):
    from sparse_demo.encoder import SpladeEncoder

    enc, seen = encoder_a
    session = svc.SearchSession(doc_top_k=16)
    first, _ = session.get_or_build(corpus, enc, "memory", analyzer="default")
    assert seen[0] == len(DOCS)

    second, notes = session.get_or_build(corpus, enc, "memory", analyzer="all")
    assert seen[0] == len(DOCS)  # the model did not encode a single document again
    assert second is not first and second.analyzer == "all"
    assert any("Reused the document vectors" in n for n in notes)
    assert all(a.sparse is b.sparse for a, b in zip(first.documents, second.documents))

    # The BM25 leg is that of the new analyzer: its terms are those the analyzer makes from the text ...
    terms_all = get_analyzer("all").terms
    for doc, d in zip(second.documents, DOCS):
        assert list(doc.terms) == terms_all(f"{d.title}\n{d.text}" if d.title else d.text)
    assert [list(d.terms) for d in second.documents] != [list(d.terms) for d in first.documents]

    # ... and every leg ranks exactly as an index built from scratch with that analyzer by another encoder object.
    fresh_encoder = SpladeEncoder.load(str(tiny_model_dir), device="cpu", name="tiny-a")
    fresh = svc.build_index(corpus, fresh_encoder, "memory", analyzer="all", doc_top_k=16)
    for method in ("bm25", "sparse", "hybrid"):
        assert rankings(second, method) == rankings(fresh, method), method
    assert rankings(second, "bm25") != rankings(first, "bm25")  # the analyzer does change BM25 here

    # Back to the first analyzer: the index itself is cached.
    again, notes = session.get_or_build(corpus, enc, "memory", analyzer="default")
    assert again is first and notes[0].startswith("Reused")
    assert seen[0] == len(DOCS) + 3  # only the three queries of each ranking above were encoded


@pytest.mark.slow
def test_changing_only_the_model_keeps_the_bm25_terms(corpus, encoder_a, encoder_b, tiny_model_dir_b):
    from sparse_demo.encoder import SpladeEncoder

    (enc_a, seen_a), (enc_b, seen_b) = encoder_a, encoder_b
    session = svc.SearchSession(doc_top_k=16)
    first, _ = session.get_or_build(corpus, enc_a, "memory", analyzer="nori")
    second, notes = session.get_or_build(corpus, enc_b, "memory", analyzer="nori")
    assert seen_a[0] == len(DOCS) and seen_b[0] == len(DOCS)  # each model encoded the corpus once
    assert any("Reused the BM25 terms" in n for n in notes)
    assert all(a.terms is b.terms for a, b in zip(first.documents, second.documents))
    fresh = svc.build_index(
        corpus,
        SpladeEncoder.load(str(tiny_model_dir_b), device="cpu", name="tiny-b"),
        "memory",
        analyzer="nori",
        doc_top_k=16,
    )
    for method in ("bm25", "sparse", "hybrid"):
        assert rankings(second, method) == rankings(fresh, method), method


def test_a_bm25_only_index_then_a_model_reuses_the_terms(corpus, encoder_a):
    enc, seen = encoder_a
    session = svc.SearchSession()
    bm25_only, _ = session.get_or_build(corpus, None, "memory", analyzer="default")
    with_model, notes = session.get_or_build(corpus, enc, "memory", analyzer="default")
    assert seen[0] == len(DOCS) and any("Reused the BM25 terms" in n for n in notes)
    assert all(a.terms is b.terms for a, b in zip(bm25_only.documents, with_model.documents))


def test_other_pruning_or_other_corpus_encodes_again(corpus, encoder_a):
    enc, seen = encoder_a
    session = svc.SearchSession()
    session.get_or_build(corpus, enc, "memory", doc_top_k=16)
    session.get_or_build(corpus, enc, "memory", doc_top_k=8, analyzer="all")  # pruning changes the vectors
    assert seen[0] == 2 * len(DOCS)
    other = Corpus("parts", list(DOCS[:4]))
    session.get_or_build(other, enc, "memory", doc_top_k=16, analyzer="all")
    assert seen[0] == 2 * len(DOCS) + 4


def test_build_index_refuses_halves_of_another_corpus_or_model(corpus, encoder_a, encoder_b):
    (enc_a, _), (enc_b, _) = encoder_a, encoder_b
    session = svc.SearchSession()
    idx, _ = session.get_or_build(corpus, enc_a, "memory")
    with pytest.raises(ValueError, match="document vectors were made from another corpus, model or pruning"):
        svc.build_index(corpus, enc_b, "memory", vectors=idx.document_vectors())
    with pytest.raises(ValueError, match="BM25 terms were made from another corpus or analyzer"):
        svc.build_index(corpus, enc_a, "memory", analyzer="all", terms=idx.document_terms())


def test_part_caches_are_bounded_by_count_and_bytes(corpus, encoder_a):
    enc, _ = encoder_a
    session = svc.SearchSession(max_indexes=2)
    for n in (3, 4, 5):
        session.get_or_build(Corpus(f"c{n}", list(DOCS[:n])), enc, "memory", doc_top_k=16)
    assert len(session.parts) == 4  # two indexes' worth: 2 vector sets and 2 term sets
    assert len(kept(session, DocumentVectors)) == 2 and len(kept(session, DocumentTerms)) == 2
    assert sorted(len(session.parts.get(k)) for k in kept(session, DocumentVectors)) == [4, 5]

    idx, _ = session.get_or_build(corpus, enc, "memory", doc_top_k=16)
    vec, terms = idx.document_vectors(), idx.document_terms()
    want = sum(len(d.sparse) for d in idx.documents) * 100 + idx.input_ids.indptr.nbytes + idx.input_ids.ids.nbytes
    assert estimate_part_bytes(vec) == want
    assert estimate_part_bytes(terms) == sum(len(d.terms) for d in idx.documents) * 70
    small = PartCache(max_entries=5, max_bytes=estimate_part_bytes(vec) + 1)
    small.put(idx.key.sparse_key(), vec)
    small.put(idx.key.terms_key(), terms)  # over the byte budget together: the older one goes
    assert small.cached_keys() == [idx.key.terms_key()]


def test_drop_where_drops_an_index_and_its_halves(corpus, encoder_a):
    enc, _ = encoder_a
    session = svc.SearchSession()
    mine = Corpus("visitor-upload", list(DOCS[:3]))
    session.get_or_build(mine, enc, "memory")
    session.get_or_build(corpus, enc, "memory")
    mine_id = svc.corpus_id(mine)
    assert session.drop_where(lambda k: k.corpus_id == mine_id) == 3  # the index, its vectors, its terms
    assert len(session) == 1 and len(session.parts) == 2
    assert all(k.corpus_id == svc.corpus_id(corpus) for k in session.parts.cached_keys())


@pytest.fixture(scope="module")
def node_url():
    ok, text = svc.opensearch_status()
    if not ok:
        pytest.skip(f"OpenSearch node not reachable ({text})")
    return text


def test_opensearch_analyzer_change_rebuilds_bm25_without_encoding(node_url, corpus, encoder_a, tiny_model_dir):
    from sparse_demo.encoder import SpladeEncoder

    enc, seen = encoder_a
    names = [f"test-search-parts-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    session = svc.SearchSession(doc_top_k=16)
    built = []
    try:
        for name, analyzer in zip(names, ("default", "all")):
            idx, notes = session.get_or_build(
                corpus, enc, "opensearch", index_name=name, analyzer=analyzer, fallback=False
            )
            built.append(idx)
        assert seen[0] == len(DOCS)
        assert built[1].backend_name == "opensearch" and built[1].backend.count() == len(DOCS)
        assert any("Reused the document vectors" in n for n in notes)
        fresh = svc.build_index(
            corpus,
            SpladeEncoder.load(str(tiny_model_dir), device="cpu", name="tiny-a"),
            "memory",
            analyzer="all",
            doc_top_k=16,
        )
        got = [[h.id for h in svc.search(built[1], q, method="bm25", k=6).hits] for q in QUERIES]
        want = [[h.id for h in svc.search(fresh, q, method="bm25", k=6).hits] for q in QUERIES]
        assert got == want
    finally:
        for idx in built:
            idx.backend.clear()

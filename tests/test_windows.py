"""Long documents: windows read the whole text, ``max`` equals a hand loop, every cut is counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import KOREAN_TEXTS

from sparse_demo.corpus import Corpus, Document
from sparse_demo.encoder.windows import WindowSettings, plan_windows
from sparse_demo.modeling import make_mlm, train_tokenizer

MAX_LENGTH = 24  # small windows keep the test fast; the logic is the same at V26's 192


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(KOREAN_TEXTS * 5, vocab_size=300)


@pytest.fixture(scope="module")
def random_encoder(tokenizer):
    from sparse_demo.encoder import SpladeEncoder

    return SpladeEncoder(make_mlm(tokenizer, "tiny", seed=4), tokenizer, name="tiny", max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def lexical_encoder(tokenizer):
    """A model that activates (about) only the tokens of its input: what a term after the cut needs."""
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.train.vocab import lexical_init

    model = make_mlm(tokenizer, "mini", seed=0)
    enc = tokenizer(KOREAN_TEXTS, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="pt")
    lexical_init(model, sample=(enc["input_ids"], enc["attention_mask"]))
    return SpladeEncoder(model, tokenizer, name="lexical", max_length=MAX_LENGTH)


def _hand_max(model, tokenizer, text: str, window: int, stride: int) -> np.ndarray:
    """The card's formula on each window (HF logits, no project code), then the element-wise max."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    vecs = []
    with torch.no_grad():
        for a, b in plan_windows(len(ids), window, stride):
            seq = torch.tensor([[tokenizer.bos_token_id, *ids[a:b], tokenizer.eos_token_id]])
            logits = model(input_ids=seq).logits[0]
            vecs.append(torch.log1p(torch.relu(logits)).max(dim=0).values.numpy())
    return np.max(vecs, axis=0)


def _dense(vector, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float32)
    out[vector.token_ids] = vector.weights
    return out


def test_window_plan_on_a_text_of_known_length(tokenizer):
    text = " ".join(KOREAN_TEXTS[:4])
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    window, stride = MAX_LENGTH - 2, 10
    spans = plan_windows(n, window, stride)
    assert spans[0] == (0, window) and spans[-1] == (n - window, n)
    assert all(b - a == window for a, b in spans)
    assert all(spans[i + 1][0] - spans[i][0] == stride for i in range(len(spans) - 2))
    assert 0 < spans[-1][0] - spans[-2][0] <= stride  # the last window is moved back, never past the end
    covered = set().union(*(range(a, b) for a, b in spans))
    assert covered == set(range(n))
    assert WindowSettings("max", stride=10).stride_for(window) == 10
    with pytest.raises(ValueError, match="larger than the window"):
        WindowSettings("max", stride=window + 1).stride_for(window)
    with pytest.raises(ValueError, match="max, passages, first"):
        WindowSettings("mean")


@pytest.mark.parametrize("stride", [7, 22])
def test_max_over_windows_equals_a_hand_loop(random_encoder, tokenizer, stride):
    texts = [" ".join(KOREAN_TEXTS[:5]), "혈당 관리가 필요합니다", " ".join(KOREAN_TEXTS[3:9])]
    counts, done = random_encoder.document_windows(texts, WindowSettings("max", stride=stride), batch_size=3)
    docs = dict(done)
    size = random_encoder.vocab_size
    for i, text in enumerate(texts):
        hand = _hand_max(random_encoder.model, tokenizer, text, MAX_LENGTH - 2, stride)
        got = _dense(docs[i].encoding.vector, size)
        assert np.abs(hand - got).max() < 1e-5, i
        enc = docs[i].encoding
        # each weight's position points into the whole text, at a token of the window it came from
        ids = tokenizer(text)["input_ids"]
        assert list(enc.input_ids) == ids and not enc.truncated
        for pos in enc.vector.positions[:50]:
            assert 0 <= pos < len(ids)
    # a text that fits is read exactly as the encoder reads it alone
    assert len(tokenizer(texts[1])["input_ids"]) <= MAX_LENGTH
    alone = random_encoder.encode([texts[1]])[0]
    assert np.abs(_dense(alone.vector, size) - _dense(docs[1].encoding.vector, size)).max() < 1e-5
    assert docs[1].encoding.windows == ()


def test_counts_equal_an_independent_count_from_the_tokenizer(random_encoder, tokenizer):
    texts = [" ".join(KOREAN_TEXTS[:k]) for k in range(1, 8)] + ["", "짧은 글"]
    window = MAX_LENGTH - 2
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    long = [n for n in lengths if n > window]
    stride = 15
    expected_windows = sum(1 if n <= window else len(plan_windows(n, window, stride)) for n in lengths)
    counts, done = random_encoder.document_windows(texts, WindowSettings("max", stride=stride))
    list(done)
    assert (counts.documents, counts.long, counts.windows) == (len(texts), len(long), expected_windows)
    assert counts.max_windows == max(1 + -(-(n - window) // stride) for n in lengths)
    first, done = random_encoder.document_windows(texts, WindowSettings("first"))
    encodings = dict(done)
    assert (first.long, first.windows) == (len(long), len(texts))
    assert first.dropped_tokens == sum(n - window for n in long)
    assert sum(e.encoding.truncated for e in encodings.values()) == len(long)
    assert "longer than the model reads" in first.sentence() and "not read" in first.sentence()
    assert f"{counts.long:,} of {counts.documents:,} documents" in counts.sentence()


def _long_corpus(tokenizer) -> tuple[Corpus, str]:
    """Documents whose only mention of the query's word lies after the first window."""
    filler = " ".join(KOREAN_TEXTS[:6])  # no 여권 in it
    assert "여권" not in filler
    window = MAX_LENGTH - 2
    assert len(tokenizer(filler, add_special_tokens=False)["input_ids"]) > 2 * window
    short = ["혈당 관리", "운동 필요", "소금 섭취", "전세 계약", "세액공제 대상", "김치찌개 맛"]
    docs = [Document("late", f"{filler} 여권 발급 안내"), *[Document(f"d{i}", t) for i, t in enumerate(short)]]
    return Corpus("late-term", docs), "여권"


@pytest.mark.parametrize("mode, found", [("max", True), ("first", False)])
def test_a_term_after_the_first_window_is_found_only_when_the_whole_document_is_read(
    lexical_encoder, tokenizer, mode, found
):
    from sparse_demo.search import build_index, search

    corpus, query = _long_corpus(tokenizer)
    index = build_index(corpus, lexical_encoder, "memory", doc_windows=WindowSettings(mode))
    hits = search(index, query, method="sparse", k=3).hits
    top = hits[0].id if hits and hits[0].score > 0 else None
    assert (top == "late") is found, [(h.id, h.score) for h in hits]
    counts = index.stats.windows
    window = MAX_LENGTH - 2
    long = sum(len(tokenizer(d.text, add_special_tokens=False)["input_ids"]) > window for d in corpus.documents)
    assert long == 1 and counts is not None and counts.mode == mode and counts.long == long
    assert any("longer than the model reads" in n for n in index.notes)
    # BM25 reads the whole document in both modes
    assert search(index, query, method="bm25", k=1).hits[0].id == "late"


def _passages_docs(n_docs: int = 12) -> list:
    """Documents with 1-4 passages of hand-made vectors (an independent stand-in for the encoder)."""
    from sparse_demo.index import IndexDocument

    rng = np.random.default_rng(7)
    vocab = [f"▁t{i}" for i in range(40)]
    docs = []
    for d in range(n_docs):
        passages = tuple(
            {vocab[int(t)]: float(rng.uniform(0.1, 3.0)) for t in rng.choice(40, size=6, replace=False)}
            for _ in range(1 + d % 4)
        )
        merged: dict[str, float] = {}
        for p in passages:
            for t, w in p.items():
                merged[t] = max(merged.get(t, 0.0), w)
        docs.append(IndexDocument(f"doc{d}", f"text {d}", [f"t{d}/NNG"], merged, passages=passages))
    queries = [
        {vocab[int(t)]: float(rng.uniform(0.2, 2.0)) for t in rng.choice(40, size=4, replace=False)} for _ in range(8)
    ]
    return docs, queries


def _maxp(doc, query) -> float:
    return max(sum(w * p.get(t, 0.0) for t, w in query.items()) for p in doc.passages)


def test_passages_score_each_document_by_its_best_window_in_memory():
    from sparse_demo.index import MemoryBackend

    docs, queries = _passages_docs()
    be = MemoryBackend()
    be.add(docs)
    for q in queries:
        hits = be.search_sparse(q, k=len(docs)).hits
        assert len({h.id for h in hits}) == len(hits)  # each document once
        expected = {d.id: _maxp(d, q) for d in docs if _maxp(d, q) > 0}
        assert {h.id: pytest.approx(h.score, rel=1e-6) for h in hits} == expected
        top = hits[0]
        assert be.explain_sparse(top.id, q).score == pytest.approx(top.score, rel=1e-6)


@pytest.mark.opensearch
def test_passages_on_a_real_node_one_nested_document_per_window_each_document_returned_once():
    import os
    import uuid

    from sparse_demo.index import MemoryBackend
    from sparse_demo.index.opensearch import OpenSearchBackend, OpenSearchUnavailable

    docs, queries = _passages_docs()
    node = OpenSearchBackend(f"test-passages-{uuid.uuid4().hex[:10]}")
    try:
        node.ping()
    except OpenSearchUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but OpenSearch is not reachable: {exc}")
        pytest.skip(f"OpenSearch node not reachable ({exc})")
    try:
        node.add(docs)
        assert node.count() == len(docs)
        stats = node.client.indices.stats(index=node.index)["_all"]["primaries"]["docs"]["count"]
        assert stats == len(docs) + sum(len(d.passages) for d in docs)  # Lucene: parents + one per window
        lucene = MemoryBackend(feature_precision="lucene")
        lucene.add(docs)
        for q in queries:
            got = node.search_sparse(q, k=len(docs)).hits
            want = lucene.search_sparse(q, k=len(docs)).hits
            assert len({h.id for h in got}) == len(got)
            assert [h.id for h in got] == [h.id for h in want]
            for g, w in zip(got, want):
                assert g.score == pytest.approx(w.score, rel=2**-7)
            assert node.explain_sparse(got[0].id, q).score == pytest.approx(got[0].score, rel=2**-7)
        # a backend object made afresh reads the passages flag from the index's _meta
        again = OpenSearchBackend(node.index)
        assert again.holds_passages() and [h.id for h in again.search_sparse(queries[0], k=5).hits] == [
            h.id for h in node.search_sparse(queries[0], k=5).hits
        ]
    finally:
        node.clear()


def test_passages_mode_end_to_end_finds_the_late_term_and_names_its_window(lexical_encoder, tokenizer):
    from sparse_demo.search import build_index, search
    from sparse_demo.search.explain import explain

    corpus, query = _long_corpus(tokenizer)
    index = build_index(corpus, lexical_encoder, "memory", doc_windows=WindowSettings("passages"))
    hits = search(index, query, method="sparse", k=5).hits
    assert hits[0].id == "late" and len({h.id for h in hits}) == len(hits)
    exp = explain(index, "late", query)
    assert exp.windows and exp.best_window == len(exp.windows) - 1  # the term is in the last window only
    start, stop = exp.windows[exp.best_window]
    assert "여권" in corpus.get("late").text[start:stop]
    # in passages mode every product comes from the best passage
    assert exp.rows() and all(r["window"] == exp.best_window + 1 for r in exp.rows())
    # in max mode each token names the window its (max) weight came from: 권 only occurs in the last one
    exp_max = explain(build_index(corpus, lexical_encoder, "memory"), "late", query)
    assert exp_max.token_windows["권"] == len(exp_max.windows) - 1
    start, stop = exp_max.windows[exp_max.token_windows["권"]]
    assert "권" in corpus.get("late").text[start:stop]

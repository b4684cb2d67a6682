"""Encoded shared corpora are kept on disk (a restart does not encode again); a visitor's upload never is."""

from __future__ import annotations

import pytest
from conftest import KOREAN_TEXTS

from sparse_demo.corpus import Corpus, Document
from sparse_demo.encoder.windows import WindowSettings
from sparse_demo.modeling import make_mlm, train_tokenizer


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A checkpoint loaded from its folder (what may be kept on disk: a model built in memory is not)."""
    from sparse_demo.encoder import SpladeEncoder

    tok = train_tokenizer(KOREAN_TEXTS * 5, vocab_size=300)
    folder = tmp_path_factory.mktemp("store_model")
    make_mlm(tok, "tiny", seed=5).save_pretrained(folder)
    tok.save_pretrained(folder)
    return SpladeEncoder.load(str(folder), device="cpu", name="tiny", max_length=24)


class Counting:
    def __init__(self, inner):
        self.inner, self.calls = inner, 0

    def document_windows(self, texts, settings, **kw):
        self.calls += len(texts)
        return self.inner.document_windows(texts, settings, **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def _corpus(owner=None) -> Corpus:
    docs = [Document(f"d{i}", " ".join(KOREAN_TEXTS[i : i + 3])) for i in range(6)]
    c = Corpus("store", docs)
    c.owner = owner
    return c


def test_a_second_encoding_of_a_shared_corpus_reads_the_disk_and_equals_the_first(encoder, tmp_path, monkeypatch):
    from sparse_demo.search.encode import encode_vectors

    monkeypatch.setenv("SPARSE_DEMO_VECTOR_CACHE", str(tmp_path / "vectors"))
    for mode in ("max", "passages"):
        counting = Counting(encoder)
        first = encode_vectors(
            _corpus(), counting, doc_top_k=64, windows=WindowSettings(mode, stride=9), disk_cache=True
        )
        second = encode_vectors(
            _corpus(), counting, doc_top_k=64, windows=WindowSettings(mode, stride=9), disk_cache=True
        )
        assert counting.calls == 6  # the second read the file
        assert second.vectors == first.vectors and second.pruned == first.pruned
        assert second.windows == first.windows and second.windows.long > 0
        assert second.passages == first.passages
        assert second.input_ids.ids.tolist() == first.input_ids.ids.tolist()
    assert len(list((tmp_path / "vectors").glob("vectors-*.npz"))) == 2
    # another window setting or pruning is another file, never a stale read
    counting = Counting(encoder)
    encode_vectors(_corpus(), counting, doc_top_k=32, windows=WindowSettings("max", stride=9), disk_cache=True)
    assert counting.calls == 6


def test_a_visitors_upload_is_never_written_and_a_damaged_file_is_replaced(encoder, tmp_path, monkeypatch):
    from sparse_demo.search.encode import encode_vectors

    folder = tmp_path / "vectors"
    monkeypatch.setenv("SPARSE_DEMO_VECTOR_CACHE", str(folder))
    encode_vectors(_corpus(owner="visitor-1"), encoder, doc_top_k=64, disk_cache=True)
    assert not folder.exists() or not list(folder.iterdir())
    encode_vectors(_corpus(), encoder, doc_top_k=64, disk_cache=True)
    (path,) = folder.glob("vectors-*.npz")
    path.write_bytes(b"not a numpy file")
    counting = Counting(encoder)
    again = encode_vectors(_corpus(), counting, doc_top_k=64, disk_cache=True)
    assert counting.calls == 6 and len(again.vectors) == 6  # encoded again, file rewritten
    counting = Counting(encoder)
    encode_vectors(_corpus(), counting, doc_top_k=64, disk_cache=True)
    assert counting.calls == 0
    counting = Counting(encoder)
    encode_vectors(_corpus(), counting, doc_top_k=64)  # a caller that does not ask (a visitor's model)
    assert counting.calls == 6
    monkeypatch.setenv("SPARSE_DEMO_VECTOR_CACHE", "off")
    counting = Counting(encoder)
    encode_vectors(_corpus(), counting, doc_top_k=64, disk_cache=True)
    assert counting.calls == 6
    # a model changed since loading (in training) is never written
    import torch

    monkeypatch.setenv("SPARSE_DEMO_VECTOR_CACHE", str(folder))
    with torch.no_grad():
        next(encoder.model.parameters()).add_(0.01)
    assert not encoder.stored_checkpoint
    files = set(folder.glob("*.npz"))
    encode_vectors(_corpus(), encoder, doc_top_k=64, disk_cache=True)
    assert set(folder.glob("*.npz")) == files

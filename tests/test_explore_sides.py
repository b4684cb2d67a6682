"""Explore reads a text with either side of a model: an inference-free query side is its token table."""

from __future__ import annotations

import numpy as np
import pytest

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import SparseEncoder  # noqa: E402
from sentence_transformers.sparse_encoder.modules import (  # noqa: E402
    MLMTransformer,
    Router,
    SparseStaticEmbedding,
    SpladePooling,
)

pytestmark = pytest.mark.slow  # sentence-transformers and Kiwi start-up

TEXT = "당뇨병 치료 방법은 식이요법과 운동입니다"


@pytest.fixture(scope="module")
def inference_free_dir(tmp_path_factory):
    """A Router folder saved by sentence-transformers: token weights for queries, a tiny MLM (a 300-piece
    vocabulary: fast) for documents."""
    import torch
    from conftest import KOREAN_TEXTS

    from sparse_demo.modeling import make_mlm, train_tokenizer

    tok = train_tokenizer(KOREAN_TEXTS * 5, vocab_size=300)
    tiny_model_dir = tmp_path_factory.mktemp("tiny_small_vocab")
    make_mlm(tok, "tiny", seed=2).save_pretrained(tiny_model_dir)
    tok.save_pretrained(tiny_model_dir)
    weight = torch.rand(len(tok.get_vocab()), generator=torch.Generator().manual_seed(3)) * 3
    router = Router.for_query_document(
        query_modules=[SparseStaticEmbedding(tokenizer=tok, weight=weight, frozen=True)],
        document_modules=[MLMTransformer(str(tiny_model_dir)), SpladePooling("max")],
    )
    out = tmp_path_factory.mktemp("inference_free")
    SparseEncoder(modules=[router], device="cpu", similarity_fn_name="dot").save(str(out))
    return out


@pytest.fixture(scope="module")
def ctx(inference_free_dir):
    from sparse_demo.config import load_limits
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.ui.common import AppContext

    encoder = SpladeEncoder.load(str(inference_free_dir), device="cpu", name="inference-free")

    from sparse_demo.korean import load_stopwords

    class Ctx:  # what the Explore handlers use of an AppContext
        limits = load_limits({})
        stopwords = load_stopwords()
        analyzer = AppContext.analyzer
        rule = AppContext.rule

        def encoder(self, *_):
            return encoder

    return Ctx(), encoder, SparseEncoder(str(inference_free_dir), device="cpu")


def _dense(rows, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float32)
    for r in rows.itertuples():
        out[r.id] = r.weight
    return out


@pytest.mark.parametrize("side", ["query", "document"])
def test_explore_shows_each_side_as_sentence_transformers_encodes_it(ctx, side):
    from sparse_demo.ui.explore import explore_query

    c, encoder, reference = ctx
    r = explore_query(c, TEXT, "inference-free", top_k=100, side=side)
    assert r.analysis is not None, r.status
    want = (reference.encode_query if side == "query" else reference.encode_document)([TEXT], convert_to_tensor=True)
    want = want.to_dense().numpy()[0]
    got = np.zeros_like(want)
    vec = r.analysis.encoding.vector
    got[vec.token_ids] = vec.weights
    top = np.argsort(-want)[:100]
    assert np.abs(got[top] - want[top]).max() < 1e-5
    if side == "query":
        assert "token weights" in r.status
        assert set(r.table["origin"]) == {"input"}  # a token table activates only the text's own tokens
    else:
        assert "document side" in r.status


def test_the_heatmap_of_an_inference_free_query_is_its_token_table(ctx, tmp_path):
    from sparse_demo.ui.explore import explore_heatmap

    c, encoder, _ = ctx
    r = explore_heatmap(c, TEXT, "inference-free", n_tokens=8, side="query")
    hm = r.heatmap
    assert hm is not None, r.status
    table = encoder.query_side._table
    ids = [encoder.tokenizer.convert_tokens_to_ids(t) for t in hm.tokens]
    for j, tid in enumerate(ids):
        where = [p for p, piece in enumerate(hm.pieces) if piece == hm.tokens[j]]
        assert where and all(hm.values[p, j] == pytest.approx(table[tid]) for p in where)
        assert all(hm.values[p, j] == 0 for p in range(len(hm.pieces)) if p not in where)

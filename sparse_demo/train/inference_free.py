"""Inference-free training: the query side is a frozen IDF weight per token, only the document MLM learns.

As OpenSearch's inference-free sparse models are trained, a query's vector is the IDF weight of each token
it contains (tokenised without special tokens, as sentence-transformers' ``SparseStaticEmbedding`` does),
so a query costs a tokenizer call and the scores in the loss are ``q_idf · d_mlm``:

* ``idf_v = log(1 + (N - df_v + 0.5) / (df_v + 0.5))`` (:func:`~sparse_demo.train.losses.idf_from_df`)
  where ``N`` is the number of distinct training documents (positives and negatives) and ``df_v`` how many
  of them contain token ``v`` (whole texts, tokenised without special tokens); special tokens get 0;
* ``q_v = idf_v`` when token ``v`` is among the query's first ``query_max_length`` tokens, else 0.

:func:`save_router_folder` writes the result as a sentence-transformers ``Router`` folder (query route
``SparseStaticEmbedding`` with the IDF weights, document route ``MLMTransformer`` + ``SpladePooling`` max),
in the files sentence-transformers 5 writes (which 6.x reads through its renamed-module table), so that
both ``sentence_transformers.SparseEncoder(folder)`` and :meth:`sparse_demo.encoder.SpladeEncoder.load` load
it. sentence-transformers itself is not needed to write it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from sparse_demo.train.losses import document_frequencies, idf_from_df

logger = logging.getLogger(__name__)

#: Folder names of the two routes (what ``SparseEncoder.save`` names them).
QUERY_MODULE = "query_0_SparseStaticEmbedding"
DOCUMENT_MLM = "document_0_MLMTransformer"
DOCUMENT_POOLING = "document_1_SpladePooling"
_TYPES = {
    QUERY_MODULE: "sentence_transformers.sparse_encoder.models.SparseStaticEmbedding",
    DOCUMENT_MLM: "sentence_transformers.sparse_encoder.models.MLMTransformer",
    DOCUMENT_POOLING: "sentence_transformers.sparse_encoder.models.SpladePooling",
}
_ROUTER_TYPE = "sentence_transformers.models.Router"
_TOKENIZE_BATCH = 256


def _ids_without_specials(tokenizer: Any, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
    out: list[list[int]] = []
    for b0 in range(0, len(texts), _TOKENIZE_BATCH):
        chunk = list(texts[b0 : b0 + _TOKENIZE_BATCH])
        kwargs: dict[str, Any] = {"add_special_tokens": False, "verbose": False}
        if max_length is not None:
            kwargs.update(truncation=True, max_length=max_length)
        out.extend(list(ids) for ids in tokenizer(chunk, **kwargs)["input_ids"])
    return out


def corpus_idf(tokenizer: Any, documents: Sequence[str], vocab_size: int) -> torch.Tensor:
    """The query weight per vocabulary id: BM25's IDF over ``documents`` (special tokens 0), float32 ``[vocab]``.

    Args:
        tokenizer: the model's tokenizer (documents are tokenised whole, without special tokens).
        documents: the distinct training documents.
        vocab_size: the model's vocabulary (output dimension).

    Raises:
        ValueError: no document.
    """
    if not documents:
        raise ValueError("inference-free training needs at least one training document to compute the IDF")
    df, n = document_frequencies(_ids_without_specials(tokenizer, documents), vocab_size)
    idf = torch.tensor(idf_from_df(df, n), dtype=torch.float32)
    special = [i for i in tokenizer.all_special_ids if 0 <= int(i) < vocab_size]
    idf[special] = 0.0
    return idf


def query_token_ids(tokenizer: Any, queries: Sequence[str], max_length: int) -> list[list[int]]:
    """Each query's token ids without special tokens, the first ``max_length`` of them."""
    return _ids_without_specials(tokenizer, queries, max_length)


def static_query_vectors(ids: Sequence[Sequence[int]], idf: torch.Tensor) -> torch.Tensor:
    """``[B, V]``: ``idf_v`` for every token ``v`` present in row ``i``'s ids, else 0 (no gradient)."""
    out = torch.zeros(len(ids), idf.shape[0], device=idf.device)
    for row, seq in enumerate(ids):
        present = torch.tensor(sorted({int(t) for t in seq if 0 <= int(t) < idf.shape[0]}), dtype=torch.long)
        if present.numel():
            present = present.to(idf.device)
            out[row, present] = idf[present]
    return out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def save_router_folder(model: Any, tokenizer: Any, idf: torch.Tensor, folder: Path, *, max_length: int) -> None:
    """Write the sentence-transformers ``Router`` files of an inference-free model into ``folder`` (which exists).

    Files: ``modules.json`` (one ``Router``), ``router_config.json`` (query route ``query_0_SparseStaticEmbedding``,
    document route ``document_0_MLMTransformer`` then ``document_1_SpladePooling``, default route document),
    ``config_sentence_transformers.json`` (``SparseEncoder``, dot similarity, empty prompts), the static
    module (``config.json`` ``{"frozen": true}``, ``model.safetensors`` holding ``weight``, tokenizer), the MLM
    (its ``save_pretrained`` folder, tokenizer, ``sentence_bert_config.json`` with ``max_seq_length``) and the
    pooling (``config.json``: max, relu, the vocabulary size).

    Args:
        model: the trained ``*ForMaskedLM`` (on the CPU).
        tokenizer: its tokenizer.
        idf: ``[vocab]`` query weights.
        folder: where to write (an existing, empty folder).
        max_length: tokens the document side reads (``max_seq_length``).
    """
    from safetensors.torch import save_file

    vocab = int(model.get_output_embeddings().weight.shape[0])
    if idf.shape != (vocab,):
        raise ValueError(f"the IDF has {tuple(idf.shape)} weights for a vocabulary of {vocab}")
    _write_json(folder / "modules.json", [{"idx": 0, "name": "0", "path": "", "type": _ROUTER_TYPE}])
    _write_json(
        folder / "router_config.json",
        {
            "types": _TYPES,
            "structure": {"query": [QUERY_MODULE], "document": [DOCUMENT_MLM, DOCUMENT_POOLING]},
            "parameters": {"default_route": "document", "allow_empty_key": True},
        },
    )
    _write_json(
        folder / "config_sentence_transformers.json",
        {
            "model_type": "SparseEncoder",
            "prompts": {"query": "", "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "dot",
        },
    )
    static = folder / QUERY_MODULE
    static.mkdir()
    _write_json(static / "config.json", {"frozen": True})
    save_file({"weight": idf.detach().float().cpu().contiguous()}, str(static / "model.safetensors"))
    tokenizer.save_pretrained(str(static))
    mlm = folder / DOCUMENT_MLM
    mlm.mkdir()
    model.save_pretrained(str(mlm), safe_serialization=True)
    tokenizer.save_pretrained(str(mlm))
    _write_json(mlm / "sentence_bert_config.json", {"max_seq_length": int(max_length), "do_lower_case": False})
    pooling = folder / DOCUMENT_POOLING
    pooling.mkdir()
    _write_json(
        pooling / "config.json",
        {"pooling_strategy": "max", "activation_function": "relu", "word_embedding_dimension": vocab},
    )
    logger.info("Wrote an inference-free Router folder (%d query weights) in %s", vocab, folder)


__all__ = [
    "DOCUMENT_MLM",
    "DOCUMENT_POOLING",
    "QUERY_MODULE",
    "corpus_idf",
    "query_token_ids",
    "save_router_folder",
    "static_query_vectors",
]

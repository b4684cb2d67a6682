"""Fine-tune a SPLADE encoder on pairs, or build a small one from scratch, on CPU or GPU.

``train(config, pairs)`` loads a base ``*ForMaskedLM`` checkpoint (hub id, preset or local
folder) or builds a new small ``XLMRobertaForMaskedLM`` whose vocabulary is either a
tokenizer trained on the pairs or a *pruned* copy of a base tokenizer (only the pieces the
data uses, plus special tokens and single characters). A new model starts as a lexical
matcher: its output projection is tied to the input embedding and the output bias is
negative, so each input token mostly activates itself (an untied head collapsed to all-zero
vectors within 50 steps in our CPU experiments).

The loop (AdamW, warmup, bf16 autocast where the hardware supports it, optional BM25 hard
negatives) minimises :func:`sparse_demo.train.losses.splade_loss`, reports a progress dict
per logging step, stops on a time limit, a step limit, early stopping on the held-out split
or ``should_stop()``, and saves a standard model folder (``model.safetensors``,
``config.json``, tokenizer files, ``README.md`` model card, ``training_info.json``) that
``AutoModelForMaskedLM`` and :class:`~sparse_demo.encoder.SpladeEncoder` load.

One training runs per process at a time (a lock); every run writes a new folder, so one
visitor's run never changes another's model.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import math
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from sparse_demo.encoder import pool_logits as sparse_pool
from sparse_demo.evaluation import (
    RetrievalMetrics,
    hybrid_score_matrix,
    rankings_from_scores,
    retrieval_metrics,
)
from sparse_demo.train.data import (
    DEFAULT_MAX_BYTES,
    Pair,
    PairsDataset,
    RetrievalSet,
    read_pairs,
    retrieval_set_from_pairs,
    split_pairs,
)
from sparse_demo.train.losses import (
    LossConfig,
    document_frequencies,
    idf_from_df,
    idf_penalties,
    splade_loss,
)

logger = logging.getLogger(__name__)

ProgressFn = Callable[[dict[str, Any]], None]
StopFn = Callable[[], bool]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLE_PAIRS = REPO_ROOT / "assets" / "pairs" / "sample_pairs.jsonl"
DEFAULT_OUTPUT_DIR = REPO_ROOT / ".cache" / "finetuned"
OFFLINE_MODEL_NOTE = "small local model trained on sample data"
NEW_MODEL_BASES: tuple[str, ...] = ("new", "new-tiny", "new-mini", "new-small")
SIZES: tuple[str, ...] = ("tiny", "mini", "small")

_TRAIN_LOCK = threading.Lock()


class TrainingBusyError(RuntimeError):
    """Another training run holds the process-wide lock."""


# ---------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """Everything a run needs. Defaults are the small-model-from-scratch recipe that works on CPU.

    Use :meth:`card_defaults` to fine-tune a pretrained checkpoint with the model card's values
    (lr 2e-5, batch 48, max length 192, FLOPS 0.010, stopword x15, special x100, idf_alpha 4).

    Attributes:
        base: ``new-small`` (also ``new``, ``new-tiny``, ``new-mini``) to build a model from
            scratch, or a preset name from ``assets/models.json``, a Hub id or a local folder.
        size: size of a new model: ``tiny`` | ``mini`` | ``small``.
        tokenizer: for a new model, a base tokenizer folder to prune (e.g. the XLM-R
            tokenizer); None trains a Unigram tokenizer on the pairs.
        tokenizer_vocab_size: vocabulary of a tokenizer trained on the pairs.
        extra_vocab_texts: extra texts whose pieces are kept when pruning (e.g. the corpus
            that will be indexed); they are not trained on.
        epochs: passes over the pairs (the time/step limits may stop earlier).
        batch_size: pairs per step (in-batch negatives = batch_size - 1).
        lr: peak AdamW learning rate; ``warmup_ratio`` of the steps warm it up linearly, then
            it decays linearly to 10%.
        weight_decay: AdamW weight decay.
        max_length: document tokens; ``query_max_length``: query tokens.
        loss: loss weights (:class:`~sparse_demo.train.losses.LossConfig`).
        output_bias_init: output bias of a new model (negative: sparse start); ``auto``
            calibrates it (see :func:`lexical_init`).
        bm25_negatives: mine one BM25 hard negative per pair without a negative.
        eval_fraction: share of queries held out when no eval pairs are given.
        eval_distractors: training positives added to the held-out corpus (harder eval).
        eval_every: steps between held-out evaluations (0: only before/after).
        patience: evaluations without MRR@10 improvement before stopping (0: never).
        time_limit_s: wall-clock limit of the training loop (None: none).
        max_steps: optimiser-step limit (None: epochs decide).
        bf16: ``auto`` (bf16 autocast on CUDA or CPUs with avx512_bf16/AMX), ``on`` or ``off``.
        log_every: steps between progress reports.
        seed: RNG seed.
        output_dir: runs are saved to ``output_dir/<run_name>-<time>-<id>``.
        out_path: exact output folder instead (must not exist or be empty).
        run_name: folder-name prefix.
        note: free text recorded in the model card and config (e.g. the offline-model note).
        save_on_cancel: save the partially trained model when cancelled.
        max_bytes: size limit when ``pairs`` is a path.
        device: ``auto`` | ``cpu`` | ``cuda``.
        num_threads: torch CPU threads during the run (restored afterwards); None keeps the
            current setting. Use 1 for tiny models or on a busy machine: with more threads than
            free cores, every small op waits on a thread barrier (measured: 1.3 s vs 0.08 s per
            tiny step under load 7 on 2 cores).
    """

    base: str = "new-small"
    size: Literal["tiny", "mini", "small"] = "small"
    tokenizer: str | None = None
    tokenizer_vocab_size: int = 8000
    extra_vocab_texts: Sequence[str] = field(default=(), repr=False)
    epochs: float = 3.0
    batch_size: int = 64
    lr: float = 1e-3
    warmup_ratio: float = 0.05
    weight_decay: float = 0.01
    max_length: int = 192
    query_max_length: int = 64
    loss: LossConfig = field(
        default_factory=lambda: LossConfig(lambda_flops_query=5e-3, lambda_flops_doc=3e-3, reg_warmup_steps=50)
    )
    output_bias_init: float | Literal["auto"] = "auto"
    bm25_negatives: bool = False
    eval_fraction: float = 0.1
    eval_distractors: int = 500
    eval_every: int = 100
    patience: int = 3
    time_limit_s: float | None = 300.0
    max_steps: int | None = None
    bf16: Literal["auto", "on", "off"] = "auto"
    log_every: int = 5
    seed: int = 0
    output_dir: str = str(DEFAULT_OUTPUT_DIR)
    out_path: str | None = None
    run_name: str = "sparse-ft"
    note: str = ""
    save_on_cancel: bool = True
    max_bytes: int = DEFAULT_MAX_BYTES
    device: str = "auto"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def card_defaults(cls, base: str, **overrides: Any) -> TrainConfig:
        """The model card's recipe for fine-tuning a pretrained checkpoint ``base``."""
        values: dict[str, Any] = {
            "base": base,
            "lr": 2e-5,
            "batch_size": 48,
            "max_length": 192,
            "epochs": 1.0,
            "time_limit_s": None,
            "loss": LossConfig(),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def is_new_model(self) -> bool:
        return self.base in NEW_MODEL_BASES

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field and the valid choices."""
        if not self.base or not str(self.base).strip():
            raise ValueError(f"base must be one of {', '.join(NEW_MODEL_BASES)} or a model id/folder")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        if self.bf16 not in ("auto", "on", "off"):
            raise ValueError(f"bf16 must be one of auto, on, off; got {self.bf16!r}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (in-batch negatives), got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.max_length < 8 or self.query_max_length < 4:
            raise ValueError(
                f"max_length must be >= 8 and query_max_length >= 4, got {self.max_length}, {self.query_max_length}"
            )
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.time_limit_s is not None and self.time_limit_s <= 0:
            raise ValueError(f"time_limit_s must be > 0 or None, got {self.time_limit_s}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or None, got {self.num_threads}")
        if self.tokenizer_vocab_size < 100:
            raise ValueError(f"tokenizer_vocab_size must be >= 100, got {self.tokenizer_vocab_size}")
        if isinstance(self.loss, dict):
            self.loss = LossConfig(**self.loss)
        self.loss.validate()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["extra_vocab_texts"] = len(self.extra_vocab_texts)
        return d


# ---------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        model_dir: the saved model folder (None when cancelled without saving).
        status: ``completed`` | ``time_limit`` | ``max_steps`` | ``early_stopped`` | ``cancelled``.
        steps: optimiser steps taken.
        epochs: passes over the data (fractional).
        elapsed_s: seconds of the whole run; ``train_s`` of the loop alone.
        num_train_pairs, num_eval_pairs: data sizes.
        metrics_before, metrics_after: ``{"model" | "bm25" | "hybrid": {"R@1": .., "R@5": ..,
            "R@10": .., "MRR@10": .., "nDCG@10": ..}}`` on the held-out split.
        expansions: per sample query ``{"query", "before": [(token, weight)], "after": [...]}``.
        history: every progress dict of the run.
        data_report: the pairs report summary (when read from a file).
    """

    model_dir: Path | None
    status: str
    steps: int
    epochs: float
    elapsed_s: float
    train_s: float
    num_train_pairs: int
    num_eval_pairs: int
    metrics_before: dict[str, dict[str, float]] = field(default_factory=dict)
    metrics_after: dict[str, dict[str, float]] = field(default_factory=dict)
    expansions: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    data_report: str = ""
    config: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------- tokenizer and model
def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _use_bf16(setting: str, device: torch.device) -> bool:
    if setting == "on":
        return True
    if setting == "off":
        return False
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return _cpu_has_bf16()


def prune_tokenizer(base_dir: str | Path, texts: Sequence[str], out_dir: str | Path):
    """A copy of a Unigram (SentencePiece) tokenizer restricted to the pieces ``texts`` use.

    Kept: every piece the base tokenizer produces on ``texts``, the special tokens, and the
    single-character pieces (with and without ``▁``) of every character in ``texts`` (so
    unseen words still split into known characters rather than ``<unk>``). Piece scores are
    kept, so ``texts`` tokenise to the same pieces as with the base tokenizer. Writes
    ``tokenizer.json``, ``tokenizer_config.json`` and ``vocab_pruning.json`` (the original id
    of every new id) to ``out_dir``.

    Returns:
        ``(tokenizer loaded from out_dir, list of kept original ids)``.

    Raises:
        ValueError: the base tokenizer is not a Unigram ``tokenizer.json``.
    """
    from transformers import AutoTokenizer

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    spec_path = base_dir / "tokenizer.json"
    if not spec_path.is_file():
        raise ValueError(f"{base_dir} has no tokenizer.json; pruning needs a fast (tokenizers) tokenizer")
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    if spec.get("model", {}).get("type") != "Unigram":
        raise ValueError(
            f"vocabulary pruning supports Unigram (SentencePiece) tokenizers such as XLM-R's; "
            f"{base_dir} is {spec.get('model', {}).get('type')}. Pass no tokenizer to train one on the data."
        )
    base = AutoTokenizer.from_pretrained(str(base_dir))
    used: set[int] = set(int(i) for i in base.all_special_ids)
    for start in range(0, len(texts), 1000):
        for ids in base(list(texts[start : start + 1000]), add_special_tokens=True)["input_ids"]:
            used.update(ids)
    vocab = spec["model"]["vocab"]
    chars = set("".join(texts))
    for i, (piece, _score) in enumerate(vocab):
        bare = piece[1:] if piece.startswith("▁") else piece
        if len(bare) == 1 and bare in chars:
            used.add(i)
    used.update(int(t["id"]) for t in spec.get("added_tokens", []))
    keep = sorted(i for i in used if 0 <= i < len(vocab))
    old2new = {old: new for new, old in enumerate(keep)}
    spec["model"]["vocab"] = [vocab[i] for i in keep]
    if spec["model"].get("unk_id") is not None:
        spec["model"]["unk_id"] = old2new[spec["model"]["unk_id"]]
    for tok in spec.get("added_tokens", []):
        tok["id"] = old2new[tok["id"]]
    post = spec.get("post_processor") or {}
    for proc in [post, *post.get("processors", [])]:
        for value in (proc.get("special_tokens") or {}).values():
            value["ids"] = [old2new[i] for i in value["ids"]]
        for key in ("sep", "cls"):
            if isinstance(proc.get(key), list):
                proc[key][1] = old2new[proc[key][1]]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    cfg_path = base_dir / "tokenizer_config.json"
    if cfg_path.is_file():
        shutil.copy(cfg_path, out_dir / "tokenizer_config.json")
    (out_dir / "vocab_pruning.json").write_text(
        json.dumps({"base_tokenizer": str(base_dir), "original_vocab_size": len(vocab), "kept_original_ids": keep}),
        encoding="utf-8",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(out_dir))
    logger.info("Pruned %s from %d to %d pieces", base_dir, len(vocab), len(keep))
    return tokenizer, keep


def lexical_init(
    model,
    output_bias: float | Literal["auto"] = "auto",
    *,
    embedding_scale: float = 2.0,
    sample: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> float:
    """Make an untrained MLM a lexical matcher; returns the output bias it set.

    * the vocabulary projection is tied to the input embedding (``E``);
    * the MLM head's dense layer starts as the identity, so the head computes
      ``logits_t = E · LayerNorm(gelu(h_t)) + b`` and the largest logit at a position is
      (for hidden >= 128) the token it holds;
    * word embeddings are scaled by ``embedding_scale`` so words dominate position embeddings;
    * the output bias ``b`` is negative so other tokens stay below zero: with ``"auto"`` it
      is calibrated on ``sample = (input_ids, attention_mask)`` as
      ``-(q10(self logits) + mean(max other logit)) / 2`` (``-1`` without a sample).

    Measured on BoolQ (hidden 256, 4 layers, 7.8k-piece pruned XLM-R vocabulary): the untrained
    model reaches R@1 0.91-0.94 on 200 held-out questions over 500 paragraphs, while a tied
    head with a random dense layer gives 0.035.
    """
    model.config.tie_word_embeddings = True
    out = model.get_output_embeddings()
    emb = model.get_input_embeddings()
    if out is not None and out.weight is not emb.weight:
        out.weight = emb.weight
    head = getattr(model, "lm_head", None)
    bias = getattr(head, "bias", None) if head is not None else None
    with torch.no_grad():
        emb.weight.mul_(embedding_scale)
        dense = getattr(head, "dense", None) if head is not None else None
        if isinstance(dense, torch.nn.Linear) and dense.weight.shape[0] == dense.weight.shape[1]:
            dense.weight.copy_(torch.eye(dense.weight.shape[0]))
            if dense.bias is not None:
                dense.bias.zero_()
        value = -1.0 if output_bias == "auto" else float(output_bias)
        if output_bias == "auto" and sample is not None:
            for b in (bias, getattr(out, "bias", None)):
                if b is not None:
                    b.zero_()
            was_training = model.training
            model.eval()
            ids, mask = sample
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            model.train(was_training)
            valid = mask.bool()
            own = logits.gather(-1, ids.unsqueeze(-1)).squeeze(-1)[valid]
            other = logits.scatter(-1, ids.unsqueeze(-1), float("-inf")).max(dim=-1).values[valid]
            value = -0.5 * (float(torch.quantile(own, 0.1)) + float(other.mean()))
        for b in (bias, getattr(out, "bias", None)):
            if b is not None:
                b.fill_(value)
    return value


def _resolve_base(base: str) -> tuple[str, str | None]:
    """A preset name from ``assets/models.json`` -> ``(source, revision)``; else ``(base, None)``."""
    presets = REPO_ROOT / "assets" / "models.json"
    if presets.is_file() and not Path(base).expanduser().exists():
        try:
            for p in json.loads(presets.read_text(encoding="utf-8")).get("presets", []):
                if p.get("name") == base:
                    return p["source"], p.get("revision")
        except (ValueError, KeyError):  # pragma: no cover - a broken presets file
            logger.warning("Could not read %s", presets)
    return base, None


def _load_base(base: str):
    """``(model, tokenizer)`` of a preset, Hub id or folder, with the encoder's loading rules."""
    from sparse_demo.encoder import load_mlm

    source, revision = _resolve_base(base)
    return load_mlm(source, revision=revision, name=base)


def _build_model(config: TrainConfig, train_pairs: Sequence[Pair], work_dir: Path):
    """``(model, tokenizer, description)`` for the configured base."""
    from sparse_demo.modeling import make_mlm, train_tokenizer

    if not config.is_new_model:
        model, tokenizer = _load_base(config.base)
        return model, tokenizer, f"fine-tuned from {config.base}"
    size = config.size if config.base in ("new", "new-small") and config.size else config.base.split("-", 1)[1]
    texts = [t for p in train_pairs for t in (p.query, p.positive, p.negative) if t]
    texts += [t for t in config.extra_vocab_texts if t]
    if config.tokenizer:
        tokenizer, keep = prune_tokenizer(config.tokenizer, texts, work_dir)
        how = f"vocabulary pruned from {config.tokenizer} to {len(keep):,} pieces"
    else:
        tokenizer = train_tokenizer(texts, vocab_size=config.tokenizer_vocab_size)
        how = f"Unigram tokenizer trained on the pairs ({len(tokenizer):,} pieces)"
    model = make_mlm(tokenizer, size, seed=config.seed)
    docs = list(dict.fromkeys(p.positive for p in train_pairs))[:16]
    enc = tokenizer(docs, truncation=True, max_length=config.max_length, padding=True, return_tensors="pt")
    bias = lexical_init(model, config.output_bias_init, sample=(enc["input_ids"], enc["attention_mask"]))
    return model, tokenizer, (
        f"new {size} XLMRobertaForMaskedLM, {how}, lexical init (tied output, identity head, bias {bias:.2f})"
    )


# ---------------------------------------------------------------------- encoding helpers
def _pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def _tokenize_all(tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    out: list[list[int]] = []
    for start in range(0, len(texts), 512):
        enc = tokenizer(list(texts[start : start + 512]), truncation=True, max_length=max_length)
        out.extend(list(map(list, enc["input_ids"])))
    return out


def encode_matrix(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int = 32,
    bf16: bool = False,
    drop_special: bool = True,
    max_logits: int = 2**28,
):
    """Encode texts into a ``scipy.sparse.csr_matrix [len(texts), vocab]``.

    Texts are sorted by length and batched; each batch's ``[B, L, V]`` logits are pooled with
    :func:`sparse_pool` (the card's formula) when they hold at most ``max_logits`` values,
    otherwise :class:`~sparse_demo.encoder.SpladeEncoder`'s chunked pooling is used (large
    vocabularies). ``bf16`` runs the model under bf16 autocast (evaluation only).
    """
    import scipy.sparse as sp

    vocab = model.get_output_embeddings().weight.shape[0]
    device = model.get_output_embeddings().weight.device
    if batch_size * max_length * vocab > max_logits:
        return _encode_matrix_chunked(model, tokenizer, texts, max_length=max_length, bf16=bf16,
                                      drop_special=drop_special)
    ids = _tokenize_all(tokenizer, texts, max_length)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special = torch.tensor(sorted(int(i) for i in tokenizer.all_special_ids), dtype=torch.long)
    rows, cols, vals = [], [], []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                inp, mask = _pad([ids[i] for i in idx], pad_id, device)
                vec = sparse_pool(model(input_ids=inp, attention_mask=mask).logits, mask).float()
                if drop_special and len(special):
                    vec[:, special.to(device)] = 0
                r, c = torch.nonzero(vec > 0, as_tuple=True)
                rows.append(torch.tensor(idx, dtype=torch.long)[r.cpu()].numpy())
                cols.append(c.cpu().numpy())
                vals.append(vec[r, c].cpu().numpy())
    finally:
        model.train(was_training)
    if not rows:
        return sp.csr_matrix((len(texts), vocab), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(texts), vocab),
        dtype=np.float32,
    )


def _encode_matrix_chunked(model, tokenizer, texts, *, max_length, bf16, drop_special):
    import scipy.sparse as sp

    from sparse_demo.encoder import SpladeEncoder

    was_training = model.training
    enc = SpladeEncoder(model, tokenizer, max_length=max_length, drop_special=drop_special)
    try:
        with torch.autocast(enc.device.type, dtype=torch.bfloat16, enabled=bf16):
            encodings = enc.encode(list(texts), batch_size=32)
    finally:
        model.train(was_training)
    rows, cols, vals = [], [], []
    for r, e in enumerate(encodings):
        v = enc.search_sparse_vector(e)
        rows.append(np.full(len(v), r, dtype=np.int64))
        cols.append(v.token_ids)
        vals.append(v.weights)
    if not rows:
        return sp.csr_matrix((0, enc.vocab_size), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(texts), enc.vocab_size), dtype=np.float32,
    )


class BM25Scorer:
    """BM25 (bm25s) over Kiwi morpheme terms of a corpus, scoring every document per query."""

    def __init__(self, corpus: Sequence[str], *, terms: list[list[str]] | None = None) -> None:
        import bm25s

        from sparse_demo.korean import bm25_terms

        self._terms_fn = bm25_terms
        corpus_terms = terms if terms is not None else [bm25_terms(t) for t in corpus]
        self.num_docs = len(corpus_terms)
        self.retriever = bm25s.BM25()
        self.retriever.index([t or ["<empty>"] for t in corpus_terms], show_progress=False)
        self.vocab = self.retriever.vocab_dict

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """``[len(queries), num_docs]`` BM25 scores (0 for documents sharing no term)."""
        out = np.zeros((len(queries), self.num_docs), dtype=np.float32)
        for i, q in enumerate(queries):
            terms = [t for t in self._terms_fn(q) if t in self.vocab]
            if terms:
                out[i] = self.retriever.get_scores(terms)
        return out


@dataclass
class EvalSuite:
    """A retrieval set plus its precomputed BM25 scores (reused before and after training)."""

    rset: RetrievalSet
    bm25: np.ndarray

    @classmethod
    def build(cls, rset: RetrievalSet) -> EvalSuite:
        scorer = BM25Scorer(rset.corpus)
        return cls(rset, scorer.scores(rset.queries))


def evaluate_retrieval(
    model,
    tokenizer,
    suite: EvalSuite,
    *,
    max_length: int = 192,
    query_max_length: int = 64,
    bf16: bool = False,
    hybrid_weight: float = 0.5,
    depth: int = 100,
) -> dict[str, RetrievalMetrics]:
    """Model alone, BM25 and their min-max hybrid (``hybrid_weight`` on the model) on a set.

    Returns:
        ``{"model": RetrievalMetrics, "bm25": ..., "hybrid": ...}``.
    """
    rset = suite.rset
    docs = encode_matrix(model, tokenizer, rset.corpus, max_length=max_length, bf16=bf16)
    queries = encode_matrix(model, tokenizer, rset.queries, max_length=query_max_length, bf16=bf16)
    model_scores = (queries @ docs.T).toarray()
    ids = list(range(len(rset.corpus)))
    hybrid = hybrid_score_matrix(model_scores, suite.bm25, hybrid_weight, depth=depth)
    return {
        "model": retrieval_metrics(rankings_from_scores(model_scores, ids, 10), rset.gold),
        "bm25": retrieval_metrics(rankings_from_scores(suite.bm25, ids, 10), rset.gold),
        "hybrid": retrieval_metrics(rankings_from_scores(hybrid, ids, 10), rset.gold),
    }


def _expansions(model, tokenizer, queries: Sequence[str], max_length: int, top: int = 10) -> list[list]:
    from sparse_demo.encoder import SpladeEncoder

    was_training = model.training
    enc = SpladeEncoder(model, tokenizer, max_length=max_length)
    try:
        out = []
        for e in enc.encode(list(queries)):
            vec = enc.search_sparse_vector(e)
            out.append([(enc.id_to_token(int(i)), round(float(w), 3)) for i, w in
                        zip(vec.token_ids[:top], vec.weights[:top])])
        return out
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------- batching
def _batches(pairs: Sequence[Pair], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches in which no query and no positive occurs twice (no false in-batch negatives)."""
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    pending = order
    while pending:
        batch: list[int] = []
        seen: set[str] = set()
        rest: list[int] = []
        for i in pending:
            p = pairs[i]
            if len(batch) < batch_size and p.query not in seen and p.positive not in seen:
                batch.append(i)
                seen.add(p.query)
                seen.add(p.positive)
            else:
                rest.append(i)
        if len(batch) < 2 and batches:
            batches[-1].extend(batch)
            break
        batches.append(batch)
        pending = rest
    return [b for b in batches if len(b) >= 2]


def mine_bm25_negatives(pairs: Sequence[Pair], *, seed: int = 0, top_k: int = 10) -> list[Pair]:
    """Give every pair without a negative the best-ranked BM25 document that is not its positive.

    The candidate documents are the pairs' positives; negatives are picked at random among
    the top-``top_k`` non-gold documents of the query (seeded), which avoids always taking an
    unlabelled true positive.
    """
    docs = list(dict.fromkeys(p.positive for p in pairs))
    gold: dict[str, set[str]] = {}
    for p in pairs:
        gold.setdefault(p.query, set()).add(p.positive)
    scorer = BM25Scorer(docs)
    rng = random.Random(seed)
    out: list[Pair] = []
    need = [p for p in pairs if not p.negative]
    scores = scorer.scores([p.query for p in need]) if need else np.zeros((0, len(docs)))
    by_id = {id(p): row for p, row in zip(need, scores)}
    for p in pairs:
        if p.negative:
            out.append(p)
            continue
        row = by_id[id(p)]
        top = np.argsort(-row)[: top_k + len(gold[p.query])]
        candidates = [docs[j] for j in top if docs[j] not in gold[p.query] and row[j] > 0][:top_k]
        neg = rng.choice(candidates[:3]) if candidates else None
        out.append(dataclasses.replace(p, negative=neg))
    return out


# ---------------------------------------------------------------------- saving
def _hash_pairs(pairs: Sequence[Pair]) -> str:
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([p.query, p.positive, p.negative, p.teacher_score], ensure_ascii=False).encode())
    return h.hexdigest()


def _metrics_table(before: dict, after: dict) -> str:
    if not after:
        return "(no held-out evaluation)\n"
    lines = ["| system | R@1 | R@5 | R@10 | MRR@10 | nDCG@10 |", "|---|---|---|---|---|---|"]
    for when, table in (("before", before), ("after", after)):
        for name, row in table.items():
            if when == "before" and name == "bm25":
                continue
            label = "BM25 (Kiwi morphemes)" if name == "bm25" else f"{name} ({when})"
            lines.append(
                f"| {label} | "
                + " | ".join(f"{row.get(k, 0):.3f}" for k in ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10"))
                + " |"
            )
    return "\n".join(lines) + "\n"


def _model_card(result: TrainResult, description: str, data_hash: str, note: str) -> str:
    cfg = result.config
    loss = cfg.get("loss", {})
    title = f"# Sparse encoder ({note})" if note else "# Fine-tuned Korean sparse (SPLADE) encoder"
    return f"""---
library_name: transformers
tags: [splade, sparse-retrieval, korean]
---
{title}

{description}. Trained by `sparse_demo.train` on {result.num_train_pairs:,} pairs
(held-out: {result.num_eval_pairs:,}); data sha256 `{data_hash[:16]}`.
Status: **{result.status}** after {result.steps:,} steps ({result.epochs:.2f} epochs, {result.train_s:.0f} s).

Sparse vector: `w = max_t log(1 + relu(logits_t)) * mask_t`; load with
`AutoModelForMaskedLM` or `sparse_demo.encoder.SpladeEncoder.load(folder)`.

## Hyperparameters
| name | value |
|---|---|
| base | {cfg.get('base')} |
| size | {cfg.get('size')} |
| batch size | {cfg.get('batch_size')} |
| lr | {cfg.get('lr')} |
| max length (doc / query) | {cfg.get('max_length')} / {cfg.get('query_max_length')} |
| epochs (configured) | {cfg.get('epochs')} |
| lambda FLOPS (query / doc) | {loss.get('lambda_flops_query')} / {loss.get('lambda_flops_doc')} |
| idf_alpha | {loss.get('idf_alpha')} |
| stopword / special-token penalty | {loss.get('stopword_penalty')} / {loss.get('special_token_penalty')} |
| temperature | {loss.get('temperature')} |
| BM25 hard negatives | {cfg.get('bm25_negatives')} |

## Held-out retrieval (before -> after)
{_metrics_table(result.metrics_before, result.metrics_after)}
"""


def _save(model, tokenizer, folder: Path, result: TrainResult, description: str, data_hash: str, note: str) -> None:
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    try:
        model.config.architectures = [type(model).__name__]
        model.config.sparse_demo = {
            "note": note,
            "description": description,
            "data_sha256": data_hash,
            "status": result.status,
            "steps": result.steps,
        }
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        work_pruning = folder.parent / f".{folder.name}.work" / "vocab_pruning.json"
        if work_pruning.is_file():
            shutil.copy(work_pruning, tmp / "vocab_pruning.json")
        (tmp / "README.md").write_text(_model_card(result, description, data_hash, note), encoding="utf-8")
        info = {
            "note": note,
            "description": description,
            "data_sha256": data_hash,
            "status": result.status,
            "steps": result.steps,
            "epochs": result.epochs,
            "train_s": result.train_s,
            "num_train_pairs": result.num_train_pairs,
            "num_eval_pairs": result.num_eval_pairs,
            "metrics_before": result.metrics_before,
            "metrics_after": result.metrics_after,
            "expansions": result.expansions,
            "config": result.config,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        (tmp / "training_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def zip_model(folder: str | Path, zip_path: str | Path | None = None) -> Path:
    """Zip a model folder (for download); returns the ``.zip`` path (default: next to the folder)."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a model folder (no config.json)")
    base = Path(zip_path).with_suffix("") if zip_path else folder
    return Path(shutil.make_archive(str(base), "zip", root_dir=folder))


# ---------------------------------------------------------------------- training
def _coerce_pairs(pairs, max_bytes: int) -> tuple[list[Pair], str]:
    if isinstance(pairs, PairsDataset):
        return list(pairs.pairs), pairs.report.summary()
    if isinstance(pairs, (str, Path)):
        ds = read_pairs(pairs, max_bytes=max_bytes)
        return list(ds.pairs), ds.report.summary()
    return list(pairs), ""


def _emit(progress: ProgressFn | None, history: list, info: dict[str, Any]) -> None:
    history.append(info)
    if progress is not None:
        try:
            progress(info)
        except Exception:  # noqa: BLE001 - a UI callback must never kill a run
            logger.exception("progress callback failed")


def _rows(metrics: dict[str, RetrievalMetrics]) -> dict[str, dict[str, float]]:
    return {k: {n: round(float(v), 4) for n, v in m.as_row().items()} for k, m in metrics.items()}


def train(
    config: TrainConfig,
    pairs: PairsDataset | Sequence[Pair] | str | Path,
    eval_pairs: PairsDataset | Sequence[Pair] | str | Path | None = None,
    *,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    wait: bool = False,
) -> TrainResult:
    """Train a sparse encoder and save it as a new model folder.

    Args:
        config: the run's settings.
        pairs: training pairs (a dataset, a list of :class:`Pair` or a file path).
        eval_pairs: held-out pairs; None holds out ``config.eval_fraction`` of the queries.
        progress: called with a dict per event. Training steps (every ``log_every``):
            ``{"phase": "train", "step", "max_steps", "epoch", "total", "infonce", "flops_q",
            "flops_d", "margin", "kd", "lambda_flops_q", "lambda_flops_d", "active_q",
            "active_d", "lr", "elapsed_s"}``; held-out evaluations add ``{"phase": "eval",
            "step", "eval_mrr10", "eval_r1", "elapsed_s"}``; other phases (``prepare``,
            ``eval_before``, ``eval_after``, ``save``, ``done``) carry ``"message"``.
        should_stop: polled every step; True cancels the run.
        wait: when another run holds the process-wide lock, wait for it (True) or raise
            :class:`TrainingBusyError` (False).

    Raises:
        TrainingBusyError: another training runs and ``wait`` is False.
        ValueError: bad data or configuration.
    """
    if not _TRAIN_LOCK.acquire(blocking=wait):
        raise TrainingBusyError(
            "Another fine-tuning run is in progress in this app; try again when it finishes."
        )
    threads = torch.get_num_threads()
    try:
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        return _train_locked(config, pairs, eval_pairs, progress, should_stop)
    finally:
        torch.set_num_threads(threads)
        _TRAIN_LOCK.release()


def training_busy() -> bool:
    """True while a training run holds the process-wide lock."""
    return _TRAIN_LOCK.locked()


def _train_locked(config, pairs, eval_pairs, progress, should_stop) -> TrainResult:  # noqa: C901, PLR0915
    t_start = time.time()
    config.validate()
    history: list[dict[str, Any]] = []
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    train_pairs, report = _coerce_pairs(pairs, config.max_bytes)
    if eval_pairs is not None:
        held, _ = _coerce_pairs(eval_pairs, config.max_bytes)
    else:
        train_pairs, held = split_pairs(train_pairs, config.eval_fraction, seed=config.seed)
    if len(train_pairs) < 2:
        raise ValueError(f"need at least 2 training pairs, got {len(train_pairs)}")
    data_hash = _hash_pairs(train_pairs)

    out_root = Path(config.output_dir).expanduser()
    if config.out_path:
        folder = Path(config.out_path).expanduser()
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"out_path {folder} exists and is not empty; choose a new folder")
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = out_root / f"{config.run_name}-{stamp}-{uuid.uuid4().hex[:6]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    work_dir = folder.parent / f".{folder.name}.work"
    device = torch.device("cuda" if config.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if config.device == "auto" else config.device))
    bf16 = _use_bf16(config.bf16, device)

    _emit(progress, history, {"phase": "prepare", "message": f"building model ({config.base})",
                              "elapsed_s": 0.0})
    model, tokenizer, description = _build_model(config, train_pairs, work_dir)
    model.to(device)
    vocab = model.get_output_embeddings().weight.shape[0]
    special_ids = sorted(int(i) for i in tokenizer.all_special_ids)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    if config.bm25_negatives:
        _emit(progress, history, {"phase": "prepare", "message": "mining BM25 hard negatives",
                                  "elapsed_s": time.time() - t_start})
        train_pairs = mine_bm25_negatives(train_pairs, seed=config.seed)

    # token ids, IDF penalties
    q_ids = _tokenize_all(tokenizer, [p.query for p in train_pairs], config.query_max_length)
    doc_texts = list(dict.fromkeys([p.positive for p in train_pairs] + [p.negative for p in train_pairs if p.negative]))
    doc_ids_list = _tokenize_all(tokenizer, doc_texts, config.max_length)
    doc_index = {t: i for i, t in enumerate(doc_texts)}
    df, n_docs = document_frequencies(doc_ids_list, vocab)
    stop_ids: list[int] = []
    if config.loss.stopword_penalty > 1:
        from sparse_demo.korean import StopwordRule

        rule = StopwordRule()
        id_to_tok = {i: t for t, i in tokenizer.get_vocab().items()}
        stop_ids = [
            i for i in range(vocab) if i in id_to_tok and i not in special_ids and rule.is_stopword(id_to_tok[i])
        ]
    penalty = idf_penalties(
        idf_from_df(df, n_docs),
        special_ids=special_ids,
        stopword_ids=stop_ids,
        idf_alpha=config.loss.idf_alpha,
        stopword_penalty=config.loss.stopword_penalty,
        special_token_penalty=config.loss.special_token_penalty,
    ).to(device)

    # held-out evaluation set
    suite = None
    sample_queries: list[str] = []
    if held:
        rset = retrieval_set_from_pairs(held, "held-out")
        if config.eval_distractors > 0:
            extra = [d for d in dict.fromkeys(p.positive for p in train_pairs) if d not in set(rset.corpus)]
            rset.corpus.extend(random.Random(config.seed).sample(extra, min(len(extra), config.eval_distractors)))
        _emit(progress, history, {"phase": "eval_before", "message": f"evaluating on {len(rset)} held-out queries",
                                  "elapsed_s": time.time() - t_start})
        suite = EvalSuite.build(rset)
        sample_queries = rset.queries[:3]
    eval_kwargs = {"max_length": config.max_length, "query_max_length": config.query_max_length, "bf16": bf16}
    metrics_before = _rows(evaluate_retrieval(model, tokenizer, suite, **eval_kwargs)) if suite else {}
    before_exp = _expansions(model, tokenizer, sample_queries, config.query_max_length) if sample_queries else []

    # optimiser and schedule
    per_epoch = max(1, math.ceil(len(train_pairs) / config.batch_size))
    planned = max(1, int(math.ceil(per_epoch * config.epochs)))
    max_steps = min(planned, config.max_steps) if config.max_steps else planned
    warmup = max(1, int(config.warmup_ratio * max_steps))
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )

    def lr_at(step: int, elapsed: float) -> float:
        frac = step / max_steps
        if config.time_limit_s:
            frac = max(frac, elapsed / config.time_limit_s)
        warm = min(1.0, (step + 1) / warmup)
        return config.lr * warm * max(0.1, 1.0 - 0.9 * min(1.0, frac))

    has_teacher = any(p.teacher_score is not None for p in train_pairs)
    step, status = 0, "completed"
    best_mrr, best_state, bad_evals = -1.0, None, 0
    t_train = time.time()
    model.train()
    epoch = 0
    stop_loop = False
    while not stop_loop:
        batches = _batches(train_pairs, config.batch_size, rng)
        if not batches:
            raise ValueError("no batch of 2 pairs with distinct queries and positives; add more varied pairs")
        for bi, batch in enumerate(batches):
            elapsed = time.time() - t_train
            if should_stop is not None and should_stop():
                status, stop_loop = "cancelled", True
                break
            if config.time_limit_s is not None and elapsed >= config.time_limit_s:
                status, stop_loop = "time_limit", True
                break
            if step >= max_steps:
                status = "max_steps" if config.max_steps and max_steps < planned else "completed"
                stop_loop = True
                break
            lr = lr_at(step, elapsed)
            for group in optimizer.param_groups:
                group["lr"] = lr
            bp = [train_pairs[i] for i in batch]
            qi, qm = _pad([q_ids[i] for i in batch], pad_id, device)
            di, dm = _pad([doc_ids_list[doc_index[p.positive]] for p in bp], pad_id, device)
            neg_rows = [r for r, p in enumerate(bp) if p.negative]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                q_vec = sparse_pool(model(input_ids=qi, attention_mask=qm).logits, qm)
                d_vec = sparse_pool(model(input_ids=di, attention_mask=dm).logits, dm)
                n_vec = None
                if neg_rows:
                    ni, nm = _pad([doc_ids_list[doc_index[bp[r].negative]] for r in neg_rows], pad_id, device)
                    n_vec = sparse_pool(model(input_ids=ni, attention_mask=nm).logits, nm)
            teacher = mask = None
            if has_teacher:
                teacher = torch.tensor([p.teacher_score or 0.0 for p in bp], device=device)
                mask = torch.tensor([p.teacher_score is not None for p in bp], device=device)
            out = splade_loss(
                q_vec.float(), d_vec.float(), config.loss, step=step, penalty=penalty,
                negatives=n_vec.float() if n_vec is not None else None,
                negative_rows=torch.tensor(neg_rows, device=device) if neg_rows else None,
                teacher=teacher, teacher_mask=mask,
            )
            optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            if not math.isfinite(out.components["total"]):
                raise RuntimeError(f"loss became {out.components['total']} at step {step}; lower lr (now {config.lr})")
            if step % config.log_every == 0 or step == 1:
                info = {"phase": "train", "step": step, "max_steps": max_steps,
                        "epoch": epoch + (bi + 1) / len(batches), **out.components,
                        "active_q": float((q_vec > 0).sum(1).float().mean()),
                        "active_d": float((d_vec > 0).sum(1).float().mean()),
                        "lr": lr, "elapsed_s": round(time.time() - t_train, 2)}
                _emit(progress, history, info)
            if suite is not None and config.eval_every and step % config.eval_every == 0:
                m = evaluate_retrieval(model, tokenizer, suite, **eval_kwargs)["model"]
                _emit(progress, history, {"phase": "eval", "step": step, "eval_mrr10": m.mrr10,
                                          "eval_r1": m.recall[1], "elapsed_s": round(time.time() - t_train, 2)})
                if m.mrr10 > best_mrr + 1e-4:
                    best_mrr, bad_evals = m.mrr10, 0
                    best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                else:
                    bad_evals += 1
                    if config.patience and bad_evals >= config.patience:
                        status, stop_loop = "early_stopped", True
                        break
        else:
            epoch += 1
    train_s = time.time() - t_train
    epochs_done = step / per_epoch

    if best_state is not None and status != "cancelled":
        final = evaluate_retrieval(model, tokenizer, suite, **eval_kwargs)["model"].mrr10 if suite else -1.0
        if best_mrr > final + 1e-4:
            logger.info("Restoring the best checkpoint (held-out MRR@10 %.4f > %.4f)", best_mrr, final)
            model.load_state_dict(best_state)
    model.eval()
    result = TrainResult(
        model_dir=None, status=status, steps=step, epochs=epochs_done, elapsed_s=0.0, train_s=train_s,
        num_train_pairs=len(train_pairs), num_eval_pairs=len(held), metrics_before=metrics_before,
        history=history, data_report=report, config=config.to_dict(),
    )
    if suite is not None and status != "cancelled":
        _emit(progress, history, {"phase": "eval_after", "message": "evaluating the trained model",
                                  "elapsed_s": time.time() - t_start})
        result.metrics_after = _rows(evaluate_retrieval(model, tokenizer, suite, **eval_kwargs))
    if sample_queries:
        after_exp = _expansions(model, tokenizer, sample_queries, config.query_max_length)
        result.expansions = [{"query": q, "before": b, "after": a}
                             for q, b, a in zip(sample_queries, before_exp, after_exp)]
    if status != "cancelled" or config.save_on_cancel:
        _emit(progress, history, {"phase": "save", "message": f"saving to {folder}",
                                  "elapsed_s": time.time() - t_start})
        model.to("cpu")
        _save(model, tokenizer, folder, result, description, data_hash, config.note)
        result.model_dir = folder
    shutil.rmtree(work_dir, ignore_errors=True)
    result.elapsed_s = time.time() - t_start
    _emit(progress, history, {"phase": "done", "message": f"{status} after {step} steps",
                              "elapsed_s": result.elapsed_s})
    logger.info("Training %s after %d steps in %.0f s -> %s", status, step, train_s, result.model_dir)
    return result


# ---------------------------------------------------------------------- offline model
def build_offline_model(
    cache_dir: str | Path,
    pairs_path: str | Path = DEFAULT_SAMPLE_PAIRS,
    *,
    size: Literal["tiny", "mini", "small"] = "mini",
    time_limit_s: float = 180.0,
    tokenizer: str | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    wait: bool = True,
    **overrides: Any,
) -> Path:
    """Train (or reuse) a small local encoder from the bundled sample pairs.

    The folder ``cache_dir/local-sparse-<size>`` is reused when its ``training_info.json``
    records the same data hash and settings; otherwise it is (re)trained, which takes a few
    minutes on 2 CPU cores. Its model card and ``config.json`` (``sparse_demo.note``) say
    "small local model trained on sample data".

    Args:
        cache_dir: where the model folder lives.
        pairs_path: the pairs file (default ``assets/pairs/sample_pairs.jsonl``).
        size: ``tiny`` | ``mini`` | ``small``.
        time_limit_s: training time limit.
        tokenizer: a base tokenizer folder to prune (None: train one on the pairs).
        progress, should_stop, wait: as in :func:`train`.
        **overrides: other :class:`TrainConfig` fields.

    Returns:
        The model folder.
    """
    pairs_path = Path(pairs_path)
    if not pairs_path.is_file():
        raise FileNotFoundError(f"sample pairs not found: {pairs_path}")
    dataset = read_pairs(pairs_path)
    settings = {"size": size, "tokenizer": tokenizer, "time_limit_s": time_limit_s,
                **{k: v for k, v in overrides.items() if k != "loss"}}
    key = hashlib.sha256(
        (_hash_pairs(dataset.pairs) + json.dumps(settings, sort_keys=True, default=str)).encode()
    ).hexdigest()
    folder = Path(cache_dir).expanduser() / f"local-sparse-{size}"
    info_path = folder / "training_info.json"
    if info_path.is_file() and (folder / "model.safetensors").is_file():
        try:
            if json.loads(info_path.read_text(encoding="utf-8")).get("cache_key") == key:
                logger.info("Reusing the local model at %s", folder)
                return folder
        except ValueError:
            pass
    values: dict[str, Any] = {
        "base": "new",
        "size": size,
        "tokenizer": tokenizer,
        "tokenizer_vocab_size": 4000,
        "batch_size": 32,
        "epochs": 30.0,
        "time_limit_s": time_limit_s,
        "eval_every": 0,
        "eval_distractors": 0,
        "note": OFFLINE_MODEL_NOTE,
        "run_name": "local-sparse",
        "output_dir": str(folder.parent),
        "bm25_negatives": False,
    }
    values.update(overrides)
    tmp_folder = folder.parent / f"{folder.name}.new-{uuid.uuid4().hex[:6]}"
    values["out_path"] = str(tmp_folder)
    result = train(TrainConfig(**values), dataset, progress=progress, should_stop=should_stop, wait=wait)
    if result.model_dir is None:
        raise RuntimeError(f"building the local model stopped ({result.status})")
    info = json.loads((tmp_folder / "training_info.json").read_text(encoding="utf-8"))
    info["cache_key"] = key
    (tmp_folder / "training_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    tmp_folder.rename(folder)
    return folder


# ---------------------------------------------------------------------- CLI
def add_finetune_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``finetune`` on an ``argparse`` subparsers object; returns the sub-parser."""
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a sparse encoder on pairs (or build a small one from scratch)",
        description="Train a SPLADE encoder on query/positive[/negative] pairs and save a model folder.",
    )
    p.add_argument("--pairs", required=True, help="pairs file: .csv, .tsv or .jsonl (query, positive[, negative])")
    p.add_argument("--base", default="new-small",
                   help="new-small (from scratch) | preset name | Hub id | local model folder")
    p.add_argument("--out", required=True, help="output model folder (must not exist or be empty)")
    p.add_argument("--eval-pairs", default=None, help="held-out pairs file (default: 10%% of --pairs)")
    p.add_argument("--epochs", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--time-limit", type=float, default=None, help="seconds (default 300 for new models)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--size", choices=SIZES, default="small", help="size of a new model")
    p.add_argument("--tokenizer", default=None, help="base tokenizer folder to prune for a new model")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--bm25-negatives", action="store_true", help="mine BM25 hard negatives")
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (1 helps on a busy machine)")
    p.add_argument("--zip", action="store_true", help="also write <out>.zip")
    p.set_defaults(func=run_finetune)
    return p


def run_finetune(args: argparse.Namespace, progress: ProgressFn | None = None) -> TrainResult:
    """Run ``finetune`` from parsed arguments; logs progress and returns the result."""
    overrides: dict[str, Any] = {
        "size": args.size,
        "tokenizer": getattr(args, "tokenizer", None),
        "bm25_negatives": bool(getattr(args, "bm25_negatives", False)),
        "bf16": getattr(args, "bf16", "auto"),
        "seed": getattr(args, "seed", 0),
        "out_path": args.out,
        "num_threads": getattr(args, "threads", None),
    }
    for arg, name in (("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                      ("time_limit", "time_limit_s"), ("max_steps", "max_steps"), ("max_length", "max_length")):
        value = getattr(args, arg, None)
        if value is not None:
            overrides[name] = value
    if args.base in NEW_MODEL_BASES:
        config = TrainConfig(base=args.base, **overrides)
    else:
        config = TrainConfig.card_defaults(args.base, **overrides)

    def log_progress(info: dict[str, Any]) -> None:
        if info.get("phase") == "train":
            logger.info("step %d/%d  loss %.4f  infonce %.4f  active q/d %.0f/%.0f  lr %.2e",
                        info["step"], info["max_steps"], info["total"], info["infonce"],
                        info["active_q"], info["active_d"], info["lr"])
        elif "message" in info:
            logger.info("%s: %s", info["phase"], info["message"])
        if progress is not None:
            progress(info)

    result = train(config, args.pairs, getattr(args, "eval_pairs", None), progress=log_progress, wait=True)
    if getattr(args, "zip", False) and result.model_dir is not None:
        logger.info("Wrote %s", zip_model(result.model_dir))
    for name, row in result.metrics_after.items():
        logger.info("held-out %s: %s", name, ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    return result


__all__ = [
    "DEFAULT_SAMPLE_PAIRS",
    "OFFLINE_MODEL_NOTE",
    "BM25Scorer",
    "EvalSuite",
    "TrainConfig",
    "TrainResult",
    "TrainingBusyError",
    "add_finetune_parser",
    "build_offline_model",
    "encode_matrix",
    "evaluate_retrieval",
    "lexical_init",
    "mine_bm25_negatives",
    "prune_tokenizer",
    "run_finetune",
    "sparse_pool",
    "train",
    "training_busy",
    "zip_model",
]

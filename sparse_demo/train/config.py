"""Training settings (:class:`TrainConfig`, with the model card's recipe) and the run's result.

The defaults are the small-model-from-scratch recipe that works on a CPU;
:meth:`TrainConfig.card_defaults` gives the model card's values for fine-tuning a pretrained
checkpoint. Every bad value is a ``ValueError`` naming the field and the valid choices.

Example:
    >>> TrainConfig(base="new", size="tiny").is_new_model
    True
    >>> TrainConfig(size="huge")
    Traceback (most recent call last):
    ...
    ValueError: size must be one of tiny, mini, small, got 'huge'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sparse_demo.data.pairs import DEFAULT_MAX_BYTES
from sparse_demo.progress import TrainingEvent
from sparse_demo.train.losses import LossConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SAMPLE_PAIRS = REPO_ROOT / "assets" / "pairs" / "sample_pairs.jsonl"
DEFAULT_OUTPUT_DIR = REPO_ROOT / ".cache" / "finetuned"
NEW_MODEL_BASES: tuple[str, ...] = ("new", "new-tiny", "new-mini", "new-small")
SIZES: tuple[str, ...] = ("tiny", "mini", "small")
BF16_CHOICES: tuple[str, ...] = ("auto", "on", "off")
#: Which held-out system's MRR@10 picks the best checkpoint.
BEST_BY_CHOICES: tuple[str, ...] = ("model", "hybrid")
#: Result statuses.
STATUSES: tuple[str, ...] = ("completed", "time_limit", "max_steps", "early_stopped", "cancelled")


@dataclass
class TrainConfig:
    """Everything a run needs. Defaults are the small-model-from-scratch recipe that works on CPU.

    Use :meth:`card_defaults` to fine-tune a pretrained checkpoint with the model card's values
    (lr 2e-5, batch 48, max length 192, FLOPS 0.010, stopword x15, special x100, idf_alpha 4).

    Attributes:
        base: ``new`` (a new model of :attr:`size`), ``new-tiny``, ``new-mini`` or ``new-small``
            (a new model of that size) to build a model from scratch, or a model the app knows: a
            preset name (``assets/models.json``, ``SPARSE_DEMO_MODELS`` and
            ``SPARSE_DEMO_MODEL_<NAME>`` apply), a Hub id or a local folder.
        size: size of a new model when ``base`` is ``new``: ``tiny`` | ``mini`` | ``small`` (a
            ``new-<size>`` base names its own size; a pretrained base has none).
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
        max_length: tokens per text when training documents and when evaluating (the held-out
            evaluation encodes with one ``max_length``, as the Search tab does);
            ``query_max_length``: query tokens during training.
        loss: loss weights (:class:`~sparse_demo.train.losses.LossConfig`).
        inference_free: train an inference-free model: the query side is the training documents' IDF
            per token (frozen; no model runs for a query, and the query FLOPS term is left out), only the
            document MLM learns, and the result is a sentence-transformers ``Router`` folder
            (:mod:`sparse_demo.train.inference_free`).
        output_bias_init: output bias of a new model (negative: sparse start); ``auto``
            calibrates it (see :func:`~sparse_demo.train.vocab.lexical_init`).
        bm25_negatives: mine one BM25 hard negative per pair without a negative.
        eval_fraction: share of positive passages (with all their queries) held out when no
            eval pairs are given.
        eval_distractors: training positives added to the held-out corpus (harder eval).
        eval_every: steps between held-out evaluations during training; 0 evaluates at the end
            of every epoch. Evaluations run only when there is a held-out set.
        keep_best: restore the checkpoint with the best held-out MRR@10 (the untrained
            model included) at the end of the run.
        best_by: whose MRR@10 picks the best checkpoint: ``model`` (the encoder alone) or
            ``hybrid`` (its min-max fusion with BM25 at ``hybrid_weight``).
        hybrid_weight: the sparse leg's weight in the held-out hybrid (the Search tab's default 0.5).
        patience: evaluations without improvement before stopping (0: never).
        time_limit_s: wall-clock limit of the training loop (None: none).
        max_steps: optimiser-step limit (None: epochs decide).
        bf16: ``auto`` (bf16 autocast on CUDA or CPUs with avx512_bf16/AMX), ``on`` or ``off``.
            Training only: held-out evaluation runs as the Search tab does (float32 on CPU).
        log_every: steps between progress reports.
        seed: RNG seed.
        output_dir: runs are saved to ``output_dir/<run_name>-<time>-<id>``.
        out_path: exact output folder instead (must not exist or be empty).
        run_name: folder-name prefix.
        note: free text recorded in the model card and config (e.g. the offline-model note, or
            the name the app shows for the model).
        base_name, tokenizer_name: how the card, the record and progress messages name the base
            and the tokenizer folder (default: ``base`` / ``tokenizer`` themselves). An app sets
            them to public names, so no server path reaches a downloaded model.
        record_paths: False leaves ``output_dir`` and ``out_path`` out of the record
            (``training_info.json``), so a server's folders are not written into the model.
        save_on_cancel: save the partially trained model when cancelled.
        max_bytes: size limit when ``pairs`` is a path.
        device: ``auto`` | ``cpu`` | ``cuda`` (``cuda:N``).
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
    inference_free: bool = False
    output_bias_init: float | Literal["auto"] = "auto"
    bm25_negatives: bool = False
    eval_fraction: float = 0.1
    eval_distractors: int = 500
    eval_every: int = 100
    keep_best: bool = True
    best_by: Literal["model", "hybrid"] = "model"
    hybrid_weight: float = 0.5
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
    base_name: str | None = None
    tokenizer_name: str | None = None
    record_paths: bool = True
    save_on_cancel: bool = True
    max_bytes: int = DEFAULT_MAX_BYTES
    device: str = "auto"
    num_threads: int | None = None

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def card_defaults(cls, base: str, **overrides: Any) -> TrainConfig:
        """The model card's recipe for fine-tuning a pretrained checkpoint ``base``.

        Example:
            >>> TrainConfig.card_defaults("V26").lr
            2e-05
        """
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
        """True when the run builds a new model instead of loading a base."""
        return self.base in NEW_MODEL_BASES

    @property
    def new_model_size(self) -> str:
        """The size of a new model: ``new-tiny`` etc. name it, ``new`` uses :attr:`size`."""
        if self.base == "new":
            return self.size
        return self.base.split("-", 1)[1]

    def validate(self) -> None:  # noqa: C901 - one check per field
        """Raise ``ValueError`` naming the bad field and the valid choices."""
        if not isinstance(self.base, str) or not self.base.strip():
            raise ValueError(f"base must be one of {', '.join(NEW_MODEL_BASES)} or a model name, Hub id or folder")
        if self.size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(SIZES)}, got {self.size!r}")
        if self.bf16 not in BF16_CHOICES:
            raise ValueError(f"bf16 must be one of {', '.join(BF16_CHOICES)}; got {self.bf16!r}")
        if self.best_by not in BEST_BY_CHOICES:
            raise ValueError(f"best_by must be one of {', '.join(BEST_BY_CHOICES)}; got {self.best_by!r}")
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
        if not 0.0 <= self.eval_fraction <= 0.5:
            raise ValueError(f"eval_fraction must be in [0, 0.5], got {self.eval_fraction}")
        if self.eval_distractors < 0:
            raise ValueError(f"eval_distractors must be >= 0, got {self.eval_distractors}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0 (0: every epoch), got {self.eval_every}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0 (0: never stop early), got {self.patience}")
        if not 0.0 <= self.hybrid_weight <= 1.0:
            raise ValueError(f"hybrid_weight (of the sparse leg) must be in [0, 1], got {self.hybrid_weight}")
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

    @property
    def shown_base(self) -> str:
        """The base as the card, the record and messages name it (:attr:`base_name` or :attr:`base`)."""
        return self.base_name or self.base

    @property
    def shown_tokenizer(self) -> str | None:
        """The tokenizer folder as the card and the record name it (None: trained on the pairs)."""
        if not self.tokenizer:
            return None
        return self.tokenizer_name or self.tokenizer

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of what the run used: ``extra_vocab_texts`` as its count, the base and
        tokenizer by their shown names, ``size`` only for a new model (its actual size, else None), and
        without the output folders when :attr:`record_paths` is False."""
        d = dataclasses.asdict(self)
        d["extra_vocab_texts"] = len(self.extra_vocab_texts)
        d["base"], d["tokenizer"] = self.shown_base, self.shown_tokenizer
        d["size"] = self.new_model_size if self.is_new_model else None
        for key in ("base_name", "tokenizer_name", "record_paths"):
            d.pop(key)
        if not self.record_paths:
            d.pop("output_dir")
            d.pop("out_path")
        return d


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
            "R@10": .., "MRR@10": .., "nDCG@10": ..}}`` on the held-out set, computed by the
            Search code (:func:`sparse_demo.search.build_index` on the memory backend +
            :func:`sparse_demo.search.search`). ``metrics_after`` is of the saved model.
        best_step: the step whose weights were saved (0: the untrained model) when held-out
            evaluation ran, else None.
        restored_best: True when the saved weights are an earlier evaluation's (keep-best)
            rather than the last step's.
        expansions: per sample query ``{"query", "before": [(token, weight)], "after": [...]}``.
        history: every :class:`~sparse_demo.progress.TrainingEvent` of the run.
        data_report: the pairs report summary (when read from a file).
        split_note: how the held-out set was formed (and what was removed to keep it clean).
        config: the run's settings (:meth:`TrainConfig.to_dict`).
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
    best_step: int | None = None
    restored_best: bool = False
    expansions: list[dict[str, Any]] = field(default_factory=list)
    history: list[TrainingEvent] = field(default_factory=list)
    data_report: str = ""
    split_note: str = ""
    config: dict[str, Any] = field(default_factory=dict)

    def summary(self, with_path: bool = True) -> str:
        """One readable line, e.g. ``completed after 60 steps (2.00 epochs); held-out MRR@10 0.41 -> 0.77``.

        ``with_path`` adds where the model was saved (progress messages leave it out: an app shows them).
        """
        text = f"{self.status} after {self.steps} steps ({self.epochs:.2f} epochs)"
        before = self.metrics_before.get("model", {}).get("MRR@10")
        after = self.metrics_after.get("model", {}).get("MRR@10")
        if before is not None and after is not None:
            text += f"; held-out model MRR@10 {before:.3f} -> {after:.3f}"
        if self.restored_best:
            text += f" (best checkpoint, step {self.best_step}, restored)"
        if self.model_dir is not None and with_path:
            text += f"; saved to {self.model_dir}"
        return text

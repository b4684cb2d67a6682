"""Fine-tuning: pairs data, the card's loss terms and the training loop.

Public API (re-exported): :func:`read_pairs`, :class:`PairsDataset`, :class:`TrainConfig`,
:func:`train`, :class:`TrainResult`, :func:`build_offline_model`, :func:`zip_model`,
:func:`add_finetune_parser`, :func:`run_finetune`.
"""

from __future__ import annotations

from sparse_demo.train.data import (
    DEFAULT_MAX_BYTES,
    Pair,
    PairsDataset,
    PairsReport,
    RetrievalSet,
    load_boolq,
    load_korsts,
    parse_pairs,
    read_pairs,
    retrieval_set_from_pairs,
    split_pairs,
)
from sparse_demo.train.losses import LossConfig, LossOutput, idf_penalties, splade_loss
from sparse_demo.train.trainer import (
    DEFAULT_SAMPLE_PAIRS,
    OFFLINE_MODEL_NOTE,
    TrainConfig,
    TrainingBusyError,
    TrainResult,
    add_finetune_parser,
    build_offline_model,
    evaluate_retrieval,
    run_finetune,
    train,
    training_busy,
    zip_model,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_SAMPLE_PAIRS",
    "OFFLINE_MODEL_NOTE",
    "LossConfig",
    "LossOutput",
    "Pair",
    "PairsDataset",
    "PairsReport",
    "RetrievalSet",
    "TrainConfig",
    "TrainResult",
    "TrainingBusyError",
    "add_finetune_parser",
    "build_offline_model",
    "evaluate_retrieval",
    "idf_penalties",
    "load_boolq",
    "load_korsts",
    "parse_pairs",
    "read_pairs",
    "retrieval_set_from_pairs",
    "run_finetune",
    "splade_loss",
    "split_pairs",
    "train",
    "training_busy",
    "zip_model",
]

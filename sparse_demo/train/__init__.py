"""Fine-tuning: pairs data, the card's loss terms, the training loop and its held-out evaluation.

Modules by concept: :mod:`~sparse_demo.train.data` (held-out split by passage; pairs files and the
BoolQ/KorSTS sets are read by :mod:`sparse_demo.data`), :mod:`~sparse_demo.train.losses` (the card's
loss), :mod:`~sparse_demo.train.config` (settings and result), :mod:`~sparse_demo.train.vocab` (bases,
pruned vocabularies, new models), :mod:`~sparse_demo.train.batching` (batches, BM25 hard negatives),
:mod:`~sparse_demo.train.loop` (:func:`train`), :mod:`~sparse_demo.train.inference_free` (an IDF
query side, a sentence-transformers ``Router`` folder), :mod:`~sparse_demo.train.queue` (an app's
per-visitor slots and line of runs), :mod:`~sparse_demo.train.evaluation` (held-out
figures by :func:`sparse_demo.evaluation.evaluate`) and :mod:`~sparse_demo.train.artifacts` (model folder, card, record,
zip). The embedded demo model has its own recipe in :mod:`sparse_demo.offline`.
"""

from __future__ import annotations

from sparse_demo.train.artifacts import zip_model
from sparse_demo.train.config import (
    DEFAULT_SAMPLE_PAIRS,
    NEW_MODEL_BASES,
    SIZES,
    TrainConfig,
    TrainResult,
)
from sparse_demo.train.data import MIN_PAIRS, separate_from_heldout, split_pairs
from sparse_demo.train.evaluation import evaluate_retrieval, heldout_corpus
from sparse_demo.train.loop import TrainingBusyError, VectorTeacher, release_memory, train, training_busy
from sparse_demo.train.losses import LossConfig, LossOutput, idf_penalties, splade_loss

__all__ = [
    "DEFAULT_SAMPLE_PAIRS",
    "MIN_PAIRS",
    "NEW_MODEL_BASES",
    "SIZES",
    "LossConfig",
    "LossOutput",
    "TrainConfig",
    "TrainResult",
    "TrainingBusyError",
    "VectorTeacher",
    "evaluate_retrieval",
    "heldout_corpus",
    "idf_penalties",
    "release_memory",
    "separate_from_heldout",
    "splade_loss",
    "split_pairs",
    "train",
    "training_busy",
    "zip_model",
]

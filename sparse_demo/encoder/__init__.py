"""SPLADE encoder: load a ``*ForMaskedLM``, sentence-transformers ``SparseEncoder`` or ``Router`` folder and pool
it into sparse vectors, with a query side and a document side.

The sparse vector is the model card's formula

    w[v] = max_{t : mask[t] = 1} log(1 + relu(logits[t, v]))

computed without materialising the ``[batch, length, vocab]`` logits.

Modules by concept: :mod:`~sparse_demo.encoder.formats` (which format a folder is in, what each side runs),
:mod:`~sparse_demo.encoder.errors` (:class:`ModelLoadError`),
:mod:`~sparse_demo.encoder.loading` (checkpoint loading),
:mod:`~sparse_demo.encoder.pooling` (the card's max pooling, full and tiled),
:mod:`~sparse_demo.encoder.vectors` (:class:`SparseVector`, :class:`Encoding`),
:mod:`~sparse_demo.encoder.fingerprint` (checkpoint identity), :mod:`~sparse_demo.encoder.protocol`
(:class:`Encoder`, what every caller needs from an encoder) and
:mod:`~sparse_demo.encoder.splade` (:class:`SpladeEncoder`). ``DEFAULT_MAX_LENGTH`` and
``PRECISIONS`` live in :mod:`sparse_demo.config` and are re-exported here.

Importing this package does not import torch: the torch-free names (errors, vectors, settings)
load at once, and the names that need torch load their module on first access, so the command
line's start and its input errors do not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..config import DEFAULT_MAX_LENGTH, PRECISIONS
from .errors import ModelLoadError
from .formats import SIDES, ModelLayout, Side, read_layout
from .loading import hub_reachable, load_mlm, looks_like_path, resolve_device
from .protocol import Encoder
from .vectors import Encoding, SparseVector

if TYPE_CHECKING:
    from .fingerprint import folder_identity
    from .pooling import DEFAULT_CHUNK_ELEMENTS, MIN_VOCAB_TILE, max_pool_projection, pool_logits
    from .splade import MAX_TEXT_CHARS, TOKENIZE_BATCH, SpladeEncoder

#: Names whose module imports torch: ``name -> submodule``, imported on first access.
_LAZY: dict[str, str] = {
    "folder_identity": "fingerprint",
    "DEFAULT_CHUNK_ELEMENTS": "pooling",
    "MIN_VOCAB_TILE": "pooling",
    "max_pool_projection": "pooling",
    "pool_logits": "pooling",
    "MAX_TEXT_CHARS": "splade",
    "TOKENIZE_BATCH": "splade",
    "SpladeEncoder": "splade",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_CHUNK_ELEMENTS",
    "DEFAULT_MAX_LENGTH",
    "MAX_TEXT_CHARS",
    "MIN_VOCAB_TILE",
    "PRECISIONS",
    "SIDES",
    "TOKENIZE_BATCH",
    "Encoder",
    "Encoding",
    "ModelLayout",
    "ModelLoadError",
    "Side",
    "SparseVector",
    "SpladeEncoder",
    "folder_identity",
    "hub_reachable",
    "load_mlm",
    "looks_like_path",
    "max_pool_projection",
    "pool_logits",
    "read_layout",
    "resolve_device",
]

"""Search options shared by every stage: backends, methods, fusions, pruning defaults."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from sparse_demo.encoder.windows import WindowSettings
from sparse_demo.index import FUSION_METHODS

BackendName = Literal["memory", "opensearch"]
SearchMethod = Literal["bm25", "sparse", "hybrid"]
FusionName = Literal["minmax", "rrf"]

BACKENDS: tuple[str, ...] = ("memory", "opensearch")
METHODS: tuple[str, ...] = ("bm25", "sparse", "hybrid")
FUSIONS: tuple[str, ...] = FUSION_METHODS

#: The BM25 analyzer spec used when none is given (see ``sparse_demo.korean``).
DEFAULT_ANALYZER = "default"

#: Tokens kept per document vector (top by weight); None keeps all.
DEFAULT_DOC_TOP_K = 512
#: How documents longer than the model's max length are read: all of each, the max over its windows.
DEFAULT_DOC_WINDOWS = WindowSettings("max")
#: Tokens kept per query vector; OpenSearch allows 1024 clauses by default.
DEFAULT_QUERY_TOP_K = 1024


def choice(value: str, choices: Sequence[str], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value

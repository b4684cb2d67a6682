"""Systems as table rows: ``bm25``, ``sparse:MODEL``, ``hybrid:MODEL[:WEIGHT|:best]``, ``rrf:MODEL``.

``hybrid:MODEL:best`` is the min-max hybrid whose weight is chosen by k-fold cross-validation
(:func:`sparse_demo.evaluation.weights.cross_validate_weight`): every query is scored with a weight
chosen on the other folds' queries, and the label says how many folds.

Example:
    >>> parse_system("hybrid:V26:0.3").label
    'hybrid V26 (w=0.3)'
    >>> parse_system("hybrid:V26:best").label
    'hybrid V26 (weight by 5-fold CV)'
    >>> parse_system("rrf:V26").fusion
    'rrf'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .weights import DEFAULT_FOLDS

SystemKind = Literal["bm25", "sparse", "hybrid"]
KINDS: tuple[str, ...] = ("bm25", "sparse", "hybrid", "rrf")
FUSIONS: tuple[str, ...] = ("minmax", "rrf")
SYSTEM_HELP = "bm25, sparse:MODEL, hybrid:MODEL[:WEIGHT|:best] or rrf:MODEL"


@dataclass(frozen=True)
class SystemSpec:
    """One row of the table.

    Attributes:
        kind: ``"bm25"``, ``"sparse"`` or ``"hybrid"``.
        model: the model (preset name, Hub id or folder) for sparse and hybrid.
        fusion: hybrid only: ``"minmax"`` or ``"rrf"``.
        weight: hybrid min-max only: the sparse leg's weight (BM25 gets ``1 - weight``).
        tuned: hybrid min-max only: the weight is chosen by ``folds``-fold cross-validation
            (each query scored with a weight chosen without it).
        folds: the k of that cross-validation.
    """

    kind: SystemKind
    model: str | None = None
    fusion: str = "minmax"
    weight: float | None = None
    tuned: bool = False
    folds: int = DEFAULT_FOLDS

    @property
    def label(self) -> str:
        """A short row label."""
        if self.kind == "bm25":
            return "BM25"
        if self.kind == "sparse":
            return f"sparse {self.model}"
        if self.fusion == "rrf":
            return f"hybrid {self.model} (RRF)"
        if self.tuned:
            return f"hybrid {self.model} (weight by {self.folds}-fold CV)"
        return f"hybrid {self.model} (w={self.weight:g})"


def parse_system(
    text: str, fusion: str = "minmax", default_weight: float = 0.5, folds: int = DEFAULT_FOLDS
) -> SystemSpec:
    """Parse a ``--system`` value.

    Args:
        text: ``bm25``, ``sparse:MODEL``, ``hybrid:MODEL``, ``hybrid:MODEL:WEIGHT``,
            ``hybrid:MODEL:best`` (weight by cross-validation) or ``rrf:MODEL``.
        fusion: the hybrid fusion when the text does not say (``minmax`` or ``rrf``).
        default_weight: the sparse weight of ``hybrid:MODEL``.
        folds: the k of ``hybrid:MODEL:best``'s cross-validation (>= 2).

    Raises:
        ValueError: an unknown kind, a missing model, a weight outside [0, 1] or folds < 2.
    """
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"the cross-validation needs at least 2 folds, got {folds!r}")
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}")
    raw = (text or "").strip()
    kind, _, rest = raw.partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise ValueError(f"unknown system {raw!r}; use {SYSTEM_HELP}")
    if kind == "bm25":
        if rest:
            raise ValueError(f"bm25 takes no model, got {raw!r}")
        return SystemSpec("bm25")
    if not rest:
        raise ValueError(f"{kind} needs a model: {kind}:MODEL ({SYSTEM_HELP})")
    if kind == "sparse":
        return SystemSpec("sparse", rest)
    if kind == "rrf":
        return SystemSpec("hybrid", rest, "rrf")
    model, weight, tuned = rest, default_weight, False
    head, sep, tail = rest.rpartition(":")
    if sep and head:
        if tail.lower() == "best":
            model, tuned = head, True
        else:
            try:
                weight = float(tail)
            except ValueError:
                weight = default_weight  # a colon inside the model name
            else:
                model = head
    if fusion == "rrf" and not tuned and model == rest:
        return SystemSpec("hybrid", model, "rrf")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"the hybrid weight must be in [0, 1], got {weight:g} in {raw!r}")
    return SystemSpec("hybrid", model, "minmax", None if tuned else weight, tuned, folds)

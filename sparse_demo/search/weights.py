"""The hybrid weight a model recommends for itself (``sparse_demo.json`` in its folder).

A model folder may carry ``sparse_demo.json`` with ``{"hybrid_weight": w}`` (see
:mod:`sparse_demo.offline`): the sparse leg's weight in the min-max hybrid that suits the model
(BM25 gets ``1 - w``). The Search tab and the ``search`` CLI use it when the user has not chosen a
weight; otherwise :data:`DEFAULT_WEIGHT`.

Example:
    >>> resolve_weight(None, None)
    WeightChoice(weight=0.5, source='default')
    >>> resolve_weight(None, 0.3)
    WeightChoice(weight=0.3, source='user')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

#: The sparse leg's weight when neither the user nor the model says otherwise.
DEFAULT_WEIGHT = 0.5


@dataclass(frozen=True)
class WeightChoice:
    """The hybrid weight to use and where it came from.

    Attributes:
        weight: the sparse leg's weight in [0, 1].
        source: ``"user"`` (given), ``"model"`` (the model folder's ``sparse_demo.json``) or
            ``"default"`` (:data:`DEFAULT_WEIGHT`).
    """

    weight: float
    source: Literal["user", "model", "default"]

    @property
    def note(self) -> str:
        """A line for the status ("" unless the model card chose the weight)."""
        return f"weight {self.weight:g} recommended by the model card" if self.source == "model" else ""


def model_folder(encoder: Any | None) -> Path | None:
    """The local folder the encoder was loaded from, or None (a Hub id, an in-memory model, no model).

    Reads, in order, a ``source_folder`` / ``folder`` / ``source`` attribute, then the folder
    transformers recorded when loading (``model.config._name_or_path``, ``tokenizer.name_or_path``).
    """
    if encoder is None:
        return None
    candidates: list[Any] = [getattr(encoder, a, None) for a in ("source_folder", "folder", "source")]
    config = getattr(getattr(encoder, "model", None), "config", None)
    candidates.append(getattr(config, "_name_or_path", None))
    candidates.append(getattr(getattr(encoder, "tokenizer", None), "name_or_path", None))
    for c in candidates:
        if not isinstance(c, (str, Path)) or not str(c).strip():
            continue
        path = Path(c).expanduser()
        if path.is_dir():
            return path
    return None


def recommended_weight(encoder: Any | None) -> float | None:
    """The hybrid weight the encoder's model folder recommends (``sparse_demo.json``), or None.

    Never raises: a missing folder, a Hub model or a broken settings file (logged) give None.

    Args:
        encoder: a ``SpladeEncoder`` (or anything with ``model`` / ``tokenizer``), or None.
    """
    folder = model_folder(encoder)
    if folder is None:
        return None
    from sparse_demo.offline import recommended_hybrid_weight

    return recommended_hybrid_weight(folder)


def resolve_weight(encoder: Any | None, weight: float | None) -> WeightChoice:
    """The weight to search with: ``weight`` when given, else the model's recommendation, else 0.5.

    Raises:
        ValueError: ``weight`` lies outside [0, 1].
    """
    if weight is not None:
        w = float(weight)
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"the hybrid weight must lie in [0, 1], got {w}")
        return WeightChoice(w, "user")
    rec = recommended_weight(encoder)
    if rec is not None:
        return WeightChoice(float(rec), "model")
    return WeightChoice(DEFAULT_WEIGHT, "default")

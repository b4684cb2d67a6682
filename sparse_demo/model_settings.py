"""A model folder's own settings: ``sparse_demo.json`` next to ``config.json``.

The file is optional. The demo model's build writes it (:mod:`sparse_demo.offline.recipe`); an operator
may add one to any local model folder. The Search tab reads the recommended hybrid weight from it
(:func:`recommended_hybrid_weight`), below any weight the user or the Evaluate tab chose.

This module sits at the bottom of the package (it imports nothing from it), so ``search`` can read a
folder's settings without importing the demo model's build.

Example:
    >>> import json, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / SETTINGS_FILE).write_text(json.dumps({"hybrid_weight": 0.2}))
    >>> read_model_settings(folder).hybrid_weight, recommended_hybrid_weight(folder)
    (0.2, 0.2)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: The model folder's settings file (next to ``config.json``).
SETTINGS_FILE = "sparse_demo.json"


@dataclass(frozen=True)
class ModelSettings:
    """A model folder's ``sparse_demo.json``.

    Attributes:
        name: the display name the folder was built under.
        description: one line for the model status table.
        hybrid_weight: the sparse leg's recommended weight in the min-max hybrid (None: no advice).
        max_length: tokens per text the model was trained and evaluated with (None: the app's).
        drop_special: drop special tokens from search vectors.
    """

    name: str = ""
    description: str = ""
    hybrid_weight: float | None = None
    max_length: int | None = None
    drop_special: bool = True


def read_model_settings(folder: str | Path) -> ModelSettings | None:
    """The ``sparse_demo.json`` of a model folder; None when the folder has none.

    Raises:
        ValueError: the file is not valid JSON, or a value is out of range (the message names it).
    """
    path = Path(folder).expanduser() / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(raw).__name__}")
    weight = raw.get("hybrid_weight")
    if weight is not None and (
        isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1.0
    ):
        raise ValueError(f"{path}: hybrid_weight must be a number in [0, 1], got {weight!r}")
    max_length = raw.get("max_length")
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 2):
        raise ValueError(f"{path}: max_length must be an integer >= 2, got {max_length!r}")
    return ModelSettings(
        name=str(raw.get("name") or ""),
        description=str(raw.get("description") or ""),
        hybrid_weight=None if weight is None else float(weight),
        max_length=max_length,
        drop_special=bool(raw.get("drop_special", True)),
    )


def recommended_hybrid_weight(source: str | Path | Any) -> float | None:
    """The hybrid weight recorded with a model, or None (then the Search tab's default applies).

    Args:
        source: a model folder (e.g. ``registry.resolve(name).source``). Anything else (a Hub id,
            a folder without a valid ``sparse_demo.json``, not a path at all) gives None; a broken
            settings file is logged, never raised, so it cannot break a search.
    """
    try:
        folder = Path(source).expanduser()
    except TypeError:
        return None
    if not folder.is_dir():
        return None
    try:
        settings = read_model_settings(folder)
    except ValueError as exc:
        logger.warning("Ignoring the model settings: %s", exc)
        return None
    return settings.hybrid_weight if settings else None


__all__ = ["SETTINGS_FILE", "ModelSettings", "read_model_settings", "recommended_hybrid_weight"]

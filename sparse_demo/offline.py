"""The offline fallback: a small local encoder trained on the bundled sample pairs.

When no Hub model can be loaded (a closed network, this project's CI), the app can still do its
whole job with a small model that its own trainer builds from ``assets/pairs/sample_pairs.jsonl``
in a few minutes on 2 CPU cores. The folder is cached and reused; everywhere it appears it is
labelled as a small local model trained on sample data.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .models import ModelRegistry

logger = logging.getLogger(__name__)

LOCAL_MODEL_NAME = "local-small (sample data)"
LOCAL_MODEL_DESCRIPTION = "small local model trained on sample data (not the V26 checkpoint)"
LOCAL_MODEL_SIZE = "mini"
_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """``SPARSE_DEMO_CACHE`` or ``.cache/models`` in the project folder."""
    return Path(os.environ.get("SPARSE_DEMO_CACHE", _ROOT / ".cache" / "models")).expanduser()


def local_model_dir(root: Path | None = None) -> Path:
    return (root or cache_dir()) / f"local-sparse-{LOCAL_MODEL_SIZE}"


def register_cached_local_model(registry: ModelRegistry, root: Path | None = None) -> bool:
    """Register the local model when a previous build left it in the cache."""
    folder = local_model_dir(root)
    if (folder / "model.safetensors").is_file():
        registry.register(LOCAL_MODEL_NAME, str(folder), LOCAL_MODEL_DESCRIPTION)
        return True
    return False


def build_local_model(registry: ModelRegistry, root: Path | None = None, *, time_limit_s: float = 180.0,
                      progress=None, should_stop=None) -> Path:
    """Train (or reuse) the local model and register it under :data:`LOCAL_MODEL_NAME`."""
    from .train import build_offline_model

    folder = build_offline_model(root or cache_dir(), size=LOCAL_MODEL_SIZE, time_limit_s=time_limit_s,
                                 progress=progress, should_stop=should_stop)
    registry.register(LOCAL_MODEL_NAME, str(folder), LOCAL_MODEL_DESCRIPTION)
    registry.get(LOCAL_MODEL_NAME, retry=True)
    return folder

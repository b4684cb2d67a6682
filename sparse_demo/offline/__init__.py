"""The embedded demo model, and retraining it inside the app.

The app answers offline in its first second with two small Korean SPLADE encoders shipped in
``assets/``, built by ``scripts/build_demo_model.py`` from data bundled with the project
(:mod:`sparse_demo.offline.recipe`) and differing as V25 and V26 do: ``demo-v26-style`` (the card's
stopword and special-token penalties; :data:`DEMO_MODEL_DIR`, the model every picker falls back to)
and ``demo-v25-style`` (no penalties). Both carry expansions distilled from Kiwi's CoNg model
(:mod:`sparse_demo.offline.expansion`). :func:`register_demo_model` makes them public models under
:data:`DEMO_MODEL_NAME` and :data:`DEMO_V25_NAME`; their folders are only read, never written.

Each model folder may carry a settings file, ``sparse_demo.json`` next to ``config.json``
(:mod:`sparse_demo.model_settings`); the demo model's records the hybrid weight recommended for it
(:func:`recommended_hybrid_weight`), lower than the Search tab's generic 0.5 because the model
alone is weaker than BM25 on general text.

*Retrain the demo model here* (:func:`build_local_model`) runs the same recipe in the app's
cache folder (``SPARSE_DEMO_CACHE``, default ``.cache/models``) and registers the result under
:data:`LOCAL_MODEL_NAME`; a second call with the same data and settings reuses the folder.

Example:
    >>> from sparse_demo.models import ModelRegistry  # doctest: +SKIP
    >>> registry = ModelRegistry()  # doctest: +SKIP
    >>> register_demo_model(registry)  # doctest: +SKIP
    True
    >>> recommended_hybrid_weight(DEMO_MODEL_DIR)  # doctest: +SKIP
    0.2
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sparse_demo.config import model_cache_dir
from sparse_demo.model_settings import SETTINGS_FILE, ModelSettings, read_model_settings, recommended_hybrid_weight
from sparse_demo.offline.recipe import (
    DEFAULT_OUT,
    DEMO_MODEL_DESCRIPTION,
    DEMO_MODEL_NAME,
    RECORD_FILE,
    STYLE_DESCRIPTIONS,
    STYLE_DIRS,
    STYLE_NAMES,
    BuildOptions,
    build,
    load_bundled,
)
from sparse_demo.progress import ShouldStop, TrainingProgress

if TYPE_CHECKING:
    from sparse_demo.models import ModelRegistry

logger = logging.getLogger(__name__)

#: The bundled demo model's folder (read-only): the V26-style one.
DEMO_MODEL_DIR: Path = DEFAULT_OUT
#: Both bundled demo models' folders, by style (``v25``, ``v26``).
DEMO_STYLE_DIRS: dict[str, Path] = dict(STYLE_DIRS)
#: The V25-style demo model's name (Compare's model B offline).
DEMO_V25_NAME = STYLE_NAMES["v25"]
#: The demo model retrained inside the app (*Retrain the demo model here*).
LOCAL_MODEL_NAME = "demo-v26-style (retrained here)"
LOCAL_MODEL_DESCRIPTION = "the demo model's recipe retrained on this machine from bundled sample data"
LOCAL_MODEL_SIZE = "mini"
#: Files a model folder needs to be registered.
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------- the bundled demo model
def demo_model_available(folder: str | Path | None = None) -> bool:
    """True when the demo model folder holds the files a load needs."""
    base = Path(folder) if folder is not None else DEMO_MODEL_DIR
    return all((base / name).is_file() for name in _REQUIRED_FILES)


def register_demo_model(registry: ModelRegistry, folder: str | Path | None = None) -> bool:
    """Register the bundled demo models as public models: V26-style as :data:`DEMO_MODEL_NAME`, V25-style
    as :data:`DEMO_V25_NAME`.

    Registration is cheap (nothing is loaded until a tab asks for it); the folders are only read.

    Args:
        registry: the app's model registry.
        folder: another V26-style demo model folder (tests; then the V25-style one is not registered);
            default :data:`DEMO_MODEL_DIR`.

    Returns:
        False (and a warning) when the V26-style folder is missing or incomplete, e.g. a checkout without it.
    """
    folders = {"v26": Path(folder)} if folder is not None else DEMO_STYLE_DIRS
    ok = {}
    for style in ("v26", "v25"):
        base = folders.get(style)
        if base is None:
            continue
        if not demo_model_available(base):
            missing = [n for n in _REQUIRED_FILES if not (base / n).is_file()]
            logger.warning(
                "The %s demo model is not available (%s missing in %s); rebuild it with "
                "`python scripts/build_demo_model.py --style %s`",
                style,
                ", ".join(missing),
                base,
                style,
            )
            ok[style] = False
            continue
        registry.register(STYLE_NAMES[style], str(base), STYLE_DESCRIPTIONS[style])
        ok[style] = True
    return ok.get("v26", False)


# ---------------------------------------------------------------------- retrain it here
def cache_dir() -> Path:
    """``SPARSE_DEMO_CACHE`` or ``.cache/models`` in the project folder (:func:`sparse_demo.config.model_cache_dir`)."""
    return model_cache_dir()


def local_model_dir(root: Path | None = None) -> Path:
    """The folder of the demo model retrained here."""
    return (root or cache_dir()) / "demo-model-retrained"


def register_cached_local_model(registry: ModelRegistry, root: Path | None = None) -> bool:
    """Register the retrained demo model when a previous run left it in the cache."""
    folder = local_model_dir(root)
    if demo_model_available(folder):
        registry.register(LOCAL_MODEL_NAME, str(folder), LOCAL_MODEL_DESCRIPTION)
        return True
    return False


def _local_options(
    folder: Path, time_limit_s: float, progress: TrainingProgress | None, should_stop: ShouldStop | None
) -> BuildOptions:
    return BuildOptions(
        out=folder,
        time_limit_s=time_limit_s,
        threads=None,
        name=LOCAL_MODEL_NAME,
        note="the demo model retrained in the app",
        progress=progress,
        should_stop=should_stop,
    )


def _cache_key(options: BuildOptions) -> str:
    settings = {
        k: getattr(options, k)
        for k in (
            "tokenizer",
            "size",
            "seed",
            "epochs",
            "batch_size",
            "lr",
            "time_limit_s",
            "max_length",
            "eval_fraction",
            "half",
            "style",
            "teacher",
            "lexicon_count",
            "distil_epochs",
            "graph_strength",
            "lexicon_candidates",
            "function_phrases",
        )
    }
    text = load_bundled().sha256() + json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def build_local_model(
    registry: ModelRegistry,
    root: Path | None = None,
    *,
    time_limit_s: float = 180.0,
    progress: TrainingProgress | None = None,
    should_stop: ShouldStop | None = None,
) -> Path:
    """*Retrain the demo model here*: run the demo model's recipe and register the result.

    The folder (:func:`local_model_dir`) is reused when its build record has the same data and
    settings; otherwise the recipe runs (about a minute for the vocabulary, several minutes for the
    CoNg expansion distillation, then training up to ``time_limit_s``) and replaces it once complete.
    It is registered as a public model named :data:`LOCAL_MODEL_NAME`.

    Args:
        registry: the app's model registry.
        root: the cache folder (default :func:`cache_dir`).
        time_limit_s: training time limit.
        progress: called with the training's progress dicts (see :func:`sparse_demo.train.train`).
        should_stop: polled every step; True cancels.

    Returns:
        The model folder.

    Raises:
        RuntimeError: the training stopped without a model (e.g. cancelled).
        ValueError: bad settings.
    """
    folder = local_model_dir(root)
    options = _local_options(folder, time_limit_s, progress, should_stop)
    key = _cache_key(options)
    record_path = folder / RECORD_FILE
    if demo_model_available(folder) and record_path.is_file():
        try:
            if json.loads(record_path.read_text(encoding="utf-8")).get("cache_key") == key:
                logger.info("Reusing the retrained demo model at %s", folder)
                registry.register(LOCAL_MODEL_NAME, str(folder), LOCAL_MODEL_DESCRIPTION)
                return folder
        except ValueError:
            pass
    options.extra_record = {"cache_key": key}
    build(options)
    registry.register(LOCAL_MODEL_NAME, str(folder), LOCAL_MODEL_DESCRIPTION)
    registry.get(LOCAL_MODEL_NAME, retry=True)
    return folder


__all__ = [
    "DEMO_MODEL_DESCRIPTION",
    "DEMO_MODEL_DIR",
    "DEMO_MODEL_NAME",
    "DEMO_STYLE_DIRS",
    "DEMO_V25_NAME",
    "LOCAL_MODEL_DESCRIPTION",
    "LOCAL_MODEL_NAME",
    "LOCAL_MODEL_SIZE",
    "SETTINGS_FILE",
    "ModelSettings",
    "build_local_model",
    "cache_dir",
    "demo_model_available",
    "local_model_dir",
    "read_model_settings",
    "recommended_hybrid_weight",
    "register_cached_local_model",
    "register_demo_model",
]

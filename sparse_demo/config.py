"""Typed settings and model presets, with environment-variable overrides.

Environment variables (all optional):

- ``SPARSE_DEMO_MODELS``: path to a presets JSON file (format of ``assets/models.json``).
- ``SPARSE_DEMO_MODEL_<NAME>``: ``<source>[@<revision>]`` for preset ``<NAME>`` (upper case),
  e.g. ``SPARSE_DEMO_MODEL_V26=/models/v26`` in a closed network. A new name adds a preset.
- ``SPARSE_DEMO_DEFAULT_MODEL``: the preset selected at start.
- ``SPARSE_DEMO_DEVICE``: ``auto`` (default), ``cpu`` or ``cuda``.
- ``SPARSE_DEMO_MAX_LENGTH``: tokens per text (default 192).
- ``SPARSE_DEMO_PRECISION``: ``auto`` (float32 on CPU, float16 on CUDA), ``fp32`` or ``bf16``.
- ``SPARSE_DEMO_STOPWORDS``: path to a stopword list replacing the bundled one.

Model sources and memory (a public Space sets ``SPARSE_DEMO_MODEL_SOURCES=public``):

- ``SPARSE_DEMO_MODEL_SOURCES``: ``any`` (default: a private deployment, any folder or Hub id typed in the
  app loads) or ``public`` (presets, the demo model, a visitor's own models, Hub ids matching
  ``SPARSE_DEMO_HUB_ALLOW`` and folders under ``SPARSE_DEMO_ALLOWED_ROOTS`` only).
- ``SPARSE_DEMO_HUB_ALLOW``: comma-separated ``fnmatch`` patterns of Hub ids a visitor may type in
  ``public`` mode (default ``sewoong/*``).
- ``SPARSE_DEMO_ALLOWED_ROOTS``: folders (separated by ``os.pathsep``) under which typed local folders may
  load in ``public`` mode (default: none).
- ``SPARSE_DEMO_HUB_MAX_MB``: a typed Hub model whose safetensors weights exceed this is refused before
  downloading (default 2,500).
- ``SPARSE_DEMO_MODEL_CACHE_MB`` / ``SPARSE_DEMO_MAX_MODELS``: budget of the loaded-model LRU (default
  6,000 MB of parameters, 4 models); the least recently used model is dropped beyond either.
- ``SPARSE_DEMO_RETRY_FAILED_S``: a preset that failed to load is tried again after this many seconds
  (default 60) or on *Refresh model status*.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

#: Tokens per text by default (``SPARSE_DEMO_MAX_LENGTH``); longer texts are truncated. Defined here,
#: not in :mod:`sparse_demo.encoder`, so reading settings never imports torch.
DEFAULT_MAX_LENGTH = 192
#: Encoder precisions (``SPARSE_DEMO_PRECISION``). ``auto``: float32 on CPU (exact), float16 on CUDA.
#: ``bf16``: bfloat16 autocast (about 2x faster on CPUs with avx512_bf16/AMX; weights differ from
#: float32 by ~1e-2). ``fp32``: exact.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_PRESETS_PATH = ASSETS_DIR / "models.json"
_ENV_PREFIX = "SPARSE_DEMO_MODEL_"
#: ``SPARSE_DEMO_MODEL_<NAME>`` variables that are settings, not presets.
_RESERVED = frozenset({"SOURCES", "CACHE_MB"})
#: Valid values of ``SPARSE_DEMO_MODEL_SOURCES``.
MODEL_SOURCES: tuple[str, ...] = ("any", "public")
ModelSources = Literal["any", "public"]


@dataclass(frozen=True)
class ModelPreset:
    """A named model: a Hub id or local folder, with an optional pinned revision."""

    name: str
    source: str
    revision: str | None = None
    description: str = ""

    @property
    def is_local(self) -> bool:
        return Path(self.source).expanduser().is_dir()


@dataclass(frozen=True)
class Settings:
    presets: tuple[ModelPreset, ...]
    default_model: str
    device: str = "auto"
    max_length: int = DEFAULT_MAX_LENGTH
    precision: str = "auto"
    stopwords_path: Path | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    model_sources: ModelSources = "any"
    hub_allow: tuple[str, ...] = ("sewoong/*",)
    allowed_roots: tuple[Path, ...] = ()
    hub_max_bytes: int = 2_500 * 1024 * 1024
    model_cache_bytes: int = 6_000 * 1024 * 1024
    max_models: int = 4
    retry_failed_s: float = 60.0

    @property
    def public(self) -> bool:
        """True in ``public`` mode (a multi-visitor Space): typed sources follow the allowlists."""
        return self.model_sources == "public"

    def preset(self, name: str) -> ModelPreset | None:
        return next((p for p in self.presets if p.name == name), None)

    @property
    def preset_names(self) -> list[str]:
        return [p.name for p in self.presets]


def _parse_source(value: str) -> tuple[str, str | None]:
    """``source@revision`` -> (source, revision); a local path keeps any ``@`` it contains."""
    if "@" in value and not Path(value).expanduser().exists():
        source, _, revision = value.rpartition("@")
        return source, revision or None
    return value, None


def load_presets(path: str | Path | None = None) -> tuple[list[ModelPreset], str | None]:
    """Read presets from a JSON file. Returns (presets, default name).

    Raises:
        ValueError: the file is not valid JSON or a preset lacks ``name``/``source``.
    """
    path = Path(path) if path else DEFAULT_PRESETS_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Cannot read model presets from {path}: {exc}") from exc
    presets = []
    for i, item in enumerate(data.get("presets", [])):
        if not isinstance(item, dict) or not item.get("name") or not item.get("source"):
            raise ValueError(f"{path}: preset #{i} needs 'name' and 'source'")
        presets.append(
            ModelPreset(
                name=str(item["name"]),
                source=str(item["source"]),
                revision=item.get("revision") or None,
                description=str(item.get("description", "")),
            )
        )
    return presets, data.get("default")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the presets file and the environment (see the module docstring)."""
    env = os.environ if env is None else env
    presets, default = load_presets(env.get("SPARSE_DEMO_MODELS"))
    by_name = {p.name.upper(): p for p in presets}
    for key, value in env.items():
        if not key.startswith(_ENV_PREFIX) or not value.strip():
            continue
        name = key[len(_ENV_PREFIX) :]
        if name in _RESERVED:
            continue
        source, revision = _parse_source(value.strip())
        if name in by_name:
            by_name[name] = replace(by_name[name], source=source, revision=revision)
        else:
            by_name[name] = ModelPreset(name=name, source=source, revision=revision, description="from environment")
    merged = list(by_name.values())
    default = env.get("SPARSE_DEMO_DEFAULT_MODEL") or default or (merged[0].name if merged else "")
    try:
        max_length = int(env.get("SPARSE_DEMO_MAX_LENGTH", DEFAULT_MAX_LENGTH))
    except ValueError as exc:
        raise ValueError("SPARSE_DEMO_MAX_LENGTH must be an integer") from exc
    precision = env.get("SPARSE_DEMO_PRECISION", "auto")
    if precision not in PRECISIONS:
        raise ValueError(f"SPARSE_DEMO_PRECISION must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    stop = env.get("SPARSE_DEMO_STOPWORDS")
    sources = env.get("SPARSE_DEMO_MODEL_SOURCES", "any").strip().lower() or "any"
    if sources not in MODEL_SOURCES:
        raise ValueError(f"SPARSE_DEMO_MODEL_SOURCES must be one of {', '.join(MODEL_SOURCES)}, got {sources!r}")
    allow = tuple(p.strip() for p in env.get("SPARSE_DEMO_HUB_ALLOW", "sewoong/*").split(",") if p.strip())
    roots = tuple(Path(r).expanduser().resolve() for r in env.get("SPARSE_DEMO_ALLOWED_ROOTS", "").split(os.pathsep)
                  if r.strip())
    mb = 1024 * 1024
    return Settings(
        presets=tuple(merged),
        default_model=default,
        device=env.get("SPARSE_DEMO_DEVICE", "auto"),
        max_length=max_length,
        precision=precision,
        stopwords_path=Path(stop) if stop else None,
        model_sources=sources,  # type: ignore[arg-type]
        hub_allow=allow,
        allowed_roots=roots,
        hub_max_bytes=int(env_number(env, "SPARSE_DEMO_HUB_MAX_MB", 2_500, minimum=1) * mb),
        model_cache_bytes=int(env_number(env, "SPARSE_DEMO_MODEL_CACHE_MB", 6_000, minimum=1) * mb),
        max_models=int(env_number(env, "SPARSE_DEMO_MAX_MODELS", 4, minimum=1)),
        retry_failed_s=env_number(env, "SPARSE_DEMO_RETRY_FAILED_S", 60.0, minimum=0),
    )


def env_number(env: Mapping[str, str], key: str, default: float, *, minimum: float = 0) -> float:
    """A number from the environment, ``default`` when unset.

    Raises:
        ValueError: the value is not a number or is below ``minimum`` (the message names the variable).
    """
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{key} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{key} must be at least {minimum:g}, got {raw!r}")
    return value

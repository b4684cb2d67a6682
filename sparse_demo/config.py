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
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from .encoder import DEFAULT_MAX_LENGTH, PRECISIONS

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_PRESETS_PATH = ASSETS_DIR / "models.json"
_ENV_PREFIX = "SPARSE_DEMO_MODEL_"


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
    return Settings(
        presets=tuple(merged),
        default_model=default,
        device=env.get("SPARSE_DEMO_DEVICE", "auto"),
        max_length=max_length,
        precision=precision,
        stopwords_path=Path(stop) if stop else None,
    )

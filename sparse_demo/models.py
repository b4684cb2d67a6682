"""Process-wide model registry: load each model once, remember failures with their reason.

Every tab asks the registry for an encoder by preset name or by source (a Hub id or a local
folder). A model that fails to load is recorded with a readable reason, so the app can say
which model it could not load and why, and keep working with the others.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from .config import ModelPreset, Settings, load_settings
from .encoder import ModelLoadError, SpladeEncoder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelStatus:
    name: str
    source: str
    loaded: bool
    error: str | None = None
    description: str = ""


class ModelRegistry:
    """Loads encoders on demand and keeps them; thread-safe.

    Args:
        settings: presets, device and max length (``load_settings()`` when None).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._models: dict[str, SpladeEncoder] = {}
        self._errors: dict[str, str] = {}
        self._extra: dict[str, ModelPreset] = {}
        self._private: set[str] = set()
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    # ------------------------------------------------------------------ names
    def resolve(self, name_or_source: str) -> ModelPreset:
        """A preset by name, or an ad-hoc preset for a Hub id / local folder."""
        key = (name_or_source or "").strip()
        if not key:
            raise ValueError("No model given: pick a preset or type a local folder / Hub id.")
        preset = self.settings.preset(key) or self._extra.get(key)
        if preset is not None:
            return preset
        return ModelPreset(name=key, source=key)

    def register(self, name: str, source: str, description: str = "", *, public: bool = True) -> ModelPreset:
        """Add a model (a local folder, a fine-tuned model) under ``name``.

        ``public=False`` keeps it out of :attr:`names` (one visitor's fine-tuned model is
        loadable by its name but listed only in that visitor's session).
        """
        preset = ModelPreset(name=name, source=source, description=description)
        with self._lock:
            self._extra[name] = preset
            self._errors.pop(name, None)
            if public:
                self._private.discard(name)
            else:
                self._private.add(name)
        return preset

    @property
    def names(self) -> list[str]:
        extra = [n for n in self._extra if self.settings.preset(n) is None and n not in self._private]
        return self.settings.preset_names + extra

    # ------------------------------------------------------------------ loading
    def get(self, name_or_source: str, *, retry: bool = False) -> SpladeEncoder:
        """The loaded encoder; loads it on first use.

        Raises:
            ModelLoadError: the model cannot be loaded (the reason is remembered; pass
                ``retry=True`` to try again).
        """
        preset = self.resolve(name_or_source)
        key = preset.name
        with self._lock:
            if key in self._models:
                return self._models[key]
            if key in self._errors and not retry:
                raise ModelLoadError(preset.source, self._errors[key], preset.name)
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one load per model, other models load in parallel
            if key in self._models:
                return self._models[key]
            try:
                encoder = SpladeEncoder.load(
                    preset.source,
                    revision=preset.revision,
                    device=self.settings.device,
                    max_length=self.settings.max_length,
                    name=preset.name,
                    precision=self.settings.precision,
                )
            except ModelLoadError as exc:
                with self._lock:
                    self._errors[key] = exc.reason
                raise
            with self._lock:
                self._models[key] = encoder
                self._errors.pop(key, None)
            return encoder

    def try_get(self, name_or_source: str) -> tuple[SpladeEncoder | None, str | None]:
        """``(encoder, None)`` or ``(None, readable error)``; never raises."""
        try:
            return self.get(name_or_source), None
        except (ModelLoadError, ValueError) as exc:
            return None, str(exc)

    def put(self, name: str, encoder: SpladeEncoder, description: str = "") -> None:
        """Register an already loaded encoder (tests, freshly trained models)."""
        with self._lock:
            self._models[name] = encoder
            self._extra.setdefault(name, ModelPreset(name=name, source=name, description=description))
            self._errors.pop(name, None)

    def status(self) -> list[ModelStatus]:
        out = []
        for name in self.names:
            preset = self.resolve(name)
            out.append(
                ModelStatus(
                    name=name,
                    source=preset.source,
                    loaded=name in self._models,
                    error=self._errors.get(name),
                    description=preset.description,
                )
            )
        return out

    def status_markdown(self) -> str:
        """A short table of models: loaded, failed (with the reason) or not tried yet."""
        lines = ["| model | source | state |", "|---|---|---|"]
        for s in self.status():
            state = "loaded" if s.loaded else (f"**failed**: {s.error}" if s.error else "not loaded yet")
            source = Path(s.source).name + " (local folder)" if Path(s.source).is_dir() else s.source
            lines.append(f"| {s.name} | `{source}` | {state} |")
        return "\n".join(lines)

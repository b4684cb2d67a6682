"""Process-wide model registry: named models, a source policy and a bounded cache of loaded encoders.

Every tab asks the registry for an encoder by name (a preset, the demo model, a model registered for
everybody) or by a typed source (a Hub id or a local folder). Three rules make it safe on a public,
multi-visitor server:

- **One load per checkpoint.** Loaded encoders live in an LRU keyed by the *resolved* source (a local
  folder's real path plus the size and modification time of its weight and config files, a Hub id plus
  its revision) and the settings that change vectors; ``/m/./x`` and ``/m/x`` load once, and a folder
  rewritten in place loads again. The LRU holds at most ``Settings.max_models`` encoders and
  ``Settings.model_cache_bytes`` of parameters; the least recently used one is dropped beyond either.
- **A source policy.** In ``public`` mode (``SPARSE_DEMO_MODEL_SOURCES=public``) a typed source loads only
  when it is a Hub id matching ``Settings.hub_allow`` (whose safetensors weights, read from the Hub's
  metadata before any download, fit ``Settings.hub_max_bytes``) or a folder under
  ``Settings.allowed_roots``. A missing path, a forbidden path and a file all get the same message
  (:data:`NOT_AVAILABLE`), so the box cannot be used to probe the server's file system. In every mode,
  folders under a *private root* (visitors' own models) load only for the visitor who owns them. The
  policy applies to the files a folder holds too: every entry of the folder (and of its sub-folders,
  :data:`MAX_FOLDER_ENTRIES` at most) is resolved, so a weights, tokenizer or config file that is a
  symlink to outside the allowed roots (or into another visitor's folder) is refused like the folder.
- **Failures are not sticky.** A named model that failed is reported with its reason and tried again
  after ``Settings.retry_failed_s`` seconds or on :meth:`ModelRegistry.refresh`; a typed source's
  failure is never cached (a folder created later loads at once, for every visitor).

Loading itself (safetensors only, never remote code) is :meth:`SpladeEncoder.load`'s job.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ModelPreset, Settings, load_settings
from .encoder import ModelLoadError, looks_like_path

if TYPE_CHECKING:
    from .encoder import SpladeEncoder

logger = logging.getLogger(__name__)

#: The one answer for a typed source that is missing, forbidden, a file, or another visitor's model.
NOT_AVAILABLE = (
    "No model that this app may load is available under that name or path. Pick a model from "
    "the list, or type an allowed Hub id or folder."
)
_STAMP_FILES = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
)
#: A typed folder with more entries than this (sub-folders included, two levels deep) is refused: it is
#: not a model folder, and checking where every entry points must stay cheap.
MAX_FOLDER_ENTRIES = 2_000
_FOLDER_DEPTH = 2


@dataclass(frozen=True)
class ModelStatus:
    """One named model's state for the status table."""

    name: str
    source: str
    loaded: bool
    error: str | None = None
    description: str = ""


@dataclass
class _Cached:
    encoder: SpladeEncoder
    nbytes: int
    folder: Path | None
    #: The same encoder under other preset names for its checkpoint (:meth:`ModelRegistry._named_view`).
    views: dict[str, SpladeEncoder] = field(default_factory=dict)


class SourceRefused(ModelLoadError):
    """A typed source the policy does not allow (or that does not exist): always :data:`NOT_AVAILABLE`."""

    def __init__(self, source: str) -> None:
        super().__init__(source, NOT_AVAILABLE)
        self.args = (NOT_AVAILABLE,)

    def __str__(self) -> str:
        return NOT_AVAILABLE


def encoder_nbytes(encoder: SpladeEncoder) -> int:
    """Bytes held by an encoder's parameters and buffers (what the LRU budget counts)."""
    modules = encoder.torch_modules() if hasattr(encoder, "torch_modules") else [encoder.model]
    tensors = [t for m in modules for t in (*m.parameters(), *m.buffers())]
    seen: set[int] = set()
    total = 0
    for t in tensors:
        ptr = t.data_ptr()
        if ptr in seen:  # tied embeddings count once
            continue
        seen.add(ptr)
        total += t.numel() * t.element_size()
    return total


def hub_weights_bytes(repo_id: str, revision: str | None = None) -> int:
    """Total size of a Hub repository's ``*.safetensors`` files, from metadata only (no download).

    Raises:
        ModelLoadError: the Hub cannot be reached (offline) or the repository has no safetensors weights.
    """
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, gated: one readable reason
        reason = (
            f"its size could not be checked on the Hub before downloading ({type(exc).__name__}); "
            "this app loads Hub models only after that check."
        )
        raise ModelLoadError(repo_id, reason) from exc
    sizes = [s.size or 0 for s in info.siblings or [] if s.rfilename.endswith(".safetensors")]
    if not sizes:
        raise ModelLoadError(repo_id, "the repository has no .safetensors weights (this app loads no pickle files).")
    return int(sum(sizes))


def check_weights_size(repo_id: str, nbytes: int, limit: int) -> None:
    """Refuse a Hub model whose weights exceed ``limit`` bytes.

    Raises:
        ModelLoadError: ``nbytes > limit``, with both sizes in MB and the variable that raises the limit.
    """
    if nbytes > limit:
        raise ModelLoadError(
            repo_id,
            f"its weights are {nbytes / 2**20:,.0f} MB; this app loads at most "
            f"{limit / 2**20:,.0f} MB per model (SPARSE_DEMO_HUB_MAX_MB).",
        )


def _under(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _entries(folder: Path, depth: int = _FOLDER_DEPTH, budget: list[int] | None = None) -> Iterable[Path]:
    """Every entry under ``folder`` (``depth`` levels), as the path a reader would open; symlinks not followed.

    Raises:
        OSError: a folder cannot be listed, or there are more than :data:`MAX_FOLDER_ENTRIES` entries.
    """
    budget = [MAX_FOLDER_ENTRIES] if budget is None else budget
    with os.scandir(folder) as it:
        entries = list(it)
    if len(entries) > budget[0]:  # refuse before resolving anything
        raise OSError(f"more than {MAX_FOLDER_ENTRIES} entries")
    for entry in entries:
        budget[0] -= 1
        if budget[0] < 0:
            raise OSError(f"more than {MAX_FOLDER_ENTRIES} entries")
        yield Path(entry.path)
        if depth > 1 and entry.is_dir(follow_symlinks=False):
            yield from _entries(Path(entry.path), depth - 1, budget)


def _stamp(folder: Path) -> tuple:
    """Size and mtime of the files that identify a checkpoint: the top-level ones of :data:`_STAMP_FILES`, and the
    ``*.json`` / ``*.safetensors`` of its sub-folders (a sentence-transformers folder's modules: a Router's query
    table rewritten alone loads again)."""
    out = []
    for name in _STAMP_FILES:
        try:
            st = (folder / name).stat()
        except OSError:
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    if (folder / "modules.json").is_file():
        try:
            subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            for sub in subs[:MAX_FOLDER_ENTRIES]:
                for f in sorted(sub.iterdir())[:MAX_FOLDER_ENTRIES]:
                    if f.suffix in (".json", ".safetensors"):
                        st = f.stat()
                        out.append((f"{sub.name}/{f.name}", st.st_size, st.st_mtime_ns))
        except OSError:
            pass
    return tuple(out)


class ModelRegistry:
    """Named models, a typed-source policy and an LRU of loaded encoders; thread-safe.

    Args:
        settings: presets, device, precision, source policy and cache budget (``load_settings()`` when None).
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self._extra: dict[str, ModelPreset] = {}
        self._cache: OrderedDict[tuple, _Cached] = OrderedDict()
        self._name_keys: dict[str, tuple] = {}  # last cache key each name loaded under (for the status table)
        self._errors: dict[str, tuple[str, float]] = {}  # name -> (reason, when)
        self._private_roots: set[Path] = set()
        self._lock = threading.RLock()
        self._key_locks: dict[tuple, threading.Lock] = {}
        self.loads = 0  # checkpoint loads so far (tests and the load benchmark read it)

    # ------------------------------------------------------------------ names
    def _named(self, name: str) -> ModelPreset | None:
        with self._lock:
            return self._extra.get(name) or self.settings.preset(name)

    def resolve(self, name_or_source: str) -> ModelPreset:
        """A named model (preset or registered), or an ad-hoc preset for a typed Hub id / local folder.

        Raises:
            ValueError: nothing given.
        """
        key = (name_or_source or "").strip()
        if not key:
            raise ValueError("No model given: pick a model from the list or type a local folder / Hub id.")
        return self._named(key) or ModelPreset(name=key, source=key)

    def register(self, name: str, source: str, description: str = "") -> ModelPreset:
        """Add (or replace) a model every visitor may pick, e.g. the demo model or a model built here.

        Replacing a name's source takes effect at once: the next :meth:`get` loads the new source.
        A visitor's own models are never registered here (see :meth:`load_private`).
        """
        preset = ModelPreset(name=name, source=source, description=description)
        with self._lock:
            self._extra[name] = preset
            self._errors.pop(name, None)
            self._name_keys.pop(name, None)
        return preset

    @property
    def names(self) -> list[str]:
        """Every public model name: presets first, then registered models, in registration order."""
        with self._lock:
            presets = self.settings.preset_names
            return presets + [n for n in self._extra if n not in presets]

    def add_private_root(self, folder: str | Path) -> Path:
        """Declare a folder whose models load only through :meth:`load_private` (visitors' models)."""
        root = Path(folder).expanduser().resolve()
        with self._lock:
            self._private_roots.add(root)
        return root

    # ------------------------------------------------------------------ policy
    def check_source(self, source: str, owned: Iterable[str | Path] = ()) -> str:
        """The source to load for a typed Hub id / folder, or :class:`SourceRefused`.

        Args:
            source: what the visitor typed.
            owned: the folders of this visitor's own models (allowed even under a private root).

        Raises:
            SourceRefused: missing, forbidden, not a folder, or another visitor's model.
            ModelLoadError: an allowed Hub model that is too large, or whose size cannot be checked.
        """
        s = source.strip()
        path = Path(s).expanduser()
        is_path = looks_like_path(s) or path.exists()
        owned_paths = {Path(p).expanduser().resolve() for p in owned}
        if is_path:
            try:
                real = path.resolve()
            except (OSError, RuntimeError) as exc:
                raise SourceRefused(s) from exc
            if not self._permitted(real, owned_paths):
                raise SourceRefused(s)
            if not real.is_dir():
                if self.settings.public:
                    raise SourceRefused(s)
                return s  # 'any' mode: the loader explains (no such folder, a file, ...)
            try:  # the files inside follow the same policy: a symlink to outside is resolved and checked
                inside_ok = all(self._permitted(entry.resolve(), owned_paths) for entry in _entries(real))
            except (OSError, RuntimeError) as exc:
                raise SourceRefused(s) from exc
            if not inside_ok:
                logger.warning("Refused a typed folder holding a link to a forbidden place: %s", real.name)
                raise SourceRefused(s)
            return str(real)
        if self.settings.public:
            if not any(fnmatch.fnmatchcase(s, pat) for pat in self.settings.hub_allow):
                raise SourceRefused(s)
            repo, _, revision = s.partition("@")
            check_weights_size(repo, hub_weights_bytes(repo, revision or None), self.settings.hub_max_bytes)
        return s

    def _permitted(self, real: Path, owned: set[Path]) -> bool:
        """Whether a resolved path may be read for a typed source: not another visitor's, and in
        ``public`` mode under an allowed root or this visitor's own folders."""
        with self._lock:
            private = set(self._private_roots)
        if _under(real, private) and not _under(real, owned):
            return False
        return not self.settings.public or _under(real, self.settings.allowed_roots) or _under(real, owned)

    # ------------------------------------------------------------------ loading
    def get(self, name_or_source: str, *, retry: bool = False, owned: Iterable[str | Path] = ()) -> SpladeEncoder:
        """The encoder for a model name or a typed source; loads it on first use.

        Args:
            name_or_source: a model name from :attr:`names`, or a typed Hub id / local folder.
            retry: try a named model again even if it failed recently.
            owned: this visitor's own model folders (see :meth:`check_source`).

        Raises:
            ModelLoadError: the model cannot be loaded (a named model's reason is remembered for
                ``Settings.retry_failed_s`` seconds); :class:`SourceRefused` for a refused typed source.
            ValueError: nothing given.
        """
        preset = self.resolve(name_or_source)
        if self._named(preset.name) is None:  # a typed source: policy first, failures never cached
            source = self.check_source(preset.source, owned)
            return self._load(ModelPreset(name=preset.name, source=source, revision=None), record=None)
        with self._lock:
            failed = self._errors.get(preset.name)
        if failed and not retry and time.monotonic() - failed[1] < self.settings.retry_failed_s:
            raise ModelLoadError(preset.source, failed[0], preset.name)
        return self._load(preset, record=preset.name)

    def load_private(self, folder: str | Path, name: str) -> SpladeEncoder:
        """A visitor's own model from its folder (the caller vouches that the folder is that visitor's)."""
        return self._load(ModelPreset(name=name, source=str(Path(folder).resolve())), record=None)

    def try_get(self, name_or_source: str, owned: Iterable[str | Path] = ()) -> tuple[SpladeEncoder | None, str | None]:
        """``(encoder, None)`` or ``(None, readable error)``; never raises."""
        try:
            return self.get(name_or_source, owned=owned), None
        except (ModelLoadError, ValueError) as exc:
            return None, str(exc)

    def _key(self, preset: ModelPreset) -> tuple:
        s = self.settings
        common = (s.device, s.max_length, s.precision)
        if preset.source.startswith("memory:"):
            return ("memory", preset.source, *common)
        path = Path(preset.source).expanduser()
        if path.is_dir():
            real = path.resolve()
            return ("dir", str(real), _stamp(real), *common)
        return ("hub", preset.source, preset.revision, *common)

    def _load(self, preset: ModelPreset, record: str | None) -> SpladeEncoder:
        key = self._key(preset)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                if record:
                    self._name_keys[record] = key
                return self._named_view(hit, preset.name if record else None)
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one load per checkpoint; other checkpoints load in parallel
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None:
                    return self._named_view(hit, preset.name if record else None)
            try:
                # Imported here, not at the top: it imports torch, which listing and input errors do not need.
                from .encoder import SpladeEncoder

                encoder = SpladeEncoder.load(
                    preset.source,
                    revision=preset.revision,
                    device=self.settings.device,
                    max_length=self.settings.max_length,
                    name=preset.name,
                    precision=self.settings.precision,
                )
            except ModelLoadError as exc:
                if record:
                    with self._lock:
                        self._errors[record] = (exc.reason, time.monotonic())
                raise
            folder = Path(key[1]) if key[0] == "dir" else None
            self._store(key, _Cached(encoder, encoder_nbytes(encoder), folder), record)
            return encoder

    @staticmethod
    def _named_view(hit: _Cached, name: str | None) -> SpladeEncoder:
        """The cached encoder as a preset ``name`` shows it (call under the registry lock).

        A checkpoint is cached once, under whichever name loaded it first (a preset, or a typed folder); a preset
        that points at the same checkpoint gets a view under its own name (same model, no second load), so the
        screens never show one visitor's typed path where another picked a preset. A typed source gets the cached
        encoder itself.
        """
        if name is None or name == hit.encoder.name:
            return hit.encoder
        view = hit.views.get(name)
        if view is None:
            view = hit.views[name] = hit.encoder.renamed(name)
        return view

    def _store(self, key: tuple, entry: _Cached, record: str | None) -> None:
        with self._lock:
            self.loads += 1
            self._cache[key] = entry
            self._cache.move_to_end(key)
            if record:
                self._name_keys[record] = key
                self._errors.pop(record, None)
            self._key_locks.pop(key, None)
            budget, most = self.settings.model_cache_bytes, self.settings.max_models
            while len(self._cache) > 1 and (
                len(self._cache) > most or sum(e.nbytes for e in self._cache.values()) > budget
            ):
                old_key, old = self._cache.popitem(last=False)
                logger.info("Model cache full: dropped %s (%.0f MB)", old.encoder.name, old.nbytes / 2**20)

    def put(self, name: str, encoder: SpladeEncoder, description: str = "") -> None:
        """Register an already loaded encoder under ``name`` for every visitor (tests, notebooks)."""
        preset = ModelPreset(name=name, source=f"memory:{name}", description=description)
        with self._lock:
            self._extra[name] = preset
            self._errors.pop(name, None)
        self._store(self._key(preset), _Cached(encoder, encoder_nbytes(encoder), None), name)

    def evict_under(self, folder: str | Path) -> int:
        """Drop cached encoders loaded from ``folder`` or below (a visitor's models when the visitor leaves)."""
        root = Path(folder).expanduser().resolve()
        with self._lock:
            gone = [k for k, e in self._cache.items() if e.folder is not None and _under(e.folder, [root])]
            for k in gone:
                del self._cache[k]
        if gone:
            logger.info("Dropped %d visitor model(s) under %s", len(gone), root.name)
        return len(gone)

    def refresh(self) -> None:
        """Forget recorded failures so every named model is tried again on its next use."""
        with self._lock:
            self._errors.clear()

    @property
    def cached(self) -> list[str]:
        """Names of the encoders in the LRU, least recently used first."""
        with self._lock:
            return [e.encoder.name for e in self._cache.values()]

    @property
    def cached_bytes(self) -> int:
        with self._lock:
            return sum(e.nbytes for e in self._cache.values())

    # ------------------------------------------------------------------ status
    def is_loaded(self, name: str) -> bool:
        """True when the named model's current source is in the cache."""
        preset = self._named(name)
        if preset is None:
            return False
        key = self._key(preset)
        with self._lock:
            return key in self._cache

    def status(self) -> list[ModelStatus]:
        """Every named model: loaded, failed (with its reason) or not tried yet."""
        out = []
        for name in self.names:
            preset = self.resolve(name)
            with self._lock:
                failed = self._errors.get(name)
            out.append(
                ModelStatus(
                    name=name,
                    source=preset.source,
                    loaded=self.is_loaded(name),
                    error=failed[0] if failed else None,
                    description=preset.description,
                )
            )
        return out

    def loaded_encoder(self, name: str) -> SpladeEncoder | None:
        """The named model's encoder when it is loaded (never loads it)."""
        preset = self._named(name)
        if preset is None:
            return None
        key = self._key(preset)
        with self._lock:
            hit = self._cache.get(key)
        return hit.encoder if hit is not None else None

    def facts(self) -> dict[str, dict]:
        """``{name: encoder.facts()}`` of every named model that is loaded (format, sides, fingerprint, ...)."""
        out = {}
        for name in self.names:
            encoder = self.loaded_encoder(name)
            if encoder is not None:
                out[name] = encoder.facts()
        return out

    def status_markdown(self) -> str:
        """A short table of models: loaded, failed (with the reason) or not tried yet; then the loaded ones' facts.

        A local folder is shown by its last component only (no server path is shown).
        """
        lines = ["| model | source | state |", "|---|---|---|"]
        for s in self.status():
            state = "loaded" if s.loaded else (f"**failed**: {s.error}" if s.error else "not loaded yet")
            if s.source.startswith("memory:"):
                source = "in memory"
            elif looks_like_path(s.source) or Path(s.source).is_dir():
                source = Path(s.source).name + " (local folder)"
                state = state.replace(s.source, Path(s.source).name)
            else:
                source = s.source
            lines.append(f"| {s.name} | `{source}` | {state} |")
        facts = self.facts()
        if facts:
            lines += ["", facts_markdown(facts)]
        return "\n".join(lines)


def facts_markdown(facts: dict[str, dict]) -> str:
    """A table of model facts (:meth:`SpladeEncoder.facts`): one row per model.

    Example:
        >>> row = {"format": "router", "backbone": "bert", "vocab_size": 300, "pooling": "max of log(1+relu)",
        ...        "inference_free": True, "asymmetric": True, "max_length": {"query": 512, "document": 128},
        ...        "max_active_dims": None, "fingerprint": "0123456789abcdef"}
        >>> facts_markdown({"m": row}).splitlines()[-1].split(" | ")[1:7]
        ['router', 'bert', '300', 'max of log(1+relu)', 'inference-free (token weights)', '512 / 128']
    """
    lines = [
        "| model | format | backbone | vocabulary | pooling | query side | max length (query / doc) | fingerprint |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in facts.items():
        if f["inference_free"]:
            query = "inference-free (token weights)"
        else:
            query = "own MLM or settings (asymmetric)" if f["asymmetric"] else "same as documents"
        pooling = f["pooling"] + (f", top {f['max_active_dims']} dims" if f.get("max_active_dims") else "")
        lengths = f"{f['max_length']['query']} / {f['max_length']['document']}"
        lines.append(
            f"| {name} | {f['format']} | {f['backbone']} | {f['vocab_size']:,} | {pooling} | {query} | {lengths} "
            f"| `{f['fingerprint']}` |"
        )
    return "\n".join(lines)


def default_private_root(workdir: str | Path) -> Path:
    """Where visitors' own models are kept under the app's work folder."""
    return Path(workdir) / "visitors"


__all__ = [
    "MAX_FOLDER_ENTRIES",
    "NOT_AVAILABLE",
    "ModelRegistry",
    "ModelStatus",
    "SourceRefused",
    "check_weights_size",
    "default_private_root",
    "encoder_nbytes",
    "facts_markdown",
    "hub_weights_bytes",
]

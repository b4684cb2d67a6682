"""Shared UI plumbing: the app context, model selection and message formatting."""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import gradio as gr
import pandas as pd

from ..analysis import Analyzer
from ..config import Settings, load_settings
from ..encoder import ModelLoadError, SpladeEncoder
from ..korean import StopwordRule, load_stopwords, parse_stopwords
from ..limits import Limits
from ..models import ModelRegistry, SourceRefused, default_private_root

logger = logging.getLogger(__name__)

#: Korean example queries offered in every tab.
EXAMPLE_QUERIES: list[str] = [
    "당뇨병 치료 방법",
    "전세 보증금 돌려받는 방법",
    "주택담보대출 금리 비교",
    "연말정산 의료비 공제",
    "클라우드 보안 인증",
    "여권 발급에 필요한 서류",
    "고혈압에 좋은 음식은 무엇이 있습니까?",
    "김치찌개 맛있게 끓이는 법",
]


class UserError(ValueError):
    """An input problem to show to the user as a message (never a stack trace)."""


@dataclass
class AppContext:
    """Process-wide objects shared by every visitor (read-only after start, or thread-safe).

    A visitor's own models are not here: their names and folders live in that visitor's ``gr.State``
    (a ``dict`` name -> folder, which never leaves the server), their folders under
    :meth:`visitor_dir` (a private root of the registry), and :meth:`forget_visitor` removes them.
    """

    settings: Settings
    registry: ModelRegistry
    stopwords: frozenset[str]
    workdir: Path = field(default_factory=lambda: _temp_workdir())
    limits: Limits = field(default_factory=Limits)
    start_model: str | None = None
    #: Called with a visitor's session id when they leave (e.g. a tab's index cache dropping their uploads).
    visitor_hooks: list[Callable[[str], object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.registry.add_private_root(default_private_root(self.workdir))

    @classmethod
    def create(cls, settings: Settings | None = None, registry: ModelRegistry | None = None,
               limits: Limits | None = None) -> AppContext:
        settings = settings or load_settings()
        registry = registry or ModelRegistry(settings)
        stopwords = load_stopwords(settings.stopwords_path)
        return cls(settings=settings, registry=registry, stopwords=stopwords, limits=limits or Limits.from_env())

    # ------------------------------------------------------------------ models
    def model_choices(self, visitor_models: dict[str, str] | None = None) -> list[str]:
        """Every public model name, then this visitor's own models."""
        names = list(self.registry.names)
        for name in visitor_models or {}:
            if name not in names:
                names.append(name)
        return names

    def default_model(self) -> str | None:
        """The model every picker starts on: the configured default where it loads, else the demo model.

        Decided once (the first call tries to load the default) and kept in :attr:`start_model`.
        """
        if self.start_model is not None:
            return self.start_model
        choices = self.model_choices()
        default = self.settings.default_model if self.settings.default_model in choices else None
        chosen = default
        if default is not None:
            encoder, error = self.registry.try_get(default)
            if encoder is None:
                logger.warning("Default model %s unavailable: %s", default, error)
                fallback = _demo_model_name()
                chosen = fallback if fallback in choices else default
        self.start_model = chosen or (choices[0] if choices else None)
        if self.start_model and self.start_model != self.settings.default_model:
            # every tab that reads settings.default_model now starts on the model that loads
            self.settings = replace(self.settings, default_model=self.start_model)
            logger.info("Starting every picker on %s", self.start_model)
        return self.start_model

    def rule(self, custom: frozenset[str] | None = None, use_pos_rule: bool = True) -> StopwordRule:
        return StopwordRule(custom if custom else self.stopwords, use_pos_rule=use_pos_rule)

    def encoder(self, choice: str | None, folder: str | None = None,
                visitor_models: dict[str, str] | None = None) -> SpladeEncoder:
        """The encoder for a dropdown choice, or for a typed local folder / Hub id (which wins).

        A name in ``visitor_models`` (this visitor's own models) loads from its private folder; a typed
        name or path never reaches another visitor's model (see :meth:`ModelRegistry.check_source`).

        Raises:
            UserError: nothing chosen, or the model cannot be loaded (with the reason).
        """
        folder = (folder or "").strip()
        own = dict(visitor_models or {})
        try:
            if folder:
                encoder = self.registry.get(folder, owned=own.values())
            elif choice and choice in own:
                encoder = self._own_model(choice, own[choice])
            elif (choice or "").strip():
                encoder = self.registry.get(choice or "")
            else:
                raise UserError("Pick a model, or type a local model folder.")
        except SourceRefused as exc:
            raise UserError(str(exc)) from exc
        except (ModelLoadError, ValueError) as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(
                f"{self.redact(str(exc))}\n\nType the path of a local model folder (config.json, *.safetensors, "
                "tokenizer files) in the 'local folder' box, or pick another model."
            ) from exc
        return encoder

    def owned_folders(self, visitor_models: dict[str, str] | None) -> list[str]:
        """This visitor's model folders (for :meth:`ModelRegistry.get`'s ``owned``)."""
        return list((visitor_models or {}).values())

    def _own_model(self, name: str, folder: str) -> SpladeEncoder:
        real = Path(folder).resolve()
        root = default_private_root(self.workdir).resolve()
        if root not in real.parents or not real.is_dir():
            raise UserError(f"Your model {name} is no longer available (its folder was removed); train it again.")
        return self.registry.load_private(real, name)

    def redact(self, text: str) -> str:
        """In ``public`` mode, server paths in a message become folder names (no server path is shown)."""
        if not self.settings.public:
            return text
        for source in {p.source for p in self.settings.presets} | {str(self.workdir)}:
            if source and (source.startswith(("/", "~", ".")) or Path(source).is_dir()):
                text = text.replace(source, Path(source).name)
        return text

    def show_path(self, path: str | Path) -> str:
        """A server path as shown to a visitor: in full in ``any`` mode, its last part in ``public`` mode."""
        return Path(path).name if self.settings.public else str(path)

    # ------------------------------------------------------------------ visitors
    def visitor_dir(self, session: str) -> Path:
        """The folder of one visitor's own models (created on demand)."""
        safe = "".join(c for c in session if c.isalnum() or c in "-_")[:64] or "anonymous"
        path = default_private_root(self.workdir) / safe
        path.mkdir(parents=True, exist_ok=True)
        return path

    def forget_visitor(self, session: str | None = None, visitor_models: dict[str, str] | None = None) -> None:
        """Remove a visitor's model folders and drop their encoders (the visitor left).

        Args:
            session: the visitor's session id (its whole folder goes).
            visitor_models: the visitor's ``name -> folder`` state (each folder goes).
        """
        root = default_private_root(self.workdir).resolve()
        folders = [Path(f) for f in (visitor_models or {}).values()]
        if session:
            safe = "".join(c for c in session if c.isalnum() or c in "-_")[:64]
            if safe:
                folders.append(root / safe)
        for hook in self.visitor_hooks if session else ():
            try:
                hook(session)
            except Exception:  # noqa: BLE001 - one failing hook must not keep the visitor's files
                logger.exception("A visitor-cleanup hook failed")
        for folder in folders:
            real = folder.resolve()
            if root not in real.parents:  # never remove anything outside the private root
                continue
            self.registry.evict_under(real)
            shutil.rmtree(real, ignore_errors=True)
            for zipped in (real.with_suffix(".zip"),):
                zipped.unlink(missing_ok=True)

    def analyzer(self, encoder: SpladeEncoder, rule: StopwordRule | None = None) -> Analyzer:
        return Analyzer(encoder, rule or self.rule())


def _temp_workdir() -> Path:
    """A fresh temporary folder for the app's files, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="sparse_demo_"))
    atexit.register(shutil.rmtree, path, True)
    return path


def _demo_model_name() -> str | None:
    """The bundled demo model's name, when ``sparse_demo.offline`` provides one."""
    from .. import offline

    return getattr(offline, "DEMO_MODEL_NAME", None) or getattr(offline, "LOCAL_MODEL_NAME", None)


def register_builtin_models(registry: ModelRegistry) -> None:
    """Register the bundled demo model (when shipped) and a cached locally built model for every visitor."""
    from .. import offline

    register_demo = getattr(offline, "register_demo_model", None)
    if register_demo is not None:
        try:
            register_demo(registry)
        except Exception:  # noqa: BLE001 - the app still starts; the banner lists what loads
            logger.exception("Registering the demo model failed")
    offline.register_cached_local_model(registry)


def load_custom_stopwords(path: str | None) -> frozenset[str] | None:
    """Stopwords from an uploaded file, or None when nothing was uploaded."""
    if not path:
        return None
    try:
        return parse_stopwords(Path(path).read_bytes())
    except ValueError as exc:
        raise UserError(f"Stopword file: {exc}") from exc


MAX_TOP_K = 500


def pct(x: float) -> str:
    """A ratio as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def check_top_k(top_k: float) -> int:
    """``top_k`` as an int in ``[1, MAX_TOP_K]``, else a :class:`UserError`."""
    k = int(top_k)
    if not 1 <= k <= MAX_TOP_K:
        raise UserError(f"top-k must be between 1 and {MAX_TOP_K}, got {k}.")
    return k


def model_picker(ctx: AppContext, prefix: str, label: str = "Model", value: str | None = None,
                 folder_label: str = "…or a local model folder / Hub id") -> tuple[gr.Dropdown, gr.Textbox]:
    """A preset dropdown (``#<prefix>-model``) plus a local-folder / Hub-id box that wins when filled.

    ``value`` defaults to the settings' default model (or the first choice).
    """
    choices = ctx.model_choices()
    if value is None:
        value = ctx.default_model()
    dropdown = gr.Dropdown(choices=choices, value=value, label=label, elem_id=f"{prefix}-model",
                           allow_custom_value=False)
    folder = gr.Textbox(label=folder_label, placeholder="/models/korean-sparse-v26", elem_id=f"{prefix}-folder")
    return dropdown, folder


#: Fixed choices offered before the model names in a picker, by ``elem_id``.
PICKER_PREFIX: dict[str, tuple[str, ...]] = {}


def model_dropdowns(blocks: gr.Blocks) -> list[gr.Dropdown]:
    """Every model picker of an app: dropdowns whose ``elem_id`` ends in ``-model`` / ``-models`` or is in
    :data:`PICKER_PREFIX`."""
    return [b for b in blocks.blocks.values()
            if isinstance(b, gr.Dropdown)
            and ((b.elem_id or "").endswith(("-model", "-models")) or (b.elem_id or "") in PICKER_PREFIX)]


def picker_updates(ctx: AppContext, pickers: list[gr.Dropdown], visitor_models: dict[str, str] | None) -> list:
    """``gr.update``s giving every picker the current public models plus this visitor's own.

    Wire it to ``demo.load`` (a visitor opening the page sees models built after the app started) and
    after anything that adds a model.
    """
    names = ctx.model_choices(visitor_models)
    return [gr.update(choices=list(PICKER_PREFIX.get(p.elem_id or "", ())) + names) for p in pickers]


def message(text: str, kind: str = "info") -> str:
    """A Markdown status line; ``kind`` is info, warning or error."""
    icon = {"info": "ℹ️", "warning": "⚠️", "error": "⛔"}.get(kind, "")
    return f"{icon} {text}".strip()


def write_csv(frame: pd.DataFrame, workdir: Path, stem: str) -> str:
    """Write a frame to a fresh CSV (UTF-8 with BOM so spreadsheet apps read Korean)."""
    out = Path(tempfile.mkstemp(prefix=f"{stem}_", suffix=".csv", dir=workdir)[1])
    frame.to_csv(out, index=False, encoding="utf-8-sig")
    return str(out)

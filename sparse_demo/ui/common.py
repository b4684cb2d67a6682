"""Shared UI plumbing: the app context, model selection, visitor files and message formatting.

A visitor's files live in the app's work folder (:attr:`AppContext.workdir`, a fresh temporary folder):
their own models under ``visitors/<session>/`` and their downloads under ``downloads/<session>/``
(:meth:`AppContext.download_dir`). A download is content-addressed (:func:`write_download`): the same
content clicked again reuses the same file, and a visitor keeps at most :data:`MAX_DOWNLOADS` distinct
ones. When the visitor leaves, :meth:`AppContext.forget_visitor` removes both folders, the visitor's
tuned weights and Gradio's cached copies of the visitor's files (:func:`remove_gradio_copies`), so a
departed visitor's download URL stops answering. The work folder itself goes when the process exits
(atexit, and SIGTERM / SIGINT through ``app.py``'s handlers: :meth:`AppContext.remove_workdir`).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import gradio as gr
import pandas as pd

from ..analysis import Analyzer
from ..config import Settings, load_limits, load_settings
from ..corpus import Corpus
from ..encoder import ModelLoadError, SpladeEncoder
from ..korean import DEFAULT_ANALYZER, StopwordRule, get_analyzer, load_stopwords, parse_stopwords
from ..limits import Limits
from ..models import ModelRegistry, SourceRefused, default_private_root
from ..offline import DEMO_MODEL_NAME, register_cached_local_model, register_demo_model
from ..search.corpus_files import load_sample_corpus
from ..search.weights import VisitorWeights
from ..textio import read_query_file, split_queries

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
#: The Compare tab's first query: one with a particle and an ending (에, 한), so two models that treat stopwords
#: differently (V25 and V26, or the two bundled demo styles) show it on the first click; 당뇨병 치료 방법 has none.
COMPARE_EXAMPLE: str = "여권 발급에 필요한 서류"


class UserError(ValueError):
    """An input problem to show to the user as a message (never a stack trace)."""


@dataclass
class AppContext:
    """Process-wide objects shared by every visitor (read-only after start, or thread-safe).

    A visitor's own models are not here: their names and folders live in that visitor's ``gr.State``
    (a ``dict`` name -> folder, which never leaves the server), their folders under
    :meth:`visitor_dir` (a private root of the registry), and :meth:`forget_visitor` removes them.
    The hybrid weights a visitor's Evaluate runs tuned are kept per session in :attr:`tuned_weights`
    (never shared) and go with the visitor too.
    """

    settings: Settings
    registry: ModelRegistry
    stopwords: frozenset[str]
    workdir: Path = field(default_factory=lambda: _temp_workdir())
    limits: Limits = field(default_factory=Limits)
    start_model: str | None = None
    #: Called with a visitor's session id when they leave (e.g. a tab's index cache dropping their uploads).
    visitor_hooks: list[Callable[[str], object]] = field(default_factory=list)
    tuned_weights: VisitorWeights = field(default_factory=VisitorWeights)

    def __post_init__(self) -> None:
        self.registry.add_private_root(default_private_root(self.workdir))

    @classmethod
    def create(
        cls, settings: Settings | None = None, registry: ModelRegistry | None = None, limits: Limits | None = None
    ) -> AppContext:
        settings = settings or load_settings()
        registry = registry or ModelRegistry(settings)
        stopwords = load_stopwords(settings.stopwords_path)
        return cls(settings=settings, registry=registry, stopwords=stopwords, limits=limits or load_limits())

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
                chosen = DEMO_MODEL_NAME if DEMO_MODEL_NAME in choices else default
        self.start_model = chosen or (choices[0] if choices else None)
        if self.start_model and self.start_model != self.settings.default_model:
            # every tab that reads settings.default_model now starts on the model that loads
            self.settings = replace(self.settings, default_model=self.start_model)
            logger.info("Starting every picker on %s", self.start_model)
        return self.start_model

    def rule(self, custom: frozenset[str] | None = None, use_pos_rule: bool = True) -> StopwordRule:
        return StopwordRule(custom if custom else self.stopwords, use_pos_rule=use_pos_rule)

    def encoder(
        self, choice: str | None, folder: str | None = None, visitor_models: dict[str, str] | None = None
    ) -> SpladeEncoder:
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

    def _own_model(self, name: str, folder: str) -> SpladeEncoder:
        real = Path(folder).resolve()
        root = default_private_root(self.workdir).resolve()
        if root not in real.parents or not real.is_dir():
            raise UserError(f"Your model {name} is no longer available (its folder was removed); train it again.")
        return self.registry.load_private(real, name)

    def redact(self, text: str) -> str:
        """A message as a visitor may read it. In ``public`` mode, server paths become folder names, and a
        paragraph about the search engine that carries developer instructions (its URL, how to start it, its
        environment variables) says only that the engine is unavailable (:func:`hide_developer_hints`).
        In ``any`` mode (a private deployment) the text is unchanged."""
        if not self.settings.public:
            return text
        for source in {p.source for p in self.settings.presets} | {str(self.workdir)}:
            if source and (source.startswith(("/", "~", ".")) or Path(source).is_dir()):
                text = text.replace(source, Path(source).name)
        return hide_developer_hints(text)

    def show_path(self, path: str | Path) -> str:
        """A server path as shown to a visitor: in full in ``any`` mode, its last part in ``public`` mode."""
        return Path(path).name if self.settings.public else str(path)

    # ------------------------------------------------------------------ visitors
    def visitor_dir(self, session: str) -> Path:
        """The folder of one visitor's own models (created on demand)."""
        path = default_private_root(self.workdir) / (_safe_session(session) or "anonymous")
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def downloads_root(self) -> Path:
        """The folder holding every visitor's download folder."""
        return self.workdir / "downloads"

    def download_dir(self, session: str | None) -> Path:
        """One visitor's download folder (created on demand; ``anonymous`` without a session), removed by
        :meth:`forget_visitor`. Write into it with :func:`write_download` / :func:`write_csv`."""
        path = self.downloads_root / (_safe_session(session or "") or "anonymous")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def forget_visitor(self, session: str | None = None, visitor_models: dict[str, str] | None = None) -> None:
        """Remove everything a visitor left (the visitor closed or reloaded the page).

        Their model folders (and zips) and encoders, their download folder, their tuned weights, and
        Gradio's cached copies of those files (except a copy another visitor's downloads still hold).

        Args:
            session: the visitor's session id (its model folder, downloads and tuned weights go).
            visitor_models: the visitor's ``name -> folder`` state (each folder goes).
        """
        root = default_private_root(self.workdir).resolve()
        folders = [Path(f) for f in (visitor_models or {}).values()]
        safe = _safe_session(session or "")
        if safe:
            folders.append(root / safe)
            self.tuned_weights.forget(session)
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
            zipped = real.with_suffix(".zip")
            remove_gradio_copies([*_files_under(real), zipped])
            shutil.rmtree(real, ignore_errors=True)
            zipped.unlink(missing_ok=True)
        if safe:
            downloads = (self.downloads_root / safe).resolve()
            if self.downloads_root.resolve() in downloads.parents:
                remove_gradio_copies(_files_under(downloads), keep=self._shared_download(safe))
                shutil.rmtree(downloads, ignore_errors=True)

    def _shared_download(self, safe: str):
        """``keep(digest, name)``: whether another visitor's downloads (or a shared one) hold the same file."""
        root = self.downloads_root

        def keep(digest: str, name: str) -> bool:
            pattern = f"*/{glob.escape(digest)}/{glob.escape(name)}"
            others = [p for p in root.glob(pattern) if p.parent.parent.name != safe]
            return bool(others) or (self.workdir / digest / name).exists()

        return keep

    def remove_workdir(self) -> None:
        """Remove the app's whole work folder (shutdown: SIGTERM / SIGINT / exit)."""
        shutil.rmtree(self.workdir, ignore_errors=True)

    def analyzer(self, encoder: SpladeEncoder, rule: StopwordRule | None = None) -> Analyzer:
        return Analyzer(encoder, rule or self.rule())


#: What a visitor of a ``public`` app reads instead of the search engine's connection details.
ENGINE_UNAVAILABLE = "The search engine is unavailable"
_DEV_HINT = re.compile(r"https?://|127\.0\.0\.1|localhost|scripts/|OPENSEARCH_", re.IGNORECASE)


def hide_developer_hints(text: str) -> str:
    """Each Markdown paragraph that names OpenSearch with a developer hint (a URL such as
    ``http://127.0.0.1:9200``, ``scripts/opensearch.sh start``, an ``OPENSEARCH_*`` variable) becomes
    :data:`ENGINE_UNAVAILABLE` (plus "the in-memory index is used" when the paragraph says the memory
    backend answered); what precedes "OpenSearch" in the paragraph (an icon, "Evaluation failed:") stays.

    Example:
        >>> hide_developer_hints("⚠️ OpenSearch is unavailable: OpenSearch is not reachable at "
        ...                      "http://127.0.0.1:9200. Using the in-memory backend instead.")
        '⚠️ The search engine is unavailable; the in-memory index is used.'
    """
    out = []
    for para in text.split("\n\n"):
        at = para.find("OpenSearch")
        if at >= 0 and _DEV_HINT.search(para):
            tail = "; the in-memory index is used." if "in-memory" in para else "."
            para = para[:at] + ENGINE_UNAVAILABLE + tail
        out.append(para)
    return "\n\n".join(out)


def _safe_session(session: str) -> str:
    return "".join(c for c in session if c.isalnum() or c in "-_")[:64]


def _files_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]


def _temp_workdir() -> Path:
    """A fresh temporary folder for the app's files, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="sparse_demo_"))
    atexit.register(shutil.rmtree, path, True)
    return path


def register_builtin_models(registry: ModelRegistry) -> None:
    """Register the bundled demo model (when shipped) and a cached locally built model for every visitor."""
    try:
        register_demo_model(registry)
    except Exception:  # noqa: BLE001 - the app still starts; the banner lists what loads
        logger.exception("Registering the demo model failed")
    register_cached_local_model(registry)


def load_custom_stopwords(path: str | None) -> frozenset[str] | None:
    """Stopwords from an uploaded file, or None when nothing was uploaded."""
    if not path:
        return None
    try:
        return parse_stopwords(Path(path).read_bytes())
    except ValueError as exc:
        raise UserError(f"Stopword file: {exc}") from exc


# ---------------------------------------------------------------------- inputs shared by several tabs
#: The Search tab's corpus radio (the corpus report accordion reads the same radio).
SAMPLE_LABEL = "Bundled sample (ko_sample)"
UPLOAD_LABEL = "My upload"
_sample_cache: dict[str, Corpus] = {}


def sample_corpus() -> Corpus:
    """The bundled sample corpus, loaded once (read-only, shared)."""
    if "sample" not in _sample_cache:
        _sample_cache["sample"] = load_sample_corpus()
    return _sample_cache["sample"]


def resolve_corpus(choice: str | None, uploaded: Corpus | None) -> Corpus:
    """The corpus picked in the radio: the bundled sample or this visitor's upload."""
    if choice == UPLOAD_LABEL:
        if uploaded is None:
            raise UserError(
                "Upload a corpus first (.jsonl, .csv, .tsv, or a .zip of a BEIR folder), or pick the bundled sample."
            )
        return uploaded
    return sample_corpus()


def analyzer_spec(text: str | None) -> str:
    """The canonical BM25 analyzer spec of the dropdown's value ("default" when empty).

    Raises:
        UserError: an unknown preset or tag (the message names the valid choices).
    """
    raw = (text or "").strip() or DEFAULT_ANALYZER
    try:
        return get_analyzer(raw).spec
    except ValueError as exc:
        raise UserError(f"BM25 analyzer: {exc}") from None


def collect_batch(block: str | None, upload: str | None, limits: Limits | None = None) -> tuple[list[str], str | None]:
    """Queries from an uploaded file (wins) or a pasted block, one per line, cut to the batch limit.

    Returns:
        The queries kept, and a sentence stating the cut (None when nothing was cut).

    Raises:
        UserError: nothing given. ValueError: the upload is too large or unreadable (its reader's message).
    """
    limits = limits or Limits()
    if upload:
        limits.check_upload(upload, "query file")
        queries, rows_note = limits.cut_rows(read_query_file(upload), "rows")
    else:
        queries, rows_note = split_queries(block or ""), None
        if not queries:
            raise UserError("Paste queries (one per line) or upload a .txt, .csv, .tsv or .jsonl file.")
    queries, batch_note = limits.cut_batch(queries)
    notes = " ".join(n for n in (rows_note, batch_note) if n)
    return queries, notes or None


def pct(x: float) -> str:
    """A ratio as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def model_picker(
    ctx: AppContext,
    prefix: str,
    label: str = "Model",
    value: str | None = None,
    folder_label: str = "…or a local model folder / Hub id",
) -> tuple[gr.Dropdown, gr.Textbox]:
    """A preset dropdown (``#<prefix>-model``) plus a local-folder / Hub-id box that wins when filled.

    ``value`` defaults to the settings' default model (or the first choice).
    """
    choices = ctx.model_choices()
    if value is None:
        value = ctx.default_model()
    dropdown = gr.Dropdown(
        choices=choices, value=value, label=label, elem_id=f"{prefix}-model", allow_custom_value=False
    )
    folder = gr.Textbox(label=folder_label, placeholder="/models/korean-sparse-v26", elem_id=f"{prefix}-folder")
    return dropdown, folder


#: Fixed choices offered before the model names in a picker, by ``elem_id``.
PICKER_PREFIX: dict[str, tuple[str, ...]] = {}


def model_dropdowns(blocks: gr.Blocks) -> list[gr.Dropdown]:
    """Every model picker of an app: dropdowns whose ``elem_id`` ends in ``-model`` / ``-models`` or is in
    :data:`PICKER_PREFIX`."""
    return [
        b
        for b in blocks.blocks.values()
        if isinstance(b, gr.Dropdown)
        and ((b.elem_id or "").endswith(("-model", "-models")) or (b.elem_id or "") in PICKER_PREFIX)
    ]


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


#: Distinct downloads one folder keeps (a visitor's, or the shared work folder's); the oldest beyond go.
MAX_DOWNLOADS = 32
_DIGEST = re.compile(r"[0-9a-f]{64}")


def gradio_digest(data: bytes) -> str:
    """The folder name Gradio gives a file with this content in its cache (its seeded SHA-256)."""
    from gradio.processing_utils import hash_bytes

    return hash_bytes(data)


def gradio_cache_dir() -> Path:
    """Where Gradio copies the files it serves (``GRADIO_TEMP_DIR``, else ``<tmp>/gradio``)."""
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder())


def write_download(data: bytes, folder: Path, name: str) -> str:
    """Write a download as ``folder/<digest>/<name>``, reusing the file when the same content exists.

    ``<digest>`` is the name Gradio's cache gives that content (:func:`gradio_digest`), so the same report
    clicked again neither writes a new file here nor a new copy in Gradio's cache. At most
    :data:`MAX_DOWNLOADS` contents are kept per folder: the least recently written go, with their Gradio
    copies (their links on the page stop working; newer downloads replaced them).

    Returns:
        The file's path.
    """
    digest = gradio_digest(data)
    path = Path(folder) / digest / name
    if path.is_file() and path.stat().st_size == len(data):
        os.utime(path.parent)  # most recently used
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _prune_downloads(Path(folder))
    return str(path)


def _prune_downloads(folder: Path) -> None:
    entries = [p for p in folder.iterdir() if p.is_dir() and _DIGEST.fullmatch(p.name)]
    if len(entries) <= MAX_DOWNLOADS:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for old in entries[: len(entries) - MAX_DOWNLOADS]:

        def held_elsewhere(digest: str, name: str, _old: Path = old) -> bool:  # by another visitor's folder
            return any(p.parent != _old for p in folder.parent.glob(f"*/{glob.escape(digest)}/{glob.escape(name)}"))

        remove_gradio_copies(_files_under(old), keep=held_elsewhere)
        shutil.rmtree(old, ignore_errors=True)


def remove_gradio_copies(files: Iterable[Path], keep=None) -> int:
    """Delete the copies Gradio's cache holds of ``files`` (so their URLs stop answering).

    Gradio serves a file from ``<cache>/<seeded sha256 of its bytes>/<its name>``. A file written by
    :func:`write_download` already sits in a folder named by that digest; any other file (a model zip) is
    hashed only when the cache holds a file with its name and size.

    Args:
        files: the visitor's files (still on disk).
        keep: ``keep(digest, name) -> bool``: leave that copy (another visitor holds the same file).

    Returns:
        How many cached copies were deleted.
    """
    from gradio.processing_utils import hash_file
    from gradio_client.utils import strip_invalid_filename_characters

    cache = gradio_cache_dir()
    if not cache.is_dir():
        return 0
    removed = 0
    for f in files:
        try:
            size = f.stat().st_size
        except OSError:
            continue
        name = strip_invalid_filename_characters(f.name)
        if _DIGEST.fullmatch(f.parent.name):
            candidates = [cache / f.parent.name / name]
        else:
            candidates = list(cache.glob(f"*/{glob.escape(name)}"))
        candidates = [c for c in candidates if c.is_file() and c.stat().st_size == size]
        if not candidates:
            continue
        digest = f.parent.name if _DIGEST.fullmatch(f.parent.name) else hash_file(f)
        for c in candidates:
            if c.parent.name != digest or (keep is not None and keep(digest, name)):
                continue
            c.unlink(missing_ok=True)
            removed += 1
            with contextlib.suppress(OSError):  # other files (an upload) may share the folder
                c.parent.rmdir()
    if removed:
        logger.info("Removed %d cached download(s) of a visitor who left", removed)
    return removed


def write_csv(frame: pd.DataFrame, workdir: Path, stem: str) -> str:
    """Write a frame as ``<stem>.csv`` (UTF-8 with BOM so spreadsheet apps read Korean) with
    :func:`write_download` into ``workdir`` (a visitor's :meth:`AppContext.download_dir`): the same
    content reuses the same file."""
    return write_download(frame.to_csv(index=False).encode("utf-8-sig"), Path(workdir), f"{stem}.csv")


#: The sides a text can be read with (Explore's and Compare's toggle).
SIDE_CHOICES = ("query", "document")


def side_view(encoder, side: str | None):
    """The encoder reading with ``side`` by default (a view: same model, no copy of weights)."""
    side = side or "query"
    if side not in SIDE_CHOICES:
        raise UserError(f"Side must be one of {', '.join(SIDE_CHOICES)}, got {side!r}.")
    for_side = getattr(encoder, "for_side", None)
    return for_side(side) if for_side is not None else encoder


def side_phrase(encoder, side: str) -> str:
    """``query side (token weights: no model runs)``: what reading with ``side`` runs, for the status line."""
    if not getattr(encoder, "asymmetric", False):
        return f"{side} side (the same model for queries and documents)"
    if side == "query" and getattr(encoder, "inference_free", False):
        return "query side (token weights: no model runs, one tokenizer call)"
    return f"{side} side"

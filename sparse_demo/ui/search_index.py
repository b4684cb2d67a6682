"""Search tab, corpus and index: load a visitor's upload and build (or reuse) the index a search needs.

The handlers (``load_upload``, ``build_search_index``, ``backend_note``) are plain functions returning
dataclasses with a Markdown ``status``; :func:`sparse_demo.ui.search.build_tab` wires them to widgets
and :func:`sparse_demo.ui.search.run_search` gets its index through :func:`_index_for_search`. Built
indexes live in one :class:`~sparse_demo.search.SearchSession` per app (shared by every visitor, keyed
by corpus content, the model's checkpoint fingerprint, the BM25 analyzer and the backend).

Limits (``ctx.limits``, :class:`sparse_demo.limits.Limits`): an uploaded corpus over ``max_upload_bytes``,
``max_unpacked_bytes``, ``max_docs`` documents or ``max_doc_chars`` characters in one document (named by
id) is refused with a message naming the limit and its variable. The index cache is bounded by
``max_indexes`` and ``index_cache_bytes``; an index dropped from it is rebuilt by the next search. An
upload is tagged with its visitor's session: its indexes are built under ``max_index_seconds`` and
dropped when the visitor leaves.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .. import search as svc
from ..corpus import Corpus
from ..encoder.windows import WindowSettings
from ..progress import Progress
from .common import AppContext, UserError, analyzer_spec, message, resolve_corpus

logger = logging.getLogger(__name__)

#: The Search tab's choices for documents longer than the model reads (label -> window mode).
WINDOW_CHOICES = {
    "whole document: max over windows": "max",
    "whole document: best window (passages)": "passages",
    "first window only (truncate)": "first",
}


# ---------------------------------------------------------------------- results
@dataclass
class UploadResult:
    status: str
    corpus: Corpus | None


@dataclass
class IndexResult:
    status: str
    key: svc.IndexKey | None = None


def _describe(corpus: Corpus) -> str:
    extra = f", {len(corpus.queries)} queries with {len(corpus.qrels)} judged" if corpus.queries else ""
    return f"**{corpus.name}**: {len(corpus):,} documents{extra}"


# ---------------------------------------------------------------------- handlers
def load_upload(ctx: AppContext, path: str | None, owner: str | None = None) -> UploadResult:
    """Load an uploaded corpus (.jsonl / .csv / .tsv / .zip of a BEIR folder) under ``ctx.limits``.

    ``owner`` (the visitor's session id) tags the corpus: its indexes are built under
    ``SPARSE_DEMO_MAX_INDEX_SECONDS`` and dropped when the visitor leaves.
    """
    if not path:
        return UploadResult(message("No file uploaded.", "warning"), None)
    try:
        ctx.limits.check_upload(path, "corpus file")
        corpus = svc.load_corpus_file(path, workdir=ctx.workdir, limits=ctx.limits)
        check_corpus_rows(corpus, ctx.limits.max_rows)
        corpus.owner = owner or "anonymous upload"
    except ValueError as exc:
        return UploadResult(message(f"Corpus upload: {exc}", "error"), None)
    except Exception as exc:  # noqa: BLE001 - show, log, keep the app alive
        logger.exception("Corpus upload failed")
        return UploadResult(message(f"Corpus upload failed: {exc}", "error"), None)
    lines = [message(f"Loaded {_describe(corpus)}. Build the index or search.", "info")]
    lines += [message(n, "warning") for n in (corpus.notes if corpus is not None else ())]
    return UploadResult("\n\n".join(lines), corpus)


def check_corpus_rows(corpus: Corpus, max_rows: int) -> Corpus:
    """``corpus`` unchanged, or a ValueError when it holds more than ``max_rows`` documents.

    Refused rather than cut: a cut corpus would silently drop judged passages and change every score.
    """
    if len(corpus) > max_rows:
        raise ValueError(
            f"the corpus has {len(corpus):,} documents; the limit is {max_rows:,} per upload "
            "(SPARSE_DEMO_MAX_ROWS). Upload a smaller corpus."
        )
    return corpus


def backend_note(backend: str | None, public: bool = False) -> str:
    """What picking a backend means right now (OpenSearch: reachable or not).

    ``public``: a public Space's visitor reads no developer instructions (URL, start script), only whether
    the search engine can be used.
    """
    if backend != "opensearch":
        return message("In-memory backend: BM25 and the sparse inverted index live in this process.", "info")
    ok, text = svc.opensearch_status()
    if public:
        return (
            message("The search engine (OpenSearch) is reachable.", "info")
            if ok
            else message("The search engine is unavailable; the in-memory index is used.", "warning")
        )
    if ok:
        return message(text, "info")
    return message(f"{text} Searches will fall back to the in-memory backend.", "warning")


def _progress_fn(progress: Any) -> Progress | None:
    if progress is None:
        return None

    def report(fraction: float, desc: str) -> None:
        progress(fraction, desc=desc)

    return report


def window_settings(windows: str | None, stride: float | None = None) -> WindowSettings:
    """The :class:`WindowSettings` of the tab's widgets (a label of :data:`WINDOW_CHOICES` or a mode).

    Raises:
        ValueError: an unknown choice or a stride that is not a whole number of tokens >= 1.
    """
    mode = WINDOW_CHOICES.get(windows or "", windows or "max")
    if stride is not None and stride != 0 and (float(stride) != int(stride) or stride < 1):
        raise ValueError(f"the window stride must be a whole number of tokens >= 1 (0: automatic), got {stride}")
    return WindowSettings(mode, int(stride) if stride else None)


def _index_status(index: svc.SearchIndex, notes: list[str]) -> str:
    st = index.stats
    model = index.model_name or "none (BM25 only)"
    where = f" (`{st.index_name}`)" if st.index_name else ""
    head = (
        f"**Index ready**: {_describe(index.corpus)}, model **{model}**, backend "
        f"**{index.backend_name}**{where}, BM25 analyzer `{index.analyzer}`."
    )
    if not st.reused and st.encode_seconds:
        head += (
            f" Encoded in {st.encode_seconds:.1f} s, indexed in {st.index_seconds:.2f} s; "
            f"{st.avg_tokens:.0f} sparse tokens per document on average."
        )
    if index.encoder is not None:
        window = index.encoder.max_length
        head += f" Long documents: {index.doc_windows.describe(window)}."
        if st.windows is not None and not st.windows.long:
            head += f" No document is longer than the model's {window} tokens."
    lines = [head]
    lines += [message(n, "warning") for n in index.corpus.notes]
    for n in notes:
        lines.append(message(n, "info" if n.startswith(("Built", "Reused")) else "warning"))
    return "\n\n".join(lines)


def build_search_index(
    ctx: AppContext,
    session: svc.SearchSession,
    corpus_choice: str | None,
    uploaded: Corpus | None,
    model_choice: str | None,
    folder: str | None = None,
    backend: str = "memory",
    visitor_models: dict[str, str] | None = None,
    progress: Any = None,
    analyzer: str | None = None,
    windows: str | None = None,
    stride: float | None = None,
) -> IndexResult:
    """Build (or reuse) the index for the chosen corpus, model, backend, BM25 analyzer and long-document
    reading (``windows``: a :data:`WINDOW_CHOICES` label or mode, ``stride``: tokens, 0/None automatic)."""
    try:
        spec = analyzer_spec(analyzer)
        doc_windows = window_settings(windows, stride)
        corpus = resolve_corpus(corpus_choice, uploaded)
        encoder = ctx.encoder(model_choice, folder, visitor_models)
        index, notes = session.get_or_build(
            corpus,
            encoder,
            backend or "memory",
            progress=_progress_fn(progress),
            analyzer=spec,
            doc_windows=doc_windows,
            disk_cache=not _visitors_own(model_choice, folder, visitor_models),
        )
    except (UserError, ValueError) as exc:
        return IndexResult(message(str(exc), "error"))
    except Exception as exc:  # noqa: BLE001
        logger.exception("Index build failed")
        return IndexResult(ctx.redact(message(f"Building the index failed: {exc}", "error")))
    return IndexResult(ctx.redact(_index_status(index, notes)), index.key)


def _index_for_search(
    ctx: AppContext,
    session: svc.SearchSession,
    corpus: Corpus,
    method: str,
    model_choice: str | None,
    folder: str | None,
    backend: str,
    visitor_models: dict[str, str] | None,
    progress: Progress | None,
    analyzer: str = "default",
    doc_windows: WindowSettings | None = None,
) -> tuple[svc.SearchIndex, list[str]]:
    """The index a search needs; BM25 never waits for the model to encode the corpus."""
    windows = doc_windows or svc.DEFAULT_DOC_WINDOWS
    if method == "bm25":
        try:
            encoder = ctx.encoder(model_choice, folder, visitor_models)
        except UserError:
            encoder = None
        if encoder is not None:
            found = session.get(session.key_for(corpus, encoder, backend, analyzer=analyzer, doc_windows=windows))
            if found is not None:
                return found, []
        return session.get_or_build(corpus, None, backend, progress=progress, analyzer=analyzer)
    encoder = ctx.encoder(model_choice, folder, visitor_models)
    return session.get_or_build(
        corpus,
        encoder,
        backend,
        progress=progress,
        analyzer=analyzer,
        doc_windows=windows,
        disk_cache=not _visitors_own(model_choice, folder, visitor_models),
    )


def _visitors_own(model_choice: str | None, folder: str | None, visitor_models: dict[str, str] | None) -> bool:
    """Whether the picked model is one the visitor trained here (its vectors are never kept on disk)."""
    return not (folder or "").strip() and bool(model_choice) and model_choice in (visitor_models or {})

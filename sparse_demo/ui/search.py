"""Search tab: index a corpus, search it with BM25 / sparse / hybrid, and see why a hit matched.

The handlers (``load_upload``, ``build_search_index``, ``run_search``, ``explain_hit``,
``backend_note``) are plain functions returning dataclasses with a Markdown ``status``;
``build_tab`` only wires them to widgets. Built indexes live in one
:class:`~sparse_demo.search.SearchSession` per app (shared by every visitor, keyed by corpus
content, the model's checkpoint fingerprint, the BM25 analyzer and the backend); a visitor's
uploaded corpus lives in ``gr.State``. Passages are rendered by :mod:`sparse_demo.ui.render`; a
rendering failure shows the plain passage and a warning, never a failed search.

The BM25 analyzer dropdown takes a preset (``default``, ``all``, ``nori``) or typed Kiwi stop-tag
prefixes (``J,E,XS``). Until a visitor moves the weight slider, a hybrid search uses the weight the
Evaluate tab tuned (in this visitor's session) for this model and corpus, else the one the model folder recommends
(``sparse_demo.json``), else 0.5 (:func:`sparse_demo.search.resolve_weight`); the status says which,
and the slider moves there. The "Corpus report" accordion (:mod:`sparse_demo.ui.corpus_report`)
reads this tab's pickers.

Limits (``ctx.limits``, :class:`sparse_demo.limits.Limits`): a query over ``max_query_chars`` or a top-k over
``max_top_k`` is refused with a message; an uploaded corpus over ``max_upload_bytes``, ``max_unpacked_bytes``,
``max_docs`` documents or ``max_doc_chars`` characters in one document (named by id) is refused with
a message naming the limit and its variable. The index cache is bounded by ``max_indexes`` and
``index_cache_bytes``; an index dropped from it is rebuilt by the next search. An upload is tagged
with its visitor's session: its indexes are built under ``max_index_seconds`` and dropped when the
visitor leaves.
Building and searching run under ZeroGPU's ``spaces.GPU`` where that exists (:func:`sparse_demo.space.gpu`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import altair as alt
import gradio as gr
import pandas as pd

from .. import search as svc
from ..corpus import Corpus
from ..encoder.windows import WindowSettings
from ..formatting import EMPTY_HEADER, display_frame, empty_frame, fmt_number
from ..progress import Progress
from ..space import gpu
from .common import (
    EXAMPLE_QUERIES,
    SAMPLE_LABEL,
    UPLOAD_LABEL,
    AppContext,
    UserError,
    analyzer_spec,
    message,
    model_picker,
    resolve_corpus,
)
from .corpus_report import build_accordion
from .links import LinkTarget
from .plots import fit_width, safe_chart
from .render import passage_html, plain_passage_html
from .search_opensearch import run_sparse_vector_report, two_phase_settings

logger = logging.getLogger(__name__)

RESULT_COLUMNS = ["rank", "gold", "id", "title", "score", "bm25_score", "bm25_rank", "sparse_score", "sparse_rank"]
EXPLAIN_COLUMNS = ["token", "query_weight", "doc_weight", "product"]
#: The Search tab's choices for documents longer than the model reads (label -> window mode).
WINDOW_CHOICES = {
    "whole document: max over windows": "max",
    "whole document: best window (passages)": "passages",
    "first window only (truncate)": "first",
}
METHOD_CHOICES = [
    ("Hybrid (BM25 + sparse)", "hybrid"),
    ("Sparse (dot product)", "sparse"),
    ("BM25 (Kiwi morphemes)", "bm25"),
]
FUSION_CHOICES = [("Min-max, weighted mean", "minmax"), ("RRF (rank constant 60)", "rrf")]
BACKEND_CHOICES = [("In memory", "memory"), ("OpenSearch", "opensearch")]
#: BM25 analyzer presets offered in the dropdown (a typed comma-separated stop-tag list is accepted too).
ANALYZER_CHOICES = [("default: content morphemes", "default"), ("all morphemes", "all"), ("nori's stop tags", "nori")]
CHART_TOKENS = 20
EMPTY_RESULTS = "Type a query and press Search: the ranked passages appear here; select one to see why it matched."
EMPTY_EXPLAIN = "Search, then select a result: each token's query weight × document weight appears here."


# ---------------------------------------------------------------------- results
@dataclass
class UploadResult:
    status: str
    corpus: Corpus | None


@dataclass
class IndexResult:
    status: str
    key: svc.IndexKey | None = None


@dataclass
class ExplainResult:
    status: str
    passage: str
    table: pd.DataFrame
    chart: object | None
    explanation: svc.Explanation | None = None


@dataclass
class SearchTabResult:
    status: str
    table: pd.DataFrame
    passage: str
    explain: ExplainResult
    outcome: svc.SearchOutcome | None = None


def _empty_results() -> pd.DataFrame:
    return pd.DataFrame(columns=RESULT_COLUMNS)


def _empty_explain(status: str = "") -> ExplainResult:
    return ExplainResult(status, "", pd.DataFrame(columns=EXPLAIN_COLUMNS), None)


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


def _search_status(outcome: svc.SearchOutcome, index: svc.SearchIndex, notes: list[str], weight_note: str = "") -> str:
    how = {"bm25": "BM25", "sparse": "sparse"}.get(outcome.method, "hybrid")
    if outcome.method == "hybrid":
        how += (
            f" (min-max, sparse weight {outcome.weight:.2f}{'; ' + weight_note if weight_note else ''})"
            if outcome.fusion == "minmax"
            else " (RRF, rank constant 60)"
        )
        if outcome.fused_by and outcome.fused_by.startswith("server"):
            how += f", fused by OpenSearch (search pipeline `{outcome.fused_by.split(': ', 1)[-1]}`)"
        elif outcome.fused_by:
            how += ", fused here"
    sparse_path = getattr(index.backend, "has_neural_plugin", None)
    if outcome.method != "bm25" and sparse_path is not None:
        how += " · sparse leg `neural_sparse`" if sparse_path() else " · sparse leg `rank_feature` clauses"
    lines = [
        f"**{len(outcome.hits)} hits** in **{outcome.total_ms:.1f} ms** (query encoding {outcome.encode_ms:.1f} ms, "
        f"search + fusion {outcome.search_ms:.1f} ms) · {how} · backend **{outcome.backend}** · model "
        f"**{index.model_name or 'none (BM25 only)'}** · BM25 analyzer `{index.analyzer}` · "
        f"{len(index.corpus):,} documents."
    ]
    if outcome.gold_query_id:
        lines.append(
            f"Query `{outcome.gold_query_id}` of the corpus: {outcome.gold_found}/{outcome.gold_total} judged "
            "relevant passages in these results (marked ✅)."
        )
    if outcome.query_terms:
        lines.append("BM25 terms: " + " ".join(f"`{t}`" for t in outcome.query_terms))
    if outcome.query_vector:
        lines.append(f"Top query tokens: {svc.as_mapping(outcome.query_vector)}")
    for n in [*notes, *outcome.notes]:
        if n.startswith("Reused"):
            continue
        lines.append(message(n, "info" if n.startswith("Built") else "warning"))
    if not outcome.hits:
        lines.append(message("No document matched this query.", "warning"))
    return "\n\n".join(lines)


def run_search(
    ctx: AppContext,
    session: svc.SearchSession,
    query: str | None,
    corpus_choice: str | None,
    uploaded: Corpus | None,
    model_choice: str | None,
    folder: str | None = None,
    backend: str = "memory",
    method: str = "hybrid",
    fusion: str = "minmax",
    weight: float | None = 0.5,
    top_k: int = 10,
    visitor_models: dict[str, str] | None = None,
    progress: Any = None,
    analyzer: str | None = None,
    tuned: svc.TunedWeights | None = None,
    windows: str | None = None,
    stride: float | None = None,
    two_phase: Any = None,
) -> SearchTabResult:
    """Search (building the index first when needed) and explain the top hit.

    ``weight=None`` means the user has not chosen one: the weight the Evaluate tab tuned for this model
    and corpus in this visitor's ``tuned`` weights applies, else the model folder's recommended one
    (``sparse_demo.json``), else 0.5
    (:func:`sparse_demo.search.resolve_weight`); the status says which (e.g. "weight w recommended by
    the model card"). A query longer than ``ctx.limits.max_query_chars`` is refused with a message.
    """
    try:
        text = (query or "").strip()
        if not text:
            raise UserError("The query is empty: type a question or keywords, e.g. 당뇨병 치료 방법.")
        ctx.limits.check_query(text)
        k = ctx.limits.check_top_k(top_k)
        spec = analyzer_spec(analyzer)
        doc_windows = window_settings(windows, stride)
        corpus = resolve_corpus(corpus_choice, uploaded)
        report = _progress_fn(progress)
        index, notes = _index_for_search(
            ctx,
            session,
            corpus,
            method,
            model_choice,
            folder,
            backend or "memory",
            visitor_models,
            report,
            spec,
            doc_windows,
        )
        chosen = svc.resolve_weight(
            index.encoder, None if weight is None else float(weight), corpus=index.corpus, tuned=tuned
        )
        outcome, used = session.search(
            index,
            text,
            progress=report,
            method=method,
            k=k,
            fusion=fusion,
            weight=chosen.weight,
            max_query_chars=ctx.limits.max_query_chars,
            **({"two_phase": two_phase} if two_phase is not None else {}),
        )
    except (UserError, ValueError) as exc:
        return SearchTabResult(message(str(exc), "error"), _empty_results(), "", _empty_explain())
    except Exception as exc:  # noqa: BLE001
        logger.exception("Search failed")
        return SearchTabResult(
            ctx.redact(message(f"Search failed: {exc}", "error")), _empty_results(), "", _empty_explain()
        )
    table = pd.DataFrame(svc.frame_rows(outcome.hits), columns=RESULT_COLUMNS)
    status = ctx.redact(_search_status(outcome, used, notes, "" if chosen.source == "user" else chosen.label))
    first = explain_hit(session, outcome, 0) if outcome.hits else _empty_explain()
    first.status = ctx.redact(first.status)
    return SearchTabResult(status, table, first.passage, first, outcome)


def contribution_chart(frame: pd.DataFrame, title: str = "") -> alt.Chart:
    """Bars of per-token products ``query weight × doc weight`` (largest first)."""
    return fit_width(
        alt.Chart(frame, title=title)
        .mark_bar(color="#2f6fdf")
        .encode(
            x=alt.X("product:Q", title="query weight × document weight"),
            y=alt.Y("token:N", sort="-x", title=None),
            tooltip=EXPLAIN_COLUMNS,
        )
        .properties(height=max(120, 18 * len(frame)))
    )


def explain_hit(session: svc.SearchSession, outcome: svc.SearchOutcome | None, row: int | None) -> ExplainResult:
    """'Why did this match': per-token contributions of one hit, its passage highlighted."""
    if outcome is None or not outcome.hits:
        return _empty_explain(message("Search first, then select a result row.", "info"))
    if row is None or not 0 <= int(row) < len(outcome.hits):
        return _empty_explain(message(f"Pick a row between 1 and {len(outcome.hits)}.", "warning"))
    hit = outcome.hits[int(row)]
    index = session.get(outcome.key)
    if index is None:
        return _empty_explain(
            message(
                "That index was dropped from the shared index cache (SPARSE_DEMO_MAX_INDEXES, "
                "SPARSE_DEMO_INDEX_CACHE_MB); press Search again to rebuild it.",
                "warning",
            )
        )
    try:
        exp, _, notes = session.explain(index, hit.id, outcome.query)
    except (KeyError, ValueError) as exc:
        return _empty_explain(message(str(exc), "error"))
    except Exception as exc:  # noqa: BLE001
        logger.exception("Explain failed")
        return _empty_explain(message(f"Explaining failed: {exc}", "error"))
    frame = pd.DataFrame(exp.rows(), columns=EXPLAIN_COLUMNS)
    if index.encoder is None:
        lines = [
            f"**{hit.id}**: BM25-only index, no sparse contributions. Shared morphemes: "
            + (", ".join(f"`{t}`" for t in exp.matched_terms) or "none")
        ]
    else:
        top = frame.head(3)
        share = (float(top["product"].sum()) / exp.sparse_score) if exp.sparse_score > 0 else 0.0
        lines = [
            f"**Why {hit.id} matched**: sparse score {fmt_number(exp.sparse_score)} = sum of {len(frame)} token "
            "products; "
            f"the top 3 tokens give {100 * share:.1f}%. Shared BM25 morphemes: "
            + (", ".join(f"`{t}`" for t in exp.matched_terms) or "none")
            + "."
        ]
        if exp.windows:
            how = "scored by its best window" if index.doc_windows.mode == "passages" else "the max over its windows"
            best = (
                f"; window {exp.best_window + 1} gives the most (marked in the passage)"
                if exp.best_window is not None
                else ""
            )
            lines.append(
                f"The model read this document in {len(exp.windows)} windows ({how}); the `window` column says "
                f"which window each token's weight came from{best}."
            )
    if (agreement := exp.engine_agreement()) is not None:
        lines.append(agreement)
    lines += [message(n, "warning") for n in notes]
    chart = (
        safe_chart(contribution_chart, frame.head(CHART_TOKENS), f"Token contributions: {hit.id}")
        if len(frame)
        else None
    )
    try:
        passage = passage_html(hit, exp)
    except Exception as exc:  # noqa: BLE001 - a highlighting bug must never hide the results
        logger.exception("Highlighting %s failed", hit.id)
        lines.append(message(f"Highlighting this passage failed ({exc}); it is shown without marks.", "warning"))
        passage = plain_passage_html(hit)
    return ExplainResult("\n\n".join(lines), passage, frame, chart, exp)


# ---------------------------------------------------------------------- widgets
def build_tab(ctx: AppContext, visitor_models: gr.State) -> LinkTarget:
    """Widgets of the Search tab (call inside ``with gr.Tab(...)``); returns what links to it need (a link
    searches the bundled sample with the tab's start settings: hybrid, min-max, the model's advised weight)."""
    session = svc.SearchSession.from_limits(ctx.limits)  # shared by every visitor of this app
    ctx.visitor_hooks.append(session.forget_owner)  # a visitor's upload indexes go when they leave
    uploaded = gr.State(None)  # this visitor's uploaded Corpus
    last = gr.State(None)  # this visitor's last SearchOutcome (for row selection)
    weight_moved = gr.State(False)  # has this visitor moved the weight slider? (else: the model's advice)
    with gr.Row():
        with gr.Column(scale=3):
            query = gr.Textbox(
                label="Query",
                value=EXAMPLE_QUERIES[0],
                lines=2,
                elem_id="search-query",
                placeholder="한국어 질의를 입력하세요, e.g. 당뇨병 치료 방법",
            )
            gr.Examples(EXAMPLE_QUERIES, inputs=[query], label="Examples")
            with gr.Row():
                method = gr.Radio(METHOD_CHOICES, value="hybrid", label="Method", elem_id="search-method")
                fusion = gr.Radio(FUSION_CHOICES, value="minmax", label="Fusion", elem_id="search-fusion")
            with gr.Row():
                weight = gr.Slider(
                    0.0,
                    1.0,
                    value=0.5,
                    step=0.05,
                    elem_id="search-weight",
                    label="Sparse weight w (min-max fusion; BM25 gets 1 − w)",
                )
                top_k = gr.Slider(1, ctx.limits.max_top_k, value=10, step=1, label="top-k", elem_id="search-topk")
        with gr.Column(scale=2):
            corpus_choice = gr.Radio(
                [SAMPLE_LABEL, UPLOAD_LABEL], value=SAMPLE_LABEL, label="Corpus", elem_id="search-corpus"
            )
            upload = gr.File(
                label="Upload a corpus: .jsonl / .csv / .tsv (id, text, optional title) or a .zip of a BEIR folder",
                file_types=[".jsonl", ".csv", ".tsv", ".zip"],
                elem_id="search-upload",
            )
            backend = gr.Radio(BACKEND_CHOICES, value="memory", label="Backend", elem_id="search-backend")
            analyzer = gr.Dropdown(
                ANALYZER_CHOICES,
                value="default",
                allow_custom_value=True,
                label="BM25 analyzer (or type Kiwi stop-tag prefixes, e.g. J,E,XS)",
                elem_id="search-analyzer",
            )
            with gr.Row():
                windows = gr.Dropdown(
                    list(WINDOW_CHOICES),
                    value=next(iter(WINDOW_CHOICES)),
                    label="Documents longer than the model reads",
                    elem_id="search-windows",
                )
                stride = gr.Number(
                    value=0,
                    precision=0,
                    minimum=0,
                    label="Window stride in tokens (0: three quarters of the window)",
                    elem_id="search-stride",
                )
            model, folder = model_picker(ctx, "search")
            with gr.Accordion("OpenSearch options: two-phase search, sparse_vector compatibility", open=False):
                two_phase_on = gr.Checkbox(
                    value=False,
                    label="Two phases (only on a cluster with the neural-search plugin)",
                    elem_id="search-two-phase",
                )
                with gr.Row():
                    prune_ratio = gr.Number(
                        value=0.4, minimum=0, maximum=0.99, label="prune_ratio", elem_id="search-tp-prune"
                    )
                    expansion_rate = gr.Number(
                        value=5.0, minimum=1, maximum=100, label="expansion_rate", elem_id="search-tp-expansion"
                    )
                    max_window = gr.Number(
                        value=10000,
                        precision=0,
                        minimum=50,
                        maximum=100000,
                        label="max_window_size",
                        elem_id="search-tp-window",
                    )
                sv_button = gr.Button(
                    "sparse_vector compatibility (OpenSearch 3.3+): what folding ids into 0..32767 costs this model",
                    size="sm",
                    elem_id="search-sv-report",
                )
                sv_engine = gr.Checkbox(
                    value=False,
                    label="Also measure it on the OpenSearch node (3.3+ with neural-search; a temporary index)",
                    elem_id="search-sv-engine",
                )
                sv_report = gr.Markdown(elem_id="search-sv-report-out")
    with gr.Row():
        index_btn = gr.Button("Build index", elem_id="search-index")
        run = gr.Button("Search", variant="primary", elem_id="search-run")
    index_status = gr.Markdown(elem_id="search-index-status")
    status = gr.Markdown(elem_id="search-status")
    results = gr.Dataframe(
        value=empty_frame(EMPTY_RESULTS),
        label="Results (select a row to see why it matched)",
        elem_id="search-results",
        interactive=False,
        wrap=True,
    )
    passage = gr.HTML(elem_id="search-passage")
    explain_status = gr.Markdown(elem_id="search-explain-status")
    with gr.Row():
        explain_table = gr.Dataframe(
            value=empty_frame(EMPTY_EXPLAIN),
            label="Per-token contributions to the sparse score",
            elem_id="search-explain-table",
            interactive=False,
            wrap=True,
        )
        explain_chart = gr.Plot(label="Contributions", elem_id="search-explain-chart")
    build_accordion(
        ctx,
        session,
        corpus_choice=corpus_choice,
        uploaded=uploaded,
        model=model,
        folder=folder,
        backend=backend,
        visitor_models=visitor_models,
        analyzer=analyzer,
    )

    def on_upload(path, request: gr.Request):
        r = load_upload(ctx, path, getattr(request, "session_hash", None))
        choice = UPLOAD_LABEL if r.corpus is not None else gr.update()
        return r.status, r.corpus, choice

    upload.upload(on_upload, [upload], [index_status, uploaded, corpus_choice])
    backend.input(lambda b: backend_note(b, ctx.settings.public), [backend], [index_status])

    def on_method(m, f):
        return gr.update(interactive=m == "hybrid"), gr.update(interactive=m == "hybrid" and f == "minmax")

    method.change(on_method, [method, fusion], [fusion, weight])
    fusion.change(on_method, [method, fusion], [fusion, weight])

    def on_index(choice, up, model_, folder_, backend_, vm, analyzer_, windows_, stride_, progress=gr.Progress()):
        return build_search_index(
            ctx, session, choice, up, model_, folder_, backend_, vm, progress, analyzer_, windows_, stride_
        ).status

    index_btn.click(
        gpu(on_index, duration=300),
        [corpus_choice, uploaded, model, folder, backend, visitor_models, analyzer, windows, stride],
        [index_status],
    )
    weight.input(lambda: True, None, [weight_moved])

    def on_search(
        q,
        choice,
        up,
        model_,
        folder_,
        backend_,
        m,
        f,
        w,
        k,
        vm,
        analyzer_,
        moved,
        windows_,
        stride_,
        tp_on,
        tp_prune,
        tp_expansion,
        tp_window,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        mine = ctx.tuned_weights.peek(getattr(request, "session_hash", None))  # this visitor's Evaluate weights
        try:
            two_phase = two_phase_settings(tp_on, tp_prune, tp_expansion, tp_window)
        except UserError as exc:
            empty = _empty_explain()
            return (
                message(str(exc), "error"),
                display_frame(_empty_results(), EMPTY_RESULTS),
                "",
                empty.status,
                display_frame(empty.table, EMPTY_EXPLAIN),
                empty.chart,
                None,
                gr.update(),
            )
        r = run_search(
            ctx,
            session,
            q,
            choice,
            up,
            model_,
            folder_,
            backend_,
            m,
            f,
            w if moved else None,
            k,
            vm,
            progress,
            analyzer_,
            mine,
            windows_,
            stride_,
            two_phase,
        )
        ex = r.explain
        used = r.outcome.weight if r.outcome is not None and r.outcome.weight is not None else None
        slider = gr.update(value=used) if used is not None and not moved else gr.update()
        return (
            r.status,
            display_frame(r.table, EMPTY_RESULTS),
            r.passage,
            ex.status,
            display_frame(ex.table, EMPTY_EXPLAIN),
            ex.chart,
            r.outcome,
            slider,
        )

    search_inputs = [
        query,
        corpus_choice,
        uploaded,
        model,
        folder,
        backend,
        method,
        fusion,
        weight,
        top_k,
        visitor_models,
        analyzer,
        weight_moved,
        windows,
        stride,
        two_phase_on,
        prune_ratio,
        expansion_rate,
        max_window,
    ]
    search_outputs = [status, results, passage, explain_status, explain_table, explain_chart, last, weight]

    def on_sv_report(choice, up, model_, folder_, vm, engine, progress=gr.Progress()):
        return run_sparse_vector_report(ctx, choice, up, model_, folder_, vm, _progress_fn(progress), bool(engine))

    sv_button.click(
        gpu(on_sv_report, duration=300),
        [corpus_choice, uploaded, model, folder, visitor_models, sv_engine],
        [sv_report],
    )
    search_fn = gpu(on_search, duration=300)  # a search may build the index first
    run.click(search_fn, search_inputs, search_outputs)
    query.submit(search_fn, search_inputs, search_outputs)

    def on_select(outcome, shown, evt: gr.SelectData):
        if shown is None or EMPTY_HEADER in getattr(shown, "columns", []):  # no results shown (cleared)
            outcome = None
        idx = evt.index
        row = idx[0] if isinstance(idx, (list, tuple)) else idx
        r = explain_hit(session, outcome, row)
        r.status = ctx.redact(r.status)
        return r.passage, r.status, display_frame(r.table, EMPTY_EXPLAIN), r.chart

    results.select(on_select, [last, results], [passage, explain_status, explain_table, explain_chart])

    def answer(text, picked, vm, request):
        (choice, folder_), *_ = picked
        args = (text, SAMPLE_LABEL, None, choice, folder_, "memory", "hybrid", "minmax", 0.5, 10, vm, "default")
        return list(on_search(*args, False, request, progress=None))

    return LinkTarget("search", query, [(model, folder)], search_outputs, answer, [model.value], [run, query])

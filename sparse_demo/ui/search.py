"""Search tab: index a corpus, search it with BM25 / sparse / hybrid, and see why a hit matched.

The handlers (``run_search``, ``explain_hit`` here; ``load_upload``, ``build_search_index``,
``backend_note`` in :mod:`sparse_demo.ui.search_index`, re-exported here so ``search.X`` keeps working;
the OpenSearch options in :mod:`sparse_demo.ui.search_opensearch`) are plain functions returning
dataclasses with a Markdown ``status``; ``build_tab`` only wires them to widgets. Built indexes live in
one :class:`~sparse_demo.search.SearchSession` per app (shared by every visitor, keyed by corpus
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
``max_top_k`` is refused with a message; the limits of an uploaded corpus and of the index cache are
described in :mod:`sparse_demo.ui.search_index`.
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
from ..formatting import EMPTY_HEADER, display_frame, empty_frame, fmt_number
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
from .search_index import (
    WINDOW_CHOICES,
    IndexResult,
    UploadResult,
    _index_for_search,
    _progress_fn,
    backend_note,
    build_search_index,
    check_corpus_rows,
    load_upload,
    window_settings,
)
from .search_opensearch import run_sparse_vector_report, two_phase_settings

__all__ = [
    "ANALYZER_CHOICES",
    "BACKEND_CHOICES",
    "CHART_TOKENS",
    "EMPTY_EXPLAIN",
    "EMPTY_RESULTS",
    "EXPLAIN_COLUMNS",
    "FUSION_CHOICES",
    "METHOD_CHOICES",
    "RESULT_COLUMNS",
    "WINDOW_CHOICES",
    "ExplainResult",
    "IndexResult",
    "SearchTabResult",
    "UploadResult",
    "backend_note",
    "build_search_index",
    "build_tab",
    "check_corpus_rows",
    "contribution_chart",
    "explain_hit",
    "load_upload",
    "run_search",
    "window_settings",
]

logger = logging.getLogger(__name__)


RESULT_COLUMNS = ["rank", "gold", "id", "title", "score", "bm25_score", "bm25_rank", "sparse_score", "sparse_rank"]
EXPLAIN_COLUMNS = ["token", "query_weight", "doc_weight", "product"]
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


# ---------------------------------------------------------------------- handlers
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
            f"relevant passages in these results (marked {svc.GOLD_MARK})."
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
            # one above the other: side by side, the mode's label was cut at 1280 px
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
        """A link's search: its query and model, every other input at the value the page starts with."""
        (choice, folder_), *_ = picked
        given = {id(query): text, id(model): choice, id(folder): folder_, id(visitor_models): vm}
        args = [given.get(id(c), c.value) for c in search_inputs]
        return list(on_search(*args, request, progress=None))

    return LinkTarget("search", query, [(model, folder)], search_outputs, answer, [model.value], [run, query])

"""Compare tab: two models side by side on one query, and two or more over a query set.

The handlers live in :mod:`sparse_demo.ui.compare_one` (one query: :func:`compare_query`) and
:mod:`sparse_demo.ui.compare_set` (a query set: :func:`compare_set`, :func:`disagreement_table`,
:func:`compare_selected`); they are re-exported here so ``compare.X`` keeps working. This module
holds the widgets: ``build_tab`` only wires the handlers to them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from ..compare import DISAGREEMENT_METRICS
from ..config import ASSETS_DIR
from ..formatting import display_frame, empty_frame
from ..offline import DEMO_MODEL_NAME, DEMO_V25_NAME
from ..space import gpu
from ..textio import read_query_file
from .common import COMPARE_EXAMPLE, EXAMPLE_QUERIES, SIDE_CHOICES, AppContext, model_picker
from .compare_one import (
    TABLE_COLUMNS,
    CompareResult,
    compare_query,
    metrics_markdown,
    one_sided_frame,
)
from .compare_set import (
    DISAGREEMENT_COLUMNS,
    SetResult,
    compare_selected,
    compare_set,
    disagreement_table,
    pair_label,
)
from .links import LinkTarget

__all__ = [
    "DISAGREEMENT_COLUMNS",
    "EMPTY_DISAGREE",
    "EMPTY_MORPHEMES",
    "EMPTY_ONE",
    "EMPTY_SET",
    "EMPTY_SIDES",
    "SAMPLE_QUERIES_PATH",
    "TABLE_COLUMNS",
    "CompareResult",
    "SetResult",
    "build_tab",
    "compare_query",
    "compare_selected",
    "compare_set",
    "disagreement_table",
    "metrics_markdown",
    "one_sided_frame",
    "pair_label",
    "sample_queries",
]

logger = logging.getLogger(__name__)

SAMPLE_QUERIES_PATH = ASSETS_DIR / "corpus" / "ko_sample" / "queries.jsonl"
EMPTY_ONE = "Pick models A and B, type a query and press Compare: both top-k lists appear here side by side."
EMPTY_SIDES = "Press Compare: each model's active dims and leakage appear here."
EMPTY_MORPHEMES = "Press Compare: the weight each model puts on every Kiwi morpheme of the query appears here."
EMPTY_SET = "Paste or upload queries, pick two or more models and press Compare the set."
EMPTY_DISAGREE = "Press Compare the set: the queries where the pair disagrees most appear here; click one to open it."


def sample_queries() -> list[str]:
    """The bundled Korean sample queries, or the example queries when the file is absent/broken."""
    if SAMPLE_QUERIES_PATH.is_file():
        try:
            return read_query_file(SAMPLE_QUERIES_PATH)
        except (OSError, ValueError) as exc:
            logger.warning("Sample queries unreadable (%s); using the examples", exc)
    return list(EXAMPLE_QUERIES)


# ---------------------------------------------------------------------- widgets
def _defaults(ctx: AppContext) -> tuple[str | None, str | None]:
    """Default A / B: the model every picker starts on and the next model (V26 vs V25 with the bundled presets).

    Where the default preset cannot load, A is the V26-style demo model (:meth:`AppContext.default_model`)
    and B the V25-style one, so the offline showcase opens on the V25 -> V26 story; otherwise B skips
    models whose load already failed (so a first visitor offline does not start on an unloadable B).
    """
    choices = ctx.model_choices()
    if not choices:
        return None, None
    a = ctx.default_model()
    a = a if a in choices else choices[0]
    if a == DEMO_MODEL_NAME and DEMO_V25_NAME in choices:
        return a, DEMO_V25_NAME
    failed = {s.name for s in ctx.registry.status() if s.error}
    others = [c for c in choices if c != a]
    b = next((c for c in others if c not in failed), others[0] if others else a)
    return a, b


def _picker_values(spec: tuple[str | None, str | None], choices: list[str]) -> tuple[object, str]:
    choice, folder = spec
    if folder:
        return gr.update(), folder
    return (choice if choice in choices else gr.update()), ""


def build_tab(ctx: AppContext, visitor_models: gr.State) -> LinkTarget:
    """Widgets of the Compare tab (call inside ``with gr.Tab(...)``); returns what links to it need."""
    default_a, default_b = _defaults(ctx)
    gr.Markdown(
        "Compare two checkpoints (e.g. **V25 vs V26**) on the same query: which tokens both activate, which "
        "only one does, how ranks and weights shift, and how much weight each leaks to stopwords. Tokens of "
        "different vocabularies are matched by surface form (`▁치료` = `치료`)."
    )
    with gr.Row():
        with gr.Column():
            model_a, folder_a = model_picker(
                ctx, "compare-a", "Model A", default_a, "…or a local folder / Hub id for A"
            )
        with gr.Column():
            model_b, folder_b = model_picker(
                ctx, "compare-b", "Model B", default_b, "…or a local folder / Hub id for B"
            )
        with gr.Column():
            top_k = gr.Slider(5, ctx.limits.max_top_k, value=20, step=1, label="top-k", elem_id="compare-topk")
            side = gr.Radio(
                list(SIDE_CHOICES),
                value="query",
                label="Side both read the text with (query: an inference-free model's token table vs a full "
                "model; document: how each indexes it)",
                elem_id="compare-side",
            )
            with gr.Accordion("Stopwords", open=False):
                stop_file = gr.File(
                    label="Your stopword list (.txt, one per line)", file_types=[".txt", ".csv", ".tsv"]
                )
                pos_rule = gr.Checkbox(value=True, label="Also count Kiwi function-morpheme tokens as stopwords")
    with gr.Tabs(elem_id="compare-modes") as modes:
        with gr.Tab("One query", id="compare-one", elem_id="compare-one-tab"):
            query = gr.Textbox(
                label="Query",
                value=COMPARE_EXAMPLE,
                lines=2,
                elem_id="compare-query",
                placeholder="한국어 질의를 입력하세요",
            )
            gr.Examples(EXAMPLE_QUERIES, inputs=[query], label="Examples")
            run = gr.Button("Compare", variant="primary", elem_id="compare-run")
            status = gr.Markdown(elem_id="compare-status")
            metrics = gr.Markdown(elem_id="compare-metrics")
            aligned = gr.Dataframe(
                value=empty_frame(EMPTY_ONE),
                label="Top-k side by side (one row per surface form; rank_shift = rank A − "
                "rank B, positive when B ranks it higher)",
                elem_id="compare-aligned",
                interactive=False,
                wrap=True,
            )
            # the stats table takes the full width: its headers are the two model names (one line each), and at
            # half width, beside the chart, the B column was cut at 1280-1400 px
            sides = gr.Dataframe(
                value=empty_frame(EMPTY_SIDES),
                label="Stats and leakage",
                elem_id="compare-sides",
                interactive=False,
                wrap=True,
            )
            chart = gr.Plot(label="Weights: A left, B right", elem_id="compare-chart")
            morphs = gr.Dataframe(
                value=empty_frame(EMPTY_MORPHEMES),
                label="Per Kiwi morpheme of the query: the weight mass and top tokens each model "
                "puts there (through each token's source position)",
                elem_id="compare-morphemes",
                interactive=False,
                wrap=True,
            )
            download = gr.File(label="CSV", interactive=False, elem_id="compare-csv")
        with gr.Tab("Query set", id="compare-set", elem_id="compare-set-tab"):
            with gr.Row():
                with gr.Column(scale=2):
                    block = gr.Textbox(
                        label="Queries, one per line",
                        lines=8,
                        elem_id="compare-set-text",
                        value="\n".join(EXAMPLE_QUERIES),
                    )
                    with gr.Row():
                        sample = gr.Button("Use the bundled sample queries", size="sm", elem_id="compare-set-sample")
                    upload = gr.File(
                        label="…or upload .txt / .csv / .tsv / .jsonl",
                        file_types=[".txt", ".csv", ".tsv", ".jsonl", ".json"],
                    )
                with gr.Column(scale=1):
                    set_models = gr.Dropdown(
                        choices=ctx.model_choices(),
                        multiselect=True,
                        value=list(dict.fromkeys(m for m in (default_a, default_b) if m)),
                        label="Models (two or more, e.g. V24, V25, V26)",
                        elem_id="compare-set-models",
                    )
                    set_folders = gr.Textbox(
                        label="…and/or local folders / Hub ids, one per line", lines=2, elem_id="compare-set-folders"
                    )
                    by = gr.Radio(
                        list(DISAGREEMENT_METRICS),
                        value="weighted_overlap",
                        label="Rank disagreements by (lowest first)",
                        elem_id="compare-set-by",
                    )
            set_run = gr.Button("Compare the set", variant="primary", elem_id="compare-set-run")
            set_status = gr.Markdown(elem_id="compare-set-status")
            with gr.Row():
                summary = gr.Dataframe(
                    value=empty_frame(EMPTY_SET),
                    label="Per model: mean leakage, active dims, stopword at top-1 / top-5",
                    elem_id="compare-set-summary",
                    interactive=False,
                    wrap=True,
                )
                set_chart = gr.Plot(label="Leakage per model", elem_id="compare-set-chart")
            pairs = gr.Dataframe(
                value=empty_frame(EMPTY_SET),
                label="Per pair: overlap figures",
                elem_id="compare-set-pairs",
                interactive=False,
            )
            leaking = gr.Dataframe(
                value=empty_frame(EMPTY_SET),
                label="Most leaking tokens per model",
                elem_id="compare-set-leaking",
                interactive=False,
            )
            pair = gr.Dropdown(choices=[], label="Pair", elem_id="compare-set-pair", allow_custom_value=False)
            disagreements = gr.Dataframe(
                value=empty_frame(EMPTY_DISAGREE),
                label="Where the pair disagrees most: click a row to see that query side by side",
                elem_id="compare-set-disagreements",
                interactive=False,
                wrap=True,
            )
            set_files = gr.File(label="CSV", file_count="multiple", interactive=False, elem_id="compare-set-csv")
            set_state = gr.State(None)

    one_outputs = [status, metrics, aligned, chart, sides, morphs, download]

    def unpack(r: CompareResult) -> tuple:
        return (
            r.status,
            r.metrics,
            display_frame(r.aligned, EMPTY_ONE),
            r.chart,
            display_frame(r.sides, EMPTY_SIDES),
            display_frame(r.morphemes, EMPTY_MORPHEMES),
            r.csv_path,
        )

    def mine(request: gr.Request | None) -> Path:
        """This visitor's download folder (removed when they leave)."""
        return ctx.download_dir(getattr(request, "session_hash", None))

    def on_run(text, ca, cb, fa, fb, k, stop, pos, vm, side_, request: gr.Request):
        return unpack(compare_query(ctx, text, ca, cb, fa, fb, k, stop, pos, vm, downloads=mine(request), side=side_))

    inputs = [query, model_a, model_b, folder_a, folder_b, top_k, stop_file, pos_rule, visitor_models, side]
    run.click(gpu(on_run), inputs, one_outputs)
    query.submit(gpu(on_run), inputs, one_outputs)

    sample.click(lambda: "\n".join(sample_queries()), None, block)

    def on_set(block_, upload_, models_, folders_, k, stop, pos, vm, by_, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        r = compare_set(
            ctx, block_, upload_, models_, folders_, k, stop, pos, vm, by_, progress, downloads=mine(request)
        )
        return (
            r.status,
            display_frame(r.summary, EMPTY_SET),
            r.chart,
            display_frame(r.pairs, EMPTY_SET),
            display_frame(r.leaking, EMPTY_SET),
            gr.Dropdown(choices=r.pair_choices, value=r.pair_choices[0] if r.pair_choices else None),
            display_frame(r.disagreements, EMPTY_DISAGREE),
            r.csv_paths or None,
            r.state,
        )

    set_run.click(
        gpu(on_set, duration=300),
        [block, upload, set_models, set_folders, top_k, stop_file, pos_rule, visitor_models, by],
        [set_status, summary, set_chart, pairs, leaking, pair, disagreements, set_files, set_state],
    )
    for picker in (pair, by):
        picker.input(
            lambda st, p, b: display_frame(disagreement_table(st, p, b), EMPTY_DISAGREE),
            [set_state, pair, by],
            disagreements,
        )

    def on_select(st, p, k, stop, pos, vm, evt: gr.SelectData, request: gr.Request):
        row = evt.row_value if evt.row_value else None
        try:
            index = int(row[DISAGREEMENT_COLUMNS.index("query_index")]) if row else -1
        except (TypeError, ValueError, IndexError):
            index = -1
        q, spec_a, spec_b, r = compare_selected(ctx, st, p, index, k, stop, pos, vm, downloads=mine(request))
        choices = ctx.model_choices(vm)
        va, fa = _picker_values(spec_a, choices)
        vb, fb = _picker_values(spec_b, choices)
        return (q or gr.update(), va, fa, vb, fb, *unpack(r), gr.Tabs(selected="compare-one"))

    disagreements.select(
        gpu(on_select),
        [set_state, pair, top_k, stop_file, pos_rule, visitor_models],
        [query, model_a, folder_a, model_b, folder_b, *one_outputs, modes],
    )

    def answer(text, picked, vm, request):
        (ca, fa), (cb, fb) = picked
        return list(unpack(compare_query(ctx, text, ca, cb, fa, fb, 20, None, True, vm, downloads=mine(request))))

    return LinkTarget(
        "compare",
        query,
        [(model_a, folder_a), (model_b, folder_b)],
        one_outputs,
        answer,
        [default_a, default_b],
        [run, query],
    )

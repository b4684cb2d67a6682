"""Explore tab: a query's top activated tokens, where each came from, and stopword leakage.

The handlers are plain functions (``explore_query``, ``explore_batch``) that tests and notebooks
call directly; ``build_tab`` only wires them to widgets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from ..analysis import BatchLeakage, QueryAnalysis, batch_leakage
from ..formatting import display_frame, empty_frame
from ..heatmap import MAX_HEATMAP_TOKENS, PositionHeatmap, build_heatmap, by_morpheme, heatmap_chart
from ..space import gpu
from ..textio import clean_query
from .common import (
    EXAMPLE_QUERIES,
    SIDE_CHOICES,
    AppContext,
    UserError,
    collect_batch,
    load_custom_stopwords,
    message,
    model_picker,
    pct,
    side_phrase,
    side_view,
    write_csv,
)
from .links import LinkTarget
from .plots import leakage_bar_chart, safe_chart, token_bar_chart

logger = logging.getLogger(__name__)

TABLE_COLUMNS = [
    "rank",
    "token",
    "weight",
    "category",
    "origin",
    "position",
    "source_subword",
    "source_text",
    "morpheme",
    "id",
    "raw",
]
#: Short headers of the token table on screen (the CSV and the handler's frame keep the full names).
SHOWN_HEADERS = {"position": "pos", "source_subword": "subword", "source_text": "from text"}
EMPTY_TOKENS = "Type a query and press Analyze: its top tokens, their weights and where each came from appear here."
EMPTY_LEAKING = "Press Analyze all: the stopword and special tokens found in most queries' top-k appear here."
EMPTY_PER_QUERY = "Press Analyze all: one row per query with its leakage figures appears here."


def shown_tokens(frame: pd.DataFrame | None) -> pd.DataFrame:
    """The token table as shown: the vocabulary string (``▁수``, not ``수``) as the token, numbers rounded
    to 4 significant digits, short headers; the empty-state sentence before a run."""
    if frame is not None and len(frame) and "raw" in frame.columns:
        frame = frame.assign(token=frame["raw"])
    return display_frame(frame, EMPTY_TOKENS, drop=["raw"], rename=SHOWN_HEADERS)


@dataclass
class ExploreResult:
    status: str
    leakage: str
    table: pd.DataFrame
    chart: object | None
    analysis: QueryAnalysis | None = None


@dataclass
class HeatmapResult:
    status: str
    chart: object | None
    csv_path: str | None = None
    heatmap: PositionHeatmap | None = None


#: Rows of the heatmap: one per subword piece, or the pieces of one Kiwi morpheme folded into one row.
HEATMAP_ROWS = ("subword pieces", "Kiwi morphemes")


@dataclass
class BatchResult:
    status: str
    per_query: pd.DataFrame
    leaking: pd.DataFrame
    chart: object | None
    csv_path: str | None
    batch: BatchLeakage | None = None


def leakage_markdown(a: QueryAnalysis) -> str:
    """The leakage summary shown under the query: stopword mass in context first, vocabulary-level beside it
    (definitions: :mod:`sparse_demo.analysis`), and the input tokens whose category the context changed."""
    lk, st = a.leakage, a.stats
    k = min(lk.top_k, st.active_dims)
    first = "none" if lk.first_stopword_rank is None else f"rank {lk.first_stopword_rank}"
    stop_list = ", ".join(lk.stopword_tokens[:10]) or "none"
    special = (
        ", ".join(f"`{r.token}` {r.weight:.3f}" for r in a.rows if r.category == "special")
        or ", ".join(f"`{t}`" for t in lk.special_tokens)
        or "none"
    )
    lines = [
        f"**Stopword leakage**: {pct(lk.stopword_mass_ratio)} of the vector's L1 mass in context "
        f"({pct(lk.vocab_stopword_mass_ratio)} vocabulary-level); "
        f"{round(lk.stopword_topk_ratio * k)}/{k} top-{lk.top_k} slots ({stop_list}); first stopword: {first}.",
        f"**Special tokens**: {pct(lk.special_mass_ratio)} of the mass ({special}); "
        "reported here, dropped from the vector used for search.",
        f"**Vector**: {st.active_dims:,} active dims, L1 {st.l1:.2f}, Σw² {st.sum_squares:.2f}, "
        f"top-{lk.top_k} hold {pct(st.topk_mass_ratio)} of the mass.",
    ]
    if a.recategorised:
        changed = ", ".join(f"`{t}` {ctx} (entry: {voc})" for t, ctx, voc in a.recategorised[:8])
        lines.insert(1, f"**Judged in context** (the Kiwi morpheme each input token came from): {changed}.")
    return "\n\n".join(lines)


def _empty_table() -> pd.DataFrame:
    return pd.DataFrame(columns=TABLE_COLUMNS)


def explore_query(
    ctx: AppContext,
    text: str | None,
    model_choice: str | None,
    folder: str | None = None,
    top_k: int = 20,
    stopword_file: str | None = None,
    use_pos_rule: bool = True,
    visitor_models: dict[str, str] | None = None,
    side: str = "query",
) -> ExploreResult:
    """Analyse one text with one side of the model (``query`` by default; ``document`` reads it as a
    document would be read); every input problem becomes a status message."""
    try:
        query = ctx.limits.check_query(clean_query(text))
        top_k = ctx.limits.check_top_k(top_k)
        custom = load_custom_stopwords(stopword_file)
        encoder = side_view(ctx.encoder(model_choice, folder, visitor_models), side)
        analysis = ctx.analyzer(encoder, ctx.rule(custom, use_pos_rule)).analyze([query], top_k)[0]
    except (UserError, ValueError) as exc:
        return ExploreResult(message(str(exc), "error"), "", _empty_table(), None)
    except Exception as exc:  # noqa: BLE001 - show, log, keep the app alive
        logger.exception("Explore failed")
        return ExploreResult(message(f"Encoding failed: {exc}", "error"), "", _empty_table(), None)
    frame = analysis.to_frame(top_k)[TABLE_COLUMNS]
    status = [
        f"**{encoder.name}**, {side_phrase(encoder, side)} on {encoder.device.type}: "
        f"{len(analysis.encoding.input_ids)} tokens encoded."
    ]
    status += [message(n, "warning") for n in analysis.notes]
    if text is not None and text.strip() != query:
        status.append(message("Zero-width characters were removed from the text.", "info"))
    chart = safe_chart(token_bar_chart, frame, f"Top {top_k} tokens: {encoder.name}")
    return ExploreResult("\n\n".join(status), leakage_markdown(analysis), frame, chart, analysis)


def explore_heatmap(
    ctx: AppContext,
    text: str | None,
    model_choice: str | None,
    folder: str | None = None,
    n_tokens: int = 20,
    rows: str = HEATMAP_ROWS[0],
    visitor_models: dict[str, str] | None = None,
    out_dir: Path | None = None,
    side: str = "query",
) -> HeatmapResult:
    """Which input positions feed which of the top ``n_tokens`` output tokens (see :mod:`sparse_demo.heatmap`).

    The CSV (every position by every shown token, full precision) is written to ``out_dir`` when given.
    """
    try:
        query = ctx.limits.check_query(clean_query(text))
        n = max(1, min(int(n_tokens), MAX_HEATMAP_TOKENS))
        encoder = side_view(ctx.encoder(model_choice, folder, visitor_models), side)
        enc = encoder.encode([query])[0]
        ids = enc.vector.token_ids[:n]
        values = encoder.position_activations(enc, ids, side=side)
        hm = build_heatmap(enc.text, enc.input_ids, enc.offsets, values, ids, encoder.id_to_token)
    except (UserError, ValueError) as exc:
        return HeatmapResult(message(str(exc), "error"), None)
    except Exception as exc:  # noqa: BLE001 - show, log, keep the app alive
        logger.exception("Heatmap failed")
        return HeatmapResult(message(f"The heatmap failed: {exc}", "error"), None)
    folded = rows == HEATMAP_ROWS[1]
    frame = by_morpheme(hm) if folded else hm.to_frame()
    chart = (
        safe_chart(heatmap_chart, frame, row_field="row", row_label="label")
        if folded
        else safe_chart(heatmap_chart, frame)
    )
    csv_path = None
    if out_dir is not None:
        csv_path = write_csv(hm.to_frame(), out_dir, "heatmap")
    n_rows = frame["row"].nunique() if folded else len(hm.pieces)
    status = (
        f"**{encoder.name}**, {side_phrase(encoder, side)}: {len(hm.pieces)} input positions × top "
        f"{len(hm.tokens)} tokens"
        + (f", folded into {n_rows} morpheme rows" if folded else "")
        + ". Colour = log(1 + relu(logit)) at that position; the dot marks each token's maximum (its weight)."
    )
    return HeatmapResult(status, chart, csv_path, hm)


def explore_batch(
    ctx: AppContext,
    block: str | None,
    upload: str | None,
    model_choice: str | None,
    folder: str | None = None,
    top_k: int = 20,
    stopword_file: str | None = None,
    use_pos_rule: bool = True,
    visitor_models: dict[str, str] | None = None,
    progress=None,
    downloads: Path | None = None,
) -> BatchResult:
    """Leakage over many queries: summary, per-query table, most leaking tokens, CSV (written into
    ``downloads``, the visitor's :meth:`AppContext.download_dir`; default: the work folder)."""
    empty = pd.DataFrame()
    try:
        queries, cut = collect_batch(block, upload, ctx.limits)
        custom = load_custom_stopwords(stopword_file)
        encoder = ctx.encoder(model_choice, folder, visitor_models)
        analyzer = ctx.analyzer(encoder, ctx.rule(custom, use_pos_rule))

        analyses = analyzer.analyze(queries, int(top_k), progress=progress)
        batch = batch_leakage(analyses, int(top_k))
    except (UserError, ValueError) as exc:
        return BatchResult(message(str(exc), "error"), empty, empty, None, None)
    except Exception as exc:  # noqa: BLE001
        logger.exception("Batch explore failed")
        return BatchResult(message(f"Encoding failed: {exc}", "error"), empty, empty, None, None)
    s = batch.summary
    status = (
        f"**{encoder.name}**, {s['queries']} queries, top-{int(top_k)}: mean stopword mass "
        f"{pct(s['mean_stopword_mass_ratio'])} in context ({pct(s['mean_vocab_stopword_mass_ratio'])} "
        "vocabulary-level), mean special-token mass {pct(s['mean_special_mass_ratio'])}, "
        f"stopword in top-1: {pct(s['share_stopword_in_top1'])} of queries, in top-5: "
        f"{pct(s['share_stopword_in_top5'])}; mean active dims {s['mean_active_dims']:.1f}."
    )
    if cut:
        status += "\n\n" + message(cut, "warning")
    truncated = int(batch.per_query["truncated"].sum())
    if truncated:
        status += "\n\n" + message(
            f"{truncated} queries were longer than the model's max length and truncated.", "warning"
        )
    csv_path = write_csv(batch.per_query, downloads or ctx.workdir, "leakage")
    top = batch.leaking_tokens.head(25)
    chart = safe_chart(leakage_bar_chart, top, "Most leaking tokens") if len(top) else None
    return BatchResult(status, batch.per_query, batch.leaking_tokens, chart, csv_path, batch)


# ---------------------------------------------------------------------- widgets
def build_tab(ctx: AppContext, visitor_models: gr.State) -> LinkTarget:
    """Widgets of the Explore tab (call inside ``with gr.Tab(...)``); returns what links to it need."""
    with gr.Row():
        with gr.Column(scale=3):
            query = gr.Textbox(
                label="Query",
                value=EXAMPLE_QUERIES[0],
                lines=2,
                elem_id="explore-query",
                placeholder="한국어 질의를 입력하세요, e.g. 당뇨병 치료 방법",
            )
            gr.Examples(EXAMPLE_QUERIES, inputs=[query], label="Examples")
        with gr.Column(scale=2):
            model, folder = model_picker(ctx, "explore")
            side = gr.Radio(
                list(SIDE_CHOICES),
                value="query",
                label="Side (queries and documents may be encoded differently: an inference-free model's query "
                "side is a token-weight table)",
                elem_id="explore-side",
            )
            top_k = gr.Slider(5, ctx.limits.max_top_k, value=20, step=1, label="top-k", elem_id="explore-topk")
            with gr.Accordion("Stopwords", open=False):
                stop_file = gr.File(
                    label="Your stopword list (.txt, one per line; replaces the bundled "
                    f"{len(ctx.stopwords)}-word list)",
                    file_types=[".txt", ".csv", ".tsv"],
                )
                pos_rule = gr.Checkbox(
                    value=True,
                    label="Also count Kiwi function-morpheme tokens (particles, endings, copulas) as stopwords",
                )
    run = gr.Button("Analyze", variant="primary", elem_id="explore-run")
    status = gr.Markdown(elem_id="explore-status")
    leakage = gr.Markdown(elem_id="explore-leakage")
    table = gr.Dataframe(
        value=empty_frame(EMPTY_TOKENS),
        elem_id="explore-table",
        interactive=False,
        wrap=True,
        label="Top tokens (pos = input position whose logit was the max; ▁ = word start)",
    )
    chart = gr.Plot(label="Weights by category", elem_id="explore-chart")

    def on_run(text, choice, folder_, k, stop, pos, vm, side_="query"):
        r = explore_query(ctx, text, choice, folder_, k, stop, pos, vm, side_)
        return r.status, r.leakage, shown_tokens(r.table), r.chart

    inputs = [query, model, folder, top_k, stop_file, pos_rule, visitor_models, side]
    outputs = [status, leakage, table, chart]
    run.click(gpu(on_run), inputs, outputs)
    query.submit(gpu(on_run), inputs, outputs)
    side.input(gpu(on_run), inputs, outputs)  # the other side of the same text at once

    def answer(text, picked, vm, _request):
        (choice, folder_), *_ = picked
        return on_run(text, choice, folder_, 20, None, True, vm)

    target = LinkTarget("explore", query, [(model, folder)], outputs, answer, [model.value], [run, query, side])

    with gr.Accordion("Position heatmap: which input positions feed which tokens", open=False):
        with gr.Row():
            hm_tokens = gr.Slider(
                5, MAX_HEATMAP_TOKENS, value=20, step=1, label="Top tokens (columns)", elem_id="explore-hm-tokens"
            )
            hm_rows = gr.Radio(list(HEATMAP_ROWS), value=HEATMAP_ROWS[0], label="Rows", elem_id="explore-hm-rows")
        hm_run = gr.Button("Draw heatmap", elem_id="explore-hm-run")
        hm_status = gr.Markdown(elem_id="explore-hm-status")
        hm_chart = gr.Plot(label="Position × token", elem_id="explore-hm-chart", elem_classes=["scroll-plot"])
        hm_csv = gr.File(label="CSV (every position × token, full precision)", interactive=False)

        def on_heatmap(text, choice, folder_, n, rows_, vm, side_, request: gr.Request):
            mine = ctx.download_dir(getattr(request, "session_hash", None))  # removed when this visitor leaves
            r = explore_heatmap(ctx, text, choice, folder_, n, rows_, vm, mine, side_)
            return r.status, r.chart, r.csv_path

        hm_run.click(
            gpu(on_heatmap),
            [query, model, folder, hm_tokens, hm_rows, visitor_models, side],
            [hm_status, hm_chart, hm_csv],
        )

    with gr.Accordion("Batch mode: leakage over many queries", open=False):
        with gr.Row():
            block = gr.Textbox(
                label="Queries, one per line", lines=6, elem_id="explore-batch-text", value="\n".join(EXAMPLE_QUERIES)
            )
            upload = gr.File(
                label="…or upload .txt / .csv / .tsv / .jsonl", file_types=[".txt", ".csv", ".tsv", ".jsonl", ".json"]
            )
        batch_run = gr.Button("Analyze all", elem_id="explore-batch-run")
        batch_status = gr.Markdown(elem_id="explore-batch-status")
        with gr.Row():
            leaking = gr.Dataframe(
                value=empty_frame(EMPTY_LEAKING),
                label="Most leaking tokens",
                interactive=False,
                elem_id="explore-batch-leaking",
                wrap=True,
            )
            batch_chart = gr.Plot(label="Leaking tokens", elem_id="explore-batch-chart")
        per_query = gr.Dataframe(
            value=empty_frame(EMPTY_PER_QUERY),
            label="Per query",
            interactive=False,
            wrap=True,
            elem_id="explore-batch-per-query",
        )
        download = gr.File(label="CSV", interactive=False)

        def on_batch(block_, upload_, choice, folder_, k, stop, pos, vm, request: gr.Request, progress=gr.Progress()):
            mine = ctx.download_dir(getattr(request, "session_hash", None))  # removed when this visitor leaves
            r = explore_batch(ctx, block_, upload_, choice, folder_, k, stop, pos, vm, progress, mine)
            return (
                r.status,
                display_frame(r.leaking, EMPTY_LEAKING),
                r.chart,
                display_frame(r.per_query, EMPTY_PER_QUERY),
                r.csv_path,
            )

        batch_run.click(
            gpu(on_batch, duration=300),
            [block, upload, model, folder, top_k, stop_file, pos_rule, visitor_models],
            [batch_status, leaking, batch_chart, per_query, download],
        )
    return target

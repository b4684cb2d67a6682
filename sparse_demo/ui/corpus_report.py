"""Search tab accordion "Corpus report": what the indexed model does to the whole corpus.

:func:`compute_corpus_report` is the handler (plain inputs in, a :class:`CorpusReportView`
out); :func:`build_accordion` only wires it to widgets inside the Search tab, reading the
tab's own corpus, model and backend pickers, so the report is over the index the tab
searches. A second model picker puts another model beside it. Reports are cached per
(model fingerprint, corpus fingerprint) by :mod:`sparse_demo.corpus_report`.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import altair as alt
import gradio as gr
import pandas as pd

from ..corpus_report import CorpusReport, ReportComparison, compare_reports, report_for_index
from ..formatting import display_frame, empty_frame, fmt_number
from .common import (
    PICKER_PREFIX,
    AppContext,
    UserError,
    analyzer_spec,
    message,
    resolve_corpus,
    write_csv,
    write_download,
)
from .plots import CATEGORY_COLORS, CHART_WIDTH, LEGEND_BELOW, fit_width, safe_chart

logger = logging.getLogger(__name__)

#: Token rows shown in the table (the downloads hold every token).
TABLE_ROWS = 200
#: Tokens plotted in the df / mean-weight chart (by document frequency).
SCATTER_TOKENS = 1500
TABLE_COLUMNS = [
    "token",
    "category",
    "df",
    "df_share",
    "mean_weight",
    "max_weight",
    "mass",
    "mass_share",
    "expansion_share",
]
CHANGE_COLUMNS = [
    "key",
    "category",
    "df_a",
    "df_b",
    "df_share_change",
    "mass_share_a",
    "mass_share_b",
    "mass_share_change",
]
NO_SECOND = "(none)"
EMPTY_TOKENS = "Press Compute corpus report: every token's document frequency, weight and mass appear here."
EMPTY_CHANGES = (
    "Pick a second model and press Compute corpus report: the tokens whose document frequency changed most appear here."
)
#: The app refreshes every model picker's choices (``ui.common.picker_updates``); keep "(none)" first in ours.
PICKER_PREFIX["corpus-report-b-model"] = (NO_SECOND,)


@dataclass
class CorpusReportView:
    """What the accordion shows: Markdown status, tables, charts and download files."""

    status: str
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TABLE_COLUMNS))
    scatter: alt.Chart | alt.HConcatChart | None = None
    histogram: alt.Chart | None = None
    changes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CHANGE_COLUMNS))
    csv: str | None = None
    json: str | None = None
    report: CorpusReport | None = None
    comparison: ReportComparison | None = None


# ---------------------------------------------------------------------- charts (pure)
def df_weight_chart(
    report: CorpusReport, title: str = "", max_tokens: int = SCATTER_TOKENS, width: int | None = None
) -> alt.Chart:
    """Document frequency (log x) against mean weight where active, coloured by category, token tooltips.

    As wide as its box, or ``width`` pixels (for two charts side by side in one figure).
    """
    data = report.top_tokens(max_tokens, "df")[
        ["token", "raw", "category", "df", "df_share", "mean_weight", "mass", "expansion_share"]
    ].copy()
    chart = (
        alt.Chart(data, title=alt.TitleParams(title or "Document frequency vs mean weight", subtitle=report.model))
        .mark_circle(opacity=0.7)
        .encode(
            x=alt.X("df:Q", scale=alt.Scale(type="log"), title="documents with the token (log)"),
            y=alt.Y("mean_weight:Q", title="mean weight where active"),
            size=alt.Size("mass:Q", legend=None, scale=alt.Scale(range=[10, 300])),
            color=alt.Color(
                "category:N",
                scale=alt.Scale(domain=list(CATEGORY_COLORS), range=list(CATEGORY_COLORS.values())),
                legend=alt.Legend(**LEGEND_BELOW),
            ),
            tooltip=[
                "raw",
                "category",
                "df",
                alt.Tooltip("df_share:Q", format=".1%"),
                alt.Tooltip("mean_weight:Q", format=".3f"),
                alt.Tooltip("mass:Q", format=".2f"),
                alt.Tooltip("expansion_share:Q", format=".0%"),
            ],
        )
        .properties(height=280)
    )
    return chart.properties(width=width) if width else fit_width(chart)


def histogram_chart(reports: list[CorpusReport]) -> alt.Chart:
    """Active dimensions per document, one colour per model (overlaid bars)."""
    rows = [
        {"model": r.model or f"model {i + 1}", "lo": b.lo, "hi": max(b.hi, b.lo + 1), "documents": b.documents}
        for i, r in enumerate(reports)
        for b in r.histogram
    ]
    data = pd.DataFrame(rows, columns=["model", "lo", "hi", "documents"])
    return fit_width(
        alt.Chart(data, title="Active dimensions per document")
        .mark_bar(opacity=0.55)
        .encode(
            x=alt.X("lo:Q", bin="binned", title="active dimensions"),
            x2="hi:Q",
            y=alt.Y("documents:Q", stack=None, title="documents"),
            color=alt.Color("model:N", legend=alt.Legend(**LEGEND_BELOW)),
            tooltip=["model", "lo", "hi", "documents"],
        )
        .properties(height=240)
    )


# ---------------------------------------------------------------------- rendering
def _fmt(value: Any, figure: str) -> str:
    if value is None:
        return "n/a"
    if "ratio" in figure or "share" in figure:
        return f"{100 * value:.2f}%"
    if figure == "memory_index_bytes":
        return f"{value / 2**20:.2f} MiB"
    if isinstance(value, float):
        return fmt_number(value)
    return f"{value:,}"


#: Headline figures shown under a longer name (the two stopword notions, in context first).
FIGURE_LABELS = {
    "context_stopword_mass_ratio": "stopword mass (in context)",
    "stopword_mass_ratio": "stopword mass (vocabulary-level)",
}


def headline_markdown(a: CorpusReport, b: CorpusReport | None = None) -> str:
    """The headline figures as a Markdown table (one column per model), warnings and notes above it."""
    from dataclasses import asdict

    from ..corpus_report import HEADLINE_FIGURES

    lines = []
    for r in (a, b):
        if r is not None and r.collapse.collapsed:
            lines.append(message(f"**{html.escape(r.model)}**: {r.collapse.message}", "warning"))
    heads = [a] + ([b] if b is not None else [])
    lines.append("| figure | " + " | ".join(html.escape(r.model) or "model" for r in heads) + " |")
    lines.append("|---|" + "---:|" * len(heads))
    values = [asdict(r.totals) for r in heads]
    for fig in HEADLINE_FIGURES:
        label = FIGURE_LABELS.get(fig, fig)
        lines.append(f"| {label} | " + " | ".join(_fmt(v[fig], fig) for v in values) + " |")
    lines.append("")
    for r in heads:
        longest = ", ".join(f"`{html.escape(t)}` {d:,}" for t, d in r.top_tokens(10, "df")[["raw", "df"]].values)
        always = r.always_on()
        lines.append(
            f"- **{html.escape(r.model)}**: longest posting lists: {longest or 'none'}. "
            f"{len(always):,} always-on tokens (in more than half the documents) carry "
            f"{100 * r.totals.always_on_mass_ratio:.1f}% of the mass."
        )
    notes = list(dict.fromkeys(n for r in heads for n in r.notes))
    lines += [f"- {html.escape(n)}" for n in notes]
    lines.append(
        f"- Report computed in {sum(r.seconds for r in heads):.2f} s (encoding not included; cached per "
        "model and corpus)."
    )
    return "\n".join(lines)


def _write_json(payload: dict, workdir: Path, stem: str) -> str:
    from ..cli.common import dumps

    return write_download(dumps(payload, indent=1).encode("utf-8"), workdir, f"{stem}.json")


def _table(report: CorpusReport, rows: int = TABLE_ROWS) -> pd.DataFrame:
    """The token table as shown: the vocabulary string as the token (``▁수`` and ``수`` stay apart), numbers
    rounded to 4 significant digits (the CSV keeps full precision and both columns)."""
    frame = report.tokens.head(rows)
    frame = frame.assign(token=frame["raw"])[TABLE_COLUMNS]
    return display_frame(frame, EMPTY_TOKENS)


# ---------------------------------------------------------------------- handler
def compute_corpus_report(
    ctx: AppContext,
    session: Any,
    corpus_choice: str | None,
    uploaded: Any,
    model_choice: str | None,
    folder: str | None = None,
    backend: str = "memory",
    model_b_choice: str | None = None,
    folder_b: str | None = None,
    visitor_models: dict[str, str] | None = None,
    progress: Any = None,
    analyzer: str | None = None,
    downloads: Path | None = None,
) -> CorpusReportView:
    """The report of the Search tab's index (built when missing), and of a second model when picked.

    ``analyzer`` is the tab's BM25 analyzer, so the report reuses the index the tab searches. The CSV and
    JSON go to ``downloads`` (the visitor's :meth:`AppContext.download_dir`; default: the work folder);
    the same report asked again reuses the same files.
    """

    def stage(fraction: float, desc: str) -> None:
        if progress is not None:
            progress(fraction, desc=desc)

    try:
        spec = analyzer_spec(analyzer)
        corpus = resolve_corpus(corpus_choice, uploaded)
        encoder = ctx.encoder(model_choice, folder, visitor_models)
        encoder_b = None  # both models are checked before any slow work
        if (folder_b or "").strip() or (model_b_choice and model_b_choice != NO_SECOND):
            encoder_b = ctx.encoder(model_b_choice if model_b_choice != NO_SECOND else None, folder_b, visitor_models)
        index, _ = session.get_or_build(corpus, encoder, backend or "memory", progress=stage, analyzer=spec)
        a = report_for_index(index)
        b = None
        if encoder_b is not None:
            index_b, _ = session.get_or_build(corpus, encoder_b, "memory", progress=stage, analyzer=spec)
            b = report_for_index(index_b)
    except (UserError, ValueError) as exc:
        return CorpusReportView(message(str(exc), "error"))
    except Exception as exc:  # noqa: BLE001 - show, log, keep the tab alive
        logger.exception("Corpus report failed")
        return CorpusReportView(ctx.redact(message(f"The corpus report failed: {exc}", "error")))
    workdir = Path(downloads or ctx.workdir)
    head = f"**Corpus report**: {len(corpus):,} documents of **{html.escape(corpus.name)}**.\n\n"
    status = head + headline_markdown(a, b)
    if b is None:
        scatter = safe_chart(df_weight_chart, a)
        csv = write_csv(a.tokens, workdir, "corpus_report_tokens")
        js = _write_json(a.to_json(None), workdir, "corpus_report")
        return CorpusReportView(
            status, _table(a), scatter, safe_chart(histogram_chart, [a]), csv=csv, json=js, report=a
        )
    cmp = compare_reports(a, b)
    scatter = safe_chart(
        lambda: alt.hconcat(df_weight_chart(a, width=CHART_WIDTH), df_weight_chart(b, width=CHART_WIDTH))
    )
    changes = display_frame(cmp.top_changes(TABLE_ROWS, "df")[CHANGE_COLUMNS], EMPTY_CHANGES)
    both = pd.concat([a.tokens.assign(model=a.model), b.tokens.assign(model=b.model)], ignore_index=True)
    csv = write_csv(both, workdir, "corpus_report_tokens")
    js = _write_json(cmp.to_json(TABLE_ROWS), workdir, "corpus_report")
    return CorpusReportView(
        status, _table(a), scatter, safe_chart(histogram_chart, [a, b]), changes, csv, js, report=a, comparison=cmp
    )


# ---------------------------------------------------------------------- widgets
def build_accordion(
    ctx: AppContext,
    session: Any,
    *,
    corpus_choice: gr.components.Component,
    uploaded: gr.State,
    model: gr.components.Component,
    folder: gr.components.Component,
    backend: gr.components.Component,
    visitor_models: gr.State,
    analyzer: gr.components.Component | None = None,
) -> gr.Accordion:
    """The "Corpus report" accordion, fed by the Search tab's corpus / model / backend / analyzer pickers.

    Call inside the Search tab's ``gr.Blocks`` context, after those components exist.
    """
    with gr.Accordion("Corpus report", open=False, elem_id="corpus-report") as acc:
        gr.Markdown(
            "Per-token document frequency, weight and mass, stopword and special-token leakage, active dimensions "
            "per document, index cost and a collapse warning, over the document vectors **the index holds** "
            "(after the document top-k cap). Pick a second model to put it side by side."
        )
        with gr.Row():
            model_b = gr.Dropdown(
                choices=[NO_SECOND, *ctx.model_choices()],
                value=NO_SECOND,
                label="Second model (side by side)",
                elem_id="corpus-report-b-model",
            )
            folder_b = gr.Textbox(
                label="…or a local model folder / Hub id",
                elem_id="corpus-report-b-folder",
                placeholder="/models/korean-sparse-v25",
            )
        run = gr.Button("Compute corpus report", elem_id="corpus-report-run")
        status = gr.Markdown(elem_id="corpus-report-status")
        table = gr.Dataframe(
            value=empty_frame(EMPTY_TOKENS),
            label=f"Tokens by document frequency (first {TABLE_ROWS}; ▁ = word start; the CSV has all)",
            elem_id="corpus-report-table",
            interactive=False,
        )
        # one chart per row: two models' scatters side by side need the full width
        scatter = gr.Plot(label="Document frequency vs mean weight", elem_id="corpus-report-scatter")
        hist = gr.Plot(label="Active dimensions per document", elem_id="corpus-report-hist")
        changes = gr.Dataframe(
            value=empty_frame(EMPTY_CHANGES),
            label="Tokens whose document frequency changed most (B − A, matched by surface form)",
            elem_id="corpus-report-changes",
            interactive=False,
        )
        with gr.Row():
            csv = gr.File(label="Per-token table (CSV)", elem_id="corpus-report-csv")
            js = gr.File(label="Report (JSON)", elem_id="corpus-report-json")

    def on_run(
        choice,
        up,
        model_,
        folder_,
        backend_,
        model_b_,
        folder_b_,
        vm,
        analyzer_=None,
        request: gr.Request = None,
        progress=gr.Progress(),
    ):
        mine = ctx.download_dir(getattr(request, "session_hash", None))  # removed when this visitor leaves
        v = compute_corpus_report(
            ctx, session, choice, up, model_, folder_, backend_, model_b_, folder_b_, vm, progress, analyzer_, mine
        )
        return (
            v.status,
            display_frame(v.table, EMPTY_TOKENS),
            v.scatter,
            v.histogram,
            display_frame(v.changes, EMPTY_CHANGES),
            v.csv,
            v.json,
        )

    inputs = [corpus_choice, uploaded, model, folder, backend, model_b, folder_b, visitor_models]
    if analyzer is not None:
        inputs.append(analyzer)
    run.click(on_run, inputs, [status, table, scatter, hist, changes, csv, js])
    return acc


__all__ = [
    "CorpusReportView",
    "build_accordion",
    "compute_corpus_report",
    "df_weight_chart",
    "headline_markdown",
    "histogram_chart",
]

"""Evaluate tab: the model card's benchmark table on a Korean QA set, with significance, costs and curves.

The handlers (``load_input``, ``run_evaluation``, ``compare_systems``, ``pick_query``) are plain
functions returning dataclasses with a Markdown ``status``; ``build_tab`` only wires them to
widgets. Every number comes from :mod:`sparse_demo.evaluation`, which runs the Search tab's
``build_index``/``search``; document encodings are cached per (model fingerprint, corpus) in the
process-wide :data:`sparse_demo.evaluation.DEFAULT_CACHE`, so a second table is fast. A visitor's
upload, report and cancel flag are theirs alone (``gr.State`` and a per-session key).

The card's own figures are shown in a separate, labelled table, never among the measured rows.
Limits (:class:`sparse_demo.limits.Limits` in ``ctx.limits``): an upload is refused over its byte,
row or query-length limit, and a run evaluates at most :func:`query_limit` queries, saying so in the
status. The run handler runs under ZeroGPU's ``spaces.GPU`` where that exists (:func:`sparse_demo.space.gpu`).

The best hybrid weight on all evaluated queries (the weight curve; the "weight by k-fold CV" row scores each
query with a weight chosen without it) is remembered
in this visitor's :class:`sparse_demo.search.TunedWeights` (``ctx.tuned_weights``, one per browser session,
dropped when the visitor leaves) for (model fingerprint, corpus fingerprint) (:func:`remember_tuned_weights`):
that visitor's Search tab then uses it as its default weight for that model and corpus, until the slider
moves. No other visitor ever sees it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from .. import evaluation as ev
from .. import search as svc
from ..config import data_dir
from ..corpus import Corpus
from ..evaluation import charts
from ..evaluation import report as ev_report
from ..formatting import display_frame, empty_frame
from ..limits import Limits
from ..space import gpu
from .common import AppContext, UserError, message, write_download

logger = logging.getLogger(__name__)

SAMPLE_LABEL = "Bundled sample (ko_sample)"
UPLOAD_LABEL = "My upload (BEIR .zip or pairs file)"
BOOLQ_LABEL = "KoBEST BoolQ test (shared data)"
KORSTS_LABEL = "KorSTS test, score >= 4 (shared data)"
SYSTEM_CHOICES = [
    ("BM25", "bm25"),
    ("Sparse (each model)", "sparse"),
    ("Hybrid min-max at the weights", "hybrid"),
    ("Hybrid, weight by cross-validation", "best"),
    ("Hybrid RRF", "rrf"),
]
SWEEP_CHOICES = [("Hybrid weight curve", "weight"), ("Pruning curve (top-k, max_ratio)", "prune")]
BACKEND_CHOICES = [("In memory", "memory"), ("OpenSearch", "opensearch")]
WIN_COLUMNS = ["query_id", "query", "outcome", "delta"]
EMPTY_TABLE = "Pick a QA set, models and systems, then press Evaluate: the measured table (card layout) appears here."
EMPTY_WINS = "Run an evaluation, then pick systems A and B: the queries B wins and loses appear here."
#: At most this many queries per run in the app (the CLI has no limit); ``SPARSE_DEMO_MAX_BATCH`` may lower it.
MAX_APP_QUERIES = 2_000

_cancel: dict[str, threading.Event] = {}
_cancel_lock = threading.Lock()


def _shared_available() -> bool:
    return (data_dir() / "kobest_boolq").is_dir()


def corpus_choices() -> list[str]:
    """The corpus radio's choices (the shared sets only where ``../shared/data`` exists)."""
    extra = [BOOLQ_LABEL, KORSTS_LABEL] if _shared_available() else []
    return [SAMPLE_LABEL, UPLOAD_LABEL, *extra]


# ---------------------------------------------------------------------- results
@dataclass
class InputResult:
    status: str
    eval_set: Corpus | None


@dataclass
class EvaluateTabResult:
    status: str
    table: pd.DataFrame
    reference: pd.DataFrame
    markdown: str = ""
    files: list[str] = field(default_factory=list)
    weight_chart: Any = None
    prune_flops_chart: Any = None
    prune_bytes_chart: Any = None
    chart_status: str = ""
    report: ev.EvalReport | None = None
    labels: list[str] = field(default_factory=list)


@dataclass
class WinsResult:
    status: str
    table: pd.DataFrame


def reference_frame() -> pd.DataFrame:
    """The card's figures, labelled as such."""
    return pd.DataFrame(ev.reference_rows())


def _empty(status: str) -> EvaluateTabResult:
    return EvaluateTabResult(status, pd.DataFrame(), reference_frame())


# ---------------------------------------------------------------------- handlers
def load_input(ctx: AppContext, path: str | None, owner: str | None = None) -> InputResult:
    """Read an uploaded BEIR zip or pairs file into an evaluation set, under ``ctx.limits``.

    ``owner`` (the visitor's session id) tags its corpus: its cached encodings go when the visitor leaves.
    """
    if not path:
        return InputResult(
            message(
                "Upload a BEIR .zip (corpus.jsonl, queries.jsonl, qrels/test.tsv) or a pairs "
                "file (.csv/.tsv/.jsonl with query and positive columns).",
                "info",
            ),
            None,
        )
    try:
        ctx.limits.check_upload(path, "file")
        eval_set = ev.load_eval_set(path, workdir=ctx.workdir, limits=ctx.limits)
        check_upload_rows(eval_set, ctx.limits)
        eval_set.owner = owner or "anonymous upload"
    except (ValueError, OSError) as exc:
        return InputResult(message(f"{Path(path).name}: {ctx.redact(str(exc))}", "error"), None)
    notes = "".join(f"\n\n{message(n, 'warning')}" for n in eval_set.notes)
    return InputResult(
        message(f"**{eval_set.name}**: {len(eval_set.queries)} judged queries over {len(eval_set):,} documents.")
        + notes,
        eval_set,
    )


def check_upload_rows(eval_set: Corpus, limits: Limits) -> None:
    """Refuse an uploaded set with more rows than ``limits.max_rows`` or a query over the query-length limit.

    Raises:
        UserError: the first limit exceeded, naming it and its environment variable.
    """
    for what, count in (("documents", len(eval_set.documents)), ("judged queries", len(eval_set.queries))):
        if count > limits.max_rows:
            raise UserError(
                f"the file has {count:,} {what}; the limit is {limits.max_rows:,} per upload (SPARSE_DEMO_MAX_ROWS)"
            )
    for q in eval_set.queries:
        try:
            limits.check_query(q.text)
        except ValueError as exc:
            raise UserError(f"query {q.id}: {exc}") from None


def query_limit(limits: Limits) -> int:
    """Queries evaluated per run in the app: :data:`MAX_APP_QUERIES`, or ``limits.max_batch`` when lower."""
    return min(MAX_APP_QUERIES, limits.max_batch)


def _eval_set(choice: str, uploaded: Corpus | None) -> Corpus:
    if choice == UPLOAD_LABEL:
        if uploaded is None:
            raise UserError("Upload a BEIR .zip or a pairs file first, or pick another corpus.")
        return uploaded
    source = {SAMPLE_LABEL: "sample", BOOLQ_LABEL: "boolq:test", KORSTS_LABEL: "korsts:test"}.get(choice)
    if source is None:
        raise UserError(f"unknown corpus {choice!r}; choose one of {', '.join(corpus_choices())}")
    return ev.load_eval_set(source)


def parse_weights(text: str) -> list[float]:
    """``"0.3, 0.5"`` -> ``[0.3, 0.5]``.

    Raises:
        UserError: a value that is not a number in [0, 1].
    """
    out = []
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            w = float(part)
        except ValueError:
            raise UserError(f"hybrid weights must be numbers in [0, 1] separated by commas, got {part!r}") from None
        if not 0.0 <= w <= 1.0:
            raise UserError(f"hybrid weights must be in [0, 1], got {w:g}")
        out.append(w)
    return list(dict.fromkeys(out)) or [0.5]


def build_systems(kinds: list[str], models: list[str], weights: str) -> list[ev.SystemSpec]:
    """The table's rows from the tab's choices (BM25 first: the baseline).

    Raises:
        UserError: nothing to evaluate, or model rows without a model.
    """
    kinds = list(kinds or [])
    models = [m for m in (models or []) if m]
    if not kinds:
        raise UserError("Tick at least one system (BM25, sparse, hybrid).")
    if any(k != "bm25" for k in kinds) and not models:
        raise UserError("Pick at least one model for the sparse and hybrid rows (or tick BM25 only).")
    specs = [ev.SystemSpec("bm25")] if "bm25" in kinds else []
    for m in models:
        if "sparse" in kinds:
            specs.append(ev.SystemSpec("sparse", m))
        if "hybrid" in kinds:
            specs += [ev.SystemSpec("hybrid", m, "minmax", w) for w in parse_weights(weights)]
        if "best" in kinds:
            specs.append(ev.SystemSpec("hybrid", m, "minmax", None, tuned=True))
        if "rrf" in kinds:
            specs.append(ev.SystemSpec("hybrid", m, "rrf"))
    return specs


def _write_files(report: ev.EvalReport, workdir: Path) -> list[str]:
    """The downloads, each with :func:`write_download` (the same report again reuses the same files)."""
    files = {
        "table.csv": ev.table_csv(report),
        "runs.csv": ev.runs_csv(report),
        "per_query.csv": pd.DataFrame(ev_report.per_query_records(report)).to_csv(index=False),
        "report.json": ev.dumps(report, runs=True),
        "report.md": ev.to_markdown(report) + "\n",
    }
    return [
        write_download(text.encode("utf-8-sig" if name.endswith(".csv") else "utf-8"), workdir, name)
        for name, text in files.items()
    ]


def _charts(report: ev.EvalReport) -> tuple[Any, Any, Any, str]:
    notes = []
    weight = flops = size = None
    if report.weight_sweeps:
        weight, problem = charts.guarded(charts.weight_chart, report)
        notes.append(problem)
        notes += [
            f"Suggested weight for **{s.model}**: {s.best_weight:g} (best {s.metric} on all {s.dev_queries} "
            "queries); the Search tab now uses it as its default hybrid weight for this model and corpus "
            "(for you only)."
            for s in report.weight_sweeps
        ]
    if report.prune_sweep:
        flops, p1 = charts.guarded(charts.prune_chart, report.prune_sweep, "flops")
        size, p2 = charts.guarded(charts.prune_chart, report.prune_sweep, "index_mb")
        notes += [p1, p2]
    return weight, flops, size, "\n\n".join(message(n, "warning") if "could not" in n else n for n in notes if n)


def remember_tuned_weights(
    report: ev.EvalReport, encoders: dict[str, Any], corpus: Any, store: svc.TunedWeights
) -> int:
    """Remember each model's best weight on all evaluated queries for (model fingerprint, corpus fingerprint).

    Args:
        report: an evaluation with ``weight_sweeps``.
        encoders: the encoders by the model names the sweeps name.
        corpus: the evaluated corpus (its documents' fingerprint is the key; queries do not matter).
        store: this visitor's tuned weights (``ctx.tuned_weights.of(session)``).

    Returns:
        How many weights were remembered.
    """
    corpus_fp = svc.corpus_fingerprint(corpus)
    count = 0
    for sweep in report.weight_sweeps:
        fp = svc.model_fingerprint(encoders.get(sweep.model))
        if not fp:
            continue
        store.remember(
            fp, corpus_fp, sweep.best_weight, f"best {sweep.metric} on all {sweep.dev_queries} queries of {report.name}"
        )
        count += 1
    return count


def run_evaluation(
    ctx: AppContext,
    choice: str,
    uploaded: Corpus | None,
    models: list[str],
    kinds: list[str],
    weights: str,
    backend: str,
    sample: float | None,
    seed: float | None,
    sweeps: list[str],
    visitor_models: dict[str, str] | None = None,
    progress: Any = None,
    should_stop: Any = None,
    tuned: svc.TunedWeights | None = None,
    downloads: Path | None = None,
) -> EvaluateTabResult:
    """Evaluate the chosen systems; errors become a message, never an exception.

    ``tuned``: this visitor's tuned weights; a weight curve's best weight is remembered there (None: nowhere).
    ``downloads``: the visitor's download folder (:meth:`AppContext.download_dir`; default: the work folder).
    """
    report_progress = (lambda f, d: progress(f, desc=d)) if progress is not None else None
    if choice == UPLOAD_LABEL:  # a visitor's upload: the run stops at SPARSE_DEMO_MAX_INDEX_SECONDS
        report_progress = ctx.limits.deadline("Evaluating your upload").wrap(report_progress)
    cut = None
    try:
        specs = build_systems(kinds, models, weights)
        eval_set = _eval_set(choice, uploaded)
        n = int(sample or 0)
        if n < 0:
            raise UserError(f"the sample size must be 0 (all queries) or a positive number, got {n}")
        limit = query_limit(ctx.limits)
        if len(eval_set.queries) > limit and (not n or n > limit):
            asked = f"You asked for {n:,} queries" if n else f"The set has {len(eval_set.queries):,} judged queries"
            cut = (
                f"{asked}; the app evaluates at most {limit:,} per run (SPARSE_DEMO_MAX_BATCH, at most "
                f"{MAX_APP_QUERIES:,}), so a random sample of {limit:,} (seed {int(seed or 0)}) was evaluated. "
                "The CLI's evaluate command has no limit."
            )
            n = limit
        eval_set = ev.sample_queries(eval_set, n or None, int(seed or 0))
        encoders = {m: ctx.encoder(m, None, visitor_models) for m in dict.fromkeys(s.model for s in specs if s.model)}
        sweep_list = list(sweeps or [])
        if "prune" in sweep_list and not encoders:
            raise UserError("The pruning curve needs a model: pick one and tick a sparse or hybrid row.")
        report = ev.evaluate(
            eval_set,
            specs,
            encoders,
            backend=backend or "memory",
            sweep_weights="weight" in sweep_list,
            progress=report_progress,
            should_stop=should_stop,
        )
        if "prune" in sweep_list:
            ev.prune_sweep(report, progress=report_progress, should_stop=should_stop)
        if tuned is not None:
            remember_tuned_weights(report, encoders, eval_set, tuned)
    except ev.EvaluationCancelled:
        return _empty(message("Evaluation cancelled.", "warning"))
    except (UserError, ValueError, FileNotFoundError) as exc:
        return _empty(ctx.redact(message(str(exc), "error")))
    except Exception as exc:  # noqa: BLE001 - the tab shows a message, never a trace
        logger.exception("Evaluation failed")
        return _empty(message(f"Evaluation failed: {ctx.redact(str(exc))}", "error"))
    table = pd.DataFrame(ev.table_rows(report))
    lines = [message(ev.summary_line(report))]
    if cut:
        lines.append(message(cut, "warning"))
    if len(report.systems) > 1:
        lines.append(
            f"{ev_report.SIG_MARK} = differs from the baseline **{report.baseline}** (paired randomization "
            "test, Holm-corrected, p < 0.05)."
        )
    lines += [message(n, "warning") for n in report.notes]
    weight, flops, size, chart_status = _charts(report)
    try:
        files = _write_files(report, downloads or ctx.workdir)
    except OSError as exc:
        files = []
        lines.append(message(f"Could not write the downloads: {exc}", "warning"))
    return EvaluateTabResult(
        "\n\n".join(lines),
        table,
        reference_frame(),
        ev.to_markdown(report),
        files,
        weight,
        flops,
        size,
        chart_status,
        report,
        [s.label for s in report.systems],
    )


def compare_systems(report: ev.EvalReport | None, a: str | None, b: str | None, metric: str = "ndcg@10") -> WinsResult:
    """Per-query wins and losses of system B against A."""
    if report is None:
        return WinsResult(message("Run an evaluation first.", "info"), pd.DataFrame(columns=WIN_COLUMNS))
    if not a or not b or a == b:
        return WinsResult(message("Pick two different systems.", "info"), pd.DataFrame(columns=WIN_COLUMNS))
    try:
        wl = ev.wins_losses(report, a, b, metric)
    except ValueError as exc:
        return WinsResult(message(str(exc), "error"), pd.DataFrame(columns=WIN_COLUMNS))
    return WinsResult(
        message(wl.summary + ". Select a row to send its query to Search and Compare."), pd.DataFrame(wl.rows)
    )


def pick_query(frame: pd.DataFrame | None, row: int | None) -> str:
    """The query text of a selected wins/losses row ("" when none)."""
    if frame is None or row is None or "query" not in getattr(frame, "columns", []):
        return ""
    if not 0 <= int(row) < len(frame):
        return ""
    return str(frame.iloc[int(row)]["query"])


# ---------------------------------------------------------------------- widgets
@dataclass
class EvaluateTab:
    """Components the app may wire to other tabs (``selected_query`` -> Search / Compare query boxes)."""

    selected_query: gr.Textbox
    run: gr.Button


#: The query boxes a selected wins/losses query is copied into (Search and Compare tabs).
QUERY_TARGETS: tuple[str, ...] = ("search-query", "compare-query")
#: Results shown next to those boxes, cleared when a new query arrives (so none belongs to the old query).
STALE_RESULTS: tuple[str, ...] = (
    "search-status",
    "search-results",
    "search-passage",
    "search-explain-status",
    "search-explain-table",
    "search-explain-chart",
    "compare-status",
    "compare-metrics",
    "compare-aligned",
    "compare-chart",
    "compare-sides",
    "compare-morphemes",
    "compare-csv",
)
_ARRIVED = {"search": "Search", "compare": "Compare"}


def _cleared(component: gr.components.Component) -> Any:
    """What a result component shows once a query from Evaluate replaced the one it answered."""
    tab = (component.elem_id or "").split("-")[0]
    sentence = f"New query from Evaluate's wins and losses: press {_ARRIVED.get(tab, 'the button')} to see its results."
    if isinstance(component, gr.Dataframe):
        return empty_frame(sentence)
    if (
        isinstance(component, gr.Markdown)
        and (component.elem_id or "").endswith("-status")
        and "explain" not in (component.elem_id or "")
    ):
        return message(sentence, "info")
    if isinstance(component, (gr.Markdown, gr.HTML)):
        return ""
    return None  # plots and files: nothing


def connect_query(
    blocks: gr.Blocks,
    parts: EvaluateTab,
    targets: tuple[str, ...] = QUERY_TARGETS,
    stale: tuple[str, ...] = STALE_RESULTS,
) -> list[str]:
    """Copy a selected wins/losses query into the other tabs' query boxes (call inside ``blocks``), and clear
    those tabs' results (``stale``), which answered the previous query.

    Returns:
        The ``elem_id`` of every box connected (targets missing from the app are skipped).
    """
    found = {b.elem_id: b for b in blocks.blocks.values() if isinstance(b, gr.components.Component) and b.elem_id}
    boxes = [found[t] for t in targets if isinstance(found.get(t), gr.Textbox)]
    results = [found[t] for t in stale if t in found]
    if boxes:

        def send(q: str) -> list[Any]:
            if not q:
                return [gr.update()] * (len(boxes) + len(results))
            return [q] * len(boxes) + [_cleared(c) for c in results]

        parts.selected_query.change(send, parts.selected_query, boxes + results)
    return [b.elem_id for b in boxes]


def _session_key(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


def build_tab(ctx: AppContext, visitor_models: gr.State) -> EvaluateTab:
    """Widgets of the Evaluate tab (call inside ``with gr.Tab(...)``)."""
    ctx.visitor_hooks.append(ev.runner.DEFAULT_CACHE.forget_owner)  # their upload's encodings go when they leave
    uploaded = gr.State(None)  # this visitor's Corpus from an upload
    last = gr.State(None)  # this visitor's last EvalReport
    with gr.Row():
        with gr.Column(scale=2):
            corpus_choice = gr.Radio(corpus_choices(), value=SAMPLE_LABEL, label="QA set", elem_id="evaluate-corpus")
            upload = gr.File(
                label="Upload a BEIR .zip (corpus.jsonl, queries.jsonl, qrels/test.tsv) or a pairs file "
                "(.csv/.tsv/.jsonl: query, positive)",
                file_types=[".zip", ".csv", ".tsv", ".jsonl"],
                elem_id="evaluate-upload",
            )
            with gr.Row():
                sample = gr.Number(
                    value=0,
                    precision=0,
                    minimum=0,
                    label="Sample N queries (0 = all; the card: 1000)",
                    elem_id="evaluate-sample",
                )
                seed = gr.Number(value=0, precision=0, label="Seed", elem_id="evaluate-seed")
        with gr.Column(scale=3):
            choices = ctx.model_choices()
            default = ctx.default_model()
            models = gr.Dropdown(
                choices=choices,
                value=[default] if default in choices else [],
                multiselect=True,
                label="Models (sparse and hybrid rows)",
                elem_id="evaluate-models",
            )
            kinds = gr.CheckboxGroup(
                SYSTEM_CHOICES,
                value=["bm25", "sparse", "hybrid"],
                label="Systems (BM25 is the baseline when ticked, else the first row)",
                elem_id="evaluate-systems",
            )
            with gr.Row():
                weights = gr.Textbox(
                    value="0.5", label="Hybrid sparse weights (comma-separated)", elem_id="evaluate-weights"
                )
                backend = gr.Radio(BACKEND_CHOICES, value="memory", label="Backend", elem_id="evaluate-backend")
            sweeps = gr.CheckboxGroup(SWEEP_CHOICES, value=[], label="Curves", elem_id="evaluate-sweeps")
    with gr.Row():
        run = gr.Button("Evaluate", variant="primary", elem_id="evaluate-run")
        cancel = gr.Button("Cancel", elem_id="evaluate-cancel")
    input_status = gr.Markdown(elem_id="evaluate-input-status")
    status = gr.Markdown(elem_id="evaluate-status")
    table = gr.Dataframe(
        value=empty_frame(EMPTY_TABLE),
        label="Measured (card layout)",
        elem_id="evaluate-table",
        interactive=False,
        wrap=True,
    )
    reference = gr.Dataframe(
        value=reference_frame(),
        label="Reference: the model card's figures, reported on the card's private set (not measured here)",
        elem_id="evaluate-reference",
        interactive=False,
    )
    with gr.Accordion("Markdown for a model card, and downloads", open=False):
        markdown = gr.Code(language="markdown", label="Markdown", elem_id="evaluate-markdown")
        files = gr.File(
            label="CSV / JSON of the table and the per-query runs", file_count="multiple", elem_id="evaluate-files"
        )
    chart_status = gr.Markdown(elem_id="evaluate-chart-status")
    # the weight curve gets a full row, the two pruning curves half a row each: wide enough at 1280 px
    weight_plot = gr.Plot(label="nDCG@10 vs hybrid weight", elem_id="evaluate-weight-chart")
    with gr.Row():
        flops_plot = gr.Plot(label="nDCG@10 vs FLOPS", elem_id="evaluate-prune-flops")
        bytes_plot = gr.Plot(label="nDCG@10 vs index size", elem_id="evaluate-prune-bytes")
    with gr.Accordion("Per-query wins and losses", open=False):
        with gr.Row():
            sys_a = gr.Dropdown([], label="System A", elem_id="evaluate-system-a")
            sys_b = gr.Dropdown([], label="System B", elem_id="evaluate-system-b")
        wins_status = gr.Markdown(elem_id="evaluate-wins-status")
        wins = gr.Dataframe(
            value=empty_frame(EMPTY_WINS),
            label="Queries (select a row to open it in Search and Compare)",
            elem_id="evaluate-wins",
            interactive=False,
            wrap=True,
        )
        selected = gr.Textbox(label="Selected query", elem_id="evaluate-selected-query", interactive=False)

    def on_upload(path, request: gr.Request):
        r = load_input(ctx, path, getattr(request, "session_hash", None))
        return r.status, r.eval_set, (UPLOAD_LABEL if r.eval_set is not None else gr.update())

    upload.upload(on_upload, [upload], [input_status, uploaded, corpus_choice])

    def on_run(
        choice,
        up,
        models_,
        kinds_,
        weights_,
        backend_,
        sample_,
        seed_,
        sweeps_,
        vm,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        key = _session_key(request)
        flag = threading.Event()
        with _cancel_lock:
            _cancel[key] = flag
        try:
            session = getattr(request, "session_hash", None)
            r = run_evaluation(
                ctx,
                choice,
                up,
                models_,
                kinds_,
                weights_,
                backend_,
                sample_,
                seed_,
                sweeps_,
                vm,
                progress,
                flag.is_set,
                ctx.tuned_weights.of(session) if session else None,
                ctx.download_dir(session),
            )
        finally:
            with _cancel_lock:
                if _cancel.get(key) is flag:
                    del _cancel[key]
        a = r.labels[0] if r.labels else None
        b = r.labels[1] if len(r.labels) > 1 else None
        return (
            r.status,
            display_frame(r.table, EMPTY_TABLE),
            r.reference,
            r.markdown,
            r.files or None,
            r.weight_chart,
            r.prune_flops_chart,
            r.prune_bytes_chart,
            r.chart_status,
            r.report,
            gr.update(choices=r.labels, value=a),
            gr.update(choices=r.labels, value=b),
        )

    def on_cancel(request: gr.Request):
        with _cancel_lock:
            flag = _cancel.get(_session_key(request))
        if flag is None:
            return message("Nothing is running.", "info")
        flag.set()
        return message("Cancelling after the current batch…", "warning")

    def on_compare(report, a, b):
        r = compare_systems(report, a, b)
        return r.status, display_frame(r.table, EMPTY_WINS)

    run.click(
        gpu(on_run, duration=300),
        [corpus_choice, uploaded, models, kinds, weights, backend, sample, seed, sweeps, visitor_models],
        [
            status,
            table,
            reference,
            markdown,
            files,
            weight_plot,
            flops_plot,
            bytes_plot,
            chart_status,
            last,
            sys_a,
            sys_b,
        ],
    ).then(on_compare, [last, sys_a, sys_b], [wins_status, wins])
    cancel.click(on_cancel, None, [chart_status], queue=False)
    sys_a.input(on_compare, [last, sys_a, sys_b], [wins_status, wins])
    sys_b.input(on_compare, [last, sys_a, sys_b], [wins_status, wins])

    def on_select(frame, evt: gr.SelectData):
        idx = evt.index
        return pick_query(frame, idx[0] if isinstance(idx, (list, tuple)) else idx)

    wins.select(on_select, [wins], [selected])
    return EvaluateTab(selected, run)

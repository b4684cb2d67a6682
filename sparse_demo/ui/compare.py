"""Compare tab: two models side by side on one query, and two or more over a query set.

Handlers are plain functions that tests call directly: :func:`compare_query` (one query, two
models), :func:`compare_set` (a query set, two or more models), :func:`disagreement_table`
(re-rank the set result for another pair or metric) and :func:`compare_selected` (the
per-query view of a row picked in the set result). ``build_tab`` only wires them to widgets.
Every model is loaded once by the shared registry; a model that fails leaves the others
usable and the status names it with the reason. Query length and the size of a query set follow
``ctx.limits`` and every cut is stated; the encoding handlers run under :func:`sparse_demo.space.gpu`.
Charts are built in :mod:`sparse_demo.ui.plots`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from ..analysis import Analyzer
from ..compare import (
    DEFAULT_RBO_P,
    DISAGREEMENT_METRICS,
    QueryComparison,
    SetComparison,
    analyze_query_set,
    compare_analyses,
    compare_query_set,
    keyed_top,
)
from ..config import ASSETS_DIR
from ..encoder import SpladeEncoder
from ..formatting import display_frame, empty_frame
from ..models import NOT_AVAILABLE
from ..offline import DEMO_MODEL_NAME, DEMO_V25_NAME
from ..space import gpu
from ..textio import clean_query, read_query_file
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
    side_view,
    write_csv,
)
from .links import LinkTarget
from .plots import comparison_chart, safe_chart, summary_chart

logger = logging.getLogger(__name__)

SAMPLE_QUERIES_PATH = ASSETS_DIR / "corpus" / "ko_sample" / "queries.jsonl"
TABLE_COLUMNS = [
    "rank_a",
    "token_a",
    "weight_a",
    "rank_b",
    "token_b",
    "weight_b",
    "rank_shift",
    "weight_delta",
    "status",
    "category",
    "note",
    "source_a",
    "source_b",
    "key",
]
DISAGREEMENT_COLUMNS = [
    "rank",
    "query_index",
    "query",
    "weighted_overlap",
    "rbo",
    "jaccard",
    "shared",
    "only_a",
    "only_b",
]
_PAIR_SEP = "  vs  "
EMPTY_ONE = "Pick models A and B, type a query and press Compare: both top-k lists appear here side by side."
EMPTY_SIDES = "Press Compare: each model's active dims and leakage appear here."
EMPTY_MORPHEMES = "Press Compare: the weight each model puts on every Kiwi morpheme of the query appears here."
EMPTY_SET = "Paste or upload queries, pick two or more models and press Compare the set."
EMPTY_DISAGREE = "Press Compare the set: the queries where the pair disagrees most appear here; click one to open it."


@dataclass
class CompareResult:
    """Everything the per-query view shows."""

    status: str
    metrics: str
    aligned: pd.DataFrame
    chart: object | None
    sides: pd.DataFrame
    morphemes: pd.DataFrame
    csv_path: str | None
    comparison: QueryComparison | None = None


@dataclass
class SetResult:
    """Everything the query-set view shows; ``state`` goes into a ``gr.State`` for later re-ranking."""

    status: str
    summary: pd.DataFrame
    pairs: pd.DataFrame
    leaking: pd.DataFrame
    chart: object | None
    pair_choices: list[str]
    disagreements: pd.DataFrame
    csv_paths: list[str]
    state: dict | None = None
    comparison: SetComparison | None = None


@dataclass
class _Loaded:
    """The models of a set comparison: analyzers by encoder name, their (choice, folder) specs, failures."""

    analyzers: dict[str, Analyzer] = field(default_factory=dict)
    specs: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def sample_queries() -> list[str]:
    """The bundled Korean sample queries, or the example queries when the file is absent/broken."""
    if SAMPLE_QUERIES_PATH.is_file():
        try:
            return read_query_file(SAMPLE_QUERIES_PATH)
        except (OSError, ValueError) as exc:
            logger.warning("Sample queries unreadable (%s); using the examples", exc)
    return list(EXAMPLE_QUERIES)


def _load(
    ctx: AppContext, choice: str | None, folder: str | None, visitor_models: dict[str, str] | None
) -> tuple[SpladeEncoder | None, str | None]:
    """``(encoder, None)`` or ``(None, reason)``; never raises."""
    try:
        return ctx.encoder(choice, folder, visitor_models), None
    except UserError as exc:
        return None, str(exc).split("\n\n")[0]


def _label(choice: str | None, folder: str | None) -> str:
    return (folder or "").strip() or (choice or "").strip() or "(none)"


def _empty_result(status: str) -> CompareResult:
    return CompareResult(status, "", pd.DataFrame(columns=TABLE_COLUMNS), None, pd.DataFrame(), pd.DataFrame(), None)


# ---------------------------------------------------------------------- per query
def metrics_markdown(c: QueryComparison) -> str:
    """Overlap figures, only-A / only-B tokens, biggest rank shifts and leakage, side by side."""
    ov = c.overlap
    only_a = ", ".join(f"`{r.token_a}`" for r in c.only_a[:12]) or "none"
    only_b = ", ".join(f"`{r.token_b}`" for r in c.only_b[:12]) or "none"
    shifts = sorted((r for r in c.shared if r.rank_shift), key=lambda r: -abs(r.rank_shift or 0))[:6]
    shift_text = ", ".join(f"`{r.key}` {r.rank_a}→{r.rank_b} ({r.rank_shift:+d})" for r in shifts) or "none"
    la, lb = c.side_a.leakage, c.side_b.leakage
    lines = [
        (
            f"**Overlap of the top-{c.top_k}** (tokens matched by surface form): Jaccard **{ov.jaccard:.3f}** · "
            f"weighted overlap **{ov.weighted_overlap:.3f}** · RBO (p={c.rbo_p:g}) **{ov.rbo:.3f}** · "
            f"shared {len(c.shared)}, only A {len(c.only_a)}, only B {len(c.only_b)}"
        ),
        f"**Only A** ({c.model_a}): {only_a}",
        f"**Only B** ({c.model_b}): {only_b}",
        f"**Biggest rank shifts** (A rank → B rank): {shift_text}",
        (
            f"**Leakage** A vs B: stopword mass {pct(la.stopword_mass_ratio)} vs {pct(lb.stopword_mass_ratio)} "
            f"in context ({pct(la.vocab_stopword_mass_ratio)} vs {pct(lb.vocab_stopword_mass_ratio)} "
            f"vocabulary-level), special-token mass {pct(la.special_mass_ratio)} vs {pct(lb.special_mass_ratio)}, "
            "stopword top-k "
            f"slots {pct(la.stopword_topk_ratio)} vs {pct(lb.stopword_topk_ratio)}; active dims "
            f"{c.side_a.stats.active_dims:,} vs {c.side_b.stats.active_dims:,}"
        ),
    ]
    return "\n\n".join(lines)


def compare_query(
    ctx: AppContext,
    text: str | None,
    model_a: str | None,
    model_b: str | None,
    folder_a: str | None = None,
    folder_b: str | None = None,
    top_k: int = 20,
    stopword_file: str | None = None,
    use_pos_rule: bool = True,
    visitor_models: dict[str, str] | None = None,
    rbo_p: float = DEFAULT_RBO_P,
    downloads: Path | None = None,
    side: str = "query",
) -> CompareResult:
    """Compare two models on one query; every problem becomes a status message.

    ``side``: both models read the text with their query side (default: an inference-free model's token
    table against a full model's MLM) or with their document side (how each would index it).

    When one model cannot be loaded, only the other's own figures are shown (its top-k in its own
    columns, with no status, rank shift or weight delta; its leakage) and the status says in one
    line which model failed and why (the Models panel keeps the full reason).
    """
    try:
        query = ctx.limits.check_query(clean_query(text))
        k = ctx.limits.check_top_k(top_k)
        rule = ctx.rule(load_custom_stopwords(stopword_file), use_pos_rule)
    except (UserError, ValueError) as exc:
        return _empty_result(message(str(exc), "error"))
    enc_a, err_a = _load(ctx, model_a, folder_a, visitor_models)
    enc_b, err_b = _load(ctx, model_b, folder_b, visitor_models)
    problems = []
    for which, err, label, other, loaded in (
        ("A", err_a, _label(model_a, folder_a), "B", enc_b),
        ("B", err_b, _label(model_b, folder_b), "A", enc_a),
    ):
        if err:
            alone = (
                f" Showing {other}'s own figures ({loaded.name}); pick another model {which} to compare."
                if loaded is not None
                else ""
            )
            problems.append(
                message(
                    f"Model {which} ({label}) could not be loaded: {_first_sentence(err)}{alone}",
                    "warning" if alone else "error",
                )
            )
    if enc_a is None and enc_b is None:
        return _empty_result("\n\n".join(problems))
    try:
        same = enc_a is not None and enc_a is enc_b
        enc_a = side_view(enc_a, side) if enc_a else None
        enc_b = (enc_a if same else side_view(enc_b, side)) if enc_b else None
        an_a = ctx.analyzer(enc_a, rule).analyze([query], k)[0] if enc_a else None
        an_b = ctx.analyzer(enc_b, rule).analyze([query], k)[0] if enc_b else None
    except (UserError, ValueError) as exc:
        return _empty_result(message(str(exc), "error"))
    except Exception as exc:  # show, log, keep the app alive
        logger.exception("Compare failed")
        return _empty_result(message(f"Encoding failed: {exc}", "error"))
    extra = []
    if text is not None and text.strip() != query:
        extra.append(message("Zero-width characters were removed from the text.", "info"))
    if an_a is None or an_b is None:
        return _one_sided(ctx, an_a or an_b, "A" if an_a else "B", k, problems + extra, downloads)
    comp = compare_analyses(an_a, an_b, k, rbo_p=rbo_p)
    frame = comp.to_frame()[TABLE_COLUMNS]
    status = [
        (
            f"**A = {enc_a.name}**, **B = {enc_b.name}** on {enc_a.device.type}: "
            f"{comp.side_a.num_tokens} / {comp.side_b.num_tokens} input tokens, both read with their {side} side."
        )
    ]
    if enc_a is enc_b:
        status.append(message("A and B are the same model: every figure is 1.", "info"))
    status += [message(n, "warning" if "truncated" in n else "info") for n in comp.notes] + extra
    chart = safe_chart(comparison_chart, frame, enc_a.name, enc_b.name)
    csv_path = write_csv(frame, downloads or ctx.workdir, "compare")
    return CompareResult(
        "\n\n".join(status),
        metrics_markdown(comp),
        frame,
        chart,
        comp.sides_frame(),
        comp.morpheme_frame(),
        csv_path,
        comp,
    )


def _first_sentence(text: str, limit: int = 220) -> str:
    """The first sentence of a load error (the Models panel keeps the whole reason), cut to ``limit`` chars.

    The registry's "Could not load model 'X' (source): reason" becomes "Reason (source)." (the line
    already names the model).

    Example:
        >>> _first_sentence("Could not load model 'm' (/x/m): no such folder on this machine")
        'No such folder on this machine (/x/m).'
    """
    if text.strip() == NOT_AVAILABLE:  # the one answer for a refused typed source stays whole (and names no path)
        return NOT_AVAILABLE
    first = text.strip().split("\n")[0]
    source = ""
    match = re.match(r"^Could not load model '[^']*'(?: \((.*?)\))?: ", first)
    if match:
        first, source = first[match.end() :], match.group(1) or ""
    first = first[:1].upper() + first[1:]
    end = first.find(". ")
    first = first[: end + 1] if end > 0 else first
    first = first.rstrip(".")
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    return f"{first} ({source})." if source else f"{first}."


def _one_sided(
    ctx: AppContext, analysis, side: str, k: int, problems: list[str], downloads: Path | None = None
) -> CompareResult:
    """One model's own figures when the other could not be loaded: its top-k in its own columns, with no
    status, rank shift or weight delta (there is nothing to compare against), its leakage and morphemes."""
    frame = one_sided_frame(analysis, side, k)
    names = (analysis.model, "—") if side == "A" else ("—", analysis.model)
    chart = safe_chart(comparison_chart, frame, *names)
    lk = analysis.leakage
    metrics = (
        f"**{side} ({analysis.model})** alone: stopword mass {pct(lk.stopword_mass_ratio)} in context "
        f"({pct(lk.vocab_stopword_mass_ratio)} vocabulary-level), special-token mass {pct(lk.special_mass_ratio)}, "
        f"{analysis.stats.active_dims:,} active dims."
    )
    sides = pd.DataFrame(
        {
            "figure": ["active_dims", "stopword_mass_ratio", "vocab_stopword_mass_ratio", "special_mass_ratio"],
            f"{side}: {analysis.model}": [
                analysis.stats.active_dims,
                round(lk.stopword_mass_ratio, 4),
                round(lk.vocab_stopword_mass_ratio, 4),
                round(lk.special_mass_ratio, 4),
            ],
        }
    )
    return CompareResult(
        "\n\n".join(problems),
        metrics,
        frame,
        chart,
        sides,
        pd.DataFrame(),
        write_csv(frame, downloads or ctx.workdir, "compare"),
    )


def one_sided_frame(analysis, side: str, k: int) -> pd.DataFrame:
    """The aligned table's columns holding one model's top-k keys on its own ``side`` ("A" or "B"); the
    other side, ``status``, ``rank_shift`` and ``weight_delta`` stay empty (no ``only_a`` rows against a
    model that was never analysed)."""
    s = side.lower()
    records = [
        {
            "key": t.key,
            f"rank_{s}": t.rank,
            f"token_{s}": t.token,
            f"weight_{s}": t.weight,
            "category": t.category,
            f"source_{s}": t.source_text,
            "status": "",
            "note": "",
        }
        for t in keyed_top(analysis.rows, k).tokens
    ]
    frame = pd.DataFrame(records, columns=TABLE_COLUMNS)
    for col in ("rank_a", "rank_b", "rank_shift"):  # integers with gaps, as the aligned table has them
        frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
    return frame


# ---------------------------------------------------------------------- query set
def _empty_set(status: str) -> SetResult:
    return SetResult(
        status, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), None, [], pd.DataFrame(columns=DISAGREEMENT_COLUMNS), []
    )


def _set_models(
    ctx: AppContext, models: list[str] | str | None, folders: str | None, visitor_models: dict[str, str] | None, rule
) -> _Loaded:
    chosen = [models] if isinstance(models, str) else list(models or [])
    specs: list[tuple[str | None, str | None]] = [(m, None) for m in chosen if m]
    specs += [(None, line.strip()) for line in (folders or "").splitlines() if line.strip()]
    loaded = _Loaded()
    for choice, folder in specs:
        encoder, error = _load(ctx, choice, folder, visitor_models)
        label = _label(choice, folder)
        if encoder is None:
            loaded.failed[label] = error or "unknown error"
        elif encoder.name not in loaded.analyzers:
            loaded.analyzers[encoder.name] = ctx.analyzer(encoder, rule)
            loaded.specs[encoder.name] = (choice, folder)
    return loaded


def _clean_set(queries: list[str], ctx: AppContext) -> tuple[list[str], list[str]]:
    kept, skipped = [], []
    for i, q in enumerate(queries, start=1):
        try:
            kept.append(ctx.limits.check_query(clean_query(q)))
        except ValueError as exc:
            skipped.append(f"query {i}: {exc}")
    return kept, skipped


def pair_label(a: str, b: str) -> str:
    return f"{a}{_PAIR_SEP}{b}"


def disagreement_table(
    state: dict | None, pair: str | None, by: str = "weighted_overlap", n: int | None = 200
) -> pd.DataFrame:
    """The queries where the pair disagrees most (lowest ``by`` first), from a set result's state."""
    result: SetComparison | None = (state or {}).get("comparison")
    if result is None or not result.pairs:
        return pd.DataFrame(columns=DISAGREEMENT_COLUMNS)
    if by not in DISAGREEMENT_METRICS:
        by = "weighted_overlap"
    a, b = _parse_pair(pair, result)
    return result.disagreements(a, b, by=by, n=n)[DISAGREEMENT_COLUMNS]


def _parse_pair(pair: str | None, result: SetComparison) -> tuple[str, str]:
    if pair and _PAIR_SEP in pair:
        a, b = pair.split(_PAIR_SEP, 1)
        if a in result.models and b in result.models and a != b:
            return a, b
    return result.pairs[0]


def compare_set(
    ctx: AppContext,
    block: str | None,
    upload: str | None,
    models: list[str] | str | None,
    folders: str | None = None,
    top_k: int = 20,
    stopword_file: str | None = None,
    use_pos_rule: bool = True,
    visitor_models: dict[str, str] | None = None,
    by: str = "weighted_overlap",
    progress: Callable | None = None,
    rbo_p: float = DEFAULT_RBO_P,
    downloads: Path | None = None,
) -> SetResult:
    """Two or more models over a query set: leakage per model, overlap per pair, disagreements, CSVs.

    Each model encodes the whole set in one batched call. Models that fail to load are left
    out (the status says which and why); one usable model still gives its leakage summary.
    """

    def fail(text: str) -> SetResult:
        return _empty_set(message(text, "error"))

    try:
        k = ctx.limits.check_top_k(top_k)
        collected, cut = collect_batch(block, upload, ctx.limits)
        queries, skipped = _clean_set(collected, ctx)
        if not queries:
            raise UserError("No usable query: " + "; ".join(skipped[:3]))
        rule = ctx.rule(load_custom_stopwords(stopword_file), use_pos_rule)
        loaded = _set_models(ctx, models, folders, visitor_models, rule)
    except (UserError, ValueError) as exc:
        return fail(str(exc))
    problems = [message(f"Model {m} could not be loaded: {why}", "error") for m, why in loaded.failed.items()]
    if not loaded.analyzers:
        if problems:
            return _empty_set("\n\n".join(problems))
        return fail("Pick two or more models (or type local folders, one per line).")
    names = list(loaded.analyzers)

    try:
        analyses = analyze_query_set(loaded.analyzers, queries, k, progress=progress)
        result = compare_query_set(analyses, k, rbo_p=rbo_p, failed=loaded.failed)
    except (UserError, ValueError) as exc:
        return fail(str(exc))
    except Exception as exc:  # a broken model must not kill the tab
        logger.exception("Set comparison failed")
        return fail(f"Encoding failed: {exc}")
    choices = [pair_label(a, b) for a, b in result.pairs]
    state = {"comparison": result, "specs": loaded.specs, "top_k": k}
    disagreements = disagreement_table(state, choices[0] if choices else None, by)
    status = [f"**{len(queries)} queries**, top-{k}, models: {', '.join(names)}."] + problems
    if cut:
        status.append(message(cut, "warning"))
    if skipped:
        status.append(message(f"{len(skipped)} queries skipped: " + "; ".join(skipped[:3]), "warning"))
    if len(names) < 2:
        status.append(message("Only one model is usable: leakage below, no pair to compare.", "warning"))
    truncated = int(result.per_query["truncated"].sum()) if "truncated" in result.per_query else 0
    if truncated:
        status.append(message(f"{truncated} (model, query) encodings were truncated to the max length.", "warning"))
    pairs = result.pair_summary()
    out = downloads or ctx.workdir  # the visitor's download folder (removed when they leave)
    csv_paths = [
        write_csv(result.summary, out, "compare_models"),
        write_csv(result.per_query, out, "compare_per_query"),
    ]
    for a, b in result.pairs:
        csv_paths.append(write_csv(result.disagreements(a, b, by=by).assign(model_a=a, model_b=b), out, "compare_pair"))
    chart = safe_chart(summary_chart, result.summary)
    return SetResult(
        "\n\n".join(status),
        result.summary.round(4),
        pairs,
        result.leaking_tokens.head(60),
        chart,
        choices,
        disagreements,
        csv_paths,
        state,
        result,
    )


def compare_selected(
    ctx: AppContext,
    state: dict | None,
    pair: str | None,
    query_index: int,
    top_k: int | None = None,
    stopword_file: str | None = None,
    use_pos_rule: bool = True,
    visitor_models: dict[str, str] | None = None,
    downloads: Path | None = None,
) -> tuple[str, tuple[str | None, str | None], tuple[str | None, str | None], CompareResult]:
    """The per-query comparison of one query of a set result, for the chosen pair.

    Returns:
        ``(query, (choice_a, folder_a), (choice_b, folder_b), result)``; the pickers can be set
        from the two spec pairs so the per-query view and its inputs agree.
    """
    result: SetComparison | None = (state or {}).get("comparison")
    if result is None:
        return "", (None, None), (None, None), _empty_result(message("Run a query-set comparison first.", "error"))
    if not 0 <= int(query_index) < len(result.queries):
        return (
            "",
            (None, None),
            (None, None),
            _empty_result(message(f"No query #{query_index} in the set ({len(result.queries)} queries).", "error")),
        )
    query = result.queries[int(query_index)]
    if len(result.models) < 2:
        a = b = result.models[0]
    else:
        a, b = _parse_pair(pair, result)
    specs = state.get("specs", {})
    spec_a, spec_b = specs.get(a, (a, None)), specs.get(b, (b, None))
    k = int(top_k) if top_k else int(state.get("top_k", result.top_k))
    r = compare_query(
        ctx,
        query,
        spec_a[0],
        spec_b[0],
        spec_a[1],
        spec_b[1],
        k,
        stopword_file,
        use_pos_rule,
        visitor_models,
        result.rbo_p,
        downloads,
    )
    return query, spec_a, spec_b, r


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
                value=EXAMPLE_QUERIES[0],
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
            with gr.Row():
                chart = gr.Plot(label="Weights: A left, B right", elem_id="compare-chart")
                sides = gr.Dataframe(
                    value=empty_frame(EMPTY_SIDES),
                    label="Stats and leakage",
                    elem_id="compare-sides",
                    interactive=False,
                    wrap=True,
                )
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

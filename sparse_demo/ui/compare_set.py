"""Compare tab, query set: two or more models over a query set.

Handlers are plain functions that tests call directly: :func:`compare_set` (a query set, two or more
models), :func:`disagreement_table` (re-rank the set result for another pair or metric) and
:func:`compare_selected` (the per-query view of a row picked in the set result, through
:func:`sparse_demo.ui.compare_one.compare_query`); :func:`sparse_demo.ui.compare.build_tab` wires them
to widgets. A model that fails to load leaves the others usable and the status names it with the
reason. The size of a query set follows ``ctx.limits`` and every cut is stated; the handlers run under
:func:`sparse_demo.space.gpu`. Charts are built in :mod:`sparse_demo.ui.plots`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..analysis import Analyzer
from ..compare import (
    DEFAULT_RBO_P,
    DISAGREEMENT_METRICS,
    SetComparison,
    analyze_query_set,
    compare_query_set,
)
from ..textio import clean_query
from .common import AppContext, UserError, collect_batch, load_custom_stopwords, message, write_csv
from .compare_one import CompareResult, _empty_result, _label, _load, compare_query
from .plots import safe_chart, summary_chart

logger = logging.getLogger(__name__)

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

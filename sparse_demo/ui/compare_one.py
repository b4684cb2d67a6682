"""Compare tab, one query: two models side by side on one query.

:func:`compare_query` is a plain function that tests call directly; :func:`sparse_demo.ui.compare.build_tab`
wires it to widgets. Every model is loaded once by the shared registry; a model that fails leaves the
other usable and the status names it with the reason. Query length follows ``ctx.limits`` and every
cut is stated; the handler runs under :func:`sparse_demo.space.gpu`. Charts are built in
:mod:`sparse_demo.ui.plots`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..compare import DEFAULT_RBO_P, QueryComparison, compare_analyses, keyed_top
from ..encoder import SpladeEncoder
from ..models import NOT_AVAILABLE
from ..textio import clean_query
from .common import AppContext, UserError, load_custom_stopwords, message, pct, side_view, write_csv
from .plots import comparison_chart, safe_chart

logger = logging.getLogger(__name__)

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

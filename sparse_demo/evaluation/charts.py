"""Altair charts of an evaluation (pure: report in, chart out).

Wrap calls in :func:`sparse_demo.ui.plots.safe_chart` (or :func:`guarded`) so a chart error
becomes a message, not a dead component.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import altair as alt
import pandas as pd

logger = logging.getLogger(__name__)

#: Kept for callers that need a fixed width; the charts fill their box (:func:`fit_width`).
CHART_WIDTH = 420
#: Legends sit under a chart so they never take width from a narrow box.
LEGEND_BELOW = {"orient": "bottom", "direction": "horizontal"}


def fit_width(chart: Any) -> Any:
    """The chart as wide as its box (``width="container"``, autosize fit-x: axes, title and legends inside
    that width), height unchanged; the same rule as :func:`sparse_demo.ui.plots.fit_width`."""
    return chart.properties(width="container", autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def weight_frame(report: Any) -> pd.DataFrame:
    """Rows ``model, weight, split, value`` of every weight sweep (the mean over all queries at each weight)."""
    rows = []
    for s in report.weight_sweeps:
        for w, value in zip(s.weights, s.overall):
            rows.append(
                {
                    "model": s.model,
                    "weight": w,
                    "split": f"all {s.num_queries} queries",
                    s.metric: value,
                    "best": w == s.best_weight,
                }
            )
    return pd.DataFrame(rows)


def weight_chart(report: Any) -> alt.Chart:
    """nDCG@10 against the hybrid's sparse weight (0 = BM25 only, 1 = sparse only), best weight on all queries marked.

    Raises:
        ValueError: the report has no weight sweep.
    """
    if not report.weight_sweeps:
        raise ValueError("no weight sweep in this evaluation; tick 'sweep the hybrid weight' or add hybrid:MODEL:best")
    metric = report.weight_sweeps[0].metric
    frame = weight_frame(report)
    base = alt.Chart(frame, title=f"{metric} vs hybrid weight (min-max)")
    lines = base.mark_line(point=True).encode(
        x=alt.X(
            "weight:Q",
            title="sparse weight w (BM25 gets 1 − w)",
            scale=alt.Scale(domain=[0, 1]),
            axis=alt.Axis(tickCount=10),
        ),
        y=alt.Y(f"{metric}:Q", title=metric, scale=alt.Scale(zero=False)),
        color=alt.Color("model:N", legend=alt.Legend(**LEGEND_BELOW)),
        strokeDash=alt.StrokeDash("split:N", legend=alt.Legend(**LEGEND_BELOW)),
        tooltip=["model", "split", "weight", alt.Tooltip(f"{metric}:Q", format=".4f")],
    )
    best = (
        base.transform_filter(alt.datum.best)
        .mark_rule(strokeDash=[4, 4])
        .encode(x="weight:Q", color=alt.Color("model:N"))
    )
    return fit_width((lines + best).properties(height=260))


def prune_frame(points: list[Any]) -> pd.DataFrame:
    """Rows of the pruning sweep with a readable ``setting`` label."""
    rows = []
    for p in points:
        label = "unpruned" if p.setting is None else f"{p.kind} {p.setting:g}"
        rows.append(
            {
                **p.to_dict(),
                "label": label,
                "index_mb": p.index_bytes / 2**20,
                "kind": "unpruned" if p.setting is None else p.kind,
            }
        )
    return pd.DataFrame(rows)


def prune_chart(points: list[Any], x: str = "flops") -> alt.Chart:
    """nDCG@10 against FLOPS (``x="flops"``) or index megabytes (``x="index_mb"``), models as colours.

    Raises:
        ValueError: no point, or an unknown ``x``.
    """
    if x not in ("flops", "index_mb"):
        raise ValueError(f"x must be 'flops' or 'index_mb', got {x!r}")
    if not points:
        raise ValueError("no pruning sweep in this evaluation; run it with a model")
    frame = prune_frame(points)
    title = {
        "flops": "FLOPS per query-document pair (Σ p_q·p_d, log)",
        "index_mb": "sparse index (MB, memory backend, log)",
    }[x]
    base = alt.Chart(frame, title=f"nDCG@10 vs {'FLOPS' if x == 'flops' else 'index size'} (pruning)")
    return fit_width(
        base.mark_line(point=True)
        .encode(
            x=alt.X(f"{x}:Q", title=title, scale=alt.Scale(type="log")),
            y=alt.Y("ndcg10:Q", title="nDCG@10", scale=alt.Scale(zero=False)),
            color=alt.Color("model:N", legend=alt.Legend(**LEGEND_BELOW)),
            shape=alt.Shape("kind:N", legend=alt.Legend(**LEGEND_BELOW)),
            detail="kind:N",
            order=alt.Order(f"{x}:Q"),
            tooltip=[
                "model",
                "label",
                alt.Tooltip("ndcg10:Q", format=".4f"),
                alt.Tooltip("flops:Q", format=".3f"),
                alt.Tooltip("index_mb:Q", format=".2f"),
                alt.Tooltip("doc_active:Q", format=".1f"),
                alt.Tooltip("query_active:Q", format=".1f"),
            ],
        )
        .properties(height=280)
    )


def guarded(builder: Callable[..., alt.Chart], *args: Any, **kwargs: Any) -> tuple[alt.Chart | None, str]:
    """``(chart, "")`` or ``(None, message)`` when the builder fails."""
    try:
        return builder(*args, **kwargs), ""
    except ValueError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a broken plot must not break the tab
        logger.exception("chart %s failed", getattr(builder, "__name__", builder))
        return None, f"The chart could not be drawn: {exc}"

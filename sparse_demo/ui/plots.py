"""Altair chart builders (pure: frames in, charts out) with a guard for failures."""

from __future__ import annotations

import logging
from collections.abc import Callable

import altair as alt
import pandas as pd

logger = logging.getLogger(__name__)

#: Width of a chart drawn side by side with another in one figure (an ``hconcat``, which cannot fill its box).
CHART_WIDTH = 360
CATEGORY_COLORS = {
    "content": "#2f6fdf",
    "stopword": "#e8590c",
    "special": "#7b2cbf",
    "punctuation": "#868e96",
    "whitespace": "#ced4da",
}
#: Kept for callers that need a fixed width; the tabs' charts fill their box (:func:`fit_width`).
COMPARE_CHART_WIDTH = 520
#: Legends sit under a chart so they never take width from a narrow box.
LEGEND_BELOW = {"orient": "bottom", "direction": "horizontal", "columns": 4}


def safe_chart(builder: Callable[..., alt.Chart], *args, **kwargs) -> alt.Chart | None:
    """Build a chart; on failure log it and return None (the component shows nothing)."""
    try:
        return builder(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a broken plot must not break the tab
        logger.exception("Chart %s failed", getattr(builder, "__name__", builder))
        return None


def fit_width(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """The chart as wide as its box: ``width="container"`` with ``autosize`` fit-x (axes, title and
    legend included in that width), its height unchanged.

    Needs the app's stylesheet (``assets/style.css`` gives the chart's box its full width; without it a
    chart in ``gr.Plot`` measures its box as 0 px). Single and layered charts only: a concatenation keeps
    fixed widths (:data:`CHART_WIDTH` each).
    """
    return chart.properties(width="container", autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def _category_scale() -> alt.Scale:
    return alt.Scale(domain=list(CATEGORY_COLORS), range=list(CATEGORY_COLORS.values()))


def token_bar_chart(frame: pd.DataFrame, title: str = "") -> alt.Chart:
    """Horizontal bars of token weights, coloured by category, in rank order.

    ``frame`` needs columns rank, token, weight, category (raw, origin, source_text optional); a bar is
    labelled with the vocabulary string (``raw``: ``▁수`` and ``수`` stay apart) where the frame has it.
    """
    data = frame.copy()
    shown = data["raw"] if "raw" in data.columns else data["token"]  # keep the word-start marker "▁" visible
    data["label"] = data["rank"].astype(str) + ". " + shown.astype(str)
    tooltip = [
        c
        for c in ("token", "raw", "weight", "category", "origin", "source_text", "position", "morpheme")
        if c in data.columns
    ]
    return fit_width(
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            x=alt.X("weight:Q", title="weight  log(1 + relu(logit))"),
            y=alt.Y("label:N", sort=alt.SortField("rank", order="ascending"), title=None),
            color=alt.Color("category:N", scale=_category_scale(), legend=alt.Legend(**LEGEND_BELOW)),
            tooltip=tooltip,
        )
        .properties(height=max(120, 18 * len(data)))
    )


def leakage_bar_chart(frame: pd.DataFrame, title: str = "") -> alt.Chart:
    """Bars of how often each stopword/special token is in a query's top-k."""
    return fit_width(
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(
            x=alt.X(
                "queries:Q", title="queries with the token in their top-k", axis=alt.Axis(tickMinStep=1, format="d")
            ),  # whole queries, never 0.05
            y=alt.Y("token:N", sort="-x", title=None),
            color=alt.Color("category:N", scale=_category_scale(), legend=alt.Legend(**LEGEND_BELOW)),
            tooltip=["token", "category", "queries", "share_of_queries", "mean_weight"],
        )
        .properties(height=max(120, 18 * len(frame)))
    )


# ---------------------------------------------------------------------- Compare tab
def comparison_chart(frame: pd.DataFrame, name_a: str, name_b: str) -> alt.Chart:
    """Paired diverging bars: A's weight to the left, B's to the right, one row per key.

    Rows keep the aligned order (best rank first); colour is the token category, and a
    faded bar marks a key only one model has in its top-k.
    """
    records = []
    for order, row in enumerate(frame.itertuples(index=False)):
        label = f"{row.key}"
        for side, weight, rank, token in (
            ("A", row.weight_a, row.rank_a, row.token_a),
            ("B", row.weight_b, row.rank_b, row.token_b),
        ):
            if weight is None or pd.isna(weight):
                continue
            records.append(
                {
                    "key": label,
                    "order": order,
                    "model": name_a if side == "A" else name_b,
                    "value": -float(weight) if side == "A" else float(weight),
                    "weight": float(weight),
                    "rank": int(rank),
                    "token": token,
                    "category": row.category,
                    "status": row.status,
                    "rank_shift": None if pd.isna(row.rank_shift) else int(row.rank_shift),
                }
            )
    data = pd.DataFrame(records)
    scale = _category_scale()
    n_keys = int(data["key"].nunique()) if len(data) else 1
    return fit_width(
        alt.Chart(data, title="Shared keys solid; keys only one model has in its top-k faded")
        .mark_bar()
        .encode(
            x=alt.X(
                "value:Q", title=f"◀ A: {name_a}   weight   B: {name_b} ▶", axis=alt.Axis(labelExpr="abs(datum.value)")
            ),
            y=alt.Y("key:N", sort=alt.SortField("order", order="ascending"), title=None),
            color=alt.Color("category:N", scale=scale, legend=alt.Legend(**LEGEND_BELOW)),
            opacity=alt.condition(alt.datum.status == "both", alt.value(1.0), alt.value(0.4)),
            tooltip=["model", "token", "rank", "weight", "category", "status", "rank_shift"],
        )
        .properties(height=max(120, 16 * n_keys))
    )


def summary_chart(summary: pd.DataFrame) -> alt.Chart:
    """Grouped bars of each model's mean leakage figures over the query set."""
    metrics = {
        "mean_stopword_mass_ratio": "stopword mass (in context)",
        "mean_vocab_stopword_mass_ratio": "stopword mass (vocabulary-level)",
        "mean_special_mass_ratio": "special-token mass",
        "mean_stopword_topk_ratio": "stopword top-k slots",
        "share_stopword_in_top1": "queries: stopword at top-1",
        "share_stopword_in_top5": "queries: stopword in top-5",
    }
    present = [m for m in metrics if m in summary.columns]
    long = summary.melt(id_vars=["model"], value_vars=present, var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(metrics)
    return fit_width(
        alt.Chart(long, title="Leakage per model (lower is better)")
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title="share", axis=alt.Axis(format="%")),
            y=alt.Y("metric:N", title=None, sort=list(metrics.values())),
            yOffset="model:N",
            color=alt.Color("model:N", legend=alt.Legend(**LEGEND_BELOW)),
            tooltip=["model", "metric", alt.Tooltip("value:Q", format=".1%")],
        )
        .properties(height=max(150, 14 * len(long)))
    )

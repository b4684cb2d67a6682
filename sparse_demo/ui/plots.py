"""Altair chart builders (pure: frames in, charts out) with a guard for failures."""

from __future__ import annotations

import logging
from collections.abc import Callable

import altair as alt
import pandas as pd

logger = logging.getLogger(__name__)

CHART_WIDTH = 360
CATEGORY_COLORS = {
    "content": "#2f6fdf",
    "stopword": "#e8590c",
    "special": "#7b2cbf",
    "punctuation": "#868e96",
}


def safe_chart(builder: Callable[..., alt.Chart], *args, **kwargs) -> alt.Chart | None:
    """Build a chart; on failure log it and return None (the component shows nothing)."""
    try:
        return builder(*args, **kwargs)
    except Exception:  # noqa: BLE001 - a broken plot must not break the tab
        logger.exception("Chart %s failed", getattr(builder, "__name__", builder))
        return None


def _category_scale() -> alt.Scale:
    return alt.Scale(domain=list(CATEGORY_COLORS), range=list(CATEGORY_COLORS.values()))


def token_bar_chart(frame: pd.DataFrame, title: str = "") -> alt.Chart:
    """Horizontal bars of token weights, coloured by category, in rank order.

    ``frame`` needs columns rank, token, weight, category (origin, source_text optional).
    """
    data = frame.copy()
    data["label"] = data["rank"].astype(str) + ". " + data["token"].astype(str)
    tooltip = [c for c in ("token", "weight", "category", "origin", "source_text", "position", "morpheme")
               if c in data.columns]
    return (
        alt.Chart(data, title=title)
        .mark_bar()
        .encode(
            x=alt.X("weight:Q", title="weight  log(1 + relu(logit))"),
            y=alt.Y("label:N", sort=alt.SortField("rank", order="ascending"), title=None),
            color=alt.Color("category:N", scale=_category_scale(), legend=alt.Legend(orient="bottom")),
            tooltip=tooltip,
        )
        .properties(height=max(120, 18 * len(data)), width=CHART_WIDTH)
    )


def leakage_bar_chart(frame: pd.DataFrame, title: str = "") -> alt.Chart:
    """Bars of how often each stopword/special token is in a query's top-k."""
    return (
        alt.Chart(frame, title=title)
        .mark_bar()
        .encode(
            x=alt.X("queries:Q", title="queries with the token in their top-k"),
            y=alt.Y("token:N", sort="-x", title=None),
            color=alt.Color("category:N", scale=_category_scale(), legend=alt.Legend(orient="bottom")),
            tooltip=["token", "category", "queries", "share_of_queries", "mean_weight"],
        )
        .properties(height=max(120, 18 * len(frame)), width=CHART_WIDTH)
    )

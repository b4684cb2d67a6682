"""Two corpus reports side by side: the headline figures and the tokens that changed most.

Tokens are matched across vocabularies by surface form (``sparse_demo.compare.token_key``:
marker-free, NFC, lower-cased; special tokens by role), as the Compare tab matches them, so
an XLM-R model and a WordPiece model can be put side by side. Changes are in *shares*
(``df / N`` and ``mass / total mass``), so the two reports may even cover corpora of
different sizes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from .core import CorpusReport, frame_records

#: Columns of :attr:`ReportComparison.changes`.
CHANGE_COLUMNS: tuple[str, ...] = (
    "key",
    "category",
    "df_a",
    "df_b",
    "df_share_a",
    "df_share_b",
    "df_share_change",
    "mass_a",
    "mass_b",
    "mass_share_a",
    "mass_share_b",
    "mass_share_change",
)
#: The headline figures compared (attributes of ``ReportTotals``).
HEADLINE_FIGURES: tuple[str, ...] = (
    "documents",
    "empty_documents",
    "mean_active_dims",
    "median_active_dims",
    "max_active_dims",
    "capped_documents",
    "distinct_tokens",
    "context_stopword_mass_ratio",
    "stopword_mass_ratio",
    "special_mass_ratio",
    "mean_doc_stopword_mass_ratio",
    "stopword_top5_share",
    "expansion_mass_ratio",
    "always_on_tokens",
    "always_on_mass_ratio",
    "posting_entries",
    "memory_index_bytes",
    "flops_per_pair",
    "postings_per_query",
)
CHANGE_SORTS: tuple[str, ...] = ("df", "mass")


@dataclass(frozen=True)
class ReportComparison:
    """Reports A and B with their figures side by side and per-surface changes.

    Attributes:
        a, b: the two reports.
        headline: one row per figure: ``figure, a, b, change`` (``b - a``).
        changes: one row per surface key (:data:`CHANGE_COLUMNS`), a key missing on one side
            counting 0 there.
    """

    a: CorpusReport
    b: CorpusReport
    headline: pd.DataFrame
    changes: pd.DataFrame

    def top_changes(self, n: int = 20, by: str = "df") -> pd.DataFrame:
        """The ``n`` keys whose ``by`` share (``df`` or ``mass``) changed most (absolute), largest first."""
        if by not in CHANGE_SORTS:
            raise ValueError(f"unknown change sort {by!r}; choose one of {', '.join(CHANGE_SORTS)}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        col = f"{by}_share_change"
        order = np.lexsort((self.changes["key"].to_numpy(dtype=str), -self.changes[col].abs().to_numpy()))
        return self.changes.iloc[order].head(n).reset_index(drop=True)

    def to_json(self, top: int = 20) -> dict[str, Any]:
        """``a`` and ``b`` reports (top tokens), the headline table and the top changes by df and by mass."""
        return {
            "a": self.a.to_json(top),
            "b": self.b.to_json(top),
            "headline": frame_records(self.headline),
            "changes_by_df": frame_records(self.top_changes(top, "df")),
            "changes_by_mass": frame_records(self.top_changes(top, "mass")),
        }


def compare_reports(a: CorpusReport, b: CorpusReport) -> ReportComparison:
    """Put two reports side by side (both need ``surfaces``: build them with ``keys``).

    Raises:
        ValueError: a report was built without surface keys.
    """
    for name, r in (("A", a), ("B", b)):
        if r.surfaces is None:
            raise ValueError(f"report {name} has no surface table; build it with keys= (token_key per column)")
    ta, tb = asdict(a.totals), asdict(b.totals)
    rows = []
    for fig in HEADLINE_FIGURES:
        va, vb = ta[fig], tb[fig]
        change = (vb - va) if va is not None and vb is not None else None
        rows.append({"figure": fig, "a": va, "b": vb, "change": change})
    headline = pd.DataFrame(rows, columns=["figure", "a", "b", "change"])
    sa = a.surfaces.set_index("key")  # type: ignore[union-attr]
    sb = b.surfaces.set_index("key")  # type: ignore[union-attr]
    keys = sa.index.union(sb.index)
    fa, fb = sa.reindex(keys), sb.reindex(keys)
    changes = pd.DataFrame(
        {
            "key": keys.to_numpy(dtype=object),
            "category": fa["category"].fillna(fb["category"]).to_numpy(dtype=object),
            "df_a": fa["df"].fillna(0).astype(np.int64).to_numpy(),
            "df_b": fb["df"].fillna(0).astype(np.int64).to_numpy(),
            "df_share_a": fa["df_share"].fillna(0.0).to_numpy(dtype=float),
            "df_share_b": fb["df_share"].fillna(0.0).to_numpy(dtype=float),
            "mass_a": fa["mass"].fillna(0.0).to_numpy(dtype=float),
            "mass_b": fb["mass"].fillna(0.0).to_numpy(dtype=float),
            "mass_share_a": fa["mass_share"].fillna(0.0).to_numpy(dtype=float),
            "mass_share_b": fb["mass_share"].fillna(0.0).to_numpy(dtype=float),
        }
    )
    changes["df_share_change"] = changes["df_share_b"] - changes["df_share_a"]
    changes["mass_share_change"] = changes["mass_share_b"] - changes["mass_share_a"]
    return ReportComparison(a, b, headline, changes[list(CHANGE_COLUMNS)])

"""Two or more models over a query set: per-model leakage and per-pair overlap."""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sparse_demo.progress import Progress, scaled

from ..analysis import DEFAULT_TOP_K, Analyzer, QueryAnalysis, batch_leakage
from ..encoder import SparseVector
from .alignment import AlignedRow, align, keyed_top, overlap
from .metrics import DEFAULT_RBO_P
from .query import ModelSide, QueryComparison

logger = logging.getLogger(__name__)

#: Sort orders for the "where do the models disagree most" table.
DISAGREEMENT_METRICS: tuple[str, ...] = ("weighted_overlap", "rbo", "jaccard")
_EMPTY_VECTOR = SparseVector(np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int32))


def slim(analysis: QueryAnalysis) -> QueryAnalysis:
    """A copy without the full vector (rows, stats and leakage kept): cheap to hold by the 1000."""
    enc = dataclasses.replace(analysis.encoding, vector=_EMPTY_VECTOR)
    return QueryAnalysis(
        encoding=enc,
        rows=analysis.rows,
        stats=analysis.stats,
        leakage=analysis.leakage,
        model=analysis.model,
        notes=list(analysis.notes),
    )


def analyze_query_set(
    analyzers: Mapping[str, Analyzer],
    queries: Sequence[str],
    top_k: int = DEFAULT_TOP_K,
    *,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> dict[str, list[QueryAnalysis]]:
    """Analyse every query with every model: one batched ``encode`` call per model.

    The returned analyses are :func:`slim` (no full vector), so a large set stays small.

    Args:
        analyzers: display name -> analyzer.
        queries: the texts.
        top_k: top-k used for the leakage figures.
        batch_size: encoder batch size.
        progress: ``progress(fraction of all models' encoding, "<model>: 64/200 texts encoded")``.
    """
    out: dict[str, list[QueryAnalysis]] = {}
    n_models = max(len(analyzers), 1)
    for i, (name, analyzer) in enumerate(analyzers.items()):
        stage = scaled(progress, i / n_models, (i + 1) / n_models)

        def report(fraction: float, text: str, _name: str = name, _stage: Progress = stage) -> None:
            _stage(fraction, f"{_name}: {text}")

        encodings: list = analyzer.encoder.encode(list(queries), batch_size=batch_size, progress=report)
        results = []
        for i, enc in enumerate(encodings):
            results.append(slim(analyzer.analyze_encoding(enc, top_k)))
            encodings[i] = None  # free each full vector as soon as it is summarised
        for r in results:
            r.model = name
        out[name] = results
        logger.info("Analysed %d queries with %s", len(results), name)
    return out


PAIR_COLUMNS = [
    "query_index",
    "query",
    "jaccard",
    "weighted_overlap",
    "rbo",
    "shared",
    "only_a",
    "only_b",
    "top_a",
    "top_b",
]


def _shown(row: AlignedRow, side: str) -> str:
    """A token as one model's column lists it: its key, or for a special token the model's own spelling
    (``</s>``, ``[SEP]``), as the leaking-tokens table writes it (the key ``[SEP]`` only matches roles)."""
    if getattr(row, f"category_{side}") == "special":
        return getattr(row, f"token_{side}") or row.key
    return row.key


@dataclass
class SetComparison:
    """Two or more models over a query set.

    Attributes:
        models: model names, in the order given.
        queries: the texts.
        top_k: keys compared per model.
        summary: one row per model: mean leakage figures, mean active dims, share of queries
            with a stopword in the top-1 / top-5 (``analysis.batch_leakage``).
        leaking_tokens: per model, the stopword / special tokens most often in a top-k.
        per_query: per model and query, the leakage figures.
        comparisons: per model pair ``(a, b)`` (a before b in ``models``), one
            :class:`QueryComparison` per query (without the morpheme view).
        failed: models that could not be used, with the reason.
    """

    models: list[str]
    queries: list[str]
    top_k: int
    summary: pd.DataFrame
    leaking_tokens: pd.DataFrame
    per_query: pd.DataFrame
    comparisons: dict[tuple[str, str], list[QueryComparison]]
    rbo_p: float = DEFAULT_RBO_P
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self.comparisons)

    def _pair(self, a: str, b: str) -> tuple[list[QueryComparison], bool]:
        if (a, b) in self.comparisons:
            return self.comparisons[(a, b)], False
        if (b, a) in self.comparisons:
            return self.comparisons[(b, a)], True
        raise ValueError(f"no comparison of {a!r} and {b!r}; pairs: {self.pairs}")

    def pair_frame(self, a: str, b: str) -> pd.DataFrame:
        """Per query overlap figures of models ``a`` and ``b`` (in that orientation)."""
        comps, swapped = self._pair(a, b)
        records = []
        for i, c in enumerate(comps):
            only_a, only_b = [_shown(r, "a") for r in c.only_a], [_shown(r, "b") for r in c.only_b]
            top_a = [_shown(r, "a") for r in sorted(c.rows, key=lambda r: r.rank_a or 1e9) if r.rank_a][:10]
            top_b = [_shown(r, "b") for r in sorted(c.rows, key=lambda r: r.rank_b or 1e9) if r.rank_b][:10]
            if swapped:
                only_a, only_b, top_a, top_b = only_b, only_a, top_b, top_a
            records.append(
                {
                    "query_index": i,
                    "query": c.text,
                    "jaccard": round(c.overlap.jaccard, 4),
                    "weighted_overlap": round(c.overlap.weighted_overlap, 4),
                    "rbo": round(c.overlap.rbo, 4),
                    "shared": len(c.shared),
                    "only_a": " ".join(only_a),
                    "only_b": " ".join(only_b),
                    "top_a": " ".join(top_a),
                    "top_b": " ".join(top_b),
                }
            )
        return pd.DataFrame(records, columns=PAIR_COLUMNS)

    def disagreements(self, a: str, b: str, by: str = "weighted_overlap", n: int | None = None) -> pd.DataFrame:
        """Queries where ``a`` and ``b`` disagree most: lowest ``by`` first (ties: the others).

        Raises:
            ValueError: ``by`` is not one of :data:`DISAGREEMENT_METRICS`.
        """
        if by not in DISAGREEMENT_METRICS:
            raise ValueError(f"by must be one of {', '.join(DISAGREEMENT_METRICS)}; got {by!r}")
        frame = self.pair_frame(a, b)
        keys = [by] + [m for m in DISAGREEMENT_METRICS if m != by] + ["query_index"]
        frame = frame.sort_values(keys, kind="stable").reset_index(drop=True)
        frame.insert(0, "rank", range(1, len(frame) + 1))
        return frame if n is None else frame.head(n)

    def pair_summary(self) -> pd.DataFrame:
        """Mean and median overlap figures per model pair."""
        records = []
        for (a, b), comps in self.comparisons.items():
            rec: dict[str, object] = {"model_a": a, "model_b": b, "queries": len(comps)}
            for metric in ("jaccard", "weighted_overlap", "rbo"):
                values = np.array([getattr(c.overlap, metric) for c in comps], dtype=np.float64)
                rec[f"mean_{metric}"] = round(float(values.mean()), 4) if values.size else None
                rec[f"median_{metric}"] = round(float(np.median(values)), 4) if values.size else None
            records.append(rec)
        return pd.DataFrame(records)

    def to_json(self, *, details: bool = True, most: int = 10) -> dict:
        """A JSON-able dict: summary, leaking tokens, and per pair the figures per query."""
        pairs = []
        for a, b in self.pairs:
            comps, _ = self._pair(a, b)
            summary_row = self.pair_summary().query("model_a == @a and model_b == @b")
            entry = {
                "model_a": a,
                "model_b": b,
                **{k: v for k, v in summary_row.iloc[0].to_dict().items() if k not in ("model_a", "model_b")},
                "most_disagreeing": self.disagreements(a, b, n=most).to_dict(orient="records"),
            }
            if details:
                entry["queries"] = [c.to_json(morphemes=False) for c in comps]
            pairs.append(entry)
        leaking: dict[str, list] = {}
        for model in self.models:
            part = self.leaking_tokens[self.leaking_tokens["model"] == model] if len(self.leaking_tokens) else []
            leaking[model] = part.drop(columns="model").to_dict(orient="records") if len(part) else []
        return {
            "models": self.models,
            "queries": len(self.queries),
            "top_k": self.top_k,
            "rbo_p": self.rbo_p,
            "summary": self.summary.to_dict(orient="records"),
            "leaking_tokens": leaking,
            "pairs": pairs,
            "failed": dict(self.failed),
        }


def compare_query_set(
    analyses: Mapping[str, Sequence[QueryAnalysis]],
    top_k: int = DEFAULT_TOP_K,
    *,
    rbo_p: float = DEFAULT_RBO_P,
    failed: Mapping[str, str] | None = None,
) -> SetComparison:
    """Aggregate per-model leakage and per-pair overlap over a query set.

    Args:
        analyses: model name -> its analyses of the same queries, in the same order
            (``analyze_query_set``). One model gives the leakage summary without pairs.
        top_k: keys compared per model and top-k of the leakage figures.
        rbo_p: RBO persistence.
        failed: models left out, with the reason (carried into the result).

    Raises:
        ValueError: no model, or the models' query lists differ.
    """
    models = list(analyses)
    if not models:
        raise ValueError("no model to compare")
    queries = [a.encoding.text for a in analyses[models[0]]]
    for m in models[1:]:
        if [a.encoding.text for a in analyses[m]] != queries:
            raise ValueError(f"model {m!r} analysed other queries than {models[0]!r}")
    summaries, leaking, per_query = [], [], []
    for m in models:
        bl = batch_leakage(analyses[m], top_k)
        summaries.append({"model": m, **bl.summary})
        leaking.append(bl.leaking_tokens.assign(model=m))
        per_query.append(bl.per_query.assign(model=m))
    leaking_frame = pd.concat(leaking, ignore_index=True) if leaking else pd.DataFrame()
    if len(leaking_frame):
        leaking_frame = leaking_frame[["model"] + [c for c in leaking_frame.columns if c != "model"]]
    per_query_frame = pd.concat(per_query, ignore_index=True)
    per_query_frame = per_query_frame[["model"] + [c for c in per_query_frame.columns if c != "model"]]
    keyed = {m: [keyed_top(a.rows, top_k) for a in analyses[m]] for m in models}
    comparisons: dict[tuple[str, str], list[QueryComparison]] = {}
    for ma, mb in itertools.combinations(models, 2):
        comps = []
        for qa, qb, ka, kb in zip(analyses[ma], analyses[mb], keyed[ma], keyed[mb]):
            comps.append(
                QueryComparison(
                    text=qa.encoding.text,
                    top_k=top_k,
                    side_a=ModelSide.of(qa, ka),
                    side_b=ModelSide.of(qb, kb),
                    rows=align(ka, kb),
                    overlap=overlap(ka, kb, rbo_p),
                    rbo_p=rbo_p,
                )
            )
        comparisons[(ma, mb)] = comps
    return SetComparison(
        models=models,
        queries=queries,
        top_k=top_k,
        summary=pd.DataFrame(summaries),
        leaking_tokens=leaking_frame,
        per_query=per_query_frame,
        comparisons=comparisons,
        rbo_p=rbo_p,
        failed=dict(failed or {}),
    )


__all__ = [
    "DISAGREEMENT_METRICS",
    "PAIR_COLUMNS",
    "SetComparison",
    "analyze_query_set",
    "compare_query_set",
    "slim",
]

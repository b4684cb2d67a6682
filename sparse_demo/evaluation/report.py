"""The evaluation's outputs: the card-layout table, Markdown, CSV/JSON, reference rows, wins/losses.

The model card's own figures are a *reference*, measured on the card's private set: they are
kept in :data:`CARD_REFERENCE` and always rendered in a separate, labelled table, never among
the measured rows.

Significance marks: ``†`` after a value means the system differs from the baseline on that
metric (paired randomization test, Holm-corrected across systems, p < 0.05).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any

from ..formatting import fmt_number, fmt_p
from .runner import EvalReport, SystemResult

SIG_MARK = "†"
ALPHA = 0.05
REFERENCE_NOTE = "reported on the card's private set"
CARD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("recall@1", "Recall@1"),
    ("recall@5", "Recall@5"),
    ("recall@10", "Recall@10"),
    ("mrr@10", "MRR@10"),
    ("ndcg@10", "nDCG@10"),
)
PERCENT_METRICS = ("recall@1", "recall@5", "recall@10", "recall@100")


@dataclass(frozen=True)
class ReferenceRow:
    """Figures copied from the model card (None: not reported)."""

    system: str
    values: dict[str, float | None]
    source: str = REFERENCE_NOTE


#: The card's table (V26 vs BM25 on 1,000 Korean QA pairs, private).
CARD_REFERENCE: tuple[ReferenceRow, ...] = (
    ReferenceRow(
        "V26 (model card)",
        {"recall@1": 0.407, "recall@5": None, "recall@10": None, "mrr@10": 0.4555, "ndcg@10": 0.4806},
    ),
    ReferenceRow(
        "BM25 (model card)",
        {"recall@1": 0.300, "recall@5": None, "recall@10": None, "mrr@10": 0.3541, "ndcg@10": 0.3767},
    ),
)


def format_value(metric: str, value: float | None) -> str:
    """Recall as a percentage with one decimal (as the card), other metrics with 4 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{100 * value:.1f}%" if metric in PERCENT_METRICS else f"{value:.4f}"


def _marked(r: SystemResult, metric: str) -> str:
    text = format_value(metric, r.means[metric])
    p = r.p_holm.get(metric)
    return text + (SIG_MARK if p is not None and p < ALPHA else "")


def _bytes(n: int | None) -> str:
    if n is None:
        return "—"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def significance_tested(report: EvalReport) -> bool:
    """Whether the run tested any system against the baseline (``evaluate(significance=False)`` does not)."""
    return any(r.significance for r in report.systems if not r.is_baseline)


def table_rows(report: EvalReport) -> list[dict[str, Any]]:
    """The measured table, one dict per system, values formatted as in the card (plus costs and p).

    For reading: recall as percentages, other metrics with 4 decimals, p-values as ``0.007`` / ``< 0.001``
    (:func:`sparse_demo.formatting.fmt_p`); :func:`metrics_records` keeps the full-precision numbers."""
    rows = []
    for r in report.systems:
        row: dict[str, Any] = {"System": r.label + (" (baseline)" if r.is_baseline else "")}
        for m, title in CARD_COLUMNS:
            row[title] = _marked(r, m)
        row["Recall@100"] = format_value("recall@100", r.means["recall@100"])
        if significance_tested(report):
            p = r.p_holm.get(report.metric)
            row[f"p ({report.metric}, Holm)"] = fmt_p(p)
            ci = r.interval
            interval = "—" if ci is None else f"{ci.difference:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]"
            row[f"Δ{report.metric} 95% CI"] = interval
        c = r.cost
        row["q dims"] = f"{c.query_active:.1f}"
        row["d dims"] = f"{c.doc_active:.1f}"
        row["FLOPS"] = fmt_number(c.flops)
        row["index"] = _bytes(c.index_bytes)
        if report.backend == "opensearch":
            row["OpenSearch store"] = _bytes(c.opensearch_store_bytes)
        row["p50 ms"] = f"{c.latency_p50_ms:.1f}"
        row["query encode ms"] = "—" if c.query_encode_ms is None else f"{c.query_encode_ms:.2f} ({c.query_side})"
        row["docs/s"] = f"{c.encode_docs_per_s:.0f}" + (" (cached)" if c.encodings_cached else "")
        rows.append(row)
    return rows


def reference_rows() -> list[dict[str, Any]]:
    """The card's figures as table rows (a separate table)."""
    out = []
    for ref in CARD_REFERENCE:
        row: dict[str, Any] = {"System": ref.system}
        for m, title in CARD_COLUMNS:
            row[title] = format_value(m, ref.values.get(m))
        row["Source"] = ref.source
        out.append(row)
    return out


def _markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def summary_line(report: EvalReport) -> str:
    """One line: set, queries evaluated (of how many judged), documents, backend, time."""
    of = f" of {report.total_queries}" if report.total_queries != report.num_queries else ""
    return (
        f"{report.name}: {report.num_queries}{of} queries evaluated over {report.num_docs:,} documents "
        f"({report.backend} backend, {report.depth} hits per leg) in {report.seconds:.1f} s"
    )


def to_markdown(report: EvalReport, *, costs: bool = True, reference: bool = True) -> str:
    """A Markdown section ready to paste into a model card: measured table, legend, reference table."""
    rows = table_rows(report)
    if not costs:
        keep = ["System", *(t for _, t in CARD_COLUMNS)]
        rows = [{k: r[k] for k in keep} for r in rows]
    legend = (
        "FLOPS = Σ_v p_q(v)·p_d(v) (BM25: over its terms; hybrid: both legs); index = memory-backend "
        "bytes; p50 = per-query latency; docs/s = documents prepared per second for the index (Kiwi terms, "
        "plus the model's vectors where a model is listed)."
    )
    if len(report.systems) > 1 and not significance_tested(report):
        legend = "Significance against the baseline was not tested in this run. " + legend
    elif len(report.systems) > 1:
        legend = (
            f"{SIG_MARK}: differs from the baseline ({report.baseline}) with p < {ALPHA} (paired randomization "
            f"test, Holm-corrected across {len(report.systems) - 1} systems). " + legend
        )
    parts = [f"**{summary_line(report)}**", "", _markdown_table(rows), "", legend]
    for s in report.weight_sweeps:
        parts.append(
            f"Suggested hybrid weight for {s.model}: **{s.best_weight:g}** (best {s.metric} on all "
            f"{s.num_queries} queries; the {s.folds}-fold CV row scores each query with a weight chosen "
            f"without it: {s.cv.summary()})."
        )
    parts += [f"- {n}" for n in report.notes]
    if reference:
        parts += [
            "",
            f"Reference ({REFERENCE_NOTE}; not measured here, not comparable):",
            "",
            _markdown_table(reference_rows()),
        ]
    return "\n".join(parts)


def _csv(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def metrics_records(report: EvalReport) -> list[dict[str, Any]]:
    """Unformatted table rows (numbers) for CSV/JSON."""
    out = []
    for r in report.systems:
        rec: dict[str, Any] = {
            "system": r.label,
            "baseline": r.is_baseline,
            "weight": r.weight,
            "queries": report.num_queries,
        }
        rec.update({m: v for m, v in r.means.items()})
        for m, sig in r.significance.items():
            rec[f"p_{m}"] = sig.p_value
            rec[f"p_holm_{m}"] = r.p_holm.get(m)
        if r.interval is not None:
            rec[f"delta_{report.metric}"] = r.interval.difference
            rec[f"ci_low_{report.metric}"] = r.interval.low
            rec[f"ci_high_{report.metric}"] = r.interval.high
        rec.update(r.cost.to_dict())
        out.append(rec)
    return out


def table_csv(report: EvalReport) -> str:
    """CSV of the measured table (numbers, one row per system)."""
    return _csv(metrics_records(report))


def run_records(report: EvalReport) -> list[dict[str, Any]]:
    """Per-query runs: one record per (system, query, rank)."""
    out = []
    for r in report.systems:
        for qid, hits in r.run.items():
            judged = report.qrels.get(qid, {})
            for rank, (doc, score) in enumerate(hits, start=1):
                out.append(
                    {
                        "system": r.label,
                        "query_id": qid,
                        "rank": rank,
                        "doc_id": doc,
                        "score": score,
                        "relevance": judged.get(doc, 0),
                    }
                )
    return out


def per_query_records(report: EvalReport) -> list[dict[str, Any]]:
    """Per-query metric values: one record per (system, query)."""
    out = []
    for r in report.systems:
        for qid in report.query_texts:
            rec: dict[str, Any] = {"system": r.label, "query_id": qid, "query": report.query_texts[qid]}
            rec.update({m: vals[qid] for m, vals in r.per_query.items()})
            out.append(rec)
    return out


def runs_csv(report: EvalReport) -> str:
    """CSV of the per-query runs (TREC-like: system, query, rank, doc, score, relevance)."""
    return _csv(run_records(report))


def to_json(report: EvalReport, *, runs: bool = False) -> dict[str, Any]:
    """A JSON-ready dict: summary, per-system metrics and costs, sweeps, reference (separate), runs."""
    out: dict[str, Any] = {
        "set": report.name,
        "queries_evaluated": report.num_queries,
        "queries_judged": report.total_queries,
        "documents": report.num_docs,
        "backend": report.backend,
        "depth": report.depth,
        "baseline": report.baseline,
        "metric": report.metric,
        "seconds": round(report.seconds, 3),
        "notes": report.notes,
        "document_windows": {m: c.to_json() for m, c in report.document_windows.items()},
        "systems": metrics_records(report),
        "weight_sweeps": [
            {
                "model": s.model,
                "weights": s.weights,
                "overall": s.overall,
                "best_weight": s.best_weight,
                "queries": s.num_queries,
                "folds": s.folds,
                "fold_weights": s.fold_weights,
                "fold_of": s.cv.fold_of,
                "cv_mean": s.cv_mean,
                "seed": s.seed,
                "metric": s.metric,
            }
            for s in report.weight_sweeps
        ],
        "reference": {"source": REFERENCE_NOTE, "rows": [{"system": r.system, **r.values} for r in CARD_REFERENCE]},
    }
    if report.prune_sweep is not None:
        out["prune_sweep"] = [p.to_dict() for p in report.prune_sweep]
    if runs:
        out["per_query"] = per_query_records(report)
        out["runs"] = run_records(report)
    return out


def dumps(report: EvalReport, *, runs: bool = False) -> str:
    """:func:`to_json` as a string (NaN written as null)."""

    def clean(x: Any) -> Any:
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    return json.dumps(clean(to_json(report, runs=runs)), ensure_ascii=False, indent=2)


@dataclass(frozen=True)
class WinsLosses:
    """Per-query comparison of two systems on one metric."""

    system_a: str
    system_b: str
    metric: str
    rows: list[dict[str, Any]]
    wins: int
    losses: int
    ties: int

    @property
    def summary(self) -> str:
        return (
            f"{self.system_b} vs {self.system_a} on {self.metric}: {self.wins} wins, {self.losses} losses, "
            f"{self.ties} ties over {self.wins + self.losses + self.ties} queries"
        )


def wins_losses(report: EvalReport, system_a: str, system_b: str, metric: str = "ndcg@10") -> WinsLosses:
    """Queries where B beats A and where it loses (largest differences first), ties last.

    Raises:
        ValueError: an unknown system label or metric.
    """
    a, b = report.system(system_a), report.system(system_b)
    if metric not in a.per_query:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(a.per_query)}")
    rows = []
    for qid, text in report.query_texts.items():
        va, vb = a.per_query[metric][qid], b.per_query[metric][qid]
        delta = vb - va
        top_a = a.run[qid][0][0] if a.run[qid] else ""
        top_b = b.run[qid][0][0] if b.run[qid] else ""
        outcome = "win" if delta > 1e-12 else "loss" if delta < -1e-12 else "tie"
        rows.append(
            {
                "query_id": qid,
                "query": text,
                "outcome": outcome,
                "delta": round(delta, 4),
                system_a: round(va, 4),
                system_b: round(vb, 4),
                "top A": top_a,
                "top B": top_b,
            }
        )
    rows.sort(key=lambda r: (r["outcome"] == "tie", -abs(r["delta"]), r["query_id"]))
    wins = sum(r["outcome"] == "win" for r in rows)
    losses = sum(r["outcome"] == "loss" for r in rows)
    return WinsLosses(system_a, system_b, metric, rows, wins, losses, len(rows) - wins - losses)

"""Two models on one query: :class:`QueryComparison` and :func:`compare_analyses`."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field

import pandas as pd

from ..analysis import DEFAULT_TOP_K, LeakageReport, QueryAnalysis, VectorStats
from .alignment import AlignedRow, KeyedList, Overlap, align, aligned_frame, keyed_top, overlap
from .metrics import DEFAULT_RBO_P
from .morphemes import MorphemeRow, morpheme_view


@dataclass(frozen=True)
class ModelSide:
    """One model's figures for a query (shown side by side)."""

    model: str
    stats: VectorStats
    leakage: LeakageReport
    num_tokens: int
    truncated: bool
    notes: tuple[str, ...] = ()
    merges: tuple[str, ...] = ()

    @classmethod
    def of(cls, analysis: QueryAnalysis, keyed: KeyedList) -> ModelSide:
        return cls(
            model=analysis.model,
            stats=analysis.stats,
            leakage=analysis.leakage,
            num_tokens=len(analysis.encoding.input_ids),
            truncated=analysis.encoding.truncated,
            notes=tuple(analysis.notes),
            merges=keyed.merges,
        )

    def figures(self) -> dict[str, object]:
        lk, st = self.leakage, self.stats
        return {
            "active_dims": st.active_dims,
            "l1": round(st.l1, 4),
            "sum_squares": round(st.sum_squares, 4),
            "topk_mass_ratio": round(st.topk_mass_ratio, 4),
            "stopword_mass_ratio": round(lk.stopword_mass_ratio, 4),
            "vocab_stopword_mass_ratio": round(lk.vocab_stopword_mass_ratio, 4),
            "special_mass_ratio": round(lk.special_mass_ratio, 4),
            "stopword_topk_ratio": round(lk.stopword_topk_ratio, 4),
            "vocab_stopword_topk_ratio": round(lk.vocab_stopword_topk_ratio, 4),
            "special_topk_ratio": round(lk.special_topk_ratio, 4),
            "first_stopword_rank": lk.first_stopword_rank,
            "stopword_tokens": ", ".join(lk.stopword_tokens),
            "input_tokens": self.num_tokens,
            "truncated": self.truncated,
        }


@dataclass
class QueryComparison:
    """Two models on one query: aligned top-k keys, overlap figures, leakage and morphemes."""

    text: str
    top_k: int
    side_a: ModelSide
    side_b: ModelSide
    rows: list[AlignedRow]
    overlap: Overlap
    rbo_p: float = DEFAULT_RBO_P
    morphemes: list[MorphemeRow] = field(default_factory=list)

    @property
    def model_a(self) -> str:
        return self.side_a.model

    @property
    def model_b(self) -> str:
        return self.side_b.model

    @property
    def shared(self) -> list[AlignedRow]:
        return [r for r in self.rows if r.status == "both"]

    @property
    def only_a(self) -> list[AlignedRow]:
        return [r for r in self.rows if r.status == "only_a"]

    @property
    def only_b(self) -> list[AlignedRow]:
        return [r for r in self.rows if r.status == "only_b"]

    @property
    def notes(self) -> list[str]:
        out = []
        for label, side in (("A", self.side_a), ("B", self.side_b)):
            out += [f"{label} ({side.model}): {n}" for n in side.notes]
            out += [f"{label} ({side.model}): {m}" for m in side.merges]
        return out

    def to_frame(self) -> pd.DataFrame:
        """The aligned table (one row per key of the union of both top-k lists)."""
        return aligned_frame(self.rows, self.top_k)

    def sides_frame(self) -> pd.DataFrame:
        """Stats and leakage of both models, one row per figure."""
        fa, fb = self.side_a.figures(), self.side_b.figures()
        return pd.DataFrame(
            {"figure": list(fa), f"A: {self.model_a}": list(fa.values()), f"B: {self.model_b}": list(fb.values())}
        )

    def morpheme_frame(self) -> pd.DataFrame:
        columns = [f.name for f in dataclasses.fields(MorphemeRow)]
        return pd.DataFrame([asdict(m) for m in self.morphemes], columns=columns)

    def to_json(self, *, morphemes: bool = True) -> dict:
        def side(s: ModelSide) -> dict:
            return {
                "model": s.model,
                "stats": asdict(s.stats),
                "leakage": asdict(s.leakage),
                "input_tokens": s.num_tokens,
                "truncated": s.truncated,
            }

        out = {
            "text": self.text,
            "model_a": self.model_a,
            "model_b": self.model_b,
            "top_k": self.top_k,
            "jaccard": self.overlap.jaccard,
            "weighted_overlap": self.overlap.weighted_overlap,
            "rbo": self.overlap.rbo,
            "rbo_p": self.rbo_p,
            "tokens": [asdict(r) for r in self.rows],
            "shared": [r.key for r in self.shared],
            "only_a": [r.key for r in self.only_a],
            "only_b": [r.key for r in self.only_b],
            "a": side(self.side_a),
            "b": side(self.side_b),
            "notes": self.notes,
        }
        if morphemes:
            out["morphemes"] = [asdict(m) for m in self.morphemes]
        return out


def compare_analyses(
    a: QueryAnalysis,
    b: QueryAnalysis,
    top_k: int = DEFAULT_TOP_K,
    *,
    rbo_p: float = DEFAULT_RBO_P,
    with_morphemes: bool = True,
) -> QueryComparison:
    """Compare two models' analyses of the same text.

    Args:
        a: model A's analysis (``Analyzer.analyze``).
        b: model B's analysis of the same text.
        top_k: keys compared per model.
        rbo_p: RBO persistence.
        with_morphemes: also build the morpheme view (needs the full vectors).

    Raises:
        ValueError: the analyses are of different texts, or bad ``top_k`` / ``rbo_p``.
    """
    if a.encoding.text != b.encoding.text:
        raise ValueError("the two analyses are of different texts")
    ka, kb = keyed_top(a.rows, top_k), keyed_top(b.rows, top_k)
    return QueryComparison(
        text=a.encoding.text,
        top_k=top_k,
        side_a=ModelSide.of(a, ka),
        side_b=ModelSide.of(b, kb),
        rows=align(ka, kb),
        overlap=overlap(ka, kb, rbo_p),
        rbo_p=rbo_p,
        morphemes=morpheme_view(a, b) if with_morphemes else [],
    )


__all__ = ["ModelSide", "QueryComparison", "compare_analyses"]

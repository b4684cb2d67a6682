"""Loss terms of the card's recipe, made small.

``L = InfoNCE + lambda_flops_t * FLOPS_idf + lambda_margin * Margin + lambda_kd * KD + lambda_vector_kd * VKD``

Notation: a batch of ``B`` queries with sparse vectors ``q_i`` and their positives ``d_i``
(``[B, V]``, non-negative, from :func:`sparse_demo.encoder.pool_logits`); optionally ``M``
explicit negatives ``n_m`` (each belonging to one query ``r(m)``); ``s(a, b) = a · b``.

* **InfoNCE** (in-batch negatives): ``S = [Q Dᵀ | Q Nᵀ] / tau`` of shape ``[B, B + M]``
  (explicit negatives are extra columns shared by every query), and
  ``InfoNCE = -(1/B) sum_i log softmax(S_i)[i]`` (the positive is on the diagonal).
* **FLOPS_idf** (per side, queries and documents separately):
  ``FLOPS_idf(W) = sum_j p_j * (mean_i W_ij)^2`` with penalty per vocabulary dimension
  ``p_j = (1 + idf_alpha * (1 - idf_norm_j)) * s_j`` where

  - ``idf_j = log(1 + (N - df_j + 0.5) / (df_j + 0.5))`` over the ``N`` training documents,
  - ``idf_norm_j = clip((idf_j - idf_min) / (idf_max - idf_min), 0, 1)`` with ``idf_min`` and
    ``idf_max`` taken over **non-special** tokens only (special tokens such as ``<s>``
    occur in every document and would otherwise compress the range),
  - ``s_j = special_token_penalty`` for special ids, ``stopword_penalty`` for stopword ids,
    else 1.

  So a token that occurs everywhere costs ``1 + idf_alpha`` times a rare one, a stopword
  ``stopword_penalty`` times more, and a special token ``special_token_penalty`` times more.
* **Margin** (when negatives are given): ``mean_m max(0, margin - (s(q_r, d_r) - s(q_r, n_m)))``.
* **KD** (when teacher scores are given): ``mean_i (z_i - t_i)^2`` where ``t_i`` is the
  teacher score and ``z_i`` the student's margin ``s(q_i, d_i) - s(q_i, n_i)`` when pair ``i``
  has a negative, else its score ``s(q_i, d_i)``.
* **VKD** (when a teacher gives target vectors, e.g. the demo models' CoNg teacher):
  ``mean_r sum_j m_rj (w_rj - t_rj)^2`` over the batch's query and positive vectors ``w_r``, with the
  teacher's target ``t_rj`` (0 where it proposes nothing) and ``m_rj = 0`` on the ids it leaves free.
  Distilling vectors rather than scores keeps what the teacher adds to a text (its expansions) while the
  other terms train retrieval; off (``lambda_vector_kd = 0``) by default.
* **Ramp**: ``lambda_t = lambda * min(1, t / T)^2`` for regularisation weights over
  ``T = reg_warmup_steps`` (``lambda_t = lambda`` when ``T = 0``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class LossConfig:
    """Weights of the loss terms (card defaults).

    Attributes:
        temperature: InfoNCE temperature ``tau`` (> 0).
        lambda_flops_query: FLOPS_idf weight on query vectors (card: 0.010).
        lambda_flops_doc: FLOPS_idf weight on document vectors (card: 0.010).
        reg_warmup_steps: ``T`` of the quadratic ramp of the FLOPS weights.
        idf_alpha: how much more a frequent token costs than a rare one (card: 4.0).
        stopword_penalty: FLOPS multiplier for stopword ids (card: 15).
        special_token_penalty: FLOPS multiplier for special ids (card: 100).
        margin: hinge margin of the margin loss.
        lambda_margin: weight of the margin loss (0 disables it).
        lambda_kd: weight of the distillation loss (0 disables it).
        lambda_vector_kd: weight of the vector distillation ``VKD`` (used only when the run is given a vector
            teacher; 0 disables it).
    """

    temperature: float = 1.0
    lambda_flops_query: float = 0.010
    lambda_flops_doc: float = 0.010
    reg_warmup_steps: int = 100
    idf_alpha: float = 4.0
    stopword_penalty: float = 15.0
    special_token_penalty: float = 100.0
    margin: float = 1.0
    lambda_margin: float = 1.0
    lambda_kd: float = 1.0
    lambda_vector_kd: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field."""
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for name in (
            "lambda_flops_query",
            "lambda_flops_doc",
            "idf_alpha",
            "margin",
            "lambda_margin",
            "lambda_kd",
            "lambda_vector_kd",
        ):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        for name in ("stopword_penalty", "special_token_penalty"):
            value = getattr(self, name)
            if not (value >= 1 and math.isfinite(value)):
                raise ValueError(f"{name} must be >= 1 (1 = no extra penalty), got {value}")
        if self.reg_warmup_steps < 0:
            raise ValueError(f"reg_warmup_steps must be >= 0, got {self.reg_warmup_steps}")

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------- weights
def ramp(weight: float, step: int, warmup_steps: int) -> float:
    """``weight * min(1, step / warmup_steps)^2`` (``weight`` when ``warmup_steps == 0``)."""
    if warmup_steps <= 0:
        return weight
    return weight * min(1.0, max(0, step) / warmup_steps) ** 2


def document_frequencies(docs: Iterable[Sequence[int]], vocab_size: int) -> tuple[np.ndarray, int]:
    """``(df [vocab], N)``: in how many token-id lists each id occurs, and how many lists."""
    df = np.zeros(vocab_size, dtype=np.int64)
    n = 0
    for ids in docs:
        n += 1
        uniq = np.unique(np.asarray(ids, dtype=np.int64))
        uniq = uniq[(uniq >= 0) & (uniq < vocab_size)]
        df[uniq] += 1
    return df, n


def idf_from_df(df: np.ndarray, num_docs: int) -> np.ndarray:
    """BM25's idf: ``log(1 + (N - df + 0.5) / (df + 0.5))`` (always > 0)."""
    df = np.asarray(df, dtype=np.float64)
    return np.log1p((num_docs - df + 0.5) / (df + 0.5))


def idf_penalties(
    idf: np.ndarray,
    *,
    special_ids: Iterable[int] = (),
    stopword_ids: Iterable[int] = (),
    idf_alpha: float = 4.0,
    stopword_penalty: float = 15.0,
    special_token_penalty: float = 100.0,
) -> torch.Tensor:
    """Per-dimension FLOPS penalty ``p_j = (1 + idf_alpha * (1 - idf_norm_j)) * s_j``.

    ``idf_norm`` is min-max normalised over non-special ids only and clipped to ``[0, 1]``;
    ``s_j`` is ``special_token_penalty`` for special ids, ``stopword_penalty`` for
    (non-special) stopword ids and 1 otherwise. See the module docstring.

    Returns:
        float32 tensor ``[vocab]``.
    """
    idf = np.asarray(idf, dtype=np.float64)
    vocab = idf.shape[0]
    special = np.zeros(vocab, dtype=bool)
    special_list = [i for i in special_ids if 0 <= i < vocab]
    special[special_list] = True
    stop = np.zeros(vocab, dtype=bool)
    stop[[i for i in stopword_ids if 0 <= i < vocab]] = True
    regular = idf[~special]
    lo, hi = (float(regular.min()), float(regular.max())) if regular.size else (0.0, 1.0)
    span = hi - lo
    norm = np.clip((idf - lo) / span, 0.0, 1.0) if span > 0 else np.ones(vocab)
    scale = np.ones(vocab)
    scale[stop] = stopword_penalty
    scale[special] = special_token_penalty
    return torch.tensor((1.0 + idf_alpha * (1.0 - norm)) * scale, dtype=torch.float32)


# ---------------------------------------------------------------------- terms
def infonce_loss(
    q: torch.Tensor, d: torch.Tensor, negatives: torch.Tensor | None = None, temperature: float = 1.0
) -> torch.Tensor:
    """In-batch InfoNCE: positives on the diagonal, explicit negatives as extra columns.

    Args:
        q: ``[B, V]`` query vectors.
        d: ``[B, V]`` positive document vectors (row ``i`` is query ``i``'s positive).
        negatives: ``[M, V]`` extra negative documents, shared by every query, or None.
        temperature: ``tau``.
    """
    docs = d if negatives is None or negatives.shape[0] == 0 else torch.cat([d, negatives], dim=0)
    scores = (q @ docs.T).float() / temperature
    target = torch.arange(q.shape[0], device=q.device)
    return nn.functional.cross_entropy(scores, target)


def flops_idf(w: torch.Tensor, penalty: torch.Tensor | None = None) -> torch.Tensor:
    """``sum_j p_j * (mean_i w_ij)^2`` (plain FLOPS when ``penalty`` is None)."""
    mean = w.float().mean(dim=0)
    sq = mean * mean
    return (sq * penalty.to(sq.device)).sum() if penalty is not None else sq.sum()


def margin_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """``mean max(0, margin - (pos - neg))`` over aligned score pairs."""
    return torch.relu(margin - (pos_scores.float() - neg_scores.float())).mean()


def kd_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared error between student scores (or margins) and teacher scores."""
    return ((student.float() - teacher.float().to(student.device)) ** 2).mean()


def dense_targets(items: Sequence[tuple[dict[int, float], set[int]]], vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(target, mask)``, each ``[len(items), vocab]``, from a teacher's ``(targets, free ids)`` per row: the target
    weights (0 elsewhere), and a mask of 1 except 0 on the free ids (ids outside the vocabulary are ignored)."""
    target = torch.zeros(len(items), vocab)
    mask = torch.ones(len(items), vocab)
    for row, (tg, free) in enumerate(items):
        if tg:
            ids = [t for t in tg if 0 <= t < vocab]
            target[row, ids] = torch.tensor([tg[t] for t in ids])
        if free:
            mask[row, [f for f in free if 0 <= f < vocab]] = 0.0
    return target, mask


def vector_kd_loss(vectors: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean_r sum_j mask_rj (vectors_rj - target_rj)^2`` (``[R, V]`` each): VKD of the module docstring."""
    diff = vectors.float() - target.to(vectors.device)
    return (diff * diff * mask.to(vectors.device)).sum(dim=1).mean()


@dataclass
class LossOutput:
    """The total loss and its components (floats, for logging).

    Components: ``infonce``, ``flops_q``, ``flops_d``, ``margin``, ``kd`` (raw, unweighted; ``vector_kd`` too
    when the vector distillation is on), ``lambda_flops_q``, ``lambda_flops_d`` (ramped weights at this step)
    and ``total``.
    """

    total: torch.Tensor
    components: dict[str, float]


def splade_loss(
    q: torch.Tensor,
    d: torch.Tensor,
    config: LossConfig,
    *,
    step: int,
    penalty: torch.Tensor | None = None,
    negatives: torch.Tensor | None = None,
    negative_rows: torch.Tensor | None = None,
    teacher: torch.Tensor | None = None,
    teacher_mask: torch.Tensor | None = None,
    vector_targets: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LossOutput:
    """The full objective for one batch (see the module docstring for every formula).

    Args:
        q, d: ``[B, V]`` query and positive vectors.
        config: loss weights.
        step: optimiser step (for the FLOPS ramp).
        penalty: ``[V]`` FLOPS_idf penalties (:func:`idf_penalties`), or None for plain FLOPS.
        negatives: ``[M, V]`` explicit negatives or None.
        negative_rows: ``[M]`` the query row each negative belongs to.
        teacher: ``[B]`` teacher scores (any value where ``teacher_mask`` is False).
        teacher_mask: ``[B]`` bool, which rows have a teacher score.
        vector_targets: ``(target, mask)``, each ``[2B, V]``: the teacher's vectors for the rows of
            ``cat([q, d])`` and where they apply (VKD; used when ``config.lambda_vector_kd > 0``).
    """
    has_neg = negatives is not None and negatives.shape[0] > 0
    if has_neg and (negative_rows is None or negative_rows.shape[0] != negatives.shape[0]):
        raise ValueError("negative_rows must give the query row of every negative")
    l_nce = infonce_loss(q, d, negatives if has_neg else None, config.temperature)
    f_q = flops_idf(q, penalty)
    f_d_input = torch.cat([d, negatives], dim=0) if has_neg else d
    f_d = flops_idf(f_d_input, penalty)
    lam_q = ramp(config.lambda_flops_query, step, config.reg_warmup_steps)
    lam_d = ramp(config.lambda_flops_doc, step, config.reg_warmup_steps)
    total = l_nce + lam_q * f_q + lam_d * f_d
    pos_scores = (q * d).float().sum(dim=1)
    zero = torch.zeros((), device=q.device)
    l_margin, l_kd = zero, zero
    neg_scores_by_row = None
    if has_neg:
        rows = negative_rows.to(q.device)
        neg_scores = (q[rows] * negatives).float().sum(dim=1)
        l_margin = margin_loss(pos_scores[rows], neg_scores, config.margin)
        if config.lambda_margin > 0:
            total = total + config.lambda_margin * l_margin
        neg_scores_by_row = torch.zeros_like(pos_scores).index_put((rows,), neg_scores)
        has_row_neg = torch.zeros_like(pos_scores, dtype=torch.bool).index_fill(0, rows, True)
    if teacher is not None and config.lambda_kd > 0:
        mask = teacher_mask if teacher_mask is not None else torch.ones_like(teacher, dtype=torch.bool)
        mask = mask.to(q.device)
        if bool(mask.any()):
            student = pos_scores
            if neg_scores_by_row is not None:
                student = torch.where(has_row_neg, pos_scores - neg_scores_by_row, pos_scores)
            l_kd = kd_loss(student[mask], teacher.to(q.device)[mask])
            total = total + config.lambda_kd * l_kd
    extra: dict[str, float] = {}
    if vector_targets is not None and config.lambda_vector_kd > 0:
        l_vkd = vector_kd_loss(torch.cat([q, d], dim=0), *vector_targets)
        total = total + config.lambda_vector_kd * l_vkd
        extra["vector_kd"] = float(l_vkd.detach())
    components = {
        "total": float(total.detach()),
        "infonce": float(l_nce.detach()),
        "flops_q": float(f_q.detach()),
        "flops_d": float(f_d.detach()),
        "margin": float(l_margin.detach()),
        "kd": float(l_kd.detach()),
        "lambda_flops_q": lam_q,
        "lambda_flops_d": lam_d,
        **extra,
    }
    return LossOutput(total, components)


__all__ = [
    "LossConfig",
    "LossOutput",
    "dense_targets",
    "document_frequencies",
    "flops_idf",
    "idf_from_df",
    "idf_penalties",
    "infonce_loss",
    "kd_loss",
    "margin_loss",
    "ramp",
    "splade_loss",
    "vector_kd_loss",
]

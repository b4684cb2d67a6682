"""Each loss term against an independent plain-Python computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sparse_demo.encoder import pool_logits as sparse_pool
from sparse_demo.train.losses import (
    LossConfig,
    document_frequencies,
    flops_idf,
    idf_from_df,
    idf_penalties,
    infonce_loss,
    kd_loss,
    margin_loss,
    ramp,
    splade_loss,
    vector_kd_loss,
)

Q = [[1.0, 0.0, 2.0, 0.0], [0.0, 1.5, 0.0, 0.5], [0.5, 0.5, 0.0, 1.0]]
D = [[2.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.5, 0.0], [1.0, 0.0, 0.0, 2.0]]
N = [[0.0, 0.0, 3.0, 0.0], [0.0, 2.0, 0.0, 0.0]]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _nce_by_hand(q, docs, tau):
    total = 0.0
    for i, qi in enumerate(q):
        s = [_dot(qi, d) / tau for d in docs]
        total += -(s[i] - math.log(sum(math.exp(x) for x in s)))
    return total / len(q)


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_infonce_in_batch(tau):
    got = infonce_loss(torch.tensor(Q), torch.tensor(D), temperature=tau)
    assert got.item() == pytest.approx(_nce_by_hand(Q, D, tau), rel=1e-5)


def test_infonce_with_negative_columns():
    got = infonce_loss(torch.tensor(Q), torch.tensor(D), torch.tensor(N), temperature=1.0)
    assert got.item() == pytest.approx(_nce_by_hand(Q, D + N, 1.0), rel=1e-5)


def test_flops_idf_by_hand():
    w = [[1.0, 0.0, 2.0], [3.0, 1.0, 0.0]]
    p = [2.0, 1.0, 10.0]
    expected = sum(p[j] * ((w[0][j] + w[1][j]) / 2) ** 2 for j in range(3))  # 2*4 + 0.25 + 10*1
    assert expected == pytest.approx(18.25)
    assert flops_idf(torch.tensor(w), torch.tensor(p)).item() == pytest.approx(expected)
    assert flops_idf(torch.tensor(w)).item() == pytest.approx(4 + 0.25 + 1)


def test_margin_and_kd_by_hand():
    pos, neg = [3.0, 1.0, 2.0], [1.0, 1.5, 2.5]
    expected = sum(max(0.0, 1.0 - (p - n)) for p, n in zip(pos, neg)) / 3  # (0 + 1.5 + 1.5) / 3
    assert margin_loss(torch.tensor(pos), torch.tensor(neg), 1.0).item() == pytest.approx(expected)
    assert expected == pytest.approx(1.0)
    s, t = [1.0, 2.0, 4.0], [1.5, 2.0, 1.0]
    assert kd_loss(torch.tensor(s), torch.tensor(t)).item() == pytest.approx((0.25 + 0 + 9) / 3)


def test_ramp_is_quadratic():
    assert ramp(0.01, 0, 100) == 0
    assert ramp(0.01, 50, 100) == pytest.approx(0.0025)
    assert ramp(0.01, 100, 100) == pytest.approx(0.01)
    assert ramp(0.01, 500, 100) == pytest.approx(0.01)
    assert ramp(0.01, 3, 0) == 0.01


def test_idf_penalties_exclude_special_tokens_from_normalisation():
    # ids: 0 = <s> (every doc), 1 = common word, 2 = rare word, 3 = medium word (stopword), 4 = unseen
    docs = [[0, 1, 2], [0, 1, 3], [0, 1], [0, 3]]
    df, n = document_frequencies(docs, 5)
    assert df.tolist() == [4, 3, 1, 2, 0] and n == 4
    idf = idf_from_df(df, n)
    by_hand = [math.log(1 + (4 - d + 0.5) / (d + 0.5)) for d in [4, 3, 1, 2, 0]]
    np.testing.assert_allclose(idf, by_hand)
    alpha = 4.0
    pen = idf_penalties(
        idf, special_ids=[0], stopword_ids=[3], idf_alpha=alpha, stopword_penalty=15, special_token_penalty=100
    ).numpy()
    lo, hi = by_hand[1], by_hand[4]  # min/max over non-special ids 1..4 (not id 0's lower idf)
    norm = [min(1.0, max(0.0, (x - lo) / (hi - lo))) for x in by_hand]
    expected = [(1 + alpha * (1 - norm[j])) * s for j, s in enumerate([100, 1, 1, 15, 1])]
    np.testing.assert_allclose(pen, expected, rtol=1e-6)
    assert pen[1] == pytest.approx(1 + alpha)  # the most frequent regular token: full IDF penalty
    assert pen[4] == pytest.approx(1.0)  # the rarest: no IDF penalty
    assert pen[0] == pytest.approx(100 * (1 + alpha))  # special: clipped to idf_norm 0, times 100
    assert pen[2] < pen[1]  # monotone: penalty grows as IDF falls
    # had <s> been included, the common word's normalised idf would be > 0 (range compressed)
    assert (by_hand[1] - by_hand[0]) / (hi - by_hand[0]) > 0


def test_vector_kd_by_hand_and_in_the_total():
    """VKD = mean over rows of the masked squared error to the teacher's vectors; rows are cat([q, d])."""
    target = [[0.0, 1.0, 2.0, 0.0]] * 3 + [[1.0, 0.0, 0.0, 0.5]] * 3
    mask = [[1.0, 1.0, 1.0, 0.0], [1.0] * 4, [0.0, 1.0, 1.0, 1.0]] + [[1.0] * 4] * 3
    rows = Q + D
    by_hand = sum(sum(m * (v - t) ** 2 for v, t, m in zip(r, tr, mr)) for r, tr, mr in zip(rows, target, mask)) / len(
        rows
    )
    vt = (torch.tensor(target), torch.tensor(mask))
    assert vector_kd_loss(torch.tensor(rows), *vt).item() == pytest.approx(by_hand, rel=1e-6)
    q, d = torch.tensor(Q), torch.tensor(D)
    off = splade_loss(q, d, LossConfig(reg_warmup_steps=0), step=0, vector_targets=vt)
    on = splade_loss(q, d, LossConfig(reg_warmup_steps=0, lambda_vector_kd=0.5), step=0, vector_targets=vt)
    assert "vector_kd" not in off.components  # off by default: the term is not part of the objective
    assert on.components["vector_kd"] == pytest.approx(by_hand, rel=1e-6)
    assert on.total.item() == pytest.approx(off.total.item() + 0.5 * by_hand, rel=1e-6)


def test_splade_loss_total_combines_terms():
    cfg = LossConfig(
        lambda_flops_query=0.1, lambda_flops_doc=0.2, reg_warmup_steps=10, margin=1.0, lambda_margin=0.5, lambda_kd=0.3
    )
    q, d, n = torch.tensor(Q), torch.tensor(D), torch.tensor(N)
    rows = torch.tensor([0, 2])
    teacher = torch.tensor([1.0, 0.0, 2.0])
    tmask = torch.tensor([True, False, True])
    penalty = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = splade_loss(
        q, d, cfg, step=5, penalty=penalty, negatives=n, negative_rows=rows, teacher=teacher, teacher_mask=tmask
    )
    lam = 0.25  # (5 / 10)^2
    nce = _nce_by_hand(Q, D + N, 1.0)
    fq = sum([1, 2, 3, 4][j] * (sum(r[j] for r in Q) / 3) ** 2 for j in range(4))
    fd = sum([1, 2, 3, 4][j] * (sum(r[j] for r in D + N) / 5) ** 2 for j in range(4))
    pos = [_dot(Q[i], D[i]) for i in range(3)]
    neg = {0: _dot(Q[0], N[0]), 2: _dot(Q[2], N[1])}
    margin = sum(max(0.0, 1 - (pos[r] - neg[r])) for r in (0, 2)) / 2
    student = {0: pos[0] - neg[0], 2: pos[2] - neg[2]}
    kd = ((student[0] - 1.0) ** 2 + (student[2] - 2.0) ** 2) / 2
    total = nce + lam * 0.1 * fq + lam * 0.2 * fd + 0.5 * margin + 0.3 * kd
    c = out.components
    assert c["infonce"] == pytest.approx(nce, rel=1e-5)
    assert c["flops_q"] == pytest.approx(fq, rel=1e-5)
    assert c["flops_d"] == pytest.approx(fd, rel=1e-5)
    assert c["margin"] == pytest.approx(margin, rel=1e-5)
    assert c["kd"] == pytest.approx(kd, rel=1e-5)
    assert out.total.item() == pytest.approx(total, rel=1e-5)


def test_sparse_pool_equals_card_formula():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 7, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    a = sparse_pool(logits, mask)
    # the card's snippet, written out: activation first, then mask, then max over positions
    b = torch.max(torch.log(1 + torch.relu(logits)) * mask.unsqueeze(-1), dim=1).values
    torch.testing.assert_close(a, b)
    ga = torch.autograd.grad(a.sum(), logits)[0]
    gb = torch.autograd.grad(b.sum(), logits)[0]
    torch.testing.assert_close(ga, gb)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 0.0),
        ("lambda_flops_query", -1.0),
        ("stopword_penalty", 0.5),
        ("reg_warmup_steps", -1),
        ("lambda_vector_kd", float("nan")),
    ],
)
def test_loss_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        LossConfig(**{field: value})

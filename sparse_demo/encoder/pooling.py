"""SPLADE max pooling: the card's formula on full logits, and a tiled version that never holds them.

The sparse vector is the model card's formula

    w[v] = max_{t : mask[t] = 1} log(1 + relu(logits[t, v]))

:func:`pool_logits` computes it on full ``[batch, length, vocab]`` logits (differentiable, used
in training). :func:`max_pool_projection` computes the max of the final vocabulary projection
one vocabulary tile at a time (and, for very long batches, a chunk of positions at a time with a
running maximum), keeping the maximum and the position that produced it. Because
``log(1 + relu(x))`` is monotone, the running maximum is taken over raw logits and the activation
applied once at the end; padded positions are excluded, which equals the card's
multiply-by-mask because every weight is >= 0.
"""

from __future__ import annotations

import math

import torch

#: Upper bound on the number of logits held at once (``batch * positions * vocab``):
#: 2**24 float32 values = 64 MiB.
DEFAULT_CHUNK_ELEMENTS = 2**24


def pool_logits(logits: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The card's formula on full logits (differentiable; used to train small models).

    ``max_t log(1 + relu(logits[:, t])) * mask[:, t]``, computed as ``log(1 + relu(max_t
    masked logits))``: the activation is monotone and every weight is >= 0, so values and
    gradients are the card's while one ``[batch, length, vocab]`` tensor fewer is allocated.

    Args:
        logits: ``[batch, length, vocab]`` MLM logits.
        attention_mask: ``[batch, length]``, 1 for real tokens.

    Returns:
        ``[batch, vocab]`` sparse vectors.
    """
    masked = logits.masked_fill(~attention_mask.bool().unsqueeze(-1), float("-inf"))
    return torch.log1p(torch.relu(masked.max(dim=1).values))


#: Narrowest vocabulary tile: wide enough for an efficient matrix product.
MIN_VOCAB_TILE = 2048


@torch.no_grad()
def max_pool_projection(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    attention_mask: torch.Tensor,
    *,
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over positions of ``hidden @ weight.T + bias`` without holding all the logits.

    The vocabulary is processed in tiles and, when ``batch * length`` is large, the positions
    in chunks with a running max: at most ``chunk_elements`` logits exist at once. Each tile is
    one large matrix product ``weight_tile @ hidden.T`` laid out ``[tile, batch, positions]``,
    so the max over positions reads contiguous memory and the weight tile stays in cache,
    instead of streaming the whole projection matrix once per position chunk.

    Args:
        hidden: ``[batch, length, hidden]`` inputs of the vocabulary projection.
        weight: ``[vocab, hidden]`` projection weight; ``bias``: ``[vocab]`` or None.
        attention_mask: ``[batch, length]``; positions with 0 never win.
        chunk_elements: bound on ``batch * positions * vocab_tile``.

    Returns:
        ``(max_logits [batch, vocab] float32, argmax_position [batch, vocab] int64)``;
        ``max_logits`` is ``-inf`` where a row has no real position. Ties go to the earliest
        position, like ``torch.max``.
    """
    batch, length, width = hidden.shape
    vocab = weight.shape[0]
    min_tile = min(vocab, MIN_VOCAB_TILE)
    chunk = max(1, min(length, chunk_elements // max(1, batch * min_tile)))
    tile = max(min_tile, min(vocab, chunk_elements // max(1, batch * chunk)))
    best = torch.full((vocab, batch), -math.inf, dtype=torch.float32, device=hidden.device)
    best_pos = torch.zeros((vocab, batch), dtype=torch.int64, device=hidden.device)
    valid = attention_mask.to(torch.bool)
    first = True
    for start in range(0, length, chunk):
        stop = min(length, start + chunk)
        part_valid = valid[:, start:stop]
        if not bool(part_valid.any()):
            continue  # pure padding (inputs are sorted by length, so this is the tail)
        pad = None if bool(part_valid.all()) else ~part_valid[None]
        flat_t = hidden[:, start:stop].reshape(-1, width).T  # [hidden, batch * positions]
        for v0 in range(0, vocab, tile):
            v1 = min(vocab, v0 + tile)
            logits = weight[v0:v1] @ flat_t
            if bias is not None:
                logits += bias[v0:v1, None]
            logits = logits.view(v1 - v0, batch, stop - start)
            if pad is not None:
                logits.masked_fill_(pad, -math.inf)
            values, index = logits.max(dim=2)
            values = values.float()
            if first:
                best[v0:v1] = values
                best_pos[v0:v1] = index + start
            else:
                better = values > best[v0:v1]  # strict: the earliest position wins ties
                best[v0:v1] = torch.where(better, values, best[v0:v1])
                best_pos[v0:v1] = torch.where(better, index + start, best_pos[v0:v1])
        first = False
    return best.T, best_pos.T


def activate(x: torch.Tensor, activation: str = "relu") -> torch.Tensor:
    """``SpladePooling``'s activation: ``log(1 + relu(x))``, and ``log(1 + log(1 + relu(x)))`` for ``log1p_relu``."""
    out = torch.log1p(torch.relu(x))
    return torch.log1p(out) if activation == "log1p_relu" else out


@torch.no_grad()
def sum_pool_projection(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    attention_mask: torch.Tensor,
    *,
    activation: str = "relu",
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``SpladePooling(pooling_strategy="sum")``: ``sum_t act(hidden[t] @ weight.T + bias)`` over real positions.

    Tiled like :func:`max_pool_projection` (at most ``chunk_elements`` logits at once); padded positions add
    nothing (``act(0) = 0``, as sentence-transformers multiplies the logits by the mask first).

    Returns:
        ``(sums [batch, vocab] float32, argmax_position [batch, vocab] int64)``: the position with the largest
        logit, the one that added most.
    """
    batch, length, width = hidden.shape
    vocab = weight.shape[0]
    min_tile = min(vocab, MIN_VOCAB_TILE)
    chunk = max(1, min(length, chunk_elements // max(1, batch * min_tile)))
    tile = max(min_tile, min(vocab, chunk_elements // max(1, batch * chunk)))
    total = torch.zeros((vocab, batch), dtype=torch.float32, device=hidden.device)
    best = torch.full((vocab, batch), -math.inf, dtype=torch.float32, device=hidden.device)
    best_pos = torch.zeros((vocab, batch), dtype=torch.int64, device=hidden.device)
    valid = attention_mask.to(torch.bool)
    for start in range(0, length, chunk):
        stop = min(length, start + chunk)
        part_valid = valid[:, start:stop]
        if not bool(part_valid.any()):
            continue
        pad = ~part_valid[None]
        flat_t = hidden[:, start:stop].reshape(-1, width).T
        for v0 in range(0, vocab, tile):
            v1 = min(vocab, v0 + tile)
            logits = weight[v0:v1] @ flat_t
            if bias is not None:
                logits += bias[v0:v1, None]
            logits = logits.view(v1 - v0, batch, stop - start).float().masked_fill(pad, -math.inf)
            total[v0:v1] += activate(logits, activation).sum(dim=2)
            values, index = logits.max(dim=2)
            better = values > best[v0:v1]
            best[v0:v1] = torch.where(better, values, best[v0:v1])
            best_pos[v0:v1] = torch.where(better, index + start, best_pos[v0:v1])
    return total.T, best_pos.T


__all__ = [
    "DEFAULT_CHUNK_ELEMENTS",
    "MIN_VOCAB_TILE",
    "activate",
    "max_pool_projection",
    "pool_logits",
    "sum_pool_projection",
]

"""The held-out split of training pairs: by passage, so no held-out passage or query is trained on.

Pairs themselves (reading, validating, :class:`~sparse_demo.data.Pair`) live in :mod:`sparse_demo.data`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from sparse_demo.data.pairs import Pair, PairsDataset

#: Fewest usable pairs a run accepts, in the app and the CLI alike: in-batch negatives need a few
#: other pairs in every batch.
MIN_PAIRS = 4


def _pair_groups(pairs: Sequence[Pair]) -> list[list[int]]:
    """Pair indices grouped into connected components of shared queries and shared positives."""
    parent = list(range(len(pairs)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, p in enumerate(pairs):
        for key in (("q", p.query), ("p", p.positive)):
            j = first.setdefault(key, i)
            if j != i:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(pairs)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def split_pairs(
    dataset: PairsDataset | Sequence[Pair], eval_fraction: float = 0.1, *, seed: int = 0, max_eval: int = 500
) -> tuple[list[Pair], list[Pair]]:
    """A seeded held-out split by passage: no positive passage and no query lands in both parts.

    Pairs are grouped into connected components (pairs sharing a query or a positive belong
    together); whole groups are held out, in seeded random order, until ``eval_fraction`` of the
    distinct positives are held out. Training pairs whose *negative* is a held-out positive lose
    that negative (see :func:`separate_from_heldout`).

    Args:
        dataset: the pairs.
        eval_fraction: share of positive passages held out, in ``[0, 0.5]``.
        seed: RNG seed.
        max_eval: cap on held-out pairs (a group that would exceed it stays in training).

    Returns:
        ``(train, eval)``; ``eval`` is empty when there are fewer than 10 distinct positives or
        fewer than 2 groups.

    Example:
        >>> pairs = [Pair(f"q{i}", f"passage {i // 2}") for i in range(40)]  # 2 queries per passage
        >>> train, held = split_pairs(pairs, 0.1, seed=0)
        >>> len(held), {p.positive for p in train} & {p.positive for p in held}
        (4, set())
    """
    if not 0.0 <= eval_fraction <= 0.5:
        raise ValueError(f"eval_fraction must be in [0, 0.5], got {eval_fraction}")
    if max_eval < 1:
        raise ValueError(f"max_eval must be >= 1, got {max_eval}")
    pairs = list(dataset.pairs if isinstance(dataset, PairsDataset) else dataset)
    n_passages = len({p.positive for p in pairs})
    groups = _pair_groups(pairs)
    if n_passages < 10 or len(groups) < 2 or eval_fraction == 0:
        return pairs, []
    random.Random(seed).shuffle(groups)
    target = max(1, int(round(n_passages * eval_fraction)))
    held: set[int] = set()
    held_passages: set[str] = set()
    for group in groups[:-1]:  # at least one group always trains
        if len(held_passages) >= target:
            break
        if len(held) + len(group) > max_eval:
            continue
        held.update(group)
        held_passages.update(pairs[i].positive for i in group)
    evals = [pairs[i] for i in sorted(held)]
    train, _, _ = separate_from_heldout([pairs[i] for i in range(len(pairs)) if i not in held], evals)
    return train, evals


def separate_from_heldout(train: Sequence[Pair], held: Sequence[Pair]) -> tuple[list[Pair], int, int]:
    """Training pairs that share nothing with the held-out pairs' queries and positives.

    Returns:
        ``(kept pairs, pairs removed because their query or positive is held out, negatives
        cleared because they are a held-out positive)``.

    Example:
        >>> kept, removed, cleared = separate_from_heldout(
        ...     [Pair("a", "x"), Pair("b", "y", "z"), Pair("z?", "z")], [Pair("c", "z")])
        >>> [(p.query, p.negative) for p in kept], removed, cleared
        ([('a', None), ('b', None)], 1, 1)
    """
    queries = {p.query for p in held}
    positives = {p.positive for p in held}
    kept: list[Pair] = []
    removed = cleared = 0
    for p in train:
        if p.query in queries or p.positive in positives:
            removed += 1
            continue
        if p.negative and p.negative in positives:
            p = Pair(p.query, p.positive)  # a teacher margin against the dropped negative no longer applies
            cleared += 1
        kept.append(p)
    return kept, removed, cleared


__all__ = ["MIN_PAIRS", "separate_from_heldout", "split_pairs"]

"""Training batches: token ids, padding, batches without false in-batch negatives, BM25 hard negatives.

Hard negatives are mined with the project's one BM25 (:class:`sparse_demo.index.bm25.BM25Index`,
Lucene's k1 1.2 and b 0.75) over the default Korean analyzer's terms
(:func:`sparse_demo.korean.bm25_terms`), the same ranking the Search tab's BM25 leg gives.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import torch

from sparse_demo.data.pairs import Pair
from sparse_demo.encoder.windowed import pad_batch
from sparse_demo.index.bm25 import BM25Index
from sparse_demo.korean import bm25_terms


def pad(seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of right-padded sequences on ``device``.

    Example:
        >>> ids, mask = pad([[5, 6, 7], [8]], 1, torch.device("cpu"))
        >>> ids.tolist(), mask.tolist()
        ([[5, 6, 7], [8, 1, 1]], [[1, 1, 1], [1, 0, 0]])
    """
    ids, mask = pad_batch(seqs, pad_id)
    return ids.to(device), mask.to(device)


def tokenize_all(tokenizer: Any, texts: Sequence[str], max_length: int, chunk: int = 512) -> list[list[int]]:
    """Token ids (with special tokens, truncated to ``max_length``) of every text, ``chunk`` texts per call."""
    out: list[list[int]] = []
    for start in range(0, len(texts), chunk):
        enc = tokenizer(list(texts[start : start + chunk]), truncation=True, max_length=max_length)
        out.extend(list(map(list, enc["input_ids"])))
    return out


def make_batches(pairs: Sequence[Pair], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of pair indices in which no query and no positive occurs twice.

    A repeated query or positive in one batch would be a false in-batch negative. A lone
    leftover pair joins the previous batch when it repeats nothing there, else it is left out of
    this epoch (the next shuffle places it).

    Example:
        >>> ps = [Pair("q1", "a"), Pair("q2", "a"), Pair("q3", "b"), Pair("q4", "c")]
        >>> all(len({ps[i].positive for i in b}) == len(b) for b in make_batches(ps, 4, random.Random(0)))
        True
    """
    order = list(range(len(pairs)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    pending = order
    while pending:
        batch: list[int] = []
        seen: set[str] = set()
        rest: list[int] = []
        for i in pending:
            p = pairs[i]
            if len(batch) < batch_size and p.query not in seen and p.positive not in seen:
                batch.append(i)
                seen.add(p.query)
                seen.add(p.positive)
            else:
                rest.append(i)
        if len(batch) < 2 and batches:
            last = batches[-1]
            taken = {t for j in last for t in (pairs[j].query, pairs[j].positive)}
            # a lone leftover joins the last batch only when it repeats nothing there (else it waits an epoch)
            last.extend(i for i in batch if pairs[i].query not in taken and pairs[i].positive not in taken)
            break
        batches.append(batch)
        pending = rest
    return [b for b in batches if len(b) >= 2]


def mine_bm25_negatives(pairs: Sequence[Pair], *, seed: int = 0, top_k: int = 10) -> list[Pair]:
    """Give every pair without a negative a highly BM25-ranked passage that is not one of its positives.

    The candidates are the pairs' positives, ranked by :class:`~sparse_demo.index.bm25.BM25Index`
    over :func:`~sparse_demo.korean.bm25_terms`; the negative is drawn (seeded) among the query's
    three best non-gold passages with a positive score, which avoids always taking an
    unlabelled true positive. Pairs that already have a negative are kept as they are.
    """
    docs = list(dict.fromkeys(p.positive for p in pairs))
    gold: dict[str, set[str]] = {}
    for p in pairs:
        gold.setdefault(p.query, set()).add(p.positive)
    index = BM25Index()
    index.add([str(i) for i in range(len(docs))], [bm25_terms(d) for d in docs])
    rng = random.Random(seed)
    terms_of: dict[str, list[str]] = {}
    out: list[Pair] = []
    for p in pairs:
        if p.negative:
            out.append(p)
            continue
        if p.query not in terms_of:
            terms_of[p.query] = bm25_terms(p.query)
        hits = index.search(terms_of[p.query], top_k + len(gold[p.query])) if terms_of[p.query] else []
        candidates = [docs[int(h.id)] for h in hits if docs[int(h.id)] not in gold[p.query] and h.score > 0][:top_k]
        neg = rng.choice(candidates[:3]) if candidates else None
        out.append(dataclasses.replace(p, negative=neg))
    return out


__all__ = ["make_batches", "mine_bm25_negatives", "pad", "tokenize_all"]

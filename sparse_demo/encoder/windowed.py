"""Encoding documents longer than the model's max length in windows (see :mod:`.windows` for the modes).

Every text is tokenised once in full; a text that fits is one window, read exactly as a short text is. A
longer text is split into windows of ``max_length - specials`` text tokens (:func:`.windows.plan_windows`),
each given the tokenizer's special tokens (``build_inputs_with_special_tokens``). All windows of all texts
are sorted by length and run through the model in batches (one ``pool`` call per batch), so windows of
different documents share batches and padding stays small. Per text:

* ``max``: the element-wise max over its windows' vectors; each weight's position is mapped back to the
  text's full token sequence (special tokens at its ends), so "where did this token come from" still points
  into the document, and the window it came from is known (:attr:`Encoding.windows`);
* ``passages``: the merged encoding as for ``max``, and one encoding per window (positions in the full
  sequence too).

Merging is exact and sparse: the active entries of all windows are concatenated and, per token id, the
largest weight kept (the earliest window on ties, like the earliest position within one window).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..progress import Progress, counted
from .vectors import Encoding, SparseVector
from .windows import WindowCounts, WindowSettings, plan_windows

#: Texts per tokenizer call.
_TOKENIZE_BATCH = 1024

PoolFn = Callable[[torch.Tensor, torch.Tensor], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class WindowedDocument:
    """One document read in windows.

    Attributes:
        encoding: the document's encoding: the max over windows (``max``, ``passages``), its input ids and
            offsets those of the whole text (special tokens at its ends), positions into them.
        passages: one encoding per window (``passages`` mode only), positions into the whole text's ids.
    """

    encoding: Encoding
    passages: tuple[Encoding, ...] = ()


@dataclass(frozen=True)
class _Text:
    ids: list[int]  # full input ids, special tokens included
    offsets: list[tuple[int, int]]
    text_positions: np.ndarray  # full positions of the text (non-special) tokens
    special_positions: np.ndarray  # full positions of the special tokens
    spans: list[tuple[int, int]]  # windows as text-token ranges


def _tokenize(tokenizer, texts: Sequence[str], window: int, stride: int) -> list[_Text]:
    out: list[_Text] = []
    for b0 in range(0, len(texts), _TOKENIZE_BATCH):
        chunk = list(texts[b0 : b0 + _TOKENIZE_BATCH])
        enc = tokenizer(
            chunk,
            add_special_tokens=True,
            truncation=False,
            verbose=False,
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
        )
        for ids, offs, special in zip(enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]):
            special = np.asarray(special, dtype=bool)
            text_positions = np.flatnonzero(~special)
            out.append(
                _Text(
                    ids=list(ids),
                    offsets=[(int(a), int(b)) for a, b in offs],
                    text_positions=text_positions,
                    special_positions=np.flatnonzero(special),
                    spans=plan_windows(len(text_positions), window, stride),
                )
            )
    return out


def _window_inputs(item: _Text, span: tuple[int, int]) -> tuple[list[int], np.ndarray]:
    """A window's input ids and each of its positions' position in the full text.

    A window is the text's own leading special tokens, its text tokens ``span``, and the text's own trailing
    special tokens: exactly what the tokenizer gives a text that short (``<s> ... </s>``, ``[CLS] ... [SEP]``).
    """
    a, b = span
    if not item.text_positions.size:
        return list(item.ids), np.arange(len(item.ids), dtype=np.int64)
    lead = item.special_positions[item.special_positions < item.text_positions[0]]
    trail = item.special_positions[item.special_positions > item.text_positions[-1]]
    full = np.concatenate([lead, item.text_positions[a:b], trail]).astype(np.int64)
    return [item.ids[p] for p in full], full


def _sparse(weights: np.ndarray, positions: np.ndarray, full: np.ndarray) -> tuple[np.ndarray, ...]:
    active = np.flatnonzero(weights > 0)
    return active.astype(np.int64), weights[active].astype(np.float32), full[positions[active]].astype(np.int32)


def _vector(ids: np.ndarray, weights: np.ndarray, positions: np.ndarray) -> SparseVector:
    order = np.lexsort((ids, -weights))  # by weight descending, ties by id (as the encoder's vectors)
    return SparseVector(ids[order], weights[order], positions[order])


def _top(vector: SparseVector, k: int | None) -> SparseVector:
    """The ``k`` heaviest dimensions (a folder's ``max_active_dims``; None keeps all)."""
    if k is None or len(vector) <= k:
        return vector
    return SparseVector(vector.token_ids[:k], vector.weights[:k], vector.positions[:k])


def _merge(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> SparseVector:
    """The element-wise max of window vectors (the earliest window on ties)."""
    if len(parts) == 1:
        return _vector(*parts[0])
    ids = np.concatenate([p[0] for p in parts])
    weights = np.concatenate([p[1] for p in parts])
    positions = np.concatenate([p[2] for p in parts])
    window = np.concatenate([np.full(len(p[0]), j) for j, p in enumerate(parts)])
    order = np.lexsort((window, -weights, ids))  # per id: largest weight first, then the earliest window
    ids, weights, positions = ids[order], weights[order], positions[order]
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return _vector(ids[first], weights[first], positions[first])


def pad_batch(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-id sequences right-padded with ``pad_id`` into ``(input_ids, attention_mask)`` (encoding here, and
    the trainer's batches: :func:`sparse_demo.train.batching.pad`).

    Example:
        >>> ids, mask = pad_batch([[0, 5, 2], [0, 2]], 1)
        >>> ids.tolist(), mask.tolist()
        ([[0, 5, 2], [0, 2, 1]], [[1, 1, 1], [1, 1, 0]])
    """
    width = max(len(seq) for seq in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def plan_documents(
    texts: Sequence[str], *, tokenizer, max_length: int, settings: WindowSettings
) -> tuple[list[_Text], WindowCounts]:
    """Tokenise ``texts`` in full and plan their windows; the counts do not need the model."""
    n_special = len(tokenizer("", add_special_tokens=True)["input_ids"])  # what every window adds
    window = max_length - n_special
    if window < 1:
        raise ValueError(f"max_length {max_length} leaves no room for text beside {n_special} special tokens")
    items = _tokenize(tokenizer, texts, window, settings.stride_for(window))
    if settings.mode == "first":
        long = [item for item in items if len(item.spans) > 1]
        return items, WindowCounts(
            documents=len(items),
            long=len(long),
            windows=len(items),
            max_windows=1 if items else 0,
            dropped_tokens=sum(len(item.text_positions) - window for item in long),
            mode="first",
        )
    counts = WindowCounts(
        documents=len(items),
        long=sum(len(item.spans) > 1 for item in items),
        windows=sum(len(item.spans) for item in items),
        max_windows=max((len(item.spans) for item in items), default=0),
        dropped_tokens=0,
        mode=settings.mode,
    )
    return items, counts


def iter_windows(
    texts: Sequence[str],
    items: list[_Text],
    *,
    tokenizer,
    max_length: int,
    pool: PoolFn,
    settings: WindowSettings,
    batch_size: int = 32,
    progress: Progress | None = None,
    max_active_dims: int | None = None,
) -> Iterator[tuple[int, WindowedDocument]]:
    """``(input index, WindowedDocument)`` as each document's last window is encoded (see :func:`encode_windows`).

    Windows are sorted by length (then by document), so a long document's windows (all full length) run
    together and only a batch of window vectors is alive at a time.
    """
    if settings.mode == "first":
        raise ValueError("the 'first' mode is plain truncation: encode with the encoder itself")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    jobs = [(d, j) for d, item in enumerate(items) for j in range(len(item.spans))]
    inputs = {job: _window_inputs(items[job[0]], items[job[0]].spans[job[1]]) for job in jobs}
    jobs.sort(key=lambda job: (len(inputs[job][0]), job))
    what = "texts encoded" if len(jobs) == len(items) else "windows encoded"  # one window each: plain texts
    parts: dict[int, list] = {}
    for b0 in range(0, len(jobs), batch_size):
        batch = jobs[b0 : b0 + batch_size]
        weights, positions = pool(*pad_batch([inputs[job][0] for job in batch], tokenizer.pad_token_id or 0))
        for row, (d, j) in enumerate(batch):
            done = parts.setdefault(d, [None] * len(items[d].spans))
            done[j] = _sparse(weights[row], positions[row], inputs.pop((d, j))[1])
            if all(p is not None for p in done):
                yield d, _document(texts[d], items[d], parts.pop(d), max_length, settings, max_active_dims)
        counted(progress, min(b0 + batch_size, len(jobs)), len(jobs), what)


def _document(
    text: str, item: _Text, parts: list, max_length: int, settings: WindowSettings, max_active_dims: int | None
) -> WindowedDocument:
    spans = tuple(
        (int(item.text_positions[a]), int(item.text_positions[b - 1]) + 1) if b > a else (0, 0) for a, b in item.spans
    )
    merged = Encoding(
        text=text,
        input_ids=tuple(item.ids),
        offsets=tuple(item.offsets),
        vector=_top(_merge(parts), max_active_dims),
        num_text_tokens=len(item.ids),
        max_length=max_length,
        windows=spans if len(spans) > 1 else (),
    )
    passages: tuple[Encoding, ...] = ()
    if settings.mode == "passages":
        passages = tuple(
            Encoding(
                text=text,
                input_ids=tuple(item.ids),
                offsets=tuple(item.offsets),
                vector=_top(_vector(*part), max_active_dims),
                num_text_tokens=len(item.ids),
                max_length=max_length,
                windows=(span,),
            )
            for part, span in zip(parts, spans)
        )
    return WindowedDocument(merged, passages)


def encode_windows(
    texts: Sequence[str],
    *,
    tokenizer,
    max_length: int,
    pool: PoolFn,
    settings: WindowSettings,
    batch_size: int = 32,
    progress: Progress | None = None,
) -> tuple[list[WindowedDocument], WindowCounts]:
    """Encode ``texts`` reading all of each (``max`` / ``passages``): see the module docstring.

    Args:
        texts: the documents' texts.
        tokenizer: a fast tokenizer (offsets and special-token masks).
        max_length: tokens the model reads at once, special tokens included.
        pool: ``pool(ids [B, L], mask [B, L]) -> (weights [B, V], argmax positions [B, V])``: the encoder's
            batch pooling (the card's formula).
        settings: the window mode and stride (``first`` is the encoder's plain path, not this one).
        batch_size: windows per model call.
        progress: ``progress(fraction, "12/40 windows encoded")``.

    Returns:
        One :class:`WindowedDocument` per text, in input order, and the window counts.
    """
    items, counts = plan_documents(texts, tokenizer=tokenizer, max_length=max_length, settings=settings)
    out: list[WindowedDocument | None] = [None] * len(items)
    for d, doc in iter_windows(
        texts,
        items,
        tokenizer=tokenizer,
        max_length=max_length,
        pool=pool,
        settings=settings,
        batch_size=batch_size,
        progress=progress,
    ):
        out[d] = doc
    return [doc for doc in out if doc is not None], counts


__all__ = ["WindowedDocument", "encode_windows", "iter_windows", "plan_documents"]

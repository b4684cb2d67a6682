"""One side of a SPLADE model (:class:`MLMSide`: an MLM and its pooling; :class:`StaticSide`: a token weight
table, an inference-free query side), and the tokenisation every side shares.

:class:`~sparse_demo.encoder.splade.SpladeEncoder` holds a query side and a document side (the same object for a
symmetric model).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import DEFAULT_MAX_LENGTH
from ..progress import Progress, counted
from .formats import PoolingSpec
from .loading import (
    ModelLoadError,
)
from .pooling import DEFAULT_CHUNK_ELEMENTS, activate, max_pool_projection, sum_pool_projection
from .vectors import Encoding, SparseVector
from .windowed import pad_batch

logger = logging.getLogger(__name__)

#: Inputs longer than this many characters are rejected before tokenisation.
MAX_TEXT_CHARS = 100_000

#: Texts per tokenizer call when tokenising a corpus (bounds the batch's temporary memory).
TOKENIZE_BATCH = 1024


def _find_parent(model: nn.Module, target: nn.Module) -> tuple[nn.Module, str]:
    for name, module in model.named_modules():
        if module is target and name:
            parent_name, _, attr = name.rpartition(".")
            return model.get_submodule(parent_name) if parent_name else model, attr
    raise ModelLoadError(type(model).__name__, "could not locate the MLM output projection")


def _check_texts(texts: Sequence[str]) -> None:
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, got {type(text).__name__}")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")


def tokenize_texts(
    tokenizer: Any, texts: Sequence[str], max_length: int, *, add_special_tokens: bool = True, prompt: str = ""
) -> list[dict]:
    """Token ids and character offsets of every text, tokenised in batches of ``TOKENIZE_BATCH``.

    A text longer than ``max_length`` tokens is tokenised a second time with truncation (so the kept tokens
    and offsets are exactly what one truncating call gives). A ``prompt`` is put before each text (as
    sentence-transformers does); offsets stay relative to the text, the prompt's tokens get ``(0, 0)``.
    """
    _check_texts(texts)
    offsets_ok = getattr(tokenizer, "is_fast", False)
    shift = len(prompt)
    out: list[dict] = []
    for b0 in range(0, len(texts), TOKENIZE_BATCH):
        chunk = [prompt + t for t in texts[b0 : b0 + TOKENIZE_BATCH]]
        full = tokenizer(
            chunk,
            add_special_tokens=add_special_tokens,
            truncation=False,
            verbose=False,
            return_offsets_mapping=offsets_ok,
        )
        ids = [list(x) for x in full["input_ids"]]
        offs = full.get("offset_mapping") if offsets_ok else None
        long_rows = [i for i, x in enumerate(ids) if len(x) > max_length]
        cut_ids: dict[int, list[int]] = {}
        cut_offs: dict[int, list] = {}
        if long_rows:  # only long texts are tokenised twice
            cut = tokenizer(
                [chunk[i] for i in long_rows],
                add_special_tokens=add_special_tokens,
                truncation=True,
                max_length=max_length,
                return_offsets_mapping=offsets_ok,
            )
            for j, i in enumerate(long_rows):
                cut_ids[i] = list(cut["input_ids"][j])
                if offsets_ok:
                    cut_offs[i] = cut["offset_mapping"][j]
        for i, full_ids in enumerate(ids):
            kept = cut_ids.get(i, full_ids)
            offsets = cut_offs.get(i) if i in cut_offs else (offs[i] if offs is not None else None)
            if offsets:
                spans = [(int(a), int(b)) for a, b in offsets]
                if shift:
                    spans = [(0, 0) if b <= shift else (max(0, a - shift), b - shift) for a, b in spans]
            else:
                spans = [(0, 0)] * len(kept)
            out.append({"input_ids": kept, "offsets": spans, "full_len": len(full_ids)})
    return out


def _vector(weights: np.ndarray, positions: np.ndarray, max_active_dims: int | None) -> SparseVector:
    """The active dimensions sorted by weight (ties by id), at most ``max_active_dims`` of them."""
    active = np.flatnonzero(weights > 0)
    order = active[np.argsort(-weights[active], kind="stable")]
    if max_active_dims is not None:
        order = order[:max_active_dims]
    return SparseVector(
        token_ids=order.astype(np.int64),
        weights=weights[order].astype(np.float32),
        positions=positions[order].astype(np.int32),
    )


def quantize_linear_layers(model: nn.Module, keep: nn.Module) -> nn.Module:
    """``model`` with every ``nn.Linear`` but ``keep`` (the vocabulary projection, which pooling reads by
    weight) dynamically quantised to int8 (``precision="int8"``, CPU only): weights in int8, activations
    quantised per batch. The model is changed in place and returned."""
    import warnings

    names = {n for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not keep}
    with warnings.catch_warnings():
        # torch.ao's eager dynamic quantisation is deprecated (torchao replaces it) but works in this torch
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)


def _lowercased(tokenizer: Any) -> Any:
    """``do_lower_case``: a Lowercase normaliser in front of the tokenizer's (as sentence-transformers adds it)."""
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer
    current = backend.normalizer
    if isinstance(current, Lowercase) or (
        isinstance(current, NormalizerSequence) and any(isinstance(n, Lowercase) for n in current)
    ):
        return tokenizer
    parts = [Lowercase()]
    if isinstance(current, NormalizerSequence):
        parts += list(current)
    elif current is not None:
        parts.append(current)
    backend.normalizer = NormalizerSequence(parts)
    return tokenizer


class MLMSide:
    """One side that runs a ``*ForMaskedLM`` and pools its logits (``SpladePooling``'s formula, tiled).

    Attributes:
        model, tokenizer: The MLM and its tokenizer.
        max_length: Tokens per text (longer texts are truncated; the encoding says so).
        pooling: Max or sum over positions, ``relu`` or ``log1p_relu`` activation.
        prompt: Put before every text.
    """

    kind = "mlm"

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        pooling: PoolingSpec | None = None,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        precision: str = "auto",
        prompt: str = "",
        lock: threading.Lock | None = None,
        name: str = "model",
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pooling = pooling or PoolingSpec()
        self.chunk_elements = chunk_elements
        self.precision = precision
        self.prompt = prompt
        self._lock = lock or threading.Lock()
        decoder = model.get_output_embeddings()
        if not isinstance(decoder, nn.Linear):
            raise ModelLoadError(name, "the model's output embedding is not a Linear projection")
        if precision == "int8":
            self.model = model = quantize_linear_layers(model, keep=decoder)
        self._decoder = decoder
        self._decoder_parent, self._decoder_attr = _find_parent(model, decoder)

    @property
    def vocab_size(self) -> int:
        return int(self._decoder.weight.shape[0])

    @property
    def device(self) -> torch.device:
        return self._decoder.weight.device

    @contextlib.contextmanager
    def _projection_detached(self) -> Iterator[None]:
        """Temporarily replace the vocabulary projection by identity to get its inputs."""
        setattr(self._decoder_parent, self._decoder_attr, nn.Identity())
        try:
            yield
        finally:
            setattr(self._decoder_parent, self._decoder_attr, self._decoder)

    def _tokenize(self, texts: Sequence[str]) -> list[dict]:
        return tokenize_texts(self.tokenizer, texts, self.max_length, prompt=self.prompt)

    def encode_iter(
        self, texts: Sequence[str], *, batch_size: int, progress: Progress | None, max_active_dims: int | None
    ) -> Iterator[tuple[int, Encoding]]:
        items = self._tokenize(texts)
        order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
        done = 0
        pad_id = self.tokenizer.pad_token_id or 0
        for b0 in range(0, len(order), batch_size):
            idx = order[b0 : b0 + batch_size]
            values, positions = self._pool_batch(*pad_batch([items[i]["input_ids"] for i in idx], pad_id))
            batch = [
                (
                    i,
                    _encoding(
                        texts[i], items[i], _vector(values[row], positions[row], max_active_dims), self.max_length
                    ),
                )
                for row, i in enumerate(idx)
            ]
            done += len(idx)
            counted(progress, done, len(items), "texts encoded")
            yield from batch

    def _pool_batch(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        device = self.device
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with self._lock, torch.inference_mode(), self._projection_detached(), autocast:
            try:
                out = self.model(input_ids=ids.to(device), attention_mask=mask.to(device))
            except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - GPU only
                raise RuntimeError("GPU out of memory while encoding; lower the batch size (batch_size=...)") from exc
            hidden = out.logits  # the projection's input, since the projection is identity now
            if self.pooling.strategy == "sum":
                weights, pos = sum_pool_projection(
                    hidden,
                    self._decoder.weight,
                    self._decoder.bias,
                    mask.to(device),
                    activation=self.pooling.activation,
                    chunk_elements=self.chunk_elements,
                )
            else:
                best, pos = max_pool_projection(
                    hidden,
                    self._decoder.weight,
                    self._decoder.bias,
                    mask.to(device),
                    chunk_elements=self.chunk_elements,
                )
                weights = activate(best, self.pooling.activation)
        return weights.cpu().numpy(), pos.cpu().numpy()

    def modules(self) -> list[nn.Module]:
        return [self.model]


class StaticSide:
    """One side that looks a weight up per token present (``SparseStaticEmbedding``): no model runs.

    ``w[v] = table[v]`` when token ``v`` occurs in the text (tokenised without special tokens), else 0; the
    position kept is the token's first occurrence. Weights <= 0 are left out of the vector (as search drops
    them).
    """

    kind = "static"

    def __init__(self, tokenizer: Any, weight: torch.Tensor, *, max_length: int, prompt: str = "") -> None:
        self.tokenizer = tokenizer
        self.weight = weight.detach().float().cpu()
        self._table = self.weight.numpy()
        self.max_length = max_length
        self.prompt = prompt
        self.pooling = None

    @property
    def vocab_size(self) -> int:
        return int(self.weight.shape[0])

    @property
    def device(self) -> torch.device:
        return self.weight.device

    def _tokenize(self, texts: Sequence[str]) -> list[dict]:
        return tokenize_texts(self.tokenizer, texts, self.max_length, add_special_tokens=False, prompt=self.prompt)

    def encode_iter(
        self, texts: Sequence[str], *, batch_size: int, progress: Progress | None, max_active_dims: int | None
    ) -> Iterator[tuple[int, Encoding]]:
        items = self._tokenize(texts)
        size = self.vocab_size
        for n, item in enumerate(items, start=1):
            ids = np.asarray(item["input_ids"], dtype=np.int64)
            ids = ids[(ids >= 0) & (ids < size)]
            uniq, first = np.unique(ids, return_index=True)  # ascending ids, first occurrences
            weights = self._table[uniq]
            keep = weights > 0
            uniq, first, weights = uniq[keep], first[keep], weights[keep]
            order = np.argsort(-weights, kind="stable")[:max_active_dims]  # by weight, ties by id (as _vector)
            vector = SparseVector(
                token_ids=uniq[order].astype(np.int64),
                weights=weights[order].astype(np.float32),
                positions=first[order].astype(np.int32),
            )
            yield n - 1, _encoding(texts[n - 1], item, vector, self.max_length)
            if n % batch_size == 0 or n == len(items):
                counted(progress, n, len(items), "texts encoded")

    def modules(self) -> list[nn.Module]:
        return []


def _encoding(text: str, item: dict, vector: SparseVector, max_length: int) -> Encoding:
    return Encoding(
        text=text,
        input_ids=tuple(item["input_ids"]),
        offsets=tuple(item["offsets"]),
        vector=vector,
        num_text_tokens=item["full_len"],
        max_length=max_length,
    )


__all__ = ["MAX_TEXT_CHARS", "TOKENIZE_BATCH", "MLMSide", "StaticSide", "quantize_linear_layers", "tokenize_texts"]

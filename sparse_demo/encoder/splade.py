"""The SPLADE encoder: a loaded ``*ForMaskedLM`` checkpoint that encodes texts into sparse vectors.

The encoder body and the MLM head's transform run once per batch; the final vocabulary
projection is then applied through :func:`~sparse_demo.encoder.pooling.max_pool_projection`, so
the ``[batch, length, vocab]`` logits are never materialised.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import DEFAULT_MAX_LENGTH, PRECISIONS
from ..progress import Progress, counted
from .fingerprint import _params_version, _weights_digest, folder_identity
from .loading import ModelLoadError, load_mlm, resolve_device
from .pooling import DEFAULT_CHUNK_ELEMENTS, max_pool_projection
from .vectors import Encoding, SparseVector
from .windowed import WindowedDocument, iter_windows, plan_documents
from .windows import WindowCounts, WindowSettings

logger = logging.getLogger(__name__)

#: Inputs longer than this many characters are rejected before tokenisation.
MAX_TEXT_CHARS = 100_000

#: Texts per tokenizer call when tokenising a corpus (bounds the batch's temporary memory).
TOKENIZE_BATCH = 1024
#: ``progress(done, total)`` after every encoded batch.


def _find_parent(model: nn.Module, target: nn.Module) -> tuple[nn.Module, str]:
    for name, module in model.named_modules():
        if module is target and name:
            parent_name, _, attr = name.rpartition(".")
            return model.get_submodule(parent_name) if parent_name else model, attr
    raise ModelLoadError(type(model).__name__, "could not locate the MLM output projection")


class SpladeEncoder:
    """A loaded ``*ForMaskedLM`` checkpoint that encodes texts into SPLADE sparse vectors.

    Load with :meth:`load`; encode with :meth:`encode`. Thread-safe: one batch runs at a time.

    Example:
        >>> enc = SpladeEncoder.load("path/to/model-folder")  # doctest: +SKIP
        >>> e = enc.encode(["당뇨병 치료 방법"])[0]  # doctest: +SKIP
        >>> enc.search_vector(e)  # doctest: +SKIP
        {'▁당뇨병': 2.31, '▁치료': 2.05, ...}
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        name: str = "model",
        max_length: int = DEFAULT_MAX_LENGTH,
        drop_special: bool = True,
        chunk_elements: int = DEFAULT_CHUNK_ELEMENTS,
        precision: str = "auto",
    ) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = max_length
        self.drop_special = drop_special
        self.chunk_elements = chunk_elements
        self._lock = threading.Lock()
        decoder = model.get_output_embeddings()
        if not isinstance(decoder, nn.Linear):
            raise ModelLoadError(name, "the model's output embedding is not a Linear projection")
        self._decoder = decoder
        self._decoder_parent, self._decoder_attr = _find_parent(model, decoder)
        self.special_ids: frozenset[int] = frozenset(int(i) for i in tokenizer.all_special_ids)
        self._id_to_token: list[str] | None = None
        #: Where the weights came from (set by :meth:`load`): a folder digest or ``hub:<id>@<sha>``.
        self.source_identity: str | None = None
        self._source_version = _params_version(model)
        self._digest_cache: tuple[int, str] | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(
        cls,
        source: str,
        *,
        revision: str | None = None,
        device: str = "auto",
        max_length: int = DEFAULT_MAX_LENGTH,
        name: str | None = None,
        drop_special: bool = True,
        precision: str = "auto",
    ) -> SpladeEncoder:
        """Load a checkpoint from a local folder or a Hub id (safetensors only, no remote code).

        Args:
            source: a local folder or a Hugging Face Hub id.
            revision: a Hub revision (commit sha, tag or branch) to pin; ignored for folders.
            device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda[:n]``.
                On CUDA the model runs in half precision.
            max_length: tokens per text (longer texts are truncated; the encoding says so).
            name: a display name (defaults to ``source``).
            drop_special: drop special tokens from :meth:`search_vector`.
            precision: ``auto`` (float32 on CPU, float16 on CUDA), ``fp32`` or ``bf16``
                (bfloat16 autocast: faster on CPUs with bf16 units, weights within ~1e-2).

        Raises:
            ModelLoadError: with a reason a user can act on.
        """

        target = resolve_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        dtype = torch.float16 if target.type == "cuda" and precision == "auto" else torch.float32
        model, tokenizer = load_mlm(source, revision=revision, dtype=dtype, name=name)
        model.to(target)
        logger.info("Loaded %s on %s (%s)", source, target, type(model).__name__)
        encoder = cls(
            model, tokenizer, name=name or source, max_length=max_length, drop_special=drop_special, precision=precision
        )
        folder = Path(source).expanduser()
        if folder.is_dir():
            encoder.source_identity = "folder:" + folder_identity(folder)
        else:
            sha = getattr(model.config, "_commit_hash", None)
            # Without a resolved commit the weights themselves identify the checkpoint.
            encoder.source_identity = f"hub:{source}@{sha}" if sha else None
        return encoder

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self._decoder.weight.device

    @property
    def vocab_size(self) -> int:
        return int(self._decoder.weight.shape[0])

    @property
    def fingerprint(self) -> str:
        """A stable hex id of the checkpoint and of every setting that changes its vectors.

        The checkpoint part is :attr:`source_identity` (a local folder's files, or a Hub id with
        its resolved commit sha) while the weights are as loaded; for a model built in memory, or
        one whose parameters were modified in place since loading (training), it is a digest of
        the weights themselves (recomputed only when they change). The settings part covers
        ``max_length``, ``drop_special``, ``precision``, the weights' dtype and the vocabulary size.
        Index caches are keyed by it, so a checkpoint changed under the same name or folder is
        never served from an index built with the old one.

        Returns:
            A 16-character hex string.
        """
        version = _params_version(self.model)
        if self.source_identity is not None and version == self._source_version:
            weights = self.source_identity
        else:
            if self._digest_cache is None or self._digest_cache[0] != version:
                self._digest_cache = (version, _weights_digest(self.model))
            weights = "weights:" + self._digest_cache[1]
        settings = {
            "weights": weights,
            "max_length": self.max_length,
            "drop_special": bool(self.drop_special),
            "precision": self.precision,
            "dtype": str(self._decoder.weight.dtype),
            "vocab_size": self.vocab_size,
        }
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    def id_to_token(self, token_id: int) -> str:
        """The raw vocabulary string of an id (e.g. ``▁치료``, ``##료``, ``<s>``)."""
        if self._id_to_token is None:
            table = [""] * self.vocab_size
            for tok, idx in self.tokenizer.get_vocab().items():
                if 0 <= idx < len(table):
                    table[idx] = tok
            self._id_to_token = table
        if 0 <= token_id < len(self._id_to_token):
            return self._id_to_token[token_id] or f"[{token_id}]"
        return f"[{token_id}]"

    # ------------------------------------------------------------------ encoding
    @contextlib.contextmanager
    def _projection_detached(self) -> Iterator[None]:
        """Temporarily replace the vocabulary projection by identity to get its inputs."""
        setattr(self._decoder_parent, self._decoder_attr, nn.Identity())
        try:
            yield
        finally:
            setattr(self._decoder_parent, self._decoder_attr, self._decoder)

    def _tokenize(self, texts: Sequence[str]) -> list[dict]:
        """Token ids and character offsets of every text, tokenised in batches of ``TOKENIZE_BATCH``.

        A text longer than ``max_length`` tokens is tokenised a second time with truncation (so
        the kept tokens and offsets are exactly what one truncating call gives).
        """
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__}")
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
        offsets_ok = getattr(self.tokenizer, "is_fast", False)
        out: list[dict] = []
        for b0 in range(0, len(texts), TOKENIZE_BATCH):
            chunk = list(texts[b0 : b0 + TOKENIZE_BATCH])
            full = self.tokenizer(
                chunk, add_special_tokens=True, truncation=False, verbose=False, return_offsets_mapping=offsets_ok
            )
            ids = [list(x) for x in full["input_ids"]]
            offs = full.get("offset_mapping") if offsets_ok else None
            long_rows = [i for i, x in enumerate(ids) if len(x) > self.max_length]
            cut_ids: dict[int, list[int]] = {}
            cut_offs: dict[int, list] = {}
            if long_rows:  # only long texts are tokenised twice
                cut = self.tokenizer(
                    [chunk[i] for i in long_rows],
                    add_special_tokens=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_offsets_mapping=offsets_ok,
                )
                for j, i in enumerate(long_rows):
                    cut_ids[i] = list(cut["input_ids"][j])
                    if offsets_ok:
                        cut_offs[i] = cut["offset_mapping"][j]
            for i, full_ids in enumerate(ids):
                kept = cut_ids.get(i, full_ids)
                offsets = cut_offs.get(i) if i in cut_offs else (offs[i] if offs is not None else None)
                out.append(
                    {
                        "input_ids": kept,
                        "offsets": [tuple(map(int, o)) for o in offsets] if offsets else [(0, 0)] * len(kept),
                        "full_len": len(full_ids),
                    }
                )
        return out

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None) -> list[Encoding]:
        """Encode texts (batched, sorted by length to minimise padding), in input order.

        Raises:
            ValueError: a text is longer than ``MAX_TEXT_CHARS`` or ``batch_size`` < 1.
        """
        if isinstance(texts, str):
            texts = [texts]
        results: list[Encoding | None] = [None] * len(texts)
        for i, enc in self.encode_iter(texts, batch_size=batch_size, progress=progress):
            results[i] = enc
        return [r for r in results if r is not None]

    def encode_iter(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None
    ) -> Iterator[tuple[int, Encoding]]:
        """Encode texts lazily: ``(input index, Encoding)`` pairs, shortest texts first.

        Every text is tokenised up front (in tokenizer batches), all texts are sorted by token
        count, and the model runs one ``batch_size`` batch of similar lengths at a time, so a
        large corpus wastes little on padding and the caller can reduce each encoding (e.g. prune
        it) before the next batch: only one batch of full vectors is alive at a time.

        Args:
            texts: The texts.
            batch_size: Texts per model call.
            progress: ``progress(fraction, "64/200 texts encoded")`` after every batch.

        Yields:
            ``(i, encoding of texts[i])`` in ascending token-count order (ties by input order).

        Raises:
            ValueError: a text is longer than ``MAX_TEXT_CHARS`` or ``batch_size`` < 1.
        """
        if isinstance(texts, str):
            texts = [texts]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        items = self._tokenize(texts)
        order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        done = 0
        for b0 in range(0, len(order), batch_size):
            idx = order[b0 : b0 + batch_size]
            width = max(len(items[i]["input_ids"]) for i in idx)
            ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                seq = items[i]["input_ids"]
                ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
                mask[row, : len(seq)] = 1
            values, positions = self._pool_batch(ids, mask)
            batch = [
                (i, self._to_encoding(texts[i], items[i], values[row], positions[row])) for row, i in enumerate(idx)
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
            best, pos = max_pool_projection(
                hidden,
                self._decoder.weight,
                self._decoder.bias,
                mask.to(device),
                chunk_elements=self.chunk_elements,
            )
            weights = torch.log1p(torch.relu(best))
        return weights.cpu().numpy(), pos.cpu().numpy()

    def _to_encoding(self, text: str, item: dict, weights: np.ndarray, positions: np.ndarray) -> Encoding:
        active = np.flatnonzero(weights > 0)
        order = active[np.argsort(-weights[active], kind="stable")]
        vector = SparseVector(
            token_ids=order.astype(np.int64),
            weights=weights[order].astype(np.float32),
            positions=positions[order].astype(np.int32),
        )
        return Encoding(
            text=text,
            input_ids=tuple(item["input_ids"]),
            offsets=tuple(item["offsets"]),
            vector=vector,
            num_text_tokens=item["full_len"],
            max_length=self.max_length,
        )

    def position_activations(self, encoding: Encoding, token_ids: Sequence[int]) -> np.ndarray:
        """``log(1 + relu(logits[t, v]))`` at every input position ``t`` of ``encoding`` for the ``token_ids``.

        The model runs once more on the encoding's own input ids; column ``j``'s maximum is token
        ``token_ids[j]``'s weight in the vector (the card's max over positions), at the position the vector
        records. Returns ``[positions, len(token_ids)]`` float32 (the position-by-token heatmap of Explore).
        """
        ids = torch.tensor([list(encoding.input_ids)], dtype=torch.long)
        cols = torch.tensor([int(t) for t in token_ids], dtype=torch.long, device=self.device)
        with self._lock, torch.inference_mode(), self._projection_detached():
            hidden = self.model(input_ids=ids.to(self.device), attention_mask=torch.ones_like(ids).to(self.device))
            hidden = hidden.logits[0].float()  # the projection's input
            weight = self._decoder.weight.index_select(0, cols).float()
            logits = hidden @ weight.T
            if self._decoder.bias is not None:
                logits += self._decoder.bias.index_select(0, cols).float()
            return torch.log1p(torch.relu(logits)).cpu().numpy()

    def document_windows(
        self,
        texts: Sequence[str],
        settings: WindowSettings,
        *,
        batch_size: int = 32,
        progress: Progress | None = None,
    ) -> tuple[WindowCounts, Iterator[tuple[int, WindowedDocument]]]:
        """Documents read whole, in windows (:mod:`sparse_demo.encoder.windowed`): the counts (known before
        the model runs) and ``(input index, WindowedDocument)`` pairs as each document is done.

        ``first`` is :meth:`encode_iter` (plain truncation), counted the same way.
        """
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"texts must be strings, got {type(text).__name__}")
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
        items, counts = plan_documents(texts, tokenizer=self.tokenizer, max_length=self.max_length, settings=settings)
        if settings.mode == "first":
            plain = self.encode_iter(texts, batch_size=batch_size, progress=progress)
            return counts, ((i, WindowedDocument(e)) for i, e in plain)
        return counts, iter_windows(
            texts,
            items,
            tokenizer=self.tokenizer,
            max_length=self.max_length,
            pool=self._pool_batch,
            settings=settings,
            batch_size=batch_size,
            progress=progress,
        )

    # ------------------------------------------------------------------ search view
    def search_sparse_vector(self, encoding: Encoding, drop_special: bool | None = None) -> SparseVector:
        """The vector used for search: special tokens dropped unless switched off."""
        drop = self.drop_special if drop_special is None else drop_special
        return encoding.vector.without(self.special_ids) if drop else encoding.vector

    def search_vector(self, encoding: Encoding, drop_special: bool | None = None) -> dict[str, float]:
        """``{raw token string: weight}`` for indexing and querying (special tokens dropped)."""
        vec = self.search_sparse_vector(encoding, drop_special)
        return {self.id_to_token(int(i)): float(w) for i, w in zip(vec.token_ids, vec.weights)}


__all__ = ["MAX_TEXT_CHARS", "TOKENIZE_BATCH", "SpladeEncoder"]

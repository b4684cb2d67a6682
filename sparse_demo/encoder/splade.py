"""The SPLADE encoder: a loaded model that encodes queries and documents into sparse vectors.

A model has a query side and a document side (:mod:`~sparse_demo.encoder.formats`): the same MLM for a
plain ``*ForMaskedLM`` or ``SparseEncoder`` folder, or two different ones for a ``Router`` folder, whose
query side may be a token weight table (an inference-free model: a query costs one tokenizer call).

On an MLM side the encoder body and the MLM head's transform run once per batch; the final vocabulary
projection is then applied through :func:`~sparse_demo.encoder.pooling.max_pool_projection` (or
:func:`~sparse_demo.encoder.pooling.sum_pool_projection`), so the ``[batch, length, vocab]`` logits are never
materialised.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import DEFAULT_MAX_LENGTH, PRECISIONS
from ..progress import Progress
from .fingerprint import _params_version, _weights_digest, folder_identity
from .formats import SIDES, ModelLayout, PoolingSpec, Side, SideSpec, read_layout
from .loading import (
    ModelLoadError,
    check_tokenizer,
    has_tokenizer_files,
    hub_sentence_transformers_folder,
    load_mlm,
    looks_like_path,
    resolve_device,
)
from .pooling import DEFAULT_CHUNK_ELEMENTS, activate
from .sides import (
    MAX_TEXT_CHARS,
    TOKENIZE_BATCH,
    MLMSide,
    StaticSide,
    _check_texts,
    _lowercased,
    tokenize_texts,
)
from .vectors import Encoding, SparseVector
from .windowed import WindowedDocument, iter_windows, plan_documents
from .windows import WindowCounts, WindowSettings

logger = logging.getLogger(__name__)


def _backbone(model: nn.Module | None) -> str:
    """``xlm-roberta`` / ``bert`` / ``modernbert``: the MLM's ``model_type``."""
    config = getattr(model, "config", None)
    return str(getattr(config, "model_type", "") or "") if config is not None else ""


class SpladeEncoder:
    """A loaded sparse model: a query side and a document side that encode texts into SPLADE vectors.

    Load with :meth:`load` (any format of :mod:`~sparse_demo.encoder.formats`); encode queries with
    :meth:`encode_query` and documents with :meth:`encode_document` (:meth:`encode` takes ``side=``, and without
    it the model's default side: the document side unless a ``Router`` says otherwise). Built from one
    ``(model, tokenizer)`` both sides are that MLM with max pooling. Thread-safe: one batch runs at a time.

    Example:
        >>> enc = SpladeEncoder.load("path/to/model-folder")  # doctest: +SKIP
        >>> e = enc.encode_query(["당뇨병 치료 방법"])[0]  # doctest: +SKIP
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
        pooling: PoolingSpec | None = None,
        query: MLMSide | StaticSide | None = None,
        max_active_dims: int | None = None,
        layout: ModelLayout | None = None,
    ) -> None:
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if max_active_dims is not None and max_active_dims < 1:
            raise ValueError(f"max_active_dims must be >= 1 or None, got {max_active_dims}")
        self.precision = precision
        self.name = name
        self.drop_special = drop_special
        self._lock = threading.Lock()
        #: The document side (always an MLM); :attr:`query_side` is the same object for a symmetric model.
        self.document_side = MLMSide(
            model,
            tokenizer,
            max_length=max_length,
            pooling=pooling,
            chunk_elements=chunk_elements,
            precision=precision,
            prompt=layout.document.prompt if layout else "",
            lock=self._lock,
            name=name,
        )
        self.query_side: MLMSide | StaticSide = query if query is not None else self.document_side
        if isinstance(self.query_side, MLMSide):
            self.query_side._lock = self._lock
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_active_dims = max_active_dims
        self.layout = layout
        #: ``masked-lm``, ``sentence-transformers`` or ``router`` (:mod:`~sparse_demo.encoder.formats`).
        self.format = layout.format if layout else "masked-lm"
        self.default_side: Side = layout.default_side if layout else "document"
        self._decoder = self.document_side._decoder
        self.special_ids: frozenset[int] = frozenset(int(i) for i in tokenizer.all_special_ids)
        self._id_to_token: list[str] | None = None
        #: Where the weights came from (set by :meth:`load`): a folder digest or ``hub:<id>@<sha>``.
        self.source_identity: str | None = None
        self._source_version = self._version()
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
        """Load a model from a local folder or a Hub id (safetensors only, no remote code), in any format.

        A ``*ForMaskedLM`` folder, a sentence-transformers ``SparseEncoder`` folder (MLM + ``SpladePooling``)
        or a ``Router`` folder (query and document routes; an inference-free query side): see
        :func:`~sparse_demo.encoder.formats.read_layout`. For a sentence-transformers folder each side reads
        at most ``min(max_length, the folder's own limit)`` tokens (its saved ``max_seq_length``, else its
        tokenizer's ``model_max_length`` capped by the model's positions), as sentence-transformers truncates.

        Args:
            source: a local folder or a Hugging Face Hub id.
            revision: a Hub revision (commit sha, tag or branch) to pin; ignored for folders.
            device: ``auto`` (CUDA when available, else CPU), ``cpu`` or ``cuda[:n]``.
                On CUDA the model runs in half precision.
            max_length: tokens per text (longer texts are truncated; the encoding says so).
            name: a display name (defaults to ``source``).
            drop_special: drop special tokens from :meth:`search_vector`.
            precision: ``auto`` (float32 on CPU, float16 on CUDA), ``fp32``, ``int8`` (CPU: linear layers
                dynamically quantised) or ``bf16``
                (bfloat16 autocast: faster on CPUs with bf16 units, weights within ~1e-2).

        Raises:
            ModelLoadError: with a reason a user can act on (one line naming the file or module at fault).
        """
        target = resolve_device(device)
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "int8" and target.type != "cpu":
            raise ValueError(
                "precision int8 (dynamic quantisation) runs on the CPU only; use device='cpu' or fp32/bf16"
            )
        dtype = torch.float16 if target.type == "cuda" and precision == "auto" else torch.float32
        folder = Path(source).expanduser() if source and str(source).strip() else None
        identity: str | None = None
        if folder is not None and not folder.is_dir() and not looks_like_path(source):
            snapshot = hub_sentence_transformers_folder(source, revision=revision, name=name)
            if snapshot is not None:
                folder, identity = snapshot
        if folder is None or not folder.is_dir():
            model, tokenizer = load_mlm(source, revision=revision, dtype=dtype, name=name)
            model.to(target)
            logger.info("Loaded %s on %s (%s)", source, target, type(model).__name__)
            encoder = cls(
                model,
                tokenizer,
                name=name or source,
                max_length=max_length,
                drop_special=drop_special,
                precision=precision,
            )
            sha = getattr(model.config, "_commit_hash", None)
            # Without a resolved commit the weights themselves identify the checkpoint.
            encoder.source_identity = f"hub:{source}@{sha}" if sha else None
            return encoder
        layout = read_layout(folder, source, name)
        loaded: dict[Path, tuple[nn.Module, Any]] = {}
        sides: dict[str, MLMSide | StaticSide] = {}
        for side in SIDES:
            spec = layout.side(side)
            if spec.kind == "static":
                sides[side] = _load_static(spec, max_length, source, name)
                continue
            if spec.folder not in loaded:
                # a local folder's root MLM keeps the typed source in messages; a Hub snapshot loads from its files
                at_root = identity is None and spec.folder.resolve() == folder.resolve()
                model, tokenizer = load_mlm(
                    source if at_root else str(spec.folder), dtype=dtype, name=name if at_root else name or source
                )
                if spec.do_lower_case:
                    tokenizer = _lowercased(tokenizer)
                loaded[spec.folder] = (model.to(target), tokenizer)
            model, tokenizer = loaded[spec.folder]
            dim = spec.pooling.embedding_dimension if spec.pooling else None
            rows = model.get_output_embeddings().weight.shape[0]
            if dim is not None and dim != rows:
                raise ModelLoadError(
                    source,
                    f"its SpladePooling says embedding_dimension {dim} but the {side} MLM has {rows} outputs",
                    name,
                )
            limit = max_length if layout.format == "masked-lm" else min(max_length, _side_limit(spec, model, tokenizer))
            sides[side] = MLMSide(
                model, tokenizer, max_length=limit, pooling=spec.pooling, precision=precision, prompt=spec.prompt
            )
        document = sides["document"]
        if not isinstance(document, MLMSide):
            raise ModelLoadError(source, "its document side is a token weight table; this app needs an MLM there", name)
        query = sides["query"]
        if query.tokenizer is not document.tokenizer and query.tokenizer.get_vocab() != document.tokenizer.get_vocab():
            raise ModelLoadError(
                source, "its query side and document side use different vocabularies (tokenizers)", name
            )
        symmetric = not layout.asymmetric
        encoder = cls(
            document.model,
            document.tokenizer,
            name=name or source,
            max_length=document.max_length,
            drop_special=drop_special,
            precision=precision,
            pooling=document.pooling,
            query=None if symmetric else query,
            max_active_dims=layout.max_active_dims,
            layout=layout,
        )
        logger.info("Loaded %s (%s) on %s", source, layout.format, target)
        if identity is None:
            identity = "folder:" + "+".join(folder_identity(f) for f in layout.folders)
        encoder.source_identity = identity
        return encoder

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return self._decoder.weight.device

    @property
    def vocab_size(self) -> int:
        return int(self._decoder.weight.shape[0])

    @property
    def max_length(self) -> int:
        """Tokens per document (the document side's limit)."""
        return self.document_side.max_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.document_side.max_length = value

    @property
    def chunk_elements(self) -> int:
        """Bound on the logits held at once while pooling (every MLM side)."""
        return self.document_side.chunk_elements

    @chunk_elements.setter
    def chunk_elements(self, value: int) -> None:
        for side in self._sides():
            if isinstance(side, MLMSide):
                side.chunk_elements = value

    @property
    def asymmetric(self) -> bool:
        """Whether queries and documents are encoded differently (other modules or settings)."""
        return self.query_side is not self.document_side

    @property
    def inference_free(self) -> bool:
        """Whether a query runs no model: its weights are looked up per token (one tokenizer call)."""
        return isinstance(self.query_side, StaticSide)

    def side(self, side: Side | None = None) -> MLMSide | StaticSide:
        """The query or document side (None: :attr:`default_side`)."""
        side = side or self.default_side
        if side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(SIDES)}, got {side!r}")
        return self.query_side if side == "query" else self.document_side

    def for_side(self, side: Side) -> SpladeEncoder:
        """A view of this encoder whose :meth:`encode` uses ``side`` by default (same model, no copy).

        For callers written against plain ``encode`` (the analysis behind ``encode --side``).
        """
        self.side(side)  # validates
        if side == self.default_side:
            return self
        view = copy.copy(self)
        view.default_side = side
        return view

    def renamed(self, name: str) -> SpladeEncoder:
        """A view of this encoder shown as ``name`` (same model, sides and lock, no copy).

        One checkpoint loads once however many names point at it; each name keeps its own display name.
        """
        if name == self.name:
            return self
        view = copy.copy(self)
        view.name = name
        return view

    def _sides(self) -> list[MLMSide | StaticSide]:
        return [self.document_side] + ([self.query_side] if self.asymmetric else [])

    def torch_modules(self) -> list[nn.Module]:
        """The distinct torch models of both sides (a shared MLM once)."""
        out: list[nn.Module] = []
        for s in self._sides():
            for m in s.modules():
                if all(m is not o for o in out):
                    out.append(m)
        return out

    def _version(self) -> int:
        return sum(_params_version(m) for m in self.torch_modules())

    @property
    def fingerprint(self) -> str:
        """A stable hex id of the checkpoint (both sides) and of every setting that changes its vectors.

        The checkpoint part is :attr:`source_identity` (every folder the model's modules live in, or a Hub id
        with its resolved commit sha) while the weights are as loaded; for a model built in memory, or one
        whose parameters were modified in place since loading (training), it is a digest of the weights of
        both sides (recomputed only when they change). The settings part covers each side's kind, pooling,
        max length and prompt, ``max_active_dims``, ``drop_special``, ``precision``, the weights' dtype and
        the vocabulary size. Index caches are keyed by it, so a checkpoint changed under the same name or
        folder, or a query side changed alone, is never served from an index built with the old one.

        Returns:
            A 16-character hex string.
        """
        version = self._version()
        if self.source_identity is not None and version == self._source_version:
            weights = self.source_identity
        else:
            if self._digest_cache is None or self._digest_cache[0] != version:
                digest = "+".join(_weights_digest(m) for m in self.torch_modules())
                if isinstance(self.query_side, StaticSide):
                    digest += "+static:" + hashlib.sha256(self.query_side._table.tobytes()).hexdigest()
                self._digest_cache = (version, digest)
            weights = "weights:" + self._digest_cache[1]
        settings = {
            "weights": weights,
            "max_length": self.max_length,
            "drop_special": bool(self.drop_special),
            "precision": self.precision,
            "dtype": str(self._decoder.weight.dtype),
            "vocab_size": self.vocab_size,
        }
        if self.asymmetric or self.format != "masked-lm" or self.max_active_dims is not None:
            settings["sides"] = {s: _side_settings(self.side(s)) for s in SIDES}
            settings["asymmetric"] = self.asymmetric
            settings["max_active_dims"] = self.max_active_dims
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def stored_checkpoint(self) -> bool:
        """Whether the weights are a checkpoint as stored (a folder or a Hub commit) and unchanged since loading:
        what may be cached on disk under the fingerprint (never a model in training or built in memory)."""
        return self.source_identity is not None and self._version() == self._source_version

    def facts(self) -> dict[str, Any]:
        """What the model is: format, backbone, vocabulary size, pooling, asymmetry, max length, fingerprint.

        Returns:
            A JSON-ready dict; ``sides`` holds each side's kind (``mlm`` / ``static``), backbone, pooling,
            max length and prompt.
        """
        sides = {}
        for s in SIDES:
            side = self.side(s)
            entry = _side_settings(side)
            entry["backbone"] = _backbone(side.model) if isinstance(side, MLMSide) else "token weights (no model)"
            sides[s] = entry
        pooling = self.document_side.pooling
        act = "log(1+log(1+relu))" if pooling.activation == "log1p_relu" else "log(1+relu)"
        return {
            "name": self.name,
            "format": self.format,
            "backbone": _backbone(self.model),
            "architecture": type(self.model).__name__,
            "vocab_size": self.vocab_size,
            "pooling": f"{pooling.strategy} of {act}",
            "asymmetric": self.asymmetric,
            "inference_free": self.inference_free,
            "max_length": {s: self.side(s).max_length for s in SIDES},
            "max_active_dims": self.max_active_dims,
            "special_tokens": sorted(self.id_to_token(i) for i in self.special_ids),
            "fingerprint": self.fingerprint,
            "sides": sides,
        }

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
    def _tokenize(self, texts: Sequence[str]) -> list[dict]:
        """The document side's token ids and offsets (:func:`tokenize_texts`)."""
        return self.document_side._tokenize(texts)

    def _pool_batch(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        return self.document_side._pool_batch(ids, mask)

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: Progress | None = None,
        side: Side | None = None,
    ) -> list[Encoding]:
        """Encode texts with one side (batched, sorted by length to minimise padding), in input order.

        Args:
            texts: The texts.
            batch_size: Texts per model call.
            progress: ``progress(fraction, "64/200 texts encoded")``.
            side: ``query`` or ``document``; None: :attr:`default_side`.

        Raises:
            ValueError: a text is longer than ``MAX_TEXT_CHARS``, ``batch_size`` < 1 or an unknown side.
        """
        if isinstance(texts, str):
            texts = [texts]
        results: list[Encoding | None] = [None] * len(texts)
        for i, enc in self.encode_iter(texts, batch_size=batch_size, progress=progress, side=side):
            results[i] = enc
        return [r for r in results if r is not None]

    def encode_query(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None
    ) -> list[Encoding]:
        """:meth:`encode` with the query side (``SparseEncoder.encode_query``)."""
        return self.encode(texts, batch_size=batch_size, progress=progress, side="query")

    def encode_document(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None
    ) -> list[Encoding]:
        """:meth:`encode` with the document side (``SparseEncoder.encode_document``)."""
        return self.encode(texts, batch_size=batch_size, progress=progress, side="document")

    def encode_iter(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 32,
        progress: Progress | None = None,
        side: Side | None = None,
    ) -> Iterator[tuple[int, Encoding]]:
        """Encode texts lazily with one side: ``(input index, Encoding)`` pairs, shortest texts first.

        Every text is tokenised up front (in tokenizer batches), all texts are sorted by token
        count, and the model runs one ``batch_size`` batch of similar lengths at a time, so a
        large corpus wastes little on padding and the caller can reduce each encoding (e.g. prune
        it) before the next batch: only one batch of full vectors is alive at a time. An inference-free
        query side runs no model (input order). ``max_active_dims`` (a folder setting) keeps each vector's
        heaviest dimensions only.

        Args:
            texts: The texts.
            batch_size: Texts per model call.
            progress: ``progress(fraction, "64/200 texts encoded")`` after every batch.
            side: ``query`` or ``document``; None: :attr:`default_side`.

        Yields:
            ``(i, encoding of texts[i])``.

        Raises:
            ValueError: a text is longer than ``MAX_TEXT_CHARS``, ``batch_size`` < 1 or an unknown side.
        """
        if isinstance(texts, str):
            texts = [texts]
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        chosen = self.side(side)
        yield from chosen.encode_iter(
            texts, batch_size=batch_size, progress=progress, max_active_dims=self.max_active_dims
        )

    def position_activations(
        self, encoding: Encoding, token_ids: Sequence[int], side: Side | None = None
    ) -> np.ndarray:
        """The activation at every input position ``t`` of ``encoding`` for the ``token_ids``, on one side.

        An MLM side runs once more on the encoding's own input ids and gives the pooling's activation of
        ``logits[t, v]`` (``log(1 + relu(x))`` for the card's models); column ``j``'s maximum is token
        ``token_ids[j]``'s weight in a max-pooled vector, at the position the vector records. An inference-free
        side gives the token's table weight where the token occurs and 0 elsewhere. Returns
        ``[positions, len(token_ids)]`` float32 (the position-by-token heatmap of Explore).
        """
        chosen = self.side(side)
        cols_np = np.asarray([int(t) for t in token_ids], dtype=np.int64)
        if isinstance(chosen, StaticSide):
            ids = np.asarray(encoding.input_ids, dtype=np.int64)
            table = chosen._table[cols_np] if cols_np.size else np.zeros(0, dtype=np.float32)
            return np.where(ids[:, None] == cols_np[None, :], np.maximum(table, 0)[None, :], 0.0).astype(np.float32)
        ids = torch.tensor([list(encoding.input_ids)], dtype=torch.long)
        device = chosen.device
        cols = torch.as_tensor(cols_np, device=device)
        decoder = chosen._decoder
        with self._lock, torch.inference_mode(), chosen._projection_detached():
            out = chosen.model(input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device))
            hidden = out.logits[0].float()  # the projection's input
            logits = hidden @ decoder.weight.index_select(0, cols).float().T
            if decoder.bias is not None:
                logits += decoder.bias.index_select(0, cols).float()
            return activate(logits, chosen.pooling.activation).cpu().numpy()

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

        The document side reads them (its prompt, if the folder sets one, starts the first window);
        ``first`` is :meth:`encode_iter` (plain truncation), counted the same way.
        """
        _check_texts(texts)
        side = self.document_side
        read = [side.prompt + t for t in texts] if side.prompt else list(texts)
        items, counts = plan_documents(read, tokenizer=side.tokenizer, max_length=side.max_length, settings=settings)
        if settings.mode == "first":
            plain = self.encode_iter(texts, batch_size=batch_size, progress=progress, side="document")
            return counts, ((i, WindowedDocument(e)) for i, e in plain)
        return counts, iter_windows(
            read,
            items,
            tokenizer=side.tokenizer,
            max_length=side.max_length,
            pool=side._pool_batch,
            settings=settings,
            batch_size=batch_size,
            progress=progress,
            max_active_dims=self.max_active_dims,
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


def _side_settings(side: MLMSide | StaticSide) -> dict[str, Any]:
    pooling = side.pooling
    return {
        "kind": side.kind,
        "pooling": None if pooling is None else {"strategy": pooling.strategy, "activation": pooling.activation},
        "max_length": side.max_length,
        "prompt": side.prompt,
    }


def _side_limit(spec: SideSpec, model: nn.Module, tokenizer: Any) -> int:
    """Tokens a sentence-transformers MLM side reads: its saved length, else the tokenizer's capped by positions."""
    if spec.max_length:
        return int(spec.max_length)
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0) or 10**9
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        limit = min(limit, positions)
    return limit


def _load_static(spec: SideSpec, max_length: int, source: str, name: str | None) -> StaticSide:
    """A ``SparseStaticEmbedding`` folder: its tokenizer and its ``weight`` tensor (safetensors)."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    if not has_tokenizer_files(spec.folder):
        raise ModelLoadError(source, f"its {spec.folder.name}/ has no tokenizer files", name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(spec.folder), trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001 - every tokenizer failure becomes one message
        raise ModelLoadError(source, f"the tokenizer in {spec.folder.name}/ does not load ({exc})", name) from exc
    check_tokenizer(tokenizer, source, name)
    weight = None
    for file in sorted(spec.folder.glob("*.safetensors")):
        tensors = load_file(str(file))
        weight = tensors.get("weight", weight)
    if weight is None or weight.ndim != 1:
        raise ModelLoadError(
            source, f"{spec.folder.name}/ holds no 1-d 'weight' tensor (a SparseStaticEmbedding)", name
        )
    if weight.shape[0] != len(tokenizer.get_vocab()):
        raise ModelLoadError(
            source,
            f"{spec.folder.name}/ has {weight.shape[0]} token weights for a vocabulary of {len(tokenizer.get_vocab())}",
            name,
        )
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0) or max_length
    return StaticSide(tokenizer, weight, max_length=min(max_length, limit), prompt=spec.prompt)


__all__ = ["MAX_TEXT_CHARS", "TOKENIZE_BATCH", "MLMSide", "SpladeEncoder", "StaticSide", "tokenize_texts"]

"""SPLADE encoder: load any ``*ForMaskedLM`` checkpoint and pool it into sparse vectors.

The sparse vector is the model card's formula

    w[v] = max_{t : mask[t] = 1} log(1 + relu(logits[t, v]))

computed without materialising the ``[batch, length, vocab]`` logits: the encoder body and
the MLM head's transform run once, then the final vocabulary projection is applied one
vocabulary tile at a time (and, for very long batches, a chunk of positions at a time with a
running maximum), keeping the maximum and the position that produced it.
Because ``log(1 + relu(x))`` is monotone, the running maximum is taken over raw logits and
the activation applied once at the end; padded positions are excluded, which equals the
card's multiply-by-mask because every weight is >= 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)

DEFAULT_MAX_LENGTH = 192
#: Upper bound on the number of logits held at once (``batch * positions * vocab``):
#: 2**24 float32 values = 64 MiB.
DEFAULT_CHUNK_ELEMENTS = 2**24
#: Inputs longer than this many characters are rejected before tokenisation.
MAX_TEXT_CHARS = 100_000

ProgressFn = Callable[[int, int], None]
#: ``auto``: float32 on CPU (exact), float16 on CUDA. ``bf16``: bfloat16 autocast (about 2x
#: faster on CPUs with avx512_bf16/AMX; weights differ from float32 by ~1e-2). ``fp32``: exact.
PRECISIONS = ("auto", "fp32", "bf16")


class ModelLoadError(RuntimeError):
    """A model could not be loaded; ``reason`` is a sentence a user can act on."""

    def __init__(self, source: str, reason: str, name: str | None = None) -> None:
        label = f"'{name}' ({source})" if name and name != source else f"'{source}'"
        super().__init__(f"Could not load model {label}: {reason}")
        self.source = source
        self.reason = reason
        self.name = name or source


def looks_like_path(source: str) -> bool:
    """A filesystem path rather than a Hub id (``org/name``)."""
    s = source.strip()
    return s.startswith(("/", ".", "~", "\\")) or s.count("/") > 1 or "\\" in s or (len(s) > 1 and s[1] == ":")


@dataclass(frozen=True)
class SparseVector:
    """Active dimensions of one sparse vector, sorted by descending weight.

    Attributes:
        token_ids: vocabulary ids (int64).
        weights: ``log(1 + relu(max logit))`` per id (float32, all > 0).
        positions: index into the encoded ``input_ids`` of the position whose logit was the max.
    """

    token_ids: np.ndarray
    weights: np.ndarray
    positions: np.ndarray

    def __len__(self) -> int:
        return int(self.token_ids.shape[0])

    @property
    def l1(self) -> float:
        return float(self.weights.sum(dtype=np.float64))

    def without(self, ids: frozenset[int] | set[int]) -> SparseVector:
        """A copy without the given token ids (e.g. the special tokens)."""
        if not ids or len(self) == 0:
            return self
        keep = ~np.isin(self.token_ids, np.fromiter(ids, dtype=np.int64))
        return SparseVector(self.token_ids[keep], self.weights[keep], self.positions[keep])

    def as_dict(self) -> dict[int, float]:
        return {int(i): float(w) for i, w in zip(self.token_ids, self.weights)}


@dataclass(frozen=True)
class Encoding:
    """One encoded text: its tokens, their character spans and its full sparse vector.

    ``vector`` holds every active dimension, special tokens included (they are part of the
    leakage report); use :meth:`SpladeEncoder.search_vector` for the vector used in search.
    """

    text: str
    input_ids: tuple[int, ...]
    offsets: tuple[tuple[int, int], ...]
    vector: SparseVector
    num_text_tokens: int = 0
    max_length: int = DEFAULT_MAX_LENGTH

    @property
    def truncated(self) -> bool:
        """True when the text had more tokens than fit in ``max_length``."""
        return self.num_text_tokens > len(self.input_ids)


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


def _find_parent(model: nn.Module, target: nn.Module) -> tuple[nn.Module, str]:
    for name, module in model.named_modules():
        if module is target and name:
            parent_name, _, attr = name.rpartition(".")
            return model.get_submodule(parent_name) if parent_name else model, attr
    raise ModelLoadError(type(model).__name__, "could not locate the MLM output projection")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU. Other values are passed to ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


_HUB_PROBE: dict[str, tuple[float, bool]] = {}


def hub_reachable(timeout: float = 3.0, ttl: float = 60.0) -> bool:
    """Whether the Hugging Face Hub host answers a TCP connect (cached for ``ttl`` seconds).

    ``HF_HUB_OFFLINE=1`` means no. Used to fail fast (and fall back to the local HF cache)
    instead of waiting for the hub client's retries in a closed network.
    """
    import os
    import socket
    import time
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    now = time.monotonic()
    cached = _HUB_PROBE.get(host)
    if cached and now - cached[0] < ttl:
        return cached[1]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            ok = True
    except OSError:
        ok = False
    _HUB_PROBE[host] = (now, ok)
    return ok


def _explain_load_error(source: str, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    local = Path(source).expanduser()
    if local.exists() and not local.is_dir():
        return "the path is a file; point to the model folder (config.json, model.safetensors, tokenizer)"
    if local.is_dir():
        return f"the folder is not a loadable *ForMaskedLM checkpoint ({text})"
    lowered = text.lower()
    if any(s in lowered for s in ("connect", "offline", "resolve", "network", "timed out", "max retries")):
        return (
            "the Hugging Face Hub is not reachable from this machine (offline or closed network). "
            "Download the checkpoint elsewhere and give its local folder instead."
        )
    if "not a valid model identifier" in lowered or "repository not found" in lowered or "404" in lowered:
        return "no such model on the Hugging Face Hub (check the id), and no local folder by that name"
    return text


def load_mlm(source: str, *, revision: str | None = None, dtype: torch.dtype = torch.float32,
             name: str | None = None):
    """Load ``(model, tokenizer)`` of a ``*ForMaskedLM`` checkpoint: a local folder or a Hub id.

    Safetensors only, never remote code. When the Hub is unreachable, only the local HF cache
    is tried (fast failure instead of the hub client's retries). Used for encoding
    (:meth:`SpladeEncoder.load`) and as the base of a fine-tune.

    Raises:
        ModelLoadError: with a reason a user can act on.
    """
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    if not source or not str(source).strip():
        raise ModelLoadError(str(source), "no model given: a preset name, Hub id or local folder")
    if Path(source).expanduser().is_file():
        raise ModelLoadError(source, _explain_load_error(source, FileNotFoundError(source)), name)
    if looks_like_path(source) and not Path(source).expanduser().exists():
        raise ModelLoadError(source, "no such folder on this machine", name)
    is_local = Path(source).expanduser().is_dir()
    src = str(Path(source).expanduser()) if is_local else source
    kwargs = {"trust_remote_code": False}
    if revision and not is_local:
        kwargs["revision"] = revision
    offline = not is_local and not hub_reachable()
    if offline:
        kwargs["local_files_only"] = True  # only the local HF cache can serve it
    try:
        config = AutoConfig.from_pretrained(src, **kwargs)
        archs = [a for a in (getattr(config, "architectures", None) or []) if a]
        if archs and not any(a.endswith("ForMaskedLM") for a in archs):
            raise ModelLoadError(
                source, f"architecture {archs[0]} is not a *ForMaskedLM model (SPLADE needs MLM logits)", name
            )
        if is_local and not any(Path(src).glob("*.safetensors")):
            raise ModelLoadError(
                source, "no *.safetensors weights in the folder (this app loads safetensors only)", name
            )
        tokenizer = AutoTokenizer.from_pretrained(src, **kwargs)
        model = AutoModelForMaskedLM.from_pretrained(
            src, config=config, use_safetensors=True, dtype=dtype, **kwargs
        )
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every loader failure becomes one message
        logger.warning("Loading %s failed: %s", source, exc)
        if offline:
            raise ModelLoadError(
                source,
                "the Hugging Face Hub is not reachable from this machine (offline or closed network) "
                "and the model is not in the local Hugging Face cache. Download the checkpoint "
                "elsewhere and give its local folder instead.",
                name,
            ) from exc
        raise ModelLoadError(source, _explain_load_error(source, exc), name) from exc
    return model, tokenizer


#: Texts per tokenizer call when tokenising a corpus (bounds the batch's temporary memory).
TOKENIZE_BATCH = 1024


def _safetensors_header(path: Path) -> bytes:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, offsets); b"" if unreadable."""
    try:
        with path.open("rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            return fh.read(min(size, 100_000_000))
    except OSError:
        return b""


def folder_identity(folder: str | Path) -> str:
    """A hex digest identifying a local checkpoint folder's current files.

    Covers the resolved folder path, every top-level file's name, size and modification time
    (nanoseconds), the bytes of ``config.json`` and the headers of the ``*.safetensors`` files,
    so rewriting a checkpoint in place (same folder, same name) changes it. Weights are not
    read in full (a multi-GB checkpoint would take seconds).

    Args:
        folder: The checkpoint folder.

    Returns:
        A 64-character hex digest.
    """
    root = Path(folder).expanduser().resolve()
    h = hashlib.sha256(f"folder:{root}".encode())
    for f in sorted(p for p in root.iterdir() if p.is_file()):
        st = f.stat()
        h.update(f"\x1e{f.name}\x1f{st.st_size}\x1f{st.st_mtime_ns}".encode())
        if f.name == "config.json":
            h.update(f.read_bytes())
        elif f.suffix == ".safetensors":
            h.update(_safetensors_header(f))
    return h.hexdigest()


def _weights_digest(model: nn.Module) -> str:
    """sha256 over the model's parameters and buffers (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}\x1f{data.dtype}\x1f{tuple(data.shape)}".encode())
        h.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _params_version(model: nn.Module) -> int:
    """Sum of the parameters' in-place modification counters (changes when training updates them)."""
    return sum(int(p._version) for p in model.parameters())


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
        encoder = cls(model, tokenizer, name=name or source, max_length=max_length, drop_special=drop_special,
                      precision=precision)
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
            full = self.tokenizer(chunk, add_special_tokens=True, truncation=False, verbose=False,
                                  return_offsets_mapping=offsets_ok)
            ids = [list(x) for x in full["input_ids"]]
            offs = full.get("offset_mapping") if offsets_ok else None
            long_rows = [i for i, x in enumerate(ids) if len(x) > self.max_length]
            cut_ids: dict[int, list[int]] = {}
            cut_offs: dict[int, list] = {}
            if long_rows:  # only long texts are tokenised twice
                cut = self.tokenizer([chunk[i] for i in long_rows], add_special_tokens=True, truncation=True,
                                     max_length=self.max_length, return_offsets_mapping=offsets_ok)
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

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: ProgressFn | None = None
    ) -> list[Encoding]:
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
        self, texts: Sequence[str], *, batch_size: int = 32, progress: ProgressFn | None = None
    ) -> Iterator[tuple[int, Encoding]]:
        """Encode texts lazily: ``(input index, Encoding)`` pairs, shortest texts first.

        Every text is tokenised up front (in tokenizer batches), all texts are sorted by token
        count, and the model runs one ``batch_size`` batch of similar lengths at a time, so a
        large corpus wastes little on padding and the caller can reduce each encoding (e.g. prune
        it) before the next batch: only one batch of full vectors is alive at a time.

        Args:
            texts: The texts.
            batch_size: Texts per model call.
            progress: ``progress(done, total)`` after every batch.

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
            batch = [(i, self._to_encoding(texts[i], items[i], values[row], positions[row]))
                     for row, i in enumerate(idx)]
            done += len(idx)
            if progress is not None:
                progress(done, len(items))
            yield from batch

    def _pool_batch(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        device = self.device
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")
        with self._lock, torch.inference_mode(), self._projection_detached(), autocast:
            try:
                out = self.model(input_ids=ids.to(device), attention_mask=mask.to(device))
            except torch.cuda.OutOfMemoryError as exc:  # pragma: no cover - GPU only
                raise RuntimeError(
                    "GPU out of memory while encoding; lower the batch size (batch_size=...)"
                ) from exc
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

    # ------------------------------------------------------------------ search view
    def search_sparse_vector(self, encoding: Encoding, drop_special: bool | None = None) -> SparseVector:
        """The vector used for search: special tokens dropped unless switched off."""
        drop = self.drop_special if drop_special is None else drop_special
        return encoding.vector.without(self.special_ids) if drop else encoding.vector

    def search_vector(self, encoding: Encoding, drop_special: bool | None = None) -> dict[str, float]:
        """``{raw token string: weight}`` for indexing and querying (special tokens dropped)."""
        vec = self.search_sparse_vector(encoding, drop_special)
        return {self.id_to_token(int(i)): float(w) for i, w in zip(vec.token_ids, vec.weights)}

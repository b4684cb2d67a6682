"""Loading a ``*ForMaskedLM`` checkpoint: a local folder or a Hub id, with errors a user can act on.

Safetensors only and never remote code; when the Hugging Face Hub is unreachable only the local
cache is tried, so a closed network fails fast with one clear sentence. torch and transformers are
imported only when a model is loaded, so :class:`ModelLoadError` and :func:`looks_like_path` cost
nothing to import (the command line's start and its input errors).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import hub_host, hub_offline
from .errors import ModelLoadError
from .formats import read_layout

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Files any one of which gives a local folder a tokenizer vocabulary: a fast tokenizer, a sentencepiece
#: model (``sentencepiece.bpe.model``, ``spiece.model``, ``tokenizer.model``, ...), a WordPiece or BPE vocabulary.
TOKENIZER_FILES: tuple[str, ...] = ("tokenizer.json", "*.model", "vocab.txt", "vocab.json")
NO_TOKENIZER = (
    "the folder has no tokenizer files (tokenizer.json, a sentencepiece *.model, vocab.txt or "
    "vocab.json); without them every word would become <unk>. Copy the tokenizer files of the base "
    "model into the folder (tokenizer.save_pretrained(folder))."
)


def has_tokenizer_files(folder: str | Path) -> bool:
    """Whether a local model folder holds a tokenizer vocabulary (one of :data:`TOKENIZER_FILES`)."""
    base = Path(folder)
    return any(p.is_file() for pattern in TOKENIZER_FILES for p in base.glob(pattern))


def check_tokenizer(tokenizer: Any, source: str, name: str | None = None) -> None:
    """Refuse a tokenizer with no vocabulary beyond its special tokens (every word would be ``<unk>``).

    Raises:
        ModelLoadError: the tokenizer knows only its special tokens.
    """
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_tokens", []) or [])
    if not any(token not in special for token in vocab):
        raise ModelLoadError(
            source,
            f"its tokenizer knows only its {len(vocab)} special tokens, so every word "
            "would become <unk> (are the tokenizer files missing?)",
            name,
        )


def looks_like_path(source: str) -> bool:
    """A filesystem path rather than a Hub id (``org/name``)."""
    s = source.strip()
    return s.startswith(("/", ".", "~", "\\")) or s.count("/") > 1 or "\\" in s or (len(s) > 1 and s[1] == ":")


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU. Other values are passed to ``torch.device``."""
    import torch

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
    import socket
    import time

    if hub_offline():
        return False
    host = hub_host()
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


def load_mlm(
    source: str, *, revision: str | None = None, dtype: torch.dtype | None = None, name: str | None = None
) -> tuple[torch.nn.Module, Any]:
    """Load ``(model, tokenizer)`` of a ``*ForMaskedLM`` checkpoint: a local folder or a Hub id.

    A sentence-transformers folder (``modules.json``) gives the MLM of its document side (the base of a
    fine-tune); :meth:`SpladeEncoder.load` reads every side.

    Safetensors only, never remote code. When the Hub is unreachable, only the local HF cache
    is tried (fast failure instead of the hub client's retries). Used for encoding
    (:meth:`SpladeEncoder.load`) and as the base of a fine-tune.

    Args:
        source: a local folder or a Hugging Face Hub id.
        revision: a Hub revision to pin (ignored for folders).
        dtype: the weights' dtype (None: float32).
        name: a display name for error messages.

    Returns:
        ``(model, tokenizer)``: the ``*ForMaskedLM`` module and its tokenizer.

    A local folder without tokenizer files (:data:`TOKENIZER_FILES`), or any tokenizer that knows only its
    special tokens, is refused: transformers would otherwise build a tokenizer that maps every word to ``<unk>``.

    Raises:
        ModelLoadError: with a reason a user can act on.
    """
    if not source or not str(source).strip():
        raise ModelLoadError(str(source), "no model given: a preset name, Hub id or local folder")
    if Path(source).expanduser().is_file():
        raise ModelLoadError(source, _explain_load_error(source, FileNotFoundError(source)), name)
    if looks_like_path(source) and not Path(source).expanduser().exists():
        raise ModelLoadError(source, "no such folder on this machine", name)
    import torch
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    dtype = torch.float32 if dtype is None else dtype
    is_local = Path(source).expanduser().is_dir()
    src = str(Path(source).expanduser()) if is_local else source
    if is_local and (Path(src) / "modules.json").is_file():  # a sentence-transformers folder: its document MLM
        document = read_layout(src, source, name).document
        if document.kind != "mlm":
            raise ModelLoadError(source, "its document side runs no MLM", name)
        src = str(document.folder)
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
        if is_local and not has_tokenizer_files(src):
            raise ModelLoadError(source, NO_TOKENIZER, name)
        tokenizer = AutoTokenizer.from_pretrained(src, **kwargs)
        check_tokenizer(tokenizer, source, name)
        model = AutoModelForMaskedLM.from_pretrained(src, config=config, use_safetensors=True, dtype=dtype, **kwargs)
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


#: Files fetched from the Hub for a sentence-transformers repository: configs, safetensors weights and
#: tokenizer vocabularies, in any module folder; never code (``*.py``) or pickles (``*.bin``).
HUB_PATTERNS: tuple[str, ...] = ("*.json", "*.safetensors", "*.model", "*.txt")


def hub_sentence_transformers_folder(
    repo_id: str, *, revision: str | None = None, name: str | None = None
) -> tuple[Path, str] | None:
    """A local snapshot of a Hub repository in sentence-transformers format, or None when it is not one.

    The repository is one when it has a ``modules.json``; then its configs, safetensors weights and tokenizer
    files (:data:`HUB_PATTERNS`) are downloaded (from the local Hugging Face cache only when the Hub is
    unreachable) and :func:`~sparse_demo.encoder.formats.read_layout` reads it like a folder.

    Returns:
        ``(snapshot folder, "hub:<id>@<commit>")`` or None (not a sentence-transformers repository, or not
        reachable: the ``*ForMaskedLM`` path then gives its own message).
    """
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError:  # pragma: no cover - a runtime requirement
        return None
    offline = not hub_reachable()
    try:
        hf_hub_download(repo_id, "modules.json", revision=revision, local_files_only=offline)
    except Exception:  # noqa: BLE001 - no modules.json (or no Hub): a plain *ForMaskedLM repository, maybe
        return None
    try:
        folder = Path(
            snapshot_download(repo_id, revision=revision, local_files_only=offline, allow_patterns=list(HUB_PATTERNS))
        )
    except Exception as exc:  # noqa: BLE001 - one message
        raise ModelLoadError(repo_id, f"its files could not be downloaded ({type(exc).__name__})", name) from exc
    return folder, f"hub:{repo_id}@{folder.name}"


__all__ = [
    "HUB_PATTERNS",
    "NO_TOKENIZER",
    "TOKENIZER_FILES",
    "ModelLoadError",
    "check_tokenizer",
    "has_tokenizer_files",
    "hub_reachable",
    "hub_sentence_transformers_folder",
    "load_mlm",
    "looks_like_path",
    "resolve_device",
]

"""Identity of a checkpoint: a local folder's files, or a digest of the weights in memory.

:attr:`SpladeEncoder.fingerprint <sparse_demo.encoder.SpladeEncoder.fingerprint>` combines one
of these with the settings that change vectors; index caches are keyed by it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn


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


__all__ = ["folder_identity"]

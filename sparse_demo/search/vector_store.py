"""Document vectors kept on disk, so a restart (or another process) never encodes the same corpus twice.

Encoding a corpus is the slow part of every index (V26 on a 2-core CPU: minutes for the 313-document
sample, more with long documents read in windows). :class:`VectorStore` keeps the pruned search vectors,
input ids and window counts of each encoded corpus in one ``.npz`` file named by a hash of everything they
depend on: the corpus content, the model's fingerprint (checkpoint and vector settings), the document
pruning and the window settings (:attr:`sparse_demo.search.IndexKey.sparse_id`). A changed checkpoint,
setting or document gives another name, so a stale file is never read; files are written atomically
(temporary file, then rename) and a damaged one is ignored and replaced.

Only shared corpora are stored: the bundled sample, the benchmark sets, a file given to the command line.
A corpus a Space visitor uploaded (``Corpus.owner`` set) is never written to disk: nothing of one visitor
outlives their session. The folder is ``SPARSE_DEMO_VECTOR_CACHE`` (``off`` disables it; default
``.cache/vectors`` in the checkout), bounded by ``SPARSE_DEMO_VECTOR_CACHE_MB`` (oldest files dropped first).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sparse_demo.encoder.windows import WindowCounts

logger = logging.getLogger(__name__)

_FORMAT = 1


@dataclass(frozen=True)
class StoredVectors:
    """What one file holds: per document its pruned vector, how many were pruned, the input ids as
    ``(indptr, ids)`` arrays, the window counts and, in passages mode, each document's passage vectors."""

    vectors: list[dict[str, float]]
    pruned: int
    input_ids: tuple[np.ndarray, np.ndarray] | None
    windows: WindowCounts | None
    passages: list[tuple[dict[str, float], ...]] | None = None


class VectorStore:
    """A folder of encoded corpora (see the module docstring).

    Args:
        folder: where the files live (created on first write).
        max_bytes: the folder's budget; the least recently used files go first when a write exceeds it.
    """

    def __init__(self, folder: str | Path, max_bytes: int = 2_000_000_000) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.folder / f"vectors-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}.npz"

    def load(self, key: str, documents: int) -> StoredVectors | None:
        """What was stored under ``key`` for a corpus of ``documents`` documents, or None."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode("utf-8"))
                if meta.get("format") != _FORMAT or meta.get("key") != key or meta.get("documents") != documents:
                    return None
                vocab = json.loads(bytes(z["vocab"]).decode("utf-8"))
                vectors = _rows(z["indptr"], z["cols"], z["weights"], vocab)
                passages = None
                if "p_indptr" in z.files:
                    flat = _rows(z["p_indptr"], z["p_cols"], z["p_weights"], vocab)
                    bounds = z["p_docs"]
                    passages = [tuple(flat[bounds[i] : bounds[i + 1]]) for i in range(documents)]
                input_ids = (z["ids_indptr"], z["ids"]) if "ids" in z.files else None
            os.utime(path)  # recently used
        except Exception:  # noqa: BLE001 - a damaged or foreign file is ignored (and replaced on the next write)
            logger.warning("ignoring unreadable vector file %s", path, exc_info=True)
            return None
        windows = WindowCounts(**meta["windows"]) if meta.get("windows") else None
        return StoredVectors(vectors, int(meta["pruned"]), input_ids, windows, passages)

    def save(self, key: str, vectors: StoredVectors) -> Path | None:
        """Write ``vectors`` under ``key``."""
        vocab: dict[str, int] = {}
        indptr, cols, weights = _flatten(vectors.vectors, vocab)
        arrays: dict[str, np.ndarray] = {"indptr": indptr, "cols": cols, "weights": weights}
        if vectors.passages is not None:
            flat = [p for ps in vectors.passages for p in ps]
            arrays["p_indptr"], arrays["p_cols"], arrays["p_weights"] = _flatten(flat, vocab)
            arrays["p_docs"] = np.cumsum([0, *(len(ps) for ps in vectors.passages)]).astype(np.int64)
        if vectors.input_ids is not None:
            arrays["ids_indptr"], arrays["ids"] = vectors.input_ids
        meta = {
            "format": _FORMAT,
            "key": key,
            "documents": len(vectors.vectors),
            "pruned": int(vectors.pruned),
            "windows": None if vectors.windows is None else asdict(vectors.windows),
        }
        arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        arrays["vocab"] = np.frombuffer(json.dumps(list(vocab), ensure_ascii=False).encode("utf-8"), dtype=np.uint8)
        path = self.path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as fh:
                np.savez(fh, **arrays)
                tmp = Path(fh.name)
            os.replace(tmp, path)
        except OSError:
            logger.warning("could not write the vector file %s", path, exc_info=True)
            return None
        self._trim()
        return path

    def _trim(self) -> None:
        with self._lock:
            files = sorted(self.folder.glob("vectors-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
            total = 0
            for p in files:
                total += p.stat().st_size
                if total > self.max_bytes and p != files[0]:
                    p.unlink(missing_ok=True)
                    logger.info("dropped the vector file %s (SPARSE_DEMO_VECTOR_CACHE_MB)", p.name)


def _flatten(vectors, vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    indptr = np.zeros(len(vectors) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in vectors], out=indptr[1:])
    cols = np.fromiter(
        (vocab.setdefault(t, len(vocab)) for v in vectors for t in v), dtype=np.int32, count=int(indptr[-1])
    )
    # float32: the weights are float32 values (the encoder's), so they come back exactly
    weights = np.fromiter((w for v in vectors for w in v.values()), dtype=np.float32, count=int(indptr[-1]))
    return indptr, cols, weights


def _rows(indptr: np.ndarray, cols: np.ndarray, weights: np.ndarray, vocab: list[str]) -> list[dict[str, float]]:
    return [
        {vocab[c]: float(w) for c, w in zip(cols[a:b].tolist(), weights[a:b].tolist())}
        for a, b in zip(indptr[:-1].tolist(), indptr[1:].tolist())
    ]


_DEFAULT: VectorStore | None = None
_DEFAULT_LOCK = threading.Lock()


def default_store() -> VectorStore | None:
    """The process's store (``SPARSE_DEMO_VECTOR_CACHE``), or None when switched off."""
    global _DEFAULT
    from sparse_demo.config import vector_cache

    folder, max_bytes = vector_cache()
    if folder is None:
        return None
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT.folder != folder or _DEFAULT.max_bytes != max_bytes:
            _DEFAULT = VectorStore(folder, max_bytes)
        return _DEFAULT


__all__ = ["StoredVectors", "VectorStore", "default_store"]

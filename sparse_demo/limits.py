"""Per-request limits of the app (query length, uploads, batches, a visitor's disk quota).

Every limit is configurable through the environment and every cut is stated to the visitor: a
function here either refuses with a :class:`ValueError` naming the limit and its variable, or returns
what it kept together with a sentence saying what it dropped.

Environment variables (all optional):

- ``SPARSE_DEMO_MAX_QUERY_CHARS``: characters of one query in every tab (default 20,000).
- ``SPARSE_DEMO_MAX_BATCH``: queries analysed by one batch request (default 5,000).
- ``SPARSE_DEMO_MAX_UPLOAD_MB``: bytes of one uploaded file (default 10 MB).
- ``SPARSE_DEMO_MAX_ROWS``: rows (pairs, queries) read from one upload (default 50,000).
- ``SPARSE_DEMO_VISITOR_QUOTA_MB``: disk one visitor's own models may use (default 500 MB).
- ``SPARSE_DEMO_VISITOR_MODELS``: how many models one visitor may keep (default 3).
- ``SPARSE_DEMO_MAX_INDEXES``: built search indexes the process keeps (default 8, least recently used dropped).
- ``SPARSE_DEMO_INDEX_CACHE_MB``: estimated memory those indexes may use together (default 1,000 MB).
- ``SPARSE_DEMO_PUBLIC_TRAIN_SECONDS``: in ``public`` mode, the longest turn one fine-tuning run may hold
  (preparation and training; its held-out evaluation and save follow), so one visitor cannot keep the
  one training slot from everyone (default 600 s). Runs wait in one line and see their place in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .config import env_number

T = TypeVar("T")
_MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The app's per-request limits (see the module docstring for the variables)."""

    max_query_chars: int = 20_000
    max_batch: int = 5_000
    max_upload_bytes: int = 10 * _MB
    max_rows: int = 50_000
    visitor_quota_bytes: int = 500 * _MB
    visitor_models: int = 3
    max_indexes: int = 8
    index_cache_bytes: int = 1000 * _MB
    public_train_seconds: int = 600

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        """Limits from the environment.

        Raises:
            ValueError: a variable is not a positive number (the message names it).
        """
        env = os.environ if env is None else env
        return cls(
            max_query_chars=int(env_number(env, "SPARSE_DEMO_MAX_QUERY_CHARS", cls.max_query_chars, minimum=1)),
            max_batch=int(env_number(env, "SPARSE_DEMO_MAX_BATCH", cls.max_batch, minimum=1)),
            max_upload_bytes=int(env_number(env, "SPARSE_DEMO_MAX_UPLOAD_MB", cls.max_upload_bytes / _MB,
                                            minimum=0.001) * _MB),
            max_rows=int(env_number(env, "SPARSE_DEMO_MAX_ROWS", cls.max_rows, minimum=1)),
            visitor_quota_bytes=int(env_number(env, "SPARSE_DEMO_VISITOR_QUOTA_MB", cls.visitor_quota_bytes / _MB,
                                               minimum=0.001) * _MB),
            visitor_models=int(env_number(env, "SPARSE_DEMO_VISITOR_MODELS", cls.visitor_models, minimum=1)),
            max_indexes=int(env_number(env, "SPARSE_DEMO_MAX_INDEXES", cls.max_indexes, minimum=1)),
            index_cache_bytes=int(env_number(env, "SPARSE_DEMO_INDEX_CACHE_MB", cls.index_cache_bytes / _MB,
                                             minimum=0.001) * _MB),
            public_train_seconds=int(env_number(env, "SPARSE_DEMO_PUBLIC_TRAIN_SECONDS", cls.public_train_seconds,
                                                minimum=10)),
        )

    def check_query(self, text: str) -> str:
        """``text`` unchanged, or a ValueError when it exceeds :attr:`max_query_chars`."""
        if len(text) > self.max_query_chars:
            raise ValueError(f"The query has {len(text):,} characters; the limit is {self.max_query_chars:,} "
                             "(SPARSE_DEMO_MAX_QUERY_CHARS). Paste a shorter text.")
        return text

    def check_upload(self, path: str | Path, what: str = "upload") -> Path:
        """The uploaded file's path, or a ValueError when it is missing or over :attr:`max_upload_bytes`."""
        p = Path(path)
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise ValueError(f"The {what} could not be read; upload it again.") from exc
        if size > self.max_upload_bytes:
            raise ValueError(f"The {what} is {size:,} bytes; the limit is {self.max_upload_bytes:,} "
                             "(SPARSE_DEMO_MAX_UPLOAD_MB).")
        return p

    def cut_batch(self, items: Sequence[T], what: str = "queries") -> tuple[list[T], str | None]:
        """The first :attr:`max_batch` items and a sentence saying how many were left out (None if none)."""
        return _cut(items, self.max_batch, what, "SPARSE_DEMO_MAX_BATCH")

    def cut_rows(self, items: Sequence[T], what: str = "rows") -> tuple[list[T], str | None]:
        """The first :attr:`max_rows` items and a sentence saying how many were left out (None if none)."""
        return _cut(items, self.max_rows, what, "SPARSE_DEMO_MAX_ROWS")


def _cut(items: Sequence[T], limit: int, what: str, variable: str) -> tuple[list[T], str | None]:
    kept = list(items[:limit])
    if len(items) <= limit:
        return kept, None
    return kept, (f"Only the first {limit:,} of {len(items):,} {what} were used (the limit per request, "
                  f"{variable}); {len(items) - limit:,} were left out.")


def folder_bytes(path: str | Path) -> int:
    """Total size of the regular files under ``path`` (0 when it does not exist)."""
    root = Path(path)
    if not root.exists():
        return 0
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())

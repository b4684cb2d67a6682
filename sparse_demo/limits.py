"""Per-request limits of the app (query length, uploads, what an upload unpacks to, batches, time, disk).

Every limit is configurable through the environment and every cut is stated to the visitor: a
function here either refuses with a :class:`ValueError` naming the limit and its variable, or returns
what it kept together with a sentence saying what it dropped.

An upload is bounded three times: its own bytes (``SPARSE_DEMO_MAX_UPLOAD_MB``), what it unpacks to
(``SPARSE_DEMO_MAX_UNPACKED_MB``: a zip is refused from its central directory before anything is
decompressed, and its members are read in bounded chunks that stop at the limit, since headers can
lie), and what it holds (``SPARSE_DEMO_MAX_DOCS`` documents, ``SPARSE_DEMO_MAX_DOC_CHARS`` characters
per document or pair text: refused by document id or line before any index is built, because Kiwi's
BM25 analysis time grows faster than linearly with a text's length). Indexing or encoding a
visitor's upload then runs against a :class:`Deadline` (``SPARSE_DEMO_MAX_INDEX_SECONDS``), checked
between batches and documents: past it the work stops with a message naming the limit.

Environment variables (all optional):

- ``SPARSE_DEMO_MAX_QUERY_CHARS``: characters of one query in every tab (default 20,000).
- ``SPARSE_DEMO_MAX_BATCH``: queries analysed by one batch request (default 5,000).
- ``SPARSE_DEMO_MAX_UPLOAD_MB``: bytes of one uploaded file (default 10 MB).
- ``SPARSE_DEMO_MAX_ROWS``: rows (pairs, queries) read from one upload (default 50,000).
- ``SPARSE_DEMO_MAX_UNPACKED_MB``: bytes one upload may unpack to: a zip's members together, or one
  corpus file read by the CLI (default 50 MB).
- ``SPARSE_DEMO_MAX_DOCS``: documents of one corpus (default 20,000).
- ``SPARSE_DEMO_MAX_DOC_CHARS``: characters of one document (title + text) or one pair text (default
  100,000; Kiwi takes about 5 s on such a text on a busy 2-core machine).
- ``SPARSE_DEMO_MAX_INDEX_SECONDS``: seconds (wall clock) indexing, encoding or evaluating one visitor
  upload may take in one request (default 120). Wall clock, not process CPU time: the process's
  CPU time counts every visitor's work, a thread's misses the encoder's worker threads.
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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
    max_unpacked_bytes: int = 50 * _MB
    max_docs: int = 20_000
    max_doc_chars: int = 100_000
    max_index_seconds: float = 120.0
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
            max_unpacked_bytes=int(env_number(env, "SPARSE_DEMO_MAX_UNPACKED_MB", cls.max_unpacked_bytes / _MB,
                                              minimum=0.001) * _MB),
            max_docs=int(env_number(env, "SPARSE_DEMO_MAX_DOCS", cls.max_docs, minimum=1)),
            max_doc_chars=int(env_number(env, "SPARSE_DEMO_MAX_DOC_CHARS", cls.max_doc_chars, minimum=1)),
            max_index_seconds=env_number(env, "SPARSE_DEMO_MAX_INDEX_SECONDS", cls.max_index_seconds,
                                         minimum=0.001),
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

    def unpacked_error(self, name: str, size: int, *, more: bool = False) -> str:
        """The message refusing ``name`` that unpacks to ``size`` bytes (``more``: at least that many)."""
        amount = f"more than {size:,}" if more else f"{size:,}"
        return (f"{name} unpacks to {amount} bytes; the limit is {self.max_unpacked_bytes:,} bytes per upload "
                "(SPARSE_DEMO_MAX_UNPACKED_MB). Upload a smaller corpus.")

    def check_doc_count(self, count: int, name: str = "the corpus", *, more: bool = False) -> None:
        """Nothing, or a ValueError when ``count`` documents exceed :attr:`max_docs`.

        ``more`` says the reader stopped counting at ``count`` (it holds at least that many).
        """
        if count > self.max_docs:
            amount = f"more than {self.max_docs:,}" if more else f"{count:,}"
            raise ValueError(f"{name} holds {amount} documents; the limit is {self.max_docs:,} per corpus "
                             "(SPARSE_DEMO_MAX_DOCS). Upload a smaller corpus.")

    def check_doc_chars(self, doc_id: str, chars: int, where: str = "") -> None:
        """Nothing, or a ValueError naming document ``doc_id`` when it has more than :attr:`max_doc_chars`.

        Example:
            >>> Limits(max_doc_chars=10).check_doc_chars("doc-17", 28)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: document 'doc-17' has 28 characters; the limit is 10 (SPARSE_DEMO_MAX_DOC_CHARS)...
        """
        if chars > self.max_doc_chars:
            prefix = f"{where}: " if where else ""
            raise ValueError(f"{prefix}document {doc_id!r} has {chars:,} characters; the limit is "
                             f"{self.max_doc_chars:,} (SPARSE_DEMO_MAX_DOC_CHARS). Split it into shorter documents.")

    def check_documents(self, docs: Sequence[object], name: str = "the corpus") -> None:
        """Check a corpus's documents (objects with ``id``, ``text`` and ``title``) against the count and
        characters limits, before any index is built.

        Raises:
            ValueError: too many documents, or the first document over :attr:`max_doc_chars` (by id).
        """
        self.check_doc_count(len(docs), name)
        for d in docs:
            self.check_doc_chars(str(d.id), len(d.text) + len(getattr(d, "title", "") or ""))

    def deadline(self, what: str = "Indexing this upload") -> Deadline:
        """A :class:`Deadline` of :attr:`max_index_seconds` starting now."""
        return Deadline(self.max_index_seconds, what)

    def cut_batch(self, items: Sequence[T], what: str = "queries") -> tuple[list[T], str | None]:
        """The first :attr:`max_batch` items and a sentence saying how many were left out (None if none)."""
        return _cut(items, self.max_batch, what, "SPARSE_DEMO_MAX_BATCH")

    def cut_rows(self, items: Sequence[T], what: str = "rows") -> tuple[list[T], str | None]:
        """The first :attr:`max_rows` items and a sentence saying how many were left out (None if none)."""
        return _cut(items, self.max_rows, what, "SPARSE_DEMO_MAX_ROWS")


class TimeLimitExceeded(ValueError):
    """Work on a visitor's upload ran past its :class:`Deadline` (a ValueError: shown as a message)."""


ProgressFn = Callable[[float, str], None]


@dataclass
class Deadline:
    """A time budget for one request's work on a visitor upload (``SPARSE_DEMO_MAX_INDEX_SECONDS``).

    Work calls :meth:`check` between batches and documents (or hands :meth:`wrap` its progress callback);
    past the budget it raises :class:`TimeLimitExceeded` naming the limit, so the work stops there.

    Example:
        >>> d = Deadline(0.0, "Indexing this upload")
        >>> d.check()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        sparse_demo.limits.TimeLimitExceeded: Indexing this upload stopped after 0.0 s: the limit is 0 s...
    """

    seconds: float
    what: str = "Indexing this upload"
    start: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def check(self, stage: str = "") -> None:
        """Nothing while within the budget, else :class:`TimeLimitExceeded` (``stage``: where it stopped)."""
        elapsed = self.elapsed
        if elapsed >= self.seconds:
            at = f" (at: {stage})" if stage else ""
            raise TimeLimitExceeded(f"{self.what} stopped after {elapsed:.1f} s{at}: the limit is {self.seconds:g} s "
                                    "per request (SPARSE_DEMO_MAX_INDEX_SECONDS). Upload fewer or shorter documents.")

    def wrap(self, progress: ProgressFn | None) -> ProgressFn:
        """A progress callback that checks this deadline, then forwards to ``progress`` (may be None).

        A callback already wrapped by a deadline is returned as it is (one budget per request).
        """
        if getattr(progress, "deadline", None) is not None:
            return progress  # type: ignore[return-value]

        def report(fraction: float, desc: str) -> None:
            self.check(desc)
            if progress is not None:
                progress(fraction, desc)

        report.deadline = self  # type: ignore[attr-defined]
        return report


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

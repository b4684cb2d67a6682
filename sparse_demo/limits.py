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

Each limit is a field of :class:`Limits`; :func:`sparse_demo.config.load_limits` reads them from the
environment (the variables, their defaults and minimums are listed once, in :mod:`sparse_demo.config`):

- ``max_query_chars`` (``SPARSE_DEMO_MAX_QUERY_CHARS``): one query in every tab and the CLI.
- ``max_top_k`` (``SPARSE_DEMO_MAX_TOP_K``): the top-k of Explore, Compare and Search (tokens shown, hits).
- ``max_batch`` (``SPARSE_DEMO_MAX_BATCH``), ``max_rows`` (``SPARSE_DEMO_MAX_ROWS``): queries per batch
  request, rows read from one upload (cut, with a sentence saying how many were left out).
- ``max_upload_bytes``, ``max_unpacked_bytes``, ``max_docs``, ``max_doc_chars``, ``max_index_seconds``:
  an upload, as above.
- ``visitor_quota_bytes``, ``visitor_models``: a visitor's own models on disk.
- ``max_indexes``, ``index_cache_bytes``: the shared search-index cache.
- ``public_train_seconds``: in ``public`` mode, the longest turn one fine-tuning run may hold
  (preparation and training; its held-out evaluation and save follow), so one visitor cannot keep the
  one training slot from everyone. Runs wait in one line and see their place in it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .progress import Progress

T = TypeVar("T")
_MB = 1024 * 1024
#: The last sentence of a :class:`Deadline`'s message about a visitor's upload.
UPLOAD_ADVICE = "Upload fewer or shorter documents."


@dataclass(frozen=True)
class Limits:
    """The app's per-request limits (see the module docstring; read from the environment by
    :func:`sparse_demo.config.load_limits`)."""

    max_query_chars: int = 20_000
    max_top_k: int = 100
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

    def check_query(self, text: str) -> str:
        """``text`` unchanged, or a ValueError when it exceeds :attr:`max_query_chars`."""
        if len(text) > self.max_query_chars:
            raise ValueError(
                f"The query has {len(text):,} characters; the limit is {self.max_query_chars:,} "
                "(SPARSE_DEMO_MAX_QUERY_CHARS). Paste a shorter text."
            )
        return text

    def check_top_k(self, top_k: float) -> int:
        """``top_k`` as an int in ``[1, max_top_k]``, else a ValueError naming the limit.

        Example:
            >>> Limits(max_top_k=50).check_top_k(80)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: top-k must be between 1 and 50 (SPARSE_DEMO_MAX_TOP_K), got 80.
        """
        k = int(top_k)
        if not 1 <= k <= self.max_top_k:
            raise ValueError(f"top-k must be between 1 and {self.max_top_k:,} (SPARSE_DEMO_MAX_TOP_K), got {k}.")
        return k

    def check_upload(self, path: str | Path, what: str = "upload") -> Path:
        """The uploaded file's path, or a ValueError when it is missing or over :attr:`max_upload_bytes`."""
        p = Path(path)
        try:
            size = p.stat().st_size
        except OSError as exc:
            raise ValueError(f"The {what} could not be read; upload it again.") from exc
        if size > self.max_upload_bytes:
            raise ValueError(
                f"The {what} is {size:,} bytes; the limit is {self.max_upload_bytes:,} (SPARSE_DEMO_MAX_UPLOAD_MB)."
            )
        return p

    def unpacked_error(self, name: str, size: int, *, more: bool = False) -> str:
        """The message refusing ``name`` that unpacks to ``size`` bytes (``more``: at least that many)."""
        amount = f"more than {size:,}" if more else f"{size:,}"
        return (
            f"{name} unpacks to {amount} bytes; the limit is {self.max_unpacked_bytes:,} bytes per upload "
            "(SPARSE_DEMO_MAX_UNPACKED_MB). Upload a smaller corpus."
        )

    def check_doc_count(self, count: int, name: str = "the corpus", *, more: bool = False) -> None:
        """Nothing, or a ValueError when ``count`` documents exceed :attr:`max_docs`.

        ``more`` says the reader stopped counting at ``count`` (it holds at least that many).
        """
        if count > self.max_docs:
            amount = f"more than {self.max_docs:,}" if more else f"{count:,}"
            raise ValueError(
                f"{name} holds {amount} documents; the limit is {self.max_docs:,} per corpus "
                "(SPARSE_DEMO_MAX_DOCS). Upload a smaller corpus."
            )

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
            raise ValueError(
                f"{prefix}document {doc_id!r} has {chars:,} characters; the limit is "
                f"{self.max_doc_chars:,} (SPARSE_DEMO_MAX_DOC_CHARS). Split it into shorter documents."
            )

    def deadline(self, what: str = "Indexing this upload", advice: str = UPLOAD_ADVICE) -> Deadline:
        """A :class:`Deadline` of :attr:`max_index_seconds` starting now (``advice``: its message's last sentence)."""
        return Deadline(self.max_index_seconds, what, advice=advice)

    def cut_batch(self, items: Sequence[T], what: str = "queries") -> tuple[list[T], str | None]:
        """The first :attr:`max_batch` items and a sentence saying how many were left out (None if none)."""
        return _cut(items, self.max_batch, what, "SPARSE_DEMO_MAX_BATCH")

    def cut_rows(self, items: Sequence[T], what: str = "rows") -> tuple[list[T], str | None]:
        """The first :attr:`max_rows` items and a sentence saying how many were left out (None if none)."""
        return _cut(items, self.max_rows, what, "SPARSE_DEMO_MAX_ROWS")


class TimeLimitExceeded(ValueError):
    """Work on a visitor's upload ran past its :class:`Deadline` (a ValueError: shown as a message)."""


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
    #: What the visitor can do about it (the last sentence of the message).
    advice: str = UPLOAD_ADVICE

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def check(self, stage: str = "") -> None:
        """Nothing while within the budget, else :class:`TimeLimitExceeded` (``stage``: where it stopped)."""
        elapsed = self.elapsed
        if elapsed >= self.seconds:
            at = f" (at: {stage})" if stage else ""
            raise TimeLimitExceeded(
                f"{self.what} stopped after {elapsed:.1f} s{at}: the limit is {self.seconds:g} s "
                f"per request (SPARSE_DEMO_MAX_INDEX_SECONDS). {self.advice}"
            )

    def wrap(self, progress: Progress | None) -> Progress:
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
    return kept, (
        f"Only the first {limit:,} of {len(items):,} {what} were used (the limit per request, "
        f"{variable}); {len(items) - limit:,} were left out."
    )


def folder_bytes(path: str | Path) -> int:
    """Total size of the regular files under ``path`` (0 when it does not exist)."""
    root = Path(path)
    if not root.exists():
        return 0
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())

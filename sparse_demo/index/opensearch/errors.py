"""Errors of the OpenSearch backend; ``str(exc)`` of each is a message meant for users as is."""

from __future__ import annotations

__all__ = ["AnalyzerMismatchError", "IndexingError", "OpenSearchUnavailable"]


class OpenSearchUnavailable(RuntimeError):
    """OpenSearch cannot be used right now; ``str(exc)`` is a readable message."""


class IndexingError(RuntimeError):
    """Documents were rejected or went missing during bulk indexing."""


class AnalyzerMismatchError(ValueError):
    """The index holds BM25 terms of another analyzer than the backend's."""

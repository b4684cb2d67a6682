"""The one error a model load raises: :class:`ModelLoadError`, with a reason a user can act on."""

from __future__ import annotations


class ModelLoadError(RuntimeError):
    """A model could not be loaded; ``reason`` is a sentence a user can act on."""

    def __init__(self, source: str, reason: str, name: str | None = None) -> None:
        label = f"'{name}' ({source})" if name and name != source else f"'{source}'"
        super().__init__(f"Could not load model {label}: {reason}")
        self.source = source
        self.reason = reason
        self.name = name or source


__all__ = ["ModelLoadError"]

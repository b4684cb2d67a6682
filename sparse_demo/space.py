"""Hugging Face Spaces support: run GPU work under ZeroGPU's ``spaces.GPU`` where it exists.

On a ZeroGPU Space the ``spaces`` package is installed and a GPU is attached only while a function
decorated with ``spaces.GPU`` runs. :func:`gpu` applies that decorator when ``spaces`` is importable and
returns the function unchanged everywhere else (a laptop, a CPU Space, a GPU server), so nothing
changes without it.

Example:
    >>> from sparse_demo.space import gpu
    >>> @gpu
    ... def handler(x):
    ...     return x + 1
    >>> handler(1)
    2
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds a GPU is requested for an ordinary handler (ZeroGPU's own default is 60).
DEFAULT_GPU_SECONDS = 60


def zero_gpu_available() -> bool:
    """True when the ``spaces`` package (ZeroGPU) is importable."""
    return importlib.util.find_spec("spaces") is not None


def gpu(fn: F | None = None, *, duration: int = DEFAULT_GPU_SECONDS) -> Any:
    """Decorate ``fn`` with ``spaces.GPU(duration=...)`` when ZeroGPU is available, else return it unchanged.

    Usable bare (``@gpu``) or with arguments (``@gpu(duration=600)``).

    Args:
        fn: the handler (a function or a generator function).
        duration: the longest GPU time, in seconds, one call may take.
    """

    def wrap(f: F) -> F:
        if not zero_gpu_available():
            return f
        import spaces  # type: ignore[import-not-found]

        logger.info("ZeroGPU: %s runs under spaces.GPU(duration=%d)", getattr(f, "__name__", f), duration)
        return spaces.GPU(duration=duration)(f)

    return wrap(fn) if fn is not None else wrap

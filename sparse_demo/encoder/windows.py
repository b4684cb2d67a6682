"""Document windows: how a text longer than the model's max length is read (no torch here).

A model reads at most ``max_length`` tokens, special tokens included. A longer document is split into
token windows of ``max_length - specials`` text tokens each (the model's special tokens are added to every
window, so each window is read exactly as a short text is), starting every ``stride`` text tokens, the last
window ending at the document's last token. Then one of:

* ``max`` (default): the document vector is the element-wise max over its windows' vectors: the card's
  formula (max over positions) applied over the whole document, each window read with its own attention;
* ``passages``: each window is its own passage in the index, and a document scores the max over its
  passages (MaxP); hits are reported per document with the best passage;
* ``first``: only the first window is read (plain truncation: what a model does on its own).

Queries always read one window (their truncation is stated where they are shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WindowMode = Literal["max", "passages", "first"]
#: The modes, default first.
WINDOW_MODES: tuple[str, ...] = ("max", "passages", "first")
#: Text tokens two consecutive windows share unless set: a quarter of the window (48 of 190 for V26).
DEFAULT_OVERLAP_FRACTION = 0.25


@dataclass(frozen=True)
class WindowSettings:
    """How documents longer than the model's max length are read.

    Attributes:
        mode: ``max``, ``passages`` or ``first`` (see the module docstring).
        stride: text tokens from one window's start to the next; ``None``: three quarters of the window.
            A stride above the window is refused (tokens between windows would be read by nobody).
    """

    mode: WindowMode = "max"
    stride: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in WINDOW_MODES:
            raise ValueError(f"document windows must be one of {', '.join(WINDOW_MODES)}, got {self.mode!r}")
        if self.stride is not None and (not isinstance(self.stride, int) or self.stride < 1):
            raise ValueError(f"the window stride must be a whole number of tokens >= 1, got {self.stride!r}")

    def stride_for(self, window: int) -> int:
        """The stride used for windows of ``window`` text tokens.

        Raises:
            ValueError: the stride is larger than the window.
        """
        if self.stride is None:
            return max(1, window - int(window * DEFAULT_OVERLAP_FRACTION))
        if self.stride > window:
            raise ValueError(
                f"the window stride ({self.stride} tokens) is larger than the window ({window} text tokens): "
                "the tokens between windows would never be read"
            )
        return self.stride

    @property
    def key(self) -> str:
        """A short stable string for cache keys and fingerprints (``max/s144``, ``first``)."""
        if self.mode == "first":
            return "first"
        return f"{self.mode}/s{self.stride if self.stride is not None else 'auto'}"

    def describe(self, window: int) -> str:
        """One phrase for status lines: ``max over windows of 190 tokens, stride 142``."""
        if self.mode == "first":
            return f"first {window} tokens only (truncated)"
        how = "max over windows" if self.mode == "max" else "one passage per window"
        return f"{how} of {window} tokens, stride {self.stride_for(window)}"


def plan_windows(num_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """``(start, stop)`` text-token ranges covering ``num_tokens`` tokens with windows of ``window`` tokens.

    Windows start every ``stride`` tokens; the last one is shifted back to end at the last token, so every
    window is full (as long as the text allows) and no window holds only an overlap.

    Example:
        >>> plan_windows(10, 4, 3)
        [(0, 4), (3, 7), (6, 10)]
        >>> plan_windows(11, 4, 3)
        [(0, 4), (3, 7), (6, 10), (7, 11)]
        >>> plan_windows(3, 4, 3), plan_windows(0, 4, 3)
        ([(0, 3)], [(0, 0)])
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window} and {stride}")
    if num_tokens <= window:
        return [(0, num_tokens)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        if start + window >= num_tokens:
            spans.append((num_tokens - window, num_tokens))
            break
        spans.append((start, start + window))
        start += stride
    return spans


@dataclass(frozen=True)
class WindowCounts:
    """What the windows did to a set of documents: the figures Search, Evaluate and the report state.

    Attributes:
        documents: documents encoded.
        long: documents longer than the model's max length.
        windows: windows encoded in all (``documents`` when nothing is long; ``first`` reads one each).
        max_windows: the most windows of one document.
        dropped_tokens: text tokens no window read (only ``first`` drops any).
        mode: the window mode used.
    """

    documents: int
    long: int
    windows: int
    max_windows: int
    dropped_tokens: int
    mode: str

    @property
    def mean_windows(self) -> float:
        return self.windows / self.documents if self.documents else 0.0

    @property
    def extra_cost(self) -> float:
        """Encoding work over one window per document (1.0 = none extra)."""
        return self.mean_windows if self.documents else 1.0

    def sentence(self) -> str:
        """One sentence for a status line (empty when no document is longer than the model reads)."""
        if not self.long:
            return ""
        share = self.long / self.documents
        if self.mode == "first":
            return (
                f"{self.long:,} of {self.documents:,} documents ({share:.0%}) are longer than the model reads "
                f"and were cut to their first window ({self.dropped_tokens:,} tokens not read)."
            )
        return (
            f"{self.long:,} of {self.documents:,} documents ({share:.0%}) are longer than the model reads and were "
            f"read in {self.windows:,} windows ({self.mean_windows:.2f} per document, at most {self.max_windows}; "
            f"{self.extra_cost:.2f}x the encoding work of one window each)."
        )

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "documents": self.documents,
            "long_documents": self.long,
            "windows": self.windows,
            "mean_windows": round(self.mean_windows, 4),
            "max_windows": self.max_windows,
            "tokens_not_read": self.dropped_tokens,
        }

    @classmethod
    def combine(cls, parts: list[WindowCounts]) -> WindowCounts:
        """The counts of several batches together (same mode)."""
        if not parts:
            return cls(0, 0, 0, 0, 0, "max")
        return cls(
            documents=sum(p.documents for p in parts),
            long=sum(p.long for p in parts),
            windows=sum(p.windows for p in parts),
            max_windows=max(p.max_windows for p in parts),
            dropped_tokens=sum(p.dropped_tokens for p in parts),
            mode=parts[0].mode,
        )


__all__ = [
    "DEFAULT_OVERLAP_FRACTION",
    "WINDOW_MODES",
    "WindowCounts",
    "WindowMode",
    "WindowSettings",
    "plan_windows",
]

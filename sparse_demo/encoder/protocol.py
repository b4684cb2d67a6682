"""What the app needs from a sparse encoder: the :class:`Encoder` protocol.

:class:`~sparse_demo.encoder.SpladeEncoder` is the implementation; search, analysis, the corpus report and
the tabs are written against this protocol (as the index code is written against
:class:`~sparse_demo.index.base.SearchBackend`), so a wrapper (a counting encoder in a test, a remote
encoder) only has to provide these names. Importing this module does not import torch.

A model has a query side and a document side (``encode_query`` / ``encode_document``, as
sentence-transformers' ``SparseEncoder``): the same for a symmetric model, different for an asymmetric one
(an inference-free model looks query weights up per token and runs its MLM on documents only). Queries
always go through the query side and documents through the document side; ``encode`` without ``side``
uses ``default_side``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ..progress import Progress
from .vectors import Encoding, SparseVector
from .windows import WindowCounts, WindowSettings

if TYPE_CHECKING:
    from .windowed import WindowedDocument

#: ``query`` or ``document``.
Side = Literal["query", "document"]


@runtime_checkable
class Encoder(Protocol):
    """A loaded model that turns texts into sparse vectors over its tokenizer's vocabulary.

    Attributes:
        name: The display name (a preset name, a folder or a Hub id).
        tokenizer: The Hugging Face tokenizer (``__call__``, ``convert_ids_to_tokens``, ``all_special_ids``).
        max_length: Tokens per document; longer texts are truncated (the encoding says so).
        drop_special: Whether :meth:`search_vector` drops special tokens by default.
        special_ids: The tokenizer's special token ids.
        default_side: The side :meth:`encode` uses without ``side``.
        asymmetric: Whether queries and documents are encoded differently.
        inference_free: Whether a query runs no model (token weights looked up; a tokenizer call).
    """

    name: str
    tokenizer: Any
    max_length: int
    drop_special: bool
    special_ids: frozenset[int]
    default_side: Side

    @property
    def device(self) -> Any:
        """Where the model runs (a ``torch.device``)."""
        ...

    @property
    def vocab_size(self) -> int:
        """Rows of the output projection: the length of a full sparse vector."""
        ...

    @property
    def fingerprint(self) -> str:
        """A stable id of the checkpoint and of every setting that changes its vectors (caches key on it)."""
        ...

    @property
    def asymmetric(self) -> bool:
        """Whether queries and documents go through different modules or settings."""
        ...

    @property
    def inference_free(self) -> bool:
        """Whether the query side runs no model."""
        ...

    def id_to_token(self, token_id: int) -> str:
        """The vocabulary string of a token id (``▁당뇨병``)."""
        ...

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None, side: Side | None = None
    ) -> list[Encoding]:
        """One :class:`Encoding` per text, in input order, with each weight's source position (``side``: None is
        :attr:`default_side`)."""
        ...

    def encode_query(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None
    ) -> list[Encoding]:
        """:meth:`encode` with the query side."""
        ...

    def encode_document(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None
    ) -> list[Encoding]:
        """:meth:`encode` with the document side."""
        ...

    def encode_iter(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: Progress | None = None, side: Side | None = None
    ) -> Iterator[tuple[int, Encoding]]:
        """``(input index, Encoding)`` pairs of one side, lazily, in an order of the encoder's choosing."""
        ...

    def document_windows(
        self, texts: Sequence[str], settings: WindowSettings, *, batch_size: int = 32, progress: Progress | None = None
    ) -> tuple[WindowCounts, Iterator[tuple[int, WindowedDocument]]]:
        """Documents read whole in windows (:mod:`sparse_demo.encoder.windowed`): the counts, and
        ``(input index, WindowedDocument)`` pairs as each document is done."""
        ...

    def search_sparse_vector(self, encoding: Encoding, drop_special: bool | None = None) -> SparseVector:
        """The vector used for search, sorted by weight (special tokens dropped unless switched off)."""
        ...

    def search_vector(self, encoding: Encoding, drop_special: bool | None = None) -> dict[str, float]:
        """``{token string: weight}`` of :meth:`search_sparse_vector`, for indexing and querying."""
        ...


__all__ = ["Encoder", "Side"]

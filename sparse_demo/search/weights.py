"""The hybrid weight to search with, and where it came from.

Priority (:func:`choose_weight`): the user's own weight > the weight the Evaluate tab tuned on a dev
split for this model and corpus (:class:`TunedWeights`, keyed by model fingerprint and corpus
fingerprint) > the model folder's ``sparse_demo.json`` ``{"hybrid_weight": w}`` (see
:mod:`sparse_demo.model_settings`) > :data:`DEFAULT_WEIGHT`. The weight is the sparse leg's in the min-max
hybrid (BM25 gets ``1 - w``).

A tuned weight belongs to the visitor whose Evaluate run found it: the app keeps one
:class:`TunedWeights` per browser session in :class:`VisitorWeights` and drops it when the visitor
leaves. There is no process-wide map, so a visitor never changes another visitor's default; the shared
default changes only with the model folder's ``sparse_demo.json`` (the operator's file).

Example:
    >>> resolve_weight(None, None)
    WeightChoice(weight=0.5, source='default', detail='')
    >>> resolve_weight(None, 0.3)
    WeightChoice(weight=0.3, source='user', detail='')
    >>> choose_weight(None, TunedWeight(0.7, "ndcg@10 on 40 queries"), 0.3).source
    'evaluate'
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sparse_demo.model_settings import recommended_hybrid_weight
from sparse_demo.search.build import model_fingerprint
from sparse_demo.search.corpus_files import corpus_fingerprint

logger = logging.getLogger(__name__)

#: The sparse leg's weight when neither the user nor the model says otherwise.
DEFAULT_WEIGHT = 0.5
#: How many (model, corpus) tuned weights one :class:`TunedWeights` keeps (least recently set dropped).
MAX_TUNED_WEIGHTS = 64
#: How many visitor sessions :class:`VisitorWeights` keeps (least recently used dropped).
MAX_VISITORS = 1_024

WeightSource = Literal["user", "evaluate", "model", "default"]


@dataclass(frozen=True)
class WeightChoice:
    """The hybrid weight to use and where it came from.

    Attributes:
        weight: the sparse leg's weight in [0, 1].
        source: ``"user"`` (given), ``"evaluate"`` (tuned by the Evaluate tab for this model and
            corpus), ``"model"`` (the model folder's ``sparse_demo.json``) or ``"default"``
            (:data:`DEFAULT_WEIGHT`).
        detail: how an Evaluate-tuned weight was chosen (e.g. "best ndcg@10 on 40 queries").
    """

    weight: float
    source: WeightSource
    detail: str = ""

    @property
    def note(self) -> str:
        """A line for a status when the weight was not the user's or the default ("" then)."""
        if self.source == "model":
            return f"weight {self.weight:g} recommended by the model card"
        if self.source == "evaluate":
            how = f" ({self.detail})" if self.detail else ""
            return f"weight {self.weight:g} tuned by the Evaluate tab for this model and corpus{how}"
        return ""

    @property
    def label(self) -> str:
        """Where the weight came from, for every source (the Search tab's status)."""
        if self.source == "user":
            return "your weight"
        if self.source == "default":
            return f"default weight {self.weight:g} (no Evaluate-tuned or model-card weight)"
        return self.note


@dataclass(frozen=True)
class TunedWeight:
    """A hybrid weight the Evaluate tab found best on all the queries it evaluated.

    Attributes:
        weight: the sparse leg's weight in [0, 1].
        detail: how it was chosen, for the Search tab's status.
    """

    weight: float
    detail: str = ""


class TunedWeights:
    """A small thread-safe map (model fingerprint, corpus fingerprint) -> :class:`TunedWeight`.

    One visitor's weights (see :class:`VisitorWeights`); the keys are content hashes, so a weight applies
    only to the same corpus content with the same checkpoint. Bounded to ``max_entries``, the least
    recently set dropped.

    Example:
        >>> tw = TunedWeights()
        >>> tw.remember("model-fp", "corpus-fp", 0.7, "best ndcg@10 on 20 queries")
        >>> tw.get("model-fp", "corpus-fp")
        TunedWeight(weight=0.7, detail='best ndcg@10 on 20 queries')
        >>> tw.get("model-fp", "other") is None
        True
    """

    def __init__(self, max_entries: int = MAX_TUNED_WEIGHTS) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._map: OrderedDict[tuple[str, str], TunedWeight] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._map)

    def remember(self, model_fingerprint: str, corpus_fingerprint: str, weight: float, detail: str = "") -> None:
        """Store the tuned weight for this model and corpus (replacing an older one).

        Raises:
            ValueError: ``weight`` lies outside [0, 1] or a fingerprint is empty.
        """
        w = float(weight)
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"the hybrid weight must lie in [0, 1], got {w}")
        if not model_fingerprint or not corpus_fingerprint:
            raise ValueError("a tuned weight needs both a model fingerprint and a corpus fingerprint")
        key = (model_fingerprint, corpus_fingerprint)
        with self._lock:
            self._map[key] = TunedWeight(w, detail)
            self._map.move_to_end(key)
            while len(self._map) > self.max_entries:
                self._map.popitem(last=False)
        logger.info("tuned hybrid weight %g remembered for model %s, corpus %s", w, *key)

    def get(self, model_fingerprint: str, corpus_fingerprint: str) -> TunedWeight | None:
        """The tuned weight for this model and corpus, or None."""
        with self._lock:
            return self._map.get((model_fingerprint, corpus_fingerprint))

    def forget(self, model_fingerprint: str, corpus_fingerprint: str) -> None:
        """Drop the tuned weight for this model and corpus (no error when there is none)."""
        with self._lock:
            self._map.pop((model_fingerprint, corpus_fingerprint), None)

    def clear(self) -> None:
        """Forget every tuned weight."""
        with self._lock:
            self._map.clear()


class VisitorWeights:
    """One :class:`TunedWeights` per visitor session (thread-safe): the Evaluate tab writes the visitor's,
    the Search tab reads the same visitor's, and :meth:`forget` drops it when the visitor leaves.

    Bounded to ``max_visitors`` sessions (the least recently used dropped), each to ``per_visitor`` weights.

    Example:
        >>> vw = VisitorWeights()
        >>> vw.of("session-a").remember("model-fp", "corpus-fp", 0.7)
        >>> vw.peek("session-a").get("model-fp", "corpus-fp").weight
        0.7
        >>> vw.peek("session-b") is None
        True
        >>> vw.forget("session-a"); len(vw)
        0
    """

    def __init__(self, max_visitors: int = MAX_VISITORS, per_visitor: int = MAX_TUNED_WEIGHTS) -> None:
        if max_visitors < 1:
            raise ValueError(f"max_visitors must be >= 1, got {max_visitors}")
        self.max_visitors = max_visitors
        self.per_visitor = per_visitor
        self._map: OrderedDict[str, TunedWeights] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._map)

    def of(self, session: str) -> TunedWeights:
        """This session's weights, created on first use.

        Raises:
            ValueError: no session id (an anonymous caller must not share a map with others).
        """
        if not session:
            raise ValueError("tuned weights need a visitor session id")
        with self._lock:
            found = self._map.get(session)
            if found is None:
                found = self._map[session] = TunedWeights(self.per_visitor)
                while len(self._map) > self.max_visitors:
                    self._map.popitem(last=False)
            self._map.move_to_end(session)
            return found

    def peek(self, session: str | None) -> TunedWeights | None:
        """This session's weights, or None when it has none (nothing is created)."""
        if not session:
            return None
        with self._lock:
            return self._map.get(session)

    def forget(self, session: str | None) -> None:
        """Drop a session's weights (the visitor left); no error when it has none."""
        if session:
            with self._lock:
                self._map.pop(session, None)


def choose_weight(user: float | None, tuned: TunedWeight | None, model: float | None) -> WeightChoice:
    """The weight by priority: the user's > the Evaluate-tuned one > the model card's > :data:`DEFAULT_WEIGHT`.

    A pure function (no I/O): :func:`resolve_weight` gathers its inputs.

    Args:
        user: the weight the user chose, or None.
        tuned: the Evaluate tab's weight for this model and corpus, or None.
        model: the model folder's recommended weight, or None.

    Raises:
        ValueError: ``user`` lies outside [0, 1].
    """
    if user is not None:
        w = float(user)
        if not 0.0 <= w <= 1.0:
            raise ValueError(f"the hybrid weight must lie in [0, 1], got {w}")
        return WeightChoice(w, "user")
    if tuned is not None:
        return WeightChoice(float(tuned.weight), "evaluate", tuned.detail)
    if model is not None:
        return WeightChoice(float(model), "model")
    return WeightChoice(DEFAULT_WEIGHT, "default")


def model_folder(encoder: Any | None) -> Path | None:
    """The local folder the encoder was loaded from, or None (a Hub id, an in-memory model, no model).

    Reads, in order, a ``source_folder`` / ``folder`` / ``source`` attribute, then the folder
    transformers recorded when loading (``model.config._name_or_path``, ``tokenizer.name_or_path``).
    """
    if encoder is None:
        return None
    candidates: list[Any] = [getattr(encoder, a, None) for a in ("source_folder", "folder", "source")]
    config = getattr(getattr(encoder, "model", None), "config", None)
    candidates.append(getattr(config, "_name_or_path", None))
    candidates.append(getattr(getattr(encoder, "tokenizer", None), "name_or_path", None))
    for c in candidates:
        if not isinstance(c, (str, Path)) or not str(c).strip():
            continue
        path = Path(c).expanduser()
        if path.is_dir():
            return path
    return None


def recommended_weight(encoder: Any | None) -> float | None:
    """The hybrid weight the encoder's model folder recommends (``sparse_demo.json``), or None.

    Never raises: a missing folder, a Hub model or a broken settings file (logged) give None.

    Args:
        encoder: a ``SpladeEncoder`` (or anything with ``model`` / ``tokenizer``), or None.
    """
    folder = model_folder(encoder)
    if folder is None:
        return None
    return recommended_hybrid_weight(folder)


def resolve_weight(
    encoder: Any | None,
    weight: float | None,
    corpus: Any | None = None,
    tuned: TunedWeights | None = None,
) -> WeightChoice:
    """The weight to search with, by :func:`choose_weight`'s priority.

    Args:
        encoder: the index's encoder (None: BM25 only).
        weight: the user's weight, or None when they have not chosen one.
        corpus: the searched corpus; with it, a weight the Evaluate tab tuned for this model and
            corpus applies (looked up in ``tuned``).
        tuned: this visitor's tuned weights (:meth:`VisitorWeights.peek`); None: no tuned weight applies.

    Raises:
        ValueError: ``weight`` lies outside [0, 1].
    """
    if weight is not None:
        return choose_weight(weight, None, None)
    found = None
    if corpus is not None and encoder is not None and tuned is not None and len(tuned):
        found = tuned.get(model_fingerprint(encoder), corpus_fingerprint(corpus))
    return choose_weight(None, found, None if found is not None else recommended_weight(encoder))

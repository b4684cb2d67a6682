"""Progress and cancel callbacks: one shape for every long piece of work.

- :data:`Progress`: ``progress(fraction, message)``, ``fraction`` in ``[0, 1]`` of the whole piece of work
  and a short sentence saying what runs now (what ``gr.Progress`` takes, and what the CLI logs). Encoding,
  indexing, BM25 analysis, evaluation and the Compare tab's query sets all report this way.
- :data:`ShouldStop`: ``should_stop()``, polled between batches; True stops the work cleanly.
- :class:`TrainingEvent`: what the trainer reports after every logged step (and at its phases),
  delivered to a :data:`TrainingProgress`.

This module imports nothing from the package, so every layer can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

#: ``progress(fraction, message)``: ``fraction`` of the whole work done (0..1), ``message`` what runs now.
Progress = Callable[[float, str], None]
#: ``should_stop()``: True asks the work to stop at its next check.
ShouldStop = Callable[[], bool]


def no_progress(_fraction: float, _message: str) -> None:
    """A :data:`Progress` that ignores every report."""


def scaled(progress: Progress | None, start: float, end: float) -> Progress:
    """A :data:`Progress` for one stage that maps its ``0..1`` onto ``start..end`` of ``progress``.

    Example:
        >>> seen = []
        >>> scaled(lambda f, m: seen.append((f, m)), 0.5, 0.9)(0.5, "encoding")
        >>> seen
        [(0.7, 'encoding')]
    """
    if progress is None:
        return no_progress
    span = end - start

    def report(fraction: float, message: str) -> None:
        progress(start + span * fraction, message)

    return report


def counted(progress: Progress | None, done: int, total: int, what: str) -> None:
    """Report ``done`` of ``total`` items (``"Encoded 64/200 texts"``) to ``progress`` (when given).

    Example:
        >>> counted(lambda f, m: print(f, m), 50, 200, "texts encoded")
        0.25 50/200 texts encoded
    """
    if progress is not None:
        progress(done / total if total > 0 else 1.0, f"{done:,}/{total:,} {what}")


@dataclass(frozen=True)
class TrainingEvent:
    """One report of a training run: a logged step, a held-out evaluation, or a phase with a message.

    ``phase`` says which fields are set (the others stay None):

    - ``"train"`` (every ``log_every`` steps): ``step``, ``max_steps``, ``epoch``, the loss components
      (``total``, ``infonce``, ``flops_q``, ``flops_d``, ``margin``, ``kd``; ``vector_kd`` when a vector
      teacher is used), the FLOPS weights in force
      (``lambda_flops_q``, ``lambda_flops_d``), mean active dimensions (``active_q``, ``active_d``), ``lr``.
    - ``"eval"`` (held-out evaluation): ``step``, ``eval_mrr10``, ``eval_r1``, ``hybrid_mrr10``, ``best_step``.
    - any other phase (``prepare``, ``eval_before``, ``eval_after``, ``save``, ``done``; the app adds
      ``queued`` and ``turn``): ``message``.

    ``elapsed_s`` is the seconds since the run (a step: its training loop) started.
    """

    phase: str
    message: str | None = None
    elapsed_s: float | None = None
    step: int | None = None
    max_steps: int | None = None
    epoch: float | None = None
    total: float | None = None
    infonce: float | None = None
    flops_q: float | None = None
    flops_d: float | None = None
    margin: float | None = None
    kd: float | None = None
    vector_kd: float | None = None
    lambda_flops_q: float | None = None
    lambda_flops_d: float | None = None
    active_q: float | None = None
    active_d: float | None = None
    lr: float | None = None
    eval_mrr10: float | None = None
    eval_r1: float | None = None
    hybrid_mrr10: float | None = None
    best_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, as a plain dict (a JSON record of ``training_info.json``, a log line)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


#: ``on_event(event)``: the trainer's progress callback.
TrainingProgress = Callable[[TrainingEvent], None]

__all__ = ["Progress", "ShouldStop", "TrainingEvent", "TrainingProgress", "counted", "no_progress", "scaled"]

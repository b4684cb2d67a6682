"""The Search tab's OpenSearch options: two-phase sparse search settings and the ``sparse_vector`` report.

Pure handlers; :mod:`sparse_demo.ui.search` places their widgets and wires them.
"""

from __future__ import annotations

import logging
from typing import Any

from ..corpus import Corpus
from ..formatting import fmt_number
from ..progress import Progress
from .common import AppContext, UserError, message, resolve_corpus

logger = logging.getLogger(__name__)


def run_sparse_vector_report(
    ctx: AppContext,
    corpus_choice: str | None,
    uploaded: Corpus | None,
    model_choice: str | None,
    folder: str | None,
    visitor_models: dict[str, str] | None,
    progress: Progress | None = None,
) -> str:
    """The ``sparse_vector`` compatibility report of the picked model on the picked corpus, as Markdown."""
    from sparse_demo.search.sparse_vector import model_report

    try:
        corpus = resolve_corpus(corpus_choice, uploaded)
        encoder = ctx.encoder(model_choice, folder, visitor_models)
        if progress is not None:
            progress(0.1, f"encoding {len(corpus.documents):,} documents and {len(corpus.queries):,} queries")
        report = model_report(encoder, corpus)
    except (UserError, ValueError) as exc:
        return message(str(exc), "error")
    except Exception as exc:  # noqa: BLE001
        logger.exception("sparse_vector report failed")
        return ctx.redact(message(f"The sparse_vector report failed: {exc}", "error"))
    rows = ["| figure | value | meaning |", "|---|---|---|"]
    for r in report.to_frame().itertuples(index=False):
        value = "n/a" if r.value is None else (fmt_number(r.value) if isinstance(r.value, float) else f"{r.value:,}")
        rows.append(f"| {r.figure} | {value} | {r.meaning} |")
    head = (
        f"**{encoder.name}** on **{corpus.name}** under OpenSearch 3.3+'s `sparse_vector` field (token ids folded "
        "with `id % 32768`, the largest weight kept where ids collide, weights byte-quantized), measured in memory "
        "against exact search:"
    )
    return ctx.redact("\n\n".join([head, "\n".join(rows)]))


def two_phase_settings(on: bool, prune: Any, expansion: Any, window: Any) -> Any:
    """The Search tab's two-phase settings, or None when off (bad numbers raise ValueError, shown as an error)."""
    if not on:
        return None
    from sparse_demo.index.opensearch import TwoPhase

    try:
        return TwoPhase(float(prune), float(expansion), int(window))
    except (TypeError, ValueError) as exc:
        raise UserError(f"Two-phase settings: {exc}") from None

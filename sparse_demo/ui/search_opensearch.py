"""The Search tab's OpenSearch options: two-phase sparse search settings and the ``sparse_vector`` report.

Pure handlers; :mod:`sparse_demo.ui.search` places their widgets and wires them.
"""

from __future__ import annotations

import logging
from typing import Any

from ..corpus import Corpus
from ..formatting import fmt_number
from ..limits import Deadline
from ..progress import Progress, scaled
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
    on_engine: bool = False,
) -> str:
    """The ``sparse_vector`` compatibility report of the picked model on the picked corpus, as Markdown; with
    ``on_engine``, also measured on the OpenSearch node (``OPENSEARCH_URL``) when it has the field."""
    from sparse_demo.index.sparse_vector_compat import compatibility_report
    from sparse_demo.search.sparse_vector import model_vectors

    try:
        corpus = resolve_corpus(corpus_choice, uploaded)
        encoder = ctx.encoder(model_choice, folder, visitor_models)
        deadline = None
        # A visitor's upload, or any corpus on a public app (a big configured corpus would hold the worker and
        # the node for every visitor who asks): encoding and the node's work share one time budget.
        if corpus.owner is not None:
            deadline = ctx.limits.deadline("The sparse_vector report on your upload")
        elif ctx.settings.public:  # not the visitor's corpus: "upload fewer documents" would not help
            deadline = ctx.limits.deadline(
                f"The sparse_vector report on '{corpus.name}'", advice="Pick a smaller corpus or upload your own."
            )
        if deadline is not None:
            progress = deadline.wrap(progress)
        if progress is not None:
            progress(0.1, f"encoding {len(corpus.documents):,} documents and {len(corpus.queries):,} queries")
        docs, queries = model_vectors(encoder, corpus, progress=scaled(progress, 0.1, 0.3))
        report = compatibility_report(docs, queries or None, int(encoder.vocab_size), 10)
        engine, engine_note = _engine_measurement(docs, queries, progress, deadline) if on_engine else (None, None)
    except (UserError, ValueError) as exc:
        return message(str(exc), "error")
    except Exception as exc:  # noqa: BLE001
        logger.exception("sparse_vector report failed")
        return ctx.redact(message(f"The sparse_vector report failed: {exc}", "error"))
    head = (
        f"**{encoder.name}** on **{corpus.name}** under OpenSearch 3.3+'s `sparse_vector` field (token ids folded "
        "with `id % 32768`, the largest weight kept where ids collide, weights byte-quantized), measured in memory "
        "against exact search:"
    )
    parts = [head, _figures_table(report)]
    if engine is not None:
        parts += [
            f"Measured on the OpenSearch {engine.version} node: the same vectors in a temporary `sparse_vector` "
            f"index ({engine.documents:,} documents, one segment, "
            f"{'searched by SEISMIC' if engine.approximate else 'searched exactly'}; deleted afterwards):",
            _figures_table(engine),
        ]
    if engine_note:
        parts.append(message(engine_note, "warning"))
    return ctx.redact("\n\n".join(parts))


def _figures_table(figures: Any) -> str:
    rows = ["| figure | value | meaning |", "|---|---|---|"]
    for r in figures.to_frame().itertuples(index=False):
        if r.value is None or isinstance(r.value, bool):
            value = {None: "n/a", True: "yes", False: "no"}[r.value]
        elif isinstance(r.value, float):
            value = fmt_number(r.value)
        else:
            value = f"{r.value:,}" if isinstance(r.value, int) else str(r.value)
        meaning = str(r.meaning).replace("|", "\\|")  # "|exact & folded top-k|" stays in its cell
        rows.append(f"| {r.figure} | {value} | {meaning} |")
    return "\n".join(rows)


def _engine_measurement(
    docs: list[Any], queries: list[Any], progress: Progress | None, deadline: Deadline | None = None
) -> tuple[Any, str | None]:
    """``(EngineAgreement, None)`` from the configured node, or ``(None, why not)`` (no node, no field, no queries).

    With a ``deadline`` (a visitor's upload, or any corpus on a public app), the node's merge waits at most the
    time left of it; past it the temporary index is deleted (which stops the merge) and ``TimeLimitExceeded``
    says so.
    """
    from sparse_demo.config import ConnectionSettings
    from sparse_demo.index.opensearch.client import make_client
    from sparse_demo.index.opensearch.sparse_vector import engine_agreement, sparse_vector_support

    if not queries:
        return None, "The corpus has no queries: the node's search cannot be measured."
    settings = ConnectionSettings.from_env()
    client = make_client(settings)
    try:
        why_not = sparse_vector_support(client)
    except Exception as exc:  # noqa: BLE001 - connection refused, auth, timeouts
        url = settings.display_url
        return None, f"OpenSearch at {url} did not answer ({type(exc).__name__}): measured in memory only."
    if why_not:
        return None, f"{why_not} (at {settings.display_url}): measured in memory only."

    kwargs: dict[str, Any] = {}
    if deadline is not None:

        def time_left() -> float:  # asked when the merge starts, after encoding and bulk took their share
            return max(1.0, deadline.seconds - deadline.elapsed)

        kwargs["merge_timeout_s"] = time_left
    try:
        return engine_agreement(client, docs, queries, 10, progress=scaled(progress, 0.3, 1.0), **kwargs), None
    except TimeoutError:
        if deadline is not None:
            deadline.check("the node's merge")  # past the budget: the visitor reads which limit stopped it
        raise


def two_phase_settings(on: bool, prune: Any, expansion: Any, window: Any) -> Any:
    """The Search tab's two-phase settings, or None when off (bad numbers raise ValueError, shown as an error)."""
    if not on:
        return None
    from sparse_demo.index.opensearch import TwoPhase

    try:
        return TwoPhase(float(prune), float(expansion), int(window))
    except (TypeError, ValueError) as exc:
        raise UserError(f"Two-phase settings: {exc}") from None

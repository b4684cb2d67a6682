"""Fine-tune tab: train a small sparse encoder on uploaded (query, passage) pairs.

The run machinery lives in :mod:`sparse_demo.ui.finetune_run` (validation, the process's training line
:data:`RUNS`, :func:`run_training`, :func:`visitor_left`, and how a visitor's runs stay fair and private);
it is re-exported here so ``finetune.X`` keeps working. This module holds the widgets: ``build_tab``
only wires the handlers to them.
"""

from __future__ import annotations

import threading
import uuid

import gradio as gr
import pandas as pd

from ..space import gpu
from ..train import MIN_PAIRS, NEW_MODEL_BASES, SIZES
from .common import PICKER_PREFIX, AppContext, UserError, message
from .finetune_run import (
    LOSS_COMPONENTS,
    MAX_TIME_LIMIT_S,
    NEW_BASE,
    RUNS,
    TrainRequest,
    TrainUpdate,
    check_quota,
    curves_chart,
    expansions_markdown,
    forget_cached_copy,
    load_training_data,
    metrics_frame,
    public_name,
    resolve_base,
    resolve_tokenizer,
    run_training,
    slots_message,
    visitor_left,
)

__all__ = [
    "CARD",
    "LOSS_COMPONENTS",
    "MAX_TIME_LIMIT_S",
    "NEW_BASE",
    "RUNS",
    "WARN_BEFORE_UNLOAD_JS",
    "TrainRequest",
    "TrainUpdate",
    "UserError",
    "build_tab",
    "check_quota",
    "curves_chart",
    "expansions_markdown",
    "forget_cached_copy",
    "load_training_data",
    "metrics_frame",
    "public_name",
    "resolve_base",
    "resolve_tokenizer",
    "run_training",
    "size_update",
    "slots_message",
    "visitor_left",
]

#: Card values for fine-tuning a pretrained checkpoint (see TrainConfig.card_defaults).
CARD = {
    "lr": 2e-5,
    "batch_size": 48,
    "max_length": 192,
    "lambda_flops": 0.010,
    "stopword_penalty": 15.0,
    "idf_alpha": 4.0,
    "special_token_penalty": 100.0,
}
PICKER_PREFIX["ft-base"] = (NEW_BASE,)
#: Sets a "Leave site?" warning once this visitor has a trained model (removed when the page closes).
WARN_BEFORE_UNLOAD_JS = """(zip) => {
  if (zip && !window.__sparseDemoUnloadGuard) {
    window.__sparseDemoUnloadGuard = true;
    window.addEventListener("beforeunload", (e) => { e.preventDefault(); e.returnValue = ""; return ""; });
  }
  return [];
}"""


def size_update(base: str | None) -> dict:
    """The *Size* radio for a base: shown for a new model, choosable only for ``new`` (``new-tiny`` etc.
    name their size), hidden for a pretrained base (which has none)."""
    base = (base or "").strip()
    if base == NEW_BASE:
        return gr.update(visible=True, interactive=True)
    if base in NEW_MODEL_BASES:
        return gr.update(visible=True, interactive=False, value=base.split("-", 1)[1])
    return gr.update(visible=False)


# ---------------------------------------------------------------------- widgets
def build_tab(ctx: AppContext, visitor_models: gr.State):
    """Widgets of the Fine-tune tab (call inside ``with gr.Tab(...)``).

    Returns the training event, so the app can chain a refresh of every model picker to it.
    """
    max_time = ctx.limits.public_train_seconds if ctx.settings.public else MAX_TIME_LIMIT_S
    gr.Markdown(
        "Upload (query, positive[, negative][, teacher_score]) pairs as csv, tsv or jsonl, or leave it empty to use "
        f"the bundled sample pairs (at least {MIN_PAIRS}). `new` trains a small model from scratch (CPU, offline, "
        "minutes) of the size chosen below; a preset, Hub id or folder fine-tunes a pretrained MLM (use a GPU). "
        "Loss: InfoNCE + λ·FLOPS_idf (stopword and special-token penalties) + margin (with negatives) + KD (with "
        "teacher scores). One run trains at a time in this app; others wait in line and see their place"
        + (f"; each run may take at most {max_time} s here." if ctx.settings.public else ".")
    )
    with gr.Row():
        with gr.Column():
            pairs_file = gr.File(
                label="Training pairs (.csv / .tsv / .jsonl)",
                elem_id="ft-pairs",
                file_types=[".csv", ".tsv", ".jsonl", ".json"],
            )
            eval_file = gr.File(
                label="Held-out pairs (optional; else 10% of the passages, with their queries)",
                elem_id="ft-eval",
                file_types=[".csv", ".tsv", ".jsonl", ".json"],
            )
            base = gr.Dropdown(
                choices=list(PICKER_PREFIX["ft-base"]) + ctx.model_choices(),
                value=NEW_BASE,
                allow_custom_value=True,
                label="Base model: new (from scratch), or a model / typed folder / Hub id",
                elem_id="ft-base",
            )
            size = gr.Radio(list(SIZES), value="mini", label="Size of the new model", elem_id="ft-size")
            tokenizer = gr.Textbox(
                label="Tokenizer folder to prune for a new model (optional)",
                placeholder="empty: train a tokenizer on the pairs",
                elem_id="ft-tokenizer",
            )
            inference_free = gr.Checkbox(
                value=False,
                label="Inference-free (query side = token weights)",
                info="Queries are the training documents' IDF of their tokens (frozen, no model runs for a query); "
                "only the document side learns. Saved as a sentence-transformers Router folder.",
                elem_id="ft-inference-free",
            )
        with gr.Column():
            epochs = gr.Number(value=10, label="epochs", minimum=0.1)
            batch = gr.Number(value=32, label="batch size", precision=0, minimum=2)
            lr = gr.Number(value=1e-3, label="learning rate (card: 2e-5 for a pretrained base)")
            time_limit = gr.Slider(
                10, max_time, value=min(180, max_time), step=10, label="time limit (s)", elem_id="ft-time"
            )
            with gr.Accordion("Loss (card values: λ_flops 0.010, stopword ×15, idf_alpha 4, special ×100)", open=False):
                lam = gr.Number(value=5e-3, label="λ_flops (queries; documents get 0.6×)")
                stop_pen = gr.Number(value=15, label="stopword_penalty")
                idf_alpha = gr.Number(value=4.0, label="idf_alpha")
                special_pen = gr.Number(value=100, label="special_token_penalty")
                bm25_neg = gr.Checkbox(value=False, label="Mine one BM25 hard negative per pair")
                card = gr.Button("Card values (pretrained base)", size="sm")
    with gr.Row():
        start = gr.Button("Train", variant="primary", elem_id="ft-start")
        stop = gr.Button("Cancel", variant="stop", elem_id="ft-cancel", interactive=False)
    status = gr.Markdown(elem_id="ft-status")
    curves = gr.Plot(label="Training curves", elem_id="ft-curves")
    metrics = gr.Dataframe(
        pd.DataFrame(columns=["when", "system", "R@1", "R@5", "R@10", "MRR@10", "nDCG@10"]),
        label="Held-out retrieval before / after",
        interactive=False,
        elem_id="ft-metrics",
    )
    expansions = gr.Markdown(elem_id="ft-expansions")
    download = gr.File(label="Model folder (zip)", interactive=False, elem_id="ft-zip")

    card.click(
        lambda: (
            CARD["lr"],
            CARD["batch_size"],
            CARD["lambda_flops"],
            CARD["stopword_penalty"],
            CARD["idf_alpha"],
            CARD["special_token_penalty"],
        ),
        None,
        [lr, batch, lam, stop_pen, idf_alpha, special_pen],
    )

    def on_base(b):
        is_new = (b or "").strip() in NEW_MODEL_BASES
        return size_update(b), gr.update(visible=is_new)

    base.change(on_base, base, [size, tokenizer], show_progress="hidden", queue=False)

    def on_start(pf, ef, base_, size_, tok, ep, bs, lr_, tl, lam_, sp, ia, spec, neg, inf, vm, request: gr.Request):
        cancel = threading.Event()
        vm = dict(vm or {})
        req = TrainRequest(
            pf,
            ef,
            base_,
            size_ or "mini",
            tok,
            ep or 1,
            int(bs or 2),
            lr_ or 1e-3,
            tl,
            lam_ or 0.0,
            sp or 1.0,
            ia or 0.0,
            spec or 1.0,
            bool(neg),
            inference_free=bool(inf),
        )
        session = getattr(request, "session_hash", None) or uuid.uuid4().hex
        for up in run_training(ctx, req, cancel, session=session, visitor_models=vm):
            if up.done:
                vm.update(RUNS.kept(session))  # runs of this session that ended meanwhile included
            running = not up.done or bool(RUNS.active(session))
            yield (
                up.status,
                up.curves,
                up.metrics if up.done else gr.skip(),
                up.expansions or gr.skip(),
                up.zip_path or gr.skip(),
                vm if up.done else gr.skip(),
                gr.update(interactive=running),
            )

    event = start.click(
        gpu(on_start, duration=MAX_TIME_LIMIT_S),
        [
            pairs_file,
            eval_file,
            base,
            size,
            tokenizer,
            epochs,
            batch,
            lr,
            time_limit,
            lam,
            stop_pen,
            idf_alpha,
            special_pen,
            bm25_neg,
            inference_free,
            visitor_models,
        ],
        [status, curves, metrics, expansions, download, visitor_models, stop],
        concurrency_limit=None,
    )
    event.then(None, [download], None, js=WARN_BEFORE_UNLOAD_JS)

    def on_cancel(request: gr.Request):
        n = RUNS.cancel(getattr(request, "session_hash", None) or "")
        if not n:
            return message("No training of yours is running."), gr.update(interactive=False)
        return message("Cancelling after the current step…", "warning"), gr.update()

    stop.click(on_cancel, None, [status, stop], queue=False)
    return event

"""Fine-tune tab: train a small sparse encoder on uploaded (query, passage) pairs.

The run happens in a background thread; the handler is a generator that polls the run's
progress events and yields live updates (status, loss curves, active dims). One run at a time
per process (the trainer's lock); a second visitor is told that theirs waits. The result is a
new model folder, offered as a zip and added to *this visitor's* model list only.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import altair as alt
import gradio as gr
import pandas as pd

from ..encoder import ModelLoadError
from ..limits import Limits, folder_bytes
from ..space import gpu

try:  # the public name (COMMON.md); older trees keep it in the trainer module
    from ..train import NEW_MODEL_BASES
except ImportError:  # pragma: no cover - depends on the train package's version
    from ..train.trainer import NEW_MODEL_BASES
from ..train import (
    DEFAULT_SAMPLE_PAIRS,
    LossConfig,
    TrainConfig,
    TrainResult,
    read_pairs,
    train,
    training_busy,
    zip_model,
)
from .common import PICKER_PREFIX, AppContext, UserError, message
from .plots import CHART_WIDTH, safe_chart

logger = logging.getLogger(__name__)

LOSS_COMPONENTS = ("total", "infonce", "flops_q", "flops_d", "margin", "kd")
#: Card values for fine-tuning a pretrained checkpoint (see TrainConfig.card_defaults).
CARD = {"lr": 2e-5, "batch_size": 48, "max_length": 192, "lambda_flops": 0.010, "stopword_penalty": 15.0,
        "idf_alpha": 4.0, "special_token_penalty": 100.0}
MAX_TIME_LIMIT_S = 3600
#: Cancel flags of running trainings, keyed by a per-run token kept in the visitor's gr.State
#: (a threading.Event itself cannot live in gr.State, which may copy its values).
_CANCELS: dict[str, threading.Event] = {}
PICKER_PREFIX["ft-base"] = tuple(NEW_MODEL_BASES)


@dataclass
class TrainRequest:
    """The tab's inputs, validated into a :class:`TrainConfig`."""

    pairs_file: str | None
    eval_file: str | None = None
    base: str = "new-small"
    size: str = "mini"
    tokenizer: str | None = None
    epochs: float = 10.0
    batch_size: int = 32
    lr: float = 1e-3
    time_limit_s: float = 180.0
    lambda_flops: float = 5e-3
    stopword_penalty: float = 15.0
    idf_alpha: float = 4.0
    special_token_penalty: float = 100.0
    bm25_negatives: bool = False
    max_length: int = 192

    def to_config(self, output_dir: Path) -> TrainConfig:
        base = (self.base or "").strip()
        if not base:
            raise UserError(f"Choose a base: {', '.join(NEW_MODEL_BASES)}, a preset, a Hub id or a local folder.")
        if not 0 < float(self.time_limit_s) <= MAX_TIME_LIMIT_S:
            raise UserError(f"The time limit must be between 1 and {MAX_TIME_LIMIT_S} seconds.")
        try:
            loss = LossConfig(
                lambda_flops_query=float(self.lambda_flops),
                lambda_flops_doc=float(self.lambda_flops) * 0.6,
                idf_alpha=float(self.idf_alpha),
                stopword_penalty=float(self.stopword_penalty),
                special_token_penalty=float(self.special_token_penalty),
                reg_warmup_steps=50,
            )
            return TrainConfig(
                base=base,
                size=self.size,
                tokenizer=(self.tokenizer or "").strip() or None,
                epochs=float(self.epochs),
                batch_size=int(self.batch_size),
                lr=float(self.lr),
                time_limit_s=float(self.time_limit_s),
                max_length=int(self.max_length),
                loss=loss,
                bm25_negatives=bool(self.bm25_negatives),
                output_dir=str(output_dir),
                run_name="finetune",
            )
        except ValueError as exc:
            raise UserError(f"Settings: {exc}") from exc


@dataclass
class TrainUpdate:
    """One refresh of the tab."""

    status: str
    curves: Any = None
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    expansions: str = ""
    zip_path: str | None = None
    model_name: str | None = None
    model_dir: str | None = None
    done: bool = False


def load_training_data(req: TrainRequest, limits: Limits | None = None):
    """Read the pairs (uploaded file or the bundled sample) and the optional eval file.

    Files over ``limits.max_upload_bytes`` are refused before reading; rows beyond ``limits.max_rows``
    are cut, and the cut is added to the pairs report's warnings (shown to the visitor).

    Raises:
        UserError: a readable description of what is wrong with the file.
    """
    limits = limits or Limits()
    path = req.pairs_file or str(DEFAULT_SAMPLE_PAIRS)
    try:
        if req.pairs_file:
            limits.check_upload(req.pairs_file, "pairs file")
        if req.eval_file:
            limits.check_upload(req.eval_file, "held-out file")
        pairs = read_pairs(path, max_bytes=limits.max_upload_bytes, max_chars=limits.max_doc_chars)
        eval_pairs = (read_pairs(req.eval_file, max_bytes=limits.max_upload_bytes, max_chars=limits.max_doc_chars)
                      if req.eval_file else None)
    except (ValueError, OSError) as exc:
        raise UserError(f"Pairs file: {exc}") from exc
    for ds, what in ((pairs, "training pairs"), (eval_pairs, "held-out pairs")):
        if ds is None:
            continue
        ds.pairs, note = limits.cut_rows(ds.pairs, what)
        if note:
            ds.report.warnings.append(note)
    if len(pairs.pairs) < 4:
        raise UserError(f"Only {len(pairs.pairs)} usable pairs; at least 4 are needed for in-batch negatives.")
    return pairs, eval_pairs


def resolve_base(ctx: AppContext, base: str, visitor_models: dict[str, str] | None = None) -> str:
    """The base to train from, checked against the model-source policy like every typed model.

    ``new-*`` bases and preset names pass unchanged; a registered model (the demo model) becomes its folder;
    this visitor's own model becomes its private folder; anything typed goes through
    :meth:`ModelRegistry.check_source` (so another visitor's folder or a forbidden path is refused).

    Raises:
        UserError: the policy's message for a refused source, or the reason a Hub model is refused.
    """
    base = (base or "").strip()
    own = dict(visitor_models or {})
    if not base or base in NEW_MODEL_BASES or ctx.settings.preset(base) is not None:
        return base
    if base in own:
        return own[base]
    if base in ctx.registry.names:
        return ctx.registry.resolve(base).source
    try:
        return ctx.registry.check_source(base, own.values())
    except ModelLoadError as exc:
        raise UserError(str(exc)) from exc


def check_quota(ctx: AppContext, folder: Path, visitor_models: dict[str, str] | None) -> None:
    """Refuse a new run when this visitor already holds the most models or disk allowed.

    Raises:
        UserError: naming the limit, what is used and that models go when the page is closed.
    """
    lim = ctx.limits
    held = len(visitor_models or {})
    if held >= lim.visitor_models:
        raise UserError(f"You already have {held} fine-tuned models, the most one visitor may keep "
                        f"(SPARSE_DEMO_VISITOR_MODELS={lim.visitor_models}); they are removed when you close the "
                        "page. Download the ones you need and reload the page to start again.")
    used = folder_bytes(folder)
    if used >= lim.visitor_quota_bytes:
        raise UserError(f"Your models use {used / 2**20:,.1f} MB of disk, the most one visitor may use "
                        f"({lim.visitor_quota_bytes / 2**20:,.0f} MB, SPARSE_DEMO_VISITOR_QUOTA_MB). Reload the "
                        "page to remove them.")


def curves_chart(history: list[dict]) -> alt.Chart | None:
    """Loss components and active dims over steps, from the run's progress events."""
    steps = [h for h in history if h.get("phase") == "train"]
    if not steps:
        return None
    rows = []
    for h in steps:
        for comp in LOSS_COMPONENTS:
            if h.get(comp) is not None:
                rows.append({"step": h["step"], "series": comp, "value": float(h[comp]), "panel": "loss"})
        for side in ("active_q", "active_d"):
            if h.get(side) is not None:
                rows.append({"step": h["step"], "series": side, "value": float(h[side]), "panel": "active dims"})
    data = pd.DataFrame(rows)
    base = alt.Chart(data).mark_line(point=False).encode(
        x=alt.X("step:Q"), y=alt.Y("value:Q", title=None), color=alt.Color("series:N"),
        tooltip=["step", "series", alt.Tooltip("value:Q", format=".4f")],
    )
    loss = base.transform_filter(alt.datum.panel == "loss").properties(
        title="loss components", width=CHART_WIDTH, height=200)
    dims = base.transform_filter(alt.datum.panel == "active dims").properties(
        title="mean active dims (queries / documents)", width=CHART_WIDTH, height=200)
    return alt.hconcat(loss, dims).resolve_scale(color="independent")


def metrics_frame(result: TrainResult) -> pd.DataFrame:
    """Before/after held-out metrics for the model alone, BM25 and the hybrid."""
    rows = []
    for when, table in (("before", result.metrics_before), ("after", result.metrics_after)):
        for system, values in table.items():
            rows.append({"when": when, "system": system, **values})
    return pd.DataFrame(rows)


def expansions_markdown(result: TrainResult) -> str:
    lines = []
    for e in result.expansions:
        before = ", ".join(f"{t} {w:.2f}" for t, w in e.get("before", [])[:8]) or "—"
        after = ", ".join(f"{t} {w:.2f}" for t, w in e.get("after", [])[:8]) or "—"
        lines.append(f"**{e.get('query', '')}**\n\n- before: {before}\n- after: {after}")
    return "\n\n".join(lines)


def run_training(
    ctx: AppContext,
    req: TrainRequest,
    cancel: threading.Event,
    *,
    poll_s: float = 1.0,
    session: str = "local",
    visitor_models: dict[str, str] | None = None,
) -> Iterator[TrainUpdate]:
    """Validate, start the run in a thread, and yield live updates until it ends.

    Args:
        ctx: the app context (limits, work folder).
        req: the tab's inputs.
        cancel: set it to stop after the current step.
        poll_s: seconds between updates.
        session: the visitor's session id; the model is saved in that visitor's private folder.
        visitor_models: the visitor's models so far (for the per-visitor model count and disk quota).
    """
    folder = ctx.visitor_dir(session)
    try:
        check_quota(ctx, folder, visitor_models)
        pairs, eval_pairs = load_training_data(req, ctx.limits)
        req = dataclasses.replace(req, base=resolve_base(ctx, req.base, visitor_models))
        config = req.to_config(folder)
    except UserError as exc:
        yield TrainUpdate(message(str(exc), "error"), done=True)
        return
    report = pairs.report.summary() + "".join(f"\n- {w}" for w in pairs.report.warnings)
    events: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}
    history: list[dict] = []

    def worker() -> None:
        try:
            outcome["result"] = train(config, pairs, eval_pairs, progress=events.put,
                                      should_stop=cancel.is_set, wait=True, registry=ctx.registry)
        except Exception as exc:  # noqa: BLE001 - reported to the visitor below
            logger.exception("Training failed")
            outcome["error"] = exc

    if training_busy():
        yield TrainUpdate(message("Another fine-tuning run is in progress in this app; yours is queued and "
                                  "starts when it finishes.", "warning"))
    thread = threading.Thread(target=worker, name="finetune", daemon=True)
    thread.start()
    last = ""
    while thread.is_alive() or not events.empty():
        try:
            while True:
                ev = events.get_nowait()
                history.append(ev)
                last = _describe(ev) or last
        except queue.Empty:
            pass
        yield TrainUpdate(message(last or "starting…"), safe_chart(curves_chart, history) if history else None)
        thread.join(timeout=poll_s)
    if "error" in outcome:
        exc = outcome["error"]
        yield TrainUpdate(message(f"Training failed: {exc}", "error"), safe_chart(curves_chart, history), done=True)
        return
    result: TrainResult = outcome["result"]
    if result.model_dir is None:
        yield TrainUpdate(message(f"Training stopped ({result.status}); nothing was saved.", "warning"),
                          safe_chart(curves_chart, history), done=True)
        return
    zip_path = str(zip_model(result.model_dir))
    used = folder_bytes(folder)
    if used > ctx.limits.visitor_quota_bytes:
        shutil.rmtree(result.model_dir, ignore_errors=True)
        Path(zip_path).unlink(missing_ok=True)
        yield TrainUpdate(message(f"The model was trained but not kept: your models would use {used / 2**20:,.1f} "
                                  f"MB of disk, over the {ctx.limits.visitor_quota_bytes / 2**20:,.0f} MB one "
                                  "visitor may use (SPARSE_DEMO_VISITOR_QUOTA_MB). Choose a smaller size.", "error"),
                          safe_chart(curves_chart, history), done=True)
        return
    name = f"fine-tuned {time.strftime('%H:%M:%S')} ({uuid.uuid4().hex[:4]})"
    status = (
        f"**Done** ({result.status}): {result.steps} steps, {result.epochs:.1f} epochs in {result.train_s:.0f} s on "
        f"{result.num_train_pairs} pairs ({result.num_eval_pairs} held out). Saved as "
        f"`{ctx.show_path(result.model_dir)}` and added to your model list as **{name}** (only you see it, "
        "until you close the page) in Explore, Compare and Search."
    )
    if report:
        status += f"\n\n{report}"
    yield TrainUpdate(message(status), safe_chart(curves_chart, history), metrics_frame(result),
                      expansions_markdown(result), zip_path, name, str(result.model_dir), done=True)


def _describe(ev: dict) -> str:
    phase = ev.get("phase")
    if phase == "train":
        return (f"step {ev.get('step')}/{ev.get('max_steps')} · epoch {ev.get('epoch', 0):.2f} · "
                f"loss {ev.get('total', float('nan')):.4f} · active dims q {ev.get('active_q', 0):.0f} / "
                f"d {ev.get('active_d', 0):.0f} · {ev.get('elapsed_s', 0):.0f} s")
    if phase == "eval":
        return f"step {ev.get('step')}: held-out MRR@10 {ev.get('eval_mrr10', 0):.3f}, R@1 {ev.get('eval_r1', 0):.3f}"
    return str(ev.get("message", "")) if ev.get("message") else ""


# ---------------------------------------------------------------------- widgets
def build_tab(ctx: AppContext, visitor_models: gr.State):
    """Widgets of the Fine-tune tab (call inside ``with gr.Tab(...)``).

    Returns the training event, so the app can chain a refresh of every model picker to it.
    """
    gr.Markdown(
        "Upload (query, positive[, negative][, teacher_score]) pairs as csv, tsv or jsonl, or leave it empty to use "
        "the bundled sample pairs. `new-small` trains a small model from scratch (CPU, offline, minutes); a preset, "
        "Hub id or folder fine-tunes a pretrained MLM (use a GPU). Loss: InfoNCE + λ·FLOPS_idf (stopword and "
        "special-token penalties) + margin (with negatives) + KD (with teacher scores)."
    )
    with gr.Row():
        with gr.Column():
            pairs_file = gr.File(label="Training pairs (.csv / .tsv / .jsonl)", elem_id="ft-pairs",
                                 file_types=[".csv", ".tsv", ".jsonl", ".json"])
            eval_file = gr.File(label="Held-out pairs (optional; else 10% of the passages, with their queries)",
                                elem_id="ft-eval",
                                file_types=[".csv", ".tsv", ".jsonl", ".json"])
            base = gr.Dropdown(choices=list(PICKER_PREFIX["ft-base"]) + ctx.model_choices(), value="new-small",
                               allow_custom_value=True, label="Base model (or type a folder / Hub id)",
                               elem_id="ft-base")
            size = gr.Radio(["tiny", "mini", "small"], value="mini", label="Size of a new model", elem_id="ft-size")
            tokenizer = gr.Textbox(label="Tokenizer folder to prune for a new model (optional)",
                                   placeholder="empty: train a tokenizer on the pairs", elem_id="ft-tokenizer")
        with gr.Column():
            epochs = gr.Number(value=10, label="epochs", minimum=0.1)
            batch = gr.Number(value=32, label="batch size", precision=0, minimum=2)
            lr = gr.Number(value=1e-3, label="learning rate (card: 2e-5 for a pretrained base)")
            time_limit = gr.Slider(10, MAX_TIME_LIMIT_S, value=180, step=10, label="time limit (s)",
                                   elem_id="ft-time")
            with gr.Accordion("Loss (card values: λ_flops 0.010, stopword ×15, idf_alpha 4, special ×100)",
                              open=False):
                lam = gr.Number(value=5e-3, label="λ_flops (queries; documents get 0.6×)")
                stop_pen = gr.Number(value=15, label="stopword_penalty")
                idf_alpha = gr.Number(value=4.0, label="idf_alpha")
                special_pen = gr.Number(value=100, label="special_token_penalty")
                bm25_neg = gr.Checkbox(value=False, label="Mine one BM25 hard negative per pair")
                card = gr.Button("Card values (pretrained base)", size="sm")
    with gr.Row():
        start = gr.Button("Train", variant="primary", elem_id="ft-start")
        stop = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
    status = gr.Markdown(elem_id="ft-status")
    curves = gr.Plot(label="Training curves", elem_id="ft-curves")
    metrics = gr.Dataframe(pd.DataFrame(columns=["when", "system", "R@1", "R@5", "R@10", "MRR@10", "nDCG@10"]),
                           label="Held-out retrieval before / after", interactive=False, elem_id="ft-metrics")
    expansions = gr.Markdown(elem_id="ft-expansions")
    download = gr.File(label="Model folder (zip)", interactive=False, elem_id="ft-zip")
    cancel_state = gr.State(None)

    card.click(lambda: (CARD["lr"], CARD["batch_size"], CARD["lambda_flops"], CARD["stopword_penalty"],
                        CARD["idf_alpha"], CARD["special_token_penalty"]),
               None, [lr, batch, lam, stop_pen, idf_alpha, special_pen])

    def on_start(pf, ef, base_, size_, tok, ep, bs, lr_, tl, lam_, sp, ia, spec, neg, vm,
                 request: gr.Request):
        token = uuid.uuid4().hex
        cancel = _CANCELS.setdefault(token, threading.Event())
        vm = dict(vm or {})
        req = TrainRequest(pf, ef, base_, size_, tok, ep or 1, int(bs or 2), lr_ or 1e-3, tl, lam_ or 0.0,
                           sp or 1.0, ia or 0.0, spec or 1.0, bool(neg))
        session = getattr(request, "session_hash", None) or token
        try:
            for up in run_training(ctx, req, cancel, session=session, visitor_models=vm):
                if up.model_name and up.model_dir:
                    vm[up.model_name] = up.model_dir
                yield (up.status, up.curves, up.metrics if up.done else gr.skip(), up.expansions or gr.skip(),
                       up.zip_path or gr.skip(), vm, token)
        finally:
            _CANCELS.pop(token, None)

    event = start.click(
        gpu(on_start, duration=MAX_TIME_LIMIT_S),
        [pairs_file, eval_file, base, size, tokenizer, epochs, batch, lr, time_limit, lam, stop_pen, idf_alpha,
         special_pen, bm25_neg, visitor_models],
        [status, curves, metrics, expansions, download, visitor_models, cancel_state],
        concurrency_limit=None,
    )

    def on_cancel(token):
        cancel = _CANCELS.get(token or "")
        if cancel is None:
            return message("No training of yours is running.")
        cancel.set()
        return message("Cancelling after the current step…", "warning")

    stop.click(on_cancel, cancel_state, status, queue=False)
    return event

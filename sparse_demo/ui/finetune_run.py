"""Fine-tune tab, one run: validate a visitor's request, queue it, train it in a thread and report it.

:func:`run_training` is a plain generator that tests call directly; :func:`sparse_demo.ui.finetune.build_tab`
wires it to widgets. Training is fair and tied to its visitor (one
:class:`~sparse_demo.train.queue.TrainingQueue`, :data:`RUNS`, per process):

- A *Train* click first takes one of the visitor's model slots (``SPARSE_DEMO_VISITOR_MODELS``)
  atomically, so simultaneous clicks never keep more models than the limit; a run that fails or is
  cancelled gives its slot back.
- Runs train one at a time, first come first served, in a background thread that waits for its
  turn; a waiting visitor sees their place (``2nd in the queue, 1 run ahead``). In ``public`` mode
  one run's turn is capped (``SPARSE_DEMO_PUBLIC_TRAIN_SECONDS``).
- Closing the page (:func:`visitor_left`, wired to ``demo.unload``) cancels the visitor's runs,
  waiting or training, and whatever they still write (model folder, zip) is deleted.

Nothing shown to the visitor or written into their model names a server path: the status, the
card, ``training_info.json`` and the zip name the model by its shown name and the base and the
tokenizer by their public names. The typed base and tokenizer folder go through the registry's
source policy (:meth:`~sparse_demo.models.ModelRegistry.check_source`), like every model box.
"""

from __future__ import annotations

import contextlib
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
import pandas as pd
from gradio.processing_utils import hash_file

from ..data import read_pairs
from ..encoder import ModelLoadError, looks_like_path
from ..formatting import round_sig
from ..limits import Limits, folder_bytes
from ..models import NOT_AVAILABLE, default_private_root
from ..progress import TrainingEvent
from ..train import (
    DEFAULT_SAMPLE_PAIRS,
    MIN_PAIRS,
    NEW_MODEL_BASES,
    LossConfig,
    TrainConfig,
    TrainResult,
    train,
    zip_model,
)
from ..train.queue import SlotLimitReached, Ticket, TrainingQueue
from .common import AppContext, UserError, gradio_cache_dir, message
from .plots import CHART_WIDTH, safe_chart

logger = logging.getLogger(__name__)

LOSS_COMPONENTS = ("total", "infonce", "flops_q", "flops_d", "margin", "kd")
MAX_TIME_LIMIT_S = 3600
#: The tab's way to say "a new model, of the size chosen below" (``new-tiny`` etc. may be typed too).
NEW_BASE = "new"
#: The process's training line: per-visitor slots, one run at a time, position while waiting.
RUNS = TrainingQueue()


@dataclass
class TrainRequest:
    """The tab's inputs, validated into a :class:`TrainConfig`.

    ``size`` is used only when ``base`` is ``new``; ``tokenizer`` only for a new model.
    """

    pairs_file: str | None
    eval_file: str | None = None
    base: str = NEW_BASE
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
    inference_free: bool = False

    def to_config(self, output_dir: Path, **extra: Any) -> TrainConfig:
        """The run's settings; ``extra`` sets further :class:`TrainConfig` fields (names, paths policy).

        Raises:
            UserError: a setting out of range, naming it.
        """
        base = (self.base or "").strip()
        if not base:
            raise UserError(f"Choose a base: {NEW_BASE} (a new model), a preset, a Hub id or a local folder.")
        if not 0 < float(self.time_limit_s) <= MAX_TIME_LIMIT_S:
            raise UserError(f"The time limit must be between 1 and {MAX_TIME_LIMIT_S} seconds.")
        size = self.size if base == NEW_BASE else (base.split("-", 1)[1] if base in NEW_MODEL_BASES else "small")
        try:
            loss = LossConfig(
                lambda_flops_query=float(self.lambda_flops),
                lambda_flops_doc=float(self.lambda_flops) * 0.6,
                idf_alpha=float(self.idf_alpha),
                stopword_penalty=float(self.stopword_penalty),
                special_token_penalty=float(self.special_token_penalty),
                reg_warmup_steps=50,
            )
            values: dict[str, Any] = {
                "base": base,
                "size": size,
                "tokenizer": ((self.tokenizer or "").strip() or None) if base in NEW_MODEL_BASES else None,
                "epochs": float(self.epochs),
                "batch_size": int(self.batch_size),
                "lr": float(self.lr),
                "time_limit_s": float(self.time_limit_s),
                "max_length": int(self.max_length),
                "loss": loss,
                "bm25_negatives": bool(self.bm25_negatives),
                "inference_free": bool(self.inference_free),
                "output_dir": str(output_dir),
                "run_name": "finetune",
            }
            values.update(extra)
            return TrainConfig(**values)
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
    are cut, and the cut is added to the pairs report's warnings (shown to the visitor). Fewer than
    :data:`~sparse_demo.train.data.MIN_PAIRS` usable pairs are refused (the CLI needs as many).

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
        eval_pairs = (
            read_pairs(req.eval_file, max_bytes=limits.max_upload_bytes, max_chars=limits.max_doc_chars)
            if req.eval_file
            else None
        )
    except (ValueError, OSError) as exc:
        raise UserError(f"Pairs file: {exc}") from exc
    for ds, what in ((pairs, "training pairs"), (eval_pairs, "held-out pairs")):
        if ds is None:
            continue
        ds.pairs, note = limits.cut_rows(ds.pairs, what)
        if note:
            ds.report.warnings.append(note)
    if len(pairs.pairs) < MIN_PAIRS:
        raise UserError(
            f"Only {len(pairs.pairs)} usable pairs; at least {MIN_PAIRS} are needed for in-batch negatives."
        )
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


def public_name(ctx: AppContext, typed: str, visitor_models: dict[str, str] | None = None) -> str:
    """How a base or tokenizer is named to the visitor and in the model: a model name, a Hub id or a
    typed folder's last part (never a server path)."""
    typed = (typed or "").strip()
    if (
        typed in NEW_MODEL_BASES
        or typed in (visitor_models or {})
        or typed in ctx.registry.names
        or ctx.settings.preset(typed) is not None
    ):
        return typed
    if looks_like_path(typed) or Path(typed).expanduser().exists():
        return Path(typed).expanduser().name or "folder"
    return typed


def resolve_tokenizer(
    ctx: AppContext, typed: str | None, visitor_models: dict[str, str] | None = None
) -> tuple[str | None, str | None]:
    """The tokenizer folder to prune and its public name, through the same sources policy as a model box.

    Empty: ``(None, None)`` (a tokenizer is trained on the pairs). A name of this visitor's model or of a
    model every visitor may use stands for its folder. A typed folder goes through
    :meth:`~sparse_demo.models.ModelRegistry.check_source` with this visitor's folders as ``owned``:
    another visitor's private folder and, in ``public`` mode, anything outside the allowed roots get the
    model boxes' message (:data:`~sparse_demo.models.NOT_AVAILABLE`).

    Raises:
        UserError: refused, not a folder, or a folder without ``tokenizer.json``.
    """
    typed = (typed or "").strip()
    if not typed:
        return None, None
    own = dict(visitor_models or {})
    name = public_name(ctx, typed, own)
    if typed in own:
        folder = own[typed]
    else:
        source = ctx.registry.resolve(typed).source if typed in ctx.registry.names else typed
        if not (looks_like_path(source) or Path(source).expanduser().exists()):
            if ctx.settings.public:
                raise UserError(NOT_AVAILABLE)
            raise UserError(
                f"The tokenizer box takes a local folder with a tokenizer.json (e.g. the XLM-R "
                f"tokenizer); {typed!r} is not a folder here."
            )
        try:
            folder = ctx.registry.check_source(source, own.values())
        except ModelLoadError as exc:
            raise UserError(str(exc)) from exc
    real = Path(folder).expanduser()
    if not real.is_dir():
        raise UserError(NOT_AVAILABLE if ctx.settings.public else f"{typed} is not a folder.")
    if not (real / "tokenizer.json").is_file():
        raise UserError(
            f"The tokenizer folder {name} has no tokenizer.json; pruning needs a fast (tokenizers) "
            "Unigram tokenizer such as XLM-R's. Leave the box empty to train one on the pairs."
        )
    return str(real.resolve()), name


def check_quota(ctx: AppContext, folder: Path) -> None:
    """Refuse a new run when this visitor's models already use the most disk allowed.

    (The number of models is checked atomically by :meth:`TrainingQueue.reserve`.)

    Raises:
        UserError: naming the limit, what is used and that models go when the page is closed.
    """
    lim = ctx.limits
    used = folder_bytes(folder)
    if used >= lim.visitor_quota_bytes:
        raise UserError(
            f"Your models use {used / 2**20:,.1f} MB of disk, the most one visitor may use "
            f"({lim.visitor_quota_bytes / 2**20:,.0f} MB, SPARSE_DEMO_VISITOR_QUOTA_MB). Reload the "
            "page to remove them."
        )


def slots_message(exc: SlotLimitReached) -> str:
    """The visitor-facing refusal when a visitor's model slots are all taken."""
    running = f" and {exc.running} training or waiting" if exc.running else ""
    return (
        f"You already have {exc.held} fine-tuned model{'s' if exc.held != 1 else ''}{running}; one visitor may "
        f"keep at most {exc.limit} (SPARSE_DEMO_VISITOR_MODELS={exc.limit}). They are removed when you close "
        "the page: download the ones you need and reload the page to start again."
    )


def curves_chart(history: list[TrainingEvent]) -> alt.Chart | None:
    """Loss components and active dims over steps, from the run's progress events."""
    steps = [h for h in history if h.phase == "train"]
    if not steps:
        return None
    rows = []
    for h in steps:
        for comp in LOSS_COMPONENTS:
            if getattr(h, comp) is not None:
                rows.append({"step": h.step, "series": comp, "value": float(getattr(h, comp)), "panel": "loss"})
        for side in ("active_q", "active_d"):
            if getattr(h, side) is not None:
                rows.append({"step": h.step, "series": side, "value": float(getattr(h, side)), "panel": "active dims"})
    data = pd.DataFrame(rows)
    base = (
        alt.Chart(data)
        .mark_line(point=False)
        .encode(
            x=alt.X("step:Q"),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("series:N"),
            tooltip=["step", "series", alt.Tooltip("value:Q", format=".4f")],
        )
    )
    loss = base.transform_filter(alt.datum.panel == "loss").properties(
        title="loss components", width=CHART_WIDTH, height=200
    )
    dims = base.transform_filter(alt.datum.panel == "active dims").properties(
        title="mean active dims (queries / documents)", width=CHART_WIDTH, height=200
    )
    return alt.hconcat(loss, dims).resolve_scale(color="independent")


def metrics_frame(result: TrainResult) -> pd.DataFrame:
    """Before/after held-out metrics for the model alone, BM25 and the hybrid, rounded for reading
    (4 significant digits; ``training_info.json`` keeps full precision)."""
    rows = []
    for when, table in (("before", result.metrics_before), ("after", result.metrics_after)):
        for system, values in table.items():
            shown = {k: round_sig(v) if isinstance(v, float) else v for k, v in values.items()}
            rows.append({"when": when, "system": system, **shown})
    return pd.DataFrame(rows)


def expansions_markdown(result: TrainResult) -> str:
    lines = []
    for e in result.expansions:
        before = ", ".join(f"{t} {w:.2f}" for t, w in e.get("before", [])[:8]) or "—"
        after = ", ".join(f"{t} {w:.2f}" for t, w in e.get("after", [])[:8]) or "—"
        lines.append(f"**{e.get('query', '')}**\n\n- before: {before}\n- after: {after}")
    return "\n\n".join(lines)


# ---------------------------------------------------------------------- one run
@dataclass
class _Job:
    """One visitor's run: its settings, its ticket in :data:`RUNS` and what its worker reports."""

    ctx: AppContext
    ticket: Ticket
    config: TrainConfig
    pairs: Any
    eval_pairs: Any
    name: str
    folder: Path
    cap_s: float | None
    hide: dict[str, str]
    events: queue.Queue[TrainingEvent] = field(default_factory=queue.Queue)
    outcome: dict[str, Any] = field(default_factory=dict)

    def public(self, text: str) -> str:
        """``text`` with every server path of this run replaced by its public name."""
        for path, shown in sorted(self.hide.items(), key=lambda kv: -len(kv[0])):
            if path:
                text = text.replace(path, shown)
        return self.ctx.redact(text)


def _visitor_folder(ctx: AppContext, session: str) -> Path:
    """The visitor's private folder, without creating it (see :meth:`AppContext.visitor_dir`)."""
    safe = "".join(c for c in session if c.isalnum() or c in "-_")[:64] or "anonymous"
    return default_private_root(ctx.workdir) / safe


def _prepare(
    ctx: AppContext, req: TrainRequest, cancel: threading.Event, session: str, visitor_models: dict[str, str]
) -> _Job:
    """Validate everything, then take a slot and a place in line.

    Raises:
        UserError: bad input, the disk quota, or no slot left.
    """
    folder = ctx.visitor_dir(session)
    check_quota(ctx, folder)
    pairs, eval_pairs = load_training_data(req, ctx.limits)
    base = resolve_base(ctx, req.base, visitor_models)
    is_new = base in NEW_MODEL_BASES
    tokenizer, tokenizer_name = resolve_tokenizer(ctx, req.tokenizer, visitor_models) if is_new else (None, None)
    cap = float(ctx.limits.public_train_seconds) if ctx.settings.public else None
    name = f"fine-tuned {time.strftime('%H:%M:%S')} ({uuid.uuid4().hex[:4]})"
    base_name = public_name(ctx, req.base, visitor_models)
    limit_s = float(req.time_limit_s or 0)
    if cap is not None and limit_s > cap:
        limit_s = cap
    resolved = dataclasses.replace(req, base=base, tokenizer=tokenizer, time_limit_s=limit_s or req.time_limit_s)
    config = resolved.to_config(
        folder, base_name=base_name, tokenizer_name=tokenizer_name, note=name, record_paths=False, save_on_cancel=False
    )
    hide = {str(ctx.workdir): "…", str(Path(ctx.workdir).resolve()): "…", str(folder): "…", str(folder.resolve()): "…"}
    if base != base_name:
        hide[base] = base_name
    if tokenizer and tokenizer_name:
        hide[tokenizer] = tokenizer_name
    try:
        ticket = RUNS.reserve(session, ctx.limits.visitor_models, held=visitor_models, cancel=cancel)
    except SlotLimitReached as exc:
        raise UserError(slots_message(exc)) from exc
    return _Job(ctx, ticket, config, pairs, eval_pairs, name, folder, cap, hide)


def _discard(job: _Job, model_dir: Path | None, zip_path: Path | None) -> None:
    """Delete what a run wrote that is not kept (and Gradio's cached copy of its zip)."""
    if model_dir is not None:
        shutil.rmtree(model_dir, ignore_errors=True)
    if zip_path is not None:
        forget_cached_copy(zip_path)
        zip_path.unlink(missing_ok=True)
    if job.ticket.gone:  # the visitor left: their folder was removed; remove what this run recreated
        folder = _visitor_folder(job.ctx, job.ticket.visitor)
        with contextlib.suppress(OSError):
            folder.rmdir()


def forget_cached_copy(path: str | Path) -> None:
    """Remove Gradio's cached copy of a file this app handed to a visitor (where Gradio keeps it)."""
    try:
        cached = gradio_cache_dir() / hash_file(path)
    except OSError:  # the file is gone already
        return
    shutil.rmtree(cached, ignore_errors=True)


def _work(job: _Job) -> None:
    """The run's thread: wait for its turn, train, zip; keep the model or delete it."""
    ctx, ticket = job.ctx, job.ticket
    result: TrainResult | None = None
    zip_path: Path | None = None
    keep = False
    try:
        if not RUNS.wait_turn(ticket):
            job.outcome["left_line"] = True
            return
        job.events.put(TrainingEvent("turn", message="your run started"))
        deadline = ticket.started + job.cap_s if job.cap_s and ticket.started is not None else None
        result = train(
            job.config,
            job.pairs,
            job.eval_pairs,
            progress=job.events.put,
            should_stop=ticket.cancel.is_set,
            wait=True,
            registry=ctx.registry,
            deadline=deadline,
        )
        job.outcome["result"] = result
        if result.model_dir is not None and not ticket.gone:
            zip_path = zip_model(result.model_dir)
            used = folder_bytes(job.folder)
            if used > ctx.limits.visitor_quota_bytes:
                job.outcome["over_quota"] = used
            else:
                keep = True
    except Exception as exc:  # noqa: BLE001 - reported to the visitor by the tab
        logger.exception("Training failed")
        job.outcome["error"] = exc
    finally:
        model_dir = result.model_dir if result is not None else None
        stays = RUNS.finish(ticket, kept=job.name if keep else None, folder=str(model_dir) if keep else None)
        if not (keep and stays):
            _discard(job, model_dir, zip_path)
            if not stays:
                logger.info("A visitor left during their fine-tune; its files were deleted")
        job.outcome["kept"] = keep and stays
        job.outcome["zip"] = str(zip_path) if zip_path is not None and keep and stays else None
        job.pairs = job.eval_pairs = None  # the uploaded pairs go with the run


def run_training(
    ctx: AppContext,
    req: TrainRequest,
    cancel: threading.Event,
    *,
    poll_s: float = 1.0,
    session: str | None = None,
    visitor_models: dict[str, str] | None = None,
) -> Iterator[TrainUpdate]:
    """Validate, reserve a slot and a place in line, train in a thread, and yield live updates.

    The run itself does not depend on this generator being read to the end: a visitor who leaves
    (:func:`visitor_left`) cancels it, and its files are deleted when it stops.

    Args:
        ctx: the app context (limits, work folder, registry).
        req: the tab's inputs.
        cancel: set it to stop the run (it leaves the line if still waiting).
        poll_s: seconds between updates.
        session: the visitor's session id (a fresh one when None); the model goes in that visitor's folder.
        visitor_models: the visitor's models so far (counted against ``SPARSE_DEMO_VISITOR_MODELS``).
    """
    session = session or f"local-{uuid.uuid4().hex[:8]}"
    try:
        job = _prepare(ctx, req, cancel, session, dict(visitor_models or {}))
    except UserError as exc:
        yield TrainUpdate(message(ctx.redact(str(exc)), "error"), done=True)
        return
    report = job.pairs.report.summary() + "".join(f"\n- {w}" for w in job.pairs.report.warnings)
    notes = []
    if job.cap_s is not None and float(req.time_limit_s or 0) > job.cap_s:
        notes.append(
            f"The time limit was cut to {job.cap_s:.0f} s, the most one run may take here "
            "(SPARSE_DEMO_PUBLIC_TRAIN_SECONDS), so every visitor gets a turn."
        )
    thread = threading.Thread(target=_work, args=(job,), name="finetune", daemon=True)
    thread.start()
    history: list[TrainingEvent] = []
    last = ""
    while thread.is_alive() or not job.events.empty():
        try:
            while True:
                ev = job.events.get_nowait()
                history.append(ev)
                last = _describe(ev) or last
        except queue.Empty:
            pass
        if job.ticket.state == "waiting":
            yield TrainUpdate(message(_waiting_text(job), "warning"))
        else:
            text = job.public(last or "starting…")
            yield TrainUpdate(message(text), safe_chart(curves_chart, history) if history else None)
        thread.join(timeout=poll_s)
    yield _final_update(job, history, report, notes)


def _waiting_text(job: _Job) -> str:
    pos = RUNS.position(job.ticket)
    where = pos.text() if pos is not None else "leaving the queue"
    text = (
        f"Queued: {where}. One fine-tuning run trains at a time in this app; yours starts when the runs "
        "ahead of it finish"
    )
    if job.cap_s is not None and pos is not None and pos.ahead:
        text += f" (each takes at most about {job.cap_s / 60:.0f} min, then its evaluation and save)"
    return text + ". *Cancel* takes it out of the queue."


def _final_update(job: _Job, history: list[TrainingEvent], report: str, notes: list[str]) -> TrainUpdate:
    chart = safe_chart(curves_chart, history) if history else None
    out = job.outcome
    if out.get("left_line"):
        return TrainUpdate(message("Cancelled before it started; nothing was trained.", "warning"), done=True)
    if "error" in out:
        return TrainUpdate(message(job.public(f"Training failed: {out['error']}"), "error"), chart, done=True)
    result: TrainResult | None = out.get("result")
    if result is None or result.model_dir is None:
        status = result.status if result is not None else "stopped"
        return TrainUpdate(message(f"Training stopped ({status}); nothing was saved.", "warning"), chart, done=True)
    if "over_quota" in out:
        used = out["over_quota"]
        return TrainUpdate(
            message(
                f"The model was trained but not kept: your models would use {used / 2**20:,.1f} "
                f"MB of disk, over the {job.ctx.limits.visitor_quota_bytes / 2**20:,.0f} MB one "
                "visitor may use (SPARSE_DEMO_VISITOR_QUOTA_MB). Choose a smaller size.",
                "error",
            ),
            chart,
            done=True,
        )
    if not out.get("kept"):
        return TrainUpdate(message("Training ended after you left; nothing was kept.", "warning"), chart, done=True)
    how = {"time_limit": "stopped at the time limit"}.get(result.status, result.status)
    status = (
        f"**Done** ({how}): {result.steps} steps, {result.epochs:.1f} epochs in {result.train_s:.0f} s on "
        f"{result.num_train_pairs} pairs ({result.num_eval_pairs} held out). Saved and added to your model list as "
        f"**{job.name}** (only you see it, until you close the page) in Explore, Compare and Search; download "
        "it below."
    )
    for note in notes:
        status += f"\n\n{note}"
    if report:
        status += f"\n\n{report}"
    return TrainUpdate(
        message(job.public(status)),
        chart,
        metrics_frame(result),
        expansions_markdown(result),
        out.get("zip"),
        job.name,
        str(result.model_dir),
        done=True,
    )


def _describe(ev: TrainingEvent) -> str:
    nan = float("nan")
    if ev.phase == "train":
        return (
            f"step {ev.step}/{ev.max_steps} · epoch {ev.epoch or 0:.2f} · "
            f"loss {nan if ev.total is None else ev.total:.4f} · active dims q {ev.active_q or 0:.0f} / "
            f"d {ev.active_d or 0:.0f} · {ev.elapsed_s or 0:.0f} s"
        )
    if ev.phase == "eval":
        return f"step {ev.step}: held-out MRR@10 {ev.eval_mrr10 or 0:.3f}, R@1 {ev.eval_r1 or 0:.3f}"
    return ev.message or ""


def visitor_left(session: str | None) -> int:
    """The visitor closed the page: cancel their runs (waiting ones leave the line at once).

    A run that is training stops after its current step; what it still writes is deleted when it stops
    (see :meth:`TrainingQueue.finish`). Their kept models' zips leave Gradio's cache too; the folders
    themselves go with :meth:`AppContext.forget_visitor`. Returns how many runs were cancelled.
    """
    if not session:
        return 0
    for folder in RUNS.kept(session).values():
        if folder:
            forget_cached_copy(Path(folder).with_suffix(".zip"))
    cancelled = RUNS.leave(session)
    if cancelled:
        logger.info("A visitor left: %d fine-tuning run(s) cancelled", len(cancelled))
    return len(cancelled)

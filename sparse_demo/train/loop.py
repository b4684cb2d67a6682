"""The training loop: one run at a time, progress events, cancellation, held-out keep-best.

:func:`train` loads a base (or builds a new small model, :mod:`sparse_demo.train.vocab`), holds
out passages (:func:`~sparse_demo.train.data.split_pairs`, or an explicit held-out set from
which training is kept apart), and minimises :func:`~sparse_demo.train.losses.splade_loss`
with AdamW (linear warmup, linear decay to 10%, bf16 autocast where the hardware supports it,
optional BM25 hard negatives). It evaluates on the held-out set before training, every
``eval_every`` steps (0: every epoch) and at the end, through the Search tab's code
(:mod:`sparse_demo.train.evaluation`), keeps the best checkpoint (the untrained model
included) and restores it at the end, stops on a time limit, a step limit, early stopping or
``should_stop()``, and saves a standard model folder (:mod:`sparse_demo.train.artifacts`).

With ``inference_free`` the query side is the training documents' IDF per token, frozen
(:mod:`sparse_demo.train.inference_free`): only the document MLM is trained, on ``q_idf · d_mlm``
scores, the held-out evaluation encodes queries by looking their tokens up, and the result is a
sentence-transformers ``Router`` folder.

One training runs per process at a time (a lock); every run writes a new folder, so one
visitor's run never changes another's model.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import datetime as _dt
import gc
import logging
import math
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from sparse_demo.corpus import Corpus
from sparse_demo.data.pairs import Pair, PairsDataset, read_pairs
from sparse_demo.encoder import pool_logits
from sparse_demo.evaluation import RetrievalMetrics
from sparse_demo.progress import ShouldStop, TrainingEvent, TrainingProgress
from sparse_demo.train.artifacts import hash_pairs, save_model
from sparse_demo.train.batching import make_batches, mine_bm25_negatives, pad, tokenize_all
from sparse_demo.train.config import TrainConfig, TrainResult
from sparse_demo.train.data import separate_from_heldout, split_pairs
from sparse_demo.train.evaluation import evaluate_retrieval, heldout_corpus, metrics_rows, query_expansions
from sparse_demo.train.inference_free import corpus_idf, query_token_ids, static_query_vectors
from sparse_demo.train.losses import (
    LossConfig,
    dense_targets,
    document_frequencies,
    idf_from_df,
    idf_penalties,
    splade_loss,
)
from sparse_demo.train.vocab import build_model

if TYPE_CHECKING:
    from sparse_demo.models import ModelRegistry

logger = logging.getLogger(__name__)

_TRAIN_LOCK = threading.Lock()
_IMPROVEMENT = 1e-4


class TrainingBusyError(RuntimeError):
    """Another training run holds the process-wide lock."""


def training_busy() -> bool:
    """True while a training run holds the process-wide lock."""
    return _TRAIN_LOCK.locked()


def train(
    config: TrainConfig,
    pairs: PairsDataset | Sequence[Pair] | str | Path,
    eval_pairs: PairsDataset | Sequence[Pair] | str | Path | None = None,
    *,
    progress: TrainingProgress | None = None,
    should_stop: ShouldStop | None = None,
    wait: bool = False,
    registry: ModelRegistry | None = None,
    deadline: float | None = None,
    vector_teacher: VectorTeacher | None = None,
) -> TrainResult:
    """Train a sparse encoder and save it as a new model folder.

    Args:
        config: the run's settings.
        pairs: training pairs (a dataset, a list of :class:`Pair` or a file path).
        eval_pairs: held-out pairs; training pairs sharing a query or a positive passage with
            them are left out of training. None holds out ``config.eval_fraction`` of the
            positive passages (with all their queries).
        progress: called with a :class:`~sparse_demo.progress.TrainingEvent` per event: a training step
            (every ``log_every``: ``phase="train"``, losses, active dimensions, lr), a held-out evaluation
            (before training at step 0, during and at the end: ``phase="eval"``, MRR@10, R@1, hybrid
            MRR@10, best step), or another phase (``prepare``, ``eval_before``, ``eval_after``, ``save``,
            ``done``) with a ``message``.
        should_stop: polled every step; True cancels the run.
        wait: when another run holds the process-wide lock, wait for it (True) or raise
            :class:`TrainingBusyError` (False).
        registry: the app's model registry, to find ``config.base`` as the app does (None:
            one from ``load_settings()``).
        deadline: a ``time.monotonic()`` at which the training loop stops (status ``time_limit``)
            whatever ``config.time_limit_s`` says; the time spent preparing counts against it (an
            app's cap on one run's turn). The held-out evaluation of the result and the save follow.
        vector_teacher: ``(text, max_length) -> (targets, free)``: a teacher's vector for a text (piece id ->
            target weight; every other id targets 0) and the ids it leaves free, e.g.
            :meth:`sparse_demo.offline.expansion.CongTeacher.target`. With ``config.loss.lambda_vector_kd > 0``
            the batch's query and positive vectors are pulled towards it (the loss's VKD term); asked once per
            distinct training text, before the first step. Not used by an inference-free run (its query side is a
            token weight table, and the teacher's vectors are a full model's).

    The run's model, optimiser and batches are released when it returns, and the freed memory is
    handed back to the system (:func:`release_memory`), so a server does not grow with every run.

    Raises:
        TrainingBusyError: another training runs and ``wait`` is False.
        ValueError: bad data or configuration.
        ModelLoadError: the base cannot be loaded.
    """
    if not _TRAIN_LOCK.acquire(blocking=wait):
        raise TrainingBusyError("Another fine-tuning run is in progress in this app; try again when it finishes.")
    threads = torch.get_num_threads()
    try:
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        return _Run(config, progress, should_stop, registry, deadline, vector_teacher).execute(pairs, eval_pairs)
    finally:
        torch.set_num_threads(threads)
        release_memory()
        _TRAIN_LOCK.release()


def release_memory() -> None:
    """Collect garbage and give freed memory back to the system.

    Python's collector frees the run's tensors; glibc keeps the freed pages in its arenas unless asked
    (``malloc_trim(0)``), and CUDA keeps its cache unless emptied. Without this a server's resident
    memory stays at its peak after every fine-tune.
    """
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    try:
        trim = ctypes.CDLL(libc_name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


# ---------------------------------------------------------------------- helpers
def learning_rate(
    lr: float, step: int, max_steps: int, warmup: int, elapsed: float, time_limit_s: float | None
) -> float:
    """The learning rate of ``step``: linear warm-up over ``warmup`` steps, then a linear decay to 10% of ``lr``.

    The decay runs over the planned ``max_steps``; when the time limit will end the run first (its pace so
    far reaches the limit before the last step: ``elapsed / time_limit_s > step / max_steps``), over the time
    instead, so a time-bound run still ends at a low rate. Step 0 has no pace yet and follows the steps: a run
    the limit does not bind is a function of its steps alone, so it rebuilds bit for bit (with the time fraction
    at step 0, a few milliseconds of start-up changed its first rate in the sixth digit, and every weight after).

    Example:
        >>> learning_rate(1e-3, 0, 100, 10, 0.004, 1800.0) == learning_rate(1e-3, 0, 100, 10, 0.0, 1800.0) == 1e-4
        True
        >>> round(learning_rate(1e-3, 50, 100, 10, 900.0, 1000.0), 6)  # 90% of the time used: decayed by time
        0.00019
    """
    frac = step / max_steps
    if time_limit_s and step > 0:
        frac = max(frac, elapsed / time_limit_s)
    warm = min(1.0, (step + 1) / warmup)
    return lr * warm * max(0.1, 1.0 - 0.9 * min(1.0, frac))


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_bf16(setting: str, device: torch.device) -> bool:
    """Whether to train under bf16 autocast: ``on``, ``off`` or ``auto`` (CUDA with bf16, or a bf16 CPU)."""
    if setting == "on":
        return True
    if setting == "off":
        return False
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return _cpu_has_bf16()


def _device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def _coerce_pairs(pairs: PairsDataset | Sequence[Pair] | str | Path, max_bytes: int) -> tuple[list[Pair], str]:
    if isinstance(pairs, PairsDataset):
        return list(pairs.pairs), pairs.report.summary()
    if isinstance(pairs, (str, Path)):
        ds = read_pairs(pairs, max_bytes=max_bytes)
        return list(ds.pairs), ds.report.summary()
    return list(pairs), ""


def _output_folder(config: TrainConfig) -> Path:
    if config.out_path:
        folder = Path(config.out_path).expanduser()
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise ValueError(f"out_path {folder} exists and is not an empty folder; choose a new folder")
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        folder = Path(config.output_dir).expanduser() / f"{config.run_name}-{stamp}-{uuid.uuid4().hex[:6]}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder


def _penalties(model: Any, tokenizer: Any, doc_ids: list[list[int]], loss: LossConfig) -> torch.Tensor:
    """The FLOPS_idf penalty per vocabulary id (IDF over the training documents, stopwords, special tokens)."""
    vocab = model.get_output_embeddings().weight.shape[0]
    special_ids = sorted(int(i) for i in tokenizer.all_special_ids)
    df, n_docs = document_frequencies(doc_ids, vocab)
    stop_ids: list[int] = []
    if loss.stopword_penalty > 1:
        from sparse_demo.korean import StopwordRule

        rule = StopwordRule()
        special = set(special_ids)
        stop_ids = [
            i for t, i in tokenizer.get_vocab().items() if 0 <= i < vocab and i not in special and rule.is_stopword(t)
        ]
    return idf_penalties(
        idf_from_df(df, n_docs),
        special_ids=special_ids,
        stopword_ids=sorted(stop_ids),
        idf_alpha=loss.idf_alpha,
        stopword_penalty=loss.stopword_penalty,
        special_token_penalty=loss.special_token_penalty,
    )


@dataclass
class _KeepBest:
    """The best held-out evaluation so far and a CPU copy of its weights."""

    best_by: str
    keep_states: bool
    score: float = -1.0
    step: int | None = None
    metrics: dict[str, RetrievalMetrics] = field(default_factory=dict)
    state: dict[str, torch.Tensor] | None = None
    bad_evals: int = 0

    def offer(self, step: int, metrics: dict[str, RetrievalMetrics], model: Any) -> bool:
        """Record an evaluation; True when it is the new best."""
        score = metrics[self.best_by].mrr10
        if self.step is not None and score <= self.score + _IMPROVEMENT:
            self.bad_evals += 1
            return False
        self.score, self.step, self.metrics, self.bad_evals = score, step, metrics, 0
        if self.keep_states:
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True


#: ``(text, max_length) -> (targets, free)``: a teacher's target vector for a text (see :func:`train`).
VectorTeacher = Callable[[str, int], tuple[dict[int, float], set[int]]]


class _VectorTargets:
    """The vector teacher's targets for a run's training texts, asked once, made dense per batch."""

    def __init__(
        self,
        teacher: VectorTeacher,
        queries: Sequence[str],
        positives: Sequence[str],
        lengths: tuple[int, int],
        vocab: int,
    ) -> None:
        self.vocab = vocab
        self.queries = [teacher(q, lengths[0]) for q in queries]
        self.docs = {d: teacher(d, lengths[1]) for d in dict.fromkeys(positives)}

    def batch(self, rows: Sequence[int], positives: Sequence[str], device: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """``(target, mask)``, each ``[2B, V]``: the queries of training ``rows``, then their ``positives``."""
        items = [self.queries[r] for r in rows] + [self.docs[d] for d in positives]
        target, mask = dense_targets(items, self.vocab)
        return target.to(device), mask.to(device)


# ---------------------------------------------------------------------- the run
class _Run:
    """One training run's state (the public entry point is :func:`train`)."""

    def __init__(
        self,
        config: TrainConfig,
        progress: TrainingProgress | None,
        should_stop: ShouldStop | None,
        registry: ModelRegistry | None,
        deadline: float | None = None,
        vector_teacher: VectorTeacher | None = None,
    ) -> None:
        config.validate()
        self.vector_teacher = vector_teacher
        self.config = config
        self.deadline = deadline
        self.progress = progress
        self.should_stop = should_stop
        self.registry = registry
        self.history: list[TrainingEvent] = []
        self.t_start = time.time()
        self.heldout: Corpus | None = None
        self.keeper = _KeepBest(config.best_by, config.keep_best)
        self.last_eval_step: int | None = None
        self.last_metrics: dict[str, RetrievalMetrics] = {}
        #: An inference-free run's ``[vocab]`` query weights (CPU), else None.
        self.query_idf: torch.Tensor | None = None

    def emit(self, event: TrainingEvent) -> None:
        self.history.append(event)
        if self.progress is not None:
            try:
                self.progress(event)
            except Exception:  # noqa: BLE001 - a UI callback must never kill a run
                logger.exception("progress callback failed")

    def message(self, phase: str, text: str) -> None:
        self.emit(TrainingEvent(phase, message=text, elapsed_s=round(time.time() - self.t_start, 2)))

    # -- data -------------------------------------------------------------------------------
    def split(self, pairs: Any, eval_pairs: Any) -> tuple[list[Pair], list[Pair], str, str]:
        """``(train pairs, held-out pairs, data report, split note)``."""
        config = self.config
        train_pairs, report = _coerce_pairs(pairs, config.max_bytes)
        if eval_pairs is not None:
            held, _ = _coerce_pairs(eval_pairs, config.max_bytes)
            train_pairs, removed, cleared = separate_from_heldout(train_pairs, held)
            note = f"Held-out set: {len(held)} given pairs."
            if removed or cleared:
                note += (
                    f" {removed} training pairs sharing a query or positive passage with it were left out"
                    f" of training; {cleared} training negatives that are held-out positives were dropped."
                )
            if not train_pairs:
                raise ValueError(
                    "every training pair shares a query or positive passage with the held-out pairs; "
                    "give held-out pairs about other passages"
                )
        else:
            original = train_pairs
            train_pairs, held = split_pairs(original, config.eval_fraction, seed=config.seed)
            held_positives = {p.positive for p in held}
            cleared = sum(1 for p in original if p.negative in held_positives and p.positive not in held_positives)
            note = (
                (
                    f"Held-out set: {len(held)} pairs about {len(held_positives)} positive passages that no "
                    f"training pair uses (split by passage, seed {config.seed})"
                    + (f"; {cleared} training negatives that are held-out passages were dropped." if cleared else ".")
                )
                if held
                else "No held-out set (fewer than 10 distinct positive passages, or eval_fraction 0)."
            )
        if len(train_pairs) < 2:
            raise ValueError(f"need at least 2 training pairs, got {len(train_pairs)}")
        return train_pairs, held, report, note

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, model: Any, tokenizer: Any, step: int) -> dict[str, RetrievalMetrics]:
        if self.heldout is None:
            raise RuntimeError("no held-out set to evaluate on")
        metrics = evaluate_retrieval(
            model,
            tokenizer,
            self.heldout,
            max_length=self.config.max_length,
            hybrid_weight=self.config.hybrid_weight,
            query_weight=self.query_idf,
        )
        self.keeper.offer(step, metrics, model)
        self.last_eval_step, self.last_metrics = step, metrics
        self.emit(
            TrainingEvent(
                "eval",
                step=step,
                eval_mrr10=metrics["model"].mrr10,
                eval_r1=metrics["model"].recall[1],
                hybrid_mrr10=metrics["hybrid"].mrr10,
                best_step=self.keeper.step,
                elapsed_s=round(time.time() - self.t_start, 2),
            )
        )
        return metrics

    # -- main -------------------------------------------------------------------------------
    def execute(self, pairs: Any, eval_pairs: Any) -> TrainResult:  # noqa: C901, PLR0912, PLR0915
        config = self.config
        rng = random.Random(config.seed)
        torch.manual_seed(config.seed)
        train_pairs, held, report, split_note = self.split(pairs, eval_pairs)
        data_hash = hash_pairs(train_pairs)
        folder = _output_folder(config)
        work_dir = folder.parent / f".{folder.name}.work"
        device = _device(config.device)
        bf16 = use_bf16(config.bf16, device)

        self.message("prepare", f"building model ({config.shown_base})")
        built = build_model(config, train_pairs, work_dir, self.registry)
        model, tokenizer = built.model, built.tokenizer
        model.to(device)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        if config.bm25_negatives:
            self.message("prepare", "mining BM25 hard negatives")
            train_pairs = mine_bm25_negatives(train_pairs, seed=config.seed)
        q_ids = tokenize_all(tokenizer, [p.query for p in train_pairs], config.query_max_length)
        doc_texts = list(
            dict.fromkeys([p.positive for p in train_pairs] + [p.negative for p in train_pairs if p.negative])
        )
        doc_ids = tokenize_all(tokenizer, doc_texts, config.max_length)
        doc_row = {t: i for i, t in enumerate(doc_texts)}
        penalty = _penalties(model, tokenizer, doc_ids, config.loss).to(device)
        loss_config = config.loss
        vkd: _VectorTargets | None = None
        if self.vector_teacher is not None and config.loss.lambda_vector_kd > 0 and not config.inference_free:
            self.message("prepare", "asking the vector teacher for the training texts' target vectors")
            vkd = _VectorTargets(
                self.vector_teacher,
                [p.query for p in train_pairs],
                [p.positive for p in train_pairs],
                (config.query_max_length, config.max_length),
                int(model.get_output_embeddings().weight.shape[0]),
            )
        idf_on_device: torch.Tensor | None = None
        if config.inference_free:
            vocab = int(model.get_output_embeddings().weight.shape[0])
            tokens = len(tokenizer.get_vocab())
            if vocab != tokens:  # a SparseStaticEmbedding has one weight per tokenizer token
                raise ValueError(
                    f"inference-free training needs one output per tokenizer token; {config.shown_base} has {vocab:,} "
                    f"outputs for {tokens:,} tokens (a padded vocabulary): train it without --inference-free"
                )
            self.query_idf = corpus_idf(tokenizer, doc_texts, vocab)
            idf_on_device = self.query_idf.to(device)
            q_ids = query_token_ids(tokenizer, [p.query for p in train_pairs], config.query_max_length)
            loss_config = dataclasses.replace(config.loss, lambda_flops_query=0.0)  # the query side does not learn
            self.message("prepare", f"inference-free: query weights = IDF over {len(doc_texts)} training documents")

        sample_queries: list[str] = []
        metrics_before: dict[str, dict[str, float]] = {}
        before_exp: list[list[tuple[str, float]]] = []
        if held:
            self.heldout = heldout_corpus(held, train_pairs, distractors=config.eval_distractors, seed=config.seed)
            self.message(
                "eval_before",
                f"evaluating on {len(self.heldout.queries)} held-out queries over {len(self.heldout)} passages",
            )
            metrics_before = metrics_rows(self.evaluate(model, tokenizer, 0))
            sample_queries = [q.text for q in self.heldout.queries[:3]]
            before_exp = query_expansions(
                model, tokenizer, sample_queries, max_length=config.query_max_length, query_weight=self.query_idf
            )

        # optimiser and schedule
        per_epoch = max(1, math.ceil(len(train_pairs) / config.batch_size))
        planned = max(1, int(math.ceil(per_epoch * config.epochs)))
        max_steps = min(planned, config.max_steps) if config.max_steps else planned
        warmup = max(1, int(config.warmup_ratio * max_steps))
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            (no_decay if param.ndim < 2 or "norm" in name.lower() else decay).append(param)
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=config.lr,
        )

        def lr_at(step: int, elapsed: float) -> float:
            return learning_rate(config.lr, step, max_steps, warmup, elapsed, config.time_limit_s)

        has_teacher = any(p.teacher_score is not None for p in train_pairs)
        step, status = 0, "completed"
        t_train = time.time()
        model.train()
        epoch = 0
        stop_loop = False
        while not stop_loop:
            batches = make_batches(train_pairs, config.batch_size, rng)
            if not batches:
                raise ValueError("no batch of 2 pairs with distinct queries and positives; add more varied pairs")
            for bi, batch in enumerate(batches):
                elapsed = time.time() - t_train
                if self.should_stop is not None and self.should_stop():
                    status, stop_loop = "cancelled", True
                    break
                if (config.time_limit_s is not None and elapsed >= config.time_limit_s) or (
                    self.deadline is not None and time.monotonic() >= self.deadline
                ):
                    status, stop_loop = "time_limit", True
                    break
                if step >= max_steps:
                    status = "max_steps" if config.max_steps and max_steps < planned else "completed"
                    stop_loop = True
                    break
                lr = lr_at(step, elapsed)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                bp = [train_pairs[i] for i in batch]
                di, dm = pad([doc_ids[doc_row[p.positive]] for p in bp], pad_id, device)
                neg_rows = [r for r, p in enumerate(bp) if p.negative]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    if idf_on_device is not None:
                        q_vec = static_query_vectors([q_ids[i] for i in batch], idf_on_device)
                    else:
                        qi, qm = pad([q_ids[i] for i in batch], pad_id, device)
                        q_vec = pool_logits(model(input_ids=qi, attention_mask=qm).logits, qm)
                    d_vec = pool_logits(model(input_ids=di, attention_mask=dm).logits, dm)
                    n_vec = None
                    if neg_rows:
                        ni, nm = pad([doc_ids[doc_row[bp[r].negative]] for r in neg_rows], pad_id, device)
                        n_vec = pool_logits(model(input_ids=ni, attention_mask=nm).logits, nm)
                teacher = mask = None
                if has_teacher:
                    teacher = torch.tensor([p.teacher_score or 0.0 for p in bp], device=device)
                    mask = torch.tensor([p.teacher_score is not None for p in bp], device=device)
                out = splade_loss(
                    q_vec.float(),
                    d_vec.float(),
                    loss_config,
                    step=step,
                    penalty=penalty,
                    negatives=n_vec.float() if n_vec is not None else None,
                    negative_rows=torch.tensor(neg_rows, device=device) if neg_rows else None,
                    teacher=teacher,
                    teacher_mask=mask,
                    vector_targets=vkd.batch(batch, [p.positive for p in bp], device) if vkd is not None else None,
                )
                optimizer.zero_grad(set_to_none=True)
                out.total.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                step += 1
                if not math.isfinite(out.components["total"]):
                    raise RuntimeError(
                        f"loss became {out.components['total']} at step {step}; lower lr (now {config.lr})"
                    )
                if step % config.log_every == 0 or step == 1:
                    self.emit(
                        TrainingEvent(
                            "train",
                            step=step,
                            max_steps=max_steps,
                            epoch=epoch + (bi + 1) / len(batches),
                            **out.components,
                            active_q=float((q_vec > 0).sum(1).float().mean()),
                            active_d=float((d_vec > 0).sum(1).float().mean()),
                            lr=lr,
                            elapsed_s=round(time.time() - t_train, 2),
                        )
                    )
                epoch_end = bi == len(batches) - 1
                due = step % config.eval_every == 0 if config.eval_every else epoch_end
                if self.heldout is not None and due and step < max_steps:
                    self.evaluate(model, tokenizer, step)
                    if config.patience and self.keeper.bad_evals >= config.patience:
                        status, stop_loop = "early_stopped", True
                        break
            else:
                epoch += 1
        train_s = time.time() - t_train

        result = TrainResult(
            model_dir=None,
            status=status,
            steps=step,
            epochs=step / per_epoch,
            elapsed_s=0.0,
            train_s=train_s,
            num_train_pairs=len(train_pairs),
            num_eval_pairs=len(held),
            metrics_before=metrics_before,
            history=self.history,
            data_report=report,
            split_note=split_note,
            config=config.to_dict(),
        )
        if self.heldout is not None and status != "cancelled":
            self.finish_with_best(model, tokenizer, step, result)
        model.eval()
        if sample_queries:
            after_exp = query_expansions(
                model, tokenizer, sample_queries, max_length=config.query_max_length, query_weight=self.query_idf
            )
            result.expansions = [
                {"query": q, "before": b, "after": a} for q, b, a in zip(sample_queries, before_exp, after_exp)
            ]
        if status != "cancelled" or config.save_on_cancel:
            self.message("save", "saving the model folder")
            model.to("cpu")
            save_model(
                model,
                tokenizer,
                folder,
                result,
                built.description,
                data_hash,
                config.note,
                work_dir,
                query_idf=self.query_idf,
                max_length=config.max_length,
            )
            result.model_dir = folder
        shutil.rmtree(work_dir, ignore_errors=True)
        result.elapsed_s = time.time() - self.t_start
        self.message("done", result.summary(with_path=False))
        logger.info("Training %s after %d steps in %.0f s -> %s", status, step, train_s, result.model_dir)
        return result

    def finish_with_best(self, model: Any, tokenizer: Any, step: int, result: TrainResult) -> None:
        """Evaluate the last step (unless just done), restore the best checkpoint, fill ``metrics_after``."""
        if self.last_eval_step != step:
            self.message("eval_after", "evaluating the trained model")
            self.evaluate(model, tokenizer, step)
        keeper = self.keeper
        if self.config.keep_best and keeper.step is not None and keeper.step != step and keeper.state is not None:
            logger.info(
                "Restoring the best checkpoint: step %d (%s MRR@10 %.4f > %.4f at step %d)",
                keeper.step,
                self.config.best_by,
                keeper.score,
                self.last_metrics[self.config.best_by].mrr10,
                step,
            )
            model.load_state_dict(keeper.state)
            result.restored_best = True
            result.best_step = keeper.step
            result.metrics_after = metrics_rows(keeper.metrics)
            self.message("eval_after", f"restored the best held-out checkpoint (step {keeper.step})")
        else:
            result.best_step = step
            result.metrics_after = metrics_rows(self.last_metrics)


__all__ = ["TrainingBusyError", "release_memory", "train", "training_busy", "use_bf16"]

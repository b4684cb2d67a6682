"""``finetune``: train a sparse encoder on query/positive[/negative] pairs and save a model folder.

    python -m sparse_demo finetune --pairs pairs.jsonl --out models/my-splade
    python -m sparse_demo finetune --pairs pairs.csv --base V26 --out models/v26-ours --json

Prints a short summary (status, steps, where the model went, held-out metrics before and after)
or, with ``--json``, one JSON object. Exit status 0 on a finished run (also when a time or step
limit ended it), 1 when training failed, 2 on bad input (every pairs-file problem is one line).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..progress import TrainingEvent
from .common import EXIT_FAILED, CliError, note_line, positive_int, print_json

if TYPE_CHECKING:  # torch and the trainer load only when the subcommand runs
    from ..train import TrainConfig, TrainResult

logger = logging.getLogger(__name__)

_SIZES_HELP = "size of a new model with --base new: tiny | mini | small (default small); new-<size> names its own"
_METRICS = ("R@1", "R@10", "MRR@10", "nDCG@10")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``finetune``."""
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a sparse encoder on pairs (or build a small one from scratch)",
        description="Train a SPLADE encoder on query/positive[/negative] pairs and save a model folder.",
    )
    p.add_argument("--pairs", required=True, help="pairs file: .csv, .tsv or .jsonl (query, positive[, negative])")
    p.add_argument(
        "--base",
        default="new-small",
        help="new-small / new-mini / new-tiny, or new with --size (from scratch) | preset name | Hub id "
        "| local model folder",
    )
    p.add_argument("--out", required=True, help="output model folder (must not exist or be empty)")
    p.add_argument("--eval-pairs", default=None, help="held-out pairs file (default: a share of --pairs)")
    p.add_argument("--epochs", type=_positive_float, default=None)
    p.add_argument("--batch-size", type=positive_int, default=None)
    p.add_argument("--lr", type=_positive_float, default=None)
    p.add_argument("--time-limit", type=_positive_float, default=None, help="seconds (default 300 for new models)")
    p.add_argument("--max-steps", type=positive_int, default=None)
    p.add_argument("--size", default=None, help=_SIZES_HELP)
    p.add_argument("--tokenizer", default=None, help="base tokenizer folder to prune for a new model")
    p.add_argument("--max-length", type=positive_int, default=None)
    p.add_argument("--bm25-negatives", action="store_true", help="mine BM25 hard negatives")
    p.add_argument(
        "--inference-free",
        action="store_true",
        help="query side = the training documents' IDF per token (frozen); trains the document side only and "
        "saves a sentence-transformers Router folder",
    )
    p.add_argument("--bf16", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (1 helps on a busy machine)")
    p.add_argument("--zip", action="store_true", help="also write <out>.zip")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` the arguments describe (the card's recipe for a pretrained base)."""
    from .. import train as training

    size = args.size
    if args.base in training.NEW_MODEL_BASES and args.base != "new":
        named = args.base.split("-", 1)[1]
        if size is not None and size != named:
            raise CliError(f"--size {size} contradicts --base {args.base}; use --base new --size {size}")
        size = named
    elif args.base not in training.NEW_MODEL_BASES and size is not None:
        raise CliError(f"--size is for a new model (--base new); {args.base} has its own size")
    overrides: dict[str, Any] = {
        "size": size or "small",
        "tokenizer": args.tokenizer,
        "bm25_negatives": bool(args.bm25_negatives),
        "inference_free": bool(args.inference_free),
        "bf16": args.bf16,
        "seed": args.seed,
        "out_path": args.out,
        "num_threads": args.threads,
    }
    for arg, name in (
        ("epochs", "epochs"),
        ("batch_size", "batch_size"),
        ("lr", "lr"),
        ("time_limit", "time_limit_s"),
        ("max_steps", "max_steps"),
        ("max_length", "max_length"),
    ):
        value = getattr(args, arg)
        if value is not None:
            overrides[name] = value
    if args.base in training.NEW_MODEL_BASES:
        config = training.TrainConfig(base=args.base, **overrides)
    else:
        config = training.TrainConfig.card_defaults(args.base, **overrides)
    config.validate()
    return config


def _log_progress(event: TrainingEvent) -> None:
    def num(value: float | None) -> float:
        return float("nan") if value is None else value

    if event.phase == "train":
        logger.info(
            "step %s/%s  loss %.4f  infonce %.4f  active q/d %.0f/%.0f  lr %.2e",
            event.step,
            event.max_steps,
            num(event.total),
            num(event.infonce),
            num(event.active_q),
            num(event.active_d),
            num(event.lr),
        )
    elif event.message:
        logger.info("%s: %s", event.phase, event.message)


def result_record(result: TrainResult, zip_path: str | None = None) -> dict[str, Any]:
    """The ``--json`` object: everything but the per-step history."""
    return {
        "status": result.status,
        "model_dir": str(result.model_dir) if result.model_dir is not None else None,
        "zip": zip_path,
        "steps": result.steps,
        "epochs": round(float(result.epochs), 4),
        "elapsed_s": round(float(result.elapsed_s), 3),
        "train_s": round(float(result.train_s), 3),
        "num_train_pairs": result.num_train_pairs,
        "num_eval_pairs": result.num_eval_pairs,
        "best_step": result.best_step,
        "restored_best": result.restored_best,
        "split_note": result.split_note,
        "metrics_before": result.metrics_before,
        "metrics_after": result.metrics_after,
        "expansions": result.expansions,
        "data_report": result.data_report,
        "inference_free": bool(result.config.get("inference_free")),
    }


def format_result(result: TrainResult, zip_path: str | None = None) -> str:
    """A readable summary: status, sizes, where the model is, held-out metrics before -> after."""
    lines = [
        f"finetune {result.status}: {result.steps} steps, {float(result.epochs):.2f} epochs, "
        f"{float(result.train_s):.1f} s training ({float(result.elapsed_s):.1f} s in all)",
        f"pairs: {result.num_train_pairs} train, {result.num_eval_pairs} held out",
        f"model: {result.model_dir if result.model_dir is not None else '(not saved)'}",
    ]
    if zip_path:
        lines.append(f"zip: {zip_path}")
    if result.split_note:
        lines.append(result.split_note)
    if result.restored_best:
        best = result.best_step
        lines.append(
            "saved the best held-out checkpoint: "
            + ("the starting model (no training step beat it)" if best == 0 else f"step {best}")
        )
    if result.metrics_after or result.metrics_before:
        lines.append("held-out metrics (before -> after):")
        for leg in sorted(set(result.metrics_before) | set(result.metrics_after)):
            before, after = result.metrics_before.get(leg, {}), result.metrics_after.get(leg, {})
            cells = []
            for m in _METRICS:
                if m in before or m in after:
                    b = f"{before[m]:.3f}" if m in before else "-"
                    a = f"{after[m]:.3f}" if m in after else "-"
                    cells.append(f"{m} {b} -> {a}")
            lines.append(f"  {leg:<7} " + "   ".join(cells))
    return "\n".join(lines)


def check_out(out: str) -> Path:
    """``--out`` as a folder to create: refused (exit 2) when it is a file or a folder with files in it.

    Raises:
        CliError: naming ``--out`` and what is there.
    """
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise CliError(f"--out {out} is an existing file; give a new folder for the model")
    if path.is_dir() and any(path.iterdir()):
        raise CliError(f"--out {out} is a folder that is not empty; give a new or empty folder")
    return path


def run(args: argparse.Namespace) -> int:
    """Train; 0 when a model folder was written."""
    from ..data import read_pairs
    from ..train import MIN_PAIRS, train, zip_model

    config = config_from_args(args)
    pairs = read_pairs(args.pairs)
    eval_pairs = read_pairs(args.eval_pairs) if args.eval_pairs else None
    check_out(args.out)
    if len(pairs) < MIN_PAIRS:
        raise CliError(
            f"{args.pairs} holds {len(pairs)} usable pair(s); training needs at least {MIN_PAIRS} "
            "(in-batch negatives come from the other pairs)"
        )
    result = train(config, pairs, eval_pairs, progress=_log_progress, wait=True)
    zip_path = str(zip_model(result.model_dir)) if args.zip and result.model_dir is not None else None
    if args.json:
        print_json(result_record(result, zip_path))
    else:
        for w in getattr(pairs.report, "warnings", ()) or ():
            note_line(str(w))
        print(format_result(result, zip_path))
    if result.model_dir is None:
        raise CliError(f"training ended ({result.status}) without saving a model", EXIT_FAILED)
    return 0

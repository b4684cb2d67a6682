"""What a run leaves behind: the model folder, its model card, the training record, a zip.

A saved folder is a standard ``*ForMaskedLM`` checkpoint (``model.safetensors``, ``config.json``,
tokenizer files), or for an inference-free run a sentence-transformers ``Router`` folder
(:func:`~sparse_demo.train.inference_free.save_router_folder`), plus ``README.md`` (model card with the
held-out table) and
``training_info.json`` (the record: settings, data hash, metrics before/after, keep-best step).
It is written to a temporary sibling folder and renamed into place, so a failed save never
leaves a half-written model.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sparse_demo.data.pairs import Pair
from sparse_demo.train.config import TrainResult

logger = logging.getLogger(__name__)

_METRIC_COLUMNS = ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")


def hash_pairs(pairs: Sequence[Pair]) -> str:
    """sha256 of the pairs' contents (order matters); identifies the training data in the record."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([p.query, p.positive, p.negative, p.teacher_score], ensure_ascii=False).encode())
    return h.hexdigest()


def metrics_table(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> str:
    """A Markdown table of the held-out figures before and after training (BM25 once)."""
    if not after:
        return "(no held-out evaluation)\n"
    lines = ["| system | " + " | ".join(_METRIC_COLUMNS) + " |", "|---" * (len(_METRIC_COLUMNS) + 1) + "|"]
    for when, table in (("before", before), ("after", after)):
        for name, row in table.items():
            if when == "before" and name == "bm25":
                continue
            label = "BM25 (Kiwi morphemes)" if name == "bm25" else f"{name} ({when})"
            lines.append(f"| {label} | " + " | ".join(f"{row.get(k, 0):.3f}" for k in _METRIC_COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _checkpoint_line(result: TrainResult) -> str:
    if result.best_step is None:
        return "No held-out evaluation ran, so the saved weights are the last step's."
    by = result.config.get("best_by", "model")
    if result.restored_best:
        return (
            f"Keep-best: the saved weights are the best held-out checkpoint (step {result.best_step}, "
            f"by {by} MRR@10), restored at the end of the run."
        )
    return f"Keep-best: the last evaluated weights (step {result.best_step}) were the best by {by} MRR@10."


def _size_row(cfg: dict[str, Any]) -> str:
    """The card's size row: only for a new model (a pretrained base has no size setting)."""
    return f"| size (new model) | {cfg['size']} |\n" if cfg.get("size") else ""


_PLAIN_USE = """Sparse vector: `w = max_t log(1 + relu(logits_t)) * mask_t`; load with
`AutoModelForMaskedLM` or `sparse_demo.encoder.SpladeEncoder.load(folder)`."""
_INFERENCE_FREE_USE = """Inference-free: a query's vector is the IDF weight (over the training documents, frozen)
of each token it contains, tokenised without special tokens; a document's is
`w = max_t log(1 + relu(logits_t)) * mask_t` from the trained MLM. A sentence-transformers `Router` folder: load with
`sentence_transformers.SparseEncoder(folder)` (`encode_query` / `encode_document`) or
`sparse_demo.encoder.SpladeEncoder.load(folder)`."""


def model_card(result: TrainResult, description: str, data_hash: str, note: str) -> str:
    """The folder's ``README.md``: what was trained, on what, with which settings and results."""
    cfg = result.config
    loss = cfg.get("loss", {})
    title = f"# Sparse encoder ({note})" if note else "# Fine-tuned Korean sparse (SPLADE) encoder"
    inference_free = bool(cfg.get("inference_free"))
    library = "sentence-transformers" if inference_free else "transformers"
    lambda_query = "none (IDF query side)" if inference_free else loss.get("lambda_flops_query")
    tags = (
        "[splade, sparse-retrieval, korean, inference-free]" if inference_free else "[splade, sparse-retrieval, korean]"
    )
    return f"""---
library_name: {library}
tags: {tags}
---
{title}

{description}. Trained by `sparse_demo.train` on {result.num_train_pairs:,} pairs
(held-out: {result.num_eval_pairs:,}); data sha256 `{data_hash[:16]}`.
Status: **{result.status}** after {result.steps:,} steps ({result.epochs:.2f} epochs, {result.train_s:.0f} s).
{_checkpoint_line(result)}

{_INFERENCE_FREE_USE if inference_free else _PLAIN_USE}

## Hyperparameters
| name | value |
|---|---|
| base | {cfg.get("base")} |
{_size_row(cfg)}| batch size | {cfg.get("batch_size")} |
| lr | {cfg.get("lr")} |
| max length (doc / query) | {cfg.get("max_length")} / {cfg.get("query_max_length")} |
| epochs (configured) | {cfg.get("epochs")} |
| lambda FLOPS (query / doc) | {lambda_query} / {loss.get("lambda_flops_doc")} |
| idf_alpha | {loss.get("idf_alpha")} |
| stopword / special-token penalty | {loss.get("stopword_penalty")} / {loss.get("special_token_penalty")} |
| temperature | {loss.get("temperature")} |
| BM25 hard negatives | {cfg.get("bm25_negatives")} |

## Held-out retrieval (before -> after)
{result.split_note}
Computed by the Search tab's code (memory index, BM25 with the default Korean analyzer, min-max
hybrid at sparse weight {cfg.get("hybrid_weight", 0.5)}), max length {cfg.get("max_length")}.

{metrics_table(result.metrics_before, result.metrics_after)}
"""


def training_record(result: TrainResult, description: str, data_hash: str, note: str) -> dict[str, Any]:
    """The ``training_info.json`` content."""
    return {
        "note": note,
        "description": description,
        "data_sha256": data_hash,
        "status": result.status,
        "steps": result.steps,
        "epochs": result.epochs,
        "train_s": result.train_s,
        "num_train_pairs": result.num_train_pairs,
        "num_eval_pairs": result.num_eval_pairs,
        "split_note": result.split_note,
        "best_step": result.best_step,
        "restored_best": result.restored_best,
        "metrics_before": result.metrics_before,
        "metrics_after": result.metrics_after,
        "expansions": result.expansions,
        "evaluations": [e.to_dict() for e in result.history if e.phase == "eval"],
        "config": result.config,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def save_model(
    model: Any,
    tokenizer: Any,
    folder: Path,
    result: TrainResult,
    description: str,
    data_hash: str,
    note: str,
    work_dir: Path | None = None,
    *,
    query_idf: Any = None,
    max_length: int = 192,
) -> None:
    """Write the model folder atomically (temporary sibling, then rename).

    Args:
        model, tokenizer: what to save (the model should be on the CPU).
        folder: the final folder (replaced when it exists).
        result: the run's result (for the card and the record).
        description: how the model was made.
        data_hash: :func:`hash_pairs` of the training pairs.
        note: free text for the card and ``config.json`` (``sparse_demo.note``).
        work_dir: the run's scratch folder; its ``vocab_pruning.json`` is kept when present.
        query_idf: an inference-free run's ``[vocab]`` query weights: the folder is then a
            sentence-transformers ``Router`` (:func:`~sparse_demo.train.inference_free.save_router_folder`)
            whose document side reads ``max_length`` tokens. None: a plain ``*ForMaskedLM`` folder.
    """
    tmp = folder.parent / f".{folder.name}.tmp-{uuid.uuid4().hex[:6]}"
    tmp.mkdir(parents=True)
    try:
        model.config.architectures = [type(model).__name__]
        model.config.sparse_demo = {
            "note": note,
            "description": description,
            "data_sha256": data_hash,
            "status": result.status,
            "steps": result.steps,
            "best_step": result.best_step,
        }
        if query_idf is not None:
            from sparse_demo.train.inference_free import save_router_folder

            save_router_folder(model, tokenizer, query_idf, tmp, max_length=max_length)
        else:
            model.save_pretrained(str(tmp), safe_serialization=True)
            tokenizer.save_pretrained(str(tmp))
        pruning = (work_dir / "vocab_pruning.json") if work_dir is not None else None
        if pruning is not None and pruning.is_file():
            shutil.copy(pruning, tmp / "vocab_pruning.json")
        (tmp / "README.md").write_text(model_card(result, description, data_hash, note), encoding="utf-8")
        record = training_record(result, description, data_hash, note)
        (tmp / "training_info.json").write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("Saved the model to %s", folder)


def zip_model(folder: str | Path, zip_path: str | Path | None = None) -> Path:
    """Zip a model folder (for download); returns the ``.zip`` path (default: next to the folder).

    Raises:
        ValueError: ``folder`` has neither ``config.json`` nor ``modules.json``.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file() and not (folder / "modules.json").is_file():
        raise ValueError(f"{folder} is not a model folder (no config.json or modules.json)")
    base = Path(zip_path).with_suffix("") if zip_path else folder
    return Path(shutil.make_archive(str(base), "zip", root_dir=folder))


__all__ = ["hash_pairs", "metrics_table", "model_card", "save_model", "training_record", "zip_model"]

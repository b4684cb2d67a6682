"""Train (or reuse) a small local encoder from the bundled sample pairs: the offline model.

:func:`build_offline_model` caches its folder under a key of the data and settings, so a second
call with the same inputs returns the existing folder at once. It trains with held-out
evaluation every epoch and keeps the best held-out checkpoint (see :func:`~sparse_demo.train.train`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

from sparse_demo.train.artifacts import hash_pairs
from sparse_demo.train.config import DEFAULT_SAMPLE_PAIRS, OFFLINE_MODEL_NOTE, ProgressFn, StopFn, TrainConfig
from sparse_demo.train.data import read_pairs
from sparse_demo.train.loop import train

logger = logging.getLogger(__name__)


def build_offline_model(
    cache_dir: str | Path,
    pairs_path: str | Path = DEFAULT_SAMPLE_PAIRS,
    *,
    size: Literal["tiny", "mini", "small"] = "mini",
    time_limit_s: float = 180.0,
    tokenizer: str | None = None,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    wait: bool = True,
    **overrides: Any,
) -> Path:
    """Train (or reuse) a small local encoder from the bundled sample pairs.

    The folder ``cache_dir/local-sparse-<size>`` is reused when its ``training_info.json``
    records the same data hash and settings; otherwise it is (re)trained, which takes a few
    minutes on 2 CPU cores. Its model card and ``config.json`` (``sparse_demo.note``) say
    "small local model trained on sample data".

    Args:
        cache_dir: where the model folder lives.
        pairs_path: the pairs file (default ``assets/pairs/sample_pairs.jsonl``).
        size: ``tiny`` | ``mini`` | ``small``.
        time_limit_s: training time limit.
        tokenizer: a base tokenizer folder to prune (None: train one on the pairs).
        progress, should_stop, wait: as in :func:`~sparse_demo.train.train`.
        **overrides: other :class:`~sparse_demo.train.TrainConfig` fields.

    Returns:
        The model folder.

    Raises:
        FileNotFoundError: the pairs file does not exist.
        RuntimeError: the run was cancelled without saving.
    """
    pairs_path = Path(pairs_path)
    if not pairs_path.is_file():
        raise FileNotFoundError(f"sample pairs not found: {pairs_path}")
    dataset = read_pairs(pairs_path)
    settings = {"size": size, "tokenizer": tokenizer, "time_limit_s": time_limit_s,
                **{k: v for k, v in overrides.items() if k != "loss"}}
    key = hashlib.sha256(
        (hash_pairs(dataset.pairs) + json.dumps(settings, sort_keys=True, default=str)).encode()
    ).hexdigest()
    folder = Path(cache_dir).expanduser() / f"local-sparse-{size}"
    info_path = folder / "training_info.json"
    if info_path.is_file() and (folder / "model.safetensors").is_file():
        try:
            if json.loads(info_path.read_text(encoding="utf-8")).get("cache_key") == key:
                logger.info("Reusing the local model at %s", folder)
                return folder
        except ValueError:
            pass
    values: dict[str, Any] = {
        "base": "new",
        "size": size,
        "tokenizer": tokenizer,
        "tokenizer_vocab_size": 4000,
        "batch_size": 32,
        "epochs": 30.0,
        "time_limit_s": time_limit_s,
        "eval_every": 0,  # every epoch, keeping the best held-out checkpoint
        "eval_distractors": 0,
        "note": OFFLINE_MODEL_NOTE,
        "run_name": "local-sparse",
        "output_dir": str(folder.parent),
        "bm25_negatives": False,
    }
    values.update(overrides)
    tmp_folder = folder.parent / f"{folder.name}.new-{uuid.uuid4().hex[:6]}"
    values["out_path"] = str(tmp_folder)
    result = train(TrainConfig(**values), dataset, progress=progress, should_stop=should_stop, wait=wait)
    if result.model_dir is None:
        raise RuntimeError(f"building the local model stopped ({result.status})")
    info = json.loads((tmp_folder / "training_info.json").read_text(encoding="utf-8"))
    info["cache_key"] = key
    (tmp_folder / "training_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    tmp_folder.rename(folder)
    return folder


__all__ = ["build_offline_model"]

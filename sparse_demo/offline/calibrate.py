"""Background calibration: silence the tokens a demo model activates for every text.

A small model distilled on a few thousand texts learns a handful of output tokens that fire on nearly
every input (``▁저장``, ``▁식사``, ``▁일주일`` at about the same weight for 당뇨병 치료 방법 and for
비행기 표 예약 취소). Such a token says nothing about any text: it is noise that inflates the expansion
share and adds a near-constant to every score. The fix is the one an IDF gives a term found everywhere:
for each non-special token that the model adds as an *expansion* (max-pooled logit above 0 on a text whose
input does not hold it) to at least ``share`` of the calibration texts that do not hold it, the output
bias is lowered by the ``quantile`` of its max-pooled logit over those texts, so that it is added only
where it is unusually strong. Tokens the texts themselves produce (particles included: their weight is
what the V25 / V26 styles differ in) and special tokens are left alone.

The default ``share`` is :data:`BACKGROUND_SHARE`, a quarter: at a half, the builds with more expansions kept
words such as ``▁블록`` (added to 64 of 150 BoolQ questions), ``▁시절`` and ``▁시기`` (about 30 each), which
match unrelated texts to each other just the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: A token the model adds to at least this share of the calibration texts that lack it is background.
BACKGROUND_SHARE = 0.25


def background_logits(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int = 192, batch: int = 64):
    """``[len(texts), vocab]`` float32 array: each text's max over positions of the MLM logits."""
    import numpy as np
    import torch

    rows = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            enc = tokenizer(
                list(texts[i : i + batch]), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            logits = model(**enc).logits.float()
            logits = logits.masked_fill(~enc["attention_mask"].bool()[..., None], float("-inf"))
            rows.append(logits.max(dim=1).values.numpy())
    return np.concatenate(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def calibrate_background(
    folder: Path, texts: Sequence[str], *, share: float = BACKGROUND_SHARE, quantile: float = 0.9, max_length: int = 192
) -> dict[str, Any]:
    """Lower the output bias of the tokens ``folder``'s model adds as expansions to at least ``share`` of the
    ``texts`` that do not hold them.

    The folder is rewritten in place, in the dtype it was saved in. Deterministic for the same folder and
    texts.

    Returns:
        What was done: the texts, the rule, and each silenced token with its activation share and shift.
    """
    import numpy as np
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForMaskedLM.from_pretrained(str(folder), use_safetensors=True)
    dtype = next(model.parameters()).dtype
    model = model.float().eval()
    acts = background_logits(model, tokenizer, texts, max_length)
    present = np.zeros(acts.shape, dtype=bool)
    for row, ids in enumerate(tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]):
        present[row, ids] = True
    absent = ~present
    added = ((acts > 0) & absent).sum(axis=0) / np.maximum(absent.sum(axis=0), 1)
    special = {int(i) for i in tokenizer.all_special_ids}
    bias = model.get_output_embeddings().bias
    silenced = []
    for tid in np.flatnonzero(added >= share):
        if int(tid) in special:
            continue
        shift = float(np.quantile(acts[absent[:, tid], tid], quantile))
        with torch.no_grad():
            bias[int(tid)] -= shift
        silenced.append(
            {
                "token": tokenizer.convert_ids_to_tokens(int(tid)),
                "added_share": round(float(added[tid]), 4),
                "bias_shift": round(-shift, 4),
            }
        )
    model.to(dtype).save_pretrained(str(folder), safe_serialization=True)
    return {"texts": len(texts), "share": share, "quantile": quantile, "silenced": silenced}

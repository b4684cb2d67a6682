"""Background calibration of the demo builds: a token the model adds as an expansion to at least a quarter of the
calibration texts that lack it has its output bias lowered; every other token is left exactly as it was.

The expected shares, silenced tokens and shifts are counted here from the model's logits, one unpadded text at a
time, not from the module's batched pass.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

WORDS = [
    "당뇨병",
    "혈당",
    "인슐린",
    "전세",
    "계약",
    "보증금",
    "기차",
    "예약",
    "취소",
    "날씨",
    "바다",
    "여행",
    "학교",
    "시험",
    "점수",
    "음식",
    "요리",
    "병원",
    "의사",
    "약국",
]


def _texts() -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=3, replace=False)) for _ in range(40)]


def _pooled(model, tokenizer, texts: list[str]) -> np.ndarray:
    """``[texts, vocab]``: each text's max over its positions of the MLM logits (no padding, no batching)."""
    import torch

    rows = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            rows.append(model(input_ids=ids).logits[0].max(dim=0).values.numpy())
    return np.stack(rows)


@pytest.fixture()
def calibrated_setup(tiny_model_dir, tmp_path):
    """A copy of the tiny model whose output bias leaves three absent tokens firing on all, 40% and 15% of the
    texts and nothing else: ``(folder, texts, {name: token id}, biases before)``."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    texts = _texts()
    present = {i for t in texts for i in tokenizer(t)["input_ids"]}
    bias = model.get_output_embeddings().bias
    raw = _pooled(model, tokenizer, texts) - bias.detach().numpy()  # the pooled logit less the token's bias
    free = [i for i in range(1000, len(tokenizer)) if i not in present and i not in tokenizer.all_special_ids]
    tokens = {"everywhere": free[0], "often": free[1], "rarely": free[2]}
    with torch.no_grad():
        bias.fill_(-1000.0)
        for name, firing in (("everywhere", 40), ("often", 16), ("rarely", 6)):
            column = np.sort(raw[:, tokens[name]])[::-1]
            # between the firing-th and the next text's logit: exactly `firing` texts above 0
            cut = column[firing - 1] if firing == len(texts) else (column[firing - 1] + column[firing]) / 2
            bias[tokens[name]] = float(-cut) + (1.0 if firing == len(texts) else 0.0)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder, texts, tokens, bias.detach().numpy().copy()


@pytest.mark.parametrize("share", [None, 0.5])
def test_tokens_added_to_at_least_the_share_of_texts_are_silenced_and_no_other(calibrated_setup, share):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from sparse_demo.offline.calibrate import BACKGROUND_SHARE, calibrate_background

    folder, texts, tokens, before = calibrated_setup
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    acts = _pooled(model, tokenizer, texts)
    added = {name: float((acts[:, tid] > 0).mean()) for name, tid in tokens.items()}
    assert added == {"everywhere": 1.0, "often": 0.4, "rarely": 0.15}, added
    for text, row in zip(texts, acts, strict=True):  # no other token is added to any text
        own = set(tokenizer(text)["input_ids"])
        assert set(np.flatnonzero(row > 0)) - own <= set(tokens.values()), text

    kwargs = {} if share is None else {"share": share}
    result = calibrate_background(folder, texts, **kwargs)
    limit = BACKGROUND_SHARE if share is None else share
    assert BACKGROUND_SHARE == 0.25
    expected = {name for name, value in added.items() if value >= limit}
    assert expected == ({"everywhere", "often"} if share is None else {"everywhere"})
    assert {s["token"] for s in result["silenced"]} == {tokenizer.convert_ids_to_tokens(tokens[n]) for n in expected}
    assert result["share"] == limit

    after_model = AutoModelForMaskedLM.from_pretrained(str(folder)).eval()
    after = after_model.get_output_embeddings().bias.detach().numpy()
    for name, tid in tokens.items():
        if name in expected:  # lowered by the 0.9 quantile of its logits over the texts: fires on at most 10%
            assert after[tid] == pytest.approx(before[tid] - np.quantile(acts[:, tid], 0.9), abs=1e-4)
            assert (_pooled(after_model, tokenizer, texts)[:, tid] > 0).mean() <= 0.1
        else:
            assert after[tid] == before[tid]
    others = np.ones(len(after), dtype=bool)
    others[[tokens[n] for n in expected]] = False
    assert np.array_equal(after[others], before[others])

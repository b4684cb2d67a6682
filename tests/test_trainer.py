"""A short from-scratch training run on generated Korean pairs, saving/reloading, cancellation, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import torch

from sparse_demo.train.data import Pair
from sparse_demo.train.losses import LossConfig
from sparse_demo.train.trainer import (
    _TRAIN_LOCK,
    OFFLINE_MODEL_NOTE,
    TrainConfig,
    TrainingBusyError,
    add_finetune_parser,
    build_offline_model,
    run_finetune,
    train,
    zip_model,
)

# Query words and the different words their documents use: lexical overlap alone cannot find
# the positive (only the shared template words match), so Recall@1 must come from training.
_QUERY_WORDS = ["사과", "바다", "기차", "의사", "학교", "겨울", "커피", "도서관", "축구", "병원",
                "고양이", "비행기", "시장", "산책", "음악", "영화", "우유", "자전거", "은행", "공원",
                "호수", "라면", "농구", "편지", "시계", "연필", "우산", "안경", "모자", "신발"]
_DOC_WORDS = ["과수원", "해변", "철도", "진료", "교실", "눈사람", "원두", "책장", "골대", "응급실",
              "야옹", "공항", "상인", "걷기", "노래", "극장", "젖소", "페달", "예금", "놀이터",
              "물결", "국물", "덩크", "우표", "초침", "필기", "빗물", "렌즈", "챙", "운동화"]


def make_pairs(n: int = 30) -> list[Pair]:
    return [
        Pair(f"{q}에 대해 알려 주세요", f"{d} 이야기를 여기에서 합니다", f"{_DOC_WORDS[(i + 1) % n]} 이야기")
        for i, (q, d) in enumerate(zip(_QUERY_WORDS[:n], _DOC_WORDS[:n]))
    ]


def tiny_config(tmp_path, **kw) -> TrainConfig:
    values = dict(
        base="new", size="tiny", tokenizer_vocab_size=300, batch_size=16, lr=1e-2, epochs=40.0,
        max_steps=60, time_limit_s=None, eval_every=0, eval_distractors=0, log_every=5,
        max_length=32, query_max_length=16, bf16="off", output_dir=str(tmp_path / "runs"), seed=0,
        num_threads=1, loss=LossConfig(stopword_penalty=1.0, reg_warmup_steps=20),
    )
    values.update(kw)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    pairs = [Pair(p.query, p.positive) for p in make_pairs()]
    events: list[dict] = []
    result = train(tiny_config(tmp), pairs, eval_pairs=pairs, progress=events.append)
    return result, events, pairs


def test_training_lowers_loss_and_raises_recall(trained):
    result, events, _ = trained
    steps = [e for e in events if e["phase"] == "train"]
    assert result.status == "max_steps" and result.steps == 60
    first = np.mean([e["infonce"] for e in steps[:2]])
    last = np.mean([e["infonce"] for e in steps[-2:]])
    assert last < 0.75 * first, (first, last)
    before, after = result.metrics_before["model"]["R@1"], result.metrics_after["model"]["R@1"]
    assert after >= before + 0.3, (before, after)
    assert set(result.metrics_after) == {"model", "bm25", "hybrid"}
    assert len(result.expansions) == 3 and {"query", "before", "after"} <= set(result.expansions[0])


def test_progress_dicts_have_the_documented_keys(trained):
    _, events, _ = trained
    step = next(e for e in events if e["phase"] == "train")
    for key in ("step", "max_steps", "epoch", "total", "infonce", "flops_q", "flops_d", "margin", "kd",
                "lambda_flops_q", "lambda_flops_d", "active_q", "active_d", "lr", "elapsed_s"):
        assert key in step, key
    assert [e["phase"] for e in events][-1] == "done"


def test_saved_folder_reloads_and_encodes_identically(trained):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from sparse_demo.encoder import SpladeEncoder, pool_logits

    result, _, pairs = trained
    folder = result.model_dir
    for name in ("model.safetensors", "config.json", "README.md", "tokenizer.json", "training_info.json"):
        assert (folder / name).is_file(), name
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["XLMRobertaForMaskedLM"]
    assert "pairs" in (folder / "README.md").read_text()
    texts = [pairs[0].query, pairs[1].positive, "처음 보는 문장입니다"]
    enc = SpladeEncoder.load(str(folder), device="cpu")
    vectors = [enc.search_vector(e, drop_special=False) for e in enc.encode(texts)]
    model = AutoModelForMaskedLM.from_pretrained(str(folder), use_safetensors=True).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        dense = pool_logits(model(**batch).logits, batch["attention_mask"]).numpy()
    vocab = {i: t for t, i in tok.get_vocab().items()}
    for row, vec in zip(dense, vectors):
        ids = np.flatnonzero(row > 0)
        assert {vocab[int(i)] for i in ids} == set(vec)
        for i in ids:
            assert vec[vocab[int(i)]] == pytest.approx(float(row[i]), rel=1e-4, abs=1e-5)
    zipped = zip_model(folder, folder.parent / "bundle.zip")
    assert zipped.is_file() and zipped.suffix == ".zip"


def test_cancellation_stops_the_run(tmp_path):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    pairs = make_pairs(20)
    result = train(tiny_config(tmp_path, save_on_cancel=False, max_steps=500), pairs, eval_pairs=pairs[:5],
                   should_stop=stop)
    assert result.status == "cancelled" and result.steps == 3 and result.model_dir is None


def test_second_run_is_refused_while_one_is_running(tmp_path):
    with _TRAIN_LOCK, pytest.raises(TrainingBusyError, match="in progress"):
        train(tiny_config(tmp_path), make_pairs(10))


def test_bad_config_values_name_the_choices():
    with pytest.raises(ValueError, match="tiny, mini, small"):
        TrainConfig(size="huge")
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=1)
    assert TrainConfig.card_defaults("V26").lr == 2e-5


def test_offline_model_is_cached_and_marked(tmp_path, monkeypatch):
    path = tmp_path / "sample_pairs.jsonl"
    path.write_text("\n".join(json.dumps(p.__dict__, ensure_ascii=False) for p in make_pairs(20)), encoding="utf-8")
    kw = dict(size="tiny", time_limit_s=30.0, max_steps=4, max_length=32, query_max_length=16, bf16="off")
    folder = build_offline_model(tmp_path / "cache", path, **kw)
    assert OFFLINE_MODEL_NOTE in (folder / "README.md").read_text()
    assert json.loads((folder / "config.json").read_text())["sparse_demo"]["note"] == OFFLINE_MODEL_NOTE

    def no_training(*a, **k):
        raise AssertionError("retrained although the data hash matched")

    monkeypatch.setattr("sparse_demo.train.trainer.train", no_training)
    assert build_offline_model(tmp_path / "cache", path, **kw) == folder


def test_run_finetune_cli(tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("query,positive\n" + "\n".join(f"{p.query},{p.positive}" for p in make_pairs(20)),
                     encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_finetune_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["finetune", "--pairs", str(pairs), "--base", "new-small", "--size", "tiny",
                              "--out", str(tmp_path / "model"), "--max-steps", "3", "--batch-size", "8",
                              "--max-length", "32", "--bf16", "off", "--zip"])
    result = args.func(args)
    assert result.model_dir == tmp_path / "model" and (tmp_path / "model" / "model.safetensors").is_file()
    assert (tmp_path / "model.zip").is_file()
    assert run_finetune is args.func


def test_fine_tune_from_a_local_model_folder(tiny_model_dir, tmp_path):
    """A pretrained base goes through encoder.load_mlm and saves a loadable folder."""
    from sparse_demo.encoder import ModelLoadError, SpladeEncoder
    from sparse_demo.train import Pair, TrainConfig, train

    pairs = [Pair(f"질문 {i} 당뇨병", f"당뇨병 문서 {i} 혈당 관리") for i in range(8)]
    config = TrainConfig(base=str(tiny_model_dir), batch_size=4, max_steps=2, max_length=16, query_max_length=8,
                         time_limit_s=120, eval_every=0, out_path=str(tmp_path / "ft"), bf16="off")
    result = train(config, pairs, pairs[:4])
    assert result.model_dir is not None and result.steps == 2
    assert len(SpladeEncoder.load(str(result.model_dir), device="cpu").encode(["당뇨병"])[0].vector) > 0
    with pytest.raises(ModelLoadError, match="no such folder"):
        train(TrainConfig(base=str(tmp_path / "missing" / "model"), max_steps=1, batch_size=4), pairs)

"""Model folder formats: sentence-transformers ``SparseEncoder`` and ``Router`` folders built here with
sentence-transformers itself, for XLM-R-, BERT- and ModernBERT-shaped tiny MLMs. The app's ``encode_query`` /
``encode_document`` must equal ``SparseEncoder.encode_query`` / ``encode_document``; Search and Evaluate with an
inference-free model must rank as a hand loop over ``SparseEncoder`` vectors; unsafe or unknown folders are
refused with one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import KOREAN_TEXTS

from sparse_demo.encoder import ModelLoadError, SpladeEncoder

st = pytest.importorskip("sentence_transformers")
from sentence_transformers import SparseEncoder  # noqa: E402
from sentence_transformers.sparse_encoder.modules import (  # noqa: E402
    MLMTransformer,
    Router,
    SparseStaticEmbedding,
    SpladePooling,
)

TEXTS = [
    "당뇨병 치료 방법은 무엇인가요",
    "혈당 관리를 위해 운동",
    "Python and 5G networks",
    "전세 계약 확정일자 보증금 보호 방법과 연말정산 의료비 세액공제 대상",
    "김치",
]
BACKBONES = ("xlmr", "bert", "modernbert")


def _wordpiece():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(KOREAN_TEXTS * 5, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _bpe():
    """A byte-level BPE tokenizer with ModernBERT's special tokens (``[CLS] X [SEP]``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(KOREAN_TEXTS * 5, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def _mlm(backbone: str, tokenizer, seed: int):
    import torch
    from transformers import BertConfig, BertForMaskedLM, ModernBertConfig, ModernBertForMaskedLM

    from sparse_demo.modeling import make_mlm

    if backbone == "xlmr":
        return make_mlm(tokenizer, "tiny", seed=seed)
    torch.manual_seed(seed)
    size = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    if backbone == "bert":
        model = BertForMaskedLM(
            BertConfig(
                vocab_size=len(tokenizer), max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id, **size
            )
        )
        model.config.architectures = ["BertForMaskedLM"]
        return model
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        global_attn_every_n_layers=1,
        local_attention=16,
        **size,
    )
    model = ModernBertForMaskedLM(config)
    model.config.architectures = ["ModernBertForMaskedLM"]
    return model


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> dict[str, tuple[Path, Path, object]]:
    """Per backbone: two plain ``*ForMaskedLM`` folders (other seeds) and their tokenizer."""
    from sparse_demo.modeling import train_tokenizer

    tokenizers = {"xlmr": train_tokenizer(KOREAN_TEXTS * 5, vocab_size=300), "bert": _wordpiece(), "modernbert": _bpe()}
    out = {}
    for backbone, tok in tokenizers.items():
        folders = []
        for seed in (1, 2):
            path = tmp_path_factory.mktemp(f"{backbone}_mlm{seed}")
            _mlm(backbone, tok, seed).save_pretrained(path)
            tok.save_pretrained(path)
            folders.append(path)
        out[backbone] = (folders[0], folders[1], tok)
    return out


def _idf_like(tokenizer, seed: int):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.rand(len(tokenizer.get_vocab()), generator=g) * 3


def _build(kind: str, base: Path, other: Path, tokenizer, out: Path) -> Path:
    """A folder saved by sentence-transformers itself."""
    if kind == "plain":
        model = SparseEncoder(modules=[MLMTransformer(str(base)), SpladePooling("max")], device="cpu")
    elif kind == "sum_log1p_topk":
        pooling = SpladePooling("sum", activation_function="log1p_relu", chunk_size=3)
        model = SparseEncoder(modules=[MLMTransformer(str(base)), pooling], device="cpu", max_active_dims=7)
    elif kind == "inference_free":
        router = Router.for_query_document(
            query_modules=[SparseStaticEmbedding(tokenizer=tokenizer, weight=_idf_like(tokenizer, 5), frozen=True)],
            document_modules=[MLMTransformer(str(base)), SpladePooling("max")],
        )
        model = SparseEncoder(modules=[router], device="cpu", similarity_fn_name="dot")
    elif kind == "two_mlms":
        router = Router.for_query_document(
            query_modules=[MLMTransformer(str(other)), SpladePooling("max")],
            document_modules=[MLMTransformer(str(base)), SpladePooling("sum")],
        )
        model = SparseEncoder(modules=[router], device="cpu")
    else:
        raise ValueError(kind)
    model.save(str(out))
    return out


def _dense(encodings, dim: int) -> np.ndarray:
    out = np.zeros((len(encodings), dim), dtype=np.float32)
    for i, e in enumerate(encodings):
        out[i, e.vector.token_ids] = e.vector.weights
    return out


FORMATS = ("plain", "inference_free", "sum_log1p_topk", "two_mlms")


@pytest.mark.slow
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("kind", FORMATS)
def test_sides_equal_sentence_transformers(bases, tmp_path, backbone, kind):
    base, other, tok = bases[backbone]
    folder = _build(kind, base, other, tok, tmp_path / kind)
    ref = SparseEncoder(str(folder), device="cpu")
    ours = SpladeEncoder.load(str(folder), device="cpu", max_length=128)
    for side in ("query", "document"):
        want = getattr(ref, f"encode_{side}")(TEXTS, convert_to_tensor=True).to_dense().numpy()
        got = _dense(getattr(ours, f"encode_{side}")(TEXTS), want.shape[1])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
        assert (want > 0).sum() > len(TEXTS)  # something to compare
    facts = ours.facts()
    assert facts["format"] == ("sentence-transformers" if kind in ("plain", "sum_log1p_topk") else "router")
    assert facts["backbone"] == {"xlmr": "xlm-roberta", "bert": "bert", "modernbert": "modernbert"}[backbone]
    assert facts["inference_free"] is (kind == "inference_free")
    assert facts["asymmetric"] is (kind in ("inference_free", "two_mlms"))
    assert facts["vocab_size"] == len(tok)
    if kind == "sum_log1p_topk":
        assert facts["max_active_dims"] == 7 and facts["pooling"] == "sum of log(1+log(1+relu))"
        assert all(len(e.vector) <= 7 for e in ours.encode_document(TEXTS))


def test_inference_free_query_is_the_table_of_its_tokens(bases, tmp_path):
    """The query side of an inference-free folder, by hand: the table's weight of each token present."""
    base, other, tok = bases["bert"]
    folder = _build("inference_free", base, other, tok, tmp_path / "if")
    from safetensors.torch import load_file

    table = load_file(str(folder / "query_0_SparseStaticEmbedding" / "model.safetensors"))["weight"].numpy()
    enc = SpladeEncoder.load(str(folder), device="cpu")
    for text, e in zip(TEXTS, enc.encode_query(TEXTS)):
        ids = sorted(set(tok(text, add_special_tokens=False)["input_ids"]))
        assert sorted(e.vector.token_ids.tolist()) == ids
        assert np.allclose(e.vector.weights, table[e.vector.token_ids])
        assert not set(e.vector.token_ids.tolist()) & {tok.cls_token_id, tok.sep_token_id}  # no special tokens added
    assert enc.default_side == "document" and enc.inference_free and enc.asymmetric


def test_fingerprint_covers_the_query_side(bases, tmp_path):
    """Rewriting only the query table changes the fingerprint (index caches key on it)."""
    base, other, tok = bases["xlmr"]
    a = _build("inference_free", base, other, tok, tmp_path / "a")
    before = SpladeEncoder.load(str(a), device="cpu").fingerprint
    from safetensors.torch import load_file, save_file

    path = a / "query_0_SparseStaticEmbedding" / "model.safetensors"
    tensors = load_file(str(path))
    tensors["weight"] = tensors["weight"] * 2
    save_file(tensors, str(path))
    after = SpladeEncoder.load(str(a), device="cpu").fingerprint
    assert before != after
    plain = SpladeEncoder.load(str(base), device="cpu")
    assert plain.format == "masked-lm" and not plain.asymmetric


# --------------------------------------------------------------------------- refusals
def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_unknown_module_type_is_refused(bases, tmp_path):
    base, other, tok = bases["xlmr"]
    folder = _build("plain", base, other, tok, tmp_path / "m")
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "2_Normalize").mkdir()
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    assert "Normalize" in _one_line(exc) and "not understood" in str(exc.value)


def test_unknown_router_module_types_are_all_named(bases, tmp_path):
    base, other, tok = bases["xlmr"]
    folder = _build("inference_free", base, other, tok, tmp_path / "rt")
    cfg = json.loads((folder / "router_config.json").read_text())
    cfg["types"]["query_0_SparseStaticEmbedding"] = "sentence_transformers.sparse_encoder.modules.SparseAutoEncoder"
    cfg["types"]["document_1_SpladePooling"] = "sentence_transformers.models.Pooling"
    (folder / "router_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    text = _one_line(exc)
    assert "SparseAutoEncoder" in text and "Pooling (sentence_transformers.models.Pooling)" in text
    assert "router_config.json" in text


def test_remote_code_module_is_refused(bases, tmp_path):
    base, other, tok = bases["xlmr"]
    folder = _build("plain", base, other, tok, tmp_path / "rc")
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "custom_pooling.MyPooling"
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "custom_pooling.py").write_text("raise SystemExit('this must never run')\n")
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    text = _one_line(exc)
    assert "custom_pooling.MyPooling" in text and "trust_remote_code" in text


def test_config_asking_for_remote_code_is_refused(bases, tmp_path):
    base, other, tok = bases["bert"]
    folder = _build("plain", base, other, tok, tmp_path / "rc2")
    cfg = json.loads((folder / "sentence_bert_config.json").read_text())
    cfg["model_args"] = {"trust_remote_code": True}
    (folder / "sentence_bert_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    assert "trust_remote_code" in _one_line(exc) and "sentence_bert_config.json" in str(exc.value)


@pytest.mark.parametrize("where", ["document_0_MLMTransformer", "query_0_SparseStaticEmbedding"])
def test_pickle_only_weights_are_refused(bases, tmp_path, where):
    import torch
    from safetensors.torch import load_file

    base, other, tok = bases["xlmr"]
    folder = _build("inference_free", base, other, tok, tmp_path / "pk")
    sub = folder / where
    tensors = load_file(str(sub / "model.safetensors"))
    torch.save(tensors, sub / "pytorch_model.bin")
    (sub / "model.safetensors").unlink()
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    text = _one_line(exc)
    assert "pytorch_model.bin" in text and "safetensors" in text and where in text


def test_pooling_setting_not_understood_is_refused(bases, tmp_path):
    base, other, tok = bases["xlmr"]
    folder = _build("plain", base, other, tok, tmp_path / "pool")
    cfg = folder / "1_SpladePooling" / "config.json"
    cfg.write_text(json.dumps({"pooling_strategy": "mean"}))
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    assert "pooling_strategy" in _one_line(exc) and "max, sum" in str(exc.value)


def test_a_feature_extraction_transformer_is_refused(bases, tmp_path):
    base, other, tok = bases["xlmr"]
    folder = _build("plain", base, other, tok, tmp_path / "fe")
    cfg = json.loads((folder / "sentence_bert_config.json").read_text())
    cfg["transformer_task"] = "feature-extraction"
    (folder / "sentence_bert_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    assert "fill-mask" in _one_line(exc)


def test_module_path_outside_the_folder_is_refused(bases, tmp_path):
    base, other, tok = bases["xlmr"]
    folder = _build("plain", base, other, tok, tmp_path / "esc")
    shutil.copytree(folder / "1_SpladePooling", tmp_path / "outside")
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["path"] = "../outside"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    assert "outside the model folder" in _one_line(exc)


# --------------------------------------------------------------------------- search and evaluate
DOCS = [
    "당뇨병 치료 방법은 식이요법과 운동, 약물 치료로 나뉩니다.",
    "혈당 관리를 위해 규칙적인 운동이 필요합니다.",
    "고혈압 환자는 소금 섭취를 줄여야 합니다.",
    "전세 계약을 할 때는 확정일자를 받아야 보증금을 보호할 수 있습니다.",
    "연말정산에서 의료비와 교육비는 세액공제 대상입니다.",
    "여권을 발급받으려면 신분증과 사진이 있어야 합니다.",
    "김치찌개는 잘 익은 김치와 돼지고기로 끓이면 맛있습니다.",
    "감기에 걸리면 충분히 쉬고 물을 많이 마시는 것이 좋습니다.",
]
QUERIES = ["당뇨병 치료", "전세 보증금", "김치찌개 끓이는 법", "감기 물"]


def _hand_ranking(ref: SparseEncoder, special: set[int]) -> list[list[int]]:
    """Documents by dot product of SparseEncoder's vectors (special tokens dropped, as search drops them)."""
    d = ref.encode_document(DOCS, convert_to_tensor=True).to_dense().numpy()
    q = ref.encode_query(QUERIES, convert_to_tensor=True).to_dense().numpy()
    d[:, sorted(special)] = 0
    q[:, sorted(special)] = 0
    scores = q @ d.T
    out = []
    for row in scores:
        positive = [int(i) for i in np.argsort(-row, kind="stable") if row[i] > 0]
        top = sorted(row[positive], reverse=True)
        assert all(a - b > 1e-4 for a, b in zip(top, top[1:])), "ties would make the order ambiguous"
        out.append(positive)
    return out


@pytest.fixture(scope="module")
def inference_free(bases, tmp_path_factory):
    base, other, tok = bases["xlmr"]
    folder = _build("inference_free", base, other, tok, tmp_path_factory.mktemp("if_search") / "m")
    return folder, SparseEncoder(str(folder), device="cpu"), SpladeEncoder.load(str(folder), device="cpu", name="if")


@pytest.mark.slow
def test_search_with_an_inference_free_model_ranks_as_sentence_transformers(inference_free):
    from sparse_demo import search as svc
    from sparse_demo.corpus import Corpus, Document

    folder, ref, ours = inference_free
    want = _hand_ranking(ref, set(ours.special_ids))
    corpus = Corpus("if", [Document(f"d{i}", t) for i, t in enumerate(DOCS)])
    index = svc.build_index(corpus, ours, "memory", doc_top_k=None, query_top_k=None)
    for q, expected in zip(QUERIES, want):
        out = svc.search(index, q, method="sparse", k=len(DOCS))
        assert [int(h.id[1:]) for h in out.hits] == expected


@pytest.mark.slow
def test_evaluate_with_an_inference_free_model_ranks_as_sentence_transformers(inference_free):
    from sparse_demo.corpus import Corpus, Document, Query
    from sparse_demo.evaluation import evaluate, make_eval_set, parse_system

    folder, ref, ours = inference_free
    want = _hand_ranking(ref, set(ours.special_ids))
    corpus = Corpus(
        "if-eval",
        [Document(f"d{i}", t) for i, t in enumerate(DOCS)],
        [Query(f"q{i}", t) for i, t in enumerate(QUERIES)],
        {f"q{i}": {f"d{i}": 1} for i in range(len(QUERIES))},
    )
    rep = evaluate(
        make_eval_set(corpus), [parse_system("sparse:if")], {"if": ours}, trials=100, resamples=50, doc_top_k=None
    )
    row = rep.systems[0]
    for i, expected in enumerate(want):
        assert [int(d[1:]) for d, _ in row.run[f"q{i}"]] == expected
    assert row.cost.query_side == "token weights" and row.cost.query_encode_ms is not None


# --------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def cli_env(inference_free, tmp_path_factory) -> dict[str, str]:
    import os

    folder, _, _ = inference_free
    presets = tmp_path_factory.mktemp("if_cli") / "models.json"
    presets.write_text(json.dumps({"default": "if", "presets": [{"name": "if", "source": str(folder)}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSE_DEMO_")}
    env.update({"SPARSE_DEMO_MODELS": str(presets), "SPARSE_DEMO_DEVICE": "cpu", "HF_HUB_OFFLINE": "1"})
    env.update({"OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"})
    return env


def _json_lines(proc) -> list[dict]:
    assert proc.returncode == 0, proc.stderr.decode("utf-8")
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines() if line.strip()]


@pytest.mark.slow
def test_cli_encode_sides_and_model_facts(inference_free, cli_env):
    from cli_process import run_sparse_demo
    from safetensors.torch import load_file

    folder, _, ours = inference_free
    table = load_file(str(folder / "query_0_SparseStaticEmbedding" / "model.safetensors"))["weight"].numpy()
    text = "당뇨병 치료 방법"
    (query,) = _json_lines(run_sparse_demo(["encode", "--side", "query", "--top-k", "50", "--json", text], env=cli_env))
    present = set(ours.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert {r["id"] for r in query["tokens"]} == {i for i in present if table[i] > 0}
    assert all(abs(r["weight"] - float(table[r["id"]])) < 1e-5 for r in query["tokens"])
    (doc,) = _json_lines(run_sparse_demo(["encode", "--side", "document", "--json", text], env=cli_env))
    assert doc["stats"]["active_dims"] > query["stats"]["active_dims"]  # the MLM expands; the table cannot
    (row,) = _json_lines(run_sparse_demo(["models", "--check", "--json"], env=cli_env))[:1]
    facts = row["facts"]
    assert facts["format"] == "router" and facts["inference_free"] and facts["asymmetric"]
    assert facts["sides"]["query"]["kind"] == "static" and facts["sides"]["document"]["kind"] == "mlm"
    assert facts["fingerprint"] == ours.fingerprint
    bad = run_sparse_demo(["encode", "--side", "both", "x"], env=cli_env)
    assert bad.returncode == 2 and b"query" in bad.stderr


def test_models_accordion_lists_the_facts_of_loaded_models(inference_free, tmp_path):
    from sparse_demo.config import load_settings
    from sparse_demo.models import ModelRegistry

    folder, _, _ = inference_free
    presets = tmp_path / "presets.json"
    presets.write_text(json.dumps({"default": "if", "presets": [{"name": "if", "source": str(folder)}]}))
    reg = ModelRegistry(load_settings({"SPARSE_DEMO_MODELS": str(presets), "SPARSE_DEMO_DEVICE": "cpu"}))
    assert "| router |" not in reg.status_markdown()  # nothing loaded yet: no facts
    encoder = reg.get("if")
    (row,) = [line for line in reg.status_markdown().splitlines() if line.startswith("| if | router")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:7] == [
        "router",
        "xlm-roberta",
        str(encoder.vocab_size),
        "max of log(1+relu)",
        "inference-free (token weights)",
        f"{encoder.query_side.max_length} / {encoder.document_side.max_length}",
    ]
    assert cells[7] == f"`{encoder.fingerprint}`"
    assert str(folder) not in reg.status_markdown()  # no server path shown


@pytest.mark.slow
def test_transformer_fill_mask_with_prompts_equals_sentence_transformers(bases, tmp_path):
    """The current API (``Transformer(transformer_task="fill-mask")``) and saved query/document prompts."""
    from sentence_transformers.sparse_encoder.modules import Transformer

    base, _, _ = bases["bert"]
    model = SparseEncoder(
        modules=[Transformer(str(base), transformer_task="fill-mask"), SpladePooling("max")],
        device="cpu",
        prompts={"query": "질문: ", "document": "문서: "},
    )
    model.save(str(tmp_path / "p"))
    ref = SparseEncoder(str(tmp_path / "p"), device="cpu")
    ours = SpladeEncoder.load(str(tmp_path / "p"), device="cpu", max_length=128)
    assert ours.asymmetric and not ours.inference_free  # same MLM, other prompts
    for side in ("query", "document"):
        want = getattr(ref, f"encode_{side}")(TEXTS, convert_to_tensor=True).to_dense().numpy()
        got = _dense(getattr(ours, f"encode_{side}")(TEXTS), want.shape[1])
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    enc = ours.encode_query([TEXTS[0]])[0]
    assert enc.text == TEXTS[0]
    assert all(0 <= a <= b <= len(TEXTS[0]) for a, b in enc.offsets)  # offsets stay inside the text


def test_registry_reloads_a_router_folder_whose_query_table_changed(bases, tmp_path):
    """The registry's cache key sees a module sub-folder rewritten in place (not only top-level files)."""
    from safetensors.torch import load_file, save_file

    from sparse_demo.config import load_settings
    from sparse_demo.models import ModelRegistry

    base, other, tok = bases["xlmr"]
    folder = _build("inference_free", base, other, tok, tmp_path / "r")
    presets = tmp_path / "presets.json"
    presets.write_text(json.dumps({"default": "r", "presets": [{"name": "r", "source": str(folder)}]}))
    reg = ModelRegistry(load_settings({"SPARSE_DEMO_MODELS": str(presets), "SPARSE_DEMO_DEVICE": "cpu"}))
    first = reg.get("r")
    path = folder / "query_0_SparseStaticEmbedding" / "model.safetensors"
    tensors = load_file(str(path))
    tensors["weight"] = tensors["weight"] + 1
    save_file(tensors, str(path))
    second = reg.get("r")
    assert second is not first and second.fingerprint != first.fingerprint
    q = second.encode_query(["당뇨병"])[0]
    assert np.allclose(q.vector.weights, tensors["weight"].numpy()[q.vector.token_ids])


def test_pooling_dimension_that_disagrees_with_the_mlm_is_refused(bases, tmp_path):
    base, other, tok = bases["bert"]
    folder = _build("plain", base, other, tok, tmp_path / "dim")
    cfg = folder / "1_SpladePooling" / "config.json"
    cfg.write_text(json.dumps({"pooling_strategy": "max", "word_embedding_dimension": len(tok) + 5}))
    with pytest.raises(ModelLoadError) as exc:
        SpladeEncoder.load(str(folder), device="cpu")
    assert f"embedding_dimension {len(tok) + 5}" in _one_line(exc)


def test_load_mlm_of_a_router_folder_is_its_document_mlm(bases, tmp_path):
    """What a fine-tune starts from: the document side's MLM, same weights as that sub-folder."""
    import torch
    from safetensors.torch import load_file

    from sparse_demo.encoder import load_mlm

    base, other, tok = bases["xlmr"]
    folder = _build("inference_free", base, other, tok, tmp_path / "ft")
    model, tokenizer = load_mlm(str(folder))
    saved = load_file(str(folder / "document_0_MLMTransformer" / "model.safetensors"))
    state = model.state_dict()
    common = [k for k in saved if k in state]
    assert len(common) >= len(saved) - 1 and all(torch.equal(state[k], saved[k]) for k in common)
    assert len(tokenizer) == len(tok)


def test_a_hub_router_repository_loads_from_the_local_cache(bases, tmp_path, monkeypatch):
    """A Hub id whose repository is a sentence-transformers folder (here: in the local HF cache, offline)."""
    import huggingface_hub.constants

    base, other, tok = bases["xlmr"]
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--org--inference-free"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(sha)
    folder = _build("inference_free", base, other, tok, repo / "snapshots" / sha)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    enc = SpladeEncoder.load("org/inference-free", device="cpu")
    assert enc.format == "router" and enc.inference_free
    assert enc.source_identity == f"hub:org/inference-free@{sha}"
    local = SpladeEncoder.load(str(folder), device="cpu")
    for side in ("query", "document"):
        a = getattr(enc, f"encode_{side}")(TEXTS)
        b = getattr(local, f"encode_{side}")(TEXTS)
        assert all(np.array_equal(x.vector.weights, y.vector.weights) for x, y in zip(a, b))

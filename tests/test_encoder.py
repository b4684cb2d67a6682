"""The pooled vector against an independent computation of the card's formula on full logits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sparse_demo.encoder import ModelLoadError, SpladeEncoder

TEXTS = [
    "당뇨병 치료 방법",
    "전세 계약을 할 때는 확정일자를 받아야 보증금을 보호할 수 있습니다. " * 12,  # long: truncated
    "고혈압",
    "Python 3.11 and 5G 네트워크 2024년",
    "😀 이모지와\u200b제로폭 문자",
]


def reference_vectors(encoder: SpladeEncoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The card's snippet: full logits, log(1 + relu) * mask, max over positions."""
    tok = encoder.tokenizer
    batch = tok(texts, padding=True, truncation=True, max_length=encoder.max_length, return_tensors="pt")
    with torch.no_grad():
        logits = encoder.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    values = torch.log1p(torch.relu(logits)) * batch["attention_mask"].unsqueeze(-1)
    return values.max(dim=1).values.numpy(), logits.numpy(), batch["attention_mask"].numpy()


def dense(vec, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float32)
    out[vec.token_ids] = vec.weights
    return out


@pytest.fixture(scope="module", params=["xlmr", "wordpiece"])
def encoder(request, tiny_model_dir, wordpiece_model_dir):
    folder = tiny_model_dir if request.param == "xlmr" else wordpiece_model_dir
    return SpladeEncoder.load(str(folder), device="cpu", max_length=64)


@pytest.mark.parametrize("chunk_elements", [1, 2**20, 2**26])
def test_pooling_matches_card_formula(encoder, chunk_elements):
    encoder.chunk_elements = chunk_elements
    ours = encoder.encode(TEXTS, batch_size=3)  # batches mix lengths after sorting
    ref, logits, mask = reference_vectors(encoder, TEXTS)
    assert any(e.truncated for e in ours)
    for i, enc in enumerate(ours):
        got = dense(enc.vector, ref.shape[1])
        np.testing.assert_allclose(got, ref[i], atol=1e-5, rtol=0)
        # every active token's position is a real (unpadded) position whose logit is the max
        n_real = int(mask[i].sum())
        assert len(enc.input_ids) == n_real
        pos = enc.vector.positions
        assert (pos >= 0).all() and (pos < n_real).all()
        at_pos = np.log1p(np.maximum(logits[i, pos, enc.vector.token_ids], 0))
        np.testing.assert_allclose(at_pos, enc.vector.weights, atol=1e-5)
        # sorted by descending weight, all positive
        assert (np.diff(enc.vector.weights) <= 0).all() and (enc.vector.weights > 0).all()


def test_order_and_batching_do_not_change_vectors(encoder):
    one_by_one = [encoder.encode([t])[0] for t in TEXTS]
    batched = encoder.encode(TEXTS, batch_size=2)
    for a, b in zip(one_by_one, batched):
        assert a.text == b.text
        np.testing.assert_allclose(dense(a.vector, encoder.vocab_size), dense(b.vector, encoder.vocab_size), atol=1e-5)


def test_special_tokens_reported_but_dropped_for_search(encoder):
    enc = encoder.encode(["당뇨병 치료 방법"])[0]
    specials = set(enc.vector.token_ids.tolist()) & encoder.special_ids
    assert specials, "a random model activates its special tokens somewhere; they must be reported"
    search = encoder.search_vector(enc)
    special_strings = {encoder.id_to_token(i) for i in encoder.special_ids}
    assert not special_strings & set(search)
    assert len(search) == len(enc.vector) - len(specials)
    kept = encoder.search_vector(enc, drop_special=False)
    assert special_strings & set(kept)


def test_offsets_point_into_text(encoder):
    enc = encoder.encode(["당뇨병 치료 방법"])[0]
    spans = [enc.text[s:e] for s, e in enc.offsets if e > s]
    assert "".join(spans).replace(" ", "") == "당뇨병치료방법"


def test_empty_and_huge_inputs(encoder):
    empty, huge = encoder.encode(["", "당뇨병 치료 " * 2_500])  # 17,500 characters
    assert set(empty.input_ids) <= encoder.special_ids
    assert huge.truncated and len(huge.input_ids) == encoder.max_length
    with pytest.raises(ValueError, match="limit"):
        encoder.encode(["가" * 200_000])
    with pytest.raises(ValueError, match="batch_size"):
        encoder.encode(["a"], batch_size=0)


@pytest.mark.slow
def test_modernbert_style_encoder(tmp_path, tiny_tokenizer):
    """Another *ForMaskedLM architecture (different head layout) pools identically."""
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "ModernBertForMaskedLM"):
        pytest.skip("this transformers has no ModernBERT")
    torch.manual_seed(0)
    cfg = transformers.ModernBertConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tiny_tokenizer.pad_token_id,
        bos_token_id=0,
        eos_token_id=2,
        cls_token_id=0,
        sep_token_id=2,
    )
    model = transformers.ModernBertForMaskedLM(cfg)
    model.config.architectures = ["ModernBertForMaskedLM"]
    model.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    enc = SpladeEncoder.load(str(tmp_path), device="cpu", max_length=64)
    ours = enc.encode(TEXTS[:3])
    ref, _, _ = reference_vectors(enc, TEXTS[:3])
    for i, e in enumerate(ours):
        np.testing.assert_allclose(dense(e.vector, ref.shape[1]), ref[i], atol=1e-5)


def test_load_errors_are_readable(tmp_path, tiny_model_dir):
    with pytest.raises(ModelLoadError, match="not a loadable|config"):
        SpladeEncoder.load(str(tmp_path))  # empty folder
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"):
        SpladeEncoder.load(str(f))
    # a folder with pickle weights only is refused (safetensors only)
    import shutil

    bad = tmp_path / "pickle_only"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "model.safetensors").rename(bad / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="safetensors"):
        SpladeEncoder.load(str(bad))


def test_unreachable_hub_id_fails_fast_with_reason(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="not reachable|local folder"):
        SpladeEncoder.load("sewoong/korean-neural-sparse-encoder-v26", revision="main")


def test_non_mlm_architecture_is_refused(tmp_path, tiny_tokenizer):
    from transformers import XLMRobertaConfig, XLMRobertaModel

    cfg = XLMRobertaConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    m = XLMRobertaModel(cfg)
    m.config.architectures = ["XLMRobertaModel"]
    m.save_pretrained(tmp_path)
    tiny_tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="ForMaskedLM"):
        SpladeEncoder.load(str(tmp_path))


@pytest.mark.slow
def test_bf16_precision_is_close_to_fp32(tiny_model_dir):
    exact = SpladeEncoder.load(str(tiny_model_dir), device="cpu", precision="fp32")
    fast = SpladeEncoder.load(str(tiny_model_dir), device="cpu", precision="bf16")
    for a, b in zip(exact.encode(TEXTS[:3]), fast.encode(TEXTS[:3])):
        da, db = dense(a.vector, exact.vocab_size), dense(b.vector, exact.vocab_size)
        assert np.abs(da - db).max() < 0.05
        top_a, top_b = set(a.vector.token_ids[:20].tolist()), set(b.vector.token_ids[:20].tolist())
        assert len(top_a & top_b) >= 10
    with pytest.raises(ValueError, match="precision"):
        SpladeEncoder.load(str(tiny_model_dir), precision="fp8")


# ----------------------------------------------------------------------------- batched tokenizer
def test_batched_tokenizer_equals_one_text_at_a_time(encoder):
    """The batched tokenizer call gives the ids and offsets of a per-text call (truncated where long)."""
    items = encoder._tokenize(TEXTS)
    for text, item in zip(TEXTS, items):
        full = encoder.tokenizer(text, add_special_tokens=True)["input_ids"]
        one = encoder.tokenizer(
            text, add_special_tokens=True, truncation=True, max_length=encoder.max_length, return_offsets_mapping=True
        )
        assert item["input_ids"] == list(one["input_ids"]) and item["full_len"] == len(full)
        assert item["offsets"] == [tuple(o) for o in one["offset_mapping"]]


def test_encode_iter_runs_shortest_first_and_matches_encode(encoder):
    got = list(encoder.encode_iter(TEXTS, batch_size=2))
    lengths = [len(enc.input_ids) for _, enc in got]
    assert sorted(i for i, _ in got) == list(range(len(TEXTS))) and lengths == sorted(lengths)
    whole = encoder.encode(TEXTS, batch_size=2)
    for i, enc in got:
        np.testing.assert_array_equal(enc.vector.token_ids, whole[i].vector.token_ids)
        np.testing.assert_allclose(enc.vector.weights, whole[i].vector.weights, rtol=0, atol=1e-6)


def test_progress_reports_fractions_and_counts(encoder):
    seen = []
    encoder.encode(TEXTS, batch_size=2, progress=lambda f, m: seen.append((f, m)))
    n = len(TEXTS)
    done = [min(b, n) for b in range(2, n + 2, 2)]  # one report per batch of two
    assert seen == [(d / n, f"{d}/{n} texts encoded") for d in done]


def test_splade_encoder_satisfies_the_encoder_protocol(encoder):
    from sparse_demo.encoder import Encoder

    assert isinstance(encoder, Encoder)

    class NoSearchVector:  # everything but ``search_sparse_vector``
        name, tokenizer, max_length, drop_special, special_ids = "x", None, 8, True, frozenset()
        device, vocab_size, fingerprint = "cpu", 1, "0" * 16
        default_side, asymmetric, inference_free = "document", False, False

        def id_to_token(self, token_id):
            return ""  # noqa: E704

        def encode(self, texts, **kw):
            return []  # noqa: E704

        def encode_iter(self, texts, **kw):
            return iter(())  # noqa: E704

        def document_windows(self, texts, settings, **kw):
            return None, iter(())  # noqa: E704

        encode_query = encode_document = encode

        def search_vector(self, encoding, drop_special=None):
            return {}  # noqa: E704

    assert not isinstance(NoSearchVector(), Encoder)
    NoSearchVector.search_sparse_vector = lambda self, encoding, drop_special=None: None
    assert isinstance(NoSearchVector(), Encoder)  # the one missing method was what failed it
    assert not isinstance(object(), Encoder)


# ----------------------------------------------------------------------------- fingerprints
@pytest.mark.slow
def test_fingerprint_is_stable_and_covers_vector_settings(tiny_model_dir):
    a = SpladeEncoder.load(str(tiny_model_dir), device="cpu")
    b = SpladeEncoder.load(str(tiny_model_dir), device="cpu", name="another display name")
    assert len(a.fingerprint) == 16 and int(a.fingerprint, 16) >= 0
    assert a.fingerprint == b.fingerprint  # the name is not part of it
    assert SpladeEncoder.load(str(tiny_model_dir), device="cpu").fingerprint == a.fingerprint  # stable across loads
    seen = {a.fingerprint}
    for kwargs in ({"max_length": 64}, {"drop_special": False}, {"precision": "bf16"}):
        other = SpladeEncoder.load(str(tiny_model_dir), device="cpu", **kwargs)
        assert other.fingerprint not in seen, kwargs
        seen.add(other.fingerprint)


@pytest.mark.slow
def test_fingerprint_changes_when_the_checkpoint_changes_in_place(tmp_path, tiny_model_dir, tiny_model_dir_b):
    import shutil
    import time

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    before = SpladeEncoder.load(str(folder), device="cpu", name="m").fingerprint
    assert SpladeEncoder.load(str(folder), device="cpu", name="m").fingerprint == before
    time.sleep(0.01)
    for f in Path(tiny_model_dir_b).glob("*.safetensors"):
        shutil.copyfile(f, folder / f.name)  # same shapes and size, other weights
    assert SpladeEncoder.load(str(folder), device="cpu", name="m").fingerprint != before


def test_fingerprint_of_weights_modified_in_memory(tiny_model_dir):
    enc = SpladeEncoder.load(str(tiny_model_dir), device="cpu")
    loaded = enc.fingerprint
    param = next(enc.model.parameters())
    original = param.detach().clone()
    with torch.no_grad():
        param.add_(0.5)  # what an optimizer step does
    trained = enc.fingerprint
    assert trained != loaded
    with torch.no_grad():
        param.copy_(original)
    restored = enc.fingerprint  # same weights again: the weights digest, equal to a fresh in-memory copy
    fresh = SpladeEncoder(enc.model, enc.tokenizer, name="in-memory")
    assert restored == fresh.fingerprint != trained


def test_fingerprint_of_an_in_memory_model_is_its_weights(tiny_model_dir, tiny_model_dir_b):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    m1 = AutoModelForMaskedLM.from_pretrained(str(tiny_model_dir))
    m1_again = AutoModelForMaskedLM.from_pretrained(str(tiny_model_dir))
    m2 = AutoModelForMaskedLM.from_pretrained(str(tiny_model_dir_b))
    f1 = SpladeEncoder(m1, tok, name="x").fingerprint
    assert f1 == SpladeEncoder(m1_again, tok, name="y").fingerprint
    assert f1 != SpladeEncoder(m2, tok, name="x").fingerprint


def test_the_package_keeps_the_single_module_names():
    """Every public name of the former ``sparse_demo/encoder.py`` still imports from ``sparse_demo.encoder``."""
    import sparse_demo.config as config
    import sparse_demo.encoder as encoder_pkg

    names = [
        "DEFAULT_CHUNK_ELEMENTS",
        "DEFAULT_MAX_LENGTH",
        "MAX_TEXT_CHARS",
        "MIN_VOCAB_TILE",
        "PRECISIONS",
        "TOKENIZE_BATCH",
        "Encoding",
        "Encoder",
        "ModelLoadError",
        "SparseVector",
        "SpladeEncoder",
        "folder_identity",
        "hub_reachable",
        "load_mlm",
        "looks_like_path",
        "max_pool_projection",
        "pool_logits",
        "resolve_device",
    ]
    assert set(names) <= set(encoder_pkg.__all__)  # later names (formats, sides) are added, none removed
    assert all(hasattr(encoder_pkg, n) for n in names)
    assert (encoder_pkg.DEFAULT_MAX_LENGTH, encoder_pkg.PRECISIONS) == (192, ("auto", "fp32", "bf16", "int8"))
    assert encoder_pkg.PRECISIONS is config.PRECISIONS  # one source of truth, importable without torch


def test_importing_the_package_defers_torch():
    """Errors, vectors and settings import without torch; ``SpladeEncoder`` brings it on first access."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from sparse_demo.encoder import Encoding, ModelLoadError, SparseVector, looks_like_path\n"
        "print('torch' in sys.modules)\n"
        "from sparse_demo.encoder import SpladeEncoder\n"
        "print('torch' in sys.modules, SpladeEncoder.__name__)\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True", "SpladeEncoder"]

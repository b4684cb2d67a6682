"""What one visitor of a public Space may reach: model folders without a tokenizer, tuned weights that stay
in the visitor's session, downloads that are reused and removed with the session (Gradio's cached copies
included), developer hints kept out of ``public`` mode, and the CLI's default model offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import _save_tiny

from sparse_demo.encoder import ModelLoadError, SpladeEncoder
from sparse_demo.encoder.loading import check_tokenizer


# ---------------------------------------------------------------------- a folder without a tokenizer
@pytest.fixture(scope="module")
def no_tokenizer_dir(tmp_path_factory, xlmr_tokenizer) -> Path:
    """A tiny model saved with its tokenizer, then every tokenizer file removed (config and weights kept)."""
    folder = _save_tiny(xlmr_tokenizer, tmp_path_factory.mktemp("no_tokenizer"), seed=5)
    kept = {"config.json", "model.safetensors", "generation_config.json"}
    removed = [p.name for p in folder.iterdir() if p.name not in kept]
    for name in removed:
        (folder / name).unlink()
    assert "tokenizer.json" in removed or "sentencepiece.bpe.model" in removed
    return folder


def test_a_folder_without_tokenizer_files_is_refused(no_tokenizer_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="no tokenizer files") as info:
        SpladeEncoder.load(str(no_tokenizer_dir), device="cpu")
    assert "tokenizer.json" in str(info.value) and "<unk>" in str(info.value)
    # a tokenizer_config.json alone is no vocabulary either
    with_config = shutil.copytree(no_tokenizer_dir, tmp_path / "with_config")
    (with_config / "tokenizer_config.json").write_text('{"model_max_length": 512}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="no tokenizer files"):
        SpladeEncoder.load(str(with_config), device="cpu")


def test_the_refused_tokenizer_really_turns_every_word_into_unk(no_tokenizer_dir):
    """What transformers builds for such a folder (the case the check exists for) maps words to <unk>."""
    from transformers import AutoTokenizer

    silent = AutoTokenizer.from_pretrained(str(no_tokenizer_dir))
    ids = silent("당뇨병 치료 방법 Python", add_special_tokens=False)["input_ids"]
    assert ids and set(ids) == {silent.unk_token_id}
    with pytest.raises(ModelLoadError, match="special tokens"):
        check_tokenizer(silent, str(no_tokenizer_dir))


def test_the_app_shows_the_reason(no_tokenizer_dir, app_context):
    from sparse_demo.ui.common import UserError

    with pytest.raises(UserError, match="no tokenizer files"):
        app_context.encoder(None, str(no_tokenizer_dir), {})

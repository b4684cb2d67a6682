"""Locally built tokenizers are reproducible, and a vocabulary too small for the texts says so."""

import json
import subprocess
import sys

import pytest

from sparse_demo.modeling import train_tokenizer

TEXTS = [
    "당뇨병 치료 방법과 혈당 관리",
    "전세 계약 갱신 청구권은 임차인의 권리입니다",
    "서울의 아파트 가격이 크게 올랐다",
    "인슐린 주사는 식사 전에 맞는다",
    "보증금 반환 소송 절차 안내",
    "파이썬으로 데이터 분석하기",
] * 4

_IN_CHILD = """
import json, sys
from sparse_demo.modeling import train_tokenizer
texts = json.loads(sys.stdin.read())
print(train_tokenizer(texts, vocab_size=150).backend_tokenizer.to_str())
"""


def _vocab(spec: str) -> list:
    return json.loads(spec)["model"]["vocab"]


def test_the_same_texts_give_the_same_tokenizer_in_one_process_and_across_processes():
    """tokenizers' UnigramTrainer alone orders its required characters by a hash set (checked: it differs)."""
    first = train_tokenizer(TEXTS, vocab_size=150).backend_tokenizer.to_str()
    again = train_tokenizer(TEXTS, vocab_size=150).backend_tokenizer.to_str()
    child = subprocess.run(
        [sys.executable, "-c", _IN_CHILD], input=json.dumps(TEXTS), capture_output=True, text=True, check=True
    ).stdout.strip()
    assert again == first
    assert child == first
    vocab = _vocab(first)
    assert [p for p, _ in vocab[:5]] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    scores = [s for _, s in vocab[5:]]
    assert scores == sorted(scores, reverse=True)
    # every character of the texts stays reachable: nothing becomes <unk>
    tok = train_tokenizer(TEXTS, vocab_size=150)
    unk = tok.unk_token_id
    assert all(unk not in tok(t)["input_ids"] for t in TEXTS)


def test_a_vocabulary_smaller_than_the_characters_is_a_clear_error():
    texts = ["".join(chr(0xAC00 + i) for i in range(j, j + 50)) for j in range(0, 400, 50)]
    with pytest.raises(ValueError, match="cannot hold the .* distinct characters"):
        train_tokenizer(texts, vocab_size=100)

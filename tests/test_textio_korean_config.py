"""Query/stopword file parsing, Kiwi helpers and settings: every bad input gets a clear message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparse_demo.config import load_settings
from sparse_demo.korean import bm25_terms, load_stopwords, morpheme_at, morphemes, parse_stopwords
from sparse_demo.textio import clean_query, parse_query_file


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\u200b\u200b", None])
def test_empty_queries_are_refused(text):
    with pytest.raises(ValueError, match="empty|Type"):
        clean_query(text)


def test_query_limits_and_cleaning():
    with pytest.raises(ValueError, match="20,000"):
        clean_query("가" * 20_001)
    assert clean_query("가" * 20_000) == "가" * 20_000
    assert clean_query(" 당뇨\u200b병 😀 ABC 123 ") == "당뇨병 😀 ABC 123"


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("q.txt", "당뇨병 치료\n\n고혈압\n".encode(), ["당뇨병 치료", "고혈압"]),
        ("q.csv", "id,query\n1,당뇨병\n2,\"전세, 보증금\"\n".encode(), ["당뇨병", "전세, 보증금"]),
        ("q.tsv", "당뇨병\n고혈압\n".encode(), ["당뇨병", "고혈압"]),
        ("q.jsonl", '{"query": "당뇨병"}\n{"text": "고혈압"}\n'.encode(), ["당뇨병", "고혈압"]),
        ("q.json", '["당뇨병", {"question": "감기"}]'.encode(), ["당뇨병", "감기"]),
        ("bom.txt", "\ufeff당뇨병\n".encode(), ["당뇨병"]),
    ],
)
def test_query_files(name, data, expected):
    assert parse_query_file(data, name) == expected


@pytest.mark.parametrize(
    ("name", "data", "match"),
    [
        ("q.txt", "당뇨병".encode("cp949"), "not UTF-8"),
        ("q.txt", b"\n\n  \n", "no text"),
        ("q.csv", b"query\n", "no text"),
        ("q.jsonl", b'{"query": "a"}\n{broken', "line 2"),
        ("q.jsonl", b'{"other": "a"}\n', "no 'query'"),
        ("q.pdf", b"%PDF", "unsupported"),
    ],
)
def test_bad_query_files(name, data, match):
    with pytest.raises(ValueError, match=match):
        parse_query_file(data, name)


def test_stopword_files():
    assert parse_stopwords("수\n▁있습니다 # comment\n하는, 것\n") == frozenset({"수", "있습니다", "하는", "것"})
    with pytest.raises(ValueError, match="UTF-8"):
        parse_stopwords("수".encode("cp949"))
    with pytest.raises(ValueError, match="no word"):
        parse_stopwords(b"# only a comment\n")
    bundled = load_stopwords()
    assert 200 <= len(bundled) <= 1000
    assert {"있습니다", "수", "하는"} <= bundled


def test_kiwi_morphemes_and_terms():
    text = "당뇨병 치료 방법은 무엇입니까?"
    ms = morphemes(text)
    assert [m.form for m in ms[:3]] == ["당뇨병", "치료", "방법"]
    assert all(text[m.start : m.end] == m.form for m in ms[:3])
    assert morpheme_at(ms, 0, 1).form == "당뇨병"
    terms = bm25_terms(text)
    assert "당뇨병/NNG" in terms and not any(t.endswith("/SF") for t in terms)
    assert bm25_terms("   ") == []


def test_settings_env_overrides(tmp_path):
    s = load_settings({})
    assert s.default_model == "V26"
    v26 = s.preset("V26")
    assert v26.source == "sewoong/korean-neural-sparse-encoder-v26" and v26.revision
    folder = tmp_path / "v26"
    folder.mkdir()
    s = load_settings({"SPARSE_DEMO_MODEL_V26": str(folder), "SPARSE_DEMO_MODEL_MINE": "org/model@abc123",
                       "SPARSE_DEMO_DEVICE": "cpu", "SPARSE_DEMO_MAX_LENGTH": "128"})
    assert s.preset("V26").source == str(folder) and s.preset("V26").revision is None
    mine = s.preset("MINE")
    assert (mine.source, mine.revision) == ("org/model", "abc123")
    assert s.device == "cpu" and s.max_length == 128
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"presets": [{"name": "x"}]}))
    with pytest.raises(ValueError, match="source"):
        load_settings({"SPARSE_DEMO_MODELS": str(bad)})
    with pytest.raises(ValueError, match="integer"):
        load_settings({"SPARSE_DEMO_MAX_LENGTH": "lots"})


def test_bad_precision_names_the_choices():
    with pytest.raises(ValueError, match="SPARSE_DEMO_PRECISION must be one of auto, fp32, bf16, got 'fp8'"):
        load_settings({"SPARSE_DEMO_PRECISION": "fp8"})


def test_reading_settings_does_not_import_torch():
    """The CLI reads settings before any model work: that must not pay for importing torch."""
    code = (
        "import sys, sparse_demo.config as c; c.load_settings({}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

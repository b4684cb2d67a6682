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
        ("q.csv", 'id,query\n1,당뇨병\n2,"전세, 보증금"\n'.encode(), ["당뇨병", "전세, 보증금"]),
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
    s = load_settings(
        {
            "SPARSE_DEMO_MODEL_V26": str(folder),
            "SPARSE_DEMO_MODEL_MINE": "org/model@abc123",
            "SPARSE_DEMO_DEVICE": "cpu",
            "SPARSE_DEMO_MAX_LENGTH": "128",
        }
    )
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
    with pytest.raises(ValueError, match="SPARSE_DEMO_PRECISION must be one of auto, fp32, bf16, int8, got 'fp8'"):
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


def test_query_limit_comes_from_the_limits():
    from sparse_demo.limits import Limits

    with pytest.raises(ValueError, match=r"the limit is 5 \(SPARSE_DEMO_MAX_QUERY_CHARS\)"):
        clean_query("당뇨병 치료법", Limits(max_query_chars=5))
    assert clean_query(" 당뇨병 ", Limits(max_query_chars=3)) == "당뇨병"


def test_top_k_limit_is_one_limit_read_from_the_environment():
    from sparse_demo.config import load_limits

    limits = load_limits({"SPARSE_DEMO_MAX_TOP_K": "7"})
    assert limits.max_top_k == 7 and load_limits({}).max_top_k == 100
    assert limits.check_top_k(7.0) == 7 and limits.check_top_k(1) == 1
    for bad in (0, 8, -3):
        with pytest.raises(ValueError, match=rf"between 1 and 7 \(SPARSE_DEMO_MAX_TOP_K\), got {bad}"):
            limits.check_top_k(bad)
    with pytest.raises(ValueError, match="SPARSE_DEMO_MAX_TOP_K must be at least 1"):
        load_limits({"SPARSE_DEMO_MAX_TOP_K": "0"})


def test_folders_hub_and_server_come_from_config(tmp_path):
    from sparse_demo import config

    assert config.data_dir({"SPARSE_DEMO_DATA_DIR": str(tmp_path)}) == tmp_path
    assert config.model_cache_dir({"SPARSE_DEMO_CACHE": str(tmp_path / "m")}) == tmp_path / "m"
    checkout = Path(__file__).resolve().parent.parent
    assert config.data_dir({}) == checkout.parent / "shared" / "data"
    assert config.model_cache_dir({}) == checkout / ".cache" / "models"
    assert config.hub_offline({"HF_HUB_OFFLINE": "1"}) and not config.hub_offline({})
    assert config.hub_host({"HF_ENDPOINT": "https://hf-mirror.example.org/x"}) == "hf-mirror.example.org"
    opts = config.server_options({"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "7861", "LOGLEVEL": "debug"})
    assert (opts.host, opts.port, opts.log_level) == ("0.0.0.0", 7861, "DEBUG")
    assert config.server_options({}) == config.ServerOptions("INFO", "127.0.0.1", 7860)
    for bad in ("http", "0", "70000"):
        with pytest.raises(ValueError, match="GRADIO_SERVER_PORT"):
            config.server_options({"GRADIO_SERVER_PORT": bad})


#: Files that still read the environment themselves (the lead moves them to ``config.data_dir`` /
#: ``config.model_cache_dir``); empty this set then.
_READS_ENV_ELSEWHERE: set[str] = set()


def test_only_config_reads_the_environment():
    """``os.environ`` / ``os.getenv`` are read in :mod:`sparse_demo.config` only (writing a default is allowed)."""
    import ast

    root = Path(__file__).resolve().parent.parent / "sparse_demo"
    readers = set()
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        written = {
            id(n.func.value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "setdefault"
        }
        if any(
            isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv") and id(n) not in written
            for n in ast.walk(tree)
        ):
            readers.add(path.relative_to(root).as_posix())
    assert readers - _READS_ENV_ELSEWHERE == {"config.py"}

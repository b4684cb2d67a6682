"""The app builds, and every Explore handler answers good and bad input with a message."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from sparse_demo.ui.explore import explore_batch, explore_query

BAD_TEXTS = {
    "empty": "",
    "whitespace": "   \n\t ",
    "zero-width only": "\u200b\u200c",
}
ODD_BUT_FINE = {
    "20,000 characters": "당뇨병 치료 " * 2_857,
    "emoji and zero-width": "😀 당뇨\u200b병 🩺",
    "mixed scripts": "2024년 HbA1c 7% 이하 목표 diabetes",
}


def test_app_builds(app_context):
    from app import build_app

    demo = build_app(app_context)
    tabs = {b.elem_id for b in demo.blocks.values() if (b.elem_id or "").startswith("tab-")}
    assert tabs == {"tab-explore", "tab-compare", "tab-search", "tab-finetune", "tab-evaluate"}


def test_model_banner_names_failures(app_context):
    from app import model_banner

    text = model_banner(app_context)
    assert "tiny-a" in text and "loaded" in text
    app_context.registry.try_get("missing")
    text = model_banner(app_context)
    assert "missing" in text and "failed" in text


@pytest.mark.parametrize("name", list(BAD_TEXTS))
def test_explore_bad_text(app_context, name):
    r = explore_query(app_context, BAD_TEXTS[name], "tiny-a")
    assert r.status.startswith("⛔") and "empty" in r.status.lower()
    assert r.table.empty and r.chart is None


@pytest.mark.parametrize("name", list(ODD_BUT_FINE))
def test_explore_odd_text(app_context, name):
    r = explore_query(app_context, ODD_BUT_FINE[name], "tiny-a", top_k=10)
    assert not r.status.startswith("⛔"), r.status
    assert len(r.table) == 10 and r.chart is not None
    if name == "20,000 characters":
        assert "truncated" in r.status
    assert "Stopword leakage" in r.leakage


def test_explore_model_failures(app_context, tmp_path):
    r = explore_query(app_context, "당뇨병", "missing")
    assert r.status.startswith("⛔") and "missing" in r.status and "local model folder" in r.status
    r = explore_query(app_context, "당뇨병", None, folder=str(tmp_path))
    assert r.status.startswith("⛔") and "not a loadable" in r.status
    ok = explore_query(app_context, "당뇨병", "missing", folder=str(app_context.registry.resolve("tiny-b").source))
    assert not ok.status.startswith("⛔")
    r = explore_query(app_context, "당뇨병", "tiny-a", top_k=0)
    assert r.status.startswith("⛔")


def test_explore_custom_stopwords(app_context, tmp_path):
    base = explore_query(app_context, "당뇨병 치료 방법", "tiny-a", top_k=5)
    top_token = base.table.iloc[0]["token"]
    custom = tmp_path / "stop.txt"
    custom.write_text(f"{top_token}\n", encoding="utf-8")
    r = explore_query(app_context, "당뇨병 치료 방법", "tiny-a", top_k=5, stopword_file=str(custom), use_pos_rule=False)
    assert r.table.iloc[0]["category"] == "stopword"
    assert r.analysis.leakage.first_stopword_rank == 1
    bad = tmp_path / "bad.txt"
    bad.write_bytes("수".encode("cp949"))
    r = explore_query(app_context, "당뇨병", "tiny-a", stopword_file=str(bad))
    assert r.status.startswith("⛔") and "UTF-8" in r.status


def test_explore_batch(app_context, tmp_path):
    r = explore_batch(app_context, "당뇨병 치료 방법\n\n고혈압 있습니다\n😀 zero\u200bwidth", None, "tiny-a", top_k=5)
    assert not r.status.startswith("⛔"), r.status
    assert len(r.per_query) == 3
    saved = pd.read_csv(r.csv_path, encoding="utf-8-sig")
    assert list(saved["query"])[:2] == ["당뇨병 치료 방법", "고혈압 있습니다"]
    upload = tmp_path / "q.jsonl"
    upload.write_text('{"query": "전세 계약"}\n{"query": "여권 발급"}\n', encoding="utf-8")
    r = explore_batch(app_context, "", str(upload), "tiny-a", top_k=5)
    assert len(r.per_query) == 2


@pytest.mark.parametrize(
    ("content", "name", "match"),
    [
        ("당뇨병".encode("cp949"), "q.txt", "UTF-8"),
        (b"\n \n", "q.txt", "no text"),
        (b"query\n", "q.csv", "no text"),
    ],
)
def test_explore_batch_bad_uploads(app_context, tmp_path, content, name, match):
    path = tmp_path / name
    path.write_bytes(content)
    r = explore_batch(app_context, "", str(path), "tiny-a")
    assert r.status.startswith("⛔") and match in r.status
    r = explore_batch(app_context, "   ", None, "tiny-a")
    assert r.status.startswith("⛔")


@pytest.mark.slow
def test_cli_encode_json(tiny_model_dir):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparse_demo",
            "encode",
            "--model",
            str(tiny_model_dir),
            "--top-k",
            "5",
            "--json",
            "당뇨병 치료 방법",
            "고혈압",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [x["text"] for x in lines] == ["당뇨병 치료 방법", "고혈압"]
    for x in lines:
        assert len(x["tokens"]) == 5
        assert {"token", "id", "weight", "position", "category"} <= set(x["tokens"][0])
        assert {"active_dims", "l1"} <= set(x["stats"])
        assert {"stopword_mass_ratio", "special_mass_ratio"} <= set(x["leakage"])
        weights = [t["weight"] for t in x["tokens"]]
        assert weights == sorted(weights, reverse=True)


@pytest.mark.slow
def test_cli_errors():
    out = subprocess.run(
        [sys.executable, "-m", "sparse_demo", "encode", "--model", "/nonexistent/folder", "x"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": ""},
    )
    assert out.returncode == 1 and "Could not load model" in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "sparse_demo", "encode", "--model", "x", "   "],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and ("empty" in out.stderr or "at least one text" in out.stderr), out.stderr


def test_public_mode_gives_one_message_for_every_refused_folder(app_context, tmp_path):
    import dataclasses

    from sparse_demo.models import NOT_AVAILABLE
    from sparse_demo.ui.common import AppContext

    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "a-file").write_text("x")
    settings = dataclasses.replace(app_context.settings, model_sources="public", allowed_roots=(allowed,))
    ctx = AppContext.create(settings)
    typed = [
        str(tmp_path),
        "/etc",
        "/etc/passwd",
        "../..",
        f"{allowed}/../",
        "/nonexistent/folder",
        str(allowed / "missing"),
        str(allowed / "a-file"),
        str(app_context.registry.resolve("tiny-a").source),
    ]
    statuses = {explore_query(ctx, "당뇨병", None, folder=t).status for t in typed}
    assert len(statuses) == 1, statuses
    assert NOT_AVAILABLE in statuses.pop()
    assert not explore_query(ctx, "당뇨병", "tiny-a").status.startswith("⛔")  # presets by name still load


def test_ui_tabs_share_helpers_through_common_only():
    """A tab module imports ui.common / plots / render / links, never another tab (the Search tab embeds the
    corpus report accordion, the one exception); a module named ``<tab>_<part>`` is part of that tab and only
    that tab imports it. Read from the source with ast."""
    import ast
    from pathlib import Path

    ui = Path(__file__).resolve().parent.parent / "sparse_demo" / "ui"
    shared = {"common", "plots", "render", "links"}
    modules = {p.stem for p in ui.glob("*.py")} - shared - {"__init__"}
    owner = {m: next((t for t in modules if m.startswith(f"{t}_")), m) for m in modules}
    assert owner["search_opensearch"] == "search"
    found = set()
    for module in modules:
        for node in ast.walk(ast.parse((ui / f"{module}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                found |= {
                    (owner[module], owner[n.split(".")[0]])
                    for n in names
                    if n.split(".")[0] in modules and owner[n.split(".")[0]] != owner[module]
                }
    assert found == {("search", "corpus_report")}

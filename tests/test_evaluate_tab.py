"""Evaluate tab handlers: uploads, the table, reference apart, curves, wins/losses, errors as messages."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import gradio as gr
import pandas as pd
import pytest

from sparse_demo import search as svc
from sparse_demo.ui import evaluate as tab


@pytest.fixture(scope="module")
def beir_zip(tmp_path_factory):
    """A zipped BEIR folder: 10 sample documents and the sample queries judged on them."""
    full = svc.load_sample_corpus()
    docs = full.documents[:10]
    ids = {d.id for d in docs}
    queries = [q for q in full.queries if q.id in full.qrels and set(full.qrels[q.id]) <= ids][:4]
    path = tmp_path_factory.mktemp("zip") / "small.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "small/corpus.jsonl", "\n".join(json.dumps({"_id": d.id, "text": d.text}, ensure_ascii=False) for d in docs)
        )
        zf.writestr(
            "small/queries.jsonl",
            "\n".join(json.dumps({"_id": q.id, "text": q.text}, ensure_ascii=False) for q in queries),
        )
        zf.writestr(
            "small/qrels/test.tsv", "\n".join(f"{q.id}\t{d}\t{g}" for q in queries for d, g in full.qrels[q.id].items())
        )
    return path


def test_tab_builds_and_connects_to_the_query_boxes(app_context):
    with gr.Blocks() as demo:
        gr.Textbox(elem_id="search-query")
        parts = tab.build_tab(app_context, gr.State({}))
        gr.Textbox(elem_id="compare-query")
        assert sorted(tab.connect_query(demo, parts)) == ["compare-query", "search-query"]
    assert isinstance(parts.selected_query, gr.Textbox)


def test_upload_and_model_table_with_curves(app_context, beir_zip):
    up = tab.load_input(app_context, str(beir_zip))
    assert up.eval_set is not None and "4 judged queries over 10 documents" in up.status
    r = tab.run_evaluation(
        app_context,
        tab.UPLOAD_LABEL,
        up.eval_set,
        ["tiny-a"],
        ["bm25", "sparse", "hybrid", "best"],
        "0.3, 0.7",
        "memory",
        0,
        0,
        ["weight", "prune"],
    )
    assert r.report is not None, r.status
    assert list(r.table["System"]) == [
        "BM25 (baseline)",
        "sparse tiny-a",
        "hybrid tiny-a (w=0.3)",
        "hybrid tiny-a (w=0.7)",
        "hybrid tiny-a (weight by 4-fold CV)",
    ]
    assert "4 queries evaluated" in r.status
    assert not r.table["System"].str.contains("model card").any()
    assert list(r.reference["System"]) == ["V26 (model card)", "BM25 (model card)"]
    assert r.weight_chart is not None and r.prune_flops_chart is not None and r.prune_bytes_chart is not None
    assert "Suggested weight for **tiny-a**" in r.chart_status
    assert {p.rsplit("/", 1)[-1] for p in r.files} == {
        "table.csv",
        "runs.csv",
        "per_query.csv",
        "report.json",
        "report.md",
    }
    assert pd.read_csv(r.files[0])["system"].tolist() == r.labels
    wl = tab.compare_systems(r.report, r.labels[0], r.labels[1])
    assert "wins" in wl.status and len(wl.table) == 4
    assert tab.pick_query(wl.table, 0) in r.report.query_texts.values()
    assert tab.pick_query(wl.table, 99) == ""


def test_bm25_on_the_sample_and_cancel(app_context):
    r = tab.run_evaluation(app_context, tab.SAMPLE_LABEL, None, [], ["bm25"], "", "memory", 20, 1, [])
    assert r.report is not None and "20 of 181 queries evaluated" in r.status
    stopped = tab.run_evaluation(
        app_context, tab.SAMPLE_LABEL, None, [], ["bm25"], "", "memory", 5, 0, [], should_stop=lambda: True
    )
    assert "cancelled" in stopped.status and stopped.report is None


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"kinds": []}, "Tick at least one system"),
        ({"kinds": ["sparse"], "models": []}, "Pick at least one model"),
        ({"kinds": ["hybrid"], "weights": "0.5, x"}, "numbers in [0, 1]"),
        ({"kinds": ["hybrid"], "weights": "2"}, "must be in [0, 1]"),
        ({"choice": tab.UPLOAD_LABEL}, "Upload a BEIR .zip"),
        ({"models": ["missing"]}, "⛔"),
        ({"kinds": ["bm25"], "sweeps": ["prune"]}, "pruning curve needs a model"),
    ],
)
def test_bad_choices_become_messages(app_context, kwargs, needle):
    args = {
        "choice": tab.SAMPLE_LABEL,
        "uploaded": None,
        "models": ["tiny-a"],
        "kinds": ["bm25", "sparse"],
        "weights": "0.5",
        "backend": "memory",
        "sample": 3,
        "seed": 0,
        "sweeps": [],
    }
    args.update(kwargs)
    r = tab.run_evaluation(app_context, **args)
    assert r.report is None and needle in r.status and r.status.startswith("⛔")


def test_bad_uploads(app_context, tmp_path):
    bad = tmp_path / "x.zip"
    bad.write_bytes(b"not a zip")
    r = tab.load_input(app_context, str(bad))
    assert r.eval_set is None and "x.zip" in r.status and r.status.startswith("⛔")
    assert tab.load_input(app_context, None).eval_set is None
    assert tab.compare_systems(None, "a", "b").status.startswith("ℹ️")


def test_model_picker_refreshes_on_load(app_context):
    from sparse_demo.ui.common import model_dropdowns

    with gr.Blocks() as demo:
        tab.build_tab(app_context, gr.State({}))
    assert [d.elem_id for d in model_dropdowns(demo)] == ["evaluate-models"]


@pytest.mark.parametrize(
    ("limits", "needle"),
    [
        ({"max_upload_bytes": 100}, "SPARSE_DEMO_MAX_UPLOAD_MB"),
        ({"max_rows": 5}, "10 documents; the limit is 5 per upload (SPARSE_DEMO_MAX_ROWS)"),
        ({"max_rows": 9}, "the limit is 9"),  # 10 documents, 4 queries: the documents exceed it
        ({"max_query_chars": 3}, "SPARSE_DEMO_MAX_QUERY_CHARS"),
    ],
)
def test_upload_limits_are_messages(app_context, beir_zip, monkeypatch, limits, needle):
    from sparse_demo.limits import Limits

    monkeypatch.setattr(app_context, "limits", Limits(**limits))
    r = tab.load_input(app_context, str(beir_zip))
    assert r.eval_set is None and r.status.startswith("⛔") and "small.zip" in r.status and needle in r.status


def test_query_limit_per_run_is_stated(app_context, monkeypatch):
    from sparse_demo.limits import Limits

    monkeypatch.setattr(app_context, "limits", Limits(max_batch=7))
    assert tab.query_limit(app_context.limits) == 7
    r = tab.run_evaluation(app_context, tab.SAMPLE_LABEL, None, [], ["bm25"], "", "memory", 0, 0, [])
    assert r.report is not None and "7 of 181 queries evaluated" in r.status
    assert "The set has 181 judged queries; the app evaluates at most 7 per run" in r.status
    asked = tab.run_evaluation(app_context, tab.SAMPLE_LABEL, None, [], ["bm25"], "", "memory", 20, 0, [])
    assert "You asked for 20 queries" in asked.status and "7 of 181" in asked.status
    within = tab.run_evaluation(app_context, tab.SAMPLE_LABEL, None, [], ["bm25"], "", "memory", 5, 0, [])
    assert "5 of 181" in within.status and "per run" not in within.status


def test_the_best_dev_weight_becomes_the_search_tabs_default(app_context, beir_zip, monkeypatch):
    """Evaluate's weight curve on a corpus -> this visitor's Search default for that model and corpus only
    (other visitors: tests/test_visitors.py)."""
    from sparse_demo.ui import search as search_tab

    mine_weights = svc.TunedWeights()  # this visitor's (ctx.tuned_weights.of(session) in the app)
    up = tab.load_input(app_context, str(beir_zip))
    r = tab.run_evaluation(
        app_context,
        tab.UPLOAD_LABEL,
        up.eval_set,
        ["tiny-a"],
        ["bm25", "best"],
        "0.5",
        "memory",
        0,
        0,
        [],
        tuned=mine_weights,
    )
    assert r.report is not None and len(r.report.weight_sweeps) == 1, r.status
    sweep = r.report.weight_sweeps[0]
    assert len(mine_weights) == 1 and "the Search tab now uses it" in r.chart_status

    corpus = search_tab.load_upload(app_context, str(beir_zip)).corpus  # the same documents, read by the Search tab
    session = svc.SearchSession()
    query = "당뇨병 치료"
    tuned = search_tab.run_search(
        app_context,
        session,
        query,
        search_tab.UPLOAD_LABEL,
        corpus,
        "tiny-a",
        method="hybrid",
        weight=None,
        top_k=3,
        tuned=mine_weights,
    )
    assert tuned.outcome is not None and tuned.outcome.weight == sweep.best_weight, tuned.status
    assert (
        f"weight {sweep.best_weight:g} tuned by the Evaluate tab for this model and corpus (best ndcg@10 "
        f"on all {sweep.dev_queries} queries" in tuned.status
    )
    mine = search_tab.run_search(
        app_context,
        session,
        query,
        search_tab.UPLOAD_LABEL,
        corpus,
        "tiny-a",
        method="hybrid",
        weight=0.85,
        top_k=3,
        tuned=mine_weights,
    )
    assert mine.outcome.weight == 0.85 and "tuned by" not in mine.status  # the user's slider wins
    other = dataclasses.replace(corpus, documents=corpus.documents[:5])  # another corpus: no tuned weight
    fallback = search_tab.run_search(
        app_context,
        session,
        query,
        search_tab.UPLOAD_LABEL,
        other,
        "tiny-a",
        method="hybrid",
        weight=None,
        top_k=3,
        tuned=mine_weights,
    )
    assert fallback.outcome.weight == 0.5 and "default weight 0.5" in fallback.status
    assert "tuned by the Evaluate tab" not in fallback.status

"""Links that open a view: the query string both ways, and what opening one fills and answers (public mode
included: a link loads only what the visitor could type)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pytest

from sparse_demo.ui import compare, explore
from sparse_demo.ui.common import EXAMPLE_QUERIES
from sparse_demo.ui.links import TAB_IDS, View, load_updates, parse_view, picker_values, view_query

UPDATE = gr.update()


@pytest.mark.parametrize(
    "view",
    [
        View("compare", "전세 보증금 & 월세 = 50%? #1", "tiny-a", "/models/x y"),
        View("explore", "당뇨병", None, None),
        View("evaluate"),
    ],
)
def test_view_round_trip(view):
    from urllib.parse import parse_qsl, urlsplit

    link = "http://host/app" + view_query(view)
    assert parse_view(dict(parse_qsl(urlsplit(link).query))) == view


def test_parse_view_edges():
    assert parse_view({}) is None and parse_view({"q": "당뇨병"}) is None  # no tab: the page's own start
    assert parse_view({"tab": "nonsense"}).tab == "explore"
    assert parse_view({"tab": "search", "q": "x" * 5000}).q == "x" * 2000
    assert set(TAB_IDS) == {"explore", "compare", "search", "finetune", "evaluate"}
    with pytest.raises(ValueError, match="unknown tab"):
        view_query(View("nope"))
    # a name the pickers offer selects it; anything else goes into the folder box as typed
    assert picker_values("tiny-b", ["tiny-a", "tiny-b"], "tiny-a") == ("tiny-b", "")
    assert picker_values("/srv/m", ["tiny-a"], "tiny-a") == ("tiny-a", "/srv/m")
    assert picker_values(None, ["tiny-a"], "tiny-a") == ("tiny-a", "")


def _targets(ctx):
    with gr.Blocks():
        vm = gr.State({})
        with gr.Tabs():
            with gr.Tab("Explore", id="explore"):
                ex = explore.build_tab(ctx, vm)
            with gr.Tab("Compare", id="compare"):
                cp = compare.build_tab(ctx, vm)
    return ex, cp


def _split(out, ex, cp):
    """(tab update, explore fields, explore outputs, compare fields, compare outputs)."""
    i = 1
    parts = []
    for t in (ex, cp):
        parts.append(out[i : i + len(t.fields)])
        i += len(t.fields)
        parts.append(out[i : i + len(t.outputs)])
        i += len(t.outputs)
    assert i == len(out)
    return (out[0], *parts)


@pytest.mark.slow
def test_no_link_answers_the_first_example_in_explore(app_context):
    ex, cp = _targets(app_context)
    out = load_updates(None, [ex, cp], app_context.model_choices(), {}, None, EXAMPLE_QUERIES[0])
    tab, ex_fields, ex_out, cp_fields, cp_out = _split(out, ex, cp)
    assert tab == UPDATE and all(f == UPDATE for f in ex_fields + cp_fields + cp_out)
    status, leakage, table, _chart = ex_out
    assert "tokens encoded" in status and "in context" in leakage
    assert len(table) == 20 and all(s in EXAMPLE_QUERIES[0] for s in table["from text"])


@pytest.mark.slow
def test_link_opens_compare_with_its_answer(app_context):
    ex, cp = _targets(app_context)
    view = parse_view({"tab": "compare", "q": "전세 보증금", "a": "tiny-b", "b": "tiny-a"})
    out = load_updates(view, [ex, cp], app_context.model_choices(), {}, None, EXAMPLE_QUERIES[0])
    tab, ex_fields, ex_out, cp_fields, cp_out = _split(out, ex, cp)
    assert tab.selected == "compare"
    assert all(f == UPDATE for f in ex_fields + ex_out)  # Explore is not answered behind a link
    assert cp_fields == ["전세 보증금", "tiny-b", "", "tiny-a", ""]
    status, metrics, aligned = cp_out[:3]
    assert "A = tiny-b" in status and "B = tiny-a" in status and "Jaccard" in metrics
    assert set(aligned["status"]) <= {"both", "only_a", "only_b"} and len(aligned) >= 20


@pytest.mark.slow
def test_link_with_a_failed_model_b_shows_only_a(app_context):
    ex, cp = _targets(app_context)
    view = parse_view({"tab": "compare", "q": "당뇨병", "a": "tiny-a", "b": "missing"})
    out = load_updates(view, [ex, cp], app_context.model_choices(), {}, None, EXAMPLE_QUERIES[0])
    status, metrics, aligned, _chart, sides = _split(out, ex, cp)[4][:5]
    assert "Model B (missing) could not be loaded" in status and "\n\n" not in status
    assert "only_a" not in set(aligned["status"]) and "alone" in metrics
    assert list(sides.columns) == ["figure", "A: tiny-a"]


@pytest.mark.slow
def test_public_link_loads_only_what_a_visitor_could_type(presets_file, tiny_model_dir):
    from sparse_demo.config import load_settings
    from sparse_demo.models import NOT_AVAILABLE
    from sparse_demo.ui.common import AppContext

    env = {"SPARSE_DEMO_MODELS": str(presets_file), "SPARSE_DEMO_DEVICE": "cpu", "SPARSE_DEMO_MODEL_SOURCES": "public"}
    ctx = AppContext.create(load_settings(env))
    ex, cp = _targets(ctx)
    before = ctx.registry.loads
    # a server folder (not under an allowed root) in a link goes into the folder box and is refused
    view = parse_view({"tab": "explore", "q": "당뇨병", "a": str(tiny_model_dir)})
    out = load_updates(view, [ex, cp], ctx.model_choices(), {}, None, EXAMPLE_QUERIES[0])
    _tab, ex_fields, ex_out, *_ = _split(out, ex, cp)
    assert ex_fields == ["당뇨병", ctx.default_model(), str(tiny_model_dir)]
    assert NOT_AVAILABLE.split(".")[0] in ex_out[0] and "weight" not in ex_out[2].columns
    assert ctx.registry.loads == before  # nothing was loaded
    # a preset name in a link loads as if picked
    ok = load_updates(
        parse_view({"tab": "explore", "q": "당뇨병", "a": "tiny-b"}), [ex, cp], ctx.model_choices(), {}, None, ""
    )
    assert "tiny-b" in _split(ok, ex, cp)[2][0]


@pytest.mark.slow
def test_link_opens_search_with_its_answer(app_context):
    """A link to the Search tab searches the bundled sample with the link's query and model, every other
    setting as the page starts (its gold passages, read from the sample's qrels here, come back in the top 10)."""
    import json

    from sparse_demo.ui import search

    with gr.Blocks():
        vm = gr.State({})
        with gr.Tabs(), gr.Tab("Search", id="search"):
            sr = search.build_tab(app_context, vm)
    q = "당뇨병 치료 방법"
    view = parse_view({"tab": "search", "q": q, "a": "tiny-b"})
    tab, *rest = load_updates(view, [sr], app_context.model_choices(), {}, None, EXAMPLE_QUERIES[0])
    fields, (status, results, *_others) = rest[: len(sr.fields)], rest[len(sr.fields) :]
    assert tab.selected == "search" and fields == [q, "tiny-b", ""]
    assert isinstance(status, str) and "tiny-b" in status, status
    qrels = Path(__file__).resolve().parents[1] / "assets" / "corpus" / "ko_sample" / "qrels" / "test.tsv"
    queries = [json.loads(line) for line in (qrels.parent.parent / "queries.jsonl").read_text().splitlines()]
    qid = next(r["_id"] for r in queries if r["text"] == q)
    gold = {line.split("\t")[1] for line in qrels.read_text().splitlines()[1:] if line.split("\t")[0] == qid}
    assert len(results) == 10 and gold & set(results["id"]), (gold, list(results["id"]))

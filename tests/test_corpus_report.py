"""Corpus report: hand-computed figures, the encode CLI as an independent source, collapse warnings."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from cli_process import run_sparse_demo

from sparse_demo.corpus_report import (
    CollapseThresholds,
    ReportCache,
    compare_reports,
    corpus_report,
    input_matrix,
    report_from_vectors,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "corpus" / "ko_sample" / "corpus.jsonl"
CONTENT, STOP, SPECIAL, PUNCT = 0, 1, 2, 3


def sample_texts(n: int | None = None) -> list[str]:
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows[:n]]


# ---------------------------------------------------------------------- pure core, by hand
#            a     은    <s>   .     b
TOKENS = ["▁a", "▁은", "<s>", ".", "▁b"]
CATS = np.array([CONTENT, STOP, SPECIAL, PUNCT, CONTENT])
W = np.array(
    [
        [1.0, 0.5, 0.0, 0.0, 0.0],  # d0: a, 은
        [2.0, 0.0, 0.0, 0.0, 0.0],  # d1: a
        [0.0, 0.0, 0.0, 0.0, 0.0],  # d2: empty
        [0.2, 0.1, 0.3, 0.4, 0.6],  # d3: all five; 은 is the 5th heaviest (0.6 .4 .3 .2 .1)
    ]
)
INPUTS = [[0], [4], [], [0, 1, 2]]  # d0 typed "a", d1 typed "b" only, d3 typed a, 은, <s>


@pytest.fixture(scope="module")
def hand():
    return corpus_report(
        sp.csr_matrix(W),
        TOKENS,
        CATS,
        inputs=input_matrix(INPUTS, 5),
        queries=sp.csr_matrix(np.array([[1.0, 0, 0, 0, 1.0], [0.5, 0, 0, 0, 0]])),
        doc_top_k=5,
    )


def test_per_token_figures_match_a_hand_computation(hand):
    rows = {r.raw: r for r in hand.tokens.itertuples()}
    a = rows["▁a"]
    assert (a.df, a.mass, a.max_weight) == (3, pytest.approx(3.2), 2.0)
    assert a.mean_weight == pytest.approx(3.2 / 3) and a.df_share == pytest.approx(0.75)
    assert a.expansion_df == 1 and a.expansion_share == pytest.approx(1 / 3)  # d1 did not type "a"
    assert rows["▁b"].expansion_df == 1  # d3 did not type "b"; d1 did but b is not active there
    assert rows["▁은"].df == 2 and rows["▁은"].category == "stopword" and rows["▁은"].token == "은"
    assert rows["<s>"].category == "special" and rows["."].category == "punctuation"
    assert hand.tokens["raw"].tolist()[0] == "▁a"  # by df, then mass
    total = W.sum()
    assert hand.tokens["mass_share"].sum() == pytest.approx(1.0)
    assert rows["▁b"].mass_share == pytest.approx(0.6 / total)


def test_totals_match_a_hand_computation(hand):
    t = hand.totals
    total = W.sum()  # 5.1
    assert (t.documents, t.empty_documents, t.max_active_dims, t.distinct_tokens) == (4, 1, 5, 5)
    assert t.mean_active_dims == pytest.approx((2 + 1 + 0 + 5) / 4) and t.median_active_dims == 1.5
    assert t.capped_documents == 1  # d3 has exactly doc_top_k = 5 dims
    assert t.stopword_mass_ratio == pytest.approx(0.6 / total)
    assert t.special_mass_ratio == pytest.approx(0.3 / total)
    assert t.punctuation_mass_ratio == pytest.approx(0.4 / total)
    assert t.mean_doc_stopword_mass_ratio == pytest.approx((0.5 / 1.5 + 0 + 0.1 / 1.6) / 3)
    assert t.stopword_top5_share == pytest.approx(2 / 3)  # d0 and d3 (5th slot) of three non-empty
    # expansions: d0's 은 (0.5), d1's a (2.0), d3's . (0.4) and b (0.6)
    assert t.expansion_mass_ratio == pytest.approx(3.5 / total)
    assert t.always_on_tokens == 1 and t.always_on_mass_ratio == pytest.approx(3.2 / total)  # only a: df 3 > 2
    # float32 weights and int32 rows per posting, int32 pointers for 5 tokens + 1 (scipy's CSC)
    assert t.posting_entries == 8 and t.memory_index_bytes == 8 * 4 + 8 * 4 + 6 * 4
    from sparse_demo.index.base import IndexDocument
    from sparse_demo.index.memory import MemoryBackend  # the memory index reports the same size itself

    backend = MemoryBackend()
    backend.add(
        [
            IndexDocument(f"d{i}", "x", [], {TOKENS[j]: float(v) for j, v in enumerate(row) if v})
            for i, row in enumerate(W)
            if row.any()
        ]
    )
    assert backend.sparse.nbytes == t.memory_index_bytes
    # p_q = [1, 0, 0, 0, .5]; p_d = [.75, .5, .25, .25, .25]
    assert t.flops_per_pair == pytest.approx(0.75 + 0.5 * 0.25)
    assert t.postings_per_query == pytest.approx(4 * (0.75 + 0.125))
    assert [b.documents for b in hand.histogram] == [1, 1, 1, 0, 0, 1]
    assert any("after the document top-k cap" in n for n in hand.notes)


def test_top5_tie_break_is_by_token_id():
    # six tokens of equal weight: the top 5 are ids 0..4; a stopword at id 5 is out, at id 4 in
    w = sp.csr_matrix(np.ones((1, 6)))
    out = corpus_report(w, [f"t{i}" for i in range(6)], np.array([0, 0, 0, 0, 0, STOP]))
    assert out.totals.stopword_top5_share == 0.0
    inside = corpus_report(w, [f"t{i}" for i in range(6)], np.array([0, 0, 0, 0, STOP, 0]))
    assert inside.totals.stopword_top5_share == 1.0


def test_sorting_json_and_surface_keys(hand):
    assert hand.top_tokens(2, "mass")["raw"].tolist() == ["▁a", "▁은"]  # 은 ties b at 0.6: lower id first
    assert hand.top_tokens(2, "max_weight")["raw"].tolist() == ["▁a", "▁b"]
    payload = hand.to_json(top=2)
    json.dumps(payload)  # plain Python only
    assert {"token", "df", "mean_weight", "mass", "category"} <= set(payload["tokens"][0])
    assert {
        "documents",
        "empty_documents",
        "mean_active_dims",
        "stopword_mass_ratio",
        "special_mass_ratio",
        "posting_entries",
    } <= set(payload["totals"])
    # ▁a and a share the surface key "a": a document with both counts once
    w = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]]))
    r = corpus_report(w, ["▁a", "a", "▁c"], np.zeros(3, dtype=int), keys=["a", "a", "c"])
    row = r.surfaces.set_index("key").loc["a"]
    assert (row["df"], row["mass"], row["tokens"]) == (2, 4.0, "a ▁a")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"weights": np.ones((2, 5))}, "scipy sparse matrix"),
        ({"tokens": TOKENS[:4]}, "one entry per vocabulary column"),
        ({"categories": np.array([0, 1, 2, 3, 9])}, "category codes index content, stopword"),
        ({"weights": sp.csr_matrix(-np.ones((1, 5)))}, "must be >= 0"),
        ({"inputs": input_matrix([[0]], 5)}, "input matrix shape"),
        ({"queries": sp.csr_matrix(np.ones((1, 3)))}, "query matrix has 3 columns"),
        ({"doc_top_k": 0}, "doc_top_k must be >= 1 or None"),
        ({"keys": ["a"]}, "keys (1) must have one entry per vocabulary column"),
    ],
)
def test_bad_input_gets_one_clear_message(kwargs, needle):
    args = {"weights": sp.csr_matrix(W), "tokens": TOKENS, "categories": CATS, **kwargs}
    with pytest.raises(ValueError, match=None) as err:
        corpus_report(args.pop("weights"), args.pop("tokens"), args.pop("categories"), **args)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_options_name_the_choices(hand):
    with pytest.raises(ValueError, match="choose one of df, mass, mean_weight"):
        hand.top_tokens(5, "weight")
    with pytest.raises(ValueError, match="between 0 and 1"):
        CollapseThresholds(empty_share=2.0)
    with pytest.raises(ValueError, match="out of range|must lie in"):
        input_matrix([[7]], 5)


def test_empty_corpus_is_not_a_crash():
    r = corpus_report(sp.csr_matrix((0, 3)), ["a", "b", "c"], np.zeros(3, dtype=int))
    assert r.totals.documents == 0 and not r.collapse.collapsed and r.tokens.empty


def test_cache_builds_once():
    cache = ReportCache(max_reports=1)
    calls = []

    def build():
        calls.append(1)
        return corpus_report(sp.csr_matrix(W), TOKENS, CATS)

    first = cache.get_or_build(("m", "c"), build)
    assert cache.get_or_build(("m", "c"), build) is first and len(calls) == 1
    cache.get_or_build(("m2", "c"), build)
    assert len(cache) == 1 and cache.get(("m", "c")) is None


# ---------------------------------------------------------------------- real (tiny) models
@pytest.fixture(scope="module")
def small_vocab_model(tmp_path_factory) -> Path:
    """A random tiny MLM with a small tokenizer trained on the sample corpus (every character + 300 pieces)."""
    import torch

    from sparse_demo.modeling import make_mlm, train_tokenizer

    torch.set_num_threads(1)
    texts = sample_texts()
    tok = train_tokenizer(texts, vocab_size=len(set("".join(texts))) + 300)
    model = make_mlm(tok, "tiny", seed=4)
    path = tmp_path_factory.mktemp("cr_tiny")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _encoder(path: Path, bias: float | None = None):
    import torch

    from sparse_demo.encoder import SpladeEncoder

    enc = SpladeEncoder.load(str(path), device="cpu")
    if bias is not None:
        with torch.no_grad():
            enc.model.get_output_embeddings().bias.fill_(bias)
    return enc


def _run_cli(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SPARSE_DEMO_DEVICE": "cpu"}
    proc = run_sparse_demo(args, env=env, cwd=ROOT, timeout=600, text=True)  # a new process (tests/cli_process.py)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_figures_equal_an_independent_computation_from_the_encode_cli(small_vocab_model, tmp_path):
    cap = 40
    texts = sample_texts(12)
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    with (tmp_path / "corpus.jsonl").open("w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"_id": f"d{i}", "text": t}, ensure_ascii=False) + "\n")
    encoded = [
        json.loads(line)
        for line in _run_cli(
            "encode",
            "--model",
            str(small_vocab_model),
            "--json",
            "--top-k",
            "100000",
            "--no-pos-rule",
            "--file",
            str(tmp_path / "texts.txt"),
        ).splitlines()
    ]
    report = json.loads(
        _run_cli(
            "corpus-report",
            "--corpus",
            str(tmp_path / "corpus.jsonl"),
            "--model",
            str(small_vocab_model),
            "--doc-top-k",
            str(cap),
            "--no-pos-rule",
            "--json",
            "--top",
            "100000",
        )
    )

    # independent: the encode rows (full vector, weight order), special tokens dropped, first `cap` kept
    df, mass, exp_df, cat = Counter(), defaultdict(float), Counter(), {}
    total = stop = context_stop = special = 0.0
    top5 = 0
    for e in encoded:
        kept = [r for r in e["tokens"] if r["category"] != "special"][:cap]
        top5 += any(r["vocab_category"] == "stopword" for r in kept[:5])
        for r in kept:
            df[r["raw"]] += 1
            mass[r["raw"]] += r["weight"]
            exp_df[r["raw"]] += r["origin"] == "expansion"
            cat[r["raw"]] = r["vocab_category"]  # the report's per-token table: by vocabulary entry
            total += r["weight"]
            stop += r["weight"] if r["vocab_category"] == "stopword" else 0.0
            context_stop += r["weight"] if r["category"] == "stopword" else 0.0  # judged in each text
    got = {r["raw"]: r for r in report["tokens"]}
    assert set(got) == set(df)
    for raw, n in df.items():
        assert got[raw]["df"] == n, raw
        assert got[raw]["mass"] == pytest.approx(mass[raw], abs=1e-4), raw
        assert got[raw]["mean_weight"] == pytest.approx(mass[raw] / n, abs=1e-4), raw
        assert got[raw]["category"] == cat[raw], raw
        assert got[raw]["expansion_df"] == exp_df[raw], raw
    t = report["totals"]
    assert t["documents"] == len(texts) and t["posting_entries"] == sum(df.values())
    assert t["stopword_mass_ratio"] == pytest.approx(stop / total, abs=1e-6)
    assert t["context_stopword_mass_ratio"] == pytest.approx(context_stop / total, abs=1e-6)
    assert t["special_mass_ratio"] == pytest.approx(special / total)
    assert t["stopword_top5_share"] == pytest.approx(top5 / len(texts))
    assert t["mean_active_dims"] == pytest.approx(sum(df.values()) / len(texts))


def test_collapsed_model_gets_the_warning(small_vocab_model):
    enc = _encoder(small_vocab_model, bias=-1e4)  # every logit negative: every vector empty
    from sparse_demo.search import encode_corpus, load_sample_corpus

    corpus = load_sample_corpus()
    corpus.documents = corpus.documents[:40]
    docs = encode_corpus(corpus, enc, doc_top_k=512).documents
    r = report_from_vectors(enc, [d.sparse for d in docs], [d.text for d in docs], doc_top_k=512)
    assert r.totals.empty_documents == 40
    assert r.collapse.collapsed and "empty" in r.collapse.kinds
    assert "no active dimension" in r.collapse.message


def test_saturated_model_gets_the_warning(small_vocab_model):
    enc = _encoder(small_vocab_model, bias=1e4)  # every logit positive: every dimension on
    from sparse_demo.search import encode_corpus, load_sample_corpus

    corpus = load_sample_corpus()
    corpus.documents = corpus.documents[:40]
    capped = encode_corpus(corpus, enc, doc_top_k=64)
    r = report_from_vectors(
        enc, [d.sparse for d in capped.documents], None, doc_top_k=64, capped_documents=capped.pruned
    )
    assert r.collapse.collapsed and "capped" in r.collapse.kinds and "top-64 cap" in r.collapse.message
    uncapped = encode_corpus(corpus, enc, doc_top_k=None).documents
    r2 = report_from_vectors(
        enc, [d.sparse for d in uncapped], None, doc_top_k=None, thresholds=CollapseThresholds(dense_dims=300)
    )
    assert r2.totals.mean_active_dims == enc.vocab_size - len(enc.special_ids)
    assert r2.collapse.collapsed and {"dense", "always_on"} <= set(r2.collapse.kinds)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory) -> Path:
    """A tiny model trained from scratch (lexical init) for a few steps on the bundled pairs.

    Longer runs of this tiny recipe drift towards saturation (25 steps: ~500 active dimensions per
    document, which the report flags), so the run is kept short.
    """
    from sparse_demo.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("cr_train")
    config = TrainConfig(
        base="new",
        size="tiny",
        tokenizer_vocab_size=2500,
        batch_size=16,
        lr=2e-3,
        epochs=5.0,
        max_steps=5,
        time_limit_s=None,
        eval_every=0,
        eval_distractors=0,
        max_length=96,
        query_max_length=24,
        bf16="off",
        output_dir=str(tmp / "runs"),
        seed=0,
        num_threads=1,
        extra_vocab_texts=sample_texts(),
    )
    result = train(config, ROOT / "assets" / "pairs" / "sample_pairs.jsonl")
    assert result.model_dir is not None
    return result.model_dir


@pytest.mark.slow
def test_trained_model_gets_no_warning_and_sits_beside_another(trained_model, small_vocab_model):
    from sparse_demo.search import build_index, load_sample_corpus

    corpus = load_sample_corpus()
    cache = ReportCache()
    from sparse_demo.corpus_report import report_for_index

    trained = report_for_index(build_index(corpus, _encoder(trained_model)), cache=cache)
    assert not trained.collapse.collapsed, trained.collapse.message
    assert trained.totals.empty_documents < trained.totals.documents / 2
    assert trained.totals.flops_per_pair is not None and trained.totals.queries > 0
    again = report_for_index(build_index(corpus, _encoder(trained_model)), cache=cache)
    assert again is trained and cache.builds == 1  # same model fingerprint and corpus: cached

    other = report_for_index(build_index(corpus, _encoder(small_vocab_model)), cache=cache)
    cmp = compare_reports(trained, other)
    assert cmp.headline.set_index("figure").loc["documents", "change"] == 0
    top = cmp.top_changes(5, "df")
    assert len(top) == 5 and top["df_share_change"].abs().is_monotonic_decreasing
    # surface keys join two different vocabularies: the "다" of both models is one row
    assert (cmp.changes["key"] == "다").sum() <= 1


# ---------------------------------------------------------------------- Search tab accordion
@pytest.mark.slow
def test_accordion_handler_one_model_and_side_by_side(app_context):
    import gradio as gr

    from sparse_demo.corpus import Corpus, Document
    from sparse_demo.search import SearchSession
    from sparse_demo.ui.common import model_picker
    from sparse_demo.ui.corpus_report import build_accordion, compute_corpus_report
    from sparse_demo.ui.search import UPLOAD_LABEL

    corpus = Corpus("mini", [Document(f"d{i}", t) for i, t in enumerate(sample_texts(12))])
    session = SearchSession()
    one = compute_corpus_report(app_context, session, UPLOAD_LABEL, corpus, "tiny-a")
    assert one.report is not None, one.status
    assert "after the document top-k cap" in one.status and "posting_entries" in one.status
    assert list(one.table.columns)[:3] == ["token", "category", "df"] and len(one.table) > 0
    assert one.scatter is not None and one.histogram is not None
    assert Path(one.csv).read_text(encoding="utf-8-sig").startswith("token,raw,id,category,df")
    assert json.loads(Path(one.json).read_text(encoding="utf-8"))["totals"]["documents"] == 12
    again = compute_corpus_report(app_context, session, UPLOAD_LABEL, corpus, "tiny-a")
    assert again.report is one.report  # cached per model fingerprint and corpus

    two = compute_corpus_report(app_context, session, UPLOAD_LABEL, corpus, "tiny-a", model_b_choice="tiny-b")
    assert two.comparison is not None and len(two.changes) > 0, two.status
    assert "tiny-b" in two.status or str(two.comparison.b.model) in two.status
    payload = json.loads(Path(two.json).read_text(encoding="utf-8"))
    assert {"a", "b", "headline", "changes_by_df", "changes_by_mass"} <= set(payload)

    bad = compute_corpus_report(app_context, session, UPLOAD_LABEL, None, "tiny-a")
    assert "Upload a corpus first" in bad.status and bad.report is None

    with gr.Blocks():  # the wiring the Search tab uses builds without error
        choice = gr.Radio([UPLOAD_LABEL], value=UPLOAD_LABEL)
        model, folder = model_picker(app_context, "t")
        build_accordion(
            app_context,
            session,
            corpus_choice=choice,
            uploaded=gr.State(corpus),
            model=model,
            folder=folder,
            backend=gr.Radio(["memory"], value="memory"),
            visitor_models=gr.State({}),
        )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["corpus-report", "--sort", "weight"], "invalid choice: 'weight'"),
        (["corpus-report", "--top", "0"], "expected an integer >= 1"),
        (["corpus-report", "--corpus", "/nonexistent/corpus.jsonl", "--model", "x"], "corpus.jsonl"),
    ],
)
def test_cli_bad_input_is_one_error_line(argv, needle, capsys):
    from sparse_demo.cli import main

    try:
        status = main(argv)
    except SystemExit as exc:  # argparse usage errors exit
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("error:") and "\n" not in err and needle in err


def test_accordion_in_a_browser(app_context, browser):
    """The accordion computes, shows the headline table and both charts, and offers the downloads."""
    import gradio as gr
    from conftest import free_port, wait_for

    from sparse_demo.corpus import Corpus, Document
    from sparse_demo.search import SearchSession
    from sparse_demo.ui.common import model_picker
    from sparse_demo.ui.corpus_report import build_accordion
    from sparse_demo.ui.search import UPLOAD_LABEL

    corpus = Corpus("mini", [Document(f"d{i}", t) for i, t in enumerate(sample_texts(10))])
    with gr.Blocks() as demo:
        choice = gr.Radio([UPLOAD_LABEL], value=UPLOAD_LABEL)
        model, folder = model_picker(app_context, "t")
        build_accordion(
            app_context,
            SearchSession(),
            corpus_choice=choice,
            uploaded=gr.State(corpus),
            model=model,
            folder=folder,
            backend=gr.Radio(["memory"], value="memory"),
            visitor_models=gr.State({}),
        )
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("Corpus report").first.click()
        page.locator("#corpus-report-run").click()
        wait_for(lambda: "posting_entries" in page.locator("#corpus-report-status").inner_text(), timeout=240)
        text = page.locator("#corpus-report-status").inner_text()
        assert "after the document top-k cap" in text and "longest posting lists" in text
        wait_for(
            lambda: page.locator("#corpus-report-scatter canvas, #corpus-report-scatter svg").count() > 0, timeout=60
        )
        wait_for(lambda: page.locator("#corpus-report-hist canvas, #corpus-report-hist svg").count() > 0, timeout=60)
        wait_for(lambda: page.locator("#corpus-report-csv a, #corpus-report-csv [download]").count() > 0, timeout=60)
    finally:
        context.close()
        demo.close()


def test_index_input_ids_give_the_same_report_as_tokenising_again(small_vocab_model):
    """The report over the index's kept input ids equals the one that re-tokenises every document."""
    from sparse_demo.corpus_report import report_for_index
    from sparse_demo.search import build_index, load_sample_corpus

    enc = _encoder(small_vocab_model)
    corpus = load_sample_corpus()
    corpus.documents = corpus.documents[:30]
    index = build_index(corpus, enc, "memory", doc_top_k=48)
    assert index.input_ids is not None and len(index.input_ids) == 30
    texts = [f"{d.title}\n{d.text}" if d.title else d.text for d in index.documents]
    want = enc.tokenizer(texts, add_special_tokens=True, truncation=True, max_length=enc.max_length)["input_ids"]
    assert [r.tolist() for r in index.input_ids] == want  # the ids are the tokenizer's own
    kept = report_for_index(index, queries=[], cache=ReportCache())
    again = report_from_vectors(
        enc,
        [d.sparse for d in index.documents],
        texts,
        doc_top_k=48,
        capped_documents=index.stats.pruned_docs,
        corpus_name=corpus.name,
    )
    assert kept.tokens.equals(again.tokens)
    assert kept.totals == again.totals
    assert kept.tokens["expansion_df"].sum() > 0  # the figures the ids feed are really there
    from_lists = report_from_vectors(
        enc,
        [d.sparse for d in index.documents],
        None,
        input_ids=want,
        doc_top_k=48,
        capped_documents=index.stats.pruned_docs,
        corpus_name=corpus.name,
    )
    assert from_lists.tokens.equals(kept.tokens)


def test_the_apps_picker_refresh_keeps_none_in_the_second_model_picker(app_context):
    """app.py refreshes every model picker's choices; the accordion's second picker keeps its "(none)" first."""
    import gradio as gr

    from sparse_demo.search import SearchSession
    from sparse_demo.ui.common import model_dropdowns, model_picker, picker_updates
    from sparse_demo.ui.corpus_report import NO_SECOND, build_accordion

    with gr.Blocks() as demo:
        choice = gr.Radio(["x"], value="x")
        model, folder = model_picker(app_context, "t")
        build_accordion(
            app_context,
            SearchSession(),
            corpus_choice=choice,
            uploaded=gr.State(None),
            model=model,
            folder=folder,
            backend=gr.Radio(["memory"], value="memory"),
            visitor_models=gr.State({}),
        )
    pickers = model_dropdowns(demo)
    second = [i for i, p in enumerate(pickers) if p.elem_id == "corpus-report-b-model"]
    assert second, [p.elem_id for p in pickers]
    choices = picker_updates(app_context, pickers, {})[second[0]]["choices"]
    assert choices[0] == NO_SECOND and "tiny-a" in choices


def test_context_stopword_mass_by_hand(tiny_model_dir):
    """전 of 전세/NNG is content in context, 은 (JX) a stopword either way, an expansion keeps its entry's category."""
    from sparse_demo.analysis import classify_token
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.korean import StopwordRule

    enc = SpladeEncoder.load(str(tiny_model_dir), device="cpu")
    text = "전세 보증금은 돌려받는다"
    pieces = enc.tokenizer.convert_ids_to_tokens(enc.tokenizer(text)["input_ids"])
    wanted = {"▁전", "은", "보증", "▁"}
    if not wanted <= set(pieces) or enc.tokenizer.convert_tokens_to_ids("▁있습니다") == enc.tokenizer.unk_token_id:
        pytest.skip(f"this tokenizer splits the text otherwise: {pieces}")
    rule = StopwordRule()
    category = {t: classify_token(t, enc.tokenizer.convert_tokens_to_ids(t), enc.special_ids, rule) for t in wanted}
    assert category == {"▁전": "stopword", "은": "stopword", "보증": "content", "▁": "whitespace"}
    assert (
        classify_token("▁있습니다", enc.tokenizer.convert_tokens_to_ids("▁있습니다"), enc.special_ids, rule)
        == "stopword"
    )
    vector = {"▁전": 2.0, "은": 1.0, "보증": 3.0, "▁": 0.5, "▁있습니다": 0.25}  # ▁있습니다: an expansion
    r = report_from_vectors(enc, [vector], [text], rule=rule)
    total = 6.75
    assert r.totals.stopword_mass_ratio == pytest.approx((2.0 + 1.0 + 0.25) / total)  # vocabulary-level
    assert r.totals.context_stopword_mass_ratio == pytest.approx((1.0 + 0.25) / total)  # 전 is content here
    assert report_from_vectors(enc, [vector], None, rule=rule).totals.context_stopword_mass_ratio is None

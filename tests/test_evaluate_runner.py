"""The evaluator end to end: inputs and their errors, the Search tab's runs, costs, cache, cancel, reports."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sparse_demo import search as svc
from sparse_demo.config import data_dir
from sparse_demo.corpus import Corpus, Document, Query
from sparse_demo.evaluation import (
    EncodingCache,
    EvaluationCancelled,
    evaluate,
    flops,
    index_bytes,
    load_eval_set,
    make_eval_set,
    parse_system,
    prune_sweep,
    prune_vector,
    run_metrics,
    sample_queries,
    table_csv,
    table_rows,
    to_json,
    to_markdown,
    wins_losses,
)
from sparse_demo.evaluation.report import CARD_REFERENCE, REFERENCE_NOTE

MODEL = "tiny"


@pytest.fixture(scope="module")
def small_corpus() -> Corpus:
    """14 documents of the bundled sample and the sample queries judged only on them."""
    full = svc.load_sample_corpus()
    docs = full.documents[:14]
    ids = {d.id for d in docs}
    queries = [q for q in full.queries if q.id in full.qrels and set(full.qrels[q.id]) <= ids][:6]
    qrels = {q.id: dict(full.qrels[q.id]) for q in queries}
    assert len(queries) >= 3
    return Corpus("small", docs, queries, qrels)


@pytest.fixture(scope="module")
def tiny_encoder(tiny_model_dir):
    import torch

    from sparse_demo.encoder import SpladeEncoder

    torch.set_num_threads(1)
    return SpladeEncoder.load(str(tiny_model_dir), device="cpu", name=MODEL)


@pytest.fixture(scope="module")
def cache() -> EncodingCache:
    return EncodingCache()


SYSTEMS = ["bm25", f"sparse:{MODEL}", f"hybrid:{MODEL}:0.3", f"rrf:{MODEL}", f"hybrid:{MODEL}:best"]


@pytest.fixture(scope="module")
def report(small_corpus, tiny_encoder, cache):
    return evaluate(
        make_eval_set(small_corpus),
        [parse_system(s) for s in SYSTEMS],
        {MODEL: tiny_encoder},
        cache=cache,
        trials=2000,
        resamples=500,
    )


# --------------------------------------------------------------------------- inputs
def _beir(tmp_path, docs, queries, qrels_lines):
    folder = tmp_path / "beir"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "text": t}, ensure_ascii=False) for i, t in docs), encoding="utf-8"
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "text": t}, ensure_ascii=False) for i, t in queries), encoding="utf-8"
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(qrels_lines), encoding="utf-8"
    )
    return folder


DOCS = [("d1", "당뇨병 치료 방법"), ("d2", "전세 보증금 반환"), ("d3", "감기 예방 수칙")]


def test_beir_folder_drops_unjudged_queries_and_counts_them(tmp_path):
    folder = _beir(tmp_path, DOCS, [("q1", "당뇨 치료"), ("q2", "보증금"), ("q3", "날씨")], ["q1\td1\t1", "q2\td2\t2"])
    s = load_eval_set(folder)
    assert len(s.queries) == 2 and [q.id for q in s.queries] == ["q1", "q2"]
    assert s.notes == ("1 of 3 queries have no relevance judgement and are not evaluated (first: q3).",)


@pytest.mark.parametrize(
    ("queries", "qrels", "match"),
    [
        ([("q1", "당뇨")], ["q1\td9\t1"], r"1 document id\(s\) missing from the corpus: 'd9'"),
        ([("q1", "당뇨")], ["q1\td1\t1", "q7\td1\t1"], r"1 query id\(s\) missing from the queries: 'q7'"),
        ([("q1", "당뇨")], ["q1\td1\t0"], "none of the 1 queries has a relevant document"),
    ],
)
def test_bad_qrels_give_one_clear_line(tmp_path, queries, qrels, match):
    with pytest.raises(ValueError, match=match) as info:
        load_eval_set(_beir(tmp_path, DOCS, queries, qrels))
    assert "\n" not in str(info.value)


def test_duplicate_ids_empty_corpus_and_wrong_formats(tmp_path):
    dup = Corpus("dup", [Document("d1", "가"), Document("d1", "나")], [Query("q1", "가")], {"q1": {"d1": 1}})
    with pytest.raises(ValueError, match="duplicate document ids: 'd1'"):
        make_eval_set(dup)
    dupq = Corpus("dupq", [Document("d1", "가")], [Query("q1", "가"), Query("q1", "나")], {"q1": {"d1": 1}})
    with pytest.raises(ValueError, match="duplicate query ids: 'q1'"):
        make_eval_set(dupq)
    with pytest.raises(ValueError, match="holds no document"):
        make_eval_set(Corpus("empty", []))
    with pytest.raises(ValueError, match="no judged queries"):
        make_eval_set(Corpus("plain", [Document("d1", "가")]))
    txt = tmp_path / "notes.txt"
    txt.write_text("hello", encoding="utf-8")
    with pytest.raises(ValueError, match="unsupported evaluation input 'notes.txt'; give a BEIR folder"):
        load_eval_set(txt)
    bad_pairs = tmp_path / "pairs.csv"
    bad_pairs.write_text("question,answer\n가,나\n", encoding="utf-8")
    with pytest.raises(ValueError, match="query"):
        load_eval_set(bad_pairs)
    with pytest.raises(ValueError, match="unknown benchmark"):
        from sparse_demo.evaluation.dataset import load_benchmark

        load_benchmark("msmarco:test")


def test_pairs_file_corpus_is_the_distinct_passages(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text(
        "query\tpositive\tnegative\n당뇨 치료\t당뇨병 치료 방법\t감기 예방\n"
        "보증금\t전세 보증금 반환\t당뇨병 치료 방법\n당뇨 치료\t인슐린 치료\t\n",
        encoding="utf-8",
    )
    s = load_eval_set(path)
    assert sorted(d.text for d in s.documents) == sorted(
        ["당뇨병 치료 방법", "감기 예방", "전세 보증금 반환", "인슐린 치료"]
    )
    assert len(s.queries) == 2
    by_text = {d.text: d.id for d in s.documents}
    first = s.queries[0]
    assert first.text == "당뇨 치료"
    assert s.qrels[first.id] == {by_text["당뇨병 치료 방법"]: 1, by_text["인슐린 치료"]: 1}


def test_sampling_is_seeded_and_noted(small_corpus):
    s = make_eval_set(small_corpus)
    a, b = sample_queries(s, 3, seed=5), sample_queries(s, 3, seed=5)
    assert [q.id for q in a.queries] == [q.id for q in b.queries] and len(a.queries) == 3
    assert a.total_queries == len(s.queries) and f"Sampled 3 of {len(s.queries)}" in a.notes[-1]
    assert len(s.queries) > 3 and len(a) == len(s)  # the documents are all kept
    assert sample_queries(s, 10_000) is s
    with pytest.raises(ValueError, match="positive number"):
        sample_queries(s, 0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("bm25:x", "takes no model"),
        ("sparse", "needs a model"),
        ("dense:m", "unknown system"),
        ("hybrid:m:1.5", r"\[0, 1\]"),
    ],
)
def test_system_parse_errors(text, match):
    with pytest.raises(ValueError, match=match):
        parse_system(text)


def test_system_labels():
    assert parse_system("hybrid:m").weight == 0.5
    assert parse_system("hybrid:m", fusion="rrf").fusion == "rrf"
    assert parse_system("hybrid:m:best").tuned
    assert parse_system("hybrid:m:best").label == "hybrid m (weight by 5-fold CV)"
    assert parse_system("hybrid:m:best", folds=10).label == "hybrid m (weight by 10-fold CV)"
    with pytest.raises(ValueError, match="at least 2 folds"):
        parse_system("hybrid:m:best", folds=1)
    assert parse_system("hybrid:org/m:0.2").model == "org/m"


# --------------------------------------------------------------------------- the same code as the Search tab
@pytest.mark.slow
def test_runs_equal_the_search_tab(report, small_corpus, tiny_encoder):
    index = svc.build_index(small_corpus, tiny_encoder)
    expected = {
        "BM25": ("bm25", {}),
        f"sparse {MODEL}": ("sparse", {}),
        f"hybrid {MODEL} (w=0.3)": ("hybrid", {"weight": 0.3}),
        f"hybrid {MODEL} (RRF)": ("hybrid", {"fusion": "rrf"}),
    }
    for label, (method, kwargs) in expected.items():
        row = report.system(label)
        for q in small_corpus.queries:
            out = svc.search(index, q.text, method=method, k=report.depth, candidates=report.depth, **kwargs)
            assert [d for d, _ in row.run[q.id]] == out.ids, (label, q.id)
            assert [s for _, s in row.run[q.id]] == pytest.approx([h.score for h in out.hits])


@pytest.mark.slow
def test_metrics_of_the_report_equal_ranx_on_its_runs(report):
    ranx = pytest.importorskip("ranx")
    qrels = ranx.Qrels(report.qrels)
    for row in report.systems:
        run = ranx.Run(
            {
                q: {d: float(len(hits) - i) for i, (d, _) in enumerate(hits)} or {"__none__": 0.0}
                for q, hits in row.run.items()
            }
        )
        theirs = ranx.evaluate(qrels, run, ["recall@1", "recall@10", "mrr@10", "ndcg@10"])
        for m, v in theirs.items():
            assert row.means[m] == pytest.approx(v, abs=1e-6), (row.label, m)


def test_significance_rows_and_baseline(report):
    base = report.systems[0]
    assert base.is_baseline and not base.significance and report.baseline == "BM25"
    for row in report.systems[1:]:
        assert set(row.significance) == {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"}
        for m, sig in row.significance.items():
            assert row.p_holm[m] >= sig.p_value
            assert sig.mean_a == pytest.approx(base.means[m]) and sig.mean_b == pytest.approx(row.means[m])
        ci = row.interval
        assert ci.low <= ci.difference <= ci.high
        assert ci.difference == pytest.approx(row.means["ndcg@10"] - base.means["ndcg@10"])


CV_LABEL = f"hybrid {MODEL} (weight by 5-fold CV)"
GRID = [round(0.1 * i, 1) for i in range(11)]


def _ndcg10_by_hand(ranked: list[str], judged: dict[str, int]) -> float:
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:10]))
    ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:10]
    return dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))


def _best_by_hand(values: dict[float, dict[str, float]], queries: list[str]) -> float:
    """The grid weight with the highest mean over ``queries``; ties: closest to 0.5, then the smaller."""
    best = None
    for w in GRID:  # ascending, so a later weight replaces only when strictly better or strictly closer
        mean = sum(values[w][q] for q in queries) / len(queries)
        if (
            best is None
            or mean > best[1] + 1e-12
            or (abs(mean - best[1]) <= 1e-12 and abs(w - 0.5) < abs(best[0] - 0.5) - 1e-9)
        ):
            best = (w, mean)
    return best[0]


@pytest.fixture(scope="module")
def hand_ndcg(report, small_corpus, tiny_encoder) -> dict[float, dict[str, float]]:
    """nDCG@10 of every query at every grid weight: the Search tab's hybrid search, the formula by hand."""
    index = svc.build_index(small_corpus, tiny_encoder)
    out = {}
    for w in GRID:
        out[w] = {}
        for q in small_corpus.queries:
            hits = svc.search(index, q.text, method="hybrid", weight=w, k=report.depth, candidates=report.depth)
            out[w][q.id] = _ndcg10_by_hand(hits.ids, report.qrels[q.id])
    return out


def test_cv_row_equals_a_hand_computation(report, hand_ndcg):
    sweep = report.weight_sweeps[0]
    row = report.system(CV_LABEL)
    qids = list(report.query_texts)
    assert sweep.model == MODEL and sweep.weights == GRID and sweep.folds == 5 and len(qids) == 6
    # the folds partition the queries, sizes differ by at most one
    fold_of = sweep.cv.fold_of
    assert sorted(fold_of) == sorted(qids) and set(fold_of.values()) == set(range(5))
    sizes = [list(fold_of.values()).count(f) for f in range(5)]
    assert max(sizes) - min(sizes) <= 1
    # each fold's weight is the best on the queries of the *other* folds, chosen here by hand
    want_fold = [_best_by_hand(hand_ndcg, [q for q in qids if fold_of[q] != f]) for f in range(5)]
    assert sweep.fold_weights == want_fold and row.fold_weights == want_fold
    # every query is scored with its fold's weight: the row's per-query values and means
    want = {q: hand_ndcg[want_fold[fold_of[q]]][q] for q in qids}
    assert row.per_query["ndcg@10"] == pytest.approx(want, abs=1e-9)
    assert row.means["ndcg@10"] == pytest.approx(sum(want.values()) / len(want), abs=1e-9)
    assert sweep.cv_mean == pytest.approx(row.means["ndcg@10"], abs=1e-12)
    # the weight offered to Search is the one chosen on all queries; the curve is the all-query mean
    assert sweep.best_weight == _best_by_hand(hand_ndcg, qids)
    assert sweep.overall == pytest.approx([sum(hand_ndcg[w].values()) / len(qids) for w in GRID], abs=1e-9)
    assert row.weight is None
    # the significance machinery runs on this row's per-query values
    base = report.systems[0]
    assert row.significance["ndcg@10"].mean_b == pytest.approx(sum(want.values()) / len(want), abs=1e-9)
    assert row.interval.difference == pytest.approx(row.means["ndcg@10"] - base.means["ndcg@10"])
    # the report says how the weights were chosen, per fold
    note = next(n for n in report.notes if "cross-validation" in n)
    assert f"folds: {', '.join(f'{w:g}' for w in want_fold)}" in note
    assert f"Chosen on all 6 queries: {sweep.best_weight:g} " in note
    assert f"5-fold CV row scores each query with a weight chosen without it: {sweep.cv.summary()}" in to_markdown(
        report
    )


def test_a_folds_weight_never_depends_on_its_own_queries():
    """Rewriting the values of one fold's queries leaves that fold's weight unchanged (and can move the others)."""
    from sparse_demo.evaluation.weights import cross_validate_weight, kfold_assignment

    qids = [f"q{i}" for i in range(10)]
    rng = np.random.default_rng(3)
    table = [{q: float(v) for q, v in zip(qids, rng.random(10))} for _ in GRID]
    cv = cross_validate_weight(GRID, table, qids, folds=5, seed=7)
    assert cv.fold_of == kfold_assignment(qids, 5, 7) and cv.fold_of != kfold_assignment(qids, 5, 8)
    moved = 0
    for f in range(5):
        poisoned = [dict(v) for v in table]
        for q in qids:
            if cv.fold_of[q] == f:  # make weight 1.0 perfect and every other weight useless on fold f
                for i, w in enumerate(GRID):
                    poisoned[i][q] = 1.0e3 if w == 1.0 else -1.0e3
        again = cross_validate_weight(GRID, poisoned, qids, folds=5, seed=7)
        assert again.fold_weights[f] == cv.fold_weights[f]
        moved += sum(a != b for g, (a, b) in enumerate(zip(again.fold_weights, cv.fold_weights)) if g != f)
    assert moved > 0  # the poison does reach the other folds, so the check above can fail


def test_cv_with_few_queries_is_leave_one_out_and_said(small_corpus, tiny_encoder, cache):
    three = Corpus(
        "three",
        small_corpus.documents,
        small_corpus.queries[:3],
        {q.id: small_corpus.qrels[q.id] for q in small_corpus.queries[:3]},
    )
    rep = evaluate(
        make_eval_set(three),
        [parse_system("bm25"), parse_system(f"hybrid:{MODEL}:best")],
        {MODEL: tiny_encoder},
        cache=cache,
        trials=100,
        resamples=100,
    )
    assert [s.label for s in rep.systems] == ["BM25", f"hybrid {MODEL} (weight by 3-fold CV)"]
    assert rep.weight_sweeps[0].folds == 3 and sorted(rep.weight_sweeps[0].cv.fold_of.values()) == [0, 1, 2]
    one = Corpus(
        "one",
        small_corpus.documents,
        small_corpus.queries[:1],
        {small_corpus.queries[0].id: small_corpus.qrels[small_corpus.queries[0].id]},
    )
    with pytest.raises(ValueError, match="needs at least 2 judged queries; this set has 1"):
        evaluate(make_eval_set(one), [parse_system(f"hybrid:{MODEL}:best")], {MODEL: tiny_encoder}, cache=cache)


def test_cost_columns_by_hand(report, small_corpus, tiny_encoder, cache):
    encoded, cached = cache.get_or_encode(small_corpus, tiny_encoder, doc_top_k=svc.DEFAULT_DOC_TOP_K)
    assert cached
    sparse = report.system(f"sparse {MODEL}")
    qvecs = [report.model_runs[MODEL].qvecs[q.id] for q in small_corpus.queries]
    dvecs = [d.sparse for d in encoded.documents]
    # FLOPS by hand: for each token, share of queries * share of documents holding it
    tokens = set().union(*qvecs)
    by_hand = sum(sum(t in q for q in qvecs) / len(qvecs) * sum(t in d for d in dvecs) / len(dvecs) for t in tokens)
    assert sparse.cost.flops == pytest.approx(by_hand)
    assert sparse.cost.doc_active == pytest.approx(np.mean([len(d) for d in dvecs]))
    assert sparse.cost.query_active == pytest.approx(np.mean([len(q) for q in qvecs]))
    # index bytes equal the memory backend's sparse CSC arrays
    index = svc.build_index(small_corpus, tiny_encoder, encoded=encoded)
    csc = index.backend.sparse._store.matrix()
    assert sparse.cost.index_bytes == csc.data.nbytes + csc.indices.nbytes + csc.indptr.nbytes
    assert sparse.cost.latency_p50_ms > 0 and sparse.cost.encode_docs_per_s > 0
    assert flops([["a"], ["a", "b"]], [["a"], ["b"]]) == pytest.approx((1.0 * 0.5) + (0.5 * 0.5))
    assert index_bytes([{"a": 1.0}, {"a": 2.0, "b": 1.0}]) == 3 * 8 + 3 * 4


def test_second_run_uses_the_cache_and_cancel_stops(small_corpus, tiny_encoder, cache, report):
    hits = cache.hits
    seen = []
    again = evaluate(
        make_eval_set(small_corpus),
        [parse_system(f"sparse:{MODEL}")],
        {MODEL: tiny_encoder},
        cache=cache,
        trials=100,
        progress=lambda f, m: seen.append(f),
    )
    assert cache.hits == hits + 1 and again.systems[0].cost.encodings_cached
    assert again.systems[0].means == report.system(f"sparse {MODEL}").means
    assert all(0.0 <= f <= 1.0 for f in seen) and seen[-1] == 1.0
    with pytest.raises(EvaluationCancelled):
        evaluate(make_eval_set(small_corpus), [parse_system("bm25")], {}, should_stop=lambda: True)


def test_evaluate_option_errors(small_corpus):
    s = make_eval_set(small_corpus)
    with pytest.raises(ValueError, match="no encoder for model"):
        evaluate(s, [parse_system("sparse:absent")], {})
    with pytest.raises(ValueError, match="memory, opensearch"):
        evaluate(s, [parse_system("bm25")], {}, backend="solr")
    with pytest.raises(ValueError, match="listed twice"):
        evaluate(s, [parse_system("bm25"), parse_system("bm25")], {})
    with pytest.raises(ValueError, match="unknown baseline"):
        evaluate(s, [parse_system("bm25")], {}, baseline="sparse x")
    with pytest.raises(ValueError, match="at least one system"):
        evaluate(s, [], {})


# --------------------------------------------------------------------------- outputs
def test_markdown_keeps_the_reference_apart(report):
    md = to_markdown(report)
    measured, reference = md.split("Reference (")
    assert "model card" not in measured and "V26 (model card)" in reference
    assert f"{report.num_queries} queries evaluated" in measured
    assert "| 40.7% | — | — | 0.4555 | 0.4806 |" in reference and REFERENCE_NOTE in reference
    assert "| BM25 (baseline) |" in measured
    assert [r.system for r in CARD_REFERENCE] == ["V26 (model card)", "BM25 (model card)"]


def test_a_run_without_significance_claims_none(report, small_corpus, tiny_encoder, cache):
    """``significance=False`` (the trainer's held-out evaluation, the benchmarks): no p column, no interval and
    no mark legend in the table, but a line saying nothing was tested; a tested run has all three."""
    untested = evaluate(
        make_eval_set(small_corpus),
        [parse_system(s) for s in SYSTEMS],
        {MODEL: tiny_encoder},
        cache=cache,
        significance=False,
    )
    md = to_markdown(untested)
    assert "not tested" in md and "paired randomization" not in md
    assert not any(k.startswith(("p (", "Δ")) for row in table_rows(untested) for k in row)
    tested = to_markdown(report)
    assert "paired randomization" in tested and "not tested" not in tested
    assert all(f"p ({report.metric}, Holm)" in row for row in table_rows(report))


def test_csv_and_json_outputs(report):
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(table_csv(report))))
    assert [r["system"] for r in rows] == [s.label for s in report.systems]
    assert float(rows[1]["ndcg@10"]) == pytest.approx(report.systems[1].means["ndcg@10"])
    data = to_json(report, runs=True)
    assert data["queries_evaluated"] == report.num_queries and data["reference"]["source"] == REFERENCE_NOTE
    assert {"recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "flops", "latency_p50_ms"} <= set(
        data["systems"][1]
    )
    assert len(data["per_query"]) == len(report.systems) * report.num_queries
    first = data["runs"][0]
    assert first["rank"] == 1 and first["relevance"] == report.qrels[first["query_id"]].get(first["doc_id"], 0)


def test_wins_and_losses_by_hand(report):
    a, b = report.systems[0], report.systems[2]
    wl = wins_losses(report, a.label, b.label)
    qrels = report.qrels
    deltas = {}
    for q in report.query_texts:  # nDCG@10 recomputed here from the runs with the formula
        vals = []
        for row in (a, b):
            ranked = [d for d, _ in row.run[q]][:10]
            dcg = sum(qrels[q].get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked))
            ideal = sorted((g for g in qrels[q].values() if g > 0), reverse=True)[:10]
            vals.append(dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal)))
        deltas[q] = vals[1] - vals[0]
    assert wl.wins == sum(d > 1e-12 for d in deltas.values())
    assert wl.losses == sum(d < -1e-12 for d in deltas.values())
    assert wl.wins + wl.losses + wl.ties == report.num_queries
    with pytest.raises(ValueError, match="no system 'nope'"):
        wins_losses(report, "nope", b.label)


# --------------------------------------------------------------------------- pruning
def test_prune_vector_by_hand():
    v = {"a": 1.0, "b": 0.5, "c": 0.05, "d": 0.5}
    assert prune_vector(v, top_k=2) == {"a": 1.0, "b": 0.5}  # ties by token
    assert prune_vector(v, max_ratio=0.1) == {"a": 1.0, "b": 0.5, "d": 0.5}
    assert prune_vector(v) == v
    with pytest.raises(ValueError, match="max_ratio"):
        prune_vector(v, max_ratio=1.0)


def test_prune_sweep_unpruned_point_equals_the_sparse_row(report):
    points = prune_sweep(report, top_ks=(4,), ratios=(0.5,))
    assert [(p.kind, p.setting) for p in points] == [
        ("none", None),
        ("doc top-k", 4),
        ("query top-k", 4),
        ("max_ratio", 0.5),
    ]
    assert points[0].ndcg10 == pytest.approx(report.system(f"sparse {MODEL}").means["ndcg@10"])
    assert points[0].flops == pytest.approx(report.system(f"sparse {MODEL}").cost.flops)
    assert points[1].doc_active <= 4 and points[2].query_active <= 4
    assert points[1].index_bytes < points[0].index_bytes and points[1].flops < points[0].flops
    assert report.prune_sweep is points


def test_charts_build_and_errors_become_messages(report):
    from sparse_demo.evaluation.charts import guarded, prune_chart, weight_chart

    chart, problem = guarded(weight_chart, report)
    assert chart is not None and problem == ""
    assert chart.to_dict()["layer"]
    points = report.prune_sweep or prune_sweep(report, top_ks=(4,), ratios=())
    for x in ("flops", "index_mb"):
        chart, problem = guarded(prune_chart, points, x)
        assert chart is not None, problem
    chart, problem = guarded(prune_chart, [], "flops")
    assert chart is None and "no pruning sweep" in problem
    chart, problem = guarded(prune_chart, points, "bogus")
    assert chart is None and "flops" in problem


# --------------------------------------------------------------------------- backends and real data
def test_opensearch_backend_gives_the_memory_table(small_corpus):
    ok, why = svc.opensearch_status()
    if not ok:
        pytest.skip(f"OpenSearch not reachable: {why}")
    s = make_eval_set(small_corpus)
    mem = evaluate(s, [parse_system("bm25")], {}, trials=100)
    osr = evaluate(s, [parse_system("bm25")], {}, backend="opensearch", trials=100)
    assert osr.systems[0].means == pytest.approx(mem.systems[0].means, abs=1e-9)
    assert (osr.systems[0].cost.opensearch_store_bytes or 0) > 0
    assert "OpenSearch store" in to_markdown(osr)


CONTENT_REFERENCE = {"recall@1": 0.910, "recall@5": 0.980, "recall@10": 0.987, "mrr@10": 0.942, "ndcg@10": 0.954}


@pytest.mark.slow
def test_bm25_on_boolq_test_reproduces_the_data_readme():
    if not (data_dir() / "kobest_boolq").is_dir():
        pytest.skip(f"shared data not found at {data_dir()}")
    s = load_eval_set("boolq:test")
    assert len(s.queries) == 1404 and len(s) == 5757
    rep = evaluate(s, [parse_system("bm25")], {}, trials=10)
    for m, ref in CONTENT_REFERENCE.items():
        assert abs(rep.systems[0].means[m] - ref) <= 0.01, (m, rep.systems[0].means[m], ref)
    per_q = run_metrics({q: [d for d, _ in rep.systems[0].run[q]] for q in rep.qrels}, rep.qrels)
    assert np.mean(list(per_q["ndcg@10"].values())) == pytest.approx(rep.systems[0].means["ndcg@10"])

"""``python -m sparse_demo evaluate``: JSON fields, files written, one-line errors."""

from __future__ import annotations

import json

import pytest

from sparse_demo import search as svc
from sparse_demo.cli import main


@pytest.fixture(scope="module")
def beir_folder(tmp_path_factory):
    """A BEIR folder of 10 sample documents and the sample queries judged on them."""
    full = svc.load_sample_corpus()
    docs = full.documents[:10]
    ids = {d.id for d in docs}
    queries = [q for q in full.queries if q.id in full.qrels and set(full.qrels[q.id]) <= ids][:4]
    folder = tmp_path_factory.mktemp("beir_cli")
    (folder / "qrels").mkdir()
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": d.id, "title": d.title, "text": d.text}, ensure_ascii=False) for d in docs),
        encoding="utf-8",
    )
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q.id, "text": q.text}, ensure_ascii=False) for q in queries), encoding="utf-8"
    )
    lines = [f"{q.id}\t{d}\t{g}" for q in queries for d, g in full.qrels[q.id].items()]
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines), encoding="utf-8")
    return folder


@pytest.mark.slow
def test_json_table_with_a_model_and_files(beir_folder, tiny_model_dir, tmp_path, capsys):
    model = str(tiny_model_dir)
    out = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "--corpus",
            str(beir_folder),
            "--system",
            "bm25",
            "--system",
            f"sparse:{model}",
            "--system",
            f"hybrid:{model}:0.5",
            "--sweep",
            "weight",
            "--sweep",
            "prune",
            "--trials",
            "200",
            "--json",
            "--out-dir",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    data = json.loads(captured.out)
    assert data["queries_evaluated"] == 4 and data["documents"] == 10
    rows = {r["system"]: r for r in data["systems"]}
    assert list(rows) == ["BM25", f"sparse {model}", f"hybrid {model} (w=0.5)"]
    for r in rows.values():
        assert {
            "recall@1",
            "recall@5",
            "recall@10",
            "mrr@10",
            "ndcg@10",
            "recall@100",
            "flops",
            "index_bytes",
            "query_active_dims",
            "doc_active_dims",
            "latency_p50_ms",
            "encode_docs_per_s",
        } <= set(r)
    assert 0.0 <= rows[f"sparse {model}"]["p_holm_ndcg@10"] <= 1.0
    assert data["weight_sweeps"][0]["best_weight"] in data["weight_sweeps"][0]["weights"]
    assert data["prune_sweep"][0]["kind"] == "none"
    assert data["reference"]["rows"][0]["system"] == "V26 (model card)"
    written = {p.name for p in out.iterdir()}
    assert {
        "table.csv",
        "runs.csv",
        "per_query.csv",
        "report.json",
        "report.md",
        "weight_curve.html",
        "prune_flops.html",
        "prune_bytes.html",
    } <= written
    assert "4 queries evaluated" in captured.err


def test_markdown_output_and_sampling(beir_folder, capsys):
    code = main(["evaluate", "--corpus", str(beir_folder), "--system", "bm25", "--sample", "2", "--seed", "3"])
    captured = capsys.readouterr()
    assert code == 0
    assert "| BM25 (baseline) |" in captured.out and "2 of 4 queries evaluated" in captured.out
    assert "Sampled 2 of 4 judged queries (seed 3)." in captured.out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--system", "dense:x"], "unknown system 'dense:x'"),
        (["--system", "bm25", "--baseline", "sparse:m"], "--baseline"),
        (["--system", "bm25", "--sweep", "prune"], "--sweep prune needs a model"),
        (["--system", "bm25", "--depth", "5"], "--depth must be >= 10"),
    ],
)
def test_bad_options_are_one_line(beir_folder, capsys, args, needle):
    code = main(["evaluate", "--corpus", str(beir_folder), *args])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1


def test_bad_inputs_are_one_line(tmp_path, capsys):
    folder = tmp_path / "b"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "당뇨병"}\n', encoding="utf-8")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "당뇨"}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("q1\td2\t1\n", encoding="utf-8")
    for corpus, needle in ((folder, "missing from the corpus: 'd2'"), (tmp_path / "none", "does not exist")):
        code = main(["evaluate", "--corpus", str(corpus), "--system", "bm25"])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.count("\n") == 1

"""Reading and validating pairs files; the benchmark loaders (skipped without ../shared/data)."""

from __future__ import annotations

import json

import pytest

from sparse_demo.config import data_dir
from sparse_demo.data import Pair, corpus_from_pairs, load_boolq, load_korsts, read_pairs
from sparse_demo.train import separate_from_heldout, split_pairs

SHARED_DATA_DIR = data_dir()


def _jsonl(rows: list[dict]) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode("utf-8")


def test_reads_csv_tsv_jsonl_alike(tmp_path):
    rows = [("당뇨병 증상", "혈당이 높아진다", "날씨가 맑다"), ("서울 맛집", "을지로 노포 냉면집", "")]
    csv_text = "query,positive,negative\n" + "\n".join(",".join(r) for r in rows)
    tsv_text = "query\tpositive\tnegative\n" + "\n".join("\t".join(r) for r in rows)
    (tmp_path / "p.csv").write_text(csv_text, encoding="utf-8")
    (tmp_path / "p.tsv").write_text(tsv_text, encoding="utf-8")
    jl = _jsonl([{"query": q, "positive": p, "negative": n} for q, p, n in rows])
    expected = [Pair("당뇨병 증상", "혈당이 높아진다", "날씨가 맑다"), Pair("서울 맛집", "을지로 노포 냉면집", None)]
    assert read_pairs(tmp_path / "p.csv").pairs == expected
    assert read_pairs(tmp_path / "p.tsv").pairs == expected
    ds = read_pairs(jl, "pairs.jsonl")
    assert ds.pairs == expected
    assert ds.report.kept == 2 and ds.report.with_negative == 1 and ds.report.format == "jsonl"


def test_teacher_scores_are_parsed():
    ds = read_pairs(b"query,positive,teacher_score\nq1,p1,0.5\nq2,p2,\n", "t.csv")
    assert [p.teacher_score for p in ds.pairs] == [0.5, None]
    assert ds.has_teacher_scores
    with pytest.raises(ValueError, match="teacher_score 'abc' is not a number"):
        read_pairs(b"query,positive,teacher_score\nq1,p1,abc\n", "t.csv")


@pytest.mark.parametrize(
    ("data", "name", "missing"),
    [
        (b"question,answer\nq,a\n", "p.csv", "'query', 'positive'"),
        (b"query\tdoc\nq\td\n", "p.tsv", "'positive'"),
        (b'{"query": "q", "pos": "d"}\n', "p.jsonl", "'positive'"),
    ],
)
def test_missing_columns_are_named(data, name, missing):
    with pytest.raises(ValueError, match="missing required column") as err:
        read_pairs(data, name)
    assert missing in str(err.value)
    assert "Required: query, positive" in str(err.value)


def test_empty_rows_are_skipped_and_counted():
    data = b"query,positive\nq1,p1\n,p2\nq3,\n  ,  \nq5,p5\n"
    ds = read_pairs(data, "p.csv")
    assert [p.query for p in ds.pairs] == ["q1", "q5"]
    assert ds.report.empty_rows == 3 and ds.report.rows_read == 5
    assert any("empty query" in w for w in ds.report.warnings)
    assert "3 empty skipped" in ds.report.summary()


def test_duplicates_are_dropped_and_reported():
    data = _jsonl([{"query": "q", "positive": "p"}, {"query": "q", "positive": "p"}, {"query": "q", "positive": "p2"}])
    ds = read_pairs(data, "p.jsonl")
    assert len(ds) == 2 and ds.report.duplicates == 1
    assert "1 duplicate removed" in ds.report.summary()


def test_oversize_file_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl"
    path.write_bytes(_jsonl([{"query": f"q{i}", "positive": "p" * 100} for i in range(50)]))
    from pathlib import Path

    def no_read(self):  # the size check must come first
        raise AssertionError("file was read")

    monkeypatch.setattr(Path, "read_bytes", no_read)
    with pytest.raises(ValueError, match="the limit is 0.0 MB"):
        read_pairs(path, max_bytes=1000)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="limit"):
        read_pairs(path.read_bytes(), "big.jsonl", max_bytes=1000)
    assert len(read_pairs(path, max_bytes=100_000)) == 50


def test_non_utf8_reports_byte_offset():
    data = "query,positive\n당뇨,혈당\n".encode() + "서울,맛집\n".encode("cp949")
    offset = len("query,positive\n당뇨,혈당\n".encode())
    with pytest.raises(ValueError, match=f"not UTF-8 text: invalid byte 0x[0-9a-f]{{2}} at byte offset {offset} "):
        read_pairs(data, "p.csv")


@pytest.mark.parametrize(
    ("data", "name", "match"),
    [
        (b"query,positive\n", "p.csv", "no usable pair"),
        (b"", "p.csv", "is empty"),
        (b"q,p", "p.xlsx", r"use one of \.csv, \.tsv, \.jsonl"),
        (b"not json\n", "p.jsonl", "line 1 is not valid JSON"),
    ],
)
def test_bad_inputs_have_clear_messages(data, name, match):
    with pytest.raises(ValueError, match=match):
        read_pairs(data, name)


def test_bytes_need_a_filename_and_paths_must_exist(tmp_path):
    with pytest.raises(ValueError, match="filename is required"):
        read_pairs(b"query,positive\nq,p\n")
    with pytest.raises(ValueError, match="not found"):
        read_pairs(tmp_path / "nope.csv")


def _chain_pairs() -> list[Pair]:
    """40 passages; passage 2k and 2k+1 share a query, so they form 20 groups of 3 pairs."""
    pairs = []
    for k in range(20):
        a, b = f"passage {2 * k}", f"passage {2 * k + 1}"
        pairs += [Pair(f"q{k}a", a), Pair(f"q{k}b", a), Pair(f"q{k}b", b)]
    return pairs


def test_split_is_seeded_and_never_shares_a_passage_or_query():
    pairs = _chain_pairs()
    a_train, a_eval = split_pairs(pairs, 0.2, seed=1)
    b_train, b_eval = split_pairs(pairs, 0.2, seed=1)
    assert a_eval == b_eval and a_train == b_train
    assert {p.positive for p in a_train}.isdisjoint({p.positive for p in a_eval})
    assert {p.query for p in a_train}.isdisjoint({p.query for p in a_eval})
    # 20% of 40 passages = 8 passages = 4 whole groups of 3 pairs
    assert len({p.positive for p in a_eval}) == 8 and len(a_eval) == 12 and len(a_train) == 48
    assert split_pairs(pairs, 0.2, seed=2)[1] != a_eval
    assert split_pairs(pairs[:6], 0.2) == (pairs[:6], [])  # fewer than 10 passages: no held-out set


def test_split_by_passage_keeps_every_query_of_a_held_out_passage_together():
    # ten queries about one passage and one query per other passage
    pairs = [Pair(f"many {i}", "popular passage") for i in range(10)]
    pairs += [Pair(f"single {i}", f"passage {i}") for i in range(20)]
    for seed in range(10):
        train, held = split_pairs(pairs, 0.1, seed=seed)
        popular = [p for p in held if p.positive == "popular passage"]
        assert len(popular) in (0, 10)
        assert {p.positive for p in train}.isdisjoint({p.positive for p in held})


def test_split_drops_training_negatives_that_are_held_out_passages():
    pairs = [Pair(f"q{i}", f"passage {i}", f"passage {(i + 1) % 20}") for i in range(20)]
    train, held = split_pairs(pairs, 0.1, seed=0)
    held_passages = {p.positive for p in held}
    assert len(held) == 2
    assert not any(p.negative in held_passages for p in train)
    assert sum(p.negative is None for p in train) == 2  # by hand: the pairs whose next passage is held out


def test_separate_from_heldout_counts_what_it_removed():
    train = [Pair("a", "x"), Pair("b", "y", "z", 0.5), Pair("c", "w"), Pair("held q", "v")]
    kept, removed, cleared = separate_from_heldout(train, [Pair("held q", "z"), Pair("d", "w")])
    assert kept == [Pair("a", "x"), Pair("b", "y")] and (removed, cleared) == (2, 1)


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"query": ["당뇨", "혈당"], "positive": "p"}, r"line 2: query must be text, got a list"),
        ({"query": "q", "positive": {"text": "p"}}, r"line 2: positive must be text, got an object"),
        ({"query": 123, "positive": "p"}, r"line 2: query must be text, got a number \(123\)"),
        ({"query": "q", "positive": "p", "negative": True}, r"line 2: negative must be text, got true/false"),
        ({"query": "q", "positive": "p", "teacher_score": [1]}, r"line 2: teacher_score \[1\] is not a number"),
        ({"query": "q", "positive": "p", "teacher_score": True}, r"line 2: teacher_score True is not a number"),
    ],
)
def test_non_text_values_are_refused_with_the_line(row, match):
    data = _jsonl([{"query": "ok", "positive": "fine"}, row])
    with pytest.raises(ValueError, match=match):
        read_pairs(data, "pairs.jsonl")


def test_null_values_count_as_empty():
    ds = read_pairs(
        _jsonl(
            [{"query": "q", "positive": "p", "negative": None, "teacher_score": None}, {"query": None, "positive": "p"}]
        ),
        "pairs.jsonl",
    )
    assert ds.pairs == [Pair("q", "p")] and ds.report.empty_rows == 1


def test_corpus_from_pairs_groups_gold():
    c = corpus_from_pairs([Pair("q", "a", "n"), Pair("q", "b"), Pair("r", "a")], "toy")
    assert [q.text for q in c.queries] == ["q", "r"] and [d.text for d in c.documents] == ["a", "n", "b"]
    text = {d.id: d.text for d in c.documents}
    assert [{text[d] for d in c.qrels[q.id]} for q in c.queries] == [{"a", "b"}, {"a"}]
    assert all(g == 1 for judged in c.qrels.values() for g in judged.values())


needs_data = pytest.mark.skipif(
    not (SHARED_DATA_DIR / "kobest_boolq").is_dir(), reason=f"benchmark data not found at {SHARED_DATA_DIR}"
)


@needs_data
def test_boolq_loader_matches_readme_counts():
    pairs, judged = load_boolq("test")
    assert len(pairs) == 1404 and len(judged.queries) == 1404
    assert len(judged) == 5757
    text = {d.id: d.text for d in judged.documents}
    assert all(
        [text[d] for d in judged.qrels[q.id]] == [p.positive] and q.text == p.query
        for q, p in zip(judged.queries, pairs)
    )


@needs_data
def test_korsts_loader_matches_readme_counts():
    pairs, judged = load_korsts("test", corpus_from="all")
    assert len(pairs) == 338 and len(judged) == 8000 and len(judged.queries) == 338
    _, split_only = load_korsts("test")
    assert len(split_only) < len(judged)

"""Corpus loaders: every supported format and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparse_demo.corpus import Corpus, Document, Query, load_beir, load_corpus

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "corpus" / "ko_sample"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def jsonl(*rows: dict) -> str:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


def test_jsonl_with_id_and_underscore_id(tmp_path):
    p = write(
        tmp_path / "c.jsonl",
        jsonl({"id": "a", "text": "혈당 관리", "title": "당뇨"}, {"_id": 7, "text": "운동"}) + "\n\n",
    )
    c = load_corpus(p)
    assert isinstance(c, Corpus) and c.name == "c"
    assert c.documents == [Document("a", "혈당 관리", "당뇨"), Document("7", "운동", "")]
    assert c.get("7").text == "운동" and c.ids == ["a", "7"]


def test_jsonl_with_bom(tmp_path):
    p = write(tmp_path / "c.jsonl", b"\xef\xbb\xbf" + jsonl({"id": "a", "text": "x"}).encode())
    assert load_corpus(p).ids == ["a"]


@pytest.mark.parametrize("ext, sep", [("csv", ","), ("tsv", "\t")])
def test_tables(tmp_path, ext, sep):
    rows = ["ID", "Title", "text"], ["d1", "제목", "본문, 쉼표 포함"], ["d2", "", "둘째"]
    body = "\n".join(sep.join(f'"{c}"' if sep == "," and "," in c else c for c in r) for r in rows)
    c = load_corpus(write(tmp_path / f"c.{ext}", body + "\n"))
    assert c.documents == [Document("d1", "본문, 쉼표 포함", "제목"), Document("d2", "둘째", "")]


def test_table_alternative_column_names(tmp_path):
    c = load_corpus(write(tmp_path / "c.csv", "docid,contents\nx,hello\n"))
    assert c.documents == [Document("x", "hello")]


def test_beir_folder(tmp_path):
    root = tmp_path / "beir"
    write(root / "corpus.jsonl", jsonl({"_id": "d1", "text": "a"}, {"_id": "d2", "text": "b", "title": "t"}))
    write(root / "queries.jsonl", jsonl({"_id": "q1", "text": "질문"}, {"_id": "q2", "text": "둘"}))
    write(root / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t2\nq2\tzzz\t1\nq9\td1\t1\n")
    c = load_corpus(root)
    assert c.name == "beir" and len(c) == 2
    assert c.queries == [Query("q1", "질문"), Query("q2", "둘")]
    assert c.qrels == {"q1": {"d1": 1, "d2": 2}}  # unknown doc and unknown query dropped


def test_beir_without_queries_or_qrels(tmp_path):
    write(tmp_path / "b" / "corpus.jsonl", jsonl({"_id": "d1", "text": "a"}))
    c = load_beir(tmp_path / "b")
    assert c.queries == [] and c.qrels == {}


def test_sample_corpus_if_present():
    if not (SAMPLE / "corpus.jsonl").is_file():
        pytest.skip("sample corpus not present")
    c = load_corpus(SAMPLE)
    assert len(c) > 0 and c.queries
    assert all(did in {d.id for d in c.documents} for rel in c.qrels.values() for did in rel)


# --- bad inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("c.jsonl", "", "empty"),
        ("c.jsonl", "\n  \n", "empty"),
        ("c.csv", "", "empty"),
        ("c.jsonl", b"\xff\xfe\x00bad", "not UTF-8"),
        ("c.csv", b"id,text\n" + "가".encode("euc-kr") + b"\n", "not UTF-8"),
        ("c.jsonl", '{"id": "a", "text": "x"}\n{"id": "b", "text": \n', "line 2 is not valid JSON"),
        ("c.jsonl", '["a", "b"]\n', "expected a JSON object"),
        ("c.jsonl", '{"text": "x"}\n', "missing 'id'"),
        ("c.jsonl", '{"id": "a"}\n', "missing 'text'"),
        ("c.jsonl", '{"id": "a", "text": 5}\n', "'text' must be a string"),
        ("c.jsonl", '{"id": "", "text": "x"}\n', "id is empty"),
        ("c.jsonl", '{"id": [1], "text": "x"}\n', "id must be"),
        ("c.jsonl", '{"id": "a", "text": "  "}\n', "neither text nor title"),
        ("c.jsonl", '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', "duplicate id 'a'"),
        ("c.csv", "name,body\nx,y\n", "needs an id column"),
        ("c.csv", "id,title\nx,y\n", "needs a text column"),
        ("c.tsv", "id,text\nx,y\n", "needs an id column"),  # commas in a .tsv
        ("c.csv", "id,text\n", "no document rows"),
        ("c.csv", "id,text\na,b,c\n", "3 fields"),
        ("c.csv", "id,text\na,x\na,y\n", "duplicate id"),
        ("c.txt", "hello", "unsupported corpus format '.txt'"),
        ("c.json", "[]", "supported: jsonl, csv, tsv, beir"),
    ],
)
def test_bad_files(tmp_path, name, content, match):
    p = write(tmp_path / name, content)
    with pytest.raises(ValueError, match=match):
        load_corpus(p)


def test_size_limit(tmp_path):
    p = write(tmp_path / "c.jsonl", jsonl({"id": "a", "text": "x" * 500}))
    with pytest.raises(ValueError, match="limit is 100 bytes"):
        load_corpus(p, max_bytes=100)
    assert load_corpus(p, max_bytes=10_000).ids == ["a"]


def test_missing_path(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_corpus(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    "files, match",
    [
        ({"queries.jsonl": jsonl({"_id": "q", "text": "x"})}, "corpus.jsonl is missing"),
        (
            {"corpus.jsonl": jsonl({"_id": "d", "text": "x"}), "qrels/dev.tsv": "q\td\t1\n"},
            r"test.tsv is missing; available splits: \['dev'\]",
        ),
        ({"corpus.jsonl": jsonl({"_id": "d", "text": "x"}), "qrels/test.tsv": "q\td\n"}, "separated by tabs"),
        (
            {"corpus.jsonl": jsonl({"_id": "d", "text": "x"}), "qrels/test.tsv": "q\td\thigh\n"},
            "score must be an integer",
        ),
        ({"corpus.jsonl": jsonl({"_id": "d", "text": "x"}), "queries.jsonl": '{"_id": "q"}\n'}, "needs '_id'"),
        ({"corpus.jsonl": jsonl({"_id": "d", "text": "x"}), "queries.jsonl": ""}, "queries.jsonl is empty"),
    ],
)
def test_bad_beir_folders(tmp_path, files, match):
    for rel, content in files.items():
        write(tmp_path / "b" / rel, content)
    with pytest.raises(ValueError, match=match):
        load_corpus(tmp_path / "b")


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_jsonl_texts_may_hold_unicode_line_separators(tmp_path, sep):
    # valid JSON Lines: the separator sits raw inside a string (str.splitlines would cut there)
    assert len(f"a{sep}b".splitlines()) == 2
    p = write(tmp_path / "c.jsonl", jsonl({"id": "a", "text": f"혈당{sep}관리"}, {"id": "b", "text": "운동"}))
    assert load_corpus(p).documents == [Document("a", f"혈당{sep}관리"), Document("b", "운동")]


def test_jsonl_error_line_numbers_count_newlines_only(tmp_path):
    content = jsonl({"id": "a", "text": "혈당\u2028관리\u0085"}) + "\r\n" + '{"id": "b", "text": }\n'
    with pytest.raises(ValueError, match=r"line 3 is not valid JSON"):
        load_corpus(write(tmp_path / "c.jsonl", content))


def test_beir_counts_judgements_naming_unknown_ids(tmp_path):
    write(tmp_path / "b" / "corpus.jsonl", jsonl({"_id": "d1", "text": "혈당"}, {"_id": "d2", "text": "운동"}))
    write(tmp_path / "b" / "queries.jsonl", jsonl({"_id": "q1", "text": "혈당"}))
    # q1-d1 kept; q1-d9 (unknown document), q7-d1 and q7-d2 (unknown query) left out: 3 by hand
    write(tmp_path / "b" / "qrels" / "test.tsv", "q1\td1\t1\nq1\td9\t1\nq7\td1\t1\nq7\td2\t2\n")
    c = load_beir(tmp_path / "b")
    assert c.qrels == {"q1": {"d1": 1}}
    assert c.dropped_judgements == 3
    assert len(c.notes) == 1 and c.notes[0].startswith("3 relevance judgement")
    clean = load_beir(SAMPLE)  # the bundled sample's judgements all name known ids
    assert clean.dropped_judgements == 0 and clean.notes == ()

"""JSON Lines and line splitting: lines end at "\\n" only, for corpora, query files and pairs alike."""

from __future__ import annotations

import json

import pytest

from sparse_demo.textio import iter_jsonl, parse_query_file, split_lines, split_queries

#: Characters str.splitlines() treats as line breaks that are ordinary text in JSON Lines.
SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c"]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_split_lines_cuts_at_newline_only(sep):
    assert len(f"a{sep}b".splitlines()) == 2  # what the old reader did
    assert split_lines(f"a{sep}b\nc") == [f"a{sep}b", "c"]
    assert split_lines("a\r\nb\rc\n") == ["a", "b", "c", ""]
    assert split_queries(f" 당뇨{sep}병 \n\n 전세 ") == [f"당뇨{sep}병", "전세"]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_iter_jsonl_keeps_separators_inside_strings(sep):
    text = json.dumps({"text": f"혈당{sep}관리"}, ensure_ascii=False) + "\n" + '{"text": "운동"}\n'
    assert sep in text  # written raw, as ensure_ascii=False writers do
    assert list(iter_jsonl(text, "c.jsonl")) == [(1, {"text": f"혈당{sep}관리"}), (2, {"text": "운동"})]


def test_iter_jsonl_line_numbers_are_editor_lines():
    # line 1 holds U+2028 and U+0085; line 2 is blank; line 3 ends in \r\n; line 4 is broken
    text = '{"a": "x\u2028y\u0085z"}\n   \n{"a": 2}\r\n{"a": }\n'
    with pytest.raises(ValueError, match=r"^c\.jsonl line 4 is not valid JSON"):
        list(iter_jsonl(text, "c.jsonl"))
    assert [n for n, _ in iter_jsonl(text.rsplit("{", 1)[0], "c.jsonl")] == [1, 3]


def test_iter_jsonl_objects_only():
    with pytest.raises(ValueError, match=r"line 2: expected a JSON object, got list"):
        list(iter_jsonl('{"a": 1}\n[1, 2]\n', "c.jsonl"))
    assert list(iter_jsonl('"q"\n[1]\n', "q.jsonl", objects_only=False)) == [(1, "q"), (2, [1])]


def test_query_files_keep_separators_inside_a_query():
    # one query per line; inside a query, runs of whitespace (U+2028 and U+0085 are whitespace) become a space
    jsonl = '{"query": "당뇨\u2028병"}\n{"query": "전세\u0085보증금"}\n'.encode()
    assert parse_query_file(jsonl, "q.jsonl") == ["당뇨 병", "전세 보증금"]
    txt = "당뇨\u2028병\n전세\n".encode()
    assert parse_query_file(txt, "q.txt") == ["당뇨 병", "전세"]


def test_pairs_jsonl_with_separators_and_line_numbers():
    from sparse_demo.data import read_pairs

    rows = [{"query": "당뇨\u2028병", "positive": "혈당\u0085관리"}, {"query": "전세", "positive": "보증금"}]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    ds = read_pairs(data, "pairs.jsonl")
    assert [(p.query, p.positive) for p in ds.pairs] == [("당뇨\u2028병", "혈당\u0085관리"), ("전세", "보증금")]
    with pytest.raises(ValueError, match=r"line 3"):
        read_pairs(data + b'{"query": \n', "pairs.jsonl")

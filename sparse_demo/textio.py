"""Reading user-supplied text: single queries and query files (txt, csv/tsv, jsonl).

Every failure is a :class:`ValueError` whose message a user can act on.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .limits import Limits

#: Largest accepted query file.
MAX_QUERY_FILE_BYTES = 10_000_000
_TEXT_COLUMNS = ("query", "text", "question", "sentence", "sentence1")


def clean_query(text: str | None, limits: Limits | None = None) -> str:
    """Strip a query and check it is usable.

    Zero-width characters are removed (they are invisible and only split words).

    Raises:
        ValueError: empty or whitespace-only text, or longer than ``limits.max_query_chars``
            (default :class:`~sparse_demo.limits.Limits`'s; the message names ``SPARSE_DEMO_MAX_QUERY_CHARS``).
    """
    if text is None:
        raise ValueError("Type a query first (the box is empty).")
    for zw in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"):
        text = text.replace(zw, "")
    text = text.strip()
    if not text:
        raise ValueError("The query is empty or only whitespace: type some text.")
    return (limits or Limits()).check_query(text)


def decode_utf8(data: bytes, what: str = "file") -> str:
    """Decode UTF-8 (with or without BOM) or raise a ValueError naming the bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"The {what} is not UTF-8 text (invalid byte at offset {exc.start}). "
            "Save it as UTF-8 (e.g. 'Save as… UTF-8' or iconv -f cp949 -t utf-8)."
        ) from exc


def split_lines(text: str) -> list[str]:
    """Lines of ``text`` split on ``\\n`` (``\\r\\n`` and a lone ``\\r`` count as one break).

    Unlike :meth:`str.splitlines`, characters such as U+2028, U+2029, U+0085, form feed or
    vertical tab stay inside their line: they are valid text (and valid inside JSON strings).

    Example:
        >>> split_lines("a\\u2028b\\r\\nc\\n")
        ['a\\u2028b', 'c', '']
    """
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def split_queries(block: str) -> list[str]:
    """One query per non-empty line of a pasted block (lines as :func:`split_lines` cuts them)."""
    return [line.strip() for line in split_lines(block or "") if line.strip()]


def parse_query_file(data: bytes, filename: str) -> list[str]:
    """Queries from a ``.txt`` (one per line), ``.csv``/``.tsv`` (a ``query``/``text``/``question``
    column, else the first column) or ``.jsonl``/``.json`` file (``query``/``text`` field).

    Raises:
        ValueError: too large, not UTF-8, unknown extension, malformed rows, or no text.
    """
    name = Path(filename or "").name
    suffix = Path(name).suffix.lower()
    if len(data) > MAX_QUERY_FILE_BYTES:
        raise ValueError(f"{name} is {len(data):,} bytes; the limit is {MAX_QUERY_FILE_BYTES:,}.")
    text = decode_utf8(data, name or "file")
    if suffix in (".txt", ""):
        queries = split_queries(text)
    elif suffix in (".csv", ".tsv"):
        queries = _from_table(text, "\t" if suffix == ".tsv" else ",", name)
    elif suffix in (".jsonl", ".json"):
        queries = _from_jsonl(text, name)
    else:
        raise ValueError(f"{name}: unsupported file type '{suffix}'; use .txt, .csv, .tsv or .jsonl.")
    queries = [q for q in (" ".join(q.split()) for q in queries) if q]
    if not queries:
        raise ValueError(f"{name} holds no text: expected one query per line / row.")
    return queries  # no silent cut here: callers apply (and state) their own batch limit


def _from_table(text: str, delimiter: str, name: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    col = next((header.index(c) for c in _TEXT_COLUMNS if c in header), None)
    body = rows[1:] if col is not None else rows
    col = 0 if col is None else col
    return [r[col].strip() for r in body if len(r) > col]


def iter_jsonl(text: str, name: str, *, objects_only: bool = True) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of JSON Lines text.

    Lines end at ``\\n`` only (a ``\\r`` before it is JSON whitespace), as the JSON Lines
    format defines them: U+2028, U+2029 or U+0085 inside a text are valid JSON and do not
    start a new line, so line numbers match what an editor shows.

    Args:
        text: the decoded file content.
        name: the file name used in messages.
        objects_only: require every value to be a JSON object.

    Raises:
        ValueError: ``"<name> line N is not valid JSON: ..."``, or (with ``objects_only``)
            ``"<name> line N: expected a JSON object, got ..."``.

    Example:
        >>> list(iter_jsonl('{"text": "a\\u2028b"}\\n\\n{"text": "c"}\\n', "x.jsonl"))
        [(1, {'text': 'a\\u2028b'}), (3, {'text': 'c'})]
    """
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip(" \t\r"):
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name} line {lineno} is not valid JSON: {exc.msg}") from None
        if objects_only and not isinstance(value, dict):
            raise ValueError(f"{name} line {lineno}: expected a JSON object, got {type(value).__name__}")
        yield lineno, value


def _from_jsonl(text: str, name: str) -> list[str]:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{name}: invalid JSON ({exc.msg}, line {exc.lineno}).") from exc
    else:
        items = [value for _, value in iter_jsonl(text, name, objects_only=False)]
    out = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            value = next((item[c] for c in _TEXT_COLUMNS if isinstance(item.get(c), str)), None)
            if value is None:
                raise ValueError(f"{name}: item {i} has no 'query' or 'text' field.")
            out.append(value)
        else:
            raise ValueError(f"{name}: item {i} is neither a string nor an object.")
    return out


def read_query_file(path: str | Path) -> list[str]:
    """:func:`parse_query_file` on a file path (e.g. a Gradio upload)."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_QUERY_FILE_BYTES:
        raise ValueError(f"{path.name} is {size:,} bytes; the limit is {MAX_QUERY_FILE_BYTES:,}.")
    return parse_query_file(path.read_bytes(), path.name)

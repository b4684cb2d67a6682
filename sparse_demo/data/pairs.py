"""Training pairs: read, validate and split ``(query, positive[, negative][, teacher_score])`` rows.

Accepted formats (chosen by file extension): ``.csv``, ``.tsv`` (header row required) and
``.jsonl`` (one JSON object per line). Columns ``query`` and ``positive`` are required;
``negative`` and ``teacher_score`` are optional.

Validation gives a :class:`ValueError` with a message a user can act on for: a file over the
size limit (checked before reading it), bytes that are not UTF-8 (with the byte offset),
missing columns (named), an unknown format, or no usable row. Rows with an empty query or
positive are skipped and duplicate ``(query, positive)`` pairs are dropped; both are counted
in the :class:`PairsReport` rather than raised.

Pairs are the project's second input shape beside corpora: the trainer reads them, and the Evaluate
tab reads a pairs file as a judged corpus (:func:`corpus_from_pairs`: the distinct passages are the
documents, each distinct query is judged relevant, grade 1, to its positives). The held-out split of
training pairs is :func:`sparse_demo.train.split_pairs`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sparse_demo.config import load_limits
from sparse_demo.corpus import Corpus, Document, Query
from sparse_demo.textio import iter_jsonl

logger = logging.getLogger(__name__)

#: Default upload limit (bytes).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
REQUIRED_COLUMNS: tuple[str, ...] = ("query", "positive")
OPTIONAL_COLUMNS: tuple[str, ...] = ("negative", "teacher_score")
FORMATS: tuple[str, ...] = ("csv", "tsv", "jsonl")
_MAX_WARNINGS = 20

csv.field_size_limit(2**31 - 1)


@dataclass(frozen=True)
class Pair:
    """One training example.

    Attributes:
        query: the query text.
        positive: a relevant document.
        negative: an optional non-relevant document (hard negative).
        teacher_score: an optional teacher margin ``s_T(q, pos) - s_T(q, neg)`` (or the
            teacher's score of ``(q, pos)`` when there is no negative).
    """

    query: str
    positive: str
    negative: str | None = None
    teacher_score: float | None = None


@dataclass
class PairsReport:
    """What reading a pairs file found.

    Attributes:
        source: file name (or ``<bytes>``).
        format: ``csv``, ``tsv`` or ``jsonl``.
        rows_read: data rows in the file.
        kept: pairs kept after skipping and de-duplication.
        empty_rows: rows skipped because query or positive was empty.
        duplicates: duplicate ``(query, positive)`` rows dropped (the first one is kept).
        with_negative: kept pairs that have a negative.
        with_teacher_score: kept pairs that have a teacher score.
        warnings: human-readable notes (at most a few per kind).
    """

    source: str = "<bytes>"
    format: str = ""
    rows_read: int = 0
    kept: int = 0
    empty_rows: int = 0
    duplicates: int = 0
    with_negative: int = 0
    with_teacher_score: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the UI, e.g. ``412 pairs kept of 415 rows (2 empty skipped, 1 duplicate)``."""
        text = f"{self.kept} pairs kept of {self.rows_read} rows"
        notes = []
        if self.empty_rows:
            notes.append(f"{self.empty_rows} empty skipped")
        if self.duplicates:
            notes.append(f"{self.duplicates} duplicate{'s' if self.duplicates != 1 else ''} removed")
        if notes:
            text += f" ({', '.join(notes)})"
        if self.with_negative:
            text += f"; {self.with_negative} with negatives"
        if self.with_teacher_score:
            text += f"; {self.with_teacher_score} with teacher scores"
        return text


@dataclass
class PairsDataset:
    """Validated pairs plus the report of how they were read."""

    pairs: list[Pair]
    report: PairsReport

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    @property
    def has_negatives(self) -> bool:
        return any(p.negative for p in self.pairs)

    @property
    def has_teacher_scores(self) -> bool:
        return any(p.teacher_score is not None for p in self.pairs)

    def texts(self) -> list[str]:
        """Every query, positive and negative text (for tokenizer training / vocabulary pruning)."""
        out = []
        for p in self.pairs:
            out.append(p.query)
            out.append(p.positive)
            if p.negative:
                out.append(p.negative)
        return out


def _format_of(filename: str) -> str:
    suffix = Path(filename).suffix.lower().lstrip(".")
    if suffix == "json":
        suffix = "jsonl"
    if suffix not in FORMATS:
        raise ValueError(
            f"Unsupported pairs file '{Path(filename).name}': use one of {', '.join('.' + f for f in FORMATS)}."
        )
    return suffix


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"'{name}' is not UTF-8 text: invalid byte 0x{data[exc.start]:02x} at byte offset {exc.start} "
            f"(line {line}). Save the file as UTF-8 (e.g. convert from CP949/EUC-KR)."
        ) from exc


def _check_columns(columns: Sequence[str], name: str) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        have = ", ".join(repr(c) for c in columns) or "none"
        raise ValueError(
            f"'{name}' is missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (found: {have}). "
            f"Required: {', '.join(REQUIRED_COLUMNS)}; optional: {', '.join(OPTIONAL_COLUMNS)}."
        )


def _rows(text: str, fmt: str, name: str) -> Iterator[tuple[int, dict]]:
    if fmt == "jsonl":
        seen_columns: set[str] = set()
        checked = False
        for lineno, obj in iter_jsonl(text, f"'{name}'"):
            seen_columns.update(obj)
            if not checked:
                _check_columns(list(obj), name)
                checked = True
            yield lineno, obj
        if not checked:
            raise ValueError(f"'{name}' holds no JSON object; expected one pair per line.")
        return
    delimiter = "\t" if fmt == "tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = [c.strip() for c in (reader.fieldnames or [])]
    if not columns:
        raise ValueError(f"'{name}' is empty; expected a header row with {', '.join(REQUIRED_COLUMNS)}.")
    reader.fieldnames = columns
    _check_columns(columns, name)
    for row in reader:
        yield reader.line_num, row


_JSON_KINDS = {list: "a list", dict: "an object", bool: "true/false", int: "a number", float: "a number"}


def _text(value: object, key: str, where: str) -> str:
    """A text cell, stripped; None is empty. Anything but a string is refused with its line."""
    if value is None:
        return ""
    if not isinstance(value, str):
        kind = _JSON_KINDS.get(type(value), type(value).__name__)
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise ValueError(f"{where}: {key} must be text, got {kind} ({shown}); write it as a JSON string")
    return value.strip()


def _score(value: object, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"{where}: teacher_score {value!r} is not a number")
    try:
        score = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: teacher_score {value!r} is not a number") from exc
    if not math.isfinite(score):
        raise ValueError(f"{where}: teacher_score {value!r} is not finite")
    return score


def parse_pairs(
    data: bytes, filename: str, *, max_bytes: int = DEFAULT_MAX_BYTES, max_chars: int | None = None
) -> PairsDataset:
    """Parse and validate pairs from file bytes.

    Args:
        data: the file content.
        filename: its name; the extension picks the format (``.csv``, ``.tsv``, ``.jsonl``).
        max_bytes: size limit.
        max_chars: characters of one query, positive or negative (the line is named when one is over);
            default ``SPARSE_DEMO_MAX_DOC_CHARS`` (:class:`sparse_demo.limits.Limits`).

    Raises:
        ValueError: too large, not UTF-8, unknown format, missing columns, bad teacher score,
            or no usable pair.
    """
    name = Path(filename).name
    fmt = _format_of(filename)
    if len(data) > max_bytes:
        raise ValueError(_too_large(name, len(data), max_bytes))
    text = _decode(data, name)
    if max_chars is None:
        max_chars = load_limits().max_doc_chars
    report = PairsReport(source=name, format=fmt)
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for lineno, row in _rows(text, fmt, name):
        report.rows_read += 1
        where = f"'{name}' line {lineno}"
        query, positive = _text(row.get("query"), "query", where), _text(row.get("positive"), "positive", where)
        for key in ("query", "positive", "negative"):
            value = row.get(key)
            if isinstance(value, str) and len(value) > max_chars:
                raise ValueError(
                    f"{where}: the {key} has {len(value):,} characters; the limit is {max_chars:,} "
                    "(SPARSE_DEMO_MAX_DOC_CHARS). Split it into shorter passages."
                )
        if not query or not positive:
            report.empty_rows += 1
            if report.empty_rows <= _MAX_WARNINGS:
                which = "query" if not query else "positive"
                report.warnings.append(f"line {lineno}: empty {which}; row skipped")
            continue
        key = (query, positive)
        if key in seen:
            report.duplicates += 1
            if report.duplicates <= _MAX_WARNINGS:
                report.warnings.append(f"line {lineno}: duplicate pair dropped (query {query[:30]!r})")
            continue
        seen.add(key)
        negative = _text(row.get("negative"), "negative", where) or None
        teacher = _score(row.get("teacher_score"), where)
        pairs.append(Pair(query, positive, negative, teacher))
    report.kept = len(pairs)
    report.with_negative = sum(1 for p in pairs if p.negative)
    report.with_teacher_score = sum(1 for p in pairs if p.teacher_score is not None)
    if report.empty_rows > _MAX_WARNINGS or report.duplicates > _MAX_WARNINGS:
        report.warnings.append("(further warnings of the same kind omitted)")
    if not pairs:
        raise ValueError(
            f"'{name}' has no usable pair: {report.rows_read} rows read, {report.empty_rows} empty, "
            f"{report.duplicates} duplicates."
        )
    if 0 < report.with_teacher_score < report.kept:
        report.warnings.append(
            f"only {report.with_teacher_score} of {report.kept} pairs have a teacher_score; "
            "the distillation loss uses those only"
        )
    logger.info("Read %s: %s", name, report.summary())
    return PairsDataset(pairs, report)


def _too_large(name: str, size: int, limit: int) -> str:
    return (
        f"'{name}' is {size / 1e6:,.1f} MB; the limit is {limit / 1e6:,.1f} MB. "
        "Use a smaller sample of pairs or raise the limit (max_bytes)."
    )


def read_pairs(
    source: str | Path | bytes,
    filename: str | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_chars: int | None = None,
) -> PairsDataset:
    """Read pairs from a path, or from bytes plus their file name.

    The size is checked (``stat`` for paths) before the file is read.

    Args:
        source: a file path, or the file's bytes (then ``filename`` is required).
        filename: the name of the bytes (its extension picks the format).
        max_bytes: size limit; larger files are refused before reading.
        max_chars: characters of one text (see :func:`parse_pairs`).

    Example:
        >>> ds = read_pairs(b'{"query": "q", "positive": "p"}\\n', "pairs.jsonl")
        >>> ds.pairs[0], ds.report.kept
        (Pair(query='q', positive='p', negative=None, teacher_score=None), 1)
    """
    if isinstance(source, (bytes, bytearray)):
        if not filename:
            raise ValueError("filename is required with bytes (its extension picks csv, tsv or jsonl)")
        return parse_pairs(bytes(source), filename, max_bytes=max_bytes, max_chars=max_chars)
    path = Path(source).expanduser()
    if not path.is_file():
        raise ValueError(f"Pairs file not found: {path}")
    _format_of(filename or path.name)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(_too_large(path.name, size, max_bytes))
    return parse_pairs(path.read_bytes(), filename or path.name, max_bytes=max_bytes, max_chars=max_chars)


def corpus_from_pairs(pairs: Sequence[Pair], name: str, extra_passages: Sequence[str] = ()) -> Corpus:
    """The judged corpus of ``pairs``: distinct passages as documents, distinct queries judged (grade 1).

    Documents are the positives and negatives in first-seen order (ids ``p1``, ``p2``, ...), then
    ``extra_passages`` not already there (distractors); queries are the distinct query texts in first-seen
    order (ids ``q1``, ...), each relevant to every positive it was paired with.

    Example:
        >>> c = corpus_from_pairs([Pair("a", "x", "y"), Pair("a", "z"), Pair("b", "y")], "toy", ["w", "x"])
        >>> [(d.id, d.text) for d in c.documents], c.qrels
        ([('p1', 'x'), ('p2', 'y'), ('p3', 'z'), ('p4', 'w')], {'q1': {'p1': 1, 'p3': 1}, 'q2': {'p2': 1}})
    """
    passages: dict[str, str] = {}
    for p in pairs:
        for text in (p.positive, p.negative):
            if text and text not in passages:
                passages[text] = f"p{len(passages) + 1}"
    for text in extra_passages:
        if text and text not in passages:
            passages[text] = f"p{len(passages) + 1}"
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for p in pairs:
        qid = queries.setdefault(p.query, f"q{len(queries) + 1}")
        qrels.setdefault(qid, {})[passages[p.positive]] = 1
    docs = [Document(pid, text) for text, pid in passages.items()]
    return Corpus(name, docs, [Query(qid, text) for text, qid in queries.items()], qrels)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "Pair",
    "PairsDataset",
    "PairsReport",
    "corpus_from_pairs",
    "parse_pairs",
    "read_pairs",
]

"""Training pairs: read, validate and split ``(query, positive[, negative][, teacher_score])`` rows.

Accepted formats (chosen by file extension): ``.csv``, ``.tsv`` (header row required) and
``.jsonl`` (one JSON object per line). Columns ``query`` and ``positive`` are required;
``negative`` and ``teacher_score`` are optional.

Validation gives a :class:`ValueError` with a message a user can act on for: a file over the
size limit (checked before reading it), bytes that are not UTF-8 (with the byte offset),
missing columns (named), an unknown format, or no usable row. Rows with an empty query or
positive are skipped and duplicate ``(query, positive)`` pairs are dropped; both are counted
in the :class:`PairsReport` rather than raised.

Also here: loaders of the benchmark sets in ``../shared/data`` (KoBEST BoolQ and KorSTS).
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def _score(value, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        score = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: teacher_score {value!r} is not a number") from exc
    if not math.isfinite(score):
        raise ValueError(f"{where}: teacher_score {value!r} is not finite")
    return score


def parse_pairs(data: bytes, filename: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> PairsDataset:
    """Parse and validate pairs from file bytes.

    Args:
        data: the file content.
        filename: its name; the extension picks the format (``.csv``, ``.tsv``, ``.jsonl``).
        max_bytes: size limit.

    Raises:
        ValueError: too large, not UTF-8, unknown format, missing columns, bad teacher score,
            or no usable pair.
    """
    name = Path(filename).name
    fmt = _format_of(filename)
    if len(data) > max_bytes:
        raise ValueError(_too_large(name, len(data), max_bytes))
    text = _decode(data, name)
    report = PairsReport(source=name, format=fmt)
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for lineno, row in _rows(text, fmt, name):
        report.rows_read += 1
        query, positive = _text(row.get("query")), _text(row.get("positive"))
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
        negative = _text(row.get("negative")) or None
        teacher = _score(row.get("teacher_score"), f"'{name}' line {lineno}")
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
) -> PairsDataset:
    """Read pairs from a path, or from bytes plus their file name.

    The size is checked (``stat`` for paths) before the file is read.

    Args:
        source: a file path, or the file's bytes (then ``filename`` is required).
        filename: the name of the bytes (its extension picks the format).
        max_bytes: size limit; larger files are refused before reading.

    Example:
        >>> ds = read_pairs(b'{"query": "q", "positive": "p"}\\n', "pairs.jsonl")
        >>> ds.pairs[0], ds.report.kept
        (Pair(query='q', positive='p', negative=None, teacher_score=None), 1)
    """
    if isinstance(source, (bytes, bytearray)):
        if not filename:
            raise ValueError("filename is required with bytes (its extension picks csv, tsv or jsonl)")
        return parse_pairs(bytes(source), filename, max_bytes=max_bytes)
    path = Path(source).expanduser()
    if not path.is_file():
        raise ValueError(f"Pairs file not found: {path}")
    _format_of(filename or path.name)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(_too_large(path.name, size, max_bytes))
    return parse_pairs(path.read_bytes(), filename or path.name, max_bytes=max_bytes)


def split_pairs(
    dataset: PairsDataset | Sequence[Pair], eval_fraction: float = 0.1, *, seed: int = 0, max_eval: int = 500
) -> tuple[list[Pair], list[Pair]]:
    """A seeded held-out split, grouped by query (a query never lands in both parts).

    Args:
        dataset: the pairs.
        eval_fraction: share of queries held out, in ``[0, 0.5]``.
        seed: RNG seed.
        max_eval: cap on held-out pairs.

    Returns:
        ``(train, eval)``; ``eval`` is empty when there are fewer than 10 queries.
    """
    if not 0.0 <= eval_fraction <= 0.5:
        raise ValueError(f"eval_fraction must be in [0, 0.5], got {eval_fraction}")
    pairs = list(dataset.pairs if isinstance(dataset, PairsDataset) else dataset)
    queries = list(dict.fromkeys(p.query for p in pairs))
    if len(queries) < 10 or eval_fraction == 0:
        return pairs, []
    rng = random.Random(seed)
    rng.shuffle(queries)
    n_eval = max(1, int(round(len(queries) * eval_fraction)))
    held = set(queries[:n_eval])
    train = [p for p in pairs if p.query not in held]
    evals = [p for p in pairs if p.query in held][:max_eval]
    return train, evals


# ---------------------------------------------------------------------- benchmark sets
#: ``../shared/data`` next to the checkout; override with ``SPARSE_DEMO_DATA_DIR``.
SHARED_DATA_DIR = Path(
    os.environ.get("SPARSE_DEMO_DATA_DIR", Path(__file__).resolve().parents[3] / "shared" / "data")
)


@dataclass
class RetrievalSet:
    """Queries with gold document ids over a corpus (for evaluation)."""

    name: str
    queries: list[str]
    gold: list[set[int]]
    corpus: list[str]

    def __len__(self) -> int:
        return len(self.queries)


def _read_tsv(path: Path, min_fields: int) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows[1:] if len(r) >= min_fields]


def _data_dir(data_dir: str | Path | None) -> Path:
    base = Path(data_dir) if data_dir is not None else SHARED_DATA_DIR
    if not base.is_dir():
        raise FileNotFoundError(f"benchmark data folder not found: {base}")
    return base


def load_boolq(split: str = "train", data_dir: str | Path | None = None) -> tuple[list[Pair], RetrievalSet]:
    """KoBEST BoolQ as retrieval: question -> its paragraph.

    Args:
        split: ``train``, ``dev`` or ``test``.
        data_dir: the shared data folder (default ``../shared/data``).

    Returns:
        ``(pairs of the split, RetrievalSet of the split over the corpus of all unique
        paragraphs of the three splits)``.
    """
    if split not in ("train", "dev", "test"):
        raise ValueError(f"split must be one of train, dev, test; got {split!r}")
    folder = _data_dir(data_dir) / "kobest_boolq"
    corpus: dict[str, int] = {}
    by_split: dict[str, list[list[str]]] = {}
    for name in ("train", "dev", "test"):
        rows = _read_tsv(folder / f"{name}.tsv", 3)
        by_split[name] = rows
        for r in rows:
            corpus.setdefault(r[1].strip(), len(corpus))
    pairs, queries, gold = [], [], []
    for r in by_split[split]:
        text, question = r[1].strip(), r[2].strip()
        if not text or not question:
            continue
        pairs.append(Pair(question, text))
        queries.append(question)
        gold.append({corpus[text]})
    return pairs, RetrievalSet(f"BoolQ {split}", queries, gold, list(corpus))


def load_korsts(
    split: str = "test",
    data_dir: str | Path | None = None,
    min_score: float = 4.0,
    corpus_from: str = "split",
) -> tuple[list[Pair], RetrievalSet]:
    """KorSTS as paraphrase retrieval: sentence1 -> sentence2 for pairs scoring >= ``min_score``.

    Args:
        split: ``train``, ``dev`` or ``test``.
        data_dir: the shared data folder.
        min_score: paraphrase threshold (0-5 scale).
        corpus_from: ``split`` (every sentence2 of the split) or ``all`` (every sentence2 of
            the three splits, as in the data README's reference table).
    """
    names = {"train": "sts-train.tsv", "dev": "sts-dev.tsv", "test": "sts-test.tsv"}
    if split not in names:
        raise ValueError(f"split must be one of {', '.join(names)}; got {split!r}")
    if corpus_from not in ("split", "all"):
        raise ValueError(f"corpus_from must be 'split' or 'all', got {corpus_from!r}")
    folder = _data_dir(data_dir) / "korsts"
    rows = _read_tsv(folder / names[split], 7)
    corpus: dict[str, int] = {}
    for r in rows:
        corpus.setdefault(r[6].strip(), len(corpus))
    if corpus_from == "all":
        for other in names.values():
            for r in _read_tsv(folder / other, 7):
                corpus.setdefault(r[6].strip(), len(corpus))
    pairs, queries, gold = [], [], []
    for r in rows:
        try:
            score = float(r[4])
        except ValueError:
            continue
        s1, s2 = r[5].strip(), r[6].strip()
        if score >= min_score and s1 and s2:
            pairs.append(Pair(s1, s2))
            queries.append(s1)
            gold.append({corpus[s2]})
    return pairs, RetrievalSet(f"KorSTS {split} (score >= {min_score:g})", queries, gold, list(corpus))


def retrieval_set_from_pairs(pairs: Sequence[Pair], name: str = "held-out") -> RetrievalSet:
    """Queries of ``pairs`` over the corpus of their positives and negatives."""
    corpus: dict[str, int] = {}
    for p in pairs:
        corpus.setdefault(p.positive, len(corpus))
        if p.negative:
            corpus.setdefault(p.negative, len(corpus))
    golds: dict[str, set[int]] = {}
    for p in pairs:
        golds.setdefault(p.query, set()).add(corpus[p.positive])
    return RetrievalSet(name, list(golds), list(golds.values()), list(corpus))

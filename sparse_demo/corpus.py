"""Corpus loaders: JSON Lines, CSV/TSV and BEIR folders, as typed objects.

Formats:

* ``.jsonl``: one object per line with ``"id"`` (or ``"_id"``), ``"text"`` and optional
  ``"title"``; blank lines are skipped.
* ``.csv`` / ``.tsv``: a header row with an id column (``id``, ``_id``, ``doc_id`` or
  ``docid``), a text column (``text``, ``contents`` or ``body``) and optionally ``title``.
* BEIR folder: ``corpus.jsonl``, optional ``queries.jsonl`` (``_id``, ``text``) and
  ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``, header optional).

Every loader checks its input and raises ``ValueError`` with a message meant for users:
unknown format, empty file, bytes that are not UTF-8, a file over the size limit, a
malformed line, missing fields or columns, duplicate ids, a qrels score that is not a finite number.
Given a :class:`~sparse_demo.limits.Limits` (``limits=``), the loaders also refuse files over
``max_unpacked_bytes``, more than ``max_docs`` documents (they stop reading at the first one over)
and a document over ``max_doc_chars`` characters (named by its id), each message naming the
environment variable that sets the limit.

Example:
    >>> c = load_corpus("assets/corpus/ko_sample")  # doctest: +SKIP
    >>> c.documents[0].id, len(c.queries) > 0  # doctest: +SKIP
    ('med-001', True)
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from sparse_demo.limits import Limits
from sparse_demo.textio import iter_jsonl, split_lines

logger = logging.getLogger(__name__)

#: Default size limit of one file (bytes).
DEFAULT_MAX_BYTES = 200 * 1024 * 1024
SUPPORTED_FORMATS = ("jsonl", "csv", "tsv", "beir")
_ID_COLUMNS = ("id", "_id", "doc_id", "docid")
_TEXT_COLUMNS = ("text", "contents", "body")


@dataclass(frozen=True)
class Document:
    """A corpus document."""

    id: str
    text: str
    title: str = ""


@dataclass(frozen=True)
class Query:
    """A query of an evaluation set."""

    id: str
    text: str


@dataclass
class Corpus:
    """Documents, and (BEIR-shaped) the judged queries: the one judged-set type of the package.

    A corpus read from a file is searched by the Search tab; with queries and qrels it is also what
    the Evaluate tab, the trainer's held-out evaluation, the demo model's build and the benchmarks
    evaluate (:func:`sparse_demo.evaluation.make_eval_set` checks it and keeps the judged queries).

    Attributes:
        name: Display name (file or folder name).
        documents: Documents in file order.
        queries: Queries (empty unless loaded from a BEIR folder or built from pairs).
        qrels: ``query id -> doc id -> relevance grade`` (a grade > 0 is relevant; pairs give grade 1).
        dropped_judgements: BEIR judgements left out because they name a query or document id
            the corpus does not have (shown to the user: see :attr:`notes`).
        checks: what checking or sampling the queries dropped or drew (one sentence each; in :attr:`notes`).
        total_queries: judged queries before sampling (0: all of :attr:`queries`).
        owner: the session id of the visitor who uploaded it (None: shared, e.g. the bundled sample);
            indexes built from it are that visitor's (dropped when they leave) and run under
            ``SPARSE_DEMO_MAX_INDEX_SECONDS`` (see :class:`sparse_demo.search.SearchSession`). Not part
            of the content: equal documents, equal :attr:`fingerprint`, whoever uploaded them.
    """

    name: str
    documents: list[Document]
    queries: list[Query] = field(default_factory=list)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    dropped_judgements: int = 0
    owner: str | None = field(default=None, compare=False, repr=False)
    checks: list[str] = field(default_factory=list, compare=False, repr=False)
    total_queries: int = field(default=0, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {d.id: d for d in self.documents}
        self._fingerprint: str | None = None
        if not self.total_queries:
            self.total_queries = len(self.queries)

    @property
    def fingerprint(self) -> str:
        """A content hash of the documents (ids, titles, texts): equal content, equal fingerprint.

        Computed once per corpus (documents are fixed after loading, as :meth:`get`'s lookup
        assumes): index keys, tuned weights and report caches ask for it on every request.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            for d in self.documents:
                for part in (d.id, d.title, d.text):
                    h.update(part.encode("utf-8"))
                    h.update(b"\x1f")
                h.update(b"\x1e")
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint

    def __len__(self) -> int:
        return len(self.documents)

    def get(self, doc_id: str) -> Document | None:
        return self._by_id.get(doc_id)

    @property
    def ids(self) -> list[str]:
        return [d.id for d in self.documents]

    @property
    def notes(self) -> tuple[str, ...]:
        """What a user should know about how the corpus was read and checked (one sentence each)."""
        dropped = (
            ()
            if not self.dropped_judgements
            else (
                f"{self.dropped_judgements:,} relevance judgement(s) of {self.name} name a query or document id "
                "that is not in the corpus; they were left out.",
            )
        )
        return (*dropped, *self.checks)

    def query_text(self, qid: str) -> str:
        """The text of a query id.

        Raises:
            KeyError: no such query.
        """
        texts = getattr(self, "_query_texts", None)
        if texts is None or len(texts) != len(self.queries):
            texts = self._query_texts = {q.id: q.text for q in self.queries}
        return texts[qid]

    def with_queries(self, query_ids: list[str], name: str | None = None) -> Corpus:
        """The same documents with only these queries (in the corpus' order) and their qrels."""
        keep = set(query_ids)
        queries = [q for q in self.queries if q.id in keep]
        return replace(
            self,
            name=name or self.name,
            queries=queries,
            qrels={q.id: dict(self.qrels[q.id]) for q in queries if q.id in self.qrels},
            checks=list(self.checks),
            total_queries=self.total_queries,
        )


# --- reading text --------------------------------------------------------------------------


def _read_text(path: Path, max_bytes: int, limits: Limits | None = None) -> str:
    if not path.is_file():
        raise ValueError(f"{path.name}: file not found")
    size = path.stat().st_size
    if limits is not None and size > limits.max_unpacked_bytes:
        raise ValueError(limits.unpacked_error(path.name, size))
    if size > max_bytes:
        raise ValueError(f"{path.name} is {size:,} bytes; the limit is {max_bytes:,} bytes")
    data = path.read_bytes()
    return decode_text(data, path.name)


def decode_text(data: bytes, name: str = "file") -> str:
    """Decode UTF-8 (BOM allowed); non-empty content required."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"{name} is not UTF-8 text (invalid byte at offset {exc.start}, line {line}); save it as UTF-8"
        ) from None
    if not text.strip():
        raise ValueError(f"{name} is empty")
    return text


def _as_id(value: object, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{where}: id must be a string or integer, got {value!r}")  # noqa: TRY004 - user data: ValueError by design
    s = str(value).strip()
    if not s:
        raise ValueError(f"{where}: id is empty")
    return s


def _as_text(value: object, key: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key!r} must be a string, got {type(value).__name__}")  # noqa: TRY004 - user data: ValueError by design
    return value


def _check_unique(docs: list[Document] | list[Query], name: str) -> None:
    seen: set[str] = set()
    for d in docs:
        if d.id in seen:
            raise ValueError(f"{name}: duplicate id {d.id!r}")
        seen.add(d.id)


# --- JSON Lines ----------------------------------------------------------------------------


def _check_limits(doc: Document, count: int, where: str, name: str, limits: Limits | None) -> None:
    """The document-count and characters limits, checked as each document is read."""
    if limits is None:
        return
    limits.check_doc_chars(doc.id, len(doc.text) + len(doc.title), where)
    if count > limits.max_docs:
        limits.check_doc_count(count, name, more=True)


def parse_jsonl_documents(text: str, name: str = "corpus.jsonl", *, limits: Limits | None = None) -> list[Document]:
    """Documents from JSON Lines text (``id``/``_id``, ``text``, optional ``title``).

    With ``limits``: refuses text with more than ``max_docs`` non-blank lines before parsing any (each
    line is one document), and stops at the first document over ``max_doc_chars`` (ValueError).
    """
    if limits is not None and text.count("\n") >= limits.max_docs:  # cheap upper bound first
        limits.check_doc_count(sum(1 for line in text.split("\n") if line.strip(" \t\r")), name)
    docs = []
    for lineno, obj in iter_jsonl(text, name):
        where = f"{name} line {lineno}"
        key = "id" if "id" in obj else "_id" if "_id" in obj else None
        if key is None:
            raise ValueError(f"{where}: missing 'id' (or '_id'); keys present: {sorted(obj)}")
        if "text" not in obj:
            raise ValueError(f"{where}: missing 'text'; keys present: {sorted(obj)}")
        doc = Document(
            id=_as_id(obj[key], where),
            text=_as_text(obj["text"], "text", where),
            title=_as_text(obj.get("title"), "title", where),
        )
        if not doc.text.strip() and not doc.title.strip():
            raise ValueError(f"{where}: document {doc.id!r} has neither text nor title")
        docs.append(doc)
        _check_limits(doc, len(docs), where, name, limits)
    if not docs:
        raise ValueError(f"{name} holds no document")
    _check_unique(docs, name)
    return docs


def load_jsonl(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, limits: Limits | None = None) -> Corpus:
    """Load a JSON Lines corpus (``limits``: see the module docstring)."""
    p = Path(path)
    return Corpus(p.stem, parse_jsonl_documents(_read_text(p, max_bytes, limits), p.name, limits=limits))


def parse_jsonl_queries(text: str, name: str = "queries.jsonl") -> list[Query]:
    """Queries from JSON Lines text (``_id``/``id`` and ``text``)."""
    queries = []
    for lineno, obj in iter_jsonl(text, name):
        where = f"{name} line {lineno}"
        key = "_id" if "_id" in obj else "id" if "id" in obj else None
        if key is None or "text" not in obj:
            raise ValueError(f"{where}: a query needs '_id' (or 'id') and 'text'; keys present: {sorted(obj)}")
        q = Query(_as_id(obj[key], where), _as_text(obj["text"], "text", where))
        if not q.text.strip():
            raise ValueError(f"{where}: query {q.id!r} has empty text")
        queries.append(q)
    if not queries:
        raise ValueError(f"{name} holds no query")
    _check_unique(queries, name)
    return queries


# --- CSV / TSV -----------------------------------------------------------------------------


def _pick(columns: dict[str, str], choices: tuple[str, ...]) -> str | None:
    for c in choices:
        if c in columns:
            return columns[c]
    return None


def parse_table_documents(
    text: str, delimiter: str, name: str = "corpus.csv", *, limits: Limits | None = None
) -> list[Document]:
    """Documents from CSV/TSV text with a header row (``limits``: as :func:`parse_jsonl_documents`)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{name} is empty") from None
    except csv.Error as exc:
        raise ValueError(f"{name}: cannot parse the header ({exc})") from None
    columns = {h.strip().lower(): h for h in header}
    id_col = _pick(columns, _ID_COLUMNS)
    text_col = _pick(columns, _TEXT_COLUMNS)
    missing = []
    if id_col is None:
        missing.append(f"an id column ({', '.join(_ID_COLUMNS)})")
    if text_col is None:
        missing.append(f"a text column ({', '.join(_TEXT_COLUMNS)})")
    if missing:
        sep = "tab" if delimiter == "\t" else repr(delimiter)
        raise ValueError(f"{name} needs {' and '.join(missing)}; its header ({sep}-separated) is {header}")
    title_col = columns.get("title")
    idx = {h: i for i, h in enumerate(header)}
    docs = []
    try:
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            where = f"{name} row {lineno}"
            if len(row) != len(header):
                raise ValueError(f"{where}: {len(row)} fields, the header has {len(header)}")
            doc = Document(
                id=_as_id(row[idx[id_col]], where),
                text=row[idx[text_col]],
                title=row[idx[title_col]] if title_col else "",
            )
            if not doc.text.strip() and not doc.title.strip():
                raise ValueError(f"{where}: document {doc.id!r} has neither text nor title")
            docs.append(doc)
            _check_limits(doc, len(docs), where, name, limits)
    except csv.Error as exc:
        raise ValueError(f"{name}: malformed CSV ({exc})") from None
    if not docs:
        raise ValueError(f"{name} has a header but no document rows")
    _check_unique(docs, name)
    return docs


def load_table(
    path: str | Path, *, delimiter: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES, limits: Limits | None = None
) -> Corpus:
    """Load a CSV (``,``) or TSV (tab) corpus; the delimiter follows the extension."""
    p = Path(path)
    if delimiter is None:
        delimiter = "\t" if p.suffix.lower() == ".tsv" else ","
    return Corpus(p.stem, parse_table_documents(_read_text(p, max_bytes, limits), delimiter, p.name, limits=limits))


# --- BEIR ------------------------------------------------------------------------------------


def parse_qrels(text: str, name: str = "qrels/test.tsv") -> dict[str, dict[str, int]]:
    """BEIR qrels: ``query-id<TAB>corpus-id<TAB>score`` lines, header optional."""
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if lineno == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if len(parts) < 3:
            raise ValueError(f"{name} line {lineno}: expected query-id, corpus-id and score separated by tabs")
        qid, did, score = parts[0].strip(), parts[1].strip(), parts[2].strip()
        if not qid or not did:
            raise ValueError(f"{name} line {lineno}: empty query-id or corpus-id")
        try:
            value = float(score)
        except ValueError:
            raise ValueError(f"{name} line {lineno}: score must be an integer, got {score!r}") from None
        if not math.isfinite(value):  # int(inf) is an OverflowError, int(nan) a ValueError without the line
            raise ValueError(
                f"{name} line {lineno}: score must be a finite integer grade (0, 1, 2, ...), got {score!r}"
            )
        rel = int(value)
        qrels.setdefault(qid, {})[did] = rel
    if not qrels:
        raise ValueError(f"{name} holds no judgement")
    return qrels


def load_beir(
    folder: str | Path, *, split: str = "test", max_bytes: int = DEFAULT_MAX_BYTES, limits: Limits | None = None
) -> Corpus:
    """Load a BEIR folder: ``corpus.jsonl`` plus optional ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Queries without judgements are kept; judgements naming unknown documents or queries are
    left out and counted in :attr:`Corpus.dropped_judgements` (and logged). With ``limits``, the
    three files together must fit ``max_unpacked_bytes`` (checked before reading any).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder")
    corpus_file = root / "corpus.jsonl"
    if not corpus_file.is_file():
        raise ValueError(f"{root.name} is not a BEIR folder: corpus.jsonl is missing")
    if limits is not None:
        parts = [corpus_file, root / "queries.jsonl", root / "qrels" / f"{split}.tsv"]
        total = sum(f.stat().st_size for f in parts if f.is_file())
        if total > limits.max_unpacked_bytes:
            raise ValueError(limits.unpacked_error(root.name, total))
    docs = parse_jsonl_documents(_read_text(corpus_file, max_bytes, limits), "corpus.jsonl", limits=limits)
    queries: list[Query] = []
    qrels: dict[str, dict[str, int]] = {}
    dropped = 0
    if (root / "queries.jsonl").is_file():
        queries = parse_jsonl_queries(_read_text(root / "queries.jsonl", max_bytes), "queries.jsonl")
    qrels_dir = root / "qrels"
    if qrels_dir.is_dir():
        qrels_file = qrels_dir / f"{split}.tsv"
        if not qrels_file.is_file():
            available = sorted(p.stem for p in qrels_dir.glob("*.tsv"))
            raise ValueError(f"{root.name}: qrels/{split}.tsv is missing; available splits: {available or 'none'}")
        qrels = parse_qrels(_read_text(qrels_file, max_bytes), f"qrels/{split}.tsv")
        doc_ids = {d.id for d in docs}
        query_ids = {q.id for q in queries}
        for qid in list(qrels):
            if queries and qid not in query_ids:
                dropped += len(qrels.pop(qid))
                continue
            for did in list(qrels[qid]):
                if did not in doc_ids:
                    del qrels[qid][did]
                    dropped += 1
            if not qrels[qid]:
                del qrels[qid]
        if dropped:
            logger.warning("%s: dropped %d judgements naming unknown queries or documents", root.name, dropped)
    return Corpus(root.name, docs, queries, qrels, dropped_judgements=dropped)


def load_corpus(
    path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, split: str = "test", limits: Limits | None = None
) -> Corpus:
    """Load any supported corpus: a BEIR folder, ``.jsonl``, ``.csv`` or ``.tsv``.

    Args:
        path: the file or folder.
        max_bytes: size limit of each file read.
        split: the BEIR qrels split.
        limits: also refuse what is over ``max_unpacked_bytes``, ``max_docs`` or ``max_doc_chars``
            (None: no such checks, e.g. for the bundled sample).

    Raises:
        ValueError: unsupported format or bad content (the message says what to fix).
    """
    p = Path(path)
    if p.is_dir():
        return load_beir(p, split=split, max_bytes=max_bytes, limits=limits)
    if not p.exists():
        raise ValueError(f"{p}: no such file or folder")
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return load_jsonl(p, max_bytes=max_bytes, limits=limits)
    if suffix in (".csv", ".tsv"):
        return load_table(p, max_bytes=max_bytes, limits=limits)
    raise ValueError(
        f"{p.name}: unsupported corpus format {suffix or '(no extension)'!r}; "
        f"supported: {', '.join(SUPPORTED_FORMATS)} (.jsonl, .csv, .tsv files or a BEIR folder)"
    )


__all__ = [
    "DEFAULT_MAX_BYTES",
    "SUPPORTED_FORMATS",
    "Corpus",
    "Document",
    "Query",
    "decode_text",
    "load_beir",
    "load_corpus",
    "load_jsonl",
    "load_table",
    "parse_jsonl_documents",
    "parse_jsonl_queries",
    "parse_qrels",
    "parse_table_documents",
]

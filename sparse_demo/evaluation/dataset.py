"""Evaluation sets: a judged :class:`~sparse_demo.corpus.Corpus`, checked and optionally sampled.

Sources (:func:`load_eval_set`):

* a BEIR folder or ``.zip`` (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``), read by
  :func:`sparse_demo.search.load_corpus_file` as the Search tab reads it;
* a pairs file (``.csv`` / ``.tsv`` / ``.jsonl`` with ``query`` and ``positive`` columns, read by
  :func:`sparse_demo.data.read_pairs`; :func:`sparse_demo.data.corpus_from_pairs`): the corpus is
  the deduplicated passages (positives and negatives), each distinct query is judged relevant to its positives;
* the bundled sample (``"sample"``);
* the shared benchmark sets ``boolq:<split>`` and ``korsts:<split>`` (``../shared/data``).

Files are read under :class:`sparse_demo.limits.Limits` (default: from the environment): what a zip
unpacks to, documents per corpus, characters per document or pair text (named by id or line).

Checks (:func:`make_eval_set`) raise ``ValueError`` with one clear line for an empty corpus,
duplicate document or query ids, qrels naming unknown documents or queries, and no judged
query; queries without judgements are dropped and said in the corpus' ``notes``. The result is the
same corpus type with only the judged queries (its ``total_queries`` counts them before sampling).

Example:
    >>> from sparse_demo.corpus import Corpus, Document, Query
    >>> c = Corpus("toy", [Document("d1", "가"), Document("d2", "나")], [Query("q1", "가"), Query("q2", "다")],
    ...            {"q1": {"d1": 1}})
    >>> s = make_eval_set(c)
    >>> len(s.queries), s.notes
    (1, ('1 of 2 queries have no relevance judgement and are not evaluated (first: q2).',))
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path

from sparse_demo.config import load_limits
from sparse_demo.corpus import Corpus, load_corpus, parse_qrels
from sparse_demo.data import BENCHMARKS, corpus_from_pairs, load_boolq, load_korsts, read_pairs
from sparse_demo.limits import Limits
from sparse_demo.search import load_corpus_file, load_sample_corpus

logger = logging.getLogger(__name__)

PAIRS_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".jsonl")
SOURCES_HELP = (
    "a BEIR folder or .zip (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), a pairs file "
    "(.csv/.tsv/.jsonl with query and positive columns), 'sample', 'boolq:<split>' or 'korsts:<split>'"
)


def _examples(items: list[str], n: int = 3) -> str:
    shown = ", ".join(repr(x) for x in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


def make_eval_set(corpus: Corpus, *, name: str | None = None) -> Corpus:
    """Check a corpus's queries and qrels and keep the judged queries.

    Raises:
        ValueError: empty corpus, duplicate document or query ids, qrels naming an unknown
            document or query, no query with a positive judgement.
    """
    label = name or corpus.name
    if not corpus.documents:
        raise ValueError(f"{label}: the corpus holds no document")
    dup_docs = [d for d, c in Counter(d.id for d in corpus.documents).items() if c > 1]
    if dup_docs:
        raise ValueError(f"{label}: duplicate document ids: {_examples(dup_docs)}")
    dup_q = [q for q, c in Counter(q.id for q in corpus.queries).items() if c > 1]
    if dup_q:
        raise ValueError(f"{label}: duplicate query ids: {_examples(dup_q)}")
    if not corpus.queries or not corpus.qrels:
        raise ValueError(
            f"{label}: no judged queries to evaluate (found {len(corpus.queries)} queries and "
            f"{len(corpus.qrels)} qrels entries); give {SOURCES_HELP}"
        )
    dropped = corpus.dropped_judgements
    if dropped:
        raise ValueError(
            f"{label}: the qrels name {dropped} judgement(s) of queries or documents missing from "
            "queries.jsonl / corpus.jsonl; fix the ids or remove those qrels lines"
        )
    doc_ids = {d.id for d in corpus.documents}
    query_ids = {q.id for q in corpus.queries}
    unknown_q = sorted(q for q in corpus.qrels if q not in query_ids)
    if unknown_q:
        raise ValueError(
            f"{label}: the qrels name {len(unknown_q)} query id(s) missing from the queries: {_examples(unknown_q)}"
        )
    unknown_d = sorted({d for judged in corpus.qrels.values() for d in judged if d not in doc_ids})
    if unknown_d:
        raise ValueError(
            f"{label}: the qrels name {len(unknown_d)} document id(s) missing from the corpus: {_examples(unknown_d)}"
        )
    notes: list[str] = []
    judged = [q for q in corpus.queries if any(g > 0 for g in corpus.qrels.get(q.id, {}).values())]
    empty = [q for q in corpus.queries if not q.text.strip()]
    if empty:
        raise ValueError(f"{label}: {len(empty)} queries have empty text: {_examples([q.id for q in empty])}")
    missing = [q.id for q in corpus.queries if q not in judged]
    if missing:
        notes.append(
            f"{len(missing)} of {len(corpus.queries)} queries have no relevance judgement and are not "
            f"evaluated (first: {missing[0]})."
        )
    if not judged:
        raise ValueError(f"{label}: none of the {len(corpus.queries)} queries has a relevant document (grade > 0)")
    qrels = {q.id: dict(corpus.qrels[q.id]) for q in judged}
    return replace(
        corpus, name=label, queries=judged, qrels=qrels, checks=[*corpus.checks, *notes], total_queries=len(judged)
    )


def sample_queries(eval_set: Corpus, n: int | None, seed: int = 0) -> Corpus:
    """``n`` queries drawn without replacement with ``seed`` (kept in their original order).

    ``None`` or ``n >=`` the number of queries keeps every query.

    Raises:
        ValueError: ``n < 1``.
    """
    if n is None:
        return eval_set
    if isinstance(n, bool) or int(n) < 1:
        raise ValueError(f"the sample size must be a positive number of queries, got {n!r}")
    ids = [q.id for q in eval_set.queries]
    if n >= len(ids):
        return eval_set
    chosen = set(random.Random(seed).sample(ids, int(n)))
    out = eval_set.with_queries([i for i in ids if i in chosen])
    out.checks.append(f"Sampled {n} of {len(ids)} judged queries (seed {seed}).")
    return out


def load_benchmark(spec: str, data_dir: str | Path | None = None) -> Corpus:
    """``boolq:<split>`` or ``korsts:<split>`` (KorSTS pairs scoring >= 4, corpus of all sentence2).

    Raises:
        ValueError: unknown set or split; FileNotFoundError: the shared data folder is absent.
    """
    kind, _, split = spec.partition(":")
    split = split or "test"
    if kind == "boolq":
        _, judged = load_boolq(split, data_dir)
    elif kind == "korsts":
        _, judged = load_korsts(split, data_dir, corpus_from="all")
    else:
        raise ValueError(f"unknown benchmark {kind!r}; choose one of {', '.join(BENCHMARKS)}")
    return make_eval_set(judged)


def _check_raw_qrels(folder: Path, split: str, corpus: Corpus) -> None:
    """Name the unknown ids of a BEIR folder's qrels (the corpus loader drops them silently)."""
    qrels_file = folder / "qrels" / f"{split}.tsv"
    if not corpus.dropped_judgements or not qrels_file.is_file():
        return
    raw = parse_qrels(qrels_file.read_text(encoding="utf-8"), f"qrels/{split}.tsv")
    corpus.qrels = {q: dict(j) for q, j in raw.items()}
    corpus.dropped_judgements = 0


def load_eval_set(
    source: str | Path, *, split: str = "test", workdir: str | Path | None = None, limits: Limits | None = None
) -> Corpus:
    """Load an evaluation set from a path or a named source (see the module docstring).

    Args:
        source: a path, ``"sample"`` or ``"boolq:<split>"`` / ``"korsts:<split>"``.
        split: the BEIR qrels split.
        workdir: where a zip is unpacked.
        limits: the limits files are read under (default: :func:`sparse_demo.config.load_limits`); the bundled sample
            and the shared benchmark sets are the server's own data and are not checked.

    Raises:
        ValueError: a bad file, an unsupported format, a limit exceeded or failed checks (one line each).
    """
    text = str(source)
    if text == "sample":
        return make_eval_set(load_sample_corpus(), name="bundled sample")
    if text.split(":", 1)[0] in BENCHMARKS and not Path(text).exists():
        return load_benchmark(text)
    path = Path(text)
    if not path.exists():
        raise ValueError(f"{path} does not exist; give {SOURCES_HELP}")
    limits = load_limits() if limits is None else limits
    if path.is_dir() or path.suffix.lower() == ".zip":
        if path.is_dir():
            corpus = load_corpus(path, split=split, limits=limits)
            _check_raw_qrels(path, split, corpus)
        else:
            corpus = load_corpus_file(path, workdir=workdir, limits=limits, split=split)
        return make_eval_set(corpus, name=path.name)
    if path.suffix.lower() in PAIRS_SUFFIXES:
        data = read_pairs(path, max_chars=limits.max_doc_chars)
        passages = {p.positive for p in data.pairs} | {p.negative for p in data.pairs if p.negative}
        limits.check_doc_count(len(passages), f"{path.name} (its distinct passages)")
        out = make_eval_set(corpus_from_pairs(data.pairs, path.name))
        out.checks.append(data.report.summary())
        return out
    raise ValueError(f"unsupported evaluation input {path.name!r}; give {SOURCES_HELP}")

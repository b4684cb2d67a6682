"""The demo model's data: the project's own Korean pairs, split by passage.

Training pairs come from three sources written for the project: the pairs files of
``assets/pairs/``, the evaluation queries of ``assets/corpus/ko_sample`` with their judged
passages, and each passage's title as a query. :func:`training_and_heldout` holds out about 15%
of the passages with all their queries (:func:`sparse_demo.train.split_pairs`), so no held-out
passage or query is trained on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sparse_demo.data.pairs import Pair, read_pairs
from sparse_demo.train import split_pairs

REPO_ROOT = Path(__file__).resolve().parents[2]
PAIRS_DIR = REPO_ROOT / "assets" / "pairs"
CORPUS_DIR = REPO_ROOT / "assets" / "corpus" / "ko_sample"


@dataclass
class BundledData:
    """The project's own Korean data.

    Attributes:
        train_files: the pairs files trained on.
        passages: ``{doc id: passage text}`` of the sample corpus.
        titles: ``{doc id: title}``.
        eval_queries: ``{query id: text}`` of the corpus' evaluation queries.
        qrels: ``{query id: {doc id: score}}``.
        cut: the data was cut to a corpus's first passages (:meth:`first_passages`).
    """

    train_files: list[Path]
    passages: dict[str, str]
    titles: dict[str, str]
    eval_queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    #: set by :meth:`first_passages`: only pairs on the kept passages are trained on
    cut: bool = False

    def texts(self, pairs: Iterable[Pair]) -> list[str]:
        """Every bundled text (passages, titles, evaluation and training queries)."""
        out = list(self.passages.values()) + list(self.titles.values()) + list(self.eval_queries.values())
        for p in pairs:
            out += [t for t in (p.query, p.positive, p.negative) if t]
        return list(dict.fromkeys(out))

    def first_passages(self, n: int) -> BundledData:
        """The same data cut to the corpus's first ``n`` passages: their titles, and the evaluation queries
        judged on them (training pairs are cut likewise by :func:`training_and_heldout`). For quick builds.

        Raises:
            ValueError: ``n`` < 1.
        """
        if n < 1:
            raise ValueError(f"a build needs at least one passage, got {n}")
        kept = dict(list(self.passages.items())[:n])
        qrels = {q: {d: s for d, s in j.items() if d in kept} for q, j in self.qrels.items()}
        qrels = {q: j for q, j in qrels.items() if j}
        return replace(
            self,
            passages=kept,
            titles={d: t for d, t in self.titles.items() if d in kept},
            eval_queries={q: t for q, t in self.eval_queries.items() if q in qrels},
            qrels=qrels,
            cut=True,
        )

    def sha256(self) -> str:
        """Digest of every bundled file the build reads."""
        h = hashlib.sha256()
        for path in [
            *self.train_files,
            CORPUS_DIR / "corpus.jsonl",
            CORPUS_DIR / "queries.jsonl",
            CORPUS_DIR / "qrels" / "test.tsv",
        ]:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_bundled(pairs_dir: Path = PAIRS_DIR, corpus_dir: Path = CORPUS_DIR) -> BundledData:
    """Read the bundled corpus, its queries and qrels, and list the pairs files.

    Raises:
        FileNotFoundError: a bundled file is missing (a broken checkout).
    """
    files = sorted(pairs_dir.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no *.jsonl pairs file in {pairs_dir}")
    docs = _jsonl(corpus_dir / "corpus.jsonl")
    passages = {str(d["_id"]): str(d["text"]).strip() for d in docs}
    titles = {str(d["_id"]): str(d.get("title") or "").strip() for d in docs if d.get("title")}
    queries = {str(q["_id"]): str(q["text"]).strip() for q in _jsonl(corpus_dir / "queries.jsonl")}
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate((corpus_dir / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if i == 0 and parts[0] == "query-id" or len(parts) < 3:
            continue
        qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return BundledData(files, passages, titles, queries, qrels)


def read_training_pairs(files: Sequence[Path]) -> list[Pair]:
    """The pairs of every file, in file order."""
    pairs: list[Pair] = []
    for path in files:
        pairs += read_pairs(path).pairs
    return pairs


def corpus_query_pairs(data: BundledData) -> list[Pair]:
    """The corpus' evaluation queries as ``Pair(query, judged passage)`` (one per judged passage)."""
    out = []
    for qid, judged in data.qrels.items():
        if qid not in data.eval_queries:
            continue
        for doc_id, score in judged.items():
            if score > 0 and doc_id in data.passages:
                out.append(Pair(data.eval_queries[qid], data.passages[doc_id]))
    return out


def title_pairs(data: BundledData) -> list[Pair]:
    """Each passage's title as a query for it."""
    return [
        Pair(title, data.passages[doc_id]) for doc_id, title in data.titles.items() if title and doc_id in data.passages
    ]


def _dedupe(pairs: Iterable[Pair]) -> list[Pair]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in pairs:
        if (p.query, p.positive) not in seen:
            seen.add((p.query, p.positive))
            out.append(p)
    return out


def training_and_heldout(
    data: BundledData, *, eval_fraction: float = 0.15, seed: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """``(training pairs, held-out pairs)``: a seeded split by passage of the bundled queries.

    The pairs files and the corpus' own queries are split by passage
    (:func:`sparse_demo.train.split_pairs`); title pairs are added to training for the training
    passages only.
    """
    files = read_training_pairs(data.train_files)
    if data.cut:  # a cut corpus keeps the pairs on its own passages
        passages = set(data.passages.values())
        files = [p for p in files if p.positive in passages]
    queries = _dedupe(files + corpus_query_pairs(data))
    train, held = split_pairs(queries, eval_fraction, seed=seed)
    if not held:
        raise ValueError("the bundled pairs are too few to hold any passage out")
    held_passages = {p.positive for p in held}
    held_queries = {p.query for p in held}
    extra = [p for p in title_pairs(data) if p.positive not in held_passages and p.query not in held_queries]
    return _dedupe(train + extra), held


__all__ = [
    "CORPUS_DIR",
    "PAIRS_DIR",
    "BundledData",
    "corpus_query_pairs",
    "load_bundled",
    "read_training_pairs",
    "title_pairs",
    "training_and_heldout",
]

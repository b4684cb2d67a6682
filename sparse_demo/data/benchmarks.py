"""Benchmark sets in ``../shared/data`` as training pairs and judged corpora: KoBEST BoolQ and KorSTS.

The folder is ``../shared/data`` next to the checkout, or ``SPARSE_DEMO_DATA_DIR``
(:func:`sparse_demo.config.data_dir`, read when called); a missing folder is a ``FileNotFoundError`` naming it.
Each loader returns ``(pairs, corpus)``: the split's pairs for training, and a
:class:`~sparse_demo.corpus.Corpus` (documents ``d0``, ``d1``, ... in first-seen order; one query
``q0``, ``q1``, ... per row, judged relevant, grade 1, to its passage) for evaluation.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sparse_demo.config import data_dir as default_data_dir
from sparse_demo.corpus import Corpus, Document, Query
from sparse_demo.data.pairs import Pair

#: Benchmark names :func:`sparse_demo.evaluation.load_eval_set` accepts as ``NAME:SPLIT``.
BENCHMARKS: tuple[str, ...] = ("boolq", "korsts")


def _judged(name: str, queries: list[str], gold: list[int], passages: list[str]) -> Corpus:
    docs = [Document(f"d{i}", text) for i, text in enumerate(passages)]
    qs = [Query(f"q{i}", text) for i, text in enumerate(queries)]
    return Corpus(name, docs, qs, {f"q{i}": {f"d{g}": 1} for i, g in enumerate(gold)})


def _read_tsv(path: Path, min_fields: int) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows[1:] if len(r) >= min_fields]


def _data_dir(data_dir: str | Path | None) -> Path:
    base = Path(data_dir) if data_dir is not None else default_data_dir()
    if not base.is_dir():
        raise FileNotFoundError(f"benchmark data folder not found: {base}")
    return base


def load_boolq(split: str = "train", data_dir: str | Path | None = None) -> tuple[list[Pair], Corpus]:
    """KoBEST BoolQ as retrieval: question -> its paragraph.

    Args:
        split: ``train``, ``dev`` or ``test``.
        data_dir: the shared data folder (default ``../shared/data``).

    Returns:
        ``(pairs of the split, the split's questions judged over all unique paragraphs of the three splits)``.
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
        gold.append(corpus[text])
    return pairs, _judged(f"BoolQ {split}", queries, gold, list(corpus))


def load_korsts(
    split: str = "test",
    data_dir: str | Path | None = None,
    min_score: float = 4.0,
    corpus_from: str = "split",
) -> tuple[list[Pair], Corpus]:
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
            gold.append(corpus[s2])
    return pairs, _judged(f"KorSTS {split} (score >= {min_score:g})", queries, gold, list(corpus))


__all__ = ["BENCHMARKS", "load_boolq", "load_korsts"]

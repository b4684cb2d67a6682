"""Measuring the demo model with the Evaluate tab's function: held-out sweep and benchmarks.

:func:`corpus_metrics` runs :func:`sparse_demo.evaluation.evaluate` (memory backend, no significance
tests) for BM25, the model alone and the min-max hybrid at several weights, and reads R@1 and MRR@10
from its rows, so the build's figures are the Evaluate tab's on the same judged corpus.
:func:`pick_weight` recommends the hybrid weight by the package's one rule
(:func:`sparse_demo.evaluation.choose_weight`: best held-out MRR@10; ties: closest to 0.5, then the
smaller); :func:`benchmark_shared` measures KoBEST BoolQ and KorSTS from ``../shared/data`` (never part
of the repository).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sparse_demo.corpus import Corpus, Document, Query
from sparse_demo.data import Pair, load_boolq, load_korsts
from sparse_demo.encoder import SpladeEncoder
from sparse_demo.evaluation import EncodingCache, SystemSpec, choose_weight, evaluate
from sparse_demo.offline.expansion import frequent_verb

logger = logging.getLogger(__name__)


#: Hybrid weights (of the sparse leg) tried on the held-out set; the best MRR@10 is recommended.
WEIGHT_GRID = (0.1, 0.2, 0.3, 0.4, 0.5)
#: The figures the build records per system, and the evaluation metric each one is.
RECORDED: dict[str, str] = {"R@1": "recall@1", "MRR@10": "mrr@10"}


def held_out_corpus(pairs: Sequence[Pair], passages: Sequence[str], name: str = "demo held-out") -> Corpus:
    """The judged corpus the build measures: ``passages`` (then any gold passage missing) as ``"0"``, ``"1"``, ...

    Each distinct query of ``pairs`` counts once (``q0``, ``q1``, ...), relevant (grade 1) to every passage
    it is paired with.
    """
    gold: dict[str, list[str]] = {}
    for p in pairs:
        gold.setdefault(p.query, []).append(p.positive)
    texts = list(dict.fromkeys([*passages, *(t for g in gold.values() for t in g)]))
    doc_id = {t: str(i) for i, t in enumerate(texts)}
    queries = [Query(f"q{i}", q) for i, q in enumerate(gold)]
    qrels = {f"q{i}": {doc_id[t]: 1 for t in g} for i, g in enumerate(gold.values())}
    return Corpus(name, [Document(doc_id[t], t) for t in texts], queries, qrels)


def held_out_metrics(
    model_dir: Path, pairs: Sequence[Pair], passages: Sequence[str], weights: Sequence[float], max_length: int
) -> dict[str, dict[str, float]]:
    """R@1 / MRR@10 of BM25, the model alone and the hybrid at each weight on :func:`held_out_corpus`.

    Args:
        model_dir: the model folder.
        pairs: held-out ``Pair(query, gold passage)``.
        passages: the corpus searched (the gold passages are added when missing).
        weights: hybrid weights (of the sparse leg) to try.
        max_length: the encoder's max length.
    """
    return corpus_metrics(model_dir, held_out_corpus(pairs, passages), weights, max_length)


def corpus_metrics(
    model_dir: Path, corpus: Corpus, weights: Sequence[float], max_length: int
) -> dict[str, dict[str, float]]:
    """``{"bm25" | "model" | "hybrid@W": {"R@1": .., "MRR@10": ..}}`` on a judged corpus, full precision.

    Args:
        model_dir: the model folder (loaded as the app loads it: float32 on CPU).
        corpus: documents with judged queries.
        weights: hybrid weights (of the sparse leg) to try.
        max_length: the encoder's max length.
    """
    name = model_dir.name
    encoder = SpladeEncoder.load(str(model_dir), device="cpu", max_length=max_length, name=name)
    rows = {"bm25": SystemSpec("bm25"), "model": SystemSpec("sparse", name)}
    rows.update({f"hybrid@{w:g}": SystemSpec("hybrid", name, weight=float(w)) for w in weights})
    report = evaluate(
        corpus, list(rows.values()), {name: encoder}, significance=False, cache=EncodingCache(max_entries=1)
    )
    return {
        row: {figure: report.system(spec.label).means[metric] for figure, metric in RECORDED.items()}
        for row, spec in rows.items()
    }


def benchmark_shared(
    model_dir: Path, weights: Sequence[float], max_length: int, data_dir: str | Path | None = None
) -> dict[str, Any]:
    """BM25, the model and the hybrids on KoBEST BoolQ test and KorSTS test (score >= 4).

    BoolQ: the test questions over every unique paragraph of the three splits; KorSTS: the test
    pairs scoring >= 4 over every sentence2 of the three splits, one query per pair (the data
    README's reference table). Needs ``../shared/data`` (never part of the repository).

    Raises:
        FileNotFoundError: the benchmark data folder is missing.
    """
    out: dict[str, Any] = {}
    for name, (_pairs, judged) in (
        ("BoolQ test", load_boolq("test", data_dir)),
        ("KorSTS test >= 4", load_korsts("test", data_dir, corpus_from="all")),
    ):
        logger.info("Benchmark %s: %d queries over %d passages", name, len(judged.queries), len(judged))
        out[name] = corpus_metrics(model_dir, judged, weights, max_length)
    return out


def shared_texts(data_dir: str | Path | None = None) -> list[str]:
    """Every question, paragraph and sentence of BoolQ and KorSTS (all splits), for ``<unk>`` rates."""
    texts: list[str] = []
    for split in ("train", "dev", "test"):
        pairs, _ = load_boolq(split, data_dir)
        texts += [t for p in pairs for t in (p.query, p.positive)]
        pairs, _ = load_korsts(split, data_dir, min_score=0.0)
        texts += [t for p in pairs for t in (p.query, p.positive)]
    return sorted(set(texts))


def pick_weight(metrics: dict[str, dict[str, float]], weights: Sequence[float]) -> float:
    """The hybrid weight with the best held-out MRR@10, by :func:`~sparse_demo.evaluation.choose_weight`'s rule."""
    return choose_weight(weights, [{"all": metrics[f"hybrid@{w:g}"]["MRR@10"]} for w in weights], ["all"])


__all__ = [
    "FREQUENT_ID",
    "RECORDED",
    "WEIGHT_GRID",
    "benchmark_shared",
    "corpus_metrics",
    "expansion_profile",
    "frequent_verb_piece",
    "held_out_corpus",
    "held_out_metrics",
    "low_overlap",
    "pick_weight",
    "shared_texts",
]


#: CoNg morpheme ids below this are the most frequent morphemes (하, 되, 있, 나오, 생기, 만들 among the verb stems).
FREQUENT_ID = 500


def frequent_verb_piece(piece: str, kiwi: Any, max_id: int = FREQUENT_ID) -> bool:
    """Whether a vocabulary piece spells a frequent verb or adjective stem: ``▁나오`` does, ``▁인슐린`` does not.

    The piece (word-start marker dropped; at least two characters, as the teacher's expansions are: a lone
    syllable such as 가 is as likely a particle) plus the ending 다 must analyse (Kiwi, CoNg model) into a first
    morpheme of that same form, tagged VV or VA, whose CoNg id (ids follow frequency) is below ``max_id``:
    the rule of :attr:`~sparse_demo.offline.expansion.TeacherSettings.min_verb_id`, read from the vocabulary side.
    """
    word = piece.lstrip("▁")
    if len(word) < 2:
        return False
    first = kiwi.tokenize(word + "다")[0]
    return first.form == word and frequent_verb(first.tag, int(first.id), max_id)


def expansion_profile(
    model_dir: Path, texts: Sequence[str], max_length: int = 192, kiwi: Any = None, teacher: Any = None
) -> dict[str, float]:
    """Mean per text of the expansion share of L1 mass and the stopword / special mass (both definitions).

    * ``expansion_share``: weight on tokens not among the text's input tokens, over all weight;
    * ``verb_stem_share`` (only with a CoNg ``kiwi``): the part of it on :func:`frequent_verb_piece` tokens
      (나오, 생기: expansions that say little about any text);
    * ``unproposed_share`` (only with a ``teacher``, a :class:`~sparse_demo.offline.expansion.CongTeacher` in
      the model's vocabulary): the part of it on tokens the teacher does not propose for that text: what the
      student adds on its own, related words it generalises to and noise alike;
    * ``stopword_mass``: weight on stopwords judged in context (an input token takes its Kiwi
      morpheme's category), over all weight; ``vocab_stopword_mass``: judged by vocabulary entry
      (the card's notion); ``special_mass``: weight on special tokens.

    Measured with the Explore tab's :class:`~sparse_demo.analysis.Analyzer` (the app's stopword rule).
    """
    import numpy as np

    from sparse_demo.analysis import Analyzer

    encoder = SpladeEncoder.load(str(model_dir), device="cpu", max_length=max_length, name=model_dir.name)
    analyses = Analyzer(encoder).analyze(list(texts))
    verb_id = functools.lru_cache(maxsize=None)(
        lambda tid: frequent_verb_piece(encoder.tokenizer.convert_ids_to_tokens(tid), kiwi)
    )
    rows: dict[str, list[float]] = {
        "expansion_share": [],
        **({"verb_stem_share": []} if kiwi is not None else {}),
        **({"unproposed_share": []} if teacher is not None else {}),
        "stopword_mass": [],
        "vocab_stopword_mass": [],
        "special_mass": [],
    }
    for a in analyses:
        vec = a.encoding.vector
        total = float(np.sum(vec.weights)) or 1.0
        inputs = np.isin(vec.token_ids, np.asarray(a.encoding.input_ids))
        rows["expansion_share"].append(float(np.sum(vec.weights[~inputs])) / total)
        if kiwi is not None:
            verbs = np.array([verb_id(int(t)) for t in vec.token_ids[~inputs]], dtype=bool)
            rows["verb_stem_share"].append(float(np.sum(vec.weights[~inputs][verbs])) / total)
        if teacher is not None:
            proposed = teacher.expansions(a.encoding.text, {int(t) for t in a.encoding.input_ids})
            mask = ~inputs & ~np.isin(vec.token_ids, np.fromiter(proposed, dtype=np.int64, count=len(proposed)))
            rows["unproposed_share"].append(float(np.sum(vec.weights[mask])) / total)
        rows["stopword_mass"].append(a.leakage.stopword_mass_ratio)
        rows["vocab_stopword_mass"].append(float(a.leakage.vocab_stopword_mass_ratio or 0.0))
        rows["special_mass"].append(a.leakage.special_mass_ratio)
    return {k: float(np.mean(v)) if v else 0.0 for k, v in rows.items()}


def low_overlap(corpus: Corpus, max_share: float = 0.5) -> Corpus:
    """The queries of ``corpus`` whose relevant documents share at most ``max_share`` of the query's content morphemes.

    Content morphemes are the default BM25 analyzer's terms (Kiwi ``form/tag`` of content tags); a
    query qualifies when, for every relevant document, ``|terms(q) & terms(d)| / |terms(q)| <= max_share``:
    the vocabulary gap a learned sparse model's expansions are for. Queries without content terms are left out.
    """
    from sparse_demo.korean import bm25_terms

    texts = {d.id: d.text for d in corpus.documents}
    kept = []
    for q in corpus.queries:
        terms = set(bm25_terms(q.text))
        rel = [texts[d] for d, grade in corpus.qrels.get(q.id, {}).items() if grade > 0 and d in texts]
        if terms and rel and all(len(terms & set(bm25_terms(t))) / len(terms) <= max_share for t in rel):
            kept.append(q)
    ids = {q.id for q in kept}
    return Corpus(
        f"{corpus.name}, low overlap (<= {max_share:g})",
        list(corpus.documents),
        kept,
        {k: v for k, v in corpus.qrels.items() if k in ids},
    )

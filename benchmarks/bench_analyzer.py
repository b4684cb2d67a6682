"""BM25 quality per Korean analyzer setting, with the bm25s + Kiwi content-morpheme reference.

For each set, every text is analysed by Kiwi once; each analyzer setting then filters the
same morphemes (:meth:`BM25Analyzer.terms_from_morphemes`), indexes them in the project's
:class:`~sparse_demo.index.bm25.BM25Index` (OpenSearch-exact scoring, as the app searches)
and ranks the top 10 per query. The reference, computed in the same run, is the one in
``../shared/data/README.md``: ``bm25s`` (``method="lucene"``, k1 1.2, b 0.75) over Kiwi
morphemes whose tag is exactly one of NNG NNP NNB NR NP VV VA MAG SL SH SN XR.

Sets:

* BoolQ test: 1,404 test questions over all unique paragraphs of the three splits;
* KorSTS test, score >= 4: sentence1 -> sentence2 over every sentence2 of the three splits;
* the bundled sample (``assets/corpus/ko_sample``, BEIR): 181 queries over 313 passages.

R@1 is the share of queries whose first hit is relevant; MRR@10 the mean reciprocal rank
of the first relevant hit in the top 10 (0 when none). BoolQ and KorSTS need
``../shared/data`` (skipped with a message when absent).

Usage:
    python benchmarks/bench_analyzer.py [--sets boolq,korsts,sample] [--cache /tmp/kiwi.pkl]
        [--analyzer default --analyzer J,E ...]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sparse_demo.evaluation import RetrievalMetrics, run_metrics  # noqa: E402
from sparse_demo.index.bm25 import BM25Index  # noqa: E402
from sparse_demo.korean import Morpheme, get_analyzer, morphemes  # noqa: E402

SAMPLE = ROOT / "assets" / "corpus" / "ko_sample"
#: The reference's content tags, matched exactly (irregular ``VV-I`` etc. are left out).
REFERENCE_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "MAG", "SL", "SH", "SN", "XR"})
DEFAULT_ANALYZERS = (
    "all",
    "E,J,VCN,VCP,XS",  # particles, endings, suffixes and copulas only
    "E,J,VCN,VCP,VX,XS",  # ... and auxiliary verbs
    "nori",  # nori's default stop tags, in Kiwi's tag set
    "default",  # content morphemes only
)


@dataclass
class AnalyzerRows:
    """A judged corpus flattened for the analyzer's own top-1 search: texts and gold row indices."""

    name: str
    queries: list[str]
    gold: list[set[int]]
    corpus: list[str]


def load_sample() -> AnalyzerRows:
    docs = [json.loads(line) for line in (SAMPLE / "corpus.jsonl").read_text(encoding="utf-8").split("\n") if line]
    queries = [json.loads(line) for line in (SAMPLE / "queries.jsonl").read_text(encoding="utf-8").split("\n") if line]
    row = {d["_id"]: i for i, d in enumerate(docs)}
    gold: dict[str, set[int]] = {}
    for line in (SAMPLE / "qrels" / "test.tsv").read_text(encoding="utf-8").split("\n")[1:]:
        parts = line.split("\t")
        if len(parts) >= 3 and int(parts[2]) > 0:
            gold.setdefault(parts[0], set()).add(row[parts[1]])
    qs = [q for q in queries if q["_id"] in gold]
    texts = [f"{d['title']}\n{d['text']}" if d.get("title") else d["text"] for d in docs]
    return AnalyzerRows("sample (ko_sample)", [q["text"] for q in qs], [gold[q["_id"]] for q in qs], texts)


def _rows(judged) -> AnalyzerRows:
    """The package's judged :class:`~sparse_demo.corpus.Corpus` as rows."""
    row = {d.id: i for i, d in enumerate(judged.documents)}
    return AnalyzerRows(
        judged.name,
        [q.text for q in judged.queries],
        [{row[d] for d in judged.qrels[q.id]} for q in judged.queries],
        [d.text for d in judged.documents],
    )


def load_sets(names: Sequence[str]) -> list[AnalyzerRows]:
    out = []
    if {"boolq", "korsts"} & set(names):
        try:
            from sparse_demo.data import load_boolq, load_korsts

            if "boolq" in names:
                out.append(_rows(load_boolq("test")[1]))
            if "korsts" in names:
                out.append(_rows(load_korsts("test", min_score=4.0, corpus_from="all")[1]))
        except FileNotFoundError as exc:
            print(f"skipping BoolQ / KorSTS: {exc}")
    if "sample" in names:
        out.append(load_sample())
    return out


class MorphemeCache:
    """Kiwi morphemes per text, optionally kept in a pickle between runs."""

    def __init__(self, path: Path | None):
        self.path = path
        self.data: dict[str, list[tuple[str, str]]] = {}
        if path is not None and path.is_file():
            self.data = pickle.loads(path.read_bytes())
        self.new = 0

    def get(self, text: str) -> list[Morpheme]:
        pairs = self.data.get(text)
        if pairs is None:
            pairs = self.data[text] = [(m.form, m.tag) for m in morphemes(text)]
            self.new += 1
        return [Morpheme(f, t, 0, 0) for f, t in pairs]

    def save(self) -> None:
        if self.path is not None and self.new:
            self.path.write_bytes(pickle.dumps(self.data))


def metrics(rankings: Sequence[Sequence[int]], gold: Sequence[set[int]]) -> tuple[float, float]:
    """``(R@1, MRR@10)`` of ranked document indices against gold sets, by the package's one metrics code."""
    run = {str(i): [str(d) for d in r] for i, r in enumerate(rankings)}
    qrels = {str(i): {str(d): 1 for d in g} for i, g in enumerate(gold)}
    summary = RetrievalMetrics.from_per_query(run_metrics(run, qrels))
    return summary.recall[1], summary.mrr10


def rank_ours(doc_terms: list[list[str]], query_terms: list[list[str]]) -> list[list[int]]:
    index = BM25Index()
    ids = [f"{i:07d}" for i in range(len(doc_terms))]
    index.add(ids, doc_terms)
    return [[int(h.id) for h in index.search(q, 10)] if q else [] for q in query_terms]


def rank_bm25s(doc_terms: list[list[str]], query_terms: list[list[str]]) -> list[list[int]]:
    import bm25s

    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in terms] for terms in doc_terms]
    ref = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    ref.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)
    out = []
    for q in query_terms:
        qids = [vocab[t] for t in q if t in vocab]
        if not qids:
            out.append([])
            continue
        scores = ref.get_scores(qids)
        top = np.argsort(-scores, kind="stable")[:10]
        out.append([int(i) for i in top if scores[i] > 0])
    return out


def reference_terms(morphs: list[Morpheme]) -> list[str]:
    return [f"{m.form}/{m.tag}" for m in morphs if m.tag in REFERENCE_TAGS]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="boolq,korsts,sample", help="comma-separated: boolq, korsts, sample")
    ap.add_argument(
        "--analyzer",
        action="append",
        dest="analyzers",
        help="an analyzer spec (repeat the option for several); default: " + " | ".join(DEFAULT_ANALYZERS),
    )
    ap.add_argument("--cache", type=Path, default=None, help="pickle file keeping Kiwi morphemes between runs")
    args = ap.parse_args()
    analyzers = [get_analyzer(s) for s in (args.analyzers or DEFAULT_ANALYZERS)]
    cache = MorphemeCache(args.cache)
    rows = []
    for es in load_sets([s.strip() for s in args.sets.split(",")]):
        t0 = time.perf_counter()
        doc_m = [cache.get(t) for t in es.corpus]
        q_m = [cache.get(q) for q in es.queries]
        seconds = time.perf_counter() - t0
        print(f"{es.name}: {len(es.queries):,} queries, {len(es.corpus):,} docs, Kiwi {seconds:.1f}s", flush=True)
        for an in analyzers:
            docs = [an.terms_from_morphemes(m) for m in doc_m]
            qs = [an.terms_from_morphemes(m) for m in q_m]
            r1, mrr = metrics(rank_ours(docs, qs), es.gold)
            rows.append((es.name, f"BM25Index, analyzer {an.spec!r}", r1, mrr))
        docs = [reference_terms(m) for m in doc_m]
        qs = [reference_terms(m) for m in q_m]
        r1, mrr = metrics(rank_bm25s(docs, qs), es.gold)
        rows.append((es.name, "bm25s + Kiwi content morphemes (reference)", r1, mrr))
    cache.save()
    print("\n| set | BM25 | R@1 | MRR@10 |\n|---|---|---|---|")
    for name, what, r1, mrr in rows:
        print(f"| {name} | {what} | {r1:.3f} | {mrr:.3f} |")


if __name__ == "__main__":
    main()

"""The CoNg teacher's own vectors as a retriever: what its expansions cost or gain on low overlap, in a minute.

A demo build takes about ten minutes; the teacher's vectors take seconds, and a symmetric student learns
them (its expansion share ends up at roughly 0.6 of the teacher's). So a teacher setting can be judged
here first. For each setting (``TeacherSettings`` fields as ``key=value``, one ``--set`` per setting,
e.g. ``--set weight=1.3 --set "weight=1.3 top_n=20"``), the V26-style teacher (function pieces at 0), in
the bundled V26-style model's vocabulary:

* its mean expansion share of L1 mass on the BoolQ and KorSTS questions of ``--split``;
* R@1 / MRR@10 on the KorSTS ``--split`` pairs scoring >= 4 whose answer shares at most half of the
  question's content morphemes (``measure.low_overlap``), searched among every sentence of the three
  splits, with the teacher's vectors on both sides (what a symmetric model does), on the query side
  only (documents: their own content pieces), and without expansions (own content pieces only);
  BM25 (the package's Kiwi analyzer) beside.

The default split is ``train`` (422 such pairs; ``dev`` has 64), so a setting chosen here was never tuned on
the test pairs the showcase tests use. Needs ``../shared/data``.

Usage::

    python benchmarks/bench_teacher.py --set weight=0.8 --set "weight=1.3 rarity_ref=20000 min_verb_id=500"
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _settings(spec: str):
    from sparse_demo.offline.expansion import TeacherSettings

    fields = [f.name for f in dataclasses.fields(TeacherSettings)]
    kw: dict = {"function_target": 0.0}
    for item in spec.split():
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown TeacherSettings field {key!r}; fields: {', '.join(fields)}")
        kw[key] = float(value) if "." in value else int(value)
    return TeacherSettings(**kw)


def _matrix(vectors, vocab: int):
    import numpy as np
    from scipy.sparse import csr_matrix

    rows = [i for i, v in enumerate(vectors) for _ in v]
    cols = [p for v in vectors for p in v]
    vals = [w for v in vectors for w in v.values()]
    return csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)), shape=(len(vectors), vocab))


def _figures(scores, doc_ids, corpus) -> tuple[float, float]:
    import numpy as np

    from sparse_demo.evaluation.metrics import rankings_from_scores, run_metrics

    ranked = rankings_from_scores(np.asarray(scores.todense() if hasattr(scores, "todense") else scores), doc_ids)
    per_query = run_metrics(
        {q.id: r for q, r in zip(corpus.queries, ranked, strict=True)}, corpus.qrels, ("recall@1", "mrr@10")
    )
    return tuple(float(np.mean(list(per_query[m].values()))) for m in ("recall@1", "mrr@10"))  # type: ignore[return-value]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", action="append", dest="sets", default=None, help="TeacherSettings as key=value ...")
    parser.add_argument("--split", default="train", choices=("train", "dev", "test"))
    parser.add_argument("--questions", type=int, default=300, help="questions per set for the expansion share")
    args = parser.parse_args()

    import numpy as np
    from transformers import AutoTokenizer

    from sparse_demo.data import load_boolq, load_korsts
    from sparse_demo.index.bm25 import BM25Index
    from sparse_demo.korean import bm25_terms
    from sparse_demo.offline.expansion import CongTeacher
    from sparse_demo.offline.measure import low_overlap

    tokenizer = AutoTokenizer.from_pretrained(str(ROOT / "assets" / "demo-v26-style"))
    vocab = len(tokenizer)
    pairs, judged = load_korsts(args.split, corpus_from="all")
    low = low_overlap(judged)
    docs = low.documents
    doc_ids = [d.id for d in docs]
    questions = {
        "BoolQ": [p.query for p in load_boolq(args.split)[0]][: args.questions],
        "KorSTS": [p.query for p in pairs][: args.questions],
    }
    print(f"KorSTS {args.split} >= 4, low overlap: {len(low.queries)} queries over {len(docs)} sentences")

    t0 = time.perf_counter()
    bm25 = BM25Index()
    bm25.add(doc_ids, [bm25_terms(d.text) for d in docs])
    bm25_scores = np.stack([bm25.scores(bm25_terms(q.text)) for q in low.queries])
    r1, mrr = _figures(bm25_scores, doc_ids, low)
    print(f"BM25: R@1 {r1:.3f} MRR@10 {mrr:.3f} ({time.perf_counter() - t0:.0f} s)")
    columns = ("teacher settings", "BoolQ share", "KorSTS share", "both sides R@1 / MRR@10", "query side only")
    print("| " + " | ".join((*columns, "no expansion", "s")) + " |")
    print("|---" * (len(columns) + 2) + "|")
    for spec in args.sets or ["weight=0.8"]:
        t0 = time.perf_counter()
        teacher = CongTeacher(tokenizer, _settings(spec))

        def vector(text: str, teacher: CongTeacher = teacher) -> dict[int, float]:
            return teacher.target(text)[0]

        def own(vec: dict[int, float], text: str) -> dict[int, float]:
            ids = set(tokenizer(text, truncation=True, max_length=192)["input_ids"])
            return {p: w for p, w in vec.items() if p in ids}

        shares = {}
        for name, texts in questions.items():
            values = []
            for text in texts:
                vec = vector(text)
                total = sum(vec.values())
                values.append((total - sum(own(vec, text).values())) / total if total else 0.0)
            shares[name] = float(np.mean(values))
        doc_full = [vector(d.text) for d in docs]
        doc_own = [own(v, d.text) for v, d in zip(doc_full, docs, strict=True)]
        query_full = [vector(q.text) for q in low.queries]
        query_own = [own(v, q.text) for v, q in zip(query_full, low.queries, strict=True)]
        D, D0 = _matrix(doc_full, vocab), _matrix(doc_own, vocab)  # noqa: N806 - matrices
        Q, Q0 = _matrix(query_full, vocab), _matrix(query_own, vocab)  # noqa: N806
        both = _figures(Q @ D.T, doc_ids, low)
        one = _figures(Q @ D0.T, doc_ids, low)
        none = _figures(Q0 @ D0.T, doc_ids, low)
        print(
            f"| {spec} | {shares['BoolQ']:.1%} | {shares['KorSTS']:.1%} | {both[0]:.3f} / {both[1]:.3f} | "
            f"{one[0]:.3f} / {one[1]:.3f} | {none[0]:.3f} / {none[1]:.3f} | {time.perf_counter() - t0:.0f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

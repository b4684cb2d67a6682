"""Benchmark the OpenSearch backend on the local node (``scripts/opensearch.sh start``).

Indexes ``--docs`` synthetic documents (default 10,000; Zipf tokens, 150-300 sparse tokens
and as many BM25 term draws per document) into a throw-away index, then reports bulk
throughput and the p50/p95 latency of the bm25, sparse and hybrid (min-max) searches, with
the in-memory backend on the same data for comparison. The index is deleted at the end.

Usage:
    python benchmarks/bench_opensearch.py [--docs 10000] [--queries 100]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sparse_demo.index import IndexDocument, MemoryBackend, hybrid_search
from sparse_demo.index.opensearch import OpenSearchBackend, OpenSearchUnavailable


def zipf_probs(vocab: int, a: float = 1.1) -> np.ndarray:
    p = 1.0 / np.arange(1, vocab + 1) ** a
    return p / p.sum()


def make_docs(n: int, vocab: int, rng: np.random.Generator) -> list[IndexDocument]:
    p = zipf_probs(vocab)
    docs = []
    for i in range(n):
        size = int(rng.integers(150, 301))
        toks = np.unique(rng.choice(vocab, size=size * 3, p=p))
        toks = rng.permutation(toks)[:size]
        w = rng.uniform(0.05, 3.0, size=toks.size)
        terms = [f"w{t}/NNG" for t in rng.choice(vocab, size=size, p=p).tolist()]
        sparse = {f"▁t{t}": float(x) for t, x in zip(toks.tolist(), w.tolist())}
        docs.append(IndexDocument(f"doc{i:06d}", f"synthetic document {i}", terms, sparse))
    return docs


def make_queries(n: int, vocab: int, rng: np.random.Generator):
    p = zipf_probs(vocab)
    out = []
    for _ in range(n):
        toks = rng.permutation(np.unique(rng.choice(vocab, size=90, p=p)))[: int(rng.integers(20, 41))]
        qvec = {f"▁t{t}": float(x) for t, x in zip(toks.tolist(), rng.uniform(0.1, 2.5, toks.size).tolist())}
        terms = [f"w{t}/NNG" for t in np.unique(rng.choice(vocab, size=10, p=p)).tolist()]
        out.append((terms, qvec))
    return out


def timed(fn, queries) -> list[float]:
    lat = []
    for terms, qvec in queries:
        t0 = time.perf_counter()
        fn(terms, qvec)
        lat.append((time.perf_counter() - t0) * 1000)
    return lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--vocab", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    backend = OpenSearchBackend(f"bench-sparse-demo-{uuid.uuid4().hex[:10]}")
    try:
        info = backend.ping()
    except OpenSearchUnavailable as exc:
        sys.exit(str(exc))
    print(
        f"OpenSearch {info['version']['number']} at {backend.settings.display_url}, "
        f"sparse query: {'neural_sparse' if backend.has_neural_plugin() else 'rank_feature (linear)'}"
    )
    docs = make_docs(args.docs, args.vocab, rng)
    queries = make_queries(args.queries, args.vocab, rng)
    n_feat = sum(len(d.sparse) for d in docs)
    print(
        f"corpus: {len(docs):,} docs, {n_feat / len(docs):.0f} sparse tokens and "
        f"{sum(len(d.terms) for d in docs) / len(docs):.0f} BM25 terms per doc"
    )
    try:
        t0 = time.perf_counter()
        backend.add(docs)
        bulk_s = time.perf_counter() - t0
        print(f"bulk indexing: {len(docs) / bulk_s:,.0f} docs/s ({bulk_s:.1f} s incl. refresh and count check)")

        memory = MemoryBackend(feature_precision="lucene")  # 9-bit weights, as rank_features
        t0 = time.perf_counter()
        memory.add(docs)
        print(f"memory backend build: {len(docs) / (time.perf_counter() - t0):,.0f} docs/s")

        for be in (backend, memory):  # warm up caches and JIT
            for terms, qvec in queries[:10]:
                hybrid_search(be, terms, qvec, k=10)

        rows = []
        for label, be in (("opensearch", backend), ("memory", memory)):
            rows.append((label, "bm25", timed(lambda t, q, be=be: be.search_bm25(t, 10), queries)))
            rows.append((label, "sparse", timed(lambda t, q, be=be: be.search_sparse(q, 10), queries)))
            rows.append((label, "hybrid", timed(lambda t, q, be=be: hybrid_search(be, t, q, k=10), queries)))
        print(f"\nlatency over {len(queries)} queries (k=10; hybrid = both legs with 100 candidates + min-max fusion)")
        p50 = {}
        for label, leg, lat in rows:
            p50[(label, leg)] = float(np.percentile(lat, 50))
            print(f"  {label:<10} {leg:<6}: p50 {p50[(label, leg)]:7.2f} ms  p95 {np.percentile(lat, 95):7.2f} ms")
        for leg in ("bm25", "sparse", "hybrid"):
            print(f"  ratio opensearch/memory {leg:<6}: x{p50[('opensearch', leg)] / p50[('memory', leg)]:.2f}")
        same = sum(
            hybrid_search(backend, t, q, k=10).ids[:5] == hybrid_search(memory, t, q, k=10).ids[:5] for t, q in queries
        )
        print(f"  hybrid top-5 identical to memory backend: {same}/{len(queries)}")
    finally:
        backend.clear()


if __name__ == "__main__":
    main()

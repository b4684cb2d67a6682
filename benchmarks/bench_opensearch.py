"""Benchmark OpenSearch as clusters run it, side by side in one run, against the exact in-memory index.

Indexes ``--docs`` synthetic documents (default 100,000; Zipf tokens, 150-300 sparse tokens and as many
BM25 term draws per document, shaped like a SPLADE model's document vectors) into a single node
(``--single``, 1 shard) and into a cluster (``--cluster``, 2 shards, 1 replica; ``scripts/opensearch.sh``
with ``OPENSEARCH_NEURAL=1 OPENSEARCH_NODES=2 OPENSEARCH_PORT=9250``), and reports:

* bulk throughput (docs/s) on each;
* p50 / p95 latency and recall@10 against the exact memory index (the same top 10 of the exact dot
  product; hybrid against the memory index's client-side min-max fusion) of the ``rank_feature`` bool
  query, ``neural_sparse``, two-phase ``neural_sparse``, server-side hybrid (search pipeline) and
  client-side hybrid, on the cluster (the neural ones need the plugin) and the single node;
* the same for ``pyseismic-lsr`` (SEISMIC, an approximate in-memory index, the field's speed reference)
  built on the same vectors, when it is installed (``pip install pyseismic-lsr``);
* the same for OpenSearch 3.x's own SEISMIC: the vectors in a ``sparse_vector`` field of a node with
  neural-search 3.3+ (``--sparse-vector``, default ``http://127.0.0.1:9280``: ``scripts/opensearch.sh`` with
  ``OPENSEARCH_VERSION=3.6.0 OPENSEARCH_NEURAL=1 OPENSEARCH_PORT=9280 OPENSEARCH_HEAP=2g``), token ids
  folded below 32768 (:mod:`sparse_demo.index.opensearch.sparse_vector`), engine defaults otherwise.

Each index is deleted at the end. Usage::

    python benchmarks/bench_opensearch.py [--docs 100000] [--queries 200] \
        [--single http://127.0.0.1:9200] [--cluster http://127.0.0.1:9250] [--sparse-vector http://127.0.0.1:9280]
    # the sparse_vector field near pyseismic-lsr's settings (3,500 postings per list, every query token read):
    python benchmarks/bench_opensearch.py --skip single,cluster --sv-n-postings 3500 --sv-top-n 0 --sv-heap-factor 0.8
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
from sparse_demo.index.opensearch import ConnectionSettings, OpenSearchBackend, OpenSearchUnavailable, TwoPhase


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


def timed(fn, queries) -> tuple[list[float], list[list[str]]]:
    lat, ids = [], []
    for terms, qvec in queries:
        t0 = time.perf_counter()
        got = fn(terms, qvec)
        lat.append((time.perf_counter() - t0) * 1000)
        ids.append(got)
    return lat, ids


def recall(got: list[list[str]], want: list[list[str]], k: int = 10) -> float:
    return float(np.mean([len(set(g[:k]) & set(w[:k])) / max(1, len(w[:k])) for g, w in zip(got, want, strict=True)]))


def connect(url: str, shards: int, replicas: int) -> OpenSearchBackend | None:
    be = OpenSearchBackend(
        f"bench-sparse-demo-{uuid.uuid4().hex[:10]}",
        ConnectionSettings(url=url),
        shards=shards,
        replicas=replicas,
        chunk_size=1000,
        max_retries=8,
    )
    try:
        info = be.ping()
    except OpenSearchUnavailable as exc:
        print(f"{url}: not reachable ({exc}); skipped")
        return None
    nodes = be.health().get("number_of_nodes")
    print(
        f"{url}: OpenSearch {info['version']['number']}, {nodes} node(s), "
        f"neural-search plugin {'yes' if be.has_neural_plugin() else 'no'}"
    )
    return be


def seismic_rows(docs, queries, exact_ids) -> list[tuple]:
    try:
        import seismic
    except ImportError:
        print("pyseismic-lsr is not installed (pip install pyseismic-lsr): SEISMIC row skipped")
        return []
    st = seismic.get_seismic_string()
    dataset = seismic.SeismicDataset()
    for d in docs:
        toks = np.array(list(d.sparse), dtype=st)
        dataset.add_document(d.id, toks, np.array(list(d.sparse.values()), dtype=np.float32))
    t0 = time.perf_counter()
    index = seismic.SeismicIndex.build_from_dataset(dataset)
    print(f"SEISMIC index built in {time.perf_counter() - t0:.1f} s")

    def search(_terms, qvec):
        res = index.search(
            "q",
            np.array(list(qvec), dtype=st),
            np.array(list(qvec.values()), dtype=np.float32),
            k=10,
            query_cut=len(qvec),
            heap_factor=0.8,
        )
        return [doc for _q, _score, doc in res]

    lat, ids = timed(search, queries)
    return [("pyseismic-lsr (memory, approximate)", "sparse", lat, recall(ids, exact_ids))]


def sparse_vector_rows(url: str, docs, queries, settings=None) -> list[tuple]:
    """OpenSearch 3.x's ``sparse_vector`` field (SEISMIC) on the same vectors, against exact search
    (``settings``: a :class:`SeismicSettings`, None for the engine's defaults)."""
    import scipy.sparse as sp
    from opensearchpy import OpenSearch

    from sparse_demo.index.opensearch.sparse_vector import engine_agreement, sparse_vector_support

    def matrix(vectors):
        rows, cols, vals = [], [], []
        for i, vec in enumerate(vectors):
            rows += [i] * len(vec)
            cols += [int(t[2:]) for t in vec]  # "▁t123" -> 123
            vals += list(vec.values())
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(vectors), max(cols) + 1))

    client = OpenSearch(url, timeout=120)
    try:
        why_not = sparse_vector_support(client)
    except Exception as exc:  # noqa: BLE001 - not reachable
        print(f"{url}: not reachable ({type(exc).__name__}); sparse_vector row skipped")
        return []
    if why_not:
        print(f"{url}: {why_not}; sparse_vector row skipped")
        return []
    doc_m, q_m = matrix([d.sparse for d in docs]), matrix([q for _t, q in queries])
    width = max(doc_m.shape[1], q_m.shape[1])
    doc_m.resize(doc_m.shape[0], width)
    q_m.resize(q_m.shape[0], width)
    a = engine_agreement(
        client, doc_m, q_m, 10, settings=settings, bulk_size=1000, progress=lambda _f, msg: print(msg, flush=True)
    )
    print(
        f"sparse_vector on OpenSearch {a.version}: ingest + merge {a.ingest_s:.1f} s "
        f"({a.documents / a.ingest_s:,.0f} docs/s), SEISMIC path {'yes' if a.approximate else 'NO'}, "
        f"recall@10 vs folded+quantized exact {a.engine_only_recall_at_k:.3f}, "
        f"max score gap {a.score_max_rel_error:.2g}"
    )
    chosen = "engine defaults" if settings is None else ", ".join(f"{k} {v}" for k, v in sorted(a.settings.items()))
    print(f"sparse_vector settings: {chosen}")
    where = f"OpenSearch {a.version} sparse_vector (SEISMIC, 1 shard{'' if settings is None else ', tuned'})"
    return [(where, "neural_sparse", {50: a.p50_ms, 95: a.p95_ms}, a.recall_at_k)]


def _seismic_settings(args, queries):
    """The ``sparse_vector`` settings asked for on the command line, or None (the engine's defaults)."""
    if args.sv_n_postings is None and args.sv_top_n is None and args.sv_heap_factor is None:
        return None
    from sparse_demo.index.opensearch.sparse_vector import SeismicSettings

    top_n = args.sv_top_n if args.sv_top_n is not None else SeismicSettings.top_n
    return SeismicSettings(
        n_postings=args.sv_n_postings,
        top_n=top_n or max(len(q) for _t, q in queries),
        heap_factor=args.sv_heap_factor if args.sv_heap_factor is not None else SeismicSettings.heap_factor,
    )


class Rows(list):
    """The table's rows, each also printed (flushed) as it is measured, so a late failure loses none."""

    def append(self, row: tuple) -> None:
        super().append(row)
        print("row:", _line(row), flush=True)

    def __iadd__(self, rows):
        for row in rows:
            self.append(row)
        return self


def _line(row: tuple) -> str:
    where, what, lat, rec = row
    p50, p95 = (lat[50], lat[95]) if isinstance(lat, dict) else (np.percentile(lat, 50), np.percentile(lat, 95))
    return f"| {where} | {what} | {p50:.2f} | {p95:.2f} | {rec:.3f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--vocab", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--single", default="http://127.0.0.1:9200", help="one node (an index of 1 shard)")
    ap.add_argument("--cluster", default="http://127.0.0.1:9250", help="a cluster (2 shards, 1 replica)")
    ap.add_argument("--sparse-vector", default="http://127.0.0.1:9280", help="a 3.x node with neural-search")
    ap.add_argument("--sv-n-postings", type=int, help="sparse_vector n_postings (default: the engine's)")
    ap.add_argument("--sv-top-n", type=int, help="query tokens SEISMIC reads (0: all; default: the engine's 10)")
    ap.add_argument("--sv-heap-factor", type=float, help="SEISMIC's heap_factor (default: the engine's 1.0)")
    ap.add_argument(
        "--skip", default="", help="comma-separated rows to leave out: single, cluster, pyseismic, sparse-vector"
    )
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    rng = np.random.default_rng(args.seed)
    docs = make_docs(args.docs, args.vocab, rng)
    queries = make_queries(args.queries, args.vocab, rng)
    print(
        f"corpus: {len(docs):,} docs, {sum(len(d.sparse) for d in docs) / len(docs):.0f} sparse tokens and "
        f"{sum(len(d.terms) for d in docs) / len(docs):.0f} BM25 terms per doc; {len(queries)} queries"
    )
    memory = MemoryBackend()  # exact dot products: the reference
    t0 = time.perf_counter()
    memory.add(docs)
    print(f"memory index build: {len(docs) / (time.perf_counter() - t0):,.0f} docs/s")
    exact_lat, exact_ids = timed(lambda t, q: memory.search_sparse(q, 10).ids, queries)
    hyb_lat, hyb_ids = timed(lambda t, q: hybrid_search(memory, t, q, k=10).ids, queries)
    rows = Rows()
    rows.append(("memory (exact)", "sparse", exact_lat, 1.0))
    rows.append(("memory (exact)", "client hybrid", hyb_lat, 1.0))
    backends = []
    deployments = (("single", "1 node", args.single, 1, 0), ("cluster", "cluster", args.cluster, 2, 1))
    for key, label, url, shards, replicas in deployments:
        if key in skip:
            continue
        be = connect(url, shards, replicas)
        if be is None:
            continue
        backends.append(be)
        t0 = time.perf_counter()
        be.add(docs)
        bulk_s = time.perf_counter() - t0
        print(f"{label}: bulk {len(docs) / bulk_s:,.0f} docs/s ({bulk_s:.1f} s incl. refresh and count check)")
        plain = OpenSearchBackend(be.index, be.settings, use_neural=False, shards=shards, replicas=replicas)
        for b in (be, plain):  # warm up
            for terms, qvec in queries[:10]:
                b.search_sparse(qvec, 10)
                b.search_bm25(terms, 10)
        lat, ids = timed(lambda t, q, b=plain: b.search_sparse(q, 10).ids, queries)
        rows.append((f"{label} ({shards} shard(s))", "rank_feature", lat, recall(ids, exact_ids)))
        lat, ids = timed(lambda t, q, b=plain: hybrid_search(b, t, q, k=10).ids, queries)
        rows.append((f"{label} ({shards} shard(s))", "client hybrid", lat, recall(ids, hyb_ids)))
        if be.has_neural_plugin():
            lat, ids = timed(lambda t, q, b=be: b.search_sparse(q, 10).ids, queries)
            rows.append((f"{label} ({shards} shard(s))", "neural_sparse", lat, recall(ids, exact_ids)))
            tp = TwoPhase()
            lat, ids = timed(lambda t, q, b=be, tp=tp: b.search_sparse(q, 10, two_phase=tp).ids, queries)
            rows.append((f"{label} ({shards} shard(s))", "two-phase neural_sparse", lat, recall(ids, exact_ids)))

            def server(t, q, b=be):
                return b.search_hybrid(t, q, 10, fusion="minmax", weights=(0.5, 0.5), candidates=100)[0].ids

            lat, ids = timed(server, queries)
            rows.append((f"{label} ({shards} shard(s))", "server hybrid", lat, recall(ids, hyb_ids)))
    if "pyseismic" not in skip:
        rows += seismic_rows(docs, queries, exact_ids)
    if "sparse-vector" not in skip:
        rows += sparse_vector_rows(args.sparse_vector, docs, queries, _seismic_settings(args, queries))
    print(f"\n{len(queries)} queries, k=10; recall@10 against the exact memory index (hybrid: its client fusion)\n")
    print("| where | query | p50 ms | p95 ms | recall@10 |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(_line(row))
    for be in backends:
        be.clear()


if __name__ == "__main__":
    main()

"""OpenSearch 3.x's ``sparse_vector`` field on Korean data: the in-memory report next to a real node, in one run.

For KoBEST BoolQ test (``../shared/data``; the bundled sample without it) and two kinds of vectors:

* the V26-style demo model's search vectors (a 15k-piece vocabulary: nothing folds);
* an XLM-R stand-in: each text's own XLM-R token ids (``../shared/models/xlmr-tokenizer``, 250,002 ids)
  weighted ``log(1 + count)``, special tokens dropped, since no 250,002-token SPLADE checkpoint is
  reachable here; it has the id distribution of Korean text in XLM-R's vocabulary, which is what
  folding acts on;

prints :func:`~sparse_demo.index.sparse_vector_compat.compatibility_report` (folding and quantization,
in memory) and :func:`~sparse_demo.index.opensearch.sparse_vector.engine_agreement` (the same vectors in a
``sparse_vector`` index searched by SEISMIC on the node at ``--url``) side by side.

Usage::

    OPENSEARCH_VERSION=3.6.0 OPENSEARCH_NEURAL=1 OPENSEARCH_PORT=9280 OPENSEARCH_HEAP=2g scripts/opensearch.sh start
    python benchmarks/bench_sparse_vector.py [--url http://127.0.0.1:9280] [--top-n 10] [--heap-factor 1.0]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
XLMR = ROOT.parent / "shared" / "models" / "xlmr-tokenizer"


def xlmr_vectors(texts: list[str]) -> sp.csr_matrix:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(XLMR))
    special = set(tok.all_special_ids)
    rows, cols, vals = [], [], []
    for i, ids in enumerate(tok(texts, truncation=True, max_length=512)["input_ids"]):
        for t, c in Counter(t for t in ids if t not in special).items():
            rows.append(i)
            cols.append(t)
            vals.append(float(np.log1p(c)))
    return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), len(tok)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:9280")
    ap.add_argument("--top-n", type=int, default=10)
    ap.add_argument("--heap-factor", type=float, default=1.0)
    args = ap.parse_args()

    from opensearchpy import OpenSearch

    from sparse_demo.data import load_boolq
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.index.opensearch.sparse_vector import SeismicSettings, engine_agreement
    from sparse_demo.index.sparse_vector_compat import compatibility_report
    from sparse_demo.offline import DEMO_STYLE_DIRS
    from sparse_demo.search import load_sample_corpus
    from sparse_demo.search.encode import doc_text
    from sparse_demo.search.sparse_vector import model_vectors

    try:
        corpus = load_boolq("test")[1]
    except FileNotFoundError as exc:
        print(f"note: {exc}; the bundled sample instead")
        corpus = load_sample_corpus()
    queries = [q.text for q in corpus.queries]
    print(f"{corpus.name}: {len(corpus.documents):,} documents, {len(queries):,} queries; node {args.url}")
    client = OpenSearch(args.url, timeout=300)
    settings = SeismicSettings(top_n=args.top_n, heap_factor=args.heap_factor)
    systems = {}
    encoder = SpladeEncoder.load(str(DEMO_STYLE_DIRS["v26"]), device="cpu")
    docs, qs = model_vectors(encoder, corpus, queries)
    systems["V26-style demo model"] = (docs, qs, int(encoder.vocab_size))
    if (XLMR / "tokenizer.json").is_file():
        d = xlmr_vectors([doc_text(x.title, x.text) for x in corpus.documents])
        q = xlmr_vectors(queries)
        systems["XLM-R ids, log(1+count)"] = (d, q, d.shape[1])
    else:
        print(f"note: {XLMR} not found; the XLM-R stand-in is skipped")
    rows = []
    for name, (d, q, vocab) in systems.items():
        r = compatibility_report(d, q, vocab, 10)
        e = engine_agreement(client, d, q, 10, settings=settings, bulk_size=500)
        rows.append((name, vocab, r, e))
        print(f"{name}: ingest + merge {e.ingest_s:.1f} s, SEISMIC path {'yes' if e.approximate else 'NO'}")
    print(
        "\n| vectors | vocabulary | colliding ids | doc mass on colliding ids | folded R@10 (memory) "
        "| folded + quantized R@10 (memory) | engine R@10 | engine vs folded+quantized | max score gap "
        "| p50 ms | p95 ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, vocab, r, e in rows:
        print(
            f"| {name} | {vocab:,} | {r.colliding_ids:,} of {r.distinct_ids:,} | {r.colliding_mass_share:.1%} "
            f"| {r.folded.recall_at_k:.3f} | {r.quantized.recall_at_k:.3f} | {e.recall_at_k:.3f} "
            f"| {e.engine_only_recall_at_k:.3f} | {e.score_max_rel_error:.1g} | {e.p50_ms:.1f} | {e.p95_ms:.1f} |"
        )
    print(f"\nengine: OpenSearch {rows[0][3].version}, {rows[0][3].settings}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

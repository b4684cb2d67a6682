"""Search-tab rebuild times on the bundled sample: the first build, an analyzer change, a model change.

Builds the in-memory index of ``assets/corpus/ko_sample`` (313 passages) with the bundled demo
model through one :class:`~sparse_demo.search.SearchSession` (as the Search tab does), then:

* changes only the BM25 analyzer (``default`` -> ``all`` -> ``nori``): the document vectors do not
  depend on it, so the model should not run again;
* changes only the model (the demo model loaded again with another ``max_length``, so another
  fingerprint), keeping the analyzer: the BM25 terms do not depend on the model.

Prints each step's seconds and how many texts the model encoded in it.

Usage:
    python benchmarks/bench_search_rebuild.py
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sparse_demo.corpus import load_corpus  # noqa: E402
from sparse_demo.encoder import SpladeEncoder  # noqa: E402
from sparse_demo.offline import DEMO_MODEL_DIR  # noqa: E402
from sparse_demo.search import SearchSession  # noqa: E402

logger = logging.getLogger("bench_search_rebuild")


def counted(encoder: SpladeEncoder) -> list[int]:
    """Count the texts ``encoder.encode_iter`` encodes (a thin wrapper around the real method)."""
    seen = [0]
    real = encoder.encode_iter

    def encode_iter(texts, **kwargs):  # noqa: ANN001, ANN003, ANN202
        seen[0] += len(texts)
        return real(texts, **kwargs)

    encoder.encode_iter = encode_iter  # type: ignore[method-assign]
    return seen


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    corpus = load_corpus(ROOT / "assets" / "corpus" / "ko_sample")
    enc = SpladeEncoder.load(str(DEMO_MODEL_DIR), device="cpu", name="demo")
    enc2 = SpladeEncoder.load(str(DEMO_MODEL_DIR), device="cpu", name="demo-128", max_length=128)
    seen, seen2 = counted(enc), counted(enc2)
    session = SearchSession()
    steps = [
        ("first build (default analyzer)", enc, "default"),
        ("analyzer -> all", enc, "all"),
        ("analyzer -> nori", enc, "nori"),
        ("model -> demo-128 (analyzer nori)", enc2, "nori"),
        ("analyzer -> default (demo-128)", enc2, "default"),
    ]
    print(f"{len(corpus)} documents")
    for label, encoder, analyzer in steps:
        before = seen[0] + seen2[0]
        t0 = time.perf_counter()
        session.get_or_build(corpus, encoder, "memory", analyzer=analyzer)
        dt = time.perf_counter() - t0
        print(f"{label:40s} {dt:7.2f} s  texts encoded: {seen[0] + seen2[0] - before}")


if __name__ == "__main__":
    main()

"""Long documents: BM25, the model alone and the hybrid under ``first``, ``max`` and ``passages``, side by side.

The long set is built from ``../shared/data`` (:func:`sparse_demo.data.long_documents.join_paragraphs`): the
KoBEST BoolQ test questions, their paragraphs (and every other BoolQ paragraph) shuffled into documents of
``--per-document`` paragraphs, so most documents are longer than the model's 192 tokens and a judged
paragraph sits at depth 0, 1, 2 or 3. Each window mode runs the same :func:`sparse_demo.evaluation.evaluate`
as the Evaluate tab and the CLI (BM25, ``sparse:MODEL``, ``hybrid:MODEL`` at the model's recommended weight),
and the encoding time of each mode is printed beside its figures; then R@1 by depth (the paragraph's
position in its document), which shows what ``first`` cannot read. The same table on BoolQ test itself and
on the bundled sample shows that short texts are unchanged (every mode reads them whole).

Usage::

    OMP_NUM_THREADS=2 nice -n 10 python benchmarks/bench_long_documents.py                 # the demo model
    python benchmarks/bench_long_documents.py --model /path/to/model --queries 300 --per-document 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO_MODEL = ROOT / "assets" / "demo-v26-style"
MODES = ("first", "max", "passages")


def _subset(corpus, n: int | None, seed: int):
    from sparse_demo.evaluation import sample_queries

    return sample_queries(corpus, n, seed) if n else corpus


def _row(report, label: str) -> dict:
    return report.system(label).means


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEMO_MODEL), help="a model folder (default: assets/demo-v26-style)")
    parser.add_argument("--per-document", type=int, default=4, help="paragraphs joined into one document")
    parser.add_argument("--queries", type=int, default=None, help="evaluate N sampled questions (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stride", type=int, default=None, help="window stride in tokens (default: automatic)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--short", action="store_true", help="also run BoolQ test and the bundled sample")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from sparse_demo.data import load_boolq
    from sparse_demo.data.long_documents import join_paragraphs
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.encoder.windows import WindowSettings
    from sparse_demo.evaluation import EncodingCache, evaluate, load_eval_set, parse_system
    from sparse_demo.model_settings import recommended_hybrid_weight

    name = Path(args.model).name
    encoder = SpladeEncoder.load(args.model, device="cpu", name=name)
    weight = recommended_hybrid_weight(args.model) or 0.5
    systems = [parse_system(s) for s in ("bm25", f"sparse:{name}", f"hybrid:{name}:{weight}")]
    labels = [s.label for s in systems]

    _, boolq = load_boolq("test")
    joined = join_paragraphs(boolq, args.per_document, seed=args.seed)
    sets = [("long BoolQ", _subset(joined.corpus, args.queries, args.seed))]
    if args.short:
        sets += [("BoolQ test", _subset(boolq, args.queries, args.seed)), ("bundled sample", load_eval_set("sample"))]

    window = encoder.max_length - len(encoder.tokenizer("")["input_ids"])
    print(f"model {name} (max length {encoder.max_length}; {window} text tokens a window), hybrid weight {weight}")
    for set_name, corpus in sets:
        lengths = [len(encoder.tokenizer(d.text, add_special_tokens=False)["input_ids"]) for d in corpus.documents]
        over = sum(n > window for n in lengths)
        lengths.sort()
        print(
            f"\n## {set_name}: {len(corpus.queries):,} queries over {len(corpus):,} documents; "
            f"{over:,} ({over / len(corpus):.1%}) longer than {window} tokens, median {lengths[len(lengths) // 2]}"
        )
        print("| mode | encode s | windows/doc | BM25 R@1 / MRR@10 / nDCG@10 | model | hybrid |")
        print("|---|---|---|---|---|---|")
        reports = {}
        for mode in MODES:
            settings = WindowSettings(mode, args.stride)
            t0 = time.perf_counter()
            report = evaluate(
                corpus, systems, {name: encoder}, cache=EncodingCache(), significance=False, doc_windows=settings
            )
            wall = time.perf_counter() - t0
            reports[mode] = report
            counts = report.document_windows.get(name)
            enc_s = report.model_runs[name].encoded.seconds
            cells = [
                " / ".join(f"{_row(report, label)[m]:.3f}" for m in ("recall@1", "mrr@10", "ndcg@10"))
                for label in labels
            ]
            per_doc = f"{counts.mean_windows:.2f}" if counts is not None else "-"
            print(f"| {mode} | {enc_s:.1f} (all {wall:.1f}) | {per_doc} | " + " | ".join(cells) + " |")
        if set_name == "long BoolQ":
            depth = {q: joined.depth.get(q) for q in (q.id for q in corpus.queries)}
            print("\nR@1 by the judged paragraph's depth in its document (model alone | hybrid):")
            for d in sorted({v for v in depth.values() if v is not None}):
                qids = [q for q, v in depth.items() if v == d]
                line = []
                for mode in MODES:
                    rep = reports[mode]
                    vals = [
                        sum(rep.system(label).per_query["recall@1"][q] for q in qids) / len(qids) for label in labels
                    ]
                    line.append(f"{mode} {vals[1]:.3f} | {vals[2]:.3f}")
                bm = sum(reports["max"].system(labels[0]).per_query["recall@1"][q] for q in qids) / len(qids)
                print(f"  depth {d} ({len(qids)} q): BM25 {bm:.3f};  " + ";  ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

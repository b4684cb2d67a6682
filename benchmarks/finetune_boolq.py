"""Train a small sparse encoder from scratch on KoBEST BoolQ train and compare it with BM25.

Model: ``XLMRobertaForMaskedLM`` (hidden 256, 4 layers) over the XLM-R tokenizer pruned to the
pieces of the training pairs and of the corpora that get indexed (BoolQ paragraphs, KorSTS
sentence2), lexical initialisation (tied output, identity head, calibrated negative bias),
bf16 autocast on CPU, batch 64, lr 1e-3, FLOPS_idf weights 5e-3 (query) / 3e-3 (doc).

Reports R@1/5/10, MRR@10 and nDCG@10 on BoolQ test (1,404 questions over all 5,757 unique
paragraphs) and on KorSTS test pairs scoring >= 4 (query sentence1, corpus all sentence2 of
the test split, and of all splits as in the data README), for the model alone, BM25 over
Kiwi morphemes and the 0.5/0.5 min-max hybrid (all three computed by the Search tab's code:
``sparse_demo.search.build_index`` on the memory backend + ``search``), with a paired
randomization test of the hybrid against BM25 on per-query reciprocal ranks. Training evaluates
on 200 BoolQ dev questions every epoch and keeps the best checkpoint.

Usage::

    python benchmarks/finetune_boolq.py [--time-limit 540] [--out /tmp/boolq-sparse]

Needs ``../shared/data`` and ``../shared/models/xlmr-tokenizer``; exits with a message when
they are absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparse_demo.config import data_dir  # noqa: E402
from sparse_demo.data import load_boolq, load_korsts  # noqa: E402
from sparse_demo.evaluation import RetrievalMetrics  # noqa: E402
from sparse_demo.evaluation.significance import paired_randomization_test  # noqa: E402
from sparse_demo.progress import TrainingEvent  # noqa: E402
from sparse_demo.train import TrainConfig, train  # noqa: E402
from sparse_demo.train.evaluation import SYSTEMS, heldout_report  # noqa: E402

SHARED_DATA_DIR = data_dir()

TOKENIZER_DIR = SHARED_DATA_DIR.parent / "models" / "xlmr-tokenizer"


def _fmt(row: dict[str, float]) -> str:
    return "  ".join(f"{row[k]:.3f}" for k in ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-limit", type=float, default=540.0, help="training-loop seconds")
    parser.add_argument("--out", default=None, help="model folder (default: a temp folder)")
    parser.add_argument("--size", default="small", choices=("tiny", "mini", "small"))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=160, help="document tokens")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--bm25-negatives", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 helps on a busy machine)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for needed in (SHARED_DATA_DIR / "kobest_boolq", SHARED_DATA_DIR / "korsts", TOKENIZER_DIR):
        if not needed.exists():
            print(f"SKIP: {needed} not found (benchmark data/tokenizer live in ../shared)")
            return 0

    t0 = time.time()
    train_pairs, _ = load_boolq("train")
    dev_pairs, _ = load_boolq("dev")
    _, boolq_test = load_boolq("test")
    _, sts_split = load_korsts("test", corpus_from="split")
    _, sts_all = load_korsts("test", corpus_from="all")
    vocab_texts = boolq_test.corpus + sts_all.corpus
    out = args.out or os.path.join(tempfile.mkdtemp(prefix="boolq-sparse-"), "model")
    config = TrainConfig(
        base="new",
        size=args.size,
        tokenizer=str(TOKENIZER_DIR),
        extra_vocab_texts=vocab_texts,
        batch_size=args.batch_size,
        lr=args.lr,
        epochs=args.epochs,
        time_limit_s=args.time_limit,
        eval_every=0,  # every epoch, keeping the best held-out checkpoint
        eval_distractors=300,
        max_length=args.max_length,
        bm25_negatives=args.bm25_negatives,
        out_path=out,
        log_every=10,
        num_threads=args.threads,
    )

    def progress(ev: TrainingEvent) -> None:
        if ev.phase == "train" and ev.step % 20 == 0:
            print(
                f"  step {ev.step:4d}/{ev.max_steps}  ep {ev.epoch:.2f}  loss {ev.total:.3f}"
                f"  nce {ev.infonce:.3f}  flops q/d {ev.flops_q:.2f}/{ev.flops_d:.2f}"
                f"  active q/d {ev.active_q:.0f}/{ev.active_d:.0f}  {ev.elapsed_s:.0f}s",
                flush=True,
            )
        elif ev.phase == "eval":
            print(f"  eval step {ev.step}: held-out MRR@10 {ev.eval_mrr10:.3f}", flush=True)
        elif ev.message:
            print(f"[{ev.phase}] {ev.message} ({ev.elapsed_s or 0:.0f}s)", flush=True)

    result = train(config, train_pairs, dev_pairs[:200], progress=progress)
    t_trained = time.time()
    print(
        f"\nTraining: {result.status}, {result.steps} steps, {result.epochs:.2f} epochs, "
        f"loop {result.train_s:.0f}s, run {result.elapsed_s:.0f}s -> {result.model_dir}"
    )
    print(f"Saved weights: step {result.best_step} (restored best: {result.restored_best}). {result.split_note}")
    print("Held-out (200 BoolQ dev questions + 300 distractors), before -> after:")
    for name in ("model", "bm25", "hybrid"):
        print(f"  {name:7s} {_fmt(result.metrics_before[name])}  ->  {_fmt(result.metrics_after[name])}")
    for ex in result.expansions[:2]:
        print(f"  query: {ex['query']}")
        print(f"    before: {ex['before'][:8]}")
        print(f"    after:  {ex['after'][:8]}")

    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(str(result.model_dir), use_safetensors=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(result.model_dir))
    summary: dict[str, dict] = {}
    print("\n                              R@1    R@5    R@10   MRR@10 nDCG@10")
    for rset in (boolq_test, sts_split, sts_all):
        t_eval = time.time()
        report = heldout_report(model, tokenizer, rset, max_length=args.max_length)
        metrics = {s: RetrievalMetrics.from_means(r.means, report.num_queries) for s, r in zip(SYSTEMS, report.systems)}
        mrr = {s.spec.kind: [s.per_query["mrr@10"][q.id] for q in rset.queries] for s in report.systems}
        sig = paired_randomization_test(mrr["bm25"], mrr["hybrid"])
        label = f"{rset.name} ({len(rset.queries)} q, {len(rset)} docs)"
        print(label)
        for name in ("model", "bm25", "hybrid"):
            print(f"  {name:26s}  {_fmt(metrics[name].as_row())}")
        d_r1 = metrics["hybrid"].recall[1] - metrics["bm25"].recall[1]
        print(
            f"  hybrid - BM25: R@1 {d_r1:+.3f}, MRR@10 {sig.difference:+.3f} "
            f"(paired randomization p={sig.p_value:.4f})  [{time.time() - t_eval:.0f}s]"
        )
        summary[rset.name] = {k: m.as_row() for k, m in metrics.items()} | {"p_hybrid_vs_bm25_mrr": sig.p_value}
    wall = time.time() - t0
    print(
        f"\nWall time: total {wall:.0f}s (data+training+saving {t_trained - t0:.0f}s, test evaluation "
        f"{time.time() - t_trained:.0f}s); training loop {result.train_s:.0f}s; CPU threads {os.cpu_count()}"
    )
    (Path(result.model_dir) / "benchmark_results.json").write_text(
        json.dumps(
            {"summary": summary, "wall_s": wall, "train_s": result.train_s, "steps": result.steps},
            indent=2,
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

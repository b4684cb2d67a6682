"""Query-set comparison of two real-size xlm-roberta-base encoders: wall time and peak RSS.

Two randomly initialised ``XLMRobertaForMaskedLM`` models with ``XLMRobertaConfig()``
defaults (hidden 768, 12 layers, vocab 250,002 with the real XLM-R tokenizer) are saved to
temporary folders and compared on a 500-query set (the bundled sample queries, varied) through
the same path as the Compare tab: the registry loads each model once, each model encodes the
whole set in one batched call, then per-model leakage and per-pair overlap are aggregated.

Variants:

- ``dense``: the random weights as initialised. About half of every position's 250k logits
  are positive, so nearly the whole vocabulary is active (a worst case: trained SPLADE
  models activate a few hundred dimensions); the per-token analysis dominates.
- ``sparse``: the same models with the MLM decoder bias lowered (calibrated here) so that a
  query activates about ``--target-dims`` dimensions, like a trained SPLADE checkpoint.

Usage::

    python benchmarks/bench_compare.py --variant sparse
    python benchmarks/bench_compare.py --variant dense --queries 500

Each variant should run in its own process (peak RSS is per process).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKENIZER = ROOT.parent / "shared" / "models" / "xlmr-tokenizer"
_SUFFIXES = ["", " 방법", " 비교", "는 무엇인가요?", " 추천", " 2024년", " 알려주세요", " 기준", " 후기", " 비용"]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def make_queries(n: int) -> list[str]:
    """The bundled queries, each varied by a suffix until there are ``n`` distinct ones."""
    from sparse_demo.ui.compare import sample_queries

    base = sample_queries()
    out: list[str] = []
    for suffix in _SUFFIXES:
        for q in base:
            out.append(q.rstrip("?") + suffix if suffix else q)
            if len(out) == n:
                return out
    return (out * (n // len(out) + 1))[:n]


def save_models(folder: Path, seeds: tuple[int, int]) -> list[Path]:
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaForMaskedLM

    tok = AutoTokenizer.from_pretrained(str(TOKENIZER))
    paths = []
    for seed in seeds:
        torch.manual_seed(seed)
        config = XLMRobertaConfig(vocab_size=250002)
        model = XLMRobertaForMaskedLM(config)
        model.config.architectures = ["XLMRobertaForMaskedLM"]
        path = folder / f"xlmr_base_seed{seed}"
        model.save_pretrained(path)
        tok.save_pretrained(path)
        paths.append(path)
        del model
    return paths


def calibrate_bias(encoder, queries: list[str], target: int) -> float:
    """Lower the decoder bias until a query activates about ``target`` dimensions."""
    import torch

    decoder = encoder.model.get_output_embeddings()
    original = decoder.bias.detach().clone()
    lo, hi = 0.0, 20.0
    for _ in range(12):
        mid = (lo + hi) / 2
        with torch.no_grad():
            decoder.bias.copy_(original - mid)
        dims = sum(len(e.vector) for e in encoder.encode(queries)) / len(queries)
        lo, hi = (mid, hi) if dims > target else (lo, mid)
    shift = (lo + hi) / 2
    with torch.no_grad():
        decoder.bias.copy_(original - shift)
    return shift


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=["dense", "sparse"], default="sparse")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--target-dims", type=int, default=200, help="sparse variant: active dims per query")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from sparse_demo.analysis import Analyzer
    from sparse_demo.compare import analyze_query_set, compare_query_set
    from sparse_demo.config import load_settings
    from sparse_demo.korean import StopwordRule, get_kiwi
    from sparse_demo.models import ModelRegistry

    print(
        f"variant={args.variant} queries={args.queries} top_k={args.top_k} batch={args.batch_size} "
        f"torch_threads={torch.get_num_threads()} cpus={os.cpu_count()} load_avg_start={load_avg()}"
    )
    queries = make_queries(args.queries)
    get_kiwi()
    work = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    try:
        t0 = time.perf_counter()
        paths = save_models(work, (1, 2))
        t_save = time.perf_counter() - t0
        print(f"saved two xlm-roberta-base MLMs (vocab 250,002) in {t_save:.1f} s; peak RSS {peak_rss_mib():,.0f} MiB")
        settings = load_settings({"SPARSE_DEMO_DEVICE": "cpu"})
        registry = ModelRegistry(settings)
        t0 = time.perf_counter()
        encoders = {"A (seed 1)": registry.get(str(paths[0])), "B (seed 2)": registry.get(str(paths[1]))}
        t_load = time.perf_counter() - t0
        print(f"loaded both in {t_load:.1f} s; peak RSS {peak_rss_mib():,.0f} MiB")
        if args.variant == "sparse":
            for name, enc in encoders.items():
                shift = calibrate_bias(enc, queries[:8], args.target_dims)
                print(f"{name}: decoder bias lowered by {shift:.3f} for ~{args.target_dims} active dims")
        rule = StopwordRule()
        analyzers = {name: Analyzer(enc, rule) for name, enc in encoders.items()}
        done_at: dict[str, float] = {}
        t0 = time.perf_counter()

        def progress(name: str, done: int, total: int) -> None:
            if done == total:
                done_at[name] = time.perf_counter() - t0

        analyses = analyze_query_set(analyzers, queries, args.top_k, batch_size=args.batch_size, progress=progress)
        t_analyze = time.perf_counter() - t0
        t1 = time.perf_counter()
        result = compare_query_set(analyses, args.top_k)
        t_aggregate = time.perf_counter() - t1
        total = time.perf_counter() - t0
        pair = result.pairs[0]
        worst = result.disagreements(*pair, n=3)
        dims = result.summary.set_index("model")["mean_active_dims"].to_dict()
        print(
            "encode (both models, one batched call each) finished at: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in done_at.items())
        )
        print(f"encode + per-query analysis: {t_analyze:.1f} s; aggregation (leakage + overlap): {t_aggregate:.2f} s")
        print(
            f"WHOLE QUERY-SET COMPARISON: {total:.1f} s for {len(queries)} queries x 2 models "
            f"({1000 * total / len(queries):.0f} ms per query)"
        )
        print(f"PEAK RSS: {peak_rss_mib():,.0f} MiB")
        print("mean active dims: " + ", ".join(f"{k} {v:,.0f}" for k, v in dims.items()))
        print(
            f"mean weighted overlap {result.pair_summary()['mean_weighted_overlap'].iloc[0]:.3f}; "
            f"most disagreeing: {list(worst['query'])}"
        )
        print(f"load_avg_end={load_avg()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The Evaluate tab's table on the shared benchmark sets: wall time, cache speed-up, a pruning curve.

For each set (KoBEST BoolQ test: 1,404 questions over 5,757 paragraphs; KorSTS test pairs
scoring >= 4: 338 queries over 8,000 sentences) it runs the same :func:`sparse_demo.evaluation.evaluate`
as the tab and the CLI with BM25 and, when a model is given (default: ``assets/demo-v26-style``
where it exists), the model's sparse leg, the hybrid at 0.5 and the hybrid with its weight
chosen by 5-fold cross-validation. Each table runs twice: the second run reads the document encodings
from the cache, and the ratio of the two wall times is printed side by side. With a model, the
pruning sweep is saved as HTML (altair) and PNG (matplotlib) under ``--out``.

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_evaluate.py                      # BM25 (+ demo model)
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/bench_evaluate.py --model /path/to/model --out /tmp/eval
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEMO_MODEL = ROOT / "assets" / "demo-v26-style"


def _prune_png(points: list, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print(f"{path.name} not written: matplotlib is not installed (pip install matplotlib)")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, x, title in ((axes[0], "flops", "FLOPS (Σ p_q·p_d)"), (axes[1], "index_bytes", "index bytes")):
        for model in dict.fromkeys(p.model for p in points):
            for kind in ("doc top-k", "query top-k", "max_ratio"):
                pts = sorted((getattr(p, x), p.ndcg10) for p in points if p.model == model and p.kind == kind)
                if pts:
                    ax.plot(*zip(*pts), marker="o", label=f"{model}: {kind}")
            full = [p for p in points if p.model == model and p.setting is None]
            if full:
                ax.scatter([getattr(full[0], x)], [full[0].ndcg10], marker="*", s=150, label=f"{model}: unpruned")
        ax.set_xscale("log")
        ax.set_xlabel(title)
        ax.set_ylabel("nDCG@10")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["boolq:test", "korsts:test"])
    parser.add_argument(
        "--model",
        default=str(DEMO_MODEL) if DEMO_MODEL.is_dir() else None,
        help="a model folder (default: assets/demo-v26-style when it exists; none: BM25 only)",
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_evaluate"))
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from sparse_demo.evaluation import EncodingCache, evaluate, load_eval_set, parse_system, prune_sweep, to_markdown
    from sparse_demo.evaluation.charts import guarded, prune_chart

    encoders = {}
    systems = ["bm25"]
    if args.model:
        from sparse_demo.encoder import SpladeEncoder

        name = Path(args.model).name
        encoders[name] = SpladeEncoder.load(args.model, device="cpu", name=name)
        systems += [f"sparse:{name}", f"hybrid:{name}:0.5", f"hybrid:{name}:best"]
    else:
        print("no model given and assets/demo-v26-style is absent: BM25 only")
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.sets:
        t0 = time.perf_counter()
        eval_set = load_eval_set(spec)
        t_load = time.perf_counter() - t0
        cache = EncodingCache()
        specs = [parse_system(s) for s in systems]
        t1 = time.perf_counter()
        report = evaluate(eval_set, specs, encoders, cache=cache, trials=args.trials)
        first = time.perf_counter() - t1
        t2 = time.perf_counter()
        evaluate(eval_set, specs, encoders, cache=cache, trials=args.trials)
        second = time.perf_counter() - t2
        print(
            f"\n## {spec}: load {t_load:.1f} s; table {first:.1f} s first run, {second:.1f} s second run "
            f"(encodings cached; {first / max(second, 1e-9):.1f}x faster)\n"
        )
        print(to_markdown(report))
        (args.out / f"table_{spec.replace(':', '_')}.md").write_text(to_markdown(report) + "\n", encoding="utf-8")
        if encoders:
            t3 = time.perf_counter()
            points = prune_sweep(report)
            print(f"\npruning sweep: {time.perf_counter() - t3:.1f} s")
            for p in points:
                label = "unpruned" if p.setting is None else f"{p.kind} {p.setting:g}"
                print(
                    f"  {label:<18} nDCG@10 {p.ndcg10:.4f}  FLOPS {p.flops:8.3f}  index {p.index_bytes:>11,} B  "
                    f"d {p.doc_active:6.1f}  q {p.query_active:6.1f}"
                )
            stem = args.out / f"prune_{spec.replace(':', '_')}"
            chart, problem = guarded(prune_chart, points, "flops")
            if chart is not None:
                chart.save(str(stem) + ".html")
            else:
                print(f"chart not saved: {problem}")
            _prune_png(points, Path(str(stem) + ".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``evaluate``: the model card's benchmark table (metrics, significance, costs) on a QA set.

    python -m sparse_demo evaluate --corpus boolq:test --system bm25 --system sparse:V26 \\
        --system hybrid:V26:0.5 --system hybrid:V26:best --sample 1000 --seed 0 --json

``--corpus`` takes a BEIR folder or ``.zip``, a pairs file (``query``/``positive`` columns),
``sample`` (the bundled corpus), ``boolq:<split>`` or ``korsts:<split>`` (``../shared/data``).
The first ``--system`` is the baseline unless ``--baseline`` names another. ``hybrid:MODEL:best``
is the min-max hybrid with its weight chosen by ``--folds``-fold cross-validation (default 5,
folds seeded by ``--seed``): each query is scored with a weight chosen on the other folds'
queries; the weight chosen on all queries is printed as the suggested weight. ``--sweep weight``
adds the hybrid weight curve (and that cross-validation) for every model, ``--sweep prune`` the pruning curve;
``--out-dir`` writes ``table.csv``, ``runs.csv``, ``per_query.csv``, ``report.json``,
``report.md`` and the charts as HTML. The number of queries evaluated is always printed.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from .. import evaluation as ev
from ..encoder import ModelLoadError
from ..evaluation import report as ev_report
from ..evaluation import runner, systems
from ..evaluation.weights import DEFAULT_FOLDS
from .common import (
    DEVICES,
    EXIT_FAILED,
    CliError,
    add_window_arguments,
    note_line,
    positive_int,
    registry,
    window_settings,
)

SWEEPS: tuple[str, ...] = ("weight", "prune")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``evaluate``."""
    p = subparsers.add_parser("evaluate", help="benchmark table (R@k, MRR, nDCG@10, significance, costs)")
    p.add_argument(
        "--corpus", required=True, help="BEIR folder/.zip, pairs file, 'sample', 'boolq:<split>' or 'korsts:<split>'"
    )
    p.add_argument("--split", default="test", help="qrels split of a BEIR folder (default test)")
    p.add_argument(
        "--system",
        action="append",
        required=True,
        dest="systems",
        metavar="SYSTEM",
        help=f"a table row: {systems.SYSTEM_HELP} (repeat; the first is the baseline)",
    )
    p.add_argument("--baseline", default=None, help="the baseline system (as given to --system); default the first")
    p.add_argument("--fusion", choices=systems.FUSIONS, default="minmax", help="fusion of hybrid:MODEL rows")
    p.add_argument("--backend", choices=runner.BACKENDS, default="memory")
    p.add_argument("--sample", type=positive_int, default=None, help="evaluate N queries drawn with --seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample, the tests and the CV folds")
    p.add_argument(
        "--folds",
        type=positive_int,
        default=DEFAULT_FOLDS,
        help="k of the hybrid weight's cross-validation (hybrid:MODEL:best, --sweep weight; >= 2)",
    )
    p.add_argument("--sweep", action="append", choices=SWEEPS, default=[], help="add a curve (repeat for both)")
    p.add_argument("--depth", type=positive_int, default=runner.DEFAULT_DEPTH, help="hits per leg (>= 10)")
    p.add_argument("--trials", type=positive_int, default=10_000, help="randomization-test trials")
    p.add_argument("--batch-size", type=positive_int, default=32)
    add_window_arguments(p)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--runs", action="store_true", help="with --json: include per-query values and runs")
    p.add_argument("--out-dir", type=Path, default=None, help="write CSV/JSON/Markdown/HTML files here")
    p.add_argument("--device", choices=DEVICES, default=None, help="encoder device (default: settings)")
    p.add_argument("--max-length", type=positive_int, default=None, help="encoder max length in tokens")


def _write_csv(path: Path, rows: list[dict]) -> None:
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def write_outputs(report: ev.EvalReport, out_dir: Path) -> list[Path]:
    """Write the table, runs, per-query values, JSON, Markdown and charts; returns the paths."""
    from ..evaluation import charts

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / n for n in ("table.csv", "runs.csv", "per_query.csv", "report.json", "report.md")]
    paths[0].write_text(ev.table_csv(report), encoding="utf-8")
    _write_csv(paths[1], ev_report.run_records(report))
    _write_csv(paths[2], ev_report.per_query_records(report))
    paths[3].write_text(ev.dumps(report, runs=True), encoding="utf-8")
    paths[4].write_text(ev.to_markdown(report) + "\n", encoding="utf-8")
    builders = []
    if report.weight_sweeps:
        builders.append(("weight_curve.html", charts.weight_chart, (report,)))
    if report.prune_sweep:
        builders.append(("prune_flops.html", charts.prune_chart, (report.prune_sweep, "flops")))
        builders.append(("prune_bytes.html", charts.prune_chart, (report.prune_sweep, "index_mb")))
    for name, builder, args in builders:
        chart, problem = charts.guarded(builder, *args)
        if chart is None:
            note_line(f"{name} not written: {problem}")
            continue
        chart.save(str(out_dir / name))
        paths.append(out_dir / name)
    return paths


def run(args: argparse.Namespace) -> int:
    """Evaluate and print the table (or JSON)."""
    if args.folds < 2:
        raise CliError(f"--folds must be >= 2, got {args.folds}")
    specs = [ev.parse_system(s, fusion=args.fusion, folds=args.folds) for s in args.systems]
    baseline: int | str = 0
    if args.baseline:
        label = ev.parse_system(args.baseline, fusion=args.fusion, folds=args.folds).label
        if label not in [s.label for s in specs]:
            raise CliError(f"--baseline {args.baseline!r} is not one of the --system values")
        baseline = label
    if args.depth < 10:
        raise CliError(f"--depth must be >= 10, got {args.depth}")
    eval_set = ev.sample_queries(ev.load_eval_set(args.corpus, split=args.split), args.sample, args.seed)
    models = list(dict.fromkeys(s.model for s in specs if s.model))
    reg = registry(args)
    encoders = {}
    for m in models:
        try:
            encoders[m] = reg.get(m)
        except ModelLoadError as exc:
            raise CliError(str(exc), EXIT_FAILED) from None
    if "prune" in args.sweep and not models:
        raise CliError("--sweep prune needs a model: add --system sparse:MODEL")
    report = ev.evaluate(
        eval_set,
        specs,
        encoders,
        backend=args.backend,
        depth=args.depth,
        baseline=baseline,
        trials=args.trials,
        seed=args.seed,
        sweep_weights="weight" in args.sweep,
        folds=args.folds,
        batch_size=args.batch_size,
        doc_windows=window_settings(args),
        disk_cache=True,
    )
    if "prune" in args.sweep:
        ev.prune_sweep(report)
    if args.out_dir is not None:
        for path in write_outputs(report, args.out_dir):
            note_line(f"wrote {path}")
    if args.json:
        print(ev.dumps(report, runs=args.runs))
    else:
        print(ev.to_markdown(report))
        for p in report.prune_sweep or []:
            label = "unpruned" if p.setting is None else f"{p.kind} {p.setting:g}"
            print(
                f"  prune {p.model:<20} {label:<18} ndcg@10 {p.ndcg10:.4f}  FLOPS {p.flops:9.3f}  "
                f"index {p.index_bytes:>11,} B"
            )
    note_line(ev.summary_line(report))
    return 0

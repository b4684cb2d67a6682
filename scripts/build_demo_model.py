"""Build the embedded demo models (``assets/demo-v25-style``, ``assets/demo-v26-style``) from bundled data.

The demo models are what ``python app.py`` answers with in its first second when no preset
(V26, V25) can load: small SPLADE encoders, a few MB each, that load in about a second on a CPU,
trained on the same data with expansions distilled from Kiwi's CoNg model and differing as V25 and
V26 do (no stopword / special-token penalties, or the card's). The recipe (data, vocabulary,
lexical init, expansion distillation, training with held-out keep-best, hybrid weight, card and
record) is :mod:`sparse_demo.offline.recipe`; this is its command line.

Usage::

    nice -n 10 python scripts/build_demo_model.py                  # both styles, into assets/
    python scripts/build_demo_model.py --style v25 --out /tmp/demo --time-limit 120
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from sparse_demo.offline.recipe import (  # noqa: E402 - after the path fix above
    DEFAULT_OUT,
    DEMO_TEACHER,
    HUB_TOKENIZER,
    SHARED_TOKENIZER,
    SIZES,
    STYLE_DIRS,
    STYLE_NAMES,
    STYLES,
    BuildOptions,
    build_styles,
    recalibrate,
    update_benchmarks,
)

logger = logging.getLogger("build_demo_model")


def parse_args(argv: Sequence[str] | None = None) -> tuple[list[BuildOptions], bool]:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--style",
        choices=(*STYLES, "both"),
        default="both",
        help="v26: the card's stopword and special-token penalties; v25: none (default: both, one after the other)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"model folder to write, with one --style (default assets/demo-<style>-style, e.g. {DEFAULT_OUT.name})",
    )
    p.add_argument("--no-expansions", action="store_true", help="skip the CoNg expansion distillation")
    p.add_argument(
        "--tokenizer",
        default="",
        help=f"XLM-R tokenizer folder or Hub id (default {SHARED_TOKENIZER} if present, else {HUB_TOKENIZER})",
    )
    p.add_argument("--size", choices=SIZES, default="mini", help="model size (mini: hidden 128, 2 layers)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=float, default=4.0, help="passes over the pairs (the run is step-bound)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--time-limit",
        type=float,
        default=1800.0,
        help="safety cap on the training loop in seconds; below it the run is step-bound, "
        "so deterministic (a binding limit makes steps and schedule depend on the machine's speed)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    p.add_argument("--eval-fraction", type=float, default=0.15, help="share of passages held out")
    p.add_argument(
        "--benchmark",
        action="store_true",
        help="also measure BoolQ / KorSTS from ../shared/data (several minutes) for the card",
    )
    p.add_argument(
        "--benchmark-only",
        action="store_true",
        help="measure the already built --out folder on ../shared/data and rewrite its card and record",
    )
    p.add_argument(
        "--calibrate-only",
        action="store_true",
        help="apply the build's last steps (background calibration, hybrid weight, card) to an already built "
        "--out folder from before calibration existed",
    )
    p.add_argument("--float32", action="store_true", help="ship float32 weights instead of float16")
    p.add_argument("--work-dir", type=Path, default=None, help="keep intermediate folders here")
    a = p.parse_args(argv)
    styles = list(STYLES) if a.style == "both" else [a.style]
    if a.out is not None and len(styles) > 1:
        p.error("--out needs one --style")
    options = [
        BuildOptions(
            out=a.out or STYLE_DIRS[style],
            tokenizer=a.tokenizer,
            size=a.size,
            seed=a.seed,
            epochs=a.epochs,
            batch_size=a.batch_size,
            lr=a.lr,
            time_limit_s=a.time_limit,
            threads=a.threads,
            eval_fraction=a.eval_fraction,
            half=not a.float32,
            work_dir=a.work_dir / style if a.work_dir else None,
            benchmark=a.benchmark,
            style=style,
            name=STYLE_NAMES[style],
            note=f"embedded {style}-style demo model trained on bundled sample data",
            teacher=None if a.no_expansions else DEMO_TEACHER,
        )
        for style in styles
    ]
    return options, ("benchmark" if a.benchmark_only else "calibrate" if a.calibrate_only else None)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    all_options, only = parse_args(argv)
    try:
        if only == "calibrate":
            for options in all_options:
                record = recalibrate(options.out)
                logger.info(
                    "Calibrated %s: silenced %s; hybrid weight %g",
                    options.out.name,
                    [t["token"] for t in record["background_calibration"]["silenced"]],
                    record["hybrid_weight"],
                )
            return 0
        if only == "benchmark":
            for options in all_options:
                record = update_benchmarks(options.out, options.tokenizer)
                logger.info("Benchmarks of %s: %s", options.out.name, record["benchmarks"])
            return 0
        records = build_styles(all_options)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        logger.error("%s", exc)
        return 1
    for options, record in zip(all_options, records, strict=True):
        logger.info(
            "%s: hybrid weight %g; held-out after: %s",
            options.out.name,
            record["hybrid_weight"],
            record["training"]["metrics_after"],
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Resident memory of the app process across fine-tunes: does the server give memory back after each run?

Runs N fine-tunes through the Fine-tune tab's own handler (``run_training``: the queue, the trainer, the
zip) on the bundled sample pairs, in this process, and prints the resident set (VmRSS) before, after each
run, and the peak (VmHWM). ``--no-release`` turns off :func:`sparse_demo.train.release_memory` (garbage
collection + ``malloc_trim(0)``) to show what it saves; run both side by side:

    nice -n 10 python benchmarks/bench_finetune_memory.py --runs 3 --size mini
    nice -n 10 python benchmarks/bench_finetune_memory.py --runs 3 --size mini --no-release
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--size", default="mini", choices=("tiny", "mini", "small"))
    p.add_argument("--seconds", type=float, default=40, help="time limit of each run")
    p.add_argument("--no-release", action="store_true", help="skip gc + malloc_trim after each run")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(1)
    from sparse_demo.train import loop
    from sparse_demo.ui.common import AppContext
    from sparse_demo.ui.finetune import TrainRequest, run_training

    if args.no_release:
        loop.release_memory = lambda: None
    ctx = AppContext.create()
    print(f"release_memory: {'off' if args.no_release else 'on'}; size {args.size}; {args.runs} runs")
    print(f"before: RSS {rss_mb():,.0f} MB")
    for i in range(args.runs):
        req = TrainRequest(
            pairs_file=None, base="new", size=args.size, epochs=3, batch_size=32, time_limit_s=args.seconds
        )
        final = list(run_training(ctx, req, threading.Event(), session="bench", poll_s=0.5))[-1]
        ok = "saved" if final.model_dir else final.status[:80]
        print(f"after run {i + 1}: RSS {rss_mb():,.0f} MB ({ok})")
    print(f"peak RSS (VmHWM) {rss_mb('VmHWM'):,.0f} MB")


if __name__ == "__main__":
    main()

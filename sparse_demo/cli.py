"""Command line: the same functions as the app, for scripts and notebooks.

    python -m sparse_demo encode --model V26 --top-k 10 --json "당뇨병 치료 방법"

Models are preset names (``assets/models.json`` or ``SPARSE_DEMO_MODEL_*``), Hub ids or folders.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from .analysis import DEFAULT_TOP_K, Analyzer
from .config import load_settings
from .encoder import ModelLoadError
from .korean import StopwordRule, load_stopwords
from .models import ModelRegistry
from .textio import MAX_QUERY_CHARS, read_query_file

logger = logging.getLogger(__name__)


def _registry(args: argparse.Namespace) -> ModelRegistry:
    settings = load_settings()
    if getattr(args, "device", None):
        from dataclasses import replace

        settings = replace(settings, device=args.device)
    if getattr(args, "max_length", None):
        from dataclasses import replace

        settings = replace(settings, max_length=args.max_length)
    return ModelRegistry(settings)


def _texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts or [])
    if getattr(args, "file", None):
        texts += read_query_file(args.file)
    if not texts and not sys.stdin.isatty():
        texts = [line.strip() for line in sys.stdin if line.strip()]
    return texts


def run_encode(args: argparse.Namespace) -> int:
    """``encode``: top tokens, stats and leakage per text (JSON lines with ``--json``)."""
    try:
        texts = _texts(args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not texts:
        print("error: give at least one text (arguments, --file or stdin)", file=sys.stderr)
        return 2
    bad = [i for i, t in enumerate(texts) if not t.strip() or len(t) > MAX_QUERY_CHARS]
    if bad:
        print(f"error: text #{bad[0] + 1} is empty or longer than {MAX_QUERY_CHARS:,} characters", file=sys.stderr)
        return 2
    try:
        encoder = _registry(args).get(args.model)
        words = load_stopwords(args.stopwords) if args.stopwords else None
    except (ModelLoadError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    analyzer = Analyzer(encoder, StopwordRule(words, use_pos_rule=not args.no_pos_rule))
    for analysis in analyzer.analyze(texts, args.top_k, batch_size=args.batch_size):
        if args.json:
            print(json.dumps(analysis.to_json(args.top_k), ensure_ascii=False))
            continue
        lk, st = analysis.leakage, analysis.stats
        print(f"# {analysis.encoding.text[:80]}")
        for n in analysis.notes:
            print(f"  note: {n}")
        for r in analysis.top(args.top_k):
            print(f"  {r.rank:>3} {r.token:<16} {r.weight:7.4f}  {r.category:<11} {r.origin:<9} "
                  f"pos {r.position:<3} ({r.source_text or r.source_subword})")
        print(f"  active_dims={st.active_dims} l1={st.l1:.3f} stopword_mass={lk.stopword_mass_ratio:.3%} "
              f"special_mass={lk.special_mass_ratio:.3%} first_stopword_rank={lk.first_stopword_rank}")
    return 0


def add_encode_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("encode", help="top activated tokens, stats and stopword leakage per text")
    p.add_argument("texts", nargs="*", help="texts to encode (or --file, or stdin)")
    p.add_argument("--model", "-m", default=None, help="preset name, Hub id or local folder")
    p.add_argument("--top-k", "-k", type=int, default=DEFAULT_TOP_K)
    p.add_argument("--json", action="store_true", help="one JSON object per text (JSON lines)")
    p.add_argument("--file", help="read texts from a .txt/.csv/.tsv/.jsonl file")
    p.add_argument("--stopwords", help="stopword list replacing the bundled one")
    p.add_argument("--no-pos-rule", action="store_true", help="list membership only, no Kiwi POS rule")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=run_encode)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sparse_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_encode_parser(sub)
    from .compare import add_compare_parser
    from .search_cli import add_index_parser, add_search_parser
    from .train import add_finetune_parser

    add_compare_parser(sub)
    add_index_parser(sub)
    add_search_parser(sub)
    add_finetune_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    if args.command == "encode" and args.model is None:
        args.model = load_settings().default_model
    if (getattr(args, "top_k", 1) or 1) < 1:
        parser.error("--top-k must be >= 1")
    return args.func(args)

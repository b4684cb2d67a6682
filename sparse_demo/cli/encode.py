"""``encode``: top activated tokens, stats and stopword leakage per text.

    python -m sparse_demo encode --model V26 --top-k 10 --json "당뇨병 치료 방법"
    python -m sparse_demo encode --model ./inference-free-folder --side document "문서 본문"

``--json`` prints one JSON object per text (JSON Lines), in input order. ``--side`` picks the model's query
side (the default, as a search query is encoded) or its document side (as an indexed document is); they
differ for asymmetric models (an inference-free query side looks token weights up, no model runs).
"""

from __future__ import annotations

import argparse

from ..analysis import DEFAULT_TOP_K, Analyzer, QueryAnalysis
from ..config import load_limits
from ..encoder.formats import SIDES
from ..korean import StopwordRule, load_stopwords
from .common import CliError, add_model_arguments, default_model, positive_int, print_json, read_texts, registry


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``encode``."""
    p = subparsers.add_parser("encode", help="top activated tokens, stats and stopword leakage per text")
    p.add_argument("texts", nargs="*", help="texts to encode (or --file, or stdin one per line)")
    add_model_arguments(p, "preset name, Hub id or local folder (default: the default preset)")
    p.add_argument("--top-k", "-k", type=positive_int, default=DEFAULT_TOP_K)
    p.add_argument("--json", action="store_true", help="one JSON object per text (JSON Lines)")
    p.add_argument("--file", help="read texts from a .txt/.csv/.tsv/.jsonl file")
    p.add_argument("--stopwords", help="stopword list replacing the bundled one")
    p.add_argument("--no-pos-rule", action="store_true", help="list membership only, no Kiwi POS rule")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument(
        "--side",
        choices=SIDES,
        default="query",
        help="encode as a query (default) or as a document; they differ for asymmetric/inference-free models",
    )


def format_analysis(analysis: QueryAnalysis, top_k: int) -> str:
    """A readable block for one text: notes, top tokens, stats and leakage."""
    lk, st = analysis.leakage, analysis.stats
    lines = [f"# {analysis.encoding.text[:80]}"]
    lines += [f"  note: {n}" for n in analysis.notes]
    for r in analysis.top(top_k):
        lines.append(
            f"  {r.rank:>3} {r.token:<16} {r.weight:7.4f}  {r.category:<11} {r.origin:<9} "
            f"pos {r.position:<3} ({r.source_text or r.source_subword})"
        )
    lines.append(
        f"  active_dims={st.active_dims} l1={st.l1:.3f} stopword_mass={lk.stopword_mass_ratio:.3%} "
        f"vocab_stopword_mass={lk.vocab_stopword_mass_ratio:.3%} special_mass={lk.special_mass_ratio:.3%} "
        f"first_stopword_rank={lk.first_stopword_rank}"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Encode every text; 0 on success."""
    texts = read_texts(args)
    limits = load_limits()
    for i, t in enumerate(texts, start=1):
        try:
            limits.check_query(t)
        except ValueError as exc:
            raise CliError(f"text {i}: {exc}") from None
    words = load_stopwords(args.stopwords) if args.stopwords else None
    encoder = registry(args).get(args.model or default_model(args)).for_side(args.side)
    analyzer = Analyzer(encoder, StopwordRule(words, use_pos_rule=not args.no_pos_rule))
    for analysis in analyzer.analyze(texts, args.top_k, batch_size=args.batch_size):
        if args.json:
            print_json(analysis.to_json(args.top_k))
        else:
            print(format_analysis(analysis, args.top_k))
    return 0

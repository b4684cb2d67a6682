"""``compare``: two or more sparse encoders side by side, per query or over a query set.

    python -m sparse_demo compare --model-a V25 --model-b V26 "당뇨병 치료 방법"
    python -m sparse_demo compare --model V25 --model V26 --queries queries.txt --json

Exit status: 0 when every model loaded, 1 when results were printed but a model failed to load,
2 when nothing could be compared.
"""

from __future__ import annotations

import argparse
import sys

from ..analysis import DEFAULT_TOP_K, Analyzer
from ..compare import (
    DEFAULT_RBO_P,
    QueryComparison,
    SetComparison,
    analyze_query_set,
    compare_analyses,
    compare_query_set,
)
from ..config import load_limits
from ..korean import StopwordRule, load_stopwords
from ..textio import clean_query, read_query_file
from .common import (
    DEVICES,
    EXIT_FAILED,
    CliError,
    dumps,
    one_line,
    positive_int,
    read_stdin_lines,
    registry,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``compare``."""
    p = subparsers.add_parser(
        "compare",
        help="compare two or more sparse encoders on queries (overlap, rank shifts, leakage)",
        description=(
            "Per query (TEXT... with two models): aligned top-k tokens, tokens only A / only B has, "
            "Jaccard, weighted overlap, RBO and each model's leakage. Query set (--queries FILE, or "
            "TEXT... with more than two models): per-model leakage summary and, per model pair, the "
            "queries where the models disagree most. Models are preset names, local folders or Hub ids."
        ),
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="queries to compare (or stdin, one per line)")
    p.add_argument("--model-a", help="model A (preset name, local folder or Hub id)")
    p.add_argument("--model-b", help="model B")
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        default=None,
        metavar="MODEL",
        help="a model, repeatable (set mode takes two or more)",
    )
    p.add_argument("--queries", metavar="FILE", help="a query file (.txt, .csv, .tsv, .jsonl): set mode")
    p.add_argument(
        "--top-k",
        "-k",
        type=positive_int,
        default=DEFAULT_TOP_K,
        help=f"keys compared per model (default {DEFAULT_TOP_K})",
    )
    p.add_argument("--rbo-p", type=float, default=DEFAULT_RBO_P, help=f"RBO persistence (default {DEFAULT_RBO_P})")
    p.add_argument("--stopwords", metavar="FILE", help="a stopword list replacing the bundled one")
    p.add_argument("--no-pos-rule", action="store_true", help="do not count Kiwi function morphemes as stopwords")
    p.add_argument("--device", choices=DEVICES, default=None, help="default: settings")
    p.add_argument("--max-length", type=positive_int, default=None, help="encoder max length in tokens")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")


def model_list(args: argparse.Namespace) -> list[str]:
    """The distinct model names of ``--model-a``, ``--model-b`` and ``--model``, in order."""
    names = [getattr(args, "model_a", None), getattr(args, "model_b", None), *(getattr(args, "models", None) or [])]
    out: list[str] = []
    for n in names:
        if n and n.strip() and n.strip() not in out:
            out.append(n.strip())
    return out


def format_comparison(c: QueryComparison) -> str:
    """A readable block for one query comparison."""
    ov = c.overlap
    lines = [
        f"query: {c.text}",
        f"A = {c.model_a}   B = {c.model_b}   top-{c.top_k}",
        (
            f"jaccard {ov.jaccard:.3f}   weighted overlap {ov.weighted_overlap:.3f}   "
            f"RBO(p={c.rbo_p}) {ov.rbo:.3f}   shared {len(c.shared)}, only A {len(c.only_a)}, "
            f"only B {len(c.only_b)}"
        ),
    ]
    for label, side in (("A", c.side_a), ("B", c.side_b)):
        lk = side.leakage
        lines.append(
            f"{label} leakage: stopword mass {lk.stopword_mass_ratio:.1%} in context "
            f"({lk.vocab_stopword_mass_ratio:.1%} vocabulary-level), special mass {lk.special_mass_ratio:.1%}, "
            f"stopword top-k slots {lk.stopword_topk_ratio:.1%}, active dims {side.stats.active_dims}"
        )
    lines += [f"note: {n}" for n in c.notes]
    frame = c.to_frame()[["rank_a", "token_a", "weight_a", "rank_b", "token_b", "weight_b", "rank_shift", "status"]]
    lines.append(frame.astype(object).where(frame.notna(), "-").to_string(index=False))
    return "\n".join(lines) + "\n"


def format_set(s: SetComparison, most: int = 10) -> str:
    """A readable report of a set comparison."""
    lines = [f"{len(s.queries)} queries, top-{s.top_k}, models: {', '.join(s.models)}"]
    lines += [f"failed: {m}: {why}" for m, why in s.failed.items()]
    lines += ["", "per model:", s.summary.to_string(index=False, float_format=lambda x: f"{x:.4f}")]
    if len(s.leaking_tokens):
        lines += ["", "most leaking tokens:", s.leaking_tokens.groupby("model").head(5).to_string(index=False)]
    if s.pairs:
        lines += ["", "per pair:", s.pair_summary().to_string(index=False)]
    for a, b in s.pairs:
        lines += ["", f"most disagreeing queries, A = {a}, B = {b} (lowest weighted overlap):"]
        frame = s.disagreements(a, b, n=most)[
            ["rank", "query", "weighted_overlap", "rbo", "jaccard", "only_a", "only_b"]
        ]
        lines.append(frame.to_string(index=False, max_colwidth=40))
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Compare the models; 0 on success, 1 when a model failed to load but two others compared."""
    models = model_list(args)
    if len(models) < 2:
        same = " (the ones given name the same model)" if args.model_a else ""
        raise CliError(f"give two different models: --model-a A --model-b B (or --model repeated){same}")
    if not 0 < args.rbo_p < 1:
        raise CliError(f"--rbo-p must be in (0, 1), got {args.rbo_p}")
    texts = [t for t in (args.texts or []) if t.strip()]
    if args.queries:
        queries = read_query_file(args.queries)
    else:
        texts = texts or [t for t in read_stdin_lines() if t.strip()]
        if not texts:
            raise CliError("give query TEXT arguments, --queries FILE or queries on stdin")
        limits = load_limits()
        queries = [clean_query(t, limits) for t in texts]
    set_mode = bool(args.queries) or len(models) > 2
    words = load_stopwords(args.stopwords) if args.stopwords else None
    rule = StopwordRule(words, use_pos_rule=not args.no_pos_rule)
    reg = registry(args)
    analyzers: dict[str, Analyzer] = {}
    failed: dict[str, str] = {}
    for name in models:
        encoder, error = reg.try_get(name)
        if encoder is None:
            failed[name] = one_line(error or "unknown error")
        else:
            analyzers[name] = Analyzer(encoder, rule)
    if len(analyzers) < 2:
        raise CliError(
            f"{len(analyzers)} of {len(models)} models loaded; comparing needs two "
            f"({'; '.join(f'{m}: {why}' for m, why in failed.items())})",
            EXIT_FAILED,
        )
    for name, why in failed.items():
        print(f"warning: model {name!r} could not be loaded: {why}", file=sys.stderr)
    if set_mode:
        analyses = analyze_query_set(analyzers, queries, args.top_k, batch_size=args.batch_size)
        result = compare_query_set(analyses, args.top_k, rbo_p=args.rbo_p, failed=failed)
        print(dumps(result.to_json(), indent=2) if args.json else format_set(result), end="\n" if args.json else "")
    else:
        name_a, name_b = list(analyzers)
        res_a = analyzers[name_a].analyze(queries, args.top_k, batch_size=args.batch_size)
        res_b = analyzers[name_b].analyze(queries, args.top_k, batch_size=args.batch_size)
        comps = [compare_analyses(a, b, args.top_k, rbo_p=args.rbo_p) for a, b in zip(res_a, res_b)]
        if args.json:
            print(dumps({"queries": [c.to_json() for c in comps], "failed": failed}, indent=2))
        else:
            print("\n".join(format_comparison(c) for c in comps), end="")
    return EXIT_FAILED if failed else 0

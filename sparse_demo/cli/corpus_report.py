"""``corpus-report``: what a model does to a whole corpus (vocabulary, leakage, cost, collapse).

    python -m sparse_demo corpus-report --corpus assets/corpus/ko_sample --model V26 --json
    python -m sparse_demo corpus-report --model V26 --model-b V25 --top 20

The corpus is indexed in memory exactly as the Search tab does (``doc_top_k`` cap, special
tokens dropped) and the report reads the vectors the index holds. ``--json`` prints one JSON
object: for one model the report (``totals``, ``collapse``, ``histogram``, ``notes`` and
``tokens`` with ``token, df, mean_weight, mass, category, ...``); with ``--model-b`` the keys
``a`` and ``b`` (both reports), ``headline`` (figures side by side) and ``changes_by_df`` /
``changes_by_mass`` (tokens matched by surface form).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ..corpus_report import (
    HEADLINE_FIGURES,
    TOKEN_SORTS,
    CorpusReport,
    compare_reports,
    frame_records,
    report_for_index,
)
from ..korean import StopwordRule, load_stopwords
from .common import add_model_arguments, default_model, positive_int, print_json, registry


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``corpus-report``."""
    p = subparsers.add_parser(
        "corpus-report",
        help="corpus-wide token statistics, leakage, index cost and collapse warning for one model or two side by side",
    )
    p.add_argument(
        "--corpus", default=None, help="corpus file or BEIR folder (.jsonl/.csv/.tsv/.zip); default: the bundled sample"
    )
    add_model_arguments(p, "preset name, Hub id or local folder (default: the default preset)")
    p.add_argument("--model-b", default=None, help="a second model to put side by side")
    p.add_argument("--top", type=positive_int, default=50, help="tokens listed (default 50)")
    p.add_argument("--sort", choices=TOKEN_SORTS, default="df", help="order of the listed tokens")
    p.add_argument("--doc-top-k", type=positive_int, default=None, help="document cap (default: the index's, 512)")
    p.add_argument("--query-top-k", type=positive_int, default=None, help="query cap (default: 1024)")
    p.add_argument(
        "--queries",
        default=None,
        help="query texts for the FLOPS figures (.txt/.csv/.tsv/.jsonl); default: the corpus's own queries",
    )
    p.add_argument("--stopwords", help="stopword list replacing the bundled one")
    p.add_argument("--no-pos-rule", action="store_true", help="list membership only, no Kiwi POS rule")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--json", action="store_true", help="one JSON object")


def _report(
    args: argparse.Namespace, corpus: Any, model: str, rule: StopwordRule, queries: list[str] | None
) -> CorpusReport:
    from ..search import build_index

    encoder = registry(args).get(model)
    kwargs: dict[str, Any] = {"batch_size": args.batch_size}
    if args.doc_top_k:
        kwargs["doc_top_k"] = args.doc_top_k
    if args.query_top_k:
        kwargs["query_top_k"] = args.query_top_k
    index = build_index(corpus, encoder, "memory", **kwargs)
    return report_for_index(index, rule=rule, queries=queries)


def _records(report: CorpusReport, args: argparse.Namespace) -> list[dict[str, Any]]:
    return frame_records(report.top_tokens(args.top, args.sort))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def format_report(report: CorpusReport, top: int, sort: str = "df") -> str:
    """A readable block: headline figures, collapse warning and the top tokens."""
    t = report.totals
    lines = [f"# {report.model} on {report.corpus}: {t.documents:,} documents"]
    lines += [f"  note: {n}" for n in report.notes]
    if report.collapse.collapsed:
        lines.append(f"  WARNING: {report.collapse.message}")
    flops = (
        "n/a" if t.flops_per_pair is None else f"{t.flops_per_pair:.3f} ({t.postings_per_query:,.0f} postings/query)"
    )
    lines += [
        f"  empty_documents={t.empty_documents} mean_active_dims={t.mean_active_dims:.1f} "
        f"median={t.median_active_dims:.0f} max={t.max_active_dims} capped={t.capped_documents}",
        f"  context_stopword_mass_ratio={_pct(t.context_stopword_mass_ratio)} "
        f"vocab_stopword_mass_ratio={t.stopword_mass_ratio:.2%} special_mass_ratio={t.special_mass_ratio:.2%} "
        f"stopword_in_top5={t.stopword_top5_share:.2%} expansion_mass={t.expansion_mass_ratio:.2%}",
        f"  always_on_tokens={t.always_on_tokens} (mass {t.always_on_mass_ratio:.2%}) "
        f"distinct_tokens={t.distinct_tokens:,}",
        f"  posting_entries={t.posting_entries:,} memory_index_bytes={t.memory_index_bytes:,} flops={flops}",
        "  longest posting lists: "
        + ", ".join(f"{tok} ({d})" for tok, d in report.top_tokens(10, "df")[["token", "df"]].values),
        f"  {'token':<16} {'df':>6} {'df%':>6} {'mean_w':>7} {'max_w':>7} {'mass':>9} {'exp%':>5}  category",
    ]
    for r in report.top_tokens(top, sort).itertuples(index=False):
        exp = "" if r.expansion_df < 0 else f"{100 * r.expansion_share:.0f}"
        lines.append(
            f"  {r.token:<16} {r.df:>6} {100 * r.df_share:>5.1f}% {r.mean_weight:>7.3f} {r.max_weight:>7.3f} "
            f"{r.mass:>9.2f} {exp:>5}  {r.category}"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Build the report(s) and print them; 0 on success."""
    from ..search import load_corpus_file, load_sample_corpus
    from ..textio import read_query_file

    corpus = load_corpus_file(args.corpus) if args.corpus else load_sample_corpus()
    words = load_stopwords(args.stopwords) if args.stopwords else None
    rule = StopwordRule(words, use_pos_rule=not args.no_pos_rule)
    queries = read_query_file(args.queries) if args.queries else None
    a = _report(args, corpus, args.model or default_model(args), rule, queries)
    b = _report(args, corpus, args.model_b, rule, queries) if args.model_b else None
    if b is None:
        if args.json:
            out = a.to_json(None)
            out["tokens"] = _records(a, args)
            print_json(out)
        else:
            print(format_report(a, args.top, args.sort))
        return 0
    cmp = compare_reports(a, b)
    if args.json:
        out = cmp.to_json(args.top)
        for key, rep in (("a", a), ("b", b)):
            out[key]["tokens"] = _records(rep, args)
        print_json(out)
        return 0
    print(format_report(a, args.top, args.sort))
    print(format_report(b, args.top, args.sort))
    print("# side by side (b - a)")
    ta, tb = asdict(a.totals), asdict(b.totals)
    for fig in HEADLINE_FIGURES:
        change = None if ta[fig] is None or tb[fig] is None else tb[fig] - ta[fig]
        print(f"  {fig:<30} {_fmt(ta[fig]):>14} {_fmt(tb[fig]):>14} {_fmt(change):>14}")
    for by in ("df", "mass"):
        print(f"# tokens whose {by} share changed most")
        for r in cmp.top_changes(args.top, by).itertuples(index=False):
            print(
                f"  {r.key:<16} {r.category:<11} df {r.df_a:>6} -> {r.df_b:<6} mass share "
                f"{100 * r.mass_share_a:6.2f}% -> {100 * r.mass_share_b:6.2f}%"
            )
    return 0


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return f"{value:,}"

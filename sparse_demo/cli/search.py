"""``search``: BM25 / sparse / hybrid search over a corpus, one result list per query.

    python -m sparse_demo search --corpus assets/corpus/ko_sample --method bm25 --json "당뇨병 치료 방법"

Queries come from the arguments or, when none are given, from stdin (one per line). Every input
gets exactly one answer, in order. With ``--json`` each answer is one line (JSON Lines)::

    {"query": "...", "method": "hybrid", "backend": "memory", "weight": 0.5, "hits": [...], "notes": [...]}

where each hit has ``rank``, ``id``, ``score``, the ``bm25`` and ``sparse`` legs
(``{"score", "rank"}``, null where the leg did not retrieve it), ``title`` and ``gold``; a query
that cannot be searched (e.g. an empty line) is answered ``{"query": "", "error": "..."}`` and
the exit status is then 2. BM25-only search needs no model. ``weight`` is the sparse leg's
min-max weight (null for other methods): ``--weight`` when given, else the ``hybrid_weight`` the
model folder's ``sparse_demo.json`` recommends (a note says so), else 0.5. ``--analyzer`` picks the
BM25 analyzer (``default``, ``all``, ``nori`` or Kiwi stop-tag prefixes such as ``J,E,XS``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import search as svc
from ..config import load_limits
from ..textio import clean_query
from .common import (
    EXIT_INPUT,
    CliError,
    default_model,
    note_line,
    one_line,
    positive_int,
    print_json,
    read_stdin_lines,
    registry,
    unit_float,
)
from .index import add_corpus_arguments, build


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``search``."""
    p = subparsers.add_parser("search", help="BM25 / sparse / hybrid search over a corpus")
    p.add_argument("queries", nargs="*", help="queries (or stdin, one per line)")
    add_corpus_arguments(p, "preset name, Hub id or local folder (not needed for --method bm25)")
    p.add_argument("--method", choices=svc.METHODS, default="hybrid")
    p.add_argument("--top-k", "-k", type=positive_int, default=10)
    p.add_argument("--fusion", choices=svc.FUSIONS, default="minmax")
    p.add_argument(
        "--weight",
        type=unit_float,
        default=None,
        help="sparse weight for min-max fusion (BM25: 1 - w); default: the weight the model folder's "
        f"sparse_demo.json recommends (hybrid_weight) when it has one, else {svc.DEFAULT_WEIGHT}",
    )


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def outcome_record(outcome: svc.SearchOutcome, notes: list[str]) -> dict[str, Any]:
    """The ``--json`` line of one answered query."""
    return {
        "query": outcome.query,
        "method": outcome.method,
        "fusion": outcome.fusion,
        "backend": outcome.backend,
        "weight": outcome.weight,
        "hits": [h.to_json() for h in outcome.hits],
        "notes": [*notes, *outcome.notes],
    }


def format_outcome(outcome: svc.SearchOutcome) -> str:
    """A readable block for one query's hits and notes."""
    lines = [f"# {outcome.query}  ({outcome.method}, {outcome.backend}, {outcome.total_ms:.1f} ms)"]
    for h in outcome.hits:
        legs = f"bm25 {_fmt(h.bm25_score)} #{h.bm25_rank or '-'}  sparse {_fmt(h.sparse_score)} #{h.sparse_rank or '-'}"
        mark = " *" if h.gold else ""
        lines.append(f"  {h.rank:>3} {h.id:<16} {h.score:10.4f}  {legs}  {h.title[:40]}{mark}")
    lines += [f"  note: {one_line(n)}" for n in outcome.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Answer every query; 0 when all were answered, 2 when some input was refused."""
    queries = list(args.queries or []) or read_stdin_lines()
    if not queries:
        raise CliError("give at least one query (arguments or stdin, one per line)")
    corpus = svc.load_corpus_file(args.corpus)  # bad input fails before a model loads
    bm25_only = args.method == "bm25" and not args.model
    encoder = None if bm25_only else registry(args).get(args.model or default_model(args))
    index, notes = build(args, corpus, encoder)
    chosen = svc.resolve_weight(encoder, args.weight)
    if chosen.note and args.method == "hybrid" and args.fusion == "minmax":
        notes = [*notes, f"Hybrid {chosen.note}."]
    if not args.json:
        for n in notes:
            note_line(n)
    status = 0
    limits = load_limits()
    for raw in queries:
        try:
            query = clean_query(raw, limits)
            outcome = svc.search(
                index, query, method=args.method, k=args.top_k, fusion=args.fusion, weight=chosen.weight
            )
        except ValueError as exc:
            status = EXIT_INPUT
            if args.json:
                print_json({"query": raw, "error": one_line(str(exc))})
            else:
                print(f"# {raw}\n  error: {one_line(str(exc))}")
            continue
        if args.json:
            print_json(outcome_record(outcome, notes))
        else:
            print(format_outcome(outcome))
        sys.stdout.flush()
    return status

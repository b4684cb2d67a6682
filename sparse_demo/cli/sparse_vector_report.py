"""``sparse-vector-report``: what OpenSearch's ``sparse_vector`` field (SEISMIC) does to a model's token ids.

    python -m sparse_demo sparse-vector-report --model V26 --corpus assets/corpus/ko_sample --json
    python -m sparse_demo sparse-vector-report --vocab-only 250002

The ``sparse_vector`` field folds every token id into ``id % 32768`` and keeps the largest weight of the
ids of one vector that land together (:mod:`sparse_demo.index.sparse_vector_compat`, with the
neural-search source it follows). The report encodes the corpus's documents with the document side
(special tokens dropped, the ``--doc-top-k`` heaviest tokens kept, as the index keeps them) and its
queries (or ``--queries``) with the query side, and measures the collisions, the weight mass the merge
loses and how the top-k of an exact search changes when documents and queries are folded (and also
byte-quantized) as the engine does. ``--vocab-only N`` reports the vocabulary figures of ``N`` ids
without a model (``250002`` for XLM-R). ``--json`` prints one JSON object (full precision).
"""

from __future__ import annotations

import argparse
from typing import Any

from .common import CliError, add_model_arguments, default_model, positive_int, print_json, registry


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``sparse-vector-report``."""
    from ..index.sparse_vector_compat import MODULUS
    from ..search.options import DEFAULT_DOC_TOP_K, DEFAULT_QUERY_TOP_K

    p = subparsers.add_parser(
        "sparse-vector-report",
        help="token-id collisions and search changes when a model's vectors go into an OpenSearch sparse_vector field",
    )
    p.add_argument(
        "--corpus", default=None, help="corpus file or BEIR folder (.jsonl/.csv/.tsv/.zip); default: the bundled sample"
    )
    add_model_arguments(p, "preset name, Hub id or local folder (default: the default preset)")
    p.add_argument(
        "--queries",
        default=None,
        help="query texts for the search figures (.txt/.csv/.tsv/.jsonl); default: the corpus's own queries",
    )
    p.add_argument("--k", type=positive_int, default=10, help="top-k cut of the search figures (default 10)")
    p.add_argument(
        "--doc-top-k",
        type=positive_int,
        default=DEFAULT_DOC_TOP_K,
        help=f"tokens kept per document vector (default {DEFAULT_DOC_TOP_K}, as the index keeps)",
    )
    p.add_argument(
        "--query-top-k",
        type=positive_int,
        default=DEFAULT_QUERY_TOP_K,
        help=f"tokens kept per query vector (default {DEFAULT_QUERY_TOP_K})",
    )
    p.add_argument(
        "--modulus",
        type=positive_int,
        default=MODULUS,
        help=f"folding modulus (default {MODULUS}, neural-search since PR #1926; releases 3.3-3.8 used 65536, "
        "where ids folding to 32768 and above did not work)",
    )
    p.add_argument(
        "--vocab-only",
        type=positive_int,
        default=None,
        metavar="N",
        help="no model: the vocabulary figures of N ids (e.g. 250002 for XLM-R)",
    )
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--json", action="store_true", help="one JSON object")


def format_report(payload: dict[str, Any], rows: Any) -> str:
    """A readable block: a title line, then one ``figure  value  meaning`` line per figure."""
    title = payload.get("title", "sparse_vector compatibility")
    lines = [f"# {title}"]
    for r in rows.itertuples(index=False):
        value = "n/a" if r.value is None else (f"{r.value:,}" if isinstance(r.value, int) else str(r.value))
        lines.append(f"  {r.figure:<40} {value:>12}  {r.meaning}")
    lines += [f"  note: {n}" for n in payload.get("notes", [])]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Build the report and print it; 0 on success."""
    from ..index.sparse_vector_compat import vocabulary_folding

    if args.vocab_only is not None:
        given = [name for name in ("model", "corpus", "queries") if getattr(args, name, None)]
        if given:
            raise CliError(f"--vocab-only reports a vocabulary size alone; drop --{given[0]}")
        vocab = vocabulary_folding(args.vocab_only, args.modulus)
        payload = {"title": f"a vocabulary of {args.vocab_only:,} ids, modulus {args.modulus:,}", **vocab.to_dict()}
        if args.json:
            print_json(payload)
        else:
            print(format_report(payload, vocab.to_frame()))
        return 0

    from ..search import load_corpus_file, load_sample_corpus
    from ..search.sparse_vector import model_report
    from ..textio import read_query_file

    corpus = load_corpus_file(args.corpus) if args.corpus else load_sample_corpus()  # bad input fails first
    if not corpus.documents:
        raise CliError(f"{corpus.name}: no documents to report on")
    query_texts = read_query_file(args.queries) if args.queries else [q.text for q in corpus.queries]
    query_texts = [t for t in (s.strip() for s in query_texts) if t]
    model = args.model or default_model(args)
    encoder = registry(args).get(model)
    report = model_report(
        encoder,
        corpus,
        query_texts,
        k=args.k,
        doc_top_k=args.doc_top_k,
        query_top_k=args.query_top_k,
        modulus=args.modulus,
        batch_size=args.batch_size,
    )
    payload = {
        "title": f"{encoder.name} on {corpus.name}",
        "model": encoder.name,
        "corpus": corpus.name,
        "doc_top_k": args.doc_top_k,
        "query_top_k": args.query_top_k,
        **report.to_dict(),
    }
    if args.json:
        print_json(payload)
    else:
        print(format_report(payload, report.to_frame()))
    return 0

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

``--opensearch`` also measures on a real node (``OPENSEARCH_URL``, OpenSearch 3.3+ with the neural-search
plugin, e.g. ``OPENSEARCH_VERSION=3.6.0 OPENSEARCH_NEURAL=1 scripts/opensearch.sh start``): the same vectors go
into a temporary ``sparse_vector`` index searched by SEISMIC, and the engine's top-k is compared with the
exact one (:mod:`sparse_demo.index.opensearch.sparse_vector`); the index is deleted afterwards.
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
    engine = p.add_argument_group("a real node (OpenSearch 3.3+ with neural-search)")
    engine.add_argument(
        "--opensearch",
        action="store_true",
        help="also index the vectors into a temporary sparse_vector index on OPENSEARCH_URL and measure its top-k",
    )
    engine.add_argument(
        "--top-n", type=positive_int, default=10, help="method_parameters.top_n: query tokens SEISMIC reads (10)"
    )
    engine.add_argument(
        "--heap-factor", type=float, default=1.0, help="method_parameters.heap_factor: > 1 explores more (1.0)"
    )
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--json", action="store_true", help="one JSON object")


def format_report(payload: dict[str, Any], rows: Any) -> str:
    """A readable block: a title line, then one ``figure  value  meaning`` line per figure."""
    title = payload.get("title", "sparse_vector compatibility")
    lines = [f"# {title}"]
    for r in rows.itertuples(index=False):
        if r.value is None or isinstance(r.value, bool):
            value = {None: "n/a", True: "yes", False: "no"}[r.value]
        else:
            value = f"{r.value:,}" if isinstance(r.value, int) else str(r.value)
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

    from ..index.sparse_vector_compat import compatibility_report
    from ..search import load_corpus_file, load_sample_corpus
    from ..search.sparse_vector import model_vectors
    from ..textio import read_query_file

    corpus = load_corpus_file(args.corpus) if args.corpus else load_sample_corpus()  # bad input fails first
    if not corpus.documents:
        raise CliError(f"{corpus.name}: no documents to report on")
    query_texts = read_query_file(args.queries) if args.queries else [q.text for q in corpus.queries]
    query_texts = [t for t in (s.strip() for s in query_texts) if t]
    model = args.model or default_model(args)
    if args.opensearch and not query_texts:
        raise CliError("--opensearch measures searches: give --queries or a corpus with queries")
    client = _engine_client() if args.opensearch else None  # a node that cannot do it fails before the model loads
    encoder = registry(args).get(model)
    docs, queries = model_vectors(
        encoder,
        corpus,
        query_texts,
        doc_top_k=args.doc_top_k,
        query_top_k=args.query_top_k,
        batch_size=args.batch_size,
    )
    report = compatibility_report(docs, queries or None, int(encoder.vocab_size), args.k, modulus=args.modulus)
    engine = None
    if client is not None:
        from ..index.opensearch.sparse_vector import SeismicSettings, engine_agreement

        settings = SeismicSettings(top_n=args.top_n, heap_factor=args.heap_factor)
        engine = engine_agreement(client, docs, queries, args.k, settings=settings)
    payload = {
        "title": f"{encoder.name} on {corpus.name}",
        "model": encoder.name,
        "corpus": corpus.name,
        "doc_top_k": args.doc_top_k,
        "query_top_k": args.query_top_k,
        **report.to_dict(),
    }
    if args.json:
        print_json({**payload, "engine": engine.to_dict() if engine else None})
        return 0
    print(format_report(payload, report.to_frame()))
    if engine is not None:
        title = (
            f"measured on OpenSearch {engine.version} ({'SEISMIC' if engine.approximate else 'exact'} path, "
            f"{engine.documents:,} documents)"
        )
        print(format_report({"title": title}, engine.to_frame()))
    return 0


def _engine_client() -> Any:
    """A client for ``OPENSEARCH_URL`` whose node can hold a ``sparse_vector`` field, else :class:`CliError`."""
    from ..config import ConnectionSettings
    from ..index.opensearch.client import START_HINT, make_client
    from ..index.opensearch.sparse_vector import sparse_vector_support

    settings = ConnectionSettings.from_env()
    client = make_client(settings)
    try:
        why_not = sparse_vector_support(client)
    except Exception as exc:  # noqa: BLE001 - connection refused, auth, timeouts: all "cannot reach"
        raise CliError(
            f"OpenSearch at {settings.display_url} did not answer ({type(exc).__name__}). {START_HINT}"
        ) from exc
    if why_not:
        raise CliError(
            f"{why_not} (at {settings.display_url}); start one with "
            "`OPENSEARCH_VERSION=3.6.0 OPENSEARCH_NEURAL=1 OPENSEARCH_PORT=9280 scripts/opensearch.sh start` "
            "and set OPENSEARCH_URL=http://127.0.0.1:9280"
        )
    return client

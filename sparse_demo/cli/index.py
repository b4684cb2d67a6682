"""``index``: encode a corpus and build a search index (memory or OpenSearch).

    python -m sparse_demo index --corpus assets/corpus/ko_sample --model V26 [--backend opensearch]

``--corpus`` is a ``.jsonl`` file of ``{"id", "text"}`` objects (``title`` optional), a ``.csv`` /
``.tsv`` file, a BEIR folder or a zip of one. The memory backend keeps nothing between runs, so
``--backend memory`` only validates, encodes and reports counts; ``--backend opensearch`` fills an
index that later ``search`` runs reuse.
"""

from __future__ import annotations

import argparse
import sys

from .. import search as svc
from ..corpus import Corpus
from ..encoder import Encoder
from ..progress import Progress
from .common import (
    add_model_arguments,
    add_window_arguments,
    default_model,
    non_negative_int,
    note_line,
    positive_int,
    print_json,
    registry,
    window_settings,
)


def analyzer_arg(text: str) -> str:
    """argparse type: a BM25 analyzer spec (a preset name or a comma-separated stop-tag list), canonical."""
    from ..korean import get_analyzer

    try:
        return get_analyzer(text).spec
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_corpus_arguments(p: argparse.ArgumentParser, model_help: str) -> None:
    """The corpus, model, backend and analyzer options shared by ``index`` and ``search``."""
    from ..korean import ANALYZER_PRESETS, DEFAULT_ANALYZER

    p.add_argument("--corpus", required=True, help="a .jsonl/.csv/.tsv file, a BEIR folder or a zip of one")
    add_model_arguments(p, model_help)
    p.add_argument("--backend", choices=svc.BACKENDS, default="memory")
    p.add_argument("--index-name", default=None, help="OpenSearch index name (default: derived from corpus+model)")
    p.add_argument(
        "--no-fallback",
        dest="fallback",
        action="store_false",
        help="fail instead of using the memory backend when OpenSearch is unreachable",
    )
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument(
        "--analyzer",
        type=analyzer_arg,
        default=DEFAULT_ANALYZER,
        help=f"BM25 analyzer: {', '.join(ANALYZER_PRESETS)} or a comma-separated list of Kiwi stop-tag "
        f"prefixes such as J,E,XS (default: {DEFAULT_ANALYZER})",
    )
    p.add_argument(
        "--doc-top-k",
        type=non_negative_int,
        default=svc.DEFAULT_DOC_TOP_K,
        help=f"tokens kept per document vector (0: all; default {svc.DEFAULT_DOC_TOP_K})",
    )
    add_window_arguments(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``index``."""
    p = subparsers.add_parser("index", help="encode a corpus and build a search index (memory or OpenSearch)")
    add_corpus_arguments(p, "preset name, Hub id or local folder (default: the default preset)")
    os_group = p.add_argument_group("OpenSearch")
    os_group.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted ingest into the index made for this corpus and model (only missing "
        "documents are sent); without it such an index is rebuilt",
    )
    os_group.add_argument("--shards", type=positive_int, default=None, help="primary shards of a new index (default 1)")
    os_group.add_argument(
        "--replicas", type=non_negative_int, default=None, help="replicas of each shard of a new index (default 0)"
    )
    os_group.add_argument(
        "--bulk-size", type=positive_int, default=None, help="documents per bulk request (default 500)"
    )


def _progress(enabled: bool) -> Progress | None:
    """A progress bar on stderr, one line per 10% (``[####------]  40% 1,200/3,000 documents indexed``)."""
    if not enabled:
        return None
    last = {"pct": -10}

    def report(fraction: float, desc: str) -> None:
        pct = int(fraction * 100)
        if pct >= last["pct"] + 10 or fraction >= 1.0:
            last["pct"] = pct
            filled = min(10, max(0, pct // 10))
            print(f"[{'#' * filled}{'-' * (10 - filled)}] {pct:3d}% {desc}", file=sys.stderr, flush=True)

    return report


def build(args: argparse.Namespace, corpus: Corpus, encoder: Encoder | None) -> tuple[svc.SearchIndex, list[str]]:
    """Build the index of ``corpus`` as ``args`` say; returns the index and the notes worth showing."""
    session = svc.SearchSession(max_indexes=1)
    index, notes = session.get_or_build(
        corpus,
        encoder,
        args.backend,
        fallback=args.fallback,
        progress=_progress(not args.quiet),
        index_name=args.index_name,
        batch_size=args.batch_size,
        doc_top_k=None if args.doc_top_k == 0 else args.doc_top_k,
        analyzer=args.analyzer,
        doc_windows=window_settings(args),
        disk_cache=True,  # the command line's models and corpora are the user's own: keep their vectors
        **{
            k: v
            for k in ("resume", "shards", "replicas", "bulk_size")
            if (v := getattr(args, k, None)) not in (None, False)
        },
    )
    notes = [n for n in notes if not n.startswith(("Built", "Reused the cached"))]
    return index, list(corpus.notes) + notes


def run(args: argparse.Namespace) -> int:
    """Build the index and print what was built; 0 on success."""
    corpus = svc.load_corpus_file(args.corpus)  # bad input fails before a model loads
    encoder = registry(args).get(args.model or default_model(args))
    index, notes = build(args, corpus, encoder)
    report = {
        "corpus": index.corpus.name,
        "corpus_id": index.key.corpus_id,
        "model": index.model_name,
        "backend": index.backend_name,
        "analyzer": index.analyzer,
        "queries": len(index.corpus.queries),
        "dropped_judgements": int(getattr(index.corpus, "dropped_judgements", 0) or 0),
        **index.stats.to_json(),
        "notes": notes,
    }
    if args.json:
        print_json(report)
        return 0
    for n in notes:
        note_line(n)
    where = f" into {report['index_name']}" if report.get("index_name") else " (in memory: nothing persisted)"
    print(
        f"indexed {report['documents']} documents of {report['corpus']} with {report['model']}{where}; "
        f"{report['avg_sparse_tokens']} sparse tokens per document, {report['pruned_documents']} pruned, "
        f"encoding {report['encode_seconds']} s"
    )
    return 0

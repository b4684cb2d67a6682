"""``index`` and ``search`` subcommands (wired into ``python -m sparse_demo`` by ``cli.py``).

    python -m sparse_demo index --corpus assets/corpus/ko_sample --model V26 [--backend opensearch]
    python -m sparse_demo search --corpus assets/corpus/ko_sample --method bm25 --json "당뇨병 치료 방법"

``PATH`` is a ``.jsonl`` file of ``{"id", "text"}`` objects (``title`` optional), a ``.csv`` /
``.tsv`` file, a BEIR folder or a zip of one. ``search --json`` prints one JSON list of hits
per query (one line each): ``id``, ``score``, ``rank``, ``bm25`` and ``sparse`` legs
(``{"score", "rank"}``, null where the leg did not retrieve the hit), ``title`` and ``gold``.
BM25-only search needs no model. The memory backend keeps nothing between runs, so
``index --backend memory`` only validates, encodes and reports counts; with
``--backend opensearch`` it fills an index that later ``search`` runs reuse.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from . import search as svc

logger = logging.getLogger(__name__)


def _load_encoder(model: str | None, args: argparse.Namespace) -> Any:
    from .config import load_settings
    from .models import ModelRegistry

    settings = load_settings()
    if getattr(args, "device", None):
        from dataclasses import replace

        settings = replace(settings, device=args.device)
    name = model or settings.default_model
    if not name:
        raise ValueError("give --model (a preset name, Hub id or local folder)")
    return ModelRegistry(settings).get(name)


def _progress(enabled: bool) -> svc.StageProgress | None:
    if not enabled:
        return None
    last = {"pct": -10}

    def report(fraction: float, desc: str) -> None:
        pct = int(fraction * 100)
        if pct >= last["pct"] + 10 or fraction >= 1.0:
            last["pct"] = pct
            print(f"[{pct:3d}%] {desc}", file=sys.stderr)

    return report


def _build(args: argparse.Namespace, encoder: Any) -> svc.SearchIndex:
    corpus = svc.load_corpus_file(args.corpus)
    kwargs: dict[str, Any] = {
        "index_name": args.index_name,
        "batch_size": args.batch_size,
        "doc_top_k": None if args.doc_top_k == 0 else args.doc_top_k,
        "progress": _progress(not args.quiet),
    }
    session = svc.SearchSession(max_indexes=1)
    index, notes = session.get_or_build(corpus, encoder, args.backend, fallback=args.fallback, **kwargs)
    for n in notes:
        if not n.startswith(("Built", "Reused the cached")):
            print(f"note: {n}", file=sys.stderr)
    return index


def run_index(args: argparse.Namespace) -> int:
    """``index``: encode and index a corpus; print what was built."""
    from .encoder import ModelLoadError
    from .index.opensearch import OpenSearchUnavailable

    try:
        encoder = _load_encoder(args.model, args)
        index = _build(args, encoder)
    except (ModelLoadError, ValueError, OSError, OpenSearchUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = {
        "corpus": index.corpus.name,
        "corpus_id": index.key.corpus_id,
        "model": index.model_name,
        "backend": index.backend_name,
        "queries": len(index.corpus.queries),
        **index.stats.to_json(),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        where = f" into {report['index_name']}" if report["index_name"] else " (in memory: nothing persisted)"
        print(f"indexed {report['documents']} documents of {report['corpus']} with {report['model']}{where}; "
              f"{report['avg_sparse_tokens']} sparse tokens per document, {report['pruned_documents']} pruned, "
              f"encoding {report['encode_seconds']} s")
    return 0


def run_search(args: argparse.Namespace) -> int:
    """``search``: one result list per query (JSON lines with ``--json``)."""
    from .encoder import ModelLoadError
    from .index.opensearch import OpenSearchUnavailable

    queries = [q for q in (args.queries or []) if q.strip()]
    if not queries and not sys.stdin.isatty():
        queries = [line.strip() for line in sys.stdin if line.strip()]
    if not queries:
        print("error: give at least one query (arguments or stdin)", file=sys.stderr)
        return 2
    if args.top_k < 1:
        print("error: --top-k must be >= 1", file=sys.stderr)
        return 2
    if not 0.0 <= args.weight <= 1.0:
        print("error: --weight must be in [0, 1]", file=sys.stderr)
        return 2
    try:
        encoder = None if args.method == "bm25" and not args.model else _load_encoder(args.model, args)
        index = _build(args, encoder)
        for q in queries:
            outcome = svc.search(index, q, method=args.method, k=args.top_k, fusion=args.fusion, weight=args.weight)
            if args.json:
                print(json.dumps(outcome.to_json(), ensure_ascii=False))
                continue
            print(f"# {q}  ({outcome.method}, {outcome.backend}, {outcome.total_ms:.1f} ms)")
            for h in outcome.hits:
                legs = (f"bm25 {_fmt(h.bm25_score)} #{h.bm25_rank or '-'}  "
                        f"sparse {_fmt(h.sparse_score)} #{h.sparse_rank or '-'}")
                mark = " *" if h.gold else ""
                print(f"  {h.rank:>3} {h.id:<16} {h.score:10.4f}  {legs}  {h.title[:40]}{mark}")
            for n in outcome.notes:
                print(f"  note: {n}")
    except (ModelLoadError, ValueError, OSError, OpenSearchUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def _common(p: argparse.ArgumentParser, model_help: str) -> None:
    p.add_argument("--corpus", required=True, help="a .jsonl/.csv/.tsv file, a BEIR folder or a zip of one")
    p.add_argument("--model", "-m", default=None, help=model_help)
    p.add_argument("--backend", choices=svc.BACKENDS, default="memory")
    p.add_argument("--index-name", default=None, help="OpenSearch index name (default: derived from corpus+model)")
    p.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="fail instead of using the memory backend when OpenSearch is unreachable")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--doc-top-k", type=int, default=svc.DEFAULT_DOC_TOP_K,
                   help=f"tokens kept per document vector (0: all; default {svc.DEFAULT_DOC_TOP_K})")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def add_index_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="encode a corpus and build a search index (memory or OpenSearch)")
    _common(p, "preset name, Hub id or local folder (default: the default preset)")
    p.set_defaults(func=run_index)


def add_search_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="BM25 / sparse / hybrid search over a corpus")
    p.add_argument("queries", nargs="*", help="queries (or stdin, one per line)")
    _common(p, "preset name, Hub id or local folder (not needed for --method bm25)")
    p.add_argument("--method", choices=svc.METHODS, default="hybrid")
    p.add_argument("--top-k", "-k", type=int, default=10)
    p.add_argument("--fusion", choices=svc.FUSIONS, default="minmax")
    p.add_argument("--weight", type=float, default=0.5, help="sparse weight for min-max fusion (BM25: 1 - w)")
    p.set_defaults(func=run_search)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m sparse_demo.search_cli search ...``)."""
    parser = argparse.ArgumentParser(prog="python -m sparse_demo.search_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    add_index_parser(sub)
    add_search_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

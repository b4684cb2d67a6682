"""Command line: the same functions as the app, for scripts and notebooks.

    python -m sparse_demo encode --model V26 --top-k 10 --json "당뇨병 치료 방법"
    python -m sparse_demo search --corpus assets/corpus/ko_sample --method bm25 --json "당뇨병 치료 방법"

One parser; each subcommand is a module of this package with ``add_parser(subparsers)`` and
``run(args) -> int``, listed in :data:`COMMANDS`. Every subcommand exits 0 on success and
non-zero with a one-line ``error: ...`` on stderr on failure (2: bad input, 1: the work failed;
``-v`` adds the traceback of an unexpected error). Models are preset names
(``assets/models.json`` or ``SPARSE_DEMO_MODEL_*``), Hub ids or folders.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import zipfile
import zlib
from collections.abc import Sequence
from types import ModuleType

from .common import EXIT_FAILED, EXIT_INPUT, ArgumentParser, CliError, check_utf8_arguments, error_line, one_line

logger = logging.getLogger(__name__)

#: ``(subcommand, module of this package)``, in help order. To add a subcommand, write
#: ``sparse_demo/cli/<module>.py`` with ``add_parser(subparsers)`` and ``run(args) -> int`` and add a line.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("encode", "encode"),
    ("compare", "compare"),
    ("index", "index"),
    ("search", "search"),
    ("finetune", "finetune"),
    ("corpus-report", "corpus_report"),
    ("evaluate", "evaluate"),
    ("models", "models"),
    ("sparse-vector-report", "sparse_vector_report"),
)


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m sparse_demo`` parser with every subcommand of :data:`COMMANDS`.

    A subcommand whose module cannot be imported (a missing optional dependency, a broken
    install) is still listed; running it prints why it is unavailable, and the others work.
    """
    parser = ArgumentParser(prog="python -m sparse_demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress; show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command, module in COMMANDS:
        try:
            add = _module(module).add_parser
        except Exception as exc:  # noqa: BLE001 - one broken subcommand must not take the others down
            logger.debug("sparse_demo.cli.%s cannot be imported", module, exc_info=True)
            reason = f"{type(exc).__name__}: {exc}"
            stub = sub.add_parser(command, help=f"(unavailable: {one_line(reason)[:80]})", add_help=False)
            stub.add_argument("rest", nargs=argparse.REMAINDER)
            stub.set_defaults(unavailable=reason)
            continue
        before = set(sub.choices)
        add(sub)
        if set(sub.choices) - before != {command}:
            raise RuntimeError(f"sparse_demo.cli.{module}.add_parser must register exactly {command!r}")
    return parser


def _quiet_libraries() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - transformers missing or changed: nothing to quiet
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status (0 success, 1 failure, 2 bad input)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        check_utf8_arguments(argv)
    except CliError as exc:
        return error_line(str(exc), exc.status)
    verbose = any(a in ("-v", "--verbose") for a in argv[:1])
    if not verbose:  # stderr carries one line per problem: no download/loading bars
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    # Problems reach the user as one ``error:``/``note:`` line each; library warnings repeat them
    # (often over several lines), so they show with -v only.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, stream=sys.stderr)
    if not args.verbose:
        _quiet_libraries()
    module = dict(COMMANDS)[args.command]
    if getattr(args, "unavailable", None):
        return error_line(f"the {args.command} subcommand is unavailable here: {args.unavailable}", EXIT_FAILED)
    try:
        return int(_module(module).run(args))
    except CliError as exc:
        return error_line(str(exc), exc.status)
    except KeyboardInterrupt:
        return error_line("interrupted", 130)
    except BrokenPipeError:  # the reader went away (``... | head``): stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush silent
        return EXIT_FAILED
    except (zipfile.BadZipFile, zlib.error) as exc:
        return error_line(f"a zip file is corrupt or unreadable ({exc}); re-create the archive", EXIT_INPUT)
    except (ValueError, OSError, LookupError) as exc:
        # ValueError: the loaders' messages (and UnicodeError); OSError: missing or unreadable files.
        if args.verbose:
            logger.exception("%s failed", args.command)
        status = EXIT_INPUT if isinstance(exc, (ValueError, FileNotFoundError, IsADirectoryError)) else EXIT_FAILED
        return error_line(str(exc) or type(exc).__name__, status)
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, never a traceback
        if args.verbose:
            logger.exception("%s failed", args.command)
        if type(exc).__module__.startswith("sparse_demo.") and str(exc):
            return error_line(str(exc), EXIT_FAILED)  # the project's own errors carry a readable reason
        return error_line(f"{type(exc).__name__}: {exc} (run with -v for the traceback)", EXIT_FAILED)


__all__ = ["COMMANDS", "build_parser", "main"]

"""Helpers shared by the subcommands: the model registry, reading texts, errors and JSON output.

Without ``--model`` a command uses the configured default model (``assets/models.json`` or
``SPARSE_DEMO_DEFAULT_MODEL``); when that cannot be loaded (offline, a missing folder) it uses the demo
V26-style demo model bundled in ``assets/demo-v26-style`` and says so in one ``note:`` line (:func:`default_model`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from ..config import load_settings
from ..models import ModelRegistry
from ..textio import read_query_file

#: Exit status of a run that failed (a model, index or training error).
EXIT_FAILED = 1
#: Exit status of bad input (arguments, files, stdin).
EXIT_INPUT = 2
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line: ``error: <prog>: <message> (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"error: {self.prog}: {one_line(message)} (see {self.prog} --help)\n")


class CliError(Exception):
    """A problem the user can fix, reported as one ``error: ...`` line with exit ``status``."""

    def __init__(self, message: str, status: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.status = status


def one_line(message: str) -> str:
    """``message`` on one line (newlines and runs of spaces collapsed).

    Example:
        >>> one_line("Could not load model\\n  (offline)")
        'Could not load model (offline)'
    """
    return " ".join(str(message).split())


def error_line(message: str, status: int = EXIT_INPUT, *, err: TextIO | None = None) -> int:
    """Print ``error: <message>`` as one line on stderr and return ``status``."""
    stream = err or sys.stderr
    stream.write(f"error: {one_line(message)}\n")
    stream.flush()
    return status


def note_line(message: str, *, err: TextIO | None = None) -> None:
    """Print ``note: <message>`` as one line on stderr."""
    (err or sys.stderr).write(f"note: {one_line(message)}\n")


def check_utf8_arguments(argv: Sequence[str]) -> None:
    """Refuse arguments that were not valid UTF-8 (Python keeps their bytes as lone surrogates).

    Raises:
        CliError: ``argument N is not valid UTF-8 text``.
    """
    for i, arg in enumerate(argv, start=1):
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            raise CliError(f"argument {i} is not valid UTF-8 text; pass UTF-8 (e.g. iconv -f cp949 -t utf-8)") from None


def demo_model_name() -> str:
    """The bundled demo model's name (what a command falls back to offline)."""
    from ..offline import DEMO_MODEL_NAME

    return DEMO_MODEL_NAME


def add_model_arguments(p: argparse.ArgumentParser, model_help: str = "preset name, Hub id or local folder") -> None:
    """``--model``, ``--device`` and ``--max-length``: what :func:`registry` reads."""
    fallback = (
        f"; without --model, the configured default, or the bundled demo model '{demo_model_name()}' "
        "when that cannot be loaded (list: python -m sparse_demo models)"
    )
    p.add_argument("--model", "-m", default=None, help=model_help + fallback)
    p.add_argument("--device", choices=DEVICES, default=None, help="default: settings (SPARSE_DEMO_DEVICE)")
    p.add_argument("--max-length", type=positive_int, default=None, help="encoder max length in tokens")


def registry(args: argparse.Namespace) -> ModelRegistry:
    """A :class:`ModelRegistry` built as the app builds it (:func:`load_settings`, the bundled demo model
    registered), with the ``--device`` / ``--max-length`` overrides of ``args`` where given.

    One per ``args`` (kept on it): the commands and :func:`default_model` share its loaded models."""
    kept = getattr(args, "_registry", None)
    if kept is not None:
        return kept
    settings = load_settings()
    overrides: dict[str, Any] = {}
    if getattr(args, "device", None):
        overrides["device"] = args.device
    if getattr(args, "max_length", None):
        overrides["max_length"] = args.max_length
    if overrides:
        settings = dataclasses.replace(settings, **overrides)
    reg = ModelRegistry(settings)
    from ..offline import register_cached_local_model, register_demo_model

    register_demo_model(reg)
    register_cached_local_model(reg)
    args._registry = reg
    return reg


def default_model(args: argparse.Namespace | None = None, *, err: TextIO | None = None) -> str:
    """The model a command uses without ``--model``.

    Args:
        args: the command's arguments; with them the configured default is loaded (in :func:`registry`),
            and when it cannot be, the bundled demo model is used instead, said in one ``note:`` line.
            Without them, the configured default's name (nothing is loaded).
        err: where the note goes (stderr).

    Raises:
        CliError: no default configured, or neither the default nor the demo model loads (exit 1).
    """
    name = load_settings().default_model
    if not name:
        raise CliError(
            f"give --model (a preset name, Hub id or local folder; the bundled demo model is '{demo_model_name()}')"
        )
    if args is None:
        return name
    reg = registry(args)
    encoder, error = reg.try_get(name)
    if encoder is not None:
        return name
    demo = demo_model_name()
    if demo == name or demo not in reg.names:
        raise CliError(error or f"the default model {name} could not be loaded", EXIT_FAILED)
    _, demo_error = reg.try_get(demo)
    if demo_error:
        raise CliError(f"{error}; the bundled demo model could not be loaded either: {demo_error}", EXIT_FAILED)
    reason = error.split(": ", 1)[-1] if error else "unknown reason"
    note_line(
        f"the default model {name} could not be loaded ({reason}); using the bundled demo model "
        f"'{demo}' instead (give --model to choose another)",
        err=err,
    )
    return demo


def read_stdin_lines(stream: TextIO | None = None) -> list[str]:
    """Lines of stdin, decoded as strict UTF-8 (split on ``\\n`` only; trailing ``\\r`` removed).

    Returns [] when stdin is a terminal.

    Raises:
        ValueError: stdin is not UTF-8 (the message names the line).
    """
    stream = stream or sys.stdin
    if stream is None or stream.isatty():
        return []
    buffer = getattr(stream, "buffer", None)
    data = buffer.read() if buffer is not None else stream.read().encode("utf-8", "surrogateescape")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        lineno = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"stdin line {lineno} is not valid UTF-8 text; pipe UTF-8 (e.g. iconv -f cp949 -t utf-8)"
        ) from None
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_texts(args: argparse.Namespace, *, keep_empty: bool = False) -> list[str]:
    """Texts from ``args.texts`` (positional), ``args.file`` and, when neither gives any, stdin.

    Args:
        args: parsed arguments with ``texts`` and optionally ``file``.
        keep_empty: keep blank arguments and stdin lines (so output lines match input lines).

    Raises:
        CliError: no text at all.
        ValueError: an unreadable file or non-UTF-8 stdin.
    """
    texts = [t.strip() for t in (getattr(args, "texts", None) or [])]
    if getattr(args, "file", None):
        texts += read_query_file(args.file)
    if not texts:
        texts = [t.strip() for t in read_stdin_lines()]
    if not keep_empty:
        texts = [t for t in texts if t]
    if not texts:
        raise CliError("give at least one text (arguments, --file or stdin)")
    return texts


def json_default(value: object) -> object:
    """``json.dumps`` fallback: numpy scalars and arrays, NaN as null, dataclasses, paths as text."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "shape", None) == ():
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


def dumps(payload: Any, *, indent: int | None = None) -> str:
    """Strict JSON text (NaN and infinities as null, Korean kept as is, numpy values as numbers).

    Example:
        >>> import numpy as np
        >>> dumps({"q": "당뇨", "score": np.float32(0.5), "ids": np.array([1, 2]), "bad": float("nan")})
        '{"q": "당뇨", "score": 0.5, "ids": [1, 2], "bad": null}'
    """
    return json.dumps(_nan_to_none(payload), ensure_ascii=False, indent=indent, default=json_default, allow_nan=False)


def print_json(payload: Any, *, out: TextIO | None = None, indent: int | None = None) -> None:
    """Write ``payload`` as JSON followed by a newline (one line unless ``indent``)."""
    stream = out or sys.stdout
    stream.write(dumps(payload, indent=indent) + "\n")


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
    return value


def add_window_arguments(p: argparse.ArgumentParser) -> None:
    """``--doc-windows`` and ``--stride``: how documents longer than the model reads are read."""
    from ..encoder.windows import WINDOW_MODES

    p.add_argument(
        "--doc-windows",
        choices=WINDOW_MODES,
        default="max",
        help="documents longer than the model's max length: max (all of it, the max over token windows; "
        "default), passages (each window a passage, a document scores its best) or first (truncate)",
    )
    p.add_argument(
        "--stride",
        type=positive_int,
        default=None,
        help="tokens from one window's start to the next (default: three quarters of the window)",
    )


def window_settings(args: argparse.Namespace):
    """The :class:`~sparse_demo.encoder.windows.WindowSettings` of ``--doc-windows`` / ``--stride``."""
    from ..encoder.windows import WindowSettings

    return WindowSettings(args.doc_windows, args.stride)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def unit_float(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


__all__ = [
    "ArgumentParser",
    "DEVICES",
    "EXIT_FAILED",
    "EXIT_INPUT",
    "CliError",
    "add_model_arguments",
    "check_utf8_arguments",
    "default_model",
    "demo_model_name",
    "dumps",
    "error_line",
    "json_default",
    "note_line",
    "one_line",
    "positive_int",
    "non_negative_int",
    "print_json",
    "read_stdin_lines",
    "read_texts",
    "registry",
    "unit_float",
]

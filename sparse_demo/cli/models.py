"""``models``: the models a command can use by name, which one it uses without ``--model``, and
(with ``--check``) whether each one loads here and its facts (format, backbone, vocabulary size, pooling,
query/document sides, max length, fingerprint).

    python -m sparse_demo models
    python -m sparse_demo models --check --json
"""

from __future__ import annotations

import argparse

from ..config import load_settings
from .common import DEVICES, demo_model_name, print_json, registry


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list model names (presets and the bundled demo model)", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--check", action="store_true", help="load every model, say which load and give their facts (slow)")
    p.add_argument("--json", action="store_true", help="one JSON object per model")
    p.add_argument("--device", choices=DEVICES, default=None, help="default: settings (SPARSE_DEMO_DEVICE)")
    p.set_defaults(max_length=None)


def _facts_line(f: dict) -> str:
    """``format=router backbone=bert vocab=300 pooling=max ... fingerprint=...`` on one line."""
    query = "inference-free" if f["inference_free"] else ("asymmetric" if f["asymmetric"] else "symmetric")
    return (
        f"format={f['format']} backbone={f['backbone']} vocab={f['vocab_size']} pooling={f['pooling']!r} "
        f"query_side={query} max_length={f['max_length']['query']}/{f['max_length']['document']} "
        f"fingerprint={f['fingerprint']}"
    )


def run(args: argparse.Namespace) -> int:
    """Print one line per model: name, source, role (default / demo), and with ``--check`` its state."""
    default = load_settings().default_model
    demo = demo_model_name()
    reg = registry(args)
    rows = []
    for name in reg.names:
        preset = reg.resolve(name)
        roles = [
            r
            for r, hit in (
                ("default", name == default),
                ("bundled demo model, used when the default cannot be loaded", name == demo),
            )
            if hit
        ]
        row = {"name": name, "source": preset.source, "role": ", ".join(roles)}
        if args.check:
            encoder, error = reg.try_get(name)
            row["state"] = "loads" if error is None else f"fails: {error}"
            if encoder is not None:
                row["facts"] = encoder.facts()
        rows.append(row)
    for row in rows:
        if args.json:
            print_json(row)
        else:
            extra = [x for x in (row["role"], row.get("state", "")) if x]
            print(f"{row['name']}\t{row['source']}" + (f"\t({'; '.join(extra)})" if extra else ""))
            if "facts" in row:
                print("\t" + _facts_line(row["facts"]))
    return 0

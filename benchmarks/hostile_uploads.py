"""Hostile uploads against the app's loaders: refused or not, the message, wall time and peak RSS.

Each input is built once in a temporary folder (streaming writes), then loaded in a fresh Python
process through the functions the tabs call (``Limits.check_upload`` + ``load_corpus_file`` for
Search and the corpus report, ``load_eval_set`` for Evaluate, ``SearchSession.get_or_build`` for
indexing), so each row's peak RSS is its own: ``peak RSS delta`` is the child's ``ru_maxrss`` after
the load minus before it (imports done, Kiwi's model loaded).

Run from anywhere::

    python benchmarks/hostile_uploads.py            # the table (about a minute on 2 cores)
    python benchmarks/hostile_uploads.py --markdown # as a Markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
KOREAN = "당뇨병 치료의 기본은 식이요법과 규칙적인 운동입니다. "


def _line(doc_id: str, text: str) -> str:
    return json.dumps({"_id": doc_id, "text": text}, ensure_ascii=False)


def _varied(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choices([chr(c) for c in range(0xAC00, 0xAC00 + 400)] + [" "] * 80, k=n))


def build_inputs(folder: Path) -> None:
    """Write every hostile input under ``folder``."""
    chunk = (KOREAN * (MB // len(KOREAN.encode()))).encode()
    with (
        zipfile.ZipFile(folder / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("bomb/corpus.jsonl", "w", force_zip64=True) as out,
    ):
        out.write(b'{"_id": "bomb", "text": "')
        for _ in range(170_000_000 // len(chunk)):
            out.write(chunk)
        out.write(b'"}\n')
    text = KOREAN * 100  # ~7,500 bytes a document, as in the issue
    with (
        zipfile.ZipFile(folder / "docs26000.zip", "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("big/corpus.jsonl", "w") as out,
    ):
        for i in range(26_000):
            out.write((_line(f"d{i}", f"{i} {text}") + "\n").encode())
    with (
        zipfile.ZipFile(folder / "docs26000_small.zip", "w", zipfile.ZIP_DEFLATED) as zf,
        zf.open("many/corpus.jsonl", "w") as out,
    ):
        for i in range(26_000):
            out.write((_line(f"d{i}", f"문서 {i} {KOREAN}") + "\n").encode())
    docs = [(f"doc-{i}", _varied(2_800_000, 17) if i == 17 else f"{i}번 문서: {KOREAN}") for i in range(20)]
    (folder / "long_doc.jsonl").write_text("\n".join(_line(i, t) for i, t in docs) + "\n", encoding="utf-8")
    at_limit = [(f"doc-{i}", _varied(100_000, i)) for i in range(3)]
    (folder / "at_limit.jsonl").write_text("\n".join(_line(i, t) for i, t in at_limit) + "\n", encoding="utf-8")
    slow = [(f"doc-{i}", _varied(100_000, 100 + i)) for i in range(30)]
    (folder / "slow.jsonl").write_text("\n".join(_line(i, t) for i, t in slow) + "\n", encoding="utf-8")
    with zipfile.ZipFile(folder / "inf_qrels.zip", "w") as zf:
        zf.writestr("q/corpus.jsonl", _line("d1", "당뇨병 치료") + "\n" + _line("d2", "전세 보증금") + "\n")
        zf.writestr("q/queries.jsonl", _line("q1", "당뇨병") + "\n")
        zf.writestr("q/qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\tinf\n")
    (folder / "not_a_zip.zip").write_bytes(b"id,text\nd1,just a csv renamed to .zip\n" * 1000)
    with zipfile.ZipFile(folder / "whole.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("corpus.jsonl", "\n".join(_line(f"d{i}", f"{i} {KOREAN}") for i in range(5000)))
    data = (folder / "whole.zip").read_bytes()
    (folder / "truncated.zip").write_bytes(data[: len(data) // 2])
    body = (_line("liar", _varied(5_000, 5)) + "\n").encode() * 1400  # repeats within deflate's 32 KB window
    with zipfile.ZipFile(folder / "lying.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("corpus.jsonl", body)
    raw = bytearray((folder / "lying.zip").read_bytes())
    struct.pack_into("<I", raw, raw.find(b"PK\x03\x04") + 22, 1000)
    struct.pack_into("<I", raw, raw.find(b"PK\x01\x02") + 24, 1000)
    (folder / "lying.zip").write_bytes(bytes(raw))


#: name -> (file, what is done with it, description)
CASES: dict[str, tuple[str, str, str]] = {
    "bomb": ("bomb.zip", "upload", "zip: one 170 MB document"),
    "docs26000": ("docs26000.zip", "upload", "zip: 26,000 documents, 193 MB"),
    "docs26000_small": ("docs26000_small.zip", "upload", "zip: 26,000 small documents, 2.4 MB"),
    "long_doc": ("long_doc.jsonl", "upload", "jsonl: document of 2.8M characters"),
    "inf_qrels": ("inf_qrels.zip", "evaluate", "zip: qrels score inf (Evaluate)"),
    "not_a_zip": ("not_a_zip.zip", "upload", "a CSV renamed .zip"),
    "truncated": ("truncated.zip", "upload", "a zip cut in half"),
    "lying": ("lying.zip", "upload", "zip: headers declare 1,000 bytes, data 20 MB"),
    "at_limit_bm25": ("at_limit.jsonl", "index", "3 documents of 100,000 chars: BM25 index (accepted)"),
    "slow_bm25": ("slow.jsonl", "index_budget", "30 documents of 100,000 chars, budget 10 s"),
}


def run_case(name: str, folder: Path) -> dict:
    """Load one input (in this process) and measure it."""
    from sparse_demo import search as svc
    from sparse_demo.evaluation import load_eval_set
    from sparse_demo.limits import Limits
    from sparse_demo.search.corpus_files import load_corpus_file

    file, action, _ = CASES[name]
    path = folder / file
    limits = Limits()
    if action == "index_budget":
        limits = Limits(max_index_seconds=10.0)
    session = svc.SearchSession.from_limits(limits)
    with tempfile.TemporaryDirectory() as work:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        try:
            if action == "evaluate":
                limits.check_upload(path, "file")
                load_eval_set(path, workdir=work, limits=limits)
            else:
                limits.check_upload(path, "corpus file")
                corpus = load_corpus_file(path, workdir=work, limits=limits)
                if action.startswith("index"):
                    corpus.owner = "visitor"
                    session.get_or_build(corpus, None, "memory")
            refused, text = False, "accepted"
        except ValueError as exc:
            refused, text = True, str(exc)
        seconds = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "case": name,
        "refused": refused,
        "message": text,
        "seconds": seconds,
        "rss_delta_mb": (after - before) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if args.case:  # child: one measurement, as JSON
        import sparse_demo.evaluation  # noqa: F401 - imports before the baseline RSS
        from sparse_demo.korean import get_analyzer

        get_analyzer("default").terms("워밍업")  # Kiwi's model loaded before the baseline too
        print(json.dumps(run_case(args.case, Path(args.dir)), ensure_ascii=False))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build_inputs(folder)
        rows = []
        for name, (file, _, what) in CASES.items():
            proc = subprocess.run(
                [sys.executable, __file__, "--case", name, "--dir", str(folder)],
                capture_output=True,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            if proc.returncode != 0:
                rows.append(
                    {
                        "case": name,
                        "refused": None,
                        "message": proc.stderr.strip()[-200:],
                        "seconds": 0,
                        "rss_delta_mb": 0,
                    }
                )
            else:
                rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            rows[-1].update(what=what, size=(folder / file).stat().st_size)
    if args.markdown:
        print("| input | upload bytes | refused | wall s | peak RSS delta MB | message |")
        print("|---|---:|---|---:|---:|---|")
        for r in rows:
            print(
                f"| {r['what']} | {r['size']:,} | {'yes' if r['refused'] else 'no'} | {r['seconds']:.3f} | "
                f"{r['rss_delta_mb']:.1f} | {r['message'][:200]} |"
            )
        return
    for r in rows:
        print(
            f"{r['what']:<52} {r['size']:>12,} B  refused={r['refused']!s:<5} {r['seconds']:8.3f} s "
            f"{r['rss_delta_mb']:7.1f} MB  {r['message'][:160]}"
        )


if __name__ == "__main__":
    main()

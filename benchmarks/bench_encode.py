"""Encoding speed and peak memory: this project's encoder vs the card's formula vs SparseEncoder.

Builds (once, cached under .cache/) a real-size xlm-roberta-base configuration with random
weights and the 250,002-token XLM-R tokenizer, then encodes the same 32 documents of exactly
192 tokens with each method in its OWN process (so peak RSS is per method), and prints docs/s,
peak RSS of the process, the RSS added during encoding (above the loaded model) and the largest
difference between each method's vectors and this project's. The precision modes (``ours`` fp32,
``ours_bf16``, ``ours_int8``: dynamically quantised linear layers) are compared with fp32 by speed,
largest weight error and top-50 overlap: the CPU default stays fp32 unless a faster mode agrees.

    python benchmarks/bench_encode.py [--tokenizer ../shared/models/xlmr-tokenizer] [--repeats 2]

``--corpus N`` measures corpus encoding instead (``search.encode_corpus``): N real paragraphs of
varied length (KoBEST BoolQ from ../shared/data, else the bundled sample), a small-hidden model
with the real 250,002-token vocabulary, and two schedules side by side in one process: the old
one (each text tokenised alone, the model run on 32-text slices in corpus order) and the new one
(tokenizer batches, all texts sorted by length, then 32-text batches). It prints seconds (best
of ``--repeats``), the positions the model computed (padding included) and the largest
difference between the two schedules' vectors.

    python benchmarks/bench_encode.py --corpus 1024 [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_TOKENIZER = ROOT.parent / "shared" / "models" / "xlmr-tokenizer"
CACHE = ROOT / ".cache" / "bench_xlmr_base"
METHODS = ("ours", "ours_bf16", "ours_int8", "card_formula", "sentence_transformers")
N_DOCS, N_TOKENS = 32, 192


class PeakRSS:
    """Samples this process's RSS every 5 ms to find the peak during a block."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        self.start = self.proc.memory_info().rss
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def build_model(tokenizer_dir: Path) -> Path:
    if (CACHE / "model.safetensors").exists():
        return CACHE
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaForMaskedLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=len(tok))  # xlm-roberta-base defaults: 768 hidden, 12 layers
    model = XLMRobertaForMaskedLM(config)
    model.config.architectures = ["XLMRobertaForMaskedLM"]
    CACHE.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(CACHE)
    tok.save_pretrained(CACHE)
    return CACHE


def make_docs(model_dir: Path) -> list[str]:
    """32 Korean documents of exactly 192 tokens (with <s> and </s>) from the sample corpus."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    corpus = ROOT / "assets" / "corpus" / "ko_sample" / "corpus.jsonl"
    texts = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs, i = [], 0
    while len(docs) < N_DOCS:
        ids: list[int] = []
        while len(ids) < N_TOKENS:
            ids += tok(texts[i % len(texts)], add_special_tokens=False)["input_ids"]
            i += 1
        doc = tok.decode(ids[: N_TOKENS - 2])
        n = len(tok(doc)["input_ids"])
        while n > N_TOKENS:  # decoding can merge pieces differently; trim until it fits exactly
            doc = doc[:-1]
            n = len(tok(doc)["input_ids"])
        docs.append(doc)
    return docs


def run_method(method: str, model_dir: Path, docs: list[str], repeats: int, out: Path) -> dict:
    import torch

    torch.set_grad_enabled(False)
    if method in ("ours", "ours_bf16", "ours_int8"):
        from sparse_demo.encoder import SpladeEncoder

        precision = {"ours_bf16": "bf16", "ours_int8": "int8"}.get(method, "fp32")
        enc = SpladeEncoder.load(str(model_dir), device="cpu", max_length=N_TOKENS, precision=precision)

        def encode():
            res = enc.encode(docs, batch_size=N_DOCS)
            dense = np.zeros((len(docs), enc.vocab_size), dtype=np.float32)
            for r, e in enumerate(res):
                dense[r, e.vector.token_ids] = e.vector.weights
            return dense
    elif method == "card_formula":
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(model_dir))
        model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()

        def encode():
            tokens = tok(docs, return_tensors="pt", padding=True, truncation=True, max_length=N_TOKENS)
            logits = model(**tokens).logits
            vec = torch.max(torch.log(1 + torch.relu(logits)) * tokens["attention_mask"].unsqueeze(-1), dim=1)
            return vec.values.numpy()
    elif method == "sentence_transformers":
        from sentence_transformers import SparseEncoder
        from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

        mlm = MLMTransformer(str(model_dir), max_seq_length=N_TOKENS)
        model = SparseEncoder(modules=[mlm, SpladePooling(pooling_strategy="max")], device="cpu")

        def encode():
            emb = model.encode(docs, batch_size=N_DOCS, convert_to_tensor=True, convert_to_sparse_tensor=False)
            return emb.to_dense().numpy() if emb.is_sparse else emb.numpy()
    else:
        raise ValueError(f"method must be one of {METHODS}")
    times, peaks, starts = [], [], []
    result = None
    for _ in range(repeats):
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            result = encode()
            times.append(time.perf_counter() - t0)
        peaks.append(mem.peak)
        starts.append(mem.start)
    np.save(out, result)
    return {
        "method": method,
        "seconds": min(times),
        "docs_per_s": len(docs) / min(times),
        "peak_rss_gb": max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, max(peaks)) / 2**30,
        "encode_extra_gb": max(p - s for p, s in zip(peaks, starts)) / 2**30,
        "threads": torch.get_num_threads(),
    }


SMALL_CACHE = ROOT / ".cache" / "bench_xlmr_small"


def build_small_model(tokenizer_dir: Path) -> Path:
    """A 2-layer, 128-hidden XLM-R MLM with the full 250,002-token vocabulary (random weights)."""
    if (SMALL_CACHE / "model.safetensors").exists():
        return SMALL_CACHE
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaForMaskedLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(tok),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=514,
    )
    model = XLMRobertaForMaskedLM(config)
    model.config.architectures = ["XLMRobertaForMaskedLM"]
    SMALL_CACHE.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(SMALL_CACHE)
    tok.save_pretrained(SMALL_CACHE)
    return SMALL_CACHE


def corpus_texts(n: int) -> tuple[list[str], str]:
    """``n`` unique paragraphs (BoolQ when ../shared/data has it, else the sample corpus) and their source."""
    import csv

    boolq = ROOT.parent / "shared" / "data" / "kobest_boolq"
    texts: list[str] = []
    if boolq.is_dir():
        for split in ("train", "dev", "test"):
            with (boolq / f"{split}.tsv").open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                    if row.get("Text") and row["Text"] not in texts:
                        texts.append(row["Text"])
                    if len(texts) >= n:
                        return texts, "KoBEST BoolQ paragraphs"
        return texts, "KoBEST BoolQ paragraphs"
    corpus = ROOT / "assets" / "corpus" / "ko_sample" / "corpus.jsonl"
    rows = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:n], "bundled ko_sample passages"


def bench_corpus(n_docs: int, tokenizer_dir: Path, repeats: int) -> None:
    """Old (per-text tokenizer, 32-text slices) vs new (batched tokenizer, global length sort) schedules."""
    import torch

    from sparse_demo.corpus import Corpus, Document
    from sparse_demo.encoder import MAX_TEXT_CHARS, SpladeEncoder
    from sparse_demo.search import encode_corpus

    torch.set_grad_enabled(False)
    model_dir = build_small_model(tokenizer_dir)
    texts, source = corpus_texts(n_docs)
    corpus = Corpus("bench", [Document(f"d{i}", t) for i, t in enumerate(texts)])
    enc = SpladeEncoder.load(str(model_dir), device="cpu")

    class OldSchedule:
        """The encoder as encode_corpus used it before: one tokenizer call per text, sorting within the call."""

        def __init__(self, inner: SpladeEncoder) -> None:
            self.inner = inner

        def __getattr__(self, name: str):
            if name == "encode_iter":  # the old code path had none
                raise AttributeError(name)
            return getattr(self.inner, name)

        def _tokenize_one(self, text: str) -> dict:
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}")
            tok, m = self.inner.tokenizer, self.inner.max_length
            full = e = tok(text, add_special_tokens=True, truncation=False, verbose=False, return_offsets_mapping=True)
            if len(full["input_ids"]) > m:
                e = tok(text, add_special_tokens=True, truncation=True, max_length=m, return_offsets_mapping=True)
            return {
                "input_ids": list(e["input_ids"]),
                "offsets": [tuple(o) for o in e["offset_mapping"]],
                "full_len": len(full["input_ids"]),
            }

        def encode(self, texts, *, batch_size=32, progress=None):
            items = [self._tokenize_one(text) for text in texts]
            order = sorted(range(len(items)), key=lambda i: len(items[i]["input_ids"]))
            out = [None] * len(items)
            pad = self.inner.tokenizer.pad_token_id or 0
            for b0 in range(0, len(order), batch_size):
                idx = order[b0 : b0 + batch_size]
                width = max(len(items[i]["input_ids"]) for i in idx)
                ids = torch.full((len(idx), width), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    seq = items[i]["input_ids"]
                    ids[row, : len(seq)] = torch.tensor(seq)
                    mask[row, : len(seq)] = 1
                values, pos = self.inner._pool_batch(ids, mask)
                for row, i in enumerate(idx):
                    out[i] = self.inner._to_encoding(texts[i], items[i], values[row], pos[row])
            return out

    old = OldSchedule(enc)  # no encode_iter: encode_corpus runs it on 32-text slices in corpus order
    lengths = [
        len(x["input_ids"])
        for x in enc._tokenize([f"{d.title}\n{d.text}" if d.title else d.text for d in corpus.documents])
    ]

    def positions(order: list[int]) -> int:
        return sum(
            len(order[i : i + 32]) * max(lengths[j] for j in order[i : i + 32]) for i in range(0, len(order), 32)
        )

    old_pos = sum(
        positions(sorted(range(s, min(s + 32, len(lengths))), key=lambda j: lengths[j]))
        for s in range(0, len(lengths), 32)
    )
    new_pos = positions(sorted(range(len(lengths)), key=lambda j: lengths[j]))
    timings: dict[str, list[float]] = {
        "old: per-text tokenizer, 32-text slices": [],
        "new: batched tokenizer, global length sort": [],
    }
    results = {}
    encode_corpus(corpus, None)  # warm up Kiwi (BM25 terms) so neither schedule pays for loading it
    for _ in range(repeats):
        for label, encoder in zip(timings, (old, enc)):
            t0 = time.perf_counter()
            results[label] = encode_corpus(corpus, encoder, batch_size=32)  # default pruning (512 tokens)
            timings[label].append(time.perf_counter() - t0)
    labels = list(timings)
    a, b = (results[k].documents for k in labels)
    diff = 0.0
    for da, db in zip(a, b):
        for tok in da.sparse.keys() | db.sparse.keys():
            diff = max(diff, abs(da.sparse.get(tok, 0.0) - db.sparse.get(tok, 0.0)))
    print(
        f"\n{len(texts)} {source} (tokens: median {int(np.median(lengths))}, max {max(lengths)}, "
        f"max_length {enc.max_length}); model: 2 layers x 128 hidden, vocab {enc.vocab_size:,}; "
        f"threads {torch.get_num_threads()}; best of {repeats} (BM25 analysis included in both)"
    )
    print(f"{'schedule':<46}{'seconds':>9}{'docs/s':>9}{'positions':>11}")
    for label, pos in zip(labels, (old_pos, new_pos)):
        s = min(timings[label])
        print(f"{label:<46}{s:>9.2f}{len(texts) / s:>9.1f}{pos:>11,}")
    print(
        f"speed-up x{min(timings[labels[0]]) / min(timings[labels[1]]):.2f}; positions ratio "
        f"{new_pos / old_pos:.2f}; max |weight diff| between schedules {diff:.2e}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--methods", nargs="*", default=list(METHODS))
    ap.add_argument(
        "--corpus",
        type=int,
        default=0,
        metavar="N",
        help="measure corpus encoding (old vs new schedule) on N paragraphs instead",
    )
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    model_dir = CACHE
    if args.corpus:
        bench_corpus(args.corpus, args.tokenizer, args.repeats)
        return
    if args.worker:
        docs = json.loads(Path(args.out.with_suffix(".docs.json")).read_text(encoding="utf-8"))
        print(json.dumps(run_method(args.worker, model_dir, docs, args.repeats, args.out)))
        return
    if not args.tokenizer.is_dir():
        sys.exit(f"tokenizer folder not found: {args.tokenizer} (pass --tokenizer)")
    build_model(args.tokenizer)
    docs = make_docs(model_dir)
    tmp = Path(tempfile.mkdtemp(prefix="bench_encode_"))
    rows, outputs = [], {}
    for method in args.methods:
        out = tmp / f"{method}.npy"
        out.with_suffix(".docs.json").write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, __file__, "--worker", method, "--out", str(out), "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        )
        if proc.returncode != 0:
            print(f"{method}: FAILED\n{proc.stderr[-2000:]}")
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        outputs[method] = np.load(out)
    import platform

    import torch

    print(
        f"\n{N_DOCS} docs x {N_TOKENS} tokens, xlm-roberta-base config (random weights), vocab 250,002; "
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"best of {args.repeats}"
    )
    print(f"{'method':<24}{'docs/s':>9}{'seconds':>9}{'peak RSS GB':>13}{'encode +GB':>12}{'max |diff| vs ours':>20}")
    ref = outputs.get("ours")
    for r in rows:
        diff = float(np.abs(outputs[r["method"]] - ref).max()) if ref is not None else float("nan")
        print(
            f"{r['method']:<24}{r['docs_per_s']:>9.2f}{r['seconds']:>9.1f}{r['peak_rss_gb']:>13.2f}"
            f"{r['encode_extra_gb']:>12.2f}{diff:>20.2e}"
        )
    by = {r["method"]: r for r in rows}
    for mine in ("ours", "ours_bf16", "ours_int8"):
        if mine in by and "sentence_transformers" in by:
            o, s = by[mine], by["sentence_transformers"]
            print(
                f"\n{mine} vs SparseEncoder: throughput x{o['docs_per_s'] / s['docs_per_s']:.2f} (target >= 1.5), "
                f"peak RSS ratio {o['peak_rss_gb'] / s['peak_rss_gb']:.2f} (target <= 0.20), "
                f"encode-time extra RSS ratio {o['encode_extra_gb'] / max(s['encode_extra_gb'], 1e-9):.3f}"
            )
    for mode in ("ours_bf16", "ours_int8"):  # precision choice: agreement with exact fp32
        if "ours" in by and mode in by:
            a, b = outputs["ours"], outputs[mode]
            overlap = np.mean(
                [len(set(np.argsort(-a[i])[:50]) & set(np.argsort(-b[i])[:50])) / 50 for i in range(len(a))]
            )
            print(
                f"{mode} vs ours (fp32): x{by[mode]['docs_per_s'] / by['ours']['docs_per_s']:.2f} docs/s, "
                f"max |diff| {np.abs(a - b).max():.3g}, top-50 overlap {overlap:.3f}"
            )
    if "ours" in by and "card_formula" in by:
        o, c = by["ours"], by["card_formula"]
        print(
            f"ours vs card formula: throughput x{o['docs_per_s'] / c['docs_per_s']:.2f}, "
            f"peak RSS ratio {o['peak_rss_gb'] / c['peak_rss_gb']:.2f}"
        )


if __name__ == "__main__":
    main()

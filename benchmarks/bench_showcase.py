"""The offline showcase, measured: the two embedded demo models next to BM25, side by side in one run.

For each model folder (default: the bundled V25-style and V26-style demo models): its size, the mean
expansion share of L1 mass (and the part of it on frequent verb stems such as 나오, 생기, which say
little about any text) and stopword mass (in context and by vocabulary entry) over queries, and
R@1 / MRR@10 alone and hybrid (at the folder's recommended weight) next to BM25 on KoBEST BoolQ test,
KorSTS test (score >= 4) and its low-overlap subset (answers sharing at most half of the question's
content morphemes), all through the Evaluate tab's code; then each model's top-10 expansions on ten
example queries. Needs ``../shared/data`` for the benchmark sets (the bundled held-out queries are
always measured).

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_showcase.py [--models assets/demo-v25-style assets/demo-v26-style]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXAMPLES = (
    "당뇨병 치료 방법",
    "전세 계약 갱신 청구권",
    "한 남자가 기타를 치고 있다",
    "서울 아파트 가격 상승",
    "축구 국가대표 경기 일정",
    "비행기 표 예약 취소",
    "감기에 걸렸을 때 먹는 음식",
    "대통령 선거 투표율",
    "컴퓨터 프로그래밍 배우기",
    "여름 휴가 여행지 추천",
)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def _build_teacher(folder: Path, kiwi):
    """The CoNg teacher a demo build was distilled from (its build record's settings), or None."""
    import json

    from transformers import AutoTokenizer

    from sparse_demo.offline.expansion import CongTeacher, TeacherSettings

    record = folder / "build_record.json"
    if not record.is_file():
        return None
    distil = json.loads(record.read_text(encoding="utf-8")).get("expansion_distillation")
    if not distil:
        return None
    return CongTeacher(AutoTokenizer.from_pretrained(str(folder)), TeacherSettings(**distil["settings"]), kiwi=kiwi)


def main() -> int:
    from sparse_demo.offline import DEMO_STYLE_DIRS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=[str(p) for p in DEMO_STYLE_DIRS.values()])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()

    import torch

    from sparse_demo.data import load_boolq, load_korsts
    from sparse_demo.encoder import SpladeEncoder
    from sparse_demo.model_settings import read_model_settings
    from sparse_demo.offline.data import load_bundled, training_and_heldout
    from sparse_demo.offline.expansion import cong_kiwi
    from sparse_demo.offline.measure import corpus_metrics, expansion_profile, low_overlap

    torch.set_num_threads(args.threads)
    folders = [Path(m) for m in args.models]
    held = training_and_heldout(load_bundled())[1]
    query_sets: dict[str, list[str]] = {"bundled held-out": sorted({p.query for p in held})}
    corpora = {}
    try:
        _, boolq = load_boolq("test")
        _, korsts = load_korsts("test", corpus_from="all")
        corpora = {"BoolQ test": boolq, "KorSTS >= 4": korsts, "KorSTS low overlap": low_overlap(korsts)}
        query_sets["BoolQ test"] = [q.text for q in boolq.queries]
        query_sets["KorSTS >= 4"] = [q.text for q in korsts.queries]
    except FileNotFoundError as exc:
        print(f"note: {exc}; only the bundled held-out queries are measured")
    kiwi = cong_kiwi()
    out: dict[str, dict] = {}
    for folder in folders:
        settings = read_model_settings(folder)
        weight = settings.hybrid_weight if settings and settings.hybrid_weight is not None else 0.5
        t0 = time.perf_counter()
        SpladeEncoder.load(str(folder), device="cpu")
        load_s = time.perf_counter() - t0
        teacher = _build_teacher(folder, kiwi)
        row: dict = {"size_mb": _size(folder) / 1e6, "load_s": load_s, "weight": weight, "profile": {}, "metrics": {}}
        for name, texts in query_sets.items():
            row["profile"][name] = expansion_profile(folder, texts, kiwi=kiwi, teacher=teacher)
        for name, corpus in corpora.items():
            row["metrics"][name] = corpus_metrics(folder, corpus, [weight], 192)
        out[folder.name] = row

    print("\n## Size, expansion share and stopword mass (mean over queries)\n")
    print(
        "| model | size MB | load s | query set | expansion share | of which frequent verb stems "
        "| of which its teacher does not propose | stopword mass (in context) | stopword mass (vocabulary) "
        "| special mass |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for model, row in out.items():
        for name, p in row["profile"].items():
            print(
                f"| {model} | {row['size_mb']:.1f} | {row['load_s']:.2f} | {name} | {p['expansion_share']:.1%} | "
                f"{p['verb_stem_share']:.1%} | "
                + (f"{p['unproposed_share']:.1%} | " if "unproposed_share" in p else "— | ")
                + f"{p['stopword_mass']:.1%} | {p['vocab_stopword_mass']:.1%} | {p['special_mass']:.1%} |"
            )
    if corpora:
        print("\n## Retrieval (Evaluate tab's code, memory backend): R@1 / MRR@10\n")
        print("| set | queries | BM25 | " + " | ".join(f"{m} alone | {m} hybrid" for m in out) + " |")
        print("|---|---|---|" + "---|---|" * len(out))
        for name, corpus in corpora.items():
            first = next(iter(out.values()))["metrics"][name]
            cells = [f"{first['bm25']['R@1']:.3f} / {first['bm25']['MRR@10']:.3f}"]
            for row in out.values():
                m = row["metrics"][name]
                hyb = m[f"hybrid@{row['weight']:g}"]
                cells += [
                    f"{m['model']['R@1']:.3f} / {m['model']['MRR@10']:.3f}",
                    f"{hyb['R@1']:.3f} / {hyb['MRR@10']:.3f}",
                ]
            print(f"| {name} | {len(corpus.queries)} | " + " | ".join(cells) + " |")
    print("\n## Top-10 expansions (tokens not in the input), per model\n")
    from sparse_demo.analysis import Analyzer

    for folder in folders:
        analyzer = Analyzer(SpladeEncoder.load(str(folder), device="cpu"))
        print(f"\n**{folder.name}**\n")
        print("| query | top-10 expansions (weight) |")
        print("|---|---|")
        for a in analyzer.analyze(list(EXAMPLES), top_k=200):
            exp = [r for r in a.rows if r.origin == "expansion"][:10]
            print(f"| {a.encoding.text} | " + ", ".join(f"{r.token} ({r.weight:.2f})" for r in exp) + " |")
    if args.json:
        args.json.write_text(json.dumps(out, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

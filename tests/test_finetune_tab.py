"""The Fine-tune tab's handler: a short real run, per-visitor models, bad files as messages."""

from __future__ import annotations

import threading
import zipfile

import pytest

from sparse_demo.encoder import SpladeEncoder
from sparse_demo.ui.finetune import TrainRequest, run_training

PAIRS = [
    ("당뇨병 치료", "당뇨병 치료는 식이요법과 운동, 인슐린 주사로 혈당을 관리합니다."),
    ("고혈압 음식", "고혈압 환자는 소금을 줄이고 채소와 과일을 많이 먹어야 합니다."),
    ("전세 보증금", "전세 계약 때 확정일자를 받으면 보증금을 보호받을 수 있습니다."),
    ("연말정산 공제", "연말정산에서 의료비와 교육비는 세액공제를 받을 수 있습니다."),
    ("여권 발급", "여권을 새로 발급받으려면 신분증과 여권용 사진을 준비해야 합니다."),
    ("클라우드 보안", "클라우드 서비스는 접근 권한 관리와 암호화로 보안을 지킵니다."),
    ("김치찌개 끓이는 법", "김치찌개는 잘 익은 김치와 돼지고기를 볶은 뒤 물을 붓고 끓입니다."),
    ("감기 증상", "감기에 걸리면 콧물과 기침이 나고 목이 아픈 증상이 나타납니다."),
]


def write_pairs(path, rows) -> str:
    import json

    path.write_text("\n".join(json.dumps({"query": q, "positive": p}, ensure_ascii=False) for q, p in rows),
                    encoding="utf-8")
    return str(path)


def test_short_training_run_produces_a_private_model(app_context, tmp_path):
    variants = [(f"{q}{suffix}", p) for q, p in PAIRS[:6] for suffix in ("", " 방법", "에 대해 알려주세요", " 정보")]
    pairs = write_pairs(tmp_path / "pairs.jsonl", variants)
    held_out = write_pairs(tmp_path / "eval.jsonl", [(q + "?", p) for q, p in PAIRS[6:]])  # other passages
    req = TrainRequest(pairs_file=pairs, eval_file=held_out, base="new", size="tiny", epochs=3, batch_size=8,
                       lr=1e-3, time_limit_s=60)
    updates = list(run_training(app_context, req, threading.Event(), poll_s=0.2))
    final = updates[-1]
    assert final.done and not final.status.startswith("⛔"), final.status
    assert final.model_dir and final.model_name
    assert {"model", "bm25", "hybrid"} <= set(final.metrics["system"])
    with zipfile.ZipFile(final.zip_path) as zf:
        assert any(n.endswith("model.safetensors") for n in zf.namelist())
    enc = SpladeEncoder.load(final.model_dir, device="cpu")
    assert len(enc.encode(["당뇨병 치료"])[0].vector) > 0
    # the visitor's model is usable by that visitor but not listed for everybody
    visitor = {final.model_name: final.model_dir}
    assert final.model_name in app_context.model_choices(visitor)
    app_context.encoder(final.model_name, None, visitor)
    assert final.model_name not in app_context.model_choices()


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("p.jsonl", "당뇨".encode("cp949"), "UTF-8"),
        ("p.csv", b"question,answer\na,b\n", "query"),
        ("p.pdf", b"%PDF-1.4", "csv"),
    ],
)
def test_bad_pairs_files(app_context, tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    req = TrainRequest(pairs_file=str(path), base="new", size="tiny", time_limit_s=10)
    updates = list(run_training(app_context, req, threading.Event()))
    assert len(updates) == 1 and updates[0].done
    assert updates[0].status.startswith("⛔") and match in updates[0].status, updates[0].status


def test_bad_settings(app_context, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    for req in (TrainRequest(pairs_file=pairs, batch_size=1), TrainRequest(pairs_file=pairs, lr=-1),
                TrainRequest(pairs_file=pairs, time_limit_s=0), TrainRequest(pairs_file=pairs, base="  ")):
        up = list(run_training(app_context, req, threading.Event()))[-1]
        assert up.status.startswith("⛔"), up.status


def test_cancel_stops_the_run(app_context, tmp_path):
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(f"{q} {i}", p) for q, p in PAIRS for i in range(20)])
    cancel = threading.Event()
    req = TrainRequest(pairs_file=pairs, base="new", size="tiny", epochs=200, batch_size=8, time_limit_s=600)
    seen = []
    for up in run_training(app_context, req, cancel, poll_s=0.2):
        seen.append(up)
        if "step" in up.status:
            cancel.set()
    assert seen[-1].done
    assert "cancelled" in seen[-1].status or "stopped" in seen[-1].status


def test_visitor_model_count_and_disk_quota(app_context, tmp_path):
    import dataclasses

    from sparse_demo.limits import Limits

    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    req = TrainRequest(pairs_file=pairs, base="new", size="tiny", time_limit_s=10)
    one = dataclasses.replace(app_context, limits=Limits(visitor_models=1))
    up = list(run_training(one, req, threading.Event(), session="quota-a", visitor_models={"m": "x"}))[-1]
    assert up.done and up.status.startswith("⛔") and "SPARSE_DEMO_VISITOR_MODELS=1" in up.status
    tiny = dataclasses.replace(app_context, limits=Limits(visitor_quota_bytes=10))
    (tiny.visitor_dir("quota-b") / "old").write_bytes(b"x" * 20)
    up = list(run_training(tiny, req, threading.Event(), session="quota-b"))[-1]
    assert up.status.startswith("⛔") and "SPARSE_DEMO_VISITOR_QUOTA_MB" in up.status
    rows = tmp_path / "many.jsonl"
    write_pairs(rows, [(f"{q} {i}", p) for q, p in PAIRS for i in range(3)])
    from sparse_demo.ui.finetune import load_training_data

    ds, _ = load_training_data(TrainRequest(pairs_file=str(rows)), Limits(max_rows=10))
    assert len(ds.pairs) == 10 and any("first 10 of 24 training pairs" in w for w in ds.report.warnings)


def test_base_model_follows_the_source_policy(app_context, tmp_path):
    import dataclasses

    from sparse_demo.models import NOT_AVAILABLE
    from sparse_demo.ui.common import AppContext, UserError
    from sparse_demo.ui.finetune import resolve_base

    settings = dataclasses.replace(app_context.settings, model_sources="public")
    ctx = AppContext.create(settings)
    for base in ("/etc", "../..", str(tmp_path), "/nonexistent/model", "someone/else"):
        with pytest.raises(UserError) as info:
            resolve_base(ctx, base)
        assert str(info.value) == NOT_AVAILABLE
    assert resolve_base(ctx, "new-small") == "new-small"
    assert resolve_base(ctx, "tiny-a") == "tiny-a"  # a preset by name
    theirs = ctx.visitor_dir("someone") / "finetune-x"
    theirs.mkdir()
    any_mode = AppContext.create(app_context.settings)
    with pytest.raises(UserError):  # another visitor's folder, even in 'any' mode
        resolve_base(any_mode, str(any_mode.visitor_dir("someone") / "finetune-x"))
    assert resolve_base(ctx, "mine", {"mine": str(theirs)}) == str(theirs)

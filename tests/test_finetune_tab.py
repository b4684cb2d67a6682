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
    variants = [(f"{q}{suffix}", p) for q, p in PAIRS for suffix in ("", " 방법", "에 대해 알려주세요", " 정보")]
    pairs = write_pairs(tmp_path / "pairs.jsonl", variants)
    held_out = write_pairs(tmp_path / "eval.jsonl", [(q + "?", p) for q, p in PAIRS])
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

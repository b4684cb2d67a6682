"""``finetune`` on the command line: bad ``--out`` and contradicting sizes are input errors (exit 2, one line),
and the CLI and the app refuse the same too-small pairs files."""

from __future__ import annotations

import json
import os
import threading

import pytest
from test_cli import assert_one_line_error, run_cli

from sparse_demo.train import MIN_PAIRS

pytestmark = pytest.mark.slow  # the CLI in new processes


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSE_DEMO_")}
    env.update(
        {
            "SPARSE_DEMO_DEVICE": "cpu",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    return env


def _pairs(path, n: int) -> str:
    rows = [{"query": f"질문 {i}", "positive": f"문서 {i} 내용입니다"} for i in range(n)]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return str(path)


def test_out_an_existing_file_is_bad_input(env, tmp_path):
    pairs = _pairs(tmp_path / "p.jsonl", 12)
    existing = tmp_path / "model.bin"
    existing.write_bytes(b"keep me")
    proc = run_cli(env, "finetune", "--pairs", pairs, "--base", "new-tiny", "--out", str(existing))
    assert_one_line_error(proc, 2, "--out", "existing file")
    assert existing.read_bytes() == b"keep me"
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert_one_line_error(
        run_cli(env, "finetune", "--pairs", pairs, "--base", "new-tiny", "--out", str(full)), 2, "not empty"
    )


def test_size_that_contradicts_the_base_is_bad_input(env, tmp_path):
    pairs = _pairs(tmp_path / "p.jsonl", 12)
    proc = run_cli(
        env, "finetune", "--pairs", pairs, "--base", "new-small", "--size", "tiny", "--out", str(tmp_path / "m")
    )
    assert_one_line_error(proc, 2, "--size tiny contradicts --base new-small")


def test_cli_and_app_need_the_same_number_of_pairs(env, tmp_path, app_context):
    from sparse_demo.ui.finetune import TrainRequest, run_training

    too_few = _pairs(tmp_path / "few.jsonl", MIN_PAIRS - 1)
    proc = run_cli(env, "finetune", "--pairs", too_few, "--base", "new-tiny", "--out", str(tmp_path / "m"))
    assert_one_line_error(proc, 2, f"needs at least {MIN_PAIRS}")
    (update,) = list(
        run_training(app_context, TrainRequest(pairs_file=too_few, base="new", size="tiny"), threading.Event())
    )
    assert update.status.startswith("⛔") and f"at least {MIN_PAIRS}" in update.status

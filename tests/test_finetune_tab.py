"""The Fine-tune tab's handler: a short real run, per-visitor models, bad files as messages."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

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

    path.write_text(
        "\n".join(json.dumps({"query": q, "positive": p}, ensure_ascii=False) for q, p in rows), encoding="utf-8"
    )
    return str(path)


def test_short_training_run_produces_a_private_model(app_context, tmp_path):
    variants = [(f"{q}{suffix}", p) for q, p in PAIRS[:6] for suffix in ("", " 방법", "에 대해 알려주세요", " 정보")]
    pairs = write_pairs(tmp_path / "pairs.jsonl", variants)
    held_out = write_pairs(tmp_path / "eval.jsonl", [(q + "?", p) for q, p in PAIRS[6:]])  # other passages
    req = TrainRequest(
        pairs_file=pairs, eval_file=held_out, base="new", size="tiny", epochs=3, batch_size=8, lr=1e-3, time_limit_s=60
    )
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
    for req in (
        TrainRequest(pairs_file=pairs, batch_size=1),
        TrainRequest(pairs_file=pairs, lr=-1),
        TrainRequest(pairs_file=pairs, time_limit_s=0),
        TrainRequest(pairs_file=pairs, base="  "),
    ):
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


# ---------------------------------------------------------------------- fair training, tied to its visitor
def _public_context(app_context, roots=(), **limits):
    import dataclasses

    from sparse_demo.limits import Limits
    from sparse_demo.ui.common import AppContext

    settings = dataclasses.replace(app_context.settings, model_sources="public", allowed_roots=tuple(roots))
    return AppContext.create(settings, limits=Limits(**limits))


def test_tokenizer_box_follows_the_sources_policy(app_context, tmp_path, tiny_model_dir):
    import dataclasses
    import shutil

    from sparse_demo.models import NOT_AVAILABLE
    from sparse_demo.ui.common import AppContext, UserError
    from sparse_demo.ui.finetune import resolve_tokenizer

    ctx = AppContext.create(dataclasses.replace(app_context.settings))  # 'any' mode
    theirs = ctx.visitor_dir("visitor-a") / "finetune-a"
    theirs.mkdir()
    (theirs / "tokenizer.json").write_bytes((tiny_model_dir / "tokenizer.json").read_bytes())
    # the model boxes' answer for another visitor's folder ...
    with pytest.raises(UserError) as model_box:
        ctx.encoder(None, str(theirs))
    assert str(model_box.value) == NOT_AVAILABLE
    # ... is the tokenizer box's answer, for every spelling, directly and through the tab
    for typed in (str(theirs), str(theirs) + "/", str(theirs.parent / "." / theirs.name)):
        with pytest.raises(UserError) as info:
            resolve_tokenizer(ctx, typed, {"mine": str(ctx.visitor_dir("visitor-b"))})
        assert str(info.value) == NOT_AVAILABLE
    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    req = TrainRequest(pairs_file=pairs, base="new", size="tiny", tokenizer=str(theirs), time_limit_s=10)
    (update,) = list(run_training(ctx, req, threading.Event(), session="visitor-b"))
    assert update.status == f"⛔ {NOT_AVAILABLE}"
    # its owner may prune it
    assert resolve_tokenizer(ctx, str(theirs), {"mine": str(theirs)}) == (str(theirs.resolve()), theirs.name)
    # public mode: outside the allowed roots is refused the same way; inside, by its folder name
    allowed = tmp_path / "allowed"
    shutil.copytree(tiny_model_dir, allowed / "tok")
    pub = _public_context(app_context, roots=[allowed])
    for typed in ("/etc", "../..", str(tmp_path), "/nonexistent/tok", "xlm-roberta-base", str(theirs)):
        with pytest.raises(UserError) as info:
            resolve_tokenizer(pub, typed)
        assert str(info.value) == NOT_AVAILABLE, typed
    assert resolve_tokenizer(pub, str(allowed / "tok")) == (str((allowed / "tok").resolve()), "tok")


def _scan_for(texts: dict[str, str], needles: list[str]) -> list[str]:
    return [
        f"{needle!r} in {where}" for where, text in texts.items() for needle in needles if needle and needle in text
    ]


@pytest.mark.slow
def test_public_mode_shows_and_writes_no_server_path(app_context, tmp_path):
    import json
    import shutil

    from conftest import XLMR_TOKENIZER

    roots = tmp_path / "allowed"
    tok = None
    if XLMR_TOKENIZER.is_dir():  # a pruned tokenizer records its base by its folder name only
        tok = roots / "xlmr-tokenizer"
        shutil.copytree(XLMR_TOKENIZER, tok)
    ctx = _public_context(app_context, roots=[roots], public_train_seconds=20)
    session = "visitor-secret-4f2a9c"
    variants = [(f"{q}{suffix}", p) for q, p in PAIRS for suffix in ("", " 방법", " 정보")]
    extra = [(f"질문 {i}", f"문서 {i}: {p}") for i, (_, p) in enumerate(PAIRS)]
    pairs = write_pairs(tmp_path / "my-secret-project.jsonl", variants + extra)
    req = TrainRequest(
        pairs_file=pairs,
        base="new",
        size="tiny",
        tokenizer=str(tok) if tok else None,
        epochs=2,
        batch_size=8,
        time_limit_s=600,
    )
    updates = list(run_training(ctx, req, threading.Event(), poll_s=0.3, session=session))
    final = updates[-1]
    assert final.done and final.zip_path, final.status
    assert "cut to 20 s" in final.status and "SPARSE_DEMO_PUBLIC_TRAIN_SECONDS" in final.status
    texts = {f"status {i}": u.status for i, u in enumerate(updates)}
    texts["metrics table"] = final.metrics.to_csv()
    texts["expansions"] = final.expansions
    folder = Path(final.model_dir)
    for f in folder.rglob("*"):
        if f.is_file():
            texts[f"file {f.name}"] = f.read_bytes().decode("utf-8", errors="replace")
    with zipfile.ZipFile(final.zip_path) as zf:
        for member in zf.namelist():
            texts[f"zip {member}"] = member + zf.read(member).decode("utf-8", errors="replace")
    texts["zip name"] = Path(final.zip_path).name
    needles = [
        str(ctx.workdir),
        ctx.workdir.name,
        session,
        "/tmp/",
        str(tmp_path),
        str(roots),
        "my-secret-project",
        "visitors/",
    ]
    assert not _scan_for(texts, needles)
    record = json.loads((folder / "training_info.json").read_text(encoding="utf-8"))
    assert "output_dir" not in record["config"] and "out_path" not in record["config"]
    assert record["config"]["base"] == "new" and record["config"]["size"] == "tiny"
    assert record["note"] == final.model_name
    assert record["config"]["tokenizer"] == ("xlmr-tokenizer" if tok else None)
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "| base | new |" in card and "| size (new model) | tiny |" in card
    # the table on screen is rounded for reading, the record keeps full precision
    shown = final.metrics[["R@1", "MRR@10", "nDCG@10"]].to_numpy().ravel().tolist()
    assert shown and all(v == float(f"{v:.4g}") for v in shown)
    full = [v for when in ("metrics_before", "metrics_after") for row in record[when].values() for v in row.values()]
    assert any(v != float(f"{v:.4g}") for v in full)  # e.g. 5/6 = 0.8333333333333334
    ctx.forget_visitor(session)


def test_a_visitor_who_leaves_cancels_the_run_and_its_files_go(app_context, tmp_path):
    from conftest import wait_for

    from sparse_demo.train import training_busy
    from sparse_demo.ui.finetune import RUNS, visitor_left

    ctx = app_context
    session = "leaving-visitor"
    pairs = write_pairs(tmp_path / "pairs.jsonl", [(f"{q} {i}", p) for q, p in PAIRS for i in range(20)])
    req = TrainRequest(pairs_file=pairs, base="new", size="tiny", epochs=200, batch_size=8, time_limit_s=600)
    updates = run_training(ctx, req, threading.Event(), poll_s=0.2, session=session)
    for up in updates:  # read until training steps, then stop reading (the page is gone)
        if "step" in up.status:
            break
    folder = ctx.visitor_dir(session)
    assert RUNS.active(session)
    visitor_left(session)
    ctx.forget_visitor(session)  # what the app's unload does next
    wait_for(lambda: not RUNS.active(session) and not training_busy(), timeout=120, interval=0.5)
    wait_for(lambda: not any(folder.glob("finetune*")) and not any(folder.glob(".finetune*")), timeout=30)
    assert RUNS.kept(session) == {}
    updates.close()


def test_five_simultaneous_train_clicks_keep_at_most_the_limit(app_context, tmp_path):
    import dataclasses

    from sparse_demo.limits import Limits

    ctx = dataclasses.replace(app_context, limits=Limits(visitor_models=3))
    session = "five-clicks"
    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    req = TrainRequest(pairs_file=pairs, base="new", size="tiny", epochs=1, batch_size=8, time_limit_s=30)
    finals: list = []
    seen: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(5)

    def click():
        barrier.wait()
        for up in run_training(ctx, req, threading.Event(), poll_s=0.2, session=session):
            with lock:
                seen.append(up.status)
            if up.done:
                with lock:
                    finals.append(up)

    threads = [threading.Thread(target=click) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert len(finals) == 5
    kept = [u for u in finals if u.model_dir]
    refused = [u for u in finals if "SPARSE_DEMO_VISITOR_MODELS=3" in u.status]
    assert len(kept) == 3 and len(refused) == 2, [u.status[:80] for u in finals]
    on_disk = [p for p in ctx.visitor_dir(session).iterdir() if p.is_dir() and p.name.startswith("finetune")]
    assert len(on_disk) == 3
    assert any("2nd in the queue, 1 run ahead" in s for s in seen)
    ctx.forget_visitor(session)
    from sparse_demo.ui.finetune import visitor_left

    visitor_left(session)


def test_a_deadline_stops_the_loop_as_a_time_limit(tmp_path):
    import time

    from sparse_demo.train import TrainConfig, train

    pairs = write_pairs(tmp_path / "pairs.jsonl", PAIRS)
    config = TrainConfig(
        base="new",
        size="tiny",
        batch_size=4,
        epochs=50,
        time_limit_s=600,
        bf16="off",
        out_path=str(tmp_path / "m"),
        tokenizer_vocab_size=300,
        num_threads=1,
    )
    result = train(config, pairs, deadline=time.monotonic())
    assert result.status == "time_limit" and result.steps == 0 and result.model_dir is not None


def test_base_and_size_cannot_contradict(tiny_model_dir):
    from sparse_demo.train import TrainConfig
    from sparse_demo.ui.finetune import size_update

    assert size_update("new") == {"__type__": "update", "visible": True, "interactive": True}
    assert size_update("new-small") == {"__type__": "update", "visible": True, "interactive": False, "value": "small"}
    assert size_update("tiny-a") == {"__type__": "update", "visible": False}  # a pretrained base has no size
    # what the card and record keep: the size used, and none for a pretrained base
    assert (
        TrainRequest(pairs_file=None, base="new-small", size="tiny").to_config(Path("/x")).to_dict()["size"] == "small"
    )
    assert TrainRequest(pairs_file=None, base="new", size="tiny").to_config(Path("/x")).to_dict()["size"] == "tiny"
    record = TrainConfig(base=str(tiny_model_dir), base_name="tiny-a", size="tiny").to_dict()
    assert record["size"] is None and record["base"] == "tiny-a"

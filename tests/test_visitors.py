"""What one visitor of a public Space may reach: model folders without a tokenizer, tuned weights that stay
in the visitor's session, downloads that are reused and removed with the session (Gradio's cached copies
included), developer hints kept out of ``public`` mode, and the CLI's default model offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import _save_tiny

from sparse_demo.encoder import ModelLoadError, SpladeEncoder
from sparse_demo.encoder.loading import check_tokenizer


# ---------------------------------------------------------------------- a folder without a tokenizer
@pytest.fixture(scope="module")
def no_tokenizer_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny model saved with its tokenizer, then every tokenizer file removed (config and weights kept)."""
    folder = _save_tiny(tiny_tokenizer, tmp_path_factory.mktemp("no_tokenizer"), seed=5)
    kept = {"config.json", "model.safetensors", "generation_config.json"}
    removed = [p.name for p in folder.iterdir() if p.name not in kept]
    for name in removed:
        (folder / name).unlink()
    assert "tokenizer.json" in removed or "sentencepiece.bpe.model" in removed
    return folder


def test_a_folder_without_tokenizer_files_is_refused(no_tokenizer_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="no tokenizer files") as info:
        SpladeEncoder.load(str(no_tokenizer_dir), device="cpu")
    assert "tokenizer.json" in str(info.value) and "<unk>" in str(info.value)
    # a tokenizer_config.json alone is no vocabulary either
    with_config = shutil.copytree(no_tokenizer_dir, tmp_path / "with_config")
    (with_config / "tokenizer_config.json").write_text('{"model_max_length": 512}', encoding="utf-8")
    with pytest.raises(ModelLoadError, match="no tokenizer files"):
        SpladeEncoder.load(str(with_config), device="cpu")


def test_the_refused_tokenizer_really_turns_every_word_into_unk(no_tokenizer_dir):
    """What transformers builds for such a folder (the case the check exists for) maps words to <unk>."""
    from transformers import AutoTokenizer

    silent = AutoTokenizer.from_pretrained(str(no_tokenizer_dir))
    ids = silent("당뇨병 치료 방법 Python", add_special_tokens=False)["input_ids"]
    assert ids and set(ids) == {silent.unk_token_id}
    with pytest.raises(ModelLoadError, match="special tokens"):
        check_tokenizer(silent, str(no_tokenizer_dir))


def test_the_app_shows_the_reason(no_tokenizer_dir, app_context):
    from sparse_demo.ui.common import UserError

    with pytest.raises(UserError, match="no tokenizer files"):
        app_context.encoder(None, str(no_tokenizer_dir), {})


# ---------------------------------------------------------------------- tuned weights stay per visitor
DOCS = [
    ("med-001", "당뇨병 치료는 식이요법과 운동입니다."),
    ("med-002", "혈당 관리를 위해 운동이 필요합니다."),
    ("med-003", "고혈압 환자는 소금을 줄여야 합니다."),
    ("law-001", "전세 보증금을 돌려받는 방법입니다."),
    ("law-002", "임대차 계약의 확정일자를 받으세요."),
]


def test_a_tuned_weight_is_never_another_visitors_default(app_context):
    from sparse_demo import search as svc
    from sparse_demo.corpus import Corpus, Document
    from sparse_demo.ui import search as search_tab

    assert not hasattr(svc, "TUNED_WEIGHTS")  # no process-wide map that every visitor reads
    corpus = Corpus("my-secret-project", [Document(i, t) for i, t in DOCS])
    encoder = app_context.encoder("tiny-a")
    a = app_context.tuned_weights.of("session-A")
    a.remember(
        svc.model_fingerprint(encoder),
        svc.corpus_fingerprint(corpus),
        0.9,
        "best ndcg@10 on 4 dev queries of my-secret-project.zip",
    )
    session = svc.SearchSession()

    def search(tuned):
        return search_tab.run_search(
            app_context,
            session,
            "당뇨병 치료",
            search_tab.UPLOAD_LABEL,
            corpus,
            "tiny-a",
            method="hybrid",
            weight=None,
            top_k=3,
            tuned=tuned,
        )

    mine = search(app_context.tuned_weights.peek("session-A"))
    assert mine.outcome.weight == 0.9 and "my-secret-project.zip" in mine.status
    theirs = search(app_context.tuned_weights.peek("session-B"))
    assert theirs.outcome.weight == 0.5, theirs.status  # the tiny model's folder recommends nothing
    assert "tuned by" not in theirs.status and "my-secret-project.zip" not in theirs.status
    assert app_context.tuned_weights.peek("session-B") is None  # reading creates nothing
    app_context.forget_visitor("session-A")
    assert app_context.tuned_weights.peek("session-A") is None
    assert search(app_context.tuned_weights.peek("session-A")).outcome.weight == 0.5


def test_visitor_weights_are_bounded():
    from sparse_demo.search import VisitorWeights

    vw = VisitorWeights(max_visitors=2, per_visitor=1)
    for s in ("a", "b", "c"):
        vw.of(s).remember("m", "c1", 0.1)
    assert len(vw) == 2 and vw.peek("a") is None  # the least recently used session went
    vw.of("b").remember("m", "c2", 0.2)
    assert vw.peek("b").get("m", "c1") is None and len(vw.peek("b")) == 1
    with pytest.raises(ValueError, match="session"):
        vw.of("")


# ---------------------------------------------------------------------- downloads
@pytest.fixture()
def gradio_cache(tmp_path, monkeypatch) -> Path:
    """This test's own Gradio cache folder (GRADIO_TEMP_DIR is read when a file is cached)."""
    cache = tmp_path / "gradio-cache"
    cache.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    return cache


def _served_copy(path: str) -> Path:
    """Copy a file into Gradio's cache exactly as Gradio does when a gr.File output serves it."""
    import gradio as gr

    block = gr.File()
    return Path(block.move_resource_to_block_cache(path))


def test_the_same_download_is_one_file(tmp_path, gradio_cache):
    import hashlib

    import pandas as pd

    from sparse_demo.ui.common import write_csv

    frame = pd.DataFrame({"token": ["▁당뇨", "병"], "df": [3, 1]})
    first = write_csv(frame, tmp_path / "dl", "corpus_report_tokens")
    mtime = Path(first).stat().st_mtime_ns
    again = write_csv(frame.copy(), tmp_path / "dl", "corpus_report_tokens")
    assert again == first and Path(first).stat().st_mtime_ns == mtime  # reused, not rewritten
    assert Path(first).name == "corpus_report_tokens.csv"
    assert Path(first).read_bytes() == frame.to_csv(index=False).encode("utf-8-sig")
    other = write_csv(frame.head(1), tmp_path / "dl", "corpus_report_tokens")
    assert other != first and len(list((tmp_path / "dl").iterdir())) == 2
    # Gradio serves it from one cached copy however often it is shown
    copies = {_served_copy(first) for _ in range(3)}
    assert len(copies) == 1 and next(iter(copies)).read_bytes() == Path(first).read_bytes()
    assert len(list(gradio_cache.iterdir())) == 1
    # its folder is named by the seeded digest Gradio itself computes (checked with hashlib here)
    from gradio.processing_utils import hash_seed

    assert Path(first).parent.name == hashlib.sha256(hash_seed + Path(first).read_bytes()).hexdigest()


def test_a_folder_keeps_a_bounded_number_of_downloads(tmp_path, gradio_cache, monkeypatch):
    from sparse_demo.ui import common

    monkeypatch.setattr(common, "MAX_DOWNLOADS", 3)
    paths = [common.write_download(f"row {i}".encode(), tmp_path / "dl", "x.csv") for i in range(5)]
    copies = [_served_copy(p) for p in paths[:2]]
    kept = sorted(p.name for p in (tmp_path / "dl").iterdir())
    assert len(kept) == 3 and all(Path(p).exists() for p in paths[-3:])
    assert not any(c.exists() for c in copies)  # the dropped downloads' cached copies went with them


def test_a_departed_visitors_files_and_cached_copies_go(tmp_path, gradio_cache, tiny_model_dir):
    import pandas as pd

    from sparse_demo.config import load_settings
    from sparse_demo.ui.common import AppContext, write_csv

    ctx = AppContext.create(load_settings({"SPARSE_DEMO_DEVICE": "cpu"}))
    frame = pd.DataFrame({"q": ["당뇨병"], "mass": [0.25]})
    a_csv = write_csv(frame, ctx.download_dir("session-A"), "leakage")
    b_csv = write_csv(frame, ctx.download_dir("session-B"), "leakage")  # the same content: one shared copy
    a_only = write_csv(frame.assign(mass=0.5), ctx.download_dir("session-A"), "leakage")
    # a model A trained, and its zip (the Fine-tune tab writes both into A's private folder)
    model = shutil.copytree(tiny_model_dir, ctx.visitor_dir("session-A") / "finetune-1")
    zipped = Path(shutil.make_archive(str(model), "zip", model))
    shared, own, zip_copy = _served_copy(a_csv), _served_copy(a_only), _served_copy(str(zipped))
    assert _served_copy(b_csv) == shared
    keep = shutil.copytree(tiny_model_dir, tmp_path / "not-a-visitor")
    keep_copy = _served_copy(str(Path(shutil.make_archive(str(keep), "zip", keep))))

    ctx.forget_visitor("session-A", {"fine-tuned (a)": str(model)})
    assert not Path(a_csv).exists() and not model.exists() and not zipped.exists()
    assert not own.exists() and not zip_copy.exists()  # A's cached copies: gone
    assert shared.exists() and Path(b_csv).exists()  # B still holds the same file: its copy stays
    assert keep_copy.exists()  # nothing else in Gradio's cache is touched
    ctx.forget_visitor("session-B")
    assert not shared.exists() and not (ctx.workdir / "downloads" / "session-B").exists()
    ctx.remove_workdir()
    assert not ctx.workdir.exists()


# ---------------------------------------------------------------------- developer hints only in 'any' mode
@pytest.fixture()
def closed_opensearch(monkeypatch) -> str:
    """OPENSEARCH_URL pointing at a local port nobody listens on (the real node on 9200 is left alone)."""
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("OPENSEARCH_URL", url)
    return url


def _ctx(presets_file, public: bool):
    from sparse_demo.config import load_settings
    from sparse_demo.ui.common import AppContext

    env = {"SPARSE_DEMO_MODELS": str(presets_file), "SPARSE_DEMO_DEVICE": "cpu"}
    if public:
        env["SPARSE_DEMO_MODEL_SOURCES"] = "public"
    return AppContext.create(load_settings(env))


def test_search_tab_shows_opensearch_hints_only_in_any_mode(presets_file, closed_opensearch):
    from sparse_demo import search as svc
    from sparse_demo.corpus import Corpus, Document
    from sparse_demo.ui import search as search_tab

    corpus = Corpus("c", [Document(i, t) for i, t in DOCS])
    hints = (closed_opensearch, "127.0.0.1", "scripts/opensearch.sh", "OPENSEARCH_URL")
    for public in (True, False):
        ctx = _ctx(presets_file, public)
        texts = [search_tab.backend_note("opensearch", ctx.settings.public)]
        texts.append(
            search_tab.build_search_index(
                ctx, svc.SearchSession(), search_tab.UPLOAD_LABEL, corpus, None, backend="opensearch"
            ).status
        )
        r = search_tab.run_search(
            ctx,
            svc.SearchSession(),
            "전세 보증금",
            search_tab.UPLOAD_LABEL,
            corpus,
            None,
            backend="opensearch",
            method="bm25",
            top_k=3,
        )
        assert r.outcome is not None and r.outcome.hits, r.status  # answered by the in-memory index
        texts.append(r.status)
        page = "\n".join(texts)
        if public:
            assert not any(h in page for h in hints), page
            assert "The search engine is unavailable; the in-memory index is used." in page
            assert str(ctx.workdir) not in page
        else:  # a private deployment: the developer is told where and how
            assert closed_opensearch in page and "scripts/opensearch.sh start" in page


def test_hide_developer_hints_keeps_other_paragraphs():
    from sparse_demo.ui.common import hide_developer_hints

    text = (
        "**3 hits** in 2 ms · backend **memory**\n\n⚠️ OpenSearch stopped answering: OpenSearch at "
        "http://10.0.0.5:9200 did not answer in time. Start a local node with `scripts/opensearch.sh start`. "
        "Searched the in-memory index instead.\n\nEvaluation failed: OpenSearch is not reachable at "
        "https://search.internal:9200 (set OPENSEARCH_URL)."
    )
    assert hide_developer_hints(text).split("\n\n") == [
        "**3 hits** in 2 ms · backend **memory**",
        "⚠️ The search engine is unavailable; the in-memory index is used.",
        "Evaluation failed: The search engine is unavailable.",
    ]
    assert hide_developer_hints("OpenSearch 2.11 index `sparse-demo-1`") == "OpenSearch 2.11 index `sparse-demo-1`"


# ---------------------------------------------------------------------- the CLI's default model offline
def _cli(*args: str, **env: str):
    import os

    from cli_process import run_sparse_demo
    from conftest import ROOT

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPARSE_DEMO_", "OPENSEARCH_"))}
    clean.update(
        {
            "SPARSE_DEMO_DEVICE": "cpu",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONIOENCODING": "utf-8",
            **env,
        }
    )
    return run_sparse_demo(args, env=clean, cwd=ROOT)  # a new process (tests/cli_process.py), empty stdin


@pytest.mark.slow
def test_cli_without_model_falls_back_to_the_demo_model_in_one_line():
    import json

    from sparse_demo.offline import DEMO_MODEL_NAME, demo_model_available

    if not demo_model_available():
        pytest.skip("the demo models are not built in this checkout")
    proc = _cli("encode", "--top-k", "3", "--json", "당뇨병 치료", SPARSE_DEMO_MODEL_V26="/nonexistent")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("note: "), err
    assert "V26" in lines[0] and DEMO_MODEL_NAME in lines[0] and "no such folder" in lines[0]
    assert json.loads(proc.stdout.decode().splitlines()[0])["model"] == DEMO_MODEL_NAME
    # an explicit --model never falls back
    proc = _cli("encode", "--model", "V26", "당뇨병", SPARSE_DEMO_MODEL_V26="/nonexistent")
    assert proc.returncode == 1 and DEMO_MODEL_NAME not in proc.stderr.decode()


@pytest.mark.slow
def test_cli_knows_the_demo_models_name():
    from sparse_demo.offline import DEMO_MODEL_NAME, demo_model_available

    listing = _cli("models")
    assert listing.returncode == 0, listing.stderr.decode()
    rows = {line.split("\t")[0]: line for line in listing.stdout.decode().splitlines()}
    assert "(default)" in rows["V26"]
    if demo_model_available():
        assert "bundled demo model" in rows[DEMO_MODEL_NAME]
    helptext = " ".join(_cli("encode", "--help").stdout.decode().split())
    assert DEMO_MODEL_NAME in helptext and "python -m sparse_demo models" in helptext


# ---------------------------------------------------------------------- shutdown
@pytest.mark.slow
@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_the_work_folder_goes_on_sigterm_and_sigint(tmp_path, presets_file, signame):
    """``python app.py`` stopped by a signal leaves no work folder (visitors' models and downloads) behind."""
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from conftest import ROOT, free_port, wait_for

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSE_DEMO_")}
    env.update(
        {
            "SPARSE_DEMO_MODELS": str(presets_file),
            "SPARSE_DEMO_DEVICE": "cpu",
            "TMPDIR": str(tmp),
            "GRADIO_TEMP_DIR": str(tmp / "gradio"),
            "GRADIO_SERVER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "GRADIO_ANALYTICS_ENABLED": "False",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return proc.poll() is not None  # stop waiting if it died

        wait_for(up, timeout=240, interval=1)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        workdirs = list(tmp.glob("sparse_demo_*"))
        assert len(workdirs) == 1 and workdirs[0].is_dir()
        (workdirs[0] / "downloads" / "someone").mkdir(parents=True)
        (workdirs[0] / "downloads" / "someone" / "x.csv").write_text("a,b\n", encoding="utf-8")
        proc.send_signal(getattr(signal, signame))
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not workdirs[0].exists(), proc.stderr.read().decode()[-2000:]


def test_evaluate_refuses_a_typed_folder_like_every_other_box(presets_file, tiny_model_dir):
    """The Evaluate tab's model list offers no typing, but its handler goes through the same policy."""
    from sparse_demo.models import NOT_AVAILABLE
    from sparse_demo.ui import evaluate as tab

    ctx = _ctx(presets_file, public=True)
    theirs = shutil.copytree(tiny_model_dir, ctx.visitor_dir("session-A") / "finetune-1")
    for typed in (str(theirs), str(tiny_model_dir)):  # another visitor's model; a folder outside any allowed root
        r = tab.run_evaluation(ctx, tab.SAMPLE_LABEL, None, [typed], ["sparse"], "", "memory", 5, 0, [])
        assert r.report is None and NOT_AVAILABLE in r.status, r.status


def test_compare_downloads_belong_to_the_visitor(app_context):
    from sparse_demo.ui.compare import compare_query, compare_set

    mine = app_context.download_dir("session-compare")
    one = compare_query(app_context, "당뇨병 치료", "tiny-a", "tiny-b", top_k=5, downloads=mine)
    many = compare_set(app_context, "당뇨병 치료\n전세 보증금", None, ["tiny-a", "tiny-b"], top_k=5, downloads=mine)
    paths = [Path(one.csv_path), *map(Path, many.csv_paths)]
    assert len(paths) >= 3 and all(p.is_file() and mine in p.parents for p in paths)
    app_context.forget_visitor("session-compare")
    assert not any(p.exists() for p in paths) and not mine.exists()

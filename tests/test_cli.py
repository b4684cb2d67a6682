"""The command line through ``python -m sparse_demo`` in a subprocess, as a user or a script runs it.

Every subcommand: exit 0 on success, non-zero with exactly one ``error: ...`` line (no traceback)
on failure. One tiny model folder (a 300-piece tokenizer trained here, hidden 32) serves the
whole module. Each run is a new process forked from a server that has imported torch (``cli_process``),
so a run costs little more than the command itself; ``--help`` and two more start a fresh interpreter.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import pytest
from cli_process import run_sparse_demo

pytestmark = pytest.mark.slow  # every test but one runs the CLI in a new process

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "corpus" / "ko_sample"
SAMPLE_PAIRS = ROOT / "assets" / "pairs" / "sample_pairs.jsonl"


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def cli_env(tmp_path_factory) -> dict[str, str]:
    """Environment naming a presets file with one tiny local model (``tiny``) and a broken one."""
    from conftest import KOREAN_TEXTS

    from sparse_demo.modeling import make_mlm, train_tokenizer

    root = tmp_path_factory.mktemp("cli")
    tok = train_tokenizer(KOREAN_TEXTS * 5, vocab_size=300)
    model_dir = root / "tiny"
    make_mlm(tok, "tiny", seed=3).save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    presets = root / "models.json"
    presets.write_text(
        json.dumps(
            {
                "default": "tiny",
                "presets": [
                    {"name": "tiny", "source": str(model_dir)},
                    {"name": "missing", "source": str(root / "no-such-model")},
                ],
            }
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARSE_DEMO_")}
    env.update(
        {
            "SPARSE_DEMO_MODELS": str(presets),
            "SPARSE_DEMO_DEVICE": "cpu",
            "OMP_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "PYTHONIOENCODING": "utf-8",
        }
    )
    return env


def run_cli(
    env: dict[str, str], *args: str | bytes, stdin: bytes | None = None, cwd: Path = ROOT, real: bool = False
) -> subprocess.CompletedProcess:
    """``python -m sparse_demo ARGS`` with stdin bytes (or a closed, non-terminal stdin), in a new process.

    A child of the fork server of ``cli_process`` (torch already imported), or with ``real=True`` a fresh
    interpreter, for the tests whose point is the interpreter's start.
    """
    argv = [a if isinstance(a, bytes) else a.encode("utf-8") for a in args]
    return run_sparse_demo(argv, env=env, stdin=stdin if stdin is not None else b"", cwd=cwd, real=real)


def text_of(stream: bytes) -> str:
    return stream.decode("utf-8")


def assert_one_line_error(proc: subprocess.CompletedProcess, status: int, *expected: str) -> str:
    """The run failed with ``status`` and said why in exactly one line, without a traceback."""
    err = text_of(proc.stderr)
    lines = [line for line in err.split("\n") if line.strip()]
    assert proc.returncode == status, (proc.returncode, err)
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for piece in expected:
        assert piece in lines[0], lines[0]
    return lines[0]


def json_lines(proc: subprocess.CompletedProcess) -> list[dict]:
    out = text_of(proc.stdout)
    assert out.endswith("\n"), out
    return [json.loads(line) for line in out[:-1].split("\n")]


def beir_folder(root: Path, name: str = "beir", *, extra_qrels: str = "") -> Path:
    """A three-document BEIR folder; texts hold U+2028 and U+0085 (valid inside JSON strings)."""
    folder = root / name
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "당뇨", "text": "당뇨병 치료는 식이요법과\u2028운동으로 합니다."},
        {"_id": "d2", "title": "전세", "text": "전세 보증금을 돌려받으려면\u0085확정일자가 필요합니다."},
        {"_id": "d3", "title": "여권", "text": "여권 발급에는 신분증과 사진이 필요합니다."},
    ]
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8"
    )
    queries = [{"_id": "q1", "text": "당뇨병 치료"}, {"_id": "q2", "text": "전세 보증금"}]
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries), encoding="utf-8"
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n" + extra_qrels, encoding="utf-8"
    )
    return folder


# ---------------------------------------------------------------------- success: exit 0
def test_help_lists_every_command(cli_env):
    from sparse_demo.cli import COMMANDS

    proc = run_cli(cli_env, "--help", real=True)
    assert proc.returncode == 0
    for command, _ in COMMANDS:
        assert command in text_of(proc.stdout)
        assert "unavailable" not in text_of(proc.stdout), text_of(proc.stdout)


def test_encode_json_one_line_per_text(cli_env):
    proc = run_cli(cli_env, "encode", "--top-k", "3", "--json", "당뇨병 치료", "전세 보증금", real=True)
    assert proc.returncode == 0, text_of(proc.stderr)
    records = json_lines(proc)
    assert [r["text"] for r in records] == ["당뇨병 치료", "전세 보증금"]
    assert [len(r["tokens"]) for r in records] == [3, 3] and records[0]["model"] == "tiny"


def test_encode_reads_stdin_and_file_lines_split_on_newline_only(cli_env, tmp_path):
    # U+2028 / U+0085 are characters of a text, not line breaks: two texts, not four
    proc = run_cli(cli_env, "encode", "--json", stdin="당뇨병\u2028치료\n전세\u0085보증금\n".encode())
    assert proc.returncode == 0, text_of(proc.stderr)
    assert len(json_lines(proc)) == 2
    qfile = tmp_path / "q.jsonl"
    qfile.write_text('{"text": "당뇨병\u2028치료"}\n\n{"text": "전세\u0085보증금"}\n', encoding="utf-8")
    proc = run_cli(cli_env, "encode", "--json", "--file", str(qfile))
    assert proc.returncode == 0, text_of(proc.stderr)
    assert len(json_lines(proc)) == 2


def test_search_answers_every_input_line_with_notes(cli_env):
    proc = run_cli(
        cli_env, "search", "-q", "--corpus", str(SAMPLE), "--method", "bm25", "--json", "당뇨", "", "전세", "???"
    )
    records = json_lines(proc)
    assert [r["query"] for r in records] == ["당뇨", "", "전세", "???"]
    assert "error" in records[1] and "empty" in records[1]["error"] and "hits" not in records[1]
    assert records[0]["hits"] and records[2]["hits"]
    assert records[3]["hits"] == [] and any("no BM25 term" in n for n in records[3]["notes"])
    assert proc.returncode == 2, text_of(proc.stderr)  # one input was refused: scripts can tell
    assert text_of(proc.stderr) == ""


def test_search_hybrid_and_index_on_beir_with_unknown_judgements(cli_env, tmp_path):
    folder = beir_folder(tmp_path, extra_qrels="q1\tnope\t1\nq9\td1\t1\n")
    proc = run_cli(cli_env, "index", "-q", "--corpus", str(folder), "--json")
    assert proc.returncode == 0, text_of(proc.stderr)
    (report,) = json_lines(proc)
    assert report["documents"] == 3 and report["queries"] == 2
    assert report["dropped_judgements"] == 2  # one unknown document, one unknown query
    assert any("2 relevance judgement" in n for n in report["notes"])
    proc = run_cli(cli_env, "search", "-q", "--corpus", str(folder), "당뇨병 치료")
    assert proc.returncode == 0, text_of(proc.stderr)
    assert "d1" in text_of(proc.stdout)
    assert "note: 2 relevance judgement" in text_of(proc.stderr)


def test_compare_two_models(cli_env):
    proc = run_cli(cli_env, "compare", "--model-a", "tiny", "--model-b", "tiny", "--model", "tiny", "당뇨병 치료")
    assert_one_line_error(proc, 2, "two different models")
    proc = run_cli(
        cli_env,
        "compare",
        "--model-a",
        "tiny",
        "--model-b",
        str(Path(cli_env["SPARSE_DEMO_MODELS"]).parent / "tiny"),
        "--top-k",
        "5",
        "--json",
        "당뇨병 치료",
    )
    assert proc.returncode == 0, text_of(proc.stderr)
    data = json.loads(text_of(proc.stdout))
    # the same weights under two names: every figure is 1
    (q,) = data["queries"]
    assert (q["jaccard"], q["weighted_overlap"]) == (1.0, 1.0) and q["rbo"] == pytest.approx(1.0)


def test_finetune_exits_zero_with_a_summary(cli_env, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(SAMPLE_PAIRS.read_text(encoding="utf-8").split("\n")[:12]) + "\n", encoding="utf-8")
    out = tmp_path / "model"
    proc = run_cli(
        cli_env,
        "finetune",
        "--pairs",
        str(pairs),
        "--base",
        "new-tiny",
        "--size",
        "tiny",
        "--out",
        str(out),
        "--max-steps",
        "1",
        "--batch-size",
        "4",
        "--threads",
        "1",
        "--json",
    )
    assert proc.returncode == 0, text_of(proc.stderr)
    (record,) = json_lines(proc)
    assert record["model_dir"] == str(out) and record["steps"] == 1 and "history" not in record
    assert (out / "config.json").is_file()
    assert len(text_of(proc.stdout)) < 20_000  # a summary, not the TrainResult repr


def test_finetune_readable_summary_format():
    """The text summary from a constructed result (no training needed)."""
    from sparse_demo.cli.finetune import format_result
    from sparse_demo.train import TrainResult

    result = TrainResult(
        model_dir=Path("/m"),
        status="completed",
        steps=10,
        epochs=2.0,
        elapsed_s=3.0,
        train_s=2.0,
        num_train_pairs=40,
        num_eval_pairs=5,
        metrics_before={"bm25": {"R@1": 0.5, "MRR@10": 0.6}},
        metrics_after={"bm25": {"R@1": 0.5, "MRR@10": 0.6}, "model": {"R@1": 0.8}},
    )
    text = format_result(result)
    assert text.split("\n") == [
        "finetune completed: 10 steps, 2.00 epochs, 2.0 s training (3.0 s in all)",
        "pairs: 40 train, 5 held out",
        "model: /m",
        "held-out metrics (before -> after):",
        "  bm25    R@1 0.500 -> 0.500   MRR@10 0.600 -> 0.600",
        "  model   R@1 - -> 0.800",
    ]


# ---------------------------------------------------------------------- failures: one line each
def test_invalid_utf8_argument(cli_env):
    proc = run_cli(cli_env, "encode", b"\xb4\xe7\xb4\xa2", real=True)  # "당뇨" in cp949
    assert_one_line_error(proc, 2, "argument 2", "UTF-8")


def test_invalid_utf8_on_stdin(cli_env):
    proc = run_cli(cli_env, "encode", stdin="당뇨병\n".encode() + "전세".encode("cp949") + b"\n")
    assert_one_line_error(proc, 2, "stdin line 2", "UTF-8")
    proc = run_cli(cli_env, "search", "-q", "--corpus", str(SAMPLE), "--method", "bm25", stdin=b"\xff\xfe\n")
    assert_one_line_error(proc, 2, "stdin line 1")


def _corrupt_zip(tmp_path: Path) -> Path:
    folder = beir_folder(tmp_path, "zipped")
    path = tmp_path / "corpus.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(tmp_path).as_posix())
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("zipped/corpus.jsonl")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 2, start + info.compress_size - 2):  # scramble the deflate stream
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("what", ["corrupt", "not_a_zip", "missing"])
def test_bad_corpus_is_one_line(cli_env, tmp_path, what):
    if what == "corrupt":
        path = _corrupt_zip(tmp_path)
    elif what == "not_a_zip":
        path = tmp_path / "c.zip"
        path.write_bytes(b"not a zip at all")
    else:
        path = tmp_path / "absent.jsonl"
    proc = run_cli(cli_env, "search", "-q", "--corpus", str(path), "--method", "bm25", "당뇨")
    line = assert_one_line_error(proc, 2)
    assert path.name in line or "zip" in line, line


def _pairs_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("one.jsonl", '{"query": "당뇨", "positive": "당뇨병 치료"}\n', "pair"),
        ("empty.jsonl", "", "empty.jsonl"),
        ("cols.csv", "question,answer\n당뇨,당뇨병 치료\n전세,전세 보증금\n", "positive"),
        ("score.tsv", "query\tpositive\tteacher_score\n당뇨\t당뇨병\tabc\n전세\t보증금\t1.0\n", "teacher_score"),
        (
            "lists.jsonl",
            '{"query": ["당뇨"], "positive": "당뇨병"}\n{"query": "전세", "positive": "보증금"}\n',
            "line 1",
        ),
    ],
)
def test_finetune_input_errors_are_one_line(cli_env, tmp_path, name, text, expected):
    pairs = _pairs_file(tmp_path, name, text)
    proc = run_cli(cli_env, "finetune", "--pairs", str(pairs), "--base", "new-tiny", "--out", str(tmp_path / "m"))
    assert_one_line_error(proc, 2, expected)
    assert not (tmp_path / "m" / "config.json").exists()


@pytest.mark.parametrize(
    "args, status, expected",
    [
        (["encode", "--top-k", "0", "당뇨"], 2, "--top-k"),
        (["encode", "--model", "missing", "당뇨"], 1, "missing"),
        (["encode", "--model", "/no/such/folder", "당뇨"], 1, "/no/such/folder"),
        (["encode"], 2, "give at least one text"),
        (["encode", "--file", "/no/such/queries.txt"], 2, "queries.txt"),
        (["search", "--corpus", str(SAMPLE), "--weight", "2", "당뇨"], 2, "--weight"),
        (["compare", "--model-a", "tiny", "--model-b", "missing", "당뇨"], 1, "comparing needs two"),
        (["index", "--corpus", str(SAMPLE), "--model", "missing", "-q"], 1, "missing"),
        (["finetune", "--pairs", "/no/pairs.jsonl", "--out", "/tmp/x"], 2, "pairs.jsonl"),
        (["nosuchcommand"], 2, "invalid choice"),
    ],
)
def test_errors_are_one_line(cli_env, args, status, expected):
    assert_one_line_error(run_cli(cli_env, *args), status, expected)


# ---------------------------------------------------------------------- F2: --analyzer and the model's weight
def test_index_and_search_take_a_bm25_analyzer(cli_env, tmp_path):
    folder = beir_folder(tmp_path)
    proc = run_cli(cli_env, "index", "-q", "--corpus", str(folder), "--analyzer", " j, e", "--json")
    assert proc.returncode == 0, text_of(proc.stderr)
    (report,) = json_lines(proc)
    assert report["analyzer"] == "E,J"  # canonical: upper case, sorted
    proc = run_cli(
        cli_env,
        "search",
        "-q",
        "--corpus",
        str(folder),
        "--method",
        "bm25",
        "--analyzer",
        "nori",
        "--json",
        "전세 보증금",
    )
    assert proc.returncode == 0, text_of(proc.stderr)
    assert json_lines(proc)[0]["hits"][0]["id"] == "d2"


@pytest.mark.parametrize("command", ["index", "search"])
def test_a_bad_analyzer_is_one_line(cli_env, command):
    proc = run_cli(cli_env, command, "--corpus", str(SAMPLE), "--analyzer", "J,QQ", "전세")
    assert_one_line_error(proc, 2, "--analyzer", "'QQ'", "'default', 'all', 'nori'")


def test_search_weight_defaults_to_the_models_recommendation(cli_env, tmp_path):
    import shutil

    presets = json.loads(Path(cli_env["SPARSE_DEMO_MODELS"]).read_text(encoding="utf-8"))
    source = next(p["source"] for p in presets["presets"] if p["name"] == "tiny")
    model = tmp_path / "tiny-card"
    shutil.copytree(source, model)
    (model / "sparse_demo.json").write_text(json.dumps({"hybrid_weight": 0.25}), encoding="utf-8")
    folder = beir_folder(tmp_path)
    proc = run_cli(cli_env, "search", "-q", "--corpus", str(folder), "--model", str(model), "--json", "당뇨병")
    assert proc.returncode == 0, text_of(proc.stderr)
    (rec,) = json_lines(proc)
    assert rec["weight"] == 0.25 and any("weight 0.25 recommended by the model card" in n for n in rec["notes"])
    proc = run_cli(
        cli_env, "search", "-q", "--corpus", str(folder), "--model", str(model), "--weight", "0.6", "--json", "당뇨병"
    )
    (rec,) = json_lines(proc)
    assert rec["weight"] == 0.6 and not any("recommended" in n for n in rec["notes"])
    proc = run_cli(cli_env, "search", "-q", "--corpus", str(folder), "--json", "당뇨병")  # the preset: no card
    (rec,) = json_lines(proc)
    assert rec["weight"] == 0.5 and not any("recommended" in n for n in rec["notes"])
    assert "recommends (hybrid_weight)" in " ".join(text_of(run_cli(cli_env, "search", "--help").stdout).split())

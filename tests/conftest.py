"""Shared fixtures: tiny models built here (no network), the app server, a headless browser."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per test worker: two workers on two cores, not four threads. (The processes a test
    # starts keep their own settings: OMP_NUM_THREADS is left alone.)
    import torch

    torch.set_num_threads(1)

# Tests encode on purpose: the on-disk vector cache would make a second run read what the first encoded (and
# a test that counts encodings would see none). tests/test_vector_store.py switches it on in a temporary folder.
os.environ.setdefault("SPARSE_DEMO_VECTOR_CACHE", "off")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
XLMR_TOKENIZER = SHARED / "models" / "xlmr-tokenizer"
SHARED_DATA = SHARED / "data"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"

#: Korean sentences used to train test tokenizers when the shared XLM-R tokenizer is absent.
KOREAN_TEXTS = [
    "당뇨병 치료 방법은 식이요법과 운동, 약물 치료로 나뉩니다.",
    "혈당 관리를 위해 규칙적인 운동이 필요합니다.",
    "고혈압 환자는 소금 섭취를 줄여야 합니다.",
    "전세 계약을 할 때는 확정일자를 받아야 보증금을 보호할 수 있습니다.",
    "연말정산에서 의료비와 교육비는 세액공제 대상입니다.",
    "클라우드 컴퓨팅은 서버와 저장소를 인터넷으로 빌려 쓰는 방식입니다.",
    "여권을 발급받으려면 신분증과 사진이 있어야 합니다.",
    "김치찌개는 잘 익은 김치와 돼지고기로 끓이면 맛있습니다.",
    "주택담보대출 금리는 은행마다 다르므로 비교하는 것이 좋습니다.",
    "개인정보 보호법은 개인의 정보를 수집하고 이용하는 기준을 정합니다.",
    "Python and 5G networks are used in 2024 for AI services.",
    "감기에 걸리면 충분히 쉬고 물을 많이 마시는 것이 좋습니다.",
]


#: Test files whose every test drives the app in headless Chromium.
_BROWSER_FILES = ("test_browser_",)
#: Fixtures that need a real OpenSearch node.
_OPENSEARCH_FIXTURES = {"node", "node_url"}


def pytest_collection_modifyitems(config, items):
    """Mark tests by what they need, so ``-m "not browser and not opensearch and not slow"`` is the fast
    suite; the README's command (and CI) still runs every test.

    - ``browser``: the test files ``test_browser_*.py`` and tests using the ``browser`` / ``page`` fixtures;
    - ``opensearch``: ``test_opensearch.py``, ``test_opensearch_neural.py`` and tests using an OpenSearch fixture;
    - ``slow``: tests marked so by hand, those over ~5 s (training runs, new processes, model reloads, ranx's
      first call, load tests, real-data measurements).
    """
    for item in items:
        name = item.path.name if hasattr(item, "path") else ""
        fixtures = set(getattr(item, "fixturenames", ()))
        if name.startswith(_BROWSER_FILES) or fixtures & {"browser", "page"}:
            item.add_marker(pytest.mark.browser)
        if name in ("test_opensearch.py", "test_opensearch_neural.py") or fixtures & _OPENSEARCH_FIXTURES:
            item.add_marker(pytest.mark.opensearch)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The tokenizer of the tiny test models: the bundled demo model's (an XLM-R-style Korean Unigram
    tokenizer, 15,161 pieces, in every clone).

    A tiny model's cost is its output layer, one logit per vocabulary entry at every position: with the
    real 250,002-piece XLM-R vocabulary every encode in the suite was ~16 times the work, for no test that
    needs it (the tests about that vocabulary read ``../shared/models/xlmr-tokenizer``: test_demo_model.py).
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(ROOT / "assets" / "demo-v26-style"))


def _save_tiny(tokenizer, path: Path, seed: int) -> Path:
    from sparse_demo.modeling import make_mlm

    model = make_mlm(tokenizer, "tiny", seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A random tiny XLM-R-architecture MLM folder (hidden 32, 2 layers)."""
    return _save_tiny(tiny_tokenizer, tmp_path_factory.mktemp("tiny_xlmr_a"), seed=1)


@pytest.fixture(scope="session")
def tiny_model_dir_b(tmp_path_factory, tiny_tokenizer) -> Path:
    """A second tiny model with the same tokenizer and other weights (a 'V25' to compare)."""
    return _save_tiny(tiny_tokenizer, tmp_path_factory.mktemp("tiny_xlmr_b"), seed=2)


@pytest.fixture(scope="session")
def wordpiece_model_dir(tmp_path_factory) -> Path:
    """A random tiny BertForMaskedLM with a WordPiece tokenizer trained here (other vocabulary)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(KOREAN_TEXTS * 5, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
    )
    model = BertForMaskedLM(config)
    model.config.architectures = ["BertForMaskedLM"]
    path = tmp_path_factory.mktemp("tiny_wordpiece")
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def presets_file(tmp_path_factory, tiny_model_dir, tiny_model_dir_b) -> Path:
    """A presets file naming the tiny models (as a closed-network team would name theirs)."""
    path = tmp_path_factory.mktemp("presets") / "models.json"
    path.write_text(
        json.dumps(
            {
                "default": "tiny-a",
                "presets": [
                    {"name": "tiny-a", "source": str(tiny_model_dir), "description": "random tiny A"},
                    {"name": "tiny-b", "source": str(tiny_model_dir_b), "description": "random tiny B"},
                    {"name": "missing", "source": "/nonexistent/model/folder", "description": "broken"},
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def app_context(presets_file):
    from sparse_demo.config import load_settings
    from sparse_demo.ui.common import AppContext

    settings = load_settings({"SPARSE_DEMO_MODELS": str(presets_file), "SPARSE_DEMO_DEVICE": "cpu"})
    return AppContext.create(settings)


@pytest.fixture(scope="session")
def app_url(app_context):
    """The whole app served on a free local port for browser tests."""
    from app import build_app, serve

    demo = build_app(app_context)
    port = free_port()
    serve(
        demo,
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
    )  # as `python app.py` serves it, stylesheet included
    url = f"http://127.0.0.1:{port}/"
    yield url
    demo.close()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright.

    Skipped when Chromium or Playwright is missing, except under ``CI=true``, where that fails the test
    (a CI run must not pass by skipping every browser test).
    """
    in_ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = "Chromium is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright is not installed (pip install playwright)"
    if missing:
        if in_ci:
            pytest.fail(f"{missing}; CI=true requires the browser tests to run", pytrace=False)
        pytest.skip(f"{missing}; browser tests skipped")
    from playwright import sync_api

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture's teardown knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _browser_events(pg) -> list[str]:
    """What the page reports as it goes (console errors and warnings, uncaught errors, failed requests),
    printed when a browser test fails: a lost answer then says whether the page saw an error."""
    events: list[str] = []

    def console(msg) -> None:
        if msg.type in ("error", "warning"):
            events.append(f"console {msg.type}: {msg.text}")

    pg.on("console", console)
    pg.on("pageerror", lambda exc: events.append(f"page error: {exc}"))
    pg.on("requestfailed", lambda r: events.append(f"request failed: {r.method} {r.url} ({r.failure})"))
    return events


@pytest.fixture()
def page(browser, app_url, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    events = _browser_events(pg)
    pg.goto(app_url)
    # the page answers Explore's first example on load: wait for it, so a test's own answer is never replaced
    pg.locator("#explore-status").get_by_text("tokens encoded").wait_for(timeout=300_000)
    yield pg
    if _failed(request):
        _print_seen(pg, events)
    context.close()


def _failed(request) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is not None and report.failed


def _print_seen(pg, events: list[str]) -> None:
    """Print what a page saw (for a failed test): its events, and the toasts still on screen if it is open."""
    seen = events[-40:] or ["no console error, page error or failed request"]
    print(f"The browser saw at {pg.url}:", *seen, sep="\n  ")
    toasts = "(page closed)" if pg.is_closed() else pg.locator(".toast-body").all_inner_texts() or "none"
    print("Toasts on screen:", toasts)


#: Pages a test opened itself (one per visitor) and :func:`watch_page` registered, with what each saw.
_WATCHED: list[tuple[object, list[str]]] = []


def watch_page(pg) -> None:
    """Record what ``pg`` sees, printed if the test fails (the ``page`` fixture does this for its own page)."""
    _WATCHED.append((pg, _browser_events(pg)))


@pytest.fixture(autouse=True)
def _report_watched_pages(request):
    _WATCHED.clear()
    yield
    if _failed(request):
        for pg, events in _WATCHED:
            _print_seen(pg, events)
    _WATCHED.clear()


#: Resolves once the page has painted twice and then had nothing left to do (or after 2 s).
_SETTLED = (
    "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame("
    "() => requestIdleCallback(() => done(), {timeout: 2000}))))"
)


def settle(page) -> None:
    """Wait until the page has finished what it was doing: a tab just shown mounts its boxes, and a moment
    later Gradio's props sync may hand a box its value again."""
    page.evaluate(_SETTLED)


def show_tab(page, name: str) -> None:
    """Click the tab labelled ``name`` and wait until the page has mounted what it shows (see :func:`settle`),
    so that a click or a typed text right after it is not undone by the mount."""
    page.get_by_role("tab", name=name, exact=True).click()
    settle(page)


def fill_box(box, text: str, tries: int = 3) -> None:
    """Type ``text`` into a Gradio box and make sure the box keeps it.

    Gradio mounts a tab's boxes when the tab is first shown, and its props sync can give a box its initial
    value again a moment after the box appears (seen in CI: the Compare set box lost the typed queries and held
    its default). So the page settles before and after typing, and the text is typed again if it was lost.
    """
    from playwright.sync_api import expect

    for _ in range(tries):
        settle(box.page)
        box.fill(text)
        settle(box.page)
        if box.input_value() == text:
            return
    expect(box).to_have_value(text)


def wait_for_answer(page, selector: str, text: str, timeout_ms: float) -> str:
    """The inner text of ``selector`` once it shows ``text``; on timeout, a failure that quotes what it shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    where = page.locator(selector)
    try:
        where.get_by_text(text).first.wait_for(timeout=timeout_ms)
    except PlaywrightTimeout:
        shown = where.inner_text(timeout=5_000) if where.count() else "(not on the page)"
        pytest.fail(f"{selector} did not show {text!r} within {timeout_ms / 1000:.0f} s; it shows: {shown!r}")
    return where.inner_text()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("condition not met in time")

"""The app as a public Space, in a real browser.

- A first-time visitor on a machine where the default preset (V26) cannot load: the page opens with the
  demo model selected, and Analyze, Compare and Build index + Search all answer with no other step.
- Two visitors (two browser contexts): one fine-tunes; the other never sees that model in a picker,
  cannot load it by typing its name or its folder, and sees a public model added after it opened the
  page. The fine-tuned model's folder is removed when its owner closes the page.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
from pathlib import Path

import pytest
from conftest import fill_box, free_port, show_tab, wait_for, watch_page

from sparse_demo.models import NOT_AVAILABLE

#: Encoding with a random tiny XLM-R model on a busy 2-core machine is slow (see test_browser_search).
SLOW_MS = 300_000


def _demo_model(ctx, fallback: Path) -> str:
    """Register the bundled demo model (assets/demo-v26-style) or, until it exists, a tiny stand-in."""
    from sparse_demo.offline import DEMO_MODEL_NAME as name
    from sparse_demo.ui.common import register_builtin_models

    register_builtin_models(ctx.registry)
    if name not in ctx.registry.names:
        ctx.registry.register(name, str(fallback), "stand-in for the bundled demo model")
    return name


@pytest.fixture(scope="module")
def space(tmp_path_factory, tiny_model_dir):
    """The whole app, with presets that cannot load (V26, V25 in an unreachable place), on a free port."""
    from app import build_app, serve
    from sparse_demo.config import load_settings
    from sparse_demo.ui.common import AppContext

    tmp = tmp_path_factory.mktemp("space")
    presets = tmp / "models.json"
    presets.write_text(
        json.dumps(
            {
                "default": "V26",
                "presets": [
                    {"name": "V26", "source": str(tmp / "no-network" / "v26")},
                    {"name": "V25", "source": str(tmp / "no-network" / "v25")},
                ],
            }
        ),
        encoding="utf-8",
    )
    ctx = AppContext.create(load_settings({"SPARSE_DEMO_MODELS": str(presets), "SPARSE_DEMO_DEVICE": "cpu"}))
    demo_name = _demo_model(ctx, tiny_model_dir)
    demo = build_app(ctx)
    port = free_port()
    serve(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield {"url": f"http://127.0.0.1:{port}/", "ctx": ctx, "demo_name": demo_name}
    demo.close()


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_page(page)
    page.goto(url)
    page.locator("#explore-query textarea").wait_for()
    # the page answers Explore's first example on load: wait for it, so no later answer is replaced by it
    page.locator("#explore-status").get_by_text("tokens encoded").wait_for(timeout=SLOW_MS)
    return context, page


def _options(page, picker: str) -> list[str]:
    page.locator(f"#{picker} input").click()
    page.locator(f"#{picker} [role=option]").first.wait_for()
    texts = [t.replace("✓", "").strip() for t in page.locator(f"#{picker} [role=option]").all_inner_texts()]
    _blur(page)
    return texts


def _blur(page) -> None:
    """Close an open list by clicking outside it (after Escape a focused picker does not reopen on click)."""
    page.mouse.click(5, 5)
    page.wait_for_timeout(300)


def _pick(page, picker: str, name: str) -> None:
    """Choose ``name`` in a picker (retrying: a choices refresh may close the list as it opens)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        page.locator(f"#{picker} input").click()
        option = page.locator(f"#{picker} [role=option]", has_text=name).first
        try:
            option.wait_for(timeout=10_000)
            option.click()
        except PlaywrightTimeout:
            _blur(page)
            continue
        try:
            wait_for(lambda: page.locator(f"#{picker} input").input_value() == name, timeout=10)
            return
        except TimeoutError:
            continue
    raise AssertionError(f"could not pick {name!r} in #{picker}")


def test_first_visit_without_v26_answers_with_the_demo_model(browser, space):
    context, page = _open(browser, space["url"])
    try:
        demo_name = space["demo_name"]
        assert page.locator("#explore-model input").input_value() == demo_name
        # Explore
        page.locator("#explore-run").click()
        page.locator("#explore-status").get_by_text("tokens encoded").wait_for(timeout=SLOW_MS)
        assert demo_name in page.locator("#explore-status").inner_text()
        page.locator('#explore-table [role="row"][data-index="0"]').wait_for()
        # Compare
        show_tab(page, "Compare")
        assert page.locator("#compare-a-model input").input_value() == demo_name
        page.locator("#compare-run").click()
        # the tables show an empty-state row before the first answer: wait for the answer's status
        page.locator("#compare-status").get_by_text(demo_name).first.wait_for(timeout=SLOW_MS)
        page.locator('#compare-aligned [role="row"][data-index="0"]').wait_for()
        assert "Nothing to show yet" not in page.locator("#compare-aligned").inner_text()
        # Search: build the sample index, then search it
        show_tab(page, "Search")
        assert page.locator("#search-model input").input_value() == demo_name
        page.locator("#search-index").click()
        page.locator("#search-index-status").get_by_text("Index ready").wait_for(timeout=SLOW_MS)
        fill_box(page.locator("#search-query textarea"), "당뇨병 치료 방법")
        page.locator("#search-run").click()
        page.locator("#search-status").get_by_text("hits in").wait_for(timeout=SLOW_MS)
        page.locator('#search-results [role="row"][data-index="0"]').wait_for()
        assert "Nothing to show yet" not in page.locator("#search-results").inner_text()
    finally:
        context.close()


def _table(page, table_id: str, n: int) -> tuple[list[str], list[list[str]]]:
    """``(header, first n rows)`` of a Gradio 6 virtual grid."""
    header = [c.strip() for c in page.locator(f'#{table_id} [role="columnheader"]').all_inner_texts()]
    rows = []
    for i in range(n):
        row = page.locator(f'#{table_id} [role="row"][data-index="{i}"]')
        row.wait_for()
        rows.append([c.strip() for c in row.locator('[role="gridcell"]').all_inner_texts()])
    return header, rows


def test_offline_showcase_expands_on_load_and_compares_the_two_demo_styles(browser, space):
    """Without V26 and V25: Explore's on-load answer expands; Compare opens on V26-style vs V25-style, whose
    stopword mass differs; a link naming the two models opens that view with its answer."""
    from urllib.parse import quote

    from sparse_demo.offline import DEMO_MODEL_NAME, DEMO_V25_NAME
    from sparse_demo.ui.common import COMPARE_EXAMPLE, EXAMPLE_QUERIES

    if DEMO_V25_NAME not in space["ctx"].registry.names:
        pytest.skip("the bundled demo models are not built in this checkout")
    context, page = _open(browser, space["url"])  # waits for the on-load answer; nothing is clicked
    try:
        assert page.locator("#explore-model input").input_value() == DEMO_MODEL_NAME
        assert page.locator("#explore-query textarea").input_value() == EXAMPLE_QUERIES[0]
        header, rows = _table(page, "explore-table", 10)  # the grid renders the rows in view
        origins = [r[header.index("origin")] for r in rows]
        assert "expansion" in origins, rows
        # Compare, as its tab opens: the two demo models side by side
        show_tab(page, "Compare")
        assert page.locator("#compare-a-model input").input_value() == DEMO_MODEL_NAME
        assert page.locator("#compare-b-model input").input_value() == DEMO_V25_NAME
        # its first query has a particle and an ending: the first click shows the two styles apart
        assert page.locator("#compare-query textarea").input_value() == COMPARE_EXAMPLE
        page.locator("#compare-run").click()
        page.locator("#compare-status").get_by_text(DEMO_V25_NAME).first.wait_for(timeout=SLOW_MS)
        masses = _stopword_masses(page)
        assert masses[1] > masses[0], masses
        # the stats table shows both models' whole columns, headers (the long model names) included, at 1280 px
        page.locator("#compare-sides th", has_text=DEMO_V25_NAME).wait_for(timeout=SLOW_MS)
        page.set_viewport_size({"width": 1280, "height": 1000})
        with contextlib.suppress(TimeoutError):  # the grid lays itself out again after the resize
            wait_for(lambda: not _cut_sideways(page, "compare-sides"), timeout=10)
        assert not _cut_sideways(page, "compare-sides"), _cut_sideways(page, "compare-sides")
    finally:
        context.close()
    # a link with tab, q and both models opens that view with its answer
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        q = "한 남자가 기타를 치고 있다"
        page.goto(f"{space['url']}?tab=compare&q={quote(q)}&a={quote(DEMO_V25_NAME)}&b={quote(DEMO_MODEL_NAME)}")
        page.locator("#compare-status").get_by_text("input tokens").wait_for(timeout=SLOW_MS)
        text = page.locator("#compare-status").inner_text()
        assert f"A = {DEMO_V25_NAME}" in text and f"B = {DEMO_MODEL_NAME}" in text, text
        assert page.locator("#compare-query textarea").input_value() == q
        masses = _stopword_masses(page)
        assert masses[0] > masses[1], masses
    finally:
        context.close()


def _cut_sideways(page, elem_id: str) -> list[list]:
    """The elements inside ``#elem_id`` whose content is wider than what they show (scrolls or is cut)."""
    return page.locator(f"#{elem_id}").evaluate(
        """root => [...root.querySelectorAll('*')].filter(e => e.scrollWidth > e.clientWidth + 1)
            .map(e => [e.tagName, e.scrollWidth, e.clientWidth, e.textContent.slice(0, 40)])"""
    )


def _stopword_masses(page) -> tuple[float, float]:
    """A's and B's in-context stopword mass, as Compare's leakage line shows them."""
    page.locator("#compare-metrics").get_by_text("stopword mass").wait_for(timeout=SLOW_MS)
    line = page.locator("#compare-metrics").inner_text()
    found = re.search(r"stopword mass ([0-9.]+)% vs ([0-9.]+)% in context", line)
    assert found, line
    return float(found.group(1)), float(found.group(2))


def _get(url: str) -> int:
    """The HTTP status of a GET."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _finetune(page, tmp_path: Path) -> str:
    topics = [
        ("당뇨병 치료", "당뇨병 치료는 식이요법과 운동, 인슐린 주사로 혈당을 관리합니다."),
        ("고혈압 음식", "고혈압 환자는 소금을 줄이고 채소와 과일을 많이 먹어야 합니다."),
        ("전세 보증금", "전세 계약 때 확정일자를 받으면 보증금을 보호받을 수 있습니다."),
        ("여권 발급", "여권을 새로 발급받으려면 신분증과 여권용 사진을 준비해야 합니다."),
        ("감기 증상", "감기에 걸리면 콧물과 기침이 나고 목이 아픈 증상이 나타납니다."),
    ]
    rows = [{"query": f"{q} {s}", "positive": p} for q, p in topics for s in ("", "방법", "정보", "알려줘")]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    show_tab(page, "Fine-tune")
    page.locator("#ft-pairs input[type=file]").set_input_files(str(pairs))
    page.locator("#ft-size").get_by_text("tiny").click()
    limit = page.locator("#ft-time input[type=number]")
    fill_box(limit, "20")
    limit.press("Enter")
    page.locator("#ft-start").click()
    page.locator("#ft-status").get_by_text("Done").wait_for(timeout=SLOW_MS)
    status = page.locator("#ft-status").inner_text()
    name = re.search(r"as (fine-tuned [0-9:]+ \([0-9a-f]{4}\))", status)
    assert name, status
    return name.group(1)


def test_two_visitors_keep_their_models_apart(browser, space, tmp_path, tiny_model_dir_b):
    ctx = space["ctx"]
    ctx_b, page_b = _open(browser, space["url"])  # B opens the page first
    ctx_a, page_a = _open(browser, space["url"])
    try:
        name = _finetune(page_a, tmp_path)
        wait_for(lambda: _file_urls(page_a, "#ft-zip"), timeout=60)
        zip_urls = _file_urls(page_a, "#ft-zip")  # the model zip as Gradio serves it (from its cache)
        assert all(_get(u) == 200 for u in zip_urls)
        owned = [p for p in (ctx.workdir / "visitors").glob("*/finetune*") if p.is_dir()]
        assert len(owned) == 1
        folder = owned[0]
        show_tab(page_a, "Explore")
        assert name in _options(page_a, "explore-model")

        # a public model built after B opened the page (e.g. by the Models accordion)
        later = "built later (public)"
        ctx.registry.register(later, str(tiny_model_dir_b), "added while B's page was open")

        show_tab(page_b, "Explore")
        options = wait_for(lambda: (lambda o: o if later in o else None)(_options(page_b, "explore-model")))
        assert not any(o.startswith("fine-tuned") for o in options), options
        show_tab(page_b, "Compare")
        assert not any(o.startswith("fine-tuned") for o in _options(page_b, "compare-a-model"))
        show_tab(page_b, "Explore")

        # B types A's model name, then its folder: never A's model (more spellings: tests/test_models.py)
        box = page_b.locator("#explore-folder textarea, #explore-folder input").first
        status = page_b.locator("#explore-status")
        fill_box(box, name)
        page_b.locator("#explore-run").click()
        status.get_by_text("Could not load").wait_for(timeout=SLOW_MS)
        fill_box(box, str(folder))
        page_b.locator("#explore-run").click()
        status.get_by_text(NOT_AVAILABLE).wait_for(timeout=SLOW_MS)
        assert "tokens encoded" not in status.inner_text()

        # A uses it; then A leaves and the folder goes
        _pick(page_a, "explore-model", name)
        page_a.locator("#explore-run").click()
        # Explore already answered on load with the default model: wait for the answer naming A's model
        a_status = page_a.locator("#explore-status")
        wait_for(
            lambda: name in a_status.inner_text() and "tokens encoded" in a_status.inner_text(), timeout=SLOW_MS / 1000
        )
    finally:
        ctx_a.close()
        ctx_b.close()
    wait_for(lambda: not folder.exists(), timeout=120)
    codes = [_get(u) for u in zip_urls]
    assert all(c in (403, 404) for c in codes), codes  # a departed visitor's model zip no longer downloads
    shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------- a public Space, two visitors
@pytest.fixture(scope="module")
def public_space(tmp_path_factory, tiny_model_dir):
    """The app in ``public`` mode (one allowed root), OpenSearch configured at a port nobody listens on."""
    import os

    from app import build_app, serve
    from sparse_demo.config import load_settings
    from sparse_demo.ui.common import AppContext

    tmp = tmp_path_factory.mktemp("public_space")
    allowed = tmp / "allowed"
    shutil.copytree(tiny_model_dir, allowed / "shared-model")
    linked = shutil.copytree(tiny_model_dir, allowed / "linked-weights")
    (linked / "model.safetensors").unlink()
    (linked / "model.safetensors").symlink_to(tiny_model_dir / "model.safetensors")  # points outside the root
    presets = tmp / "models.json"
    presets.write_text(
        json.dumps({"default": "V26", "presets": [{"name": "V26", "source": str(tmp / "no-network" / "v26")}]}),
        encoding="utf-8",
    )
    old_url = os.environ.get("OPENSEARCH_URL")
    os.environ["OPENSEARCH_URL"] = f"http://127.0.0.1:{free_port()}"
    ctx = AppContext.create(
        load_settings(
            {
                "SPARSE_DEMO_MODELS": str(presets),
                "SPARSE_DEMO_DEVICE": "cpu",
                "SPARSE_DEMO_MODEL_SOURCES": "public",
                "SPARSE_DEMO_ALLOWED_ROOTS": str(allowed),
            }
        )
    )
    demo_name = _demo_model(ctx, tiny_model_dir)
    demo = build_app(ctx)
    port = free_port()
    serve(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield {
        "url": f"http://127.0.0.1:{port}/",
        "ctx": ctx,
        "demo_name": demo_name,
        "allowed": allowed,
        "linked": linked,
        "opensearch": os.environ["OPENSEARCH_URL"],
    }
    demo.close()
    if old_url is None:
        os.environ.pop("OPENSEARCH_URL", None)
    else:
        os.environ["OPENSEARCH_URL"] = old_url


def _secret_zip(tmp_path: Path) -> Path:
    """A small BEIR zip named like a visitor's private project (12 sample documents, their judged queries)."""
    import zipfile

    from sparse_demo.search import load_sample_corpus

    full = load_sample_corpus()
    docs = full.documents[:12]
    ids = {d.id for d in docs}
    queries = [q for q in full.queries if q.id in full.qrels and set(full.qrels[q.id]) <= ids][:8]
    path = tmp_path / "my-secret-project.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "p/corpus.jsonl", "\n".join(json.dumps({"_id": d.id, "text": d.text}, ensure_ascii=False) for d in docs)
        )
        zf.writestr(
            "p/queries.jsonl", "\n".join(json.dumps({"_id": q.id, "text": q.text}, ensure_ascii=False) for q in queries)
        )
        zf.writestr(
            "p/qrels/test.tsv", "\n".join(f"{q.id}\t{d}\t{g}" for q in queries for d, g in full.qrels[q.id].items())
        )
    return path


def _file_urls(page, selector: str) -> list[str]:
    return [h for h in page.locator(f"{selector} a[href]").evaluate_all("els => els.map(e => e.href)") if "file=" in h]


def _hybrid_search(page) -> str:
    """Search the uploaded corpus with the hybrid method; the status text."""
    show_tab(page, "Search")
    status = page.locator("#search-status")
    before = status.inner_text()
    page.locator("#search-method").get_by_text("Hybrid (BM25 + sparse)").click()
    page.locator("#search-backend").get_by_text("In memory").click()
    fill_box(page.locator("#search-query textarea"), "당뇨병 치료 방법")
    page.locator("#search-run").click()
    wait_for(lambda: "hits in" in status.inner_text() and status.inner_text() != before, timeout=SLOW_MS / 1000)
    return status.inner_text()


def test_public_space_keeps_each_visitors_things_to_that_visitor(browser, public_space, tmp_path, tiny_model_dir):
    ctx = public_space["ctx"]
    secret = _secret_zip(tmp_path)
    ctx_b, page_b = _open(browser, public_space["url"])
    ctx_a, page_a = _open(browser, public_space["url"])
    try:
        # A: a batch Explore download, then an Evaluate run with the best-weight row on A's private upload
        page_a.get_by_text("Batch mode: leakage over many queries").click()
        page_a.locator("#explore-batch-run").click()
        page_a.locator("#explore-batch-status").get_by_text("queries, top-").wait_for(timeout=SLOW_MS)
        wait_for(lambda: _file_urls(page_a, "#tab-explore"), timeout=60)
        a_urls = _file_urls(page_a, "#tab-explore")
        sessions = [p.name for p in ctx.downloads_root.iterdir() if p.is_dir()]
        assert len(sessions) == 1, sessions
        a_session = sessions[0]
        show_tab(page_a, "Evaluate")
        page_a.locator("#evaluate-upload input[type=file]").set_input_files(str(secret))
        page_a.locator("#evaluate-input-status").get_by_text("judged queries").wait_for(timeout=SLOW_MS)
        page_a.locator("#evaluate-systems").get_by_text("Hybrid, weight by cross-validation").click()
        page_a.locator("#evaluate-run").click()
        page_a.locator("#evaluate-status").get_by_text("queries evaluated").wait_for(timeout=SLOW_MS)
        assert "for you only" in page_a.locator("#evaluate-chart-status").inner_text()
        assert len(ctx.tuned_weights.peek(a_session)) == 1  # stored under A's session only
        page_a.get_by_text("Markdown for a model card, and downloads").click()
        wait_for(lambda: len(_file_urls(page_a, "#evaluate-files")) == 5, timeout=60)
        a_urls += _file_urls(page_a, "#evaluate-files")

        # A's Search on the same documents uses A's tuned weight (the positive control) ...
        show_tab(page_a, "Search")
        page_a.locator("#search-upload input[type=file]").set_input_files(str(secret))
        page_a.locator("#search-index-status").get_by_text("12 documents").wait_for(timeout=SLOW_MS)
        assert "tuned by the Evaluate tab" in _hybrid_search(page_a)
        # ... B's Search on the same documents (B's own file name) never does, nor names A's file
        show_tab(page_b, "Search")
        page_b.locator("#search-upload input[type=file]").set_input_files(str(shutil.copy(secret, tmp_path / "b.zip")))
        page_b.locator("#search-index-status").get_by_text("12 documents").wait_for(timeout=SLOW_MS)
        status_b = _hybrid_search(page_b)
        assert "tuned by" not in status_b and "my-secret-project" not in page_b.locator("body").inner_text()

        # B types A's private model folder (and a folder whose weights link outside the root) in every box
        a_model = shutil.copytree(tiny_model_dir, ctx.visitor_dir(a_session) / "finetune-1")
        boxes = [
            ("Explore", "#explore-folder", "#explore-run", "#explore-status"),
            ("Compare", "#compare-a-folder", "#compare-run", "#compare-status"),
            ("Compare", "#compare-b-folder", "#compare-run", "#compare-status"),
            ("Search", "#search-folder", "#search-index", "#search-index-status"),
            ("Search", "#corpus-report-b-folder", "#corpus-report-run", "#corpus-report-status"),
        ]
        refused = [(str(a_model), box) for box in boxes] + [(str(public_space["linked"]), boxes[0])]
        for typed, (tab, box, button, out) in refused:
            show_tab(page_b, tab)
            if box.startswith("#corpus-report") and not page_b.locator(box).is_visible():
                page_b.locator("#corpus-report").get_by_text("Corpus report", exact=True).first.click()
            field = page_b.locator(f"{box} textarea, {box} input").first
            status = page_b.locator(out)
            if NOT_AVAILABLE in status.inner_text():  # the same status as the last box: answer once without it
                page_b.locator(button).click()
                wait_for(
                    lambda s=status: NOT_AVAILABLE not in s.inner_text() and s.inner_text().strip(),
                    timeout=SLOW_MS / 1000,
                )
            fill_box(field, typed)
            page_b.locator(button).click()
            try:
                wait_for(lambda s=status: NOT_AVAILABLE in s.inner_text(), timeout=SLOW_MS / 1000)
            except TimeoutError:
                raise AssertionError(f"{typed} in {box}: {status.inner_text()}") from None
            fill_box(field, "")
        # (Evaluate has no box to type in: its model list refuses values it does not offer;
        #  tests/test_visitors.py checks its handler with a typed path.)

        # the Search tab in public mode: no developer instructions, no server path
        show_tab(page_b, "Search")
        page_b.locator("#search-backend").get_by_text("OpenSearch").click()
        page_b.locator("#search-index-status").get_by_text("search engine is unavailable").wait_for(timeout=60_000)
        page_b.locator("#search-method").get_by_text("BM25 (Kiwi morphemes)").click()
        page_b.locator("#search-run").click()
        page_b.locator("#search-status").get_by_text("the in-memory index is used").wait_for(timeout=SLOW_MS)
        text = page_b.locator("#tab-search").inner_text()
        for leak in (
            "127.0.0.1",
            public_space["opensearch"],
            "scripts/opensearch.sh",
            "OPENSEARCH_",
            str(ctx.workdir),
            "/tmp/",
        ):
            assert leak not in text, leak

        # A leaves: A's downloads, tuned weights, model and Gradio's copies go; the URLs stop answering
        assert a_urls and all(_get(u) == 200 for u in a_urls)
        ctx_a.close()
        wait_for(lambda: not (ctx.downloads_root / a_session).exists() and not a_model.exists(), timeout=120)
        assert ctx.tuned_weights.peek(a_session) is None
        codes = {u.rsplit("/", 1)[-1]: _get(u) for u in a_urls}
        assert all(c in (403, 404) for c in codes.values()), codes  # Gradio: 403 for a file no longer there
    finally:
        ctx_a.close()
        ctx_b.close()

"""A real browser: the page answers before any click, a link opens its view with its answer, and Compare with
a model B that failed shows only A's own figures."""

from __future__ import annotations

from urllib.parse import quote

from sparse_demo.ui.common import EXAMPLE_QUERIES

#: The conftest models are random tiny XLM-R models that activate most of their 15k ids per query; their first analysis
#: classifies every one of them (seconds, minutes on a busy 2-core machine).
SLOW_MS = 300_000


def _rows(page, table_id: str, n: int) -> list[list[str]]:
    out = []
    for i in range(n):
        row = page.locator(f'#{table_id} [role="row"][data-index="{i}"]')  # Gradio 6 virtual grid
        row.wait_for()
        out.append([c.strip() for c in row.locator('[role="gridcell"]').all_inner_texts()])
    return out


def _header(page, table_id: str) -> list[str]:
    cells = page.locator(f'#{table_id} [role="columnheader"]').all_inner_texts()
    return [c.strip() for c in cells]


def test_first_answer_without_a_click(page):
    """On load, Explore shows the first example's tokens: every token's source text is a piece of the query."""
    page.locator("#explore-status").get_by_text("tokens encoded").wait_for(timeout=SLOW_MS)
    assert page.locator("#explore-query textarea").input_value() == EXAMPLE_QUERIES[0]
    header = _header(page, "explore-table")
    rows = _rows(page, "explore-table", 5)
    assert [r[0] for r in rows] == ["1", "2", "3", "4", "5"], rows
    sources = [r[header.index("from text")] for r in rows] if "from text" in header else []
    assert sources and all(s in EXAMPLE_QUERIES[0] for s in sources), (header, rows)
    leakage = page.locator("#explore-leakage").inner_text()
    assert "in context" in leakage and "vocabulary-level" in leakage


def test_link_opens_compare_with_its_answer(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        q = "전세 보증금 돌려받는 방법"
        page.goto(f"{app_url}?tab=compare&q={quote(q)}&a=tiny-b&b=tiny-a")
        status = page.locator("#compare-status")
        status.get_by_text("input tokens").wait_for(timeout=SLOW_MS)
        assert page.get_by_role("tab", name="Compare", exact=True).get_attribute("aria-selected") == "true"
        assert page.locator("#compare-query textarea").input_value() == q
        text = status.inner_text()
        assert "A = tiny-b" in text and "B = tiny-a" in text, text
        assert _rows(page, "compare-aligned", 1)[0][0] in {"1", ""}
        # Copy link gives back a link to this very view
        page.locator("#compare-copy-link").click()
        box = page.locator("#compare-link textarea, #compare-link input").first
        page.wait_for_function(
            "() => { const e = document.querySelector('#compare-link textarea, #compare-link input');"
            " return e && e.value.includes('tab=compare'); }",
            timeout=60_000,
        )
        link = box.input_value()
        assert link.startswith(app_url) and "a=tiny-b" in link and "b=tiny-a" in link and quote(q) in link, link
    finally:
        context.close()


def test_compare_with_a_failed_model_b_shows_only_a(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{app_url}?tab=compare&q={quote('당뇨병 치료 방법')}&a=tiny-a&b=missing")
        status = page.locator("#compare-status")
        status.get_by_text("could not be loaded").wait_for(timeout=SLOW_MS)
        assert "Model B (missing)" in status.inner_text()
        page.locator("#compare-metrics").get_by_text("alone").wait_for(timeout=SLOW_MS)
        header = _header(page, "compare-aligned")
        rows = _rows(page, "compare-aligned", 5)
        assert "status" in header, header
        statuses = {r[header.index("status")] for r in rows}
        assert not statuses & {"only_a", "only_b", "both"}, rows
        assert all(r[header.index("weight_delta")] in ("", "None", "nan", "NaN", "<NA>") for r in rows), rows
    finally:
        context.close()


def test_a_query_asked_before_the_on_load_answer_keeps_its_own_answer(browser):
    """A visitor who presses Run before the on-load answer arrives keeps their answer, whether their page's load
    was running or still waiting in the queue; a visitor who waits gets the on-load one (the positive control:
    the load would have replaced the others' answers)."""
    import threading

    import gradio as gr
    from conftest import free_port

    from sparse_demo.ui.links import LinkTarget, connect_links

    gate, returned = threading.Event(), threading.Event()

    def answer(query, picked, vm, request):
        gate.wait(60)  # the on-load answer is slow until the test says so
        returned.set()
        return [f"on-load answer to {query}"]

    with gr.Blocks() as demo:
        visitor_models = gr.State({})
        with gr.Tabs() as tabs, gr.Tab("Explore", id="explore"):
            query = gr.Textbox(elem_id="q")
            run = gr.Button("Run", elem_id="run")
            out = gr.Markdown(elem_id="out")
        run.click(lambda text: f"answer to {text}", query, out)
        target = LinkTarget("explore", query, [], [out], answer, [], [run, query])
        connect_links(demo, tabs, [target], visitor_models, lambda vm: [], "the first example")
    port = free_port()
    # one load at a time (Gradio's default): the first page's load runs (held by the gate), the others wait
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        pages = {}
        for name in ("running", "queued"):  # whose load is running / still waiting when its visitor asks
            pages[name] = context.new_page()
            pages[name].goto(f"http://127.0.0.1:{port}/")
        for name, page in pages.items():
            page.locator("#q textarea").fill(name)
            page.locator("#run").click()
            page.locator("#out").get_by_text(f"answer to {name}").wait_for(timeout=30_000)
        assert not returned.is_set()
        patient = context.new_page()
        patient.goto(f"http://127.0.0.1:{port}/")
        gate.set()
        # the loads answer in order, so the patient page's answer comes after the other two loads returned
        patient.locator("#out").get_by_text("on-load answer to the first example").wait_for(timeout=30_000)
        for name, page in pages.items():
            assert page.locator("#out").inner_text().strip() == f"answer to {name}", name
    finally:
        context.close()
        demo.close()

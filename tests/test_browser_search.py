"""A real browser opens the Search tab, indexes the sample corpus with tiny-a, runs a hybrid
search and reads a result row and the 'why did this match' view back; an uploaded passage whose
lower case is longer than itself is highlighted on the right characters."""

from __future__ import annotations

from conftest import fill_box, show_tab

#: Encoding the 313-passage sample corpus with a random tiny XLM-R model takes tens of
#: seconds (minutes on a busy 2-core machine): every passage activates ~250k vocabulary ids.
SLOW_MS = 900_000
#: The bundled demo model (15k vocabulary) indexes the sample far faster than the tiny models.
DEMO_MODEL = "demo-v26-style (bundled)"  # written here: the test reads what a visitor reads


def _pick_model(page, name: str) -> None:
    """Choose ``name`` in the Search tab's model picker (retrying: a choices refresh may close the list)."""
    from conftest import wait_for
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator("#search-model input")
    for _ in range(5):
        box.click()
        fill_box(box, "demo")
        try:
            page.get_by_role("option", name=name).click(timeout=10_000)
            wait_for(lambda: box.input_value() == name, timeout=10)
            return
        except (PlaywrightTimeout, TimeoutError):
            page.mouse.click(5, 5)
    raise AssertionError(f"could not pick {name!r} in #search-model")


def _row_cells(page, table_id: str, index: int = 0) -> list[str]:
    row = page.locator(f'#{table_id} [role="row"][data-index="{index}"]')  # Gradio 6 virtual grid
    row.wait_for()
    return [c.strip() for c in row.locator('[role="gridcell"]').all_inner_texts()]


def _opt_float(cell: str) -> float | None:
    return None if cell in ("", "None", "nan", "NaN") else float(cell)


def test_search_hybrid_in_browser(page):
    show_tab(page, "Search")
    page.locator("#search-query textarea").wait_for()
    assert "tiny-a" in page.locator("#search-model input").input_value()  # the presets' default
    _pick_model(page, DEMO_MODEL)

    page.locator("#search-index").click()
    page.locator("#search-index-status").get_by_text("Index ready").wait_for(timeout=SLOW_MS)
    index_status = page.locator("#search-index-status").inner_text()
    assert "313 documents" in index_status and "memory" in index_status and "analyzer" in index_status

    page.get_by_role("radio", name="Hybrid (BM25 + sparse)").check()
    fill_box(page.locator("#search-query textarea"), "당뇨병 치료 방법")
    page.locator("#search-run").click()
    status = page.locator("#search-status")
    status.get_by_text("hits in").wait_for(timeout=SLOW_MS)
    text = status.inner_text()
    assert "min-max" in text and "q001" in text  # the query is one of the corpus's judged queries

    # columns: rank, gold, id, title, score, bm25_score, bm25_rank, sparse_score, sparse_rank
    cells = _row_cells(page, "search-results")
    assert cells[0] == "1", cells
    assert cells[2], cells
    assert 0 < float(cells[4]) <= 1.0, cells  # a min-max fused score
    legs = [_opt_float(cells[5]), _opt_float(cells[7])]
    assert any(x is not None and x > 0 for x in legs), cells
    top_id = cells[2]

    page.locator("#search-explain-status").get_by_text(f"Why {top_id} matched").wait_for()
    assert page.locator("#search-passage mark").count() > 0
    token_row = _row_cells(page, "search-explain-table")
    assert float(token_row[3]) > 0  # product of query and document weights

    second = _row_cells(page, "search-results", 1)
    page.locator('#search-results [role="row"][data-index="1"] [role="gridcell"]').nth(2).click()
    page.locator("#search-explain-status").get_by_text(f"Why {second[2]} matched").wait_for()


def test_search_empty_query_message_in_browser(page):
    show_tab(page, "Search")
    fill_box(page.locator("#search-query textarea"), "   ")
    page.locator("#search-run").click()
    page.locator("#search-status").get_by_text("empty").wait_for()


def test_uploaded_passage_highlights_the_right_characters_in_browser(page, tmp_path):
    """A passage whose lower case is longer than itself ("İ".lower() is two characters) renders intact.

    The offset arithmetic itself is checked exactly in tests/test_search_service.py; here the whole
    path (upload, BM25 search, explanation, HTML) shows the mark on 혈당 and the text unchanged.
    """
    import json

    path = tmp_path / "upload.jsonl"
    rows = [{"id": "tr-1", "text": "İİİ 혈당 관리"}, {"id": "ko-2", "text": "전세 보증금"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    show_tab(page, "Search")
    page.locator("#search-upload input[type=file]").set_input_files(str(path))
    page.locator("#search-index-status").get_by_text("2 documents").wait_for()
    page.get_by_role("radio", name="BM25 (Kiwi morphemes)").check()
    fill_box(page.locator("#search-query textarea"), "혈당")
    page.locator("#search-run").click()
    page.locator("#search-status").get_by_text("hits in").wait_for(timeout=SLOW_MS)
    marks = page.locator("#search-passage .search-passage > p:not([style]) mark")  # the passage, not the legend
    marks.first.wait_for()
    assert marks.all_inner_texts() == ["혈당"]
    assert "İİİ 혈당 관리" in page.locator("#search-passage").inner_text()


def test_corpus_report_accordion_and_analyzer_in_the_full_app(page, tmp_path):
    """In the whole app: a typed analyzer reaches the BM25 index, and the Corpus report accordion under the
    Search tab reports over the tab's own upload and model."""
    import json

    from conftest import wait_for

    path = tmp_path / "three.jsonl"
    rows = [
        {"id": "a", "text": "당뇨병 치료는 식이요법과 운동으로 합니다."},
        {"id": "b", "text": "전세 보증금을 돌려받으려면 확정일자가 필요합니다."},
        {"id": "c", "text": "여권 발급에는 신분증과 사진이 필요합니다."},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    show_tab(page, "Search")
    page.locator("#search-upload input[type=file]").set_input_files(str(path))
    page.locator("#search-index-status").get_by_text("3 documents").wait_for()

    box = page.locator("#search-analyzer input")
    fill_box(box, "j, e")
    box.press("Enter")
    page.get_by_role("radio", name="BM25 (Kiwi morphemes)").check()
    fill_box(page.locator("#search-query textarea"), "전세 보증금")
    page.locator("#search-run").click()
    page.locator("#search-status").get_by_text("hits in").wait_for(timeout=SLOW_MS)
    assert "analyzer E,J" in page.locator("#search-status").inner_text()

    page.get_by_text("Corpus report").first.click()
    page.locator("#corpus-report-run").click()
    wait_for(lambda: "posting_entries" in page.locator("#corpus-report-status").inner_text(), timeout=300)
    text = page.locator("#corpus-report-status").inner_text()
    assert "3 documents" in text and "longest posting lists" in text


def test_an_over_long_query_is_refused_with_the_limit_in_browser(page, app_context):
    """A query one character over ctx.limits.max_query_chars gets a message naming the limit and its variable."""
    limit = app_context.limits.max_query_chars
    show_tab(page, "Search")
    page.get_by_role("radio", name="BM25 (Kiwi morphemes)").check()
    fill_box(page.locator("#search-query textarea"), "가" * (limit + 1))
    page.locator("#search-run").click()
    status = page.locator("#search-status")
    status.get_by_text("SPARSE_DEMO_MAX_QUERY_CHARS").wait_for(timeout=SLOW_MS)
    assert f"{limit + 1:,} characters" in status.inner_text() and f"the limit is {limit:,}" in status.inner_text()

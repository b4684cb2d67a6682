"""A real browser opens the Compare tab, compares two models on a Korean query and reads rows back."""

from __future__ import annotations

from conftest import fill_box, show_tab, wait_for_answer

SET = "당뇨병 치료 방법\n전세 보증금 돌려받는 방법\n클라우드 보안 인증"
#: The conftest models are random tiny XLM-R models that activate ~230k ids per query; their
#: first analysis classifies every one of them (seconds, minutes on a busy 2-core machine).
SLOW_MS = 300_000


def _open_compare(page) -> None:
    show_tab(page, "Compare")
    page.locator("#compare-query textarea").wait_for()


def _row_cells(page, table_id: str, index: int = 0) -> list[str]:
    row = page.locator(f'#{table_id} [role="row"][data-index="{index}"]')  # Gradio 6 virtual grid
    row.wait_for()
    return [c.strip() for c in row.locator('[role="gridcell"]').all_inner_texts()]


def test_compare_one_query_in_browser(page):
    _open_compare(page)
    fill_box(page.locator("#compare-query textarea"), "당뇨병 치료 방법")
    page.locator("#compare-run").click()
    wait_for_answer(page, "#compare-status", "input tokens", SLOW_MS)
    cells = _row_cells(page, "compare-aligned")
    # columns: rank_a, token_a, weight_a, rank_b, token_b, weight_b, rank_shift, weight_delta, status, ...
    assert "1" in (cells[0], cells[3]), cells  # the first row holds a rank-1 token of A or B
    weights = [float(c) for c in (cells[2], cells[5]) if c not in ("", "None", "nan", "NaN")]
    assert weights and all(w > 0 for w in weights), cells
    assert cells[8] in {"both", "only_a", "only_b"}, cells
    assert "Jaccard" in page.locator("#compare-metrics").inner_text()


def test_compare_query_set_then_pick_a_row_in_browser(page):
    _open_compare(page)
    show_tab(page, "Query set")
    fill_box(page.locator("#compare-set-text textarea"), SET)
    page.locator("#compare-set-run").click()
    status = wait_for_answer(page, "#compare-set-status", "queries", SLOW_MS)
    assert status.startswith("3 queries"), status
    cells = _row_cells(page, "compare-set-disagreements")
    assert cells[0] == "1", cells  # rank 1 = the query where the pair disagrees most
    query = cells[2]
    assert query in SET.splitlines()
    page.locator('#compare-set-disagreements [role="row"][data-index="0"] [role="gridcell"]').nth(2).click()
    wait_for_answer(page, "#compare-status", "input tokens", SLOW_MS)
    assert page.locator("#compare-query textarea").input_value() == query
    _row_cells(page, "compare-aligned")


def test_limits_are_stated_in_browser(page, app_context, monkeypatch):
    """A too-long query and a set over the batch limit: the visitor reads the limit, nothing is cut silently."""
    from sparse_demo.limits import Limits

    monkeypatch.setattr(app_context, "limits", Limits(max_query_chars=40, max_batch=2))
    _open_compare(page)
    fill_box(page.locator("#compare-query textarea"), "당뇨병 " * 20)
    page.locator("#compare-run").click()
    status = wait_for_answer(page, "#compare-status", "SPARSE_DEMO_MAX_QUERY_CHARS", SLOW_MS)
    assert "the limit is 40" in status, status
    show_tab(page, "Query set")
    fill_box(page.locator("#compare-set-text textarea"), SET)
    page.locator("#compare-set-run").click()
    status = wait_for_answer(page, "#compare-set-status", "queries", SLOW_MS)
    assert "Only the first 2 of 3 queries" in status and "SPARSE_DEMO_MAX_BATCH" in status, status

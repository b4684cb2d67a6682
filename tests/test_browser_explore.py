"""A real browser opens the app, types a Korean query and reads a token row back."""

from __future__ import annotations

import re

from conftest import fill_box


def test_explore_in_browser(page):
    box = page.locator("#explore-query textarea")
    fill_box(box, "당뇨병 치료 방법")
    page.locator("#explore-run").click()
    status = page.locator("#explore-status")
    status.get_by_text("tokens encoded").wait_for()
    table = page.locator("#explore-table")
    first_row = table.locator('[role="row"][data-index="0"]')  # Gradio 6 renders a virtual grid
    first_row.wait_for()
    cells = [c.strip() for c in first_row.locator('[role="gridcell"]').all_inner_texts()]
    assert cells[0] == "1", cells  # rank 1
    assert float(cells[2]) > 0  # weight
    assert cells[3] in {"content", "stopword", "special", "punctuation", "whitespace"}
    assert re.search(r"Stopword leakage", page.locator("#explore-leakage").inner_text())


def test_explore_empty_query_message_in_browser(page):
    fill_box(page.locator("#explore-query textarea"), "   ")
    page.locator("#explore-run").click()
    page.locator("#explore-status").get_by_text("empty").wait_for()

"""A real browser runs the Evaluate tab on the bundled sample and reads the card-layout table back."""

from __future__ import annotations

import re

from conftest import fill_box, show_tab

#: The bundled demo model (15k vocabulary) encodes the sample far faster than the 250k-vocabulary tiny models;
#: Evaluate keeps encodings per model and corpus, so test_browser_screens' run with it is not repeated here.
DEMO_MODEL = "demo-v26-style (bundled)"  # written here: the test reads what a visitor reads


def test_evaluate_sample_in_browser(page):
    show_tab(page, "Evaluate")
    page.locator("#evaluate-models .token", has_text="tiny-a").locator(".token-remove").click()
    fill_box(page.locator("#evaluate-models input"), "demo")
    page.get_by_role("option", name=DEMO_MODEL).click()
    page.locator("#evaluate-run").click()
    status = page.locator("#evaluate-status")
    status.get_by_text("queries evaluated").wait_for(timeout=240_000)
    assert re.search(r"181 queries evaluated over 313 documents", status.inner_text()), status.inner_text()
    first = page.locator('#evaluate-table [role="row"][data-index="0"]')
    first.wait_for()
    cells = [c.strip() for c in first.locator('[role="gridcell"]').all_inner_texts()]
    assert cells[0].startswith("BM25"), cells
    recall_at_1 = float(cells[1].rstrip("%")) / 100
    assert 0.0 < recall_at_1 <= 1.0, cells
    reference = page.locator("#evaluate-reference").inner_text()
    assert "reported on the card's private set" in reference

"""A real browser draws Explore's position heatmap for a query, inside its box, and offers the CSV."""

from __future__ import annotations


def test_heatmap_renders_for_a_query(page):
    page.locator("#explore-query textarea").fill("당뇨병 치료 방법")
    page.get_by_text("Position heatmap: which input positions feed which tokens").click()
    page.locator("#explore-hm-run").click()
    page.locator("#explore-hm-status").get_by_text("input positions").wait_for(timeout=120_000)
    chart = page.locator("#explore-hm-chart")
    chart.locator("canvas.marks, svg.marks").first.wait_for(timeout=60_000)
    box = chart.bounding_box()
    drawn = chart.locator("canvas.marks, svg.marks").first.bounding_box()
    assert box and drawn and drawn["width"] > 100 and drawn["height"] > 100
    assert drawn["x"] + drawn["width"] <= box["x"] + box["width"] + 2  # fits its box's width
    page.locator("#explore-hm-rows").get_by_text("Kiwi morphemes").click()
    page.locator("#explore-hm-run").click()
    page.locator("#explore-hm-status").get_by_text("morpheme rows").wait_for(timeout=120_000)

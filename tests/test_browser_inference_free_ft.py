"""A real browser: the Fine-tune tab's *Inference-free* checkbox trains a Router-folder model offered in Explore."""

from __future__ import annotations

import time

from conftest import show_tab
from test_browser_finetune import _pairs_file, _start


def test_inference_free_finetune_in_browser(page, app_context, tmp_path):
    def routers() -> set:
        return {p.parent for p in app_context.workdir.rglob("router_config.json") if p.stat().st_mtime >= t0}

    t0 = time.time()
    _start(page, _pairs_file(tmp_path / "pairs.jsonl"))
    page.locator("#ft-inference-free input[type=checkbox]").check()
    page.locator("#ft-start").click()
    page.locator("#ft-status").get_by_text("Done").wait_for(timeout=240_000)
    assert "added to your model list" in page.locator("#ft-status").inner_text()
    page.locator("#ft-metrics [role=gridcell]", has_text="hybrid").first.wait_for()
    (folder,) = routers()  # the run saved a sentence-transformers Router folder (the checkbox reached the trainer)
    assert (folder / "query_0_SparseStaticEmbedding" / "model.safetensors").is_file()
    show_tab(page, "Explore")
    page.locator("#explore-model input").click()
    page.locator("#explore-model [role=option]", has_text="fine-tuned").first.wait_for()

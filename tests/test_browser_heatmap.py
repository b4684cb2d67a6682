"""A real browser draws Explore's position heatmap for a query, inside its box, and offers the CSV."""

from __future__ import annotations

from conftest import fill_box


def test_heatmap_renders_for_a_query(page):
    fill_box(page.locator("#explore-query textarea"), "당뇨병 치료 방법")
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


def test_an_inference_free_model_shows_its_query_side_and_its_document_side(page, tmp_path):
    import pytest

    pytest.importorskip("sentence_transformers")
    import torch
    from conftest import KOREAN_TEXTS
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import (
        MLMTransformer,
        Router,
        SparseStaticEmbedding,
        SpladePooling,
    )

    from sparse_demo.modeling import make_mlm, train_tokenizer

    tok = train_tokenizer(KOREAN_TEXTS * 5, vocab_size=300)
    base = tmp_path / "mlm"
    make_mlm(tok, "tiny", seed=2).save_pretrained(base)
    tok.save_pretrained(base)
    weight = torch.rand(len(tok.get_vocab()), generator=torch.Generator().manual_seed(3)) * 3
    router = Router.for_query_document(
        query_modules=[SparseStaticEmbedding(tokenizer=tok, weight=weight, frozen=True)],
        document_modules=[MLMTransformer(str(base)), SpladePooling("max")],
    )
    folder = tmp_path / "inference-free"
    SparseEncoder(modules=[router], device="cpu").save(str(folder))

    fill_box(page.locator("#explore-folder textarea, #explore-folder input").first, str(folder))
    fill_box(page.locator("#explore-query textarea"), "당뇨병 치료 방법")
    page.locator("#explore-run").click()
    status = page.locator("#explore-status")
    status.get_by_text("token weights").wait_for(timeout=120_000)
    page.locator("#explore-side").get_by_text("document", exact=True).click()
    status.get_by_text("document side").wait_for(timeout=120_000)
    first = page.locator('#explore-table [role="row"][data-index="0"] [role="gridcell"]').first
    assert first.inner_text().strip() == "1"

"""Korean neural sparse explorer: the Gradio app.

``build_app()`` returns the ``gr.Blocks``; ``python app.py`` serves it (also how a Hugging Face
Space starts it). All logic lives in the ``sparse_demo`` package; the tabs only wire widgets.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import gradio as gr

from sparse_demo.ui import compare, explore
from sparse_demo.ui.common import AppContext

logger = logging.getLogger("sparse_demo.app")

ASSETS = Path(__file__).resolve().parent / "assets"
INTRO = """
# Korean neural sparse explorer
See what a SPLADE encoder activates for a Korean query (`w = max over positions of log(1 + ReLU(MLM logits))`),
where each token came from, and how much weight leaks to stopwords and special tokens.
"""


def model_banner(ctx: AppContext) -> str:
    """Try the default model once and describe every model's state (loaded / failed and why)."""
    default = ctx.settings.default_model
    if default:
        _, error = ctx.registry.try_get(default)
        if error:
            logger.warning("Default model unavailable: %s", error)
    table = ctx.registry.status_markdown()
    failed = [s for s in ctx.registry.status() if s.error]
    head = ""
    if failed:
        head = (
            "⚠️ **Some models could not be loaded** (see the reasons below). Every tab still works with "
            "any model that loads: type a local model folder in the *local folder* box.\n\n"
        )
    return head + table


def build_app(ctx: AppContext | None = None) -> gr.Blocks:
    """Build the whole app. ``ctx`` holds the shared settings and model registry."""
    ctx = ctx or AppContext.create()
    with gr.Blocks(title="Korean neural sparse explorer") as demo:
        visitor_models = gr.State({})  # this visitor's own (fine-tuned) models: name -> folder
        gr.Markdown(INTRO)
        with gr.Accordion("Models", open=False):
            banner = gr.Markdown(ctx.registry.status_markdown(), elem_id="model-banner")
            refresh = gr.Button("Refresh model status", size="sm")
        with gr.Tab("Explore", elem_id="tab-explore"):
            explore.build_tab(ctx, visitor_models)
        with gr.Tab("Compare", elem_id="tab-compare"):
            compare.build_tab(ctx, visitor_models)
        refresh.click(lambda: ctx.registry.status_markdown(), None, banner)
        demo.load(lambda: model_banner(ctx), None, banner)
    return demo


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOGLEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    demo = build_app()
    css_path = ASSETS / "style.css"
    demo.queue(default_concurrency_limit=2).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        css_paths=[css_path] if css_path.exists() else None,
    )


if __name__ == "__main__":
    main()

"""Korean neural sparse explorer: the Gradio app.

``build_app()`` returns the ``gr.Blocks``; ``python app.py`` serves it (also how a Hugging Face
Space starts it). All logic lives in the ``sparse_demo`` package; the tabs only wire widgets.

What a visitor leaves behind goes when the visitor leaves (``demo.unload`` -> ``AppContext.forget_visitor``:
their models, downloads, tuned weights and Gradio's cached copies of their files). Gradio's own cache
is also swept of files older than :data:`CACHE_MAX_AGE_S` every :data:`CACHE_SWEEP_S` seconds and emptied at
shutdown (``gr.Blocks(delete_cache=...)``); SIGTERM / SIGINT remove the app's work folder before Gradio
shuts down (:func:`install_shutdown`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path

import gradio as gr

from sparse_demo.config import server_options
from sparse_demo.korean import morphemes
from sparse_demo.offline import LOCAL_MODEL_NAME, build_local_model
from sparse_demo.space import gpu
from sparse_demo.ui import compare, evaluate, explore, finetune, links, search
from sparse_demo.ui.common import (
    EXAMPLE_QUERIES,
    AppContext,
    message,
    model_dropdowns,
    picker_updates,
    register_builtin_models,
)

logger = logging.getLogger("sparse_demo.app")

ASSETS = Path(__file__).resolve().parent / "assets"
#: Gradio's cache is swept every this many seconds of files older than :data:`CACHE_MAX_AGE_S` (a safety
#: net: a visitor's files go when the visitor leaves) and emptied at shutdown.
CACHE_SWEEP_S = 3_600
CACHE_MAX_AGE_S = 24 * 3_600
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
            "any model that loads: the bundled demo model is selected instead, a local model folder can be typed "
            f"in the *local folder* box, and the demo model can be retrained here (**{LOCAL_MODEL_NAME}**, button "
            "below).\n\n"
        )
    return ctx.redact(head + table)


def build_local(ctx: AppContext, progress=None) -> str:
    """Build (or reuse) the small local model and describe the models afterwards."""

    def report(ev: dict) -> None:
        if progress is not None and ev.get("phase") == "train" and ev.get("max_steps"):
            progress(min(1.0, ev["step"] / ev["max_steps"]), desc=f"training step {ev['step']}/{ev['max_steps']}")

    try:
        folder = build_local_model(ctx.registry, progress=report)
    except Exception as exc:  # noqa: BLE001 - shown to the user
        logger.exception("Building the local model failed")
        return message(f"Building the local model failed: {exc}", "error") + "\n\n" + ctx.registry.status_markdown()
    return (
        message(f"**{LOCAL_MODEL_NAME}** is ready ({ctx.show_path(folder)}); pick it in any tab.")
        + "\n\n"
        + ctx.registry.status_markdown()
    )


def refresh_status(ctx: AppContext) -> str:
    """*Refresh model status*: forget failures, try the default model again, describe every model."""
    ctx.registry.refresh()
    return model_banner(ctx)


def build_app(ctx: AppContext | None = None) -> gr.Blocks:
    """Build the whole app. ``ctx`` holds the shared settings and model registry."""
    ctx = ctx or AppContext.create()
    register_builtin_models(ctx.registry)
    ctx.default_model()  # decided once: the configured default where it loads, else the demo model
    with gr.Blocks(title="Korean neural sparse explorer", delete_cache=(CACHE_SWEEP_S, CACHE_MAX_AGE_S)) as demo:
        # this visitor's own (fine-tuned) models: name -> private folder; removed when the visitor leaves
        visitor_models = gr.State({}, delete_callback=lambda vm: ctx.forget_visitor(None, vm))
        gr.Markdown(INTRO)
        with gr.Accordion("Models", open=False):
            banner = gr.Markdown(ctx.registry.status_markdown(), elem_id="model-banner")
            with gr.Row():
                refresh = gr.Button("Refresh model status", size="sm")
                local = gr.Button(
                    "Retrain the V26-style demo model here (about 12 minutes on CPU, cached)",
                    size="sm",
                    elem_id="build-local",
                )
        with gr.Tabs(elem_id="main-tabs") as tabs:
            with gr.Tab("Explore", id="explore", elem_id="tab-explore"):
                targets = [explore.build_tab(ctx, visitor_models)]
                links.copy_link(targets[-1])
            with gr.Tab("Compare", id="compare", elem_id="tab-compare"):
                targets.append(compare.build_tab(ctx, visitor_models))
                links.copy_link(targets[-1])
            with gr.Tab("Search", id="search", elem_id="tab-search"):
                targets.append(search.build_tab(ctx, visitor_models))
                links.copy_link(targets[-1])
            with gr.Tab("Fine-tune", id="finetune", elem_id="tab-finetune"):
                trained = finetune.build_tab(ctx, visitor_models)
                targets.append(_target_by_ids(demo, "finetune", None, ["ft-base"]))
                links.copy_link(targets[-1])
            with gr.Tab("Evaluate", id="evaluate", elem_id="tab-evaluate"):
                evaluation = evaluate.build_tab(ctx, visitor_models)
                targets.append(_target_by_ids(demo, "evaluate", None, ["evaluate-models"]))
                links.copy_link(targets[-1])
        evaluate.connect_query(demo, evaluation)  # a wins/losses query opens in Search and Compare
        # a link (?tab=...&q=...&a=...&b=...) opens its view with the answer; no link: Explore's first example
        links.connect_links(demo, tabs, targets, visitor_models, ctx.model_choices, EXAMPLE_QUERIES[0], gpu)
        pickers = model_dropdowns(demo)

        def refresh_pickers(vm):
            return picker_updates(ctx, pickers, vm)

        def on_unload(request: gr.Request):
            session = getattr(request, "session_hash", None)
            finetune.visitor_left(session)  # cancel their training first: a late save is then deleted
            ctx.forget_visitor(session)

        refresh.click(lambda: refresh_status(ctx), None, banner).then(refresh_pickers, visitor_models, pickers)
        demo.load(lambda: model_banner(ctx), None, banner)
        demo.load(refresh_pickers, visitor_models, pickers)
        for picker in pickers:  # opening a picker shows models built since the page loaded
            picker.focus(
                lambda vm, _p=picker: picker_updates(ctx, [_p], vm)[0],
                visitor_models,
                picker,
                concurrency_limit=None,
                show_progress="hidden",
            )  # never waits behind long jobs
        demo.unload(on_unload)

        def on_local(progress=gr.Progress()):
            return build_local(ctx, progress)

        local.click(on_local, None, banner).then(refresh_pickers, visitor_models, pickers)
        trained.then(refresh_pickers, visitor_models, pickers)
    return demo


def _target_by_ids(demo: gr.Blocks, tab: str, query_id: str | None, picker_ids: list[str]) -> links.LinkTarget:
    """A link target for a tab that only fills its boxes (no answer), found by the widgets' ``elem_id``."""
    found = {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    pickers = [(found[i], None) for i in picker_ids if isinstance(found.get(i), gr.Dropdown)]
    query = found.get(query_id) if query_id else None
    return links.LinkTarget(tab, query, pickers, defaults=[p.value for p, _ in pickers])


def warm_up(ctx: AppContext, built: threading.Event | None = None) -> None:
    """Load Kiwi, then (once ``built`` is set: the app has registered its models and picked the default)
    answer Explore's first example once with the default model, so the first visitor's first answer does not
    wait on start-up (Kiwi alone takes seconds). Failures are logged, never raised."""
    started = time.monotonic()
    try:
        morphemes("당뇨병 치료 방법")  # loads Kiwi
        kiwi_s = time.monotonic() - started
        if built is not None:
            built.wait()
        result = explore.explore_query(ctx, EXAMPLE_QUERIES[0], ctx.default_model())
        logger.info(
            "Warm-up: Kiwi %.1f s, first Explore answer ready %.1f s after start (%s)",
            kiwi_s,
            time.monotonic() - started,
            "ok" if result.analysis is not None else result.status[:200],
        )
    except Exception:  # noqa: BLE001 - warming is best effort
        logger.exception("Warm-up failed")


def start_warm_up(ctx: AppContext, built: threading.Event | None = None) -> threading.Thread:
    """Run :func:`warm_up` in a daemon thread (neither building the app nor the server waits for it)."""
    thread = threading.Thread(target=warm_up, args=(ctx, built), name="warm-up", daemon=True)
    thread.start()
    return thread


def install_shutdown(demo: gr.Blocks, ctx: AppContext) -> None:
    """On SIGTERM / SIGINT: remove the work folder (visitors' models and downloads), close the server
    (Gradio's shutdown, which empties its cache of this app's files), then chain to the previous handler
    (SIGINT: ``KeyboardInterrupt``; SIGTERM: exit status 143). Call from the main thread."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def stop(signum: int, frame) -> None:
        logger.info("Signal %d: removing the work folder and shutting down", signum)
        ctx.remove_workdir()
        try:
            demo.close()
        except Exception:  # noqa: BLE001 - shutting down anyway
            logger.exception("Closing the server failed")
        before = previous.get(signum)
        if callable(before):
            before(signum, frame)
        raise SystemExit(128 + signum)

    for sig in previous:
        signal.signal(sig, stop)


#: How many runs of one event (e.g. two visitors' Compare clicks) the server answers at once.
QUEUE_CONCURRENCY = 2


def serve(demo: gr.Blocks, **launch):
    """Queue and launch ``demo`` with the app's stylesheet, as ``python app.py`` serves it (the tests' servers of
    the whole app call this too, so they show the screens a visitor sees)."""
    css_path = ASSETS / "style.css"
    launch.setdefault("css_paths", [css_path] if css_path.exists() else None)
    return demo.queue(default_concurrency_limit=QUEUE_CONCURRENCY).launch(**launch)


def main() -> None:
    server = server_options()
    logging.basicConfig(level=server.log_level, format="%(asctime)s %(name)s %(message)s")
    ctx = AppContext.create()
    built = threading.Event()
    start_warm_up(ctx, built)  # Kiwi loads while the app is built and its default model loaded
    demo = build_app(ctx)
    built.set()
    install_shutdown(demo, ctx)
    serve(demo, server_name=server.host, server_port=server.port)


if __name__ == "__main__":
    main()

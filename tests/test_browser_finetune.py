"""A real browser on the Fine-tune tab.

- ``test_finetune_in_browser``: upload pairs, train a tiny model, see the result and the model in a picker.
- On the app in ``public`` mode (a module fixture, 2 models per visitor):
  a closed tab cancels its training within seconds and its files go; five quick *Train* clicks in one
  session keep at most the limit; after a fine-tune no visible text and no file in the downloaded zip
  holds a server path; *Cancel* is enabled only while a run is on; a reload warns once a model exists.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from conftest import fill_box, free_port, show_tab, wait_for, watch_page

TOPICS = [
    ("당뇨병 치료", "당뇨병 치료는 식이요법과 운동, 인슐린 주사로 혈당을 관리합니다."),
    ("고혈압 음식", "고혈압 환자는 소금을 줄이고 채소와 과일을 많이 먹어야 합니다."),
    ("전세 보증금", "전세 계약 때 확정일자를 받으면 보증금을 보호받을 수 있습니다."),
    ("여권 발급", "여권을 새로 발급받으려면 신분증과 여권용 사진을 준비해야 합니다."),
    ("감기 증상", "감기에 걸리면 콧물과 기침이 나고 목이 아픈 증상이 나타납니다."),
    ("연말정산 공제", "연말정산에서 의료비와 교육비는 세액공제를 받을 수 있습니다."),
    ("클라우드 보안", "클라우드 서비스는 접근 권한 관리와 암호화로 보안을 지킵니다."),
    ("김치찌개 끓이는 법", "김치찌개는 잘 익은 김치와 돼지고기를 볶은 뒤 물을 붓고 끓입니다."),
    ("주택담보대출 금리", "주택담보대출 금리는 은행마다 다르므로 여러 곳을 비교해야 합니다."),
    ("운전면허 갱신", "운전면허를 갱신하려면 적성검사를 받고 사진과 신분증을 가져가야 합니다."),
    ("개인정보 보호", "개인정보 보호법은 개인의 정보를 수집하고 이용하는 기준을 정합니다."),
]  # at least 10 distinct passages, so the trainer holds some out and reports before/after metrics
SUFFIXES = ("", "방법", "정보", "알려줘")


def _pairs_file(path: Path, variants: int = len(SUFFIXES)) -> Path:
    suffixes = list(SUFFIXES) + [f"질문 {i}" for i in range(max(0, variants - len(SUFFIXES)))]
    rows = [{"query": f"{q} {s}", "positive": p} for q, p in TOPICS for s in suffixes[:variants]]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def _start(page, pairs: Path, seconds: int = 20) -> None:
    show_tab(page, "Fine-tune")
    page.locator("#ft-pairs input[type=file]").set_input_files(str(pairs))
    page.locator("#ft-size").get_by_text("tiny").click()
    limit = page.locator("#ft-time input[type=number]")
    fill_box(limit, str(seconds))
    limit.press("Enter")


def test_finetune_in_browser(page, tmp_path):
    pairs = _pairs_file(tmp_path / "pairs.jsonl")
    _start(page, pairs)
    assert page.locator("#ft-cancel").is_disabled()  # nothing runs yet
    page.locator("#ft-start").click()
    page.locator("#ft-status").get_by_text("Done").wait_for(timeout=240_000)
    text = page.locator("#ft-status").inner_text()
    assert "pairs" in text and "added to your model list" in text
    page.locator("#ft-metrics [role=gridcell]", has_text="hybrid").first.wait_for()
    # the new model is offered in the Explore tab's picker of this visitor
    show_tab(page, "Explore")
    page.locator("#explore-model input").click()
    page.locator("#explore-model [role=option]", has_text="fine-tuned").first.wait_for()


# ---------------------------------------------------------------------- public mode, one app for the module
@pytest.fixture(scope="module")
def public_app(app_context):
    import dataclasses

    from app import build_app, serve
    from sparse_demo.limits import Limits
    from sparse_demo.ui.common import AppContext

    settings = dataclasses.replace(app_context.settings, model_sources="public")
    ctx = AppContext.create(settings, limits=Limits(visitor_models=2, public_train_seconds=300))
    demo = build_app(ctx)
    port = free_port()
    serve(demo, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield {"url": f"http://127.0.0.1:{port}/", "ctx": ctx}
    demo.close()


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    watch_page(page)
    page.goto(url)
    page.locator("#explore-query textarea").wait_for()
    return context, page


def _visitor_folders(ctx) -> set[Path]:
    root = ctx.workdir / "visitors"
    return {p for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def _models(folder: Path) -> list[Path]:
    return [p for p in folder.glob("finetune*") if p.is_dir()]


def test_a_closed_tab_cancels_its_training_and_its_files_go(browser, public_app, tmp_path):
    from sparse_demo.train import training_busy
    from sparse_demo.ui.finetune import RUNS

    ctx = public_app["ctx"]
    before = _visitor_folders(ctx)
    context, page = _open(browser, public_app["url"])
    _start(page, _pairs_file(tmp_path / "many.jsonl", variants=40), seconds=300)
    fill_box(page.get_by_label("epochs"), "200")  # would train for the whole 300 s if nobody stopped it
    page.locator("#ft-start").click()
    page.locator("#ft-status").get_by_text("step ").wait_for(timeout=300_000)
    assert page.locator("#ft-cancel").is_enabled()  # a run is on
    (folder,) = _visitor_folders(ctx) - before
    session = folder.name
    assert RUNS.active(session) and training_busy()
    context.close()  # the visitor closes the tab while the model trains
    wait_for(lambda: not RUNS.active(session) and not training_busy(), timeout=45, interval=0.5)
    wait_for(lambda: not folder.exists() or not any(folder.iterdir()), timeout=30, interval=0.5)


def test_five_quick_train_clicks_keep_at_most_the_limit(browser, public_app, tmp_path):
    from sparse_demo.ui.finetune import RUNS

    ctx = public_app["ctx"]
    before = _visitor_folders(ctx)
    context, page = _open(browser, public_app["url"])
    try:
        _start(page, _pairs_file(tmp_path / "pairs.jsonl"))
        # five clicks in one JavaScript turn, then five more by the mouse: one session, as fast as it gets
        page.evaluate("() => { const b = document.querySelector('#ft-start'); for (let i = 0; i < 5; i++) b.click(); }")
        for _ in range(5):
            page.locator("#ft-start").click()
        # (ten clicks are ten concurrent events writing one status box, so its text is no clock: the folder is)
        (folder,) = wait_for(lambda: _visitor_folders(ctx) - before, timeout=300, interval=0.5)
        session = folder.name
        wait_for(lambda: not RUNS.active(session), timeout=600, interval=1)
        # a later click once the limit is reached is refused by name
        for _ in range(3):
            page.locator("#ft-status").get_by_text("Done").or_(page.locator("#ft-status").get_by_text("⛔")).wait_for(
                timeout=300_000
            )
            if len(_models(folder)) >= 2:
                break
            page.locator("#ft-start").click()
            wait_for(lambda: RUNS.active(session), timeout=60, interval=0.2)
            wait_for(lambda: not RUNS.active(session), timeout=600, interval=1)
        assert len(_models(folder)) == 2
        page.locator("#ft-start").click()
        page.locator("#ft-status").get_by_text("SPARSE_DEMO_VISITOR_MODELS=2").wait_for(timeout=60_000)
        assert len(_models(folder)) == 2
    finally:
        context.close()


def test_public_page_and_zip_show_no_server_path(browser, public_app, tmp_path):
    ctx = public_app["ctx"]
    before = _visitor_folders(ctx)
    context, page = _open(browser, public_app["url"])
    try:
        _start(page, _pairs_file(tmp_path / "my-secret-project.jsonl"))
        assert page.evaluate("() => window.__sparseDemoUnloadGuard === undefined")  # nothing to lose yet
        page.locator("#ft-start").click()
        page.locator("#ft-status").get_by_text("Done").wait_for(timeout=300_000)
        (folder,) = _visitor_folders(ctx) - before
        session = folder.name
        page.locator("#ft-metrics [role=gridcell]", has_text="hybrid").first.wait_for()
        assert page.locator("#ft-cancel").is_disabled()  # nothing runs any more
        href = page.locator("#ft-zip a").first.get_attribute("href")
        url = href if href.startswith("http") else public_app["url"].rstrip("/") + href
        assert _status(url) == 200  # downloadable while its owner is here
        with page.expect_download() as info:
            page.locator("#ft-zip a").first.click()
        zipped = Path(info.value.path())
        texts = {}
        for tab in ("Explore", "Compare", "Search", "Fine-tune", "Evaluate"):
            show_tab(page, tab)
            page.wait_for_timeout(300)
            texts[f"page, {tab} tab"] = page.locator("body").inner_text()
        with zipfile.ZipFile(zipped) as zf:
            for member in zf.namelist():
                texts[f"zip {member}"] = member + zf.read(member).decode("utf-8", errors="replace")
        texts["zip name"] = info.value.suggested_filename
        needles = [str(ctx.workdir), ctx.workdir.name, session, "/tmp/", "visitors/", str(tmp_path)]
        found = [f"{n!r} in {where}" for where, text in texts.items() for n in needles if n in text]
        # the upload's name is the visitor's own (shown in its upload box), but it is not written into the model
        found += [
            f"upload name in {where}"
            for where, text in texts.items()
            if where.startswith("zip") and "my-secret-project" in text
        ]
        assert not found, found
        # a reload now would delete the model: the page asks first
        assert page.evaluate("() => window.__sparseDemoUnloadGuard === true")
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.type), d.dismiss()))  # "stay on the page"
        with pytest.raises(PlaywrightTimeout):  # the reload waits on the question, then is called off
            page.reload(timeout=5_000)
        assert dialogs == ["beforeunload"]
        assert page.evaluate("() => window.__sparseDemoUnloadGuard === true")  # the page was not reloaded
    finally:
        context.close()
    # the visitor left: the model, its zip and Gradio's copy of it are gone; its download URL answers no more
    wait_for(lambda: not _models(folder) and not list(folder.glob("*.zip")), timeout=60, interval=0.5)
    cached = Path(url.split("file=", 1)[1])
    wait_for(lambda: not cached.exists() and _status(url) in (403, 404), timeout=30, interval=0.5)


def _status(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code

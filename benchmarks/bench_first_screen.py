"""Time from ``python app.py`` to the first answer on screen, in a real browser, with nothing clicked.

Starts ``python app.py`` on a free port (the presets as configured: offline, V26 and V25 fail and the
bundled V26-style demo model answers), opens the page in headless Chromium as soon as the port
answers, and waits for Explore's on-load answer (the status says "tokens encoded" and the token table
has a row). Prints the seconds to the server's first HTTP answer and to the answer on screen, the
model that answered and the expansions among its top-20 tokens. Runs ``--runs`` times (a fresh process
each).

Usage::

    python benchmarks/bench_first_screen.py [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout:.0f} s")


def one_run(browser, timeout: float) -> dict:
    from load_test import start_app

    proc, url, started = start_app({})
    try:
        _wait_http(url, timeout)
        served = time.monotonic() - started
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#explore-status").get_by_text("tokens encoded").wait_for(timeout=timeout * 1000)
        page.locator('#explore-table [role="row"][data-index="0"]').wait_for(timeout=timeout * 1000)
        on_screen = time.monotonic() - started
        status = page.locator("#explore-status").inner_text()
        header = [c.strip() for c in page.locator('#explore-table [role="columnheader"]').all_inner_texts()]
        expansions = []
        for i in range(20):
            row = page.locator(f'#explore-table [role="row"][data-index="{i}"]')
            if not row.count():
                break
            cells = [c.strip() for c in row.locator('[role="gridcell"]').all_inner_texts()]
            if cells[header.index("origin")] == "expansion":
                expansions.append(cells[header.index("token")])
        page.close()
        first_line = status.splitlines()[0]
        return {"served_s": served, "on_screen_s": on_screen, "status": first_line, "expansions": expansions}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as pw:
        # the system Chromium, as the browser tests use (.ci/run installs it), else Playwright's own download
        system = shutil.which("chromium") or shutil.which("chromium-browser")
        browser = pw.chromium.launch(executable_path=system) if system else pw.chromium.launch()
        for i in range(args.runs):
            r = one_run(browser, args.timeout)
            runs.append(r)
            print(
                f"run {i + 1}: server answers after {r['served_s']:.1f} s, first answer on screen after "
                f"{r['on_screen_s']:.1f} s; {r['status']}; expansions in the top 20: {', '.join(r['expansions'])}",
                flush=True,
            )
        browser.close()
    print(
        f"median of {len(runs)}: server {statistics.median(r['served_s'] for r in runs):.1f} s, "
        f"answer on screen {statistics.median(r['on_screen_s'] for r in runs):.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Load test: N concurrent visitors drive the running app through ``gradio_client`` while one fine-tunes.

Every visitor is its own Gradio session (one ``gradio_client.Client``) and loops for ``--seconds``:
Explore (Analyze), Compare (one query) and Search (its own index of the sample corpus, built once,
then queries). Every answer is checked:

- Explore: the status names the expected model and says "tokens encoded", and every token's
  ``source_text`` is a piece of *this visitor's* query (an answer computed for another visitor's
  query would show foreign text: a cross-visitor leak);
- Compare: no error, the aligned table has rows;
- Search: "hits in" and a results table.

One extra visitor fine-tunes a tiny model meanwhile. When it is done, every other visitor checks that
the new model is not in its pickers and that typing its name or its folder does not load it (leaks).

Prints p50 / p95 latency per handler, errors, leaks and the server's peak and end RSS; exits 1 on any error or
leak. By default the script starts ``python app.py`` itself (and reports the time from the start of
the process to the first answer); ``--url`` drives a server that is already running (``--pid`` then
names its process for the RSS figure).

Example:
    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/load_test.py --visitors 8 --seconds 120
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("load_test")

QUERIES = [
    "당뇨병 치료 방법",
    "전세 보증금 돌려받는 방법",
    "주택담보대출 금리 비교",
    "연말정산 의료비 공제",
    "클라우드 보안 인증",
    "여권 발급에 필요한 서류",
    "고혈압에 좋은 음식",
    "김치찌개 맛있게 끓이는 법",
    "감기 증상과 치료",
    "개인정보 보호법 기준",
    "자동차 보험 갱신",
    "아파트 관리비 절약",
]


# ---------------------------------------------------------------------- the app's endpoints
@dataclass
class Endpoint:
    """One event of the app: its API name, and its inputs / outputs as (elem_id, type, default value)."""

    api_name: str
    inputs: list[tuple[str | None, str, Any]]
    outputs: list[tuple[str | None, str]]

    def args(self, values: dict[str, Any]) -> list[Any]:
        """Positional arguments: the given values by elem_id, defaults elsewhere, States left out."""
        return [values.get(eid, default) for eid, kind, default in self.inputs if kind != "state"]

    def result(self, raw: Any) -> dict[str, Any]:
        """The outputs by elem_id (States are not returned to a client)."""
        visible = [o for o in self.outputs if o[1] != "state"]
        raw = raw if isinstance(raw, (list, tuple)) else [raw]
        return {eid or f"#{i}": value for i, ((eid, _), value) in enumerate(zip(visible, raw, strict=False))}


def endpoints(url: str) -> dict[str, Endpoint]:
    """``"<elem_id>.<event>"`` -> :class:`Endpoint`, read from the app's ``/config``."""
    with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=30) as resp:
        cfg = json.load(resp)
    comps = {c["id"]: c for c in cfg["components"]}

    def describe(i: int) -> tuple[str | None, str, Any]:
        c = comps.get(i, {})
        props = c.get("props", {})
        return props.get("elem_id"), c.get("type", ""), props.get("value")

    out = {}
    for dep in cfg["dependencies"]:
        if not dep.get("api_name") or dep.get("api_visibility") == "private":  # private: not callable by clients
            continue
        for target, event in dep["targets"]:
            eid = comps.get(target, {}).get("props", {}).get("elem_id") if target is not None else None
            if eid:
                out[f"{eid}.{event}"] = Endpoint(
                    dep["api_name"], [describe(i) for i in dep["inputs"]], [describe(i)[:2] for i in dep["outputs"]]
                )
    return out


def table_rows(value: Any) -> list[dict]:
    """Rows of a Dataframe output as dicts (gradio_client returns ``{"headers", "data"}``)."""
    if isinstance(value, dict) and "headers" in value:
        return [dict(zip(value["headers"], row, strict=False)) for row in value.get("data", [])]
    return []


# ---------------------------------------------------------------------- a visitor
@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def time(self, handler: str, seconds: float) -> None:
        with self.lock:
            self.latencies[handler].append(seconds)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)
        logger.error("%s", text)

    def leak(self, text: str) -> None:
        with self.lock:
            self.leaks.append(text)
        logger.error("LEAK %s", text)


class Visitor:
    """One browser session, driven through gradio_client."""

    def __init__(self, url: str, eps: dict[str, Endpoint], model: str, stats: Stats, number: int) -> None:
        from gradio_client import Client

        self.client = Client(url, verbose=False)
        self.eps, self.model, self.stats, self.number = eps, model, stats, number
        self.rng = random.Random(number)
        self.indexed = False

    def call(self, key: str, values: dict[str, Any], handler: str) -> dict[str, Any] | None:
        ep = self.eps[key]
        t0 = time.perf_counter()
        try:
            raw = self.client.predict(*ep.args(values), api_name=f"/{ep.api_name}")
        except Exception as exc:  # noqa: BLE001 - every failure is counted
            self.stats.error(f"visitor {self.number} {handler}: {type(exc).__name__}: {exc}")
            return None
        self.stats.time(handler, time.perf_counter() - t0)
        return ep.result(raw)

    def query(self) -> str:
        # a text only this visitor sends: its number written out in Korean digits plus a common query
        return f"{self.rng.choice(QUERIES)} {'영일이삼사오육칠팔구'[self.number % 10]}번 방문자"

    def explore(self, folder: str = "") -> dict[str, Any] | None:
        q = self.query()
        out = self.call(
            "explore-run.click",
            {"explore-query": q, "explore-model": self.model, "explore-folder": folder, "explore-topk": 20},
            "explore",
        )
        if out is None:
            return None
        if folder:
            return out
        status = str(out.get("explore-status", ""))
        if "tokens encoded" not in status or self.model not in status:
            self.stats.error(f"visitor {self.number} explore: unexpected status {status[:200]!r}")
            return out
        rows = table_rows(out.get("explore-table"))
        if not rows:
            self.stats.error(f"visitor {self.number} explore: empty table")
        for row in rows:
            piece = str(row.get("source_text") or "").strip()
            if piece and row.get("category") != "special" and piece not in q:
                self.stats.leak(f"visitor {self.number} explore: token source {piece!r} not in its query {q!r}")
        return out

    def compare(self) -> None:
        out = self.call(
            "compare-run.click",
            {
                "compare-query": self.query(),
                "compare-a-model": self.model,
                "compare-b-model": self.model,
                "compare-topk": 20,
            },
            "compare",
        )
        if out is None:
            return
        status = str(out.get("compare-status", ""))
        if status.startswith("⛔") or not table_rows(out.get("compare-aligned")):
            self.stats.error(f"visitor {self.number} compare: {status[:200]!r}")

    def search(self) -> None:
        if not self.indexed:
            out = self.call("search-index.click", {"search-model": self.model, "search-backend": "memory"}, "index")
            if out is None:
                return
            status = str(out.get("search-index-status", ""))
            if "Index ready" not in status:
                self.stats.error(f"visitor {self.number} index: {status[:200]!r}")
                return
            self.indexed = True
        out = self.call(
            "search-run.click",
            {"search-query": self.query(), "search-model": self.model, "search-backend": "memory"},
            "search",
        )
        if out is None:
            return
        status = str(out.get("search-status", ""))
        if not re.search(r"\d+ hits\W* in", status) or not table_rows(out.get("search-results")):
            self.stats.error(f"visitor {self.number} search: {status[:200]!r}")

    def picker_choices(self) -> list[str]:
        out = self.call("explore-model.focus", {}, "refresh")
        update = next(iter(out.values()), {}) if out else {}
        choices = update.get("choices", []) if isinstance(update, dict) else []
        return [c[0] if isinstance(c, (list, tuple)) else c for c in choices]

    def check_cannot_reach(self, name: str, folder: str | None) -> None:
        if any(name == c for c in self.picker_choices()):
            self.stats.leak(f"visitor {self.number} sees {name!r} in its picker")
        for typed in [name] + ([folder] if folder else []):
            out = self.explore(folder=typed)
            if out is not None and "tokens encoded" in str(out.get("explore-status", "")):
                self.stats.leak(f"visitor {self.number} loaded another visitor's model by typing {typed!r}")

    def run(self, until: float, stop: threading.Event) -> None:
        actions = [self.explore, self.compare, self.search]
        while time.monotonic() < until and not stop.is_set():
            self.rng.choice(actions)()


def fine_tune(url: str, eps: dict[str, Endpoint], seconds: float, stats: Stats) -> tuple[str | None, str | None]:
    """One visitor trains a tiny model from the bundled pairs; returns its model name and folder (if shown)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    ep = eps["ft-start.click"]
    values = {"ft-base": "new", "ft-size": "tiny", "ft-time": max(10, int(seconds))}
    t0 = time.perf_counter()
    try:
        raw = client.submit(*ep.args(values), api_name=f"/{ep.api_name}").result(timeout=seconds + 600)
    except Exception as exc:  # noqa: BLE001
        stats.error(f"fine-tune: {type(exc).__name__}: {exc}")
        return None, None
    stats.time("fine-tune", time.perf_counter() - t0)
    status = str(ep.result(raw).get("ft-status", ""))
    name = re.search(r"as \*\*(fine-tuned [^*]+)\*\*", status)
    folder = re.search(r"Saved as `([^`]+)`", status)
    if not name:
        stats.error(f"fine-tune: no model in status {status[:300]!r}")
        return None, None
    return name.group(1), (folder.group(1) if folder else None)


# ---------------------------------------------------------------------- the run
@dataclass
class Report:
    visitors: int
    seconds: float
    latencies: dict[str, list[float]]
    errors: list[str]
    leaks: list[str]
    peak_rss_mb: float | None
    first_answer_s: float | None = None
    end_rss_mb: float | None = None
    trained: str | None = None  # the fine-tuned model's name, as its visitor's status showed it

    def lines(self) -> list[str]:
        out = [f"visitors {self.visitors}, {self.seconds:.0f} s, one fine-tune running"]
        if self.first_answer_s is not None:
            out.append(f"time from `python app.py` to the first answer: {self.first_answer_s:.1f} s")
        out.append(f"{'handler':<10} {'calls':>6} {'p50 s':>8} {'p95 s':>8} {'max s':>8}")
        for handler, values in sorted(self.latencies.items()):
            v = sorted(values)
            p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
            out.append(f"{handler:<10} {len(v):>6} {statistics.median(v):>8.2f} {p95:>8.2f} {v[-1]:>8.2f}")
        out.append(f"errors {len(self.errors)}, cross-visitor leaks {len(self.leaks)}")
        out += [f"  error: {e}" for e in self.errors[:20]] + [f"  leak: {e}" for e in self.leaks[:20]]
        out.append(f"peak RSS of the server: {self.peak_rss_mb:.0f} MB" if self.peak_rss_mb else "peak RSS: unknown")
        if self.end_rss_mb:
            out.append(f"RSS of the server at the end (all visitors gone): {self.end_rss_mb:.0f} MB")
        return out


def peak_rss_mb(pid: int | None) -> float | None:
    """The process's peak resident set (VmHWM), in MB; the current process when ``pid`` is None."""
    return _status_mb(pid, "VmHWM:")


def rss_mb(pid: int | None) -> float | None:
    """The process's resident set now (VmRSS), in MB; the current process when ``pid`` is None."""
    return _status_mb(pid, "VmRSS:")


def _status_mb(pid: int | None, key: str) -> float | None:
    path = Path(f"/proc/{pid or os.getpid()}/status")
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_load(
    url: str,
    model: str,
    visitors: int,
    seconds: float,
    *,
    pid: int | None = None,
    train_seconds: float | None = None,
    settle: float = 5.0,
) -> Report:
    """Drive ``url`` with ``visitors`` concurrent sessions for ``seconds`` while one fine-tune runs.

    The end RSS is read ``settle`` seconds after the last visitor stopped.
    """
    eps = endpoints(url)
    stats = Stats()
    crowd = [Visitor(url, eps, model, stats, i + 1) for i in range(visitors)]
    stop = threading.Event()
    until = time.monotonic() + seconds
    trained: dict[str, str | None] = {}

    def trainer() -> None:
        trained["name"], trained["folder"] = fine_tune(url, eps, train_seconds or max(10.0, seconds / 3), stats)

    threads = [threading.Thread(target=trainer, name="trainer")]
    threads += [threading.Thread(target=v.run, args=(until, stop), name=f"visitor-{v.number}") for v in crowd]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if trained.get("name"):
        for v in crowd:
            v.check_cannot_reach(trained["name"], trained.get("folder"))
    time.sleep(settle)  # let the server finish what the last requests started before reading its RSS
    return Report(
        visitors,
        seconds,
        dict(stats.latencies),
        stats.errors,
        stats.leaks,
        peak_rss_mb(pid),
        end_rss_mb=rss_mb(pid),
        trained=trained.get("name"),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict[str, str]) -> tuple[subprocess.Popen, str, float]:
    """Start ``python app.py`` on a free port; returns (process, url, start time)."""
    port = free_port()
    env = {**os.environ, **env, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    t0 = time.monotonic()
    log = tempfile.NamedTemporaryFile(prefix="load_test_app_", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    logger.info("app log: %s", log.name)
    return proc, f"http://127.0.0.1:{port}/", t0


def first_answer(url: str, model: str, started: float, timeout: float = 600) -> float:
    """Seconds from ``started`` until the app answers an Explore query."""
    from gradio_client import Client

    deadline = started + timeout
    while time.monotonic() < deadline:
        try:
            eps = endpoints(url)
            client = Client(url, verbose=False)
            ep = eps["explore-run.click"]
            raw = client.predict(
                *ep.args({"explore-query": "당뇨병 치료 방법", "explore-model": model}), api_name=f"/{ep.api_name}"
            )
            if "tokens encoded" in str(ep.result(raw).get("explore-status", "")):
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.25)
    raise TimeoutError("the app did not answer in time")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--model", default=None, help="model every visitor picks (default: the app's start model)")
    parser.add_argument("--url", default=None, help="a running app (default: start python app.py)")
    parser.add_argument("--pid", type=int, default=None, help="the running app's process id (for peak RSS)")
    args = parser.parse_args(argv)
    if args.visitors < 1 or args.seconds <= 0:
        parser.error("--visitors must be >= 1 and --seconds > 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    proc = None
    first = None
    try:
        if args.url:
            url, pid = args.url, args.pid
        else:
            proc, url, started = start_app({})
            pid = proc.pid
        model = args.model or _start_model(url)
        if proc is not None:
            first = first_answer(url, model, started)
        report = run_load(url, model, args.visitors, args.seconds, pid=pid)
        report.first_answer_s = first
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
    print("\n".join(report.lines()))  # noqa: T201 - a benchmark script prints its figures
    return 1 if report.errors or report.leaks else 0


def _start_model(url: str, timeout: float = 600) -> str:
    """The value the Explore picker starts on (read from the app's config)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/config", timeout=30) as resp:
                cfg = json.load(resp)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)
    for c in cfg["components"]:
        if c.get("props", {}).get("elem_id") == "explore-model":
            return str(c["props"]["value"])
    raise RuntimeError("no #explore-model picker in the app")


if __name__ == "__main__":
    sys.exit(main())

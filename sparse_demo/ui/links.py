"""Links that open a view: the URL carries the tab, the query and the models.

A view's link is the page's address plus ``?tab=<tab>&q=<query>&a=<model A>&b=<model B>`` (every part
optional; :func:`view_query` writes it, :func:`parse_view` reads it). ``tab`` is one of :data:`TAB_IDS`;
``a`` is the tab's model (model A in Compare), ``b`` model B. Every tab has a *Copy link* button
(:func:`copy_link`) that writes its current view's link into a box and to the clipboard.

Opening a link (:func:`connect_links`, on page load) selects the tab, fills its query and model boxes
and shows the view's answer (Explore, Compare and Search answer at once; Fine-tune and Evaluate only
fill their boxes: a link never starts a training or an evaluation run). A model in a link is handled
exactly as if the visitor had typed it: a name the visitor's pickers offer selects it; anything else goes
into the tab's *local folder / Hub id* box, so the app's source policy decides (in ``public`` mode a
link cannot load a folder or Hub id the visitor could not type, nor another visitor's model). Without
a ``tab`` the page opens on Explore with the first example's answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import gradio as gr

logger = logging.getLogger(__name__)

#: The ``tab`` values of a link, in the order of the page's tabs.
TAB_IDS: tuple[str, ...] = ("explore", "compare", "search", "finetune", "evaluate")
#: Longest value kept from a link's parameter (a query is further held to the app's query limit).
MAX_PARAM_CHARS = 2_000
#: Runs in the browser after the link is written: make it absolute, copy it, show it.
COPY_JS = """(link) => {
  if (!link) { return link; }
  const url = window.location.origin + window.location.pathname + link;
  if (navigator.clipboard) { navigator.clipboard.writeText(url).catch(() => {}); }  // plain http: the box shows it
  return url;
}"""


@dataclass(frozen=True)
class View:
    """What a link opens: a tab, a query and up to two models (names or typed sources)."""

    tab: str = "explore"
    q: str | None = None
    a: str | None = None
    b: str | None = None


def view_query(view: View) -> str:
    """The query string of a view's link (empty parts left out).

    Example:
        >>> view_query(View("compare", "전세 보증금", "demo-v25-style", "demo-v26-style"))
        '?tab=compare&q=%EC%A0%84%EC%84%B8%20%EB%B3%B4%EC%A6%9D%EA%B8%88&a=demo-v25-style&b=demo-v26-style'
    """
    if view.tab not in TAB_IDS:
        raise ValueError(f"unknown tab {view.tab!r}: use one of {', '.join(TAB_IDS)}")
    parts = {"tab": view.tab, "q": view.q, "a": view.a, "b": view.b}
    return "?" + urlencode({k: v.strip() for k, v in parts.items() if v and v.strip()}, quote_via=quote)


def parse_view(params: Mapping[str, str] | None) -> View | None:
    """The view a page's query parameters ask for; None without a ``tab`` parameter.

    An unknown ``tab`` opens Explore; empty parts are None; each part is cut to :data:`MAX_PARAM_CHARS`.

    Example:
        >>> parse_view({"tab": "Compare", "q": " 당뇨병 ", "a": "x"})
        View(tab='compare', q='당뇨병', a='x', b=None)
        >>> parse_view({"q": "당뇨병"}) is None
        True
    """
    params = params or {}
    tab = (params.get("tab") or "").strip().lower()
    if not tab:
        return None
    if tab not in TAB_IDS:
        logger.info("A link asked for an unknown tab %r; opening Explore", tab[:40])
        tab = "explore"

    def part(key: str) -> str | None:
        value = (params.get(key) or "").strip()[:MAX_PARAM_CHARS]
        return value or None

    return View(tab, part("q"), part("a"), part("b"))


def picker_values(name: str | None, choices: Sequence[str], default: str | None) -> tuple[str | None, str]:
    """``(dropdown value, folder box value)`` for a model named in a link.

    A name among the visitor's ``choices`` selects it; any other value is put in the folder box, as if
    typed (the source policy then decides); no name keeps ``default``.

    Example:
        >>> picker_values("tiny-b", ["tiny-a", "tiny-b"], "tiny-a"), picker_values("/m/x", ["tiny-a"], "tiny-a")
        (('tiny-b', ''), ('tiny-a', '/m/x'))
    """
    if not name:
        return default, ""
    if name in choices:
        return name, ""
    return default, name


#: ``answer(query, [(choice, folder), ...], visitor_models, request) -> values of LinkTarget.outputs``.
Answer = Callable[[str, list[tuple[str | None, str]], dict, "gr.Request | None"], list]


@dataclass
class LinkTarget:
    """What a tab offers to links: its query box, its model pickers, and how it answers.

    Attributes:
        tab: one of :data:`TAB_IDS`.
        query: the tab's query box (None: the tab has none).
        pickers: ``(dropdown, folder box or None)`` per model (A first).
        outputs: the components :attr:`answer` fills.
        answer: computes the view's answer (None: opening the tab only fills its boxes).
        defaults: the dropdowns' start values (a link without a model keeps them).
        asks: the components by which the visitor asks this tab for an answer (a button's click, a text box's
            Enter, a radio's change): one of them used while the on-load answer is computed wins over it.
    """

    tab: str
    query: gr.Textbox | None
    pickers: list[tuple[gr.Dropdown, gr.Textbox | None]]
    outputs: list = field(default_factory=list)
    answer: Answer | None = None
    defaults: list[str | None] = field(default_factory=list)
    asks: list = field(default_factory=list)

    @property
    def fields(self) -> list:
        out = [self.query] if self.query is not None else []
        for dropdown, folder in self.pickers:
            out.append(dropdown)
            if folder is not None:
                out.append(folder)
        return out


def copy_link(target: LinkTarget) -> tuple[gr.Button, gr.Textbox]:
    """A *Copy link* button and the box showing the link, wired to the tab's current values (call inside the
    tab). The link names the typed folder / Hub id when one is given, else the picked model."""
    with gr.Row():
        button = gr.Button("Copy link", size="sm", elem_id=f"{target.tab}-copy-link", scale=0, min_width=120)
        box = gr.Textbox(
            show_label=False,
            placeholder="Copy link: a link that opens this view (tab, query and models) appears here",
            elem_id=f"{target.tab}-link",
            interactive=False,
            buttons=["copy"],
            container=False,
            scale=4,
        )

    def write(*values):
        return view_query(view_from_fields(target, list(values)))

    button.click(write, target.fields, box, show_progress="hidden", concurrency_limit=None).then(
        None, box, box, js=COPY_JS
    )
    return button, box


def view_from_fields(target: LinkTarget, values: list) -> View:
    """The view a tab's current field values (in :attr:`LinkTarget.fields` order) describe."""
    values = list(values)
    q = values.pop(0) if target.query is not None else None
    models: list[str | None] = []
    for _dropdown, folder in target.pickers:
        choice = values.pop(0)
        typed = values.pop(0) if folder is not None else ""
        if isinstance(choice, list):  # a multiselect picker: its first models
            models.extend(str(c) for c in choice[:2])
            continue
        models.append((typed or "").strip() or (str(choice) if choice else None))
    models += [None, None]
    return View(target.tab, (q or "").strip() or None, models[0], models[1])


def load_updates(
    view: View | None,
    targets: Sequence[LinkTarget],
    choices: Sequence[str],
    visitor_models: dict | None,
    request: gr.Request | None,
    first_example: str,
) -> list:
    """The values :func:`connect_links`' load event gives: the selected tab, then per target its fields and
    outputs. Without a link, Explore answers ``first_example`` with its default model."""
    out: list = [gr.Tabs(selected=view.tab) if view is not None else gr.update()]
    for t in targets:
        linked = view is not None and t.tab == view.tab
        explore_default = view is None and t.tab == "explore"
        if not (linked or explore_default):
            out += [gr.update()] * (len(t.fields) + len(t.outputs))
            continue
        names = [view.a, view.b] if linked else []
        names += [None] * len(t.pickers)
        picked: list[tuple[str | None, str]] = []
        fields: list = []
        if t.query is not None:
            fields.append(view.q if linked and view.q else gr.update())
        for (dropdown, folder), name, default in zip(t.pickers, names, t.defaults + [None] * len(t.pickers)):
            if getattr(dropdown, "multiselect", False):
                wanted = [n for n in (view.a, view.b) if n and n in choices] if linked else []
                fields.append(wanted if wanted else gr.update())
                picked.append((None, ""))
                continue
            if folder is None:  # one box (a dropdown taking typed values): the name as typed
                custom = getattr(dropdown, "allow_custom_value", False)
                fields.append(name if name and (custom or name in choices) else gr.update())
                picked.append((name or default, ""))
                continue
            choice, typed = picker_values(name, choices, default)
            picked.append((choice, typed))
            fields += [choice if name else gr.update(), typed if name else gr.update()]
        out += fields
        if t.answer is None:
            out += [gr.update()] * len(t.outputs)
            continue
        start = t.query.value if t.query is not None else ""
        query = (view.q if linked and view.q else None) or start or first_example
        try:
            out += list(t.answer(query, picked, dict(visitor_models or {}), request))
        except Exception:  # noqa: BLE001 - the page must open whatever the answer does
            logger.exception("Answering a link to %s failed", t.tab)
            out += [gr.update()] * len(t.outputs)
    return out


class LoadRace:
    """Whether a page's visitor asked for an answer of their own before the page's on-load answer was given.

    The on-load answer (Explore's first example, or a link's view) takes seconds on a cold CPU Space, and on a
    busy one the load may wait in the queue behind other pages' loads; a visitor who types a query and presses
    *Analyze* in that time (before the load starts, or while it runs) must keep their own answer, not see it
    replaced by the example's. A page's mark is taken by its load; a mark that no load takes (the visitor
    asked after the load) holds only the page's session id and is dropped after ``keep_s`` seconds.

    Example:
        >>> race = LoadRace()
        >>> race.asked("s1")  # s1's visitor asked first (the load had not started, or was running)
        >>> race.finish("s1"), race.finish("s1"), race.finish("s2")
        (True, False, False)
    """

    def __init__(self, keep_s: float = 600.0, max_marks: int = 10_000) -> None:
        self.keep_s = keep_s
        self.max_marks = max_marks
        self._lock = threading.Lock()
        self._marks: dict[str, float] = {}  # session -> when its visitor asked (oldest first)

    def asked(self, session: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._marks.pop(session, None)
            self._marks[session] = now
            while self._marks:  # drop marks no load took: the oldest first
                oldest, when = next(iter(self._marks.items()))
                if now - when <= self.keep_s and len(self._marks) <= self.max_marks:
                    break
                del self._marks[oldest]

    def finish(self, session: str) -> bool:
        """The page's load is done: True (and the mark is taken) when its visitor asked for an answer."""
        with self._lock:
            return self._marks.pop(session, None) is not None

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._marks)


def answer_on_load(race: LoadRace, session: str, compute: Callable[[], list], n_outputs: int) -> list:
    """``compute()``'s values, or nothing changed (``gr.skip()`` for every output) when the visitor asked for an
    answer of their own before it was given."""
    try:
        values = compute()
    finally:
        asked = race.finish(session)
    return [gr.skip()] * n_outputs if asked else values


def _listen(component, fn) -> None:
    """``fn`` on the event by which ``component`` asks for an answer, outside the queue (it only records)."""
    event = "submit" if isinstance(component, gr.Textbox) else "input" if isinstance(component, gr.Radio) else "click"
    getattr(component, event)(fn, None, None, queue=False, show_progress="hidden", api_visibility="private")


def connect_links(
    demo: gr.Blocks,
    tabs: gr.Tabs,
    targets: Sequence[LinkTarget],
    visitor_models: gr.State,
    choices: Callable[[dict | None], list[str]],
    first_example: str,
    wrap: Callable[[Callable], Callable] = lambda f: f,
) -> None:
    """On page load, open the view the URL asks for (or Explore's first example) with its answer.

    Args:
        demo: the app (call inside its ``with`` block).
        tabs: the page's tabs (each ``gr.Tab`` with an ``id`` from :data:`TAB_IDS`).
        targets: what each tab offers to links.
        visitor_models: the visitor's own models (``gr.State``).
        choices: the model names a visitor's pickers offer (``AppContext.model_choices``).
        first_example: Explore's query without a link.
        wrap: decorates the handler (``sparse_demo.space.gpu`` on ZeroGPU).
    """
    outputs: list = [tabs]
    for t in targets:
        outputs += t.fields + t.outputs

    race = LoadRace()

    def on_load(vm, request: gr.Request):
        view = parse_view(dict(getattr(request, "query_params", None) or {}))
        session = getattr(request, "session_hash", None) or ""
        return answer_on_load(
            race, session, lambda: load_updates(view, targets, choices(vm), vm, request, first_example), len(outputs)
        )

    def on_ask(request: gr.Request):
        race.asked(getattr(request, "session_hash", None) or "")

    for t in targets:
        for component in t.asks:
            _listen(component, on_ask)
    demo.load(wrap(on_load), [visitor_models], outputs, show_progress="minimal")


__all__ = [
    "TAB_IDS",
    "LinkTarget",
    "LoadRace",
    "answer_on_load",
    "View",
    "connect_links",
    "copy_link",
    "load_updates",
    "parse_view",
    "picker_values",
    "view_from_fields",
    "view_query",
]

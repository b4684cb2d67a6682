"""HTML for the Search tab: passages with matched BM25 morphemes and sparse tokens marked.

Every character of a passage is HTML-escaped; marks are computed as offsets into the
original text (never into a case-folded copy, whose length can differ: ``"İ".lower()`` is
two characters), so they always land on the matched characters.

Example:
    >>> highlight("혈당 <b>", terms=["혈당/NNG"])
    '<mark class="hl-bm25" style="background:#ffe08a">혈당</mark> &lt;b&gt;'
    >>> highlight("İİİ 혈당", tokens=["▁혈당"])
    'İİİ <mark class="hl-sparse" style="background:#a5d8ff">혈당</mark>'
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from sparse_demo.search import GOLD_MARK, Explanation, SearchHit

_HL_STYLE = {
    "bm25": ("hl-bm25", "#ffe08a"),
    "sparse": ("hl-sparse", "#a5d8ff"),
    "both": ("hl-both", "#b2f2bb"),
}

HIGHLIGHT_LEGEND = (
    '<mark class="hl-bm25" style="background:#ffe08a">BM25 morpheme</mark> '
    '<mark class="hl-sparse" style="background:#a5d8ff">sparse token</mark> '
    '<mark class="hl-both" style="background:#b2f2bb">both</mark>'
)


def token_spans(text: str, token: str) -> list[tuple[int, int]]:
    """Where a vocabulary token's surface occurs in ``text`` (case-insensitive), as offsets into ``text``.

    A ``▁`` token (word start) matches only where no letter or digit precedes it. Overlapping
    occurrences are all found. Matching is character by character with Unicode simple case
    folding (``re.IGNORECASE``), so a match's offsets are those of the original characters.

    Args:
        text: The passage.
        token: A vocabulary token (``▁혈당``, ``##료``, ``ing``).

    Returns:
        ``(start, end)`` pairs, ascending; empty for punctuation-only or empty surfaces.
    """
    from sparse_demo.korean import is_punctuation, strip_marker

    surface = strip_marker(token)
    if not surface or is_punctuation(surface):
        return []
    word_start = token.startswith("▁")
    # A lookahead finds overlapping matches; the group gives the match's own end.
    pattern = re.compile(f"(?=({re.escape(surface)}))", re.IGNORECASE)
    spans = []
    for m in pattern.finditer(text):
        start, end = m.start(1), m.end(1)
        if not word_start or start == 0 or not text[start - 1].isalnum():
            spans.append((start, end))
    return spans


def highlight(text: str, terms: Iterable[str] = (), tokens: Iterable[str] = ()) -> str:
    """The passage as HTML with matched BM25 morphemes and sparse tokens marked.

    Args:
        text: The passage (plain text; every character is HTML-escaped).
        terms: BM25 terms (``form/tag``): Kiwi morphemes of ``text`` with these labels are
            marked ``hl-bm25``.
        tokens: Vocabulary tokens (``▁혈당``, ``##료``): occurrences of their surface are
            marked ``hl-sparse`` (a ``▁`` token only at a word start).

    Returns:
        HTML; characters matched by both are marked ``hl-both``; line breaks become ``<br>``.
    """
    from sparse_demo.korean import morphemes

    if not text:
        return ""
    n = len(text)
    flags = [0] * n  # bit 1: bm25, bit 2: sparse
    term_set = set(terms)
    if term_set:
        for m in morphemes(text):
            if m.label in term_set:
                for i in range(max(0, m.start), min(n, m.end)):
                    flags[i] |= 1
    for tok in dict.fromkeys(tokens):
        for s, e in token_spans(text, tok):
            for i in range(s, min(n, e)):
                flags[i] |= 2
    out: list[str] = []
    i = 0
    while i < n:
        j = i
        while j < n and flags[j] == flags[i]:
            j += 1
        chunk = html.escape(text[i:j]).replace("\n", "<br>")
        if flags[i]:
            cls, color = _HL_STYLE[{1: "bm25", 2: "sparse", 3: "both"}[flags[i]]]
            out.append(f'<mark class="{cls}" style="background:{color}">{chunk}</mark>')
        else:
            out.append(chunk)
        i = j
    return "".join(out)


def _passage(hit: SearchHit, title: str, body: str, legend: bool) -> str:
    gold = f" {GOLD_MARK} gold" if hit.gold else ""
    head = f"<h4>{html.escape(hit.id)}{gold}{': ' + title if title else ''}</h4>"
    foot = f'<p style="font-size:0.85em">{HIGHLIGHT_LEGEND}</p>' if legend else ""
    return f'<div class="search-passage">{head}<p>{body}</p>{foot}</div>'


#: How the best window of a long document is marked in its passage (inline: the marks' styles are too).
_BEST_WINDOW_STYLE = "background:#fff4e6;box-shadow:inset 3px 0 0 #e8590c;padding-left:4px"


def passage_html(hit: SearchHit, explanation: Explanation | None, query_terms: Sequence[str] = ()) -> str:
    """A hit's title and text with matches marked (HTML, escaped), plus a legend.

    Args:
        hit: The search hit (id, title, text, gold mark).
        explanation: Its explanation (matched BM25 terms and sparse tokens), if any.
        query_terms: BM25 terms to mark when there is no explanation.

    Returns:
        An HTML ``<div class="search-passage">``.
    """
    terms = explanation.matched_terms if explanation is not None else list(query_terms)
    tokens = explanation.tokens if explanation is not None else []
    title = highlight(hit.title, terms, tokens) if hit.title else ""
    body = highlight(hit.text, terms, tokens)
    best = explanation.best_window if explanation is not None else None
    if best is not None and explanation.windows:
        # window spans are in the text the model read (title + "\n" + text): shift them into the text
        shift = len(hit.title) + 1 if hit.title else 0
        start, stop = (max(0, min(len(hit.text), x - shift)) for x in explanation.windows[best])
        if stop > start:
            label = html.escape(f"window {best + 1} of {len(explanation.windows)}")
            body = (
                highlight(hit.text[:start], terms, tokens)
                + f'<span class="best-window" title="{label}" style="{_BEST_WINDOW_STYLE}">'
                + highlight(hit.text[start:stop], terms, tokens)
                + "</span>"
                + highlight(hit.text[stop:], terms, tokens)
            )
    return _passage(hit, title, body, legend=True)


def plain_passage_html(hit: SearchHit) -> str:
    """A hit's title and text without marks (escaped): what to show when highlighting fails."""
    body = html.escape(hit.text).replace("\n", "<br>")
    return _passage(hit, html.escape(hit.title), body, legend=False)


__all__ = ["HIGHLIGHT_LEGEND", "highlight", "passage_html", "plain_passage_html", "token_spans"]

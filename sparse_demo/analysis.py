"""Pure analysis of sparse vectors: token tables, statistics and stopword leakage.

Definitions (all over the *full* vector the model produced, special tokens included, ranked
by descending weight):

- ``l1`` = sum of weights; ``active_dims`` = number of weights > 0;
  ``sum_squares`` = sum of squared weights (the FLOPS *regulariser* of a one-vector batch, a proxy
  for the cost of dot products with this vector; the package's FLOPS figure is only the card's
  ``sum_v p_q(v) p_d(v)`` over collections, :func:`sparse_demo.evaluation.cost.flops`);
  ``topk_mass_ratio`` = mass of the top-k tokens / ``l1``.
- ``stopword_mass_ratio`` = mass on stopword tokens / ``l1``; ``special_mass_ratio`` likewise
  for special tokens (``<s>``, ``</s>``, ``<pad>``, ``<unk>``, ``<mask>``, ...).
- ``stopword_topk_ratio`` / ``special_topk_ratio`` = share of the top-k slots (``min(k,
  active_dims)`` slots) held by stopword / special tokens.
- ``first_stopword_rank`` = 1-based rank of the highest-weighted stopword (None if none).

Two notions of stopword, both reported (:class:`LeakageReport`):

- **in context** (the headline ``stopword_*`` figures): a token the input produced (its id is
  one of the input's token ids) takes the category of the Kiwi morpheme it came from in *this*
  text (:func:`in_context_categories`): ``전`` of ``전세/NNG`` is content, ``은`` as ``JX`` is a
  stopword. An expansion (a token the input did not produce) keeps its vocabulary-level category.
- **vocabulary-level** (the ``vocab_stopword_*`` figures; the model card's notion: the
  vocabulary entries its stopword penalty hits): every token is judged by its surface alone
  (:func:`classify_token`), wherever it came from.

A bare ``▁`` piece (a word start with no text) is ``whitespace`` under both, never punctuation.
"""

from __future__ import annotations

import threading
import unicodedata
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from .encoder import Encoder, Encoding
from .korean import (
    FUNCTION_TAG_PREFIXES,
    PUNCTUATION_TAG_PREFIXES,
    Morpheme,
    StopwordRule,
    is_punctuation,
    morpheme_at,
    morphemes,
    strip_marker,
)
from .progress import Progress

Category = Literal["content", "stopword", "special", "punctuation", "whitespace"]
CATEGORIES: tuple[str, ...] = ("content", "stopword", "special", "punctuation", "whitespace")
DEFAULT_TOP_K = 20
#: Token rows kept per analysis beyond the requested top-k (leakage always uses every token).
MIN_ROWS = 100
_MORPHEME_LABEL_CHARS = 24

# Token categories depend only on (vocabulary, stopword rule): cache them per encoder. Handlers of
# several visitors build analyzers at once, so the cache is read and changed under _CATEGORY_LOCK.
_CATEGORY_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CATEGORY_LOCK = threading.Lock()
_UNKNOWN = 255
#: Kiwi tags of affixes that, in a text, belong to the noun they form (in-context category: content).
NOUN_AFFIX_TAGS: frozenset[str] = frozenset({"XSN", "XPN"})


def classify_token(raw: str, token_id: int, special_ids: frozenset[int], rule: StopwordRule) -> Category:
    """Vocabulary-level category of one token: special, whitespace, punctuation, stopword or content.

    A token with no text once its subword marker is removed (a bare ``▁`` or ``Ġ``) is ``whitespace``.
    """
    if token_id in special_ids:
        return "special"
    surface = strip_marker(raw)
    if not surface:
        return "whitespace" if not raw.replace("▁", "").replace("Ġ", "").strip() else "punctuation"
    if is_punctuation(surface):
        return "punctuation"
    if rule.is_stopword(raw):
        return "stopword"
    return "content"


def normalize_surface(raw: str) -> str:
    """A vocabulary-independent key: marker-free, NFC, lower-cased (``▁치료`` and ``치료`` match)."""
    return unicodedata.normalize("NFC", strip_marker(raw)).lower()


@dataclass(frozen=True)
class TokenRow:
    """One active token of a vector, with where it came from."""

    rank: int
    token: str
    raw: str
    id: int
    weight: float
    position: int
    source_subword: str
    source_text: str
    origin: Literal["input", "expansion"]
    category: Category
    morpheme: str | None
    #: the token's vocabulary-level category (``category`` is judged in context)
    vocab_category: str = ""


@dataclass(frozen=True)
class VectorStats:
    active_dims: int
    l1: float
    sum_squares: float
    top_k: int
    topk_mass_ratio: float


@dataclass(frozen=True)
class LeakageReport:
    """Stopword and special-token leakage of one vector (see the module docstring).

    The ``stopword_*`` figures judge stopwords in context; the ``vocab_stopword_*`` figures judge them
    by vocabulary entry (the card's notion). A report built without vocabulary-level categories gives
    both the same values.
    """

    top_k: int
    total_mass: float
    stopword_mass: float
    special_mass: float
    stopword_mass_ratio: float
    special_mass_ratio: float
    stopword_topk_ratio: float
    special_topk_ratio: float
    first_stopword_rank: int | None
    stopword_tokens: tuple[str, ...] = ()
    special_tokens: tuple[str, ...] = ()
    vocab_stopword_mass: float | None = None
    vocab_stopword_mass_ratio: float | None = None
    vocab_stopword_topk_ratio: float | None = None

    def __post_init__(self) -> None:
        for name in ("stopword_mass", "stopword_mass_ratio", "stopword_topk_ratio"):
            if getattr(self, f"vocab_{name}") is None:
                object.__setattr__(self, f"vocab_{name}", getattr(self, name))


def vector_stats(weights: np.ndarray, top_k: int = DEFAULT_TOP_K) -> VectorStats:
    """Statistics of one vector's active weights (any order)."""
    w = np.sort(np.asarray(weights, dtype=np.float64)[np.asarray(weights) > 0])[::-1]
    l1 = float(w.sum())
    k = min(top_k, w.size)
    return VectorStats(
        active_dims=int(w.size),
        l1=l1,
        sum_squares=float(np.square(w).sum()),
        top_k=top_k,
        topk_mass_ratio=float(w[:k].sum() / l1) if l1 > 0 else 0.0,
    )


def leakage_report(
    weights: Sequence[float] | np.ndarray,
    categories: Sequence[str],
    tokens: Sequence[str] | None = None,
    top_k: int = DEFAULT_TOP_K,
    vocab_categories: Sequence[str] | None = None,
) -> LeakageReport:
    """Stopword and special-token leakage of one vector.

    Args:
        weights: active weights (any order; ranks are by descending weight, ties by input order).
        categories: the category of each weight, in context (:func:`in_context_categories`).
        tokens: readable tokens, to list the leaking ones.
        top_k: number of top slots examined.
        vocab_categories: the vocabulary-level category of each weight (:func:`classify_token`), for
            the ``vocab_stopword_*`` figures; None: the same as ``categories``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[0] != len(categories):
        raise ValueError(f"{w.shape[0]} weights but {len(categories)} categories")
    if vocab_categories is not None and len(vocab_categories) != w.shape[0]:
        raise ValueError(f"{w.shape[0]} weights but {len(vocab_categories)} vocabulary-level categories")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    order = np.argsort(-w, kind="stable")
    vocab = {}
    if vocab_categories is not None:
        vstop = (np.asarray(vocab_categories, dtype=object)[order] == "stopword") if w.size else np.zeros(0, bool)
        ws, kv = w[order], min(top_k, w.size)
        vmass, vtotal = float(ws[vstop].sum()), float(ws.sum())
        vocab = {
            "vocab_stopword_mass": vmass,
            "vocab_stopword_mass_ratio": vmass / vtotal if vtotal > 0 else 0.0,
            "vocab_stopword_topk_ratio": float(vstop[:kv].sum() / kv) if kv else 0.0,
        }
    cats = np.asarray(categories, dtype=object)[order] if len(categories) else np.array([], dtype=object)
    w = w[order]

    def name(rank: int) -> str:  # only the few listed tokens are looked up
        return tokens[order[rank]] if tokens is not None else ""

    total = float(w.sum())
    stop = cats == "stopword"
    special = cats == "special"
    k = min(top_k, w.size)
    stop_ranks = np.flatnonzero(stop)
    return LeakageReport(
        top_k=top_k,
        total_mass=total,
        stopword_mass=float(w[stop].sum()),
        special_mass=float(w[special].sum()),
        stopword_mass_ratio=float(w[stop].sum() / total) if total > 0 else 0.0,
        special_mass_ratio=float(w[special].sum() / total) if total > 0 else 0.0,
        stopword_topk_ratio=float(stop[:k].sum() / k) if k else 0.0,
        special_topk_ratio=float(special[:k].sum() / k) if k else 0.0,
        first_stopword_rank=int(stop_ranks[0]) + 1 if stop_ranks.size else None,
        stopword_tokens=tuple(name(i) for i in stop_ranks[:k] if i < k),
        special_tokens=tuple(name(i) for i in np.flatnonzero(special)),
        **vocab,
    )


@dataclass
class QueryAnalysis:
    """Everything the Explore tab shows for one text."""

    encoding: Encoding
    rows: list[TokenRow]
    stats: VectorStats
    leakage: LeakageReport
    model: str = ""
    notes: list[str] = field(default_factory=list)
    #: in-context category of every active dimension, aligned with ``encoding.vector`` (rows hold the top only)
    categories: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    #: vocabulary-level category of every active dimension (the card's notion), aligned likewise
    vocab_categories: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    #: ``(token, in-context category, vocabulary-level category)`` of the active tokens whose category the
    #: context changed, heaviest first (only input tokens can change, so the list is short)
    recategorised: list[tuple[str, str, str]] = field(default_factory=list)

    def top(self, k: int) -> list[TokenRow]:
        return self.rows[:k]

    def to_frame(self, k: int | None = None) -> pd.DataFrame:
        rows = self.rows if k is None else self.rows[:k]
        columns = [f for f in TokenRow.__dataclass_fields__]
        return pd.DataFrame([asdict(r) for r in rows], columns=columns)

    def to_json(self, k: int | None = None) -> dict:
        rows = self.rows if k is None else self.rows[:k]
        return {
            "text": self.encoding.text,
            "model": self.model,
            "truncated": self.encoding.truncated,
            "num_tokens": len(self.encoding.input_ids),
            "tokens": [asdict(r) for r in rows],
            "stats": asdict(self.stats),
            "leakage": {k_: v for k_, v in asdict(self.leakage).items()},
            "notes": list(self.notes),
        }


class Analyzer:
    """Binds an encoder and a stopword rule; turns texts into :class:`QueryAnalysis`.

    Args:
        encoder: a loaded :class:`~sparse_demo.encoder.Encoder` (a :class:`SpladeEncoder`).
        rule: the stopword rule (bundled list + Kiwi POS rule when None).
    """

    def __init__(self, encoder: Encoder, rule: StopwordRule | None = None) -> None:
        self.encoder = encoder
        self.rule = rule or StopwordRule()
        self._codes: np.ndarray = _category_codes(encoder, (self.rule.words, self.rule.use_pos_rule))

    def category(self, token_id: int) -> Category:
        return CATEGORIES[int(self.categories(np.array([token_id]))[0])]

    def categories(self, token_ids: np.ndarray) -> np.ndarray:
        """Category codes (indexes into :data:`CATEGORIES`) of many ids, classifying new ids once.

        Concurrent callers sharing the codes array may classify the same new id twice; both write the
        same code (classification is a pure function of the id and the rule), so no lock is needed here.
        """
        codes = self._codes[token_ids]
        for tid in np.unique(token_ids[codes == _UNKNOWN]).tolist():
            raw = self.encoder.id_to_token(tid)
            self._codes[tid] = CATEGORIES.index(classify_token(raw, tid, self.encoder.special_ids, self.rule))
        return self._codes[token_ids]

    def analyze(
        self,
        texts: Sequence[str],
        top_k: int = DEFAULT_TOP_K,
        *,
        batch_size: int = 32,
        progress: Progress | None = None,
    ) -> list[QueryAnalysis]:
        encodings = self.encoder.encode(list(texts), batch_size=batch_size, progress=progress)
        return [self.analyze_encoding(e, top_k) for e in encodings]

    def analyze_encoding(self, enc: Encoding, top_k: int = DEFAULT_TOP_K) -> QueryAnalysis:
        vec = enc.vector
        input_ids = set(enc.input_ids)
        morphs = morphemes(enc.text)
        codes = self.categories(vec.token_ids)
        vocab_cats = np.asarray(CATEGORIES, dtype=object)[codes]
        cats = in_context_categories(vec.token_ids, vocab_cats, enc.input_ids, enc.offsets, morphs, self.rule)
        rows = []
        n_rows = max(top_k, MIN_ROWS)
        triples = zip(vec.token_ids[:n_rows], vec.weights[:n_rows], vec.positions[:n_rows])
        for rank, (tid, weight, pos) in enumerate(triples, start=1):
            tid, pos = int(tid), int(pos)
            raw = self.encoder.id_to_token(tid)
            start, end = enc.offsets[pos] if pos < len(enc.offsets) else (0, 0)
            morph = morpheme_at(morphs, start, end) if end > start else None
            src_raw = self.encoder.id_to_token(enc.input_ids[pos]) if pos < len(enc.input_ids) else ""
            rows.append(
                TokenRow(
                    rank=rank,
                    token=strip_marker(raw) or raw,
                    raw=raw,
                    id=tid,
                    weight=round(float(weight), 6),
                    position=pos,
                    source_subword=strip_marker(src_raw) or src_raw,
                    source_text=enc.text[start:end],
                    origin="input" if tid in input_ids else "expansion",
                    category=cats[rank - 1],
                    morpheme=_short(morph.label) if morph else None,
                    vocab_category=vocab_cats[rank - 1],
                )
            )
        notes = []
        if enc.truncated:
            notes.append(
                f"Input truncated to {enc.max_length} tokens (it has {enc.num_text_tokens}); "
                "the rest of the text did not contribute."
            )
        if not enc.text.strip():
            notes.append("Empty text: only special tokens were encoded.")
        readable = _ReadableTokens(self.encoder, vec.token_ids)
        changed = np.flatnonzero(cats != vocab_cats)  # already heaviest first: the vector is sorted
        recategorised = [(readable[int(i)], str(cats[i]), str(vocab_cats[i])) for i in changed]
        return QueryAnalysis(
            encoding=enc,
            rows=rows,
            stats=vector_stats(vec.weights, top_k),
            leakage=leakage_report(vec.weights, cats, readable, top_k, vocab_categories=vocab_cats),
            model=self.encoder.name,
            notes=notes,
            categories=cats,
            vocab_categories=vocab_cats,
            recategorised=recategorised,
        )


def morpheme_category(morph: Morpheme, rule: StopwordRule) -> Category:
    """The category of one Kiwi morpheme of a text: what an input token inside it counts as in context.

    Punctuation and symbol tags (``SF SP SS* SE SO SW``) are punctuation. Noun-deriving suffixes and
    prefixes (``XSN``, ``XPN``: ``권`` of ``청구권``, ``성`` of ``가능성``) are content: in context they are
    part of the noun they form. Function morphemes (particles ``J*``, endings ``E*``, verb/adjective
    suffixes ``XSV``/``XSA``/``XSM``, copulas ``VCP``/``VCN``; only when ``rule.use_pos_rule``) and morphemes
    whose form is in the stopword list (``수/NNB``, ``것/NNB``) are stopwords; every other morpheme is
    content.

    Example:
        >>> rule = StopwordRule()
        >>> pairs = [("전세", "NNG"), ("은", "JX"), ("?", "SF"), ("권", "XSN"), ("하", "XSV")]
        >>> [morpheme_category(Morpheme(f, t, 0, 1), rule) for f, t in pairs]
        ['content', 'stopword', 'punctuation', 'content', 'stopword']
    """
    tag = morph.tag.split("-", 1)[0]
    if tag.startswith(PUNCTUATION_TAG_PREFIXES):
        return "punctuation"
    if tag in NOUN_AFFIX_TAGS:
        return "content"
    if (rule.use_pos_rule and tag.startswith(FUNCTION_TAG_PREFIXES)) or rule.in_list(morph.form):
        return "stopword"
    return "content"


def input_token_categories(
    input_ids: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    morphs: Sequence[Morpheme],
    rule: StopwordRule,
) -> dict[int, Category]:
    """The in-context category of each input token id that a Kiwi morpheme covers (see
    :func:`in_context_categories`: the piece's morpheme decides; over several occurrences content wins
    over stopword, stopword over punctuation)."""
    found: dict[int, set[str]] = defaultdict(set)
    morphs = list(morphs)
    for pos, tid in enumerate(input_ids):
        if pos >= len(offsets):
            break
        start, end = offsets[pos]
        morph = morpheme_at(morphs, start, end) if end > start else None
        if morph is not None:
            found[int(tid)].add(morpheme_category(morph, rule))
    order = ("content", "stopword", "punctuation")
    return {tid: next(c for c in order if c in seen) for tid, seen in found.items()}


def in_context_categories(
    token_ids: Sequence[int] | np.ndarray,
    vocab_categories: Sequence[str] | np.ndarray,
    input_ids: Sequence[int],
    offsets: Sequence[tuple[int, int]],
    morphs: Sequence[Morpheme],
    rule: StopwordRule,
) -> np.ndarray:
    """In-context categories of a vector's tokens (a pure function of one text's tokenisation and morphemes).

    A token the input produced (its id occurs in ``input_ids`` at a position with a non-empty character
    span) takes the category of the Kiwi morpheme its piece lies in (:func:`morpheme_category`; the
    morpheme overlapping the piece's span most, as :func:`~sparse_demo.korean.morpheme_at` picks it). When
    the piece occurs several times, content wins over stopword, stopword over punctuation (the token
    carries content if it does anywhere in the text). Special and whitespace tokens, expansions, and
    input pieces that no morpheme covers keep their vocabulary-level category.

    Args:
        token_ids: the vector's token ids.
        vocab_categories: their vocabulary-level categories (:func:`classify_token`).
        input_ids: the text's input token ids, by position.
        offsets: each input position's character span in the text (``(0, 0)`` for special tokens).
        morphs: the text's Kiwi morphemes (:func:`sparse_demo.korean.morphemes`).
        rule: the stopword rule (its list and whether the POS rule applies).

    Returns:
        An object array of category names aligned with ``token_ids``.
    """
    cats = np.array(vocab_categories, dtype=object, copy=True)
    if len(cats) != len(token_ids):
        raise ValueError(f"{len(token_ids)} token ids but {len(cats)} categories")
    found = input_token_categories(input_ids, offsets, morphs, rule)
    ids = np.asarray(token_ids)
    for tid, cat in found.items():  # a few input ids against a vector that may hold 200k active ones
        for i in np.flatnonzero(ids == tid):
            if cats[i] not in ("special", "whitespace"):
                cats[i] = cat
    return cats


def _category_codes(encoder: Encoder, key: tuple) -> np.ndarray:
    """The shared category-code array of ``encoder`` under a stopword-rule ``key`` (created once, thread-safe).

    One code per vocabulary id (:data:`_UNKNOWN` until the id is first classified).
    """
    with _CATEGORY_LOCK:
        per_encoder = _CATEGORY_CACHE.setdefault(encoder, {})
        codes = per_encoder.get(key)
        if codes is None:
            codes = per_encoder[key] = np.full(encoder.vocab_size, _UNKNOWN, dtype=np.uint8)
        return codes


class _ReadableTokens:
    """Readable token strings of a vector's ids, looked up only when indexed."""

    def __init__(self, encoder: Encoder, ids: np.ndarray) -> None:
        self.encoder, self.ids = encoder, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> str:
        raw = self.encoder.id_to_token(int(self.ids[i]))
        return strip_marker(raw) or raw


def _short(label: str) -> str:
    return label if len(label) <= _MORPHEME_LABEL_CHARS else label[: _MORPHEME_LABEL_CHARS - 1] + "…"


# ---------------------------------------------------------------------- batch mode
@dataclass
class BatchLeakage:
    """Leakage over a query set."""

    per_query: pd.DataFrame
    summary: dict[str, float]
    leaking_tokens: pd.DataFrame


def batch_leakage(analyses: Iterable[QueryAnalysis], top_k: int = DEFAULT_TOP_K) -> BatchLeakage:
    """Aggregate leakage over queries.

    ``summary``: number of queries, mean stopword (in context) / special mass ratio, mean stopword
    top-k ratio, mean active dims, the share of queries whose top-1 / top-5 holds a stopword (in
    context), and the vocabulary-level means (``mean_vocab_stopword_mass_ratio``,
    ``mean_vocab_stopword_topk_ratio``).
    ``leaking_tokens``: per stopword or special token, the number of queries with it in their
    top-k and its mean weight there, most frequent first. The summary's means use the unrounded
    figures (``per_query`` shows them rounded to 4 decimals).
    """
    analyses = list(analyses)
    records = []
    token_queries: Counter[str] = Counter()
    token_weight: dict[str, float] = defaultdict(float)
    token_category: dict[str, str] = {}
    for a in analyses:
        lk = a.leakage
        top = a.rows[:top_k]
        records.append(
            {
                "query": a.encoding.text,
                "active_dims": a.stats.active_dims,
                "l1": round(a.stats.l1, 4),
                "stopword_mass_ratio": round(lk.stopword_mass_ratio, 4),
                "vocab_stopword_mass_ratio": round(lk.vocab_stopword_mass_ratio, 4),
                "special_mass_ratio": round(lk.special_mass_ratio, 4),
                "stopword_topk_ratio": round(lk.stopword_topk_ratio, 4),
                "first_stopword_rank": lk.first_stopword_rank,
                # top-1 / top-5 of the whole ranking (rows hold at least MIN_ROWS), whatever top_k is
                "stopword_in_top1": bool(a.rows[:1] and a.rows[0].category == "stopword"),
                "stopword_in_top5": any(r.category == "stopword" for r in a.rows[:5]),
                "top_tokens": " ".join(r.token for r in top[:10]),
                "truncated": a.encoding.truncated,
            }
        )
        for r in top:
            if r.category in ("stopword", "special"):
                token_queries[r.token] += 1
                token_weight[r.token] += r.weight
                token_category[r.token] = r.category
    per_query = pd.DataFrame(records)
    n = len(records)
    if n:
        summary = {
            "queries": n,
            "mean_stopword_mass_ratio": float(np.mean([a.leakage.stopword_mass_ratio for a in analyses])),
            "mean_vocab_stopword_mass_ratio": float(np.mean([a.leakage.vocab_stopword_mass_ratio for a in analyses])),
            "mean_special_mass_ratio": float(np.mean([a.leakage.special_mass_ratio for a in analyses])),
            "mean_stopword_topk_ratio": float(np.mean([a.leakage.stopword_topk_ratio for a in analyses])),
            "mean_vocab_stopword_topk_ratio": float(np.mean([a.leakage.vocab_stopword_topk_ratio for a in analyses])),
            "mean_active_dims": float(per_query["active_dims"].mean()),
            "share_stopword_in_top1": float(per_query["stopword_in_top1"].mean()),
            "share_stopword_in_top5": float(per_query["stopword_in_top5"].mean()),
        }
    else:
        summary = {"queries": 0}
    leaking = pd.DataFrame(
        [
            {
                "token": t,
                "category": token_category[t],
                "queries": c,
                "share_of_queries": round(c / n, 4) if n else 0.0,
                "mean_weight": round(token_weight[t] / c, 4),
            }
            for t, c in token_queries.most_common()
        ],
        columns=["token", "category", "queries", "share_of_queries", "mean_weight"],
    )
    return BatchLeakage(per_query=per_query, summary=summary, leaking_tokens=leaking)

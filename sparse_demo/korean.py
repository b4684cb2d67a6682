"""Korean language resources: Kiwi morphemes, the BM25 analyzer, stopwords and the stopword rule.

BM25 terms are Kiwi morphemes as ``form/tag`` strings after *stop tags*, as OpenSearch's
Korean analyzer (nori) drops them: :func:`get_analyzer` builds a :class:`BM25Analyzer` from a
spec (``"default"``, ``"all"``, ``"nori"`` or a custom tag list) and
:func:`bm25_terms` applies the default one.

A token is a *stopword* when its surface form (with the SentencePiece ``▁`` or WordPiece
``##`` marker removed) is in the stopword list, or when Kiwi analyses that surface as
function morphemes only (particles ``J*``, endings ``E*``, suffixes ``XS*``, copulas
``VCP``/``VCN``). The list is an editable asset (``assets/stopwords_ko.txt``); users may
upload their own, which replaces it.

Kiwi is loaded lazily and shared by the process (it is read-only after loading).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_STOPWORDS_PATH = ASSETS_DIR / "stopwords_ko.txt"

#: Kiwi tag prefixes of content morphemes: a subword inside one of these in the input is not a
#: function word, whatever Kiwi makes of the fragment alone (``뇨`` of ``당뇨병``).
CONTENT_TAG_PREFIXES: tuple[str, ...] = ("NN", "NR", "NP", "VV", "VA", "MA", "MM", "XR", "SL", "SH", "SN")
#: Kiwi tag prefixes of function morphemes (particles, endings, suffixes, copulas).
FUNCTION_TAG_PREFIXES: tuple[str, ...] = ("J", "E", "XS", "VCP", "VCN")
#: Kiwi tag prefixes of punctuation and symbols (sentence marks, brackets, ellipses, other symbols).
PUNCTUATION_TAG_PREFIXES: tuple[str, ...] = ("SF", "SP", "SS", "SE", "SO", "SW")
#: Kiwi tags of content morphemes (the default BM25 analyzer keeps these, their irregular
#: variants such as ``VV-I`` and user tags).
CONTENT_TAGS: frozenset[str] = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "MAG", "SL", "SH", "SN", "XR"})
#: Markers that tokenizers put on subwords: SentencePiece word start, WordPiece continuation,
#: GPT-2 style byte-level space.
_SUBWORD_MARKERS = ("▁", "##", "Ġ")
_MAX_STOPWORD_FILE_BYTES = 2_000_000

_kiwi = None
_kiwi_lock = threading.Lock()


@dataclass(frozen=True)
class Morpheme:
    """One Kiwi morpheme: surface ``form``, part-of-speech ``tag`` and character span."""

    form: str
    tag: str
    start: int
    end: int

    @property
    def label(self) -> str:
        return f"{self.form}/{self.tag}"


def get_kiwi():
    """Return the process-wide Kiwi analyser, loading it on first use."""
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                try:
                    from kiwipiepy import Kiwi
                except ImportError as exc:  # pragma: no cover - dependency is in requirements
                    raise ImportError("kiwipiepy is required: pip install kiwipiepy") from exc
                _kiwi = Kiwi()
    return _kiwi


def morphemes(text: str) -> list[Morpheme]:
    """Analyse ``text`` into Kiwi morphemes with character offsets into ``text``."""
    if not text or not text.strip():
        return []
    tokens = get_kiwi().tokenize(text)
    return [Morpheme(t.form, t.tag, t.start, t.start + t.len) for t in tokens]


# --- BM25 analyzer (nori-like stop tags) ---------------------------------------------------

#: Every Kiwi part-of-speech tag (irregular variants such as ``VV-I`` share their base tag).
KIWI_TAGS: tuple[str, ...] = (
    "NNG", "NNP", "NNB", "NR", "NP",
    "VV", "VA", "VX", "VCP", "VCN",
    "MM", "MAG", "MAJ", "IC",
    "JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "JC",
    "EP", "EF", "EC", "ETN", "ETM",
    "XPN", "XSN", "XSV", "XSA", "XSM", "XR",
    "SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "SB",
    "SL", "SH", "SN", "UN",
    "W_URL", "W_EMAIL", "W_HASHTAG", "W_MENTION", "W_SERIAL", "W_EMOJI",
    "Z_CODA", "Z_SIOT",
    "USER0", "USER1", "USER2", "USER3", "USER4",
)  # fmt: skip
#: Tag prefixes every analyzer drops: punctuation and symbols (``SF SP SS* SE SO SW``) and
#: Kiwi's web tags (``W_*``: URLs, e-mails, hashtags, emoji).
ALWAYS_STOPPED: tuple[str, ...] = ("SF", "SP", "SS", "SE", "SO", "SW", "W_")
#: Stop-tag prefixes of the named analyzers (on top of :data:`ALWAYS_STOPPED`).
#: ``default`` was chosen by measuring BM25 R@1 / MRR@10 on BoolQ test, KorSTS test (score
#: >= 4) and the bundled sample (``benchmarks/bench_analyzer.py``): it was best or tied on all
#: three, ahead of ``all``, of nori's own stop tags and of particles/endings/suffixes/copulas
#: alone (``"E,J,VCN,VCP,XS"``).
ANALYZER_PRESETS: dict[str, tuple[str, ...]] = {
    # Content morphemes only: drops particles J*, endings E*, suffixes XS*, copulas VCP/VCN,
    # auxiliary verbs VX, determiners MM, conjunctive adverbs MAJ, interjections IC, prefixes
    # XPN, bullets SB, unknown UN and Kiwi's coda fragments Z_*. Keeps nouns NN*, numerals NR,
    # pronouns NP, verbs VV, adjectives VA (irregular VV-I etc. too), adverbs MAG, roots XR,
    # foreign words SL, hanja SH, numbers SN and user tags.
    "default": ("J", "E", "XS", "VCP", "VCN", "VX", "MM", "MAJ", "IC", "XPN", "SB", "UN", "Z_"),
    # Every morpheme but punctuation (the terms of versions before the analyzer existed).
    "all": (),
    # The default stop tags of OpenSearch's nori analyzer, in Kiwi's tag set.
    "nori": ("E", "IC", "J", "MAG", "MAJ", "MM", "UN", "XPN", "XS"),
}
#: The analyzer spec used when none is given.
DEFAULT_ANALYZER = "default"
#: Texts analysed by :meth:`BM25Analyzer.terms` whose terms are remembered (least recently used
#: dropped first). Training evaluations and the Search tab re-index the same passages.
TERMS_CACHE_SIZE = 50_000
#: Texts longer than this (characters) are analysed every time, never cached, so the cache stays
#: small: about 50k x (a 4k-character key + a tuple of interned terms) at worst.
TERMS_CACHE_MAX_CHARS = 4_000


@dataclass(frozen=True)
class BM25Analyzer:
    """Korean BM25 terms: Kiwi morphemes as ``form/tag`` strings, minus stop tags.

    Like the ``stoptags`` of OpenSearch's Korean analyzer (nori), a morpheme is dropped when
    its tag (irregular variants such as ``VV-I`` count as their base tag ``VV``) starts with
    one of :attr:`stoptags`. Build one with :func:`get_analyzer`.

    Attributes:
        spec: Canonical spec: a preset name (``"default"``, ``"all"``, ``"nori"``) or the
            sorted comma-separated stop tags of a custom analyzer (e.g. ``"E,J,XSV"``).
        stoptags: Every dropped tag prefix, :data:`ALWAYS_STOPPED` included.

    Example:
        >>> get_analyzer("default").terms("혈당을 낮추는 방법")
        ['혈당/NNG', '낮추/VV', '방법/NNG']
        >>> get_analyzer("all").terms("혈당을 낮추는 방법")
        ['혈당/NNG', '을/JKO', '낮추/VV', '는/ETM', '방법/NNG']
    """

    spec: str
    stoptags: frozenset[str]
    _prefixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prefixes", tuple(sorted(self.stoptags)))

    def keeps(self, tag: str) -> bool:
        """Whether a morpheme with this Kiwi tag becomes a term."""
        return not tag.split("-", 1)[0].startswith(self._prefixes)

    def terms_from_morphemes(self, morphs: Iterable[Morpheme]) -> list[str]:
        """The terms of already analysed morphemes (to analyse a text once for several analyzers)."""
        out = []
        for m in morphs:
            if not self.keeps(m.tag):
                continue
            form = "".join(m.form.split())  # terms never contain whitespace
            if form:
                out.append(f"{form}/{m.tag}")
        return out

    def terms(self, text: str) -> list[str]:
        """The BM25 terms of ``text`` (both search backends index exactly these strings).

        Texts up to :data:`TERMS_CACHE_MAX_CHARS` characters are analysed once per analyzer and
        remembered (:func:`terms_cache_info`); the result is a new list every call, so callers
        may change it freely.
        """
        if isinstance(text, str) and len(text) <= TERMS_CACHE_MAX_CHARS:
            return list(_cached_terms(self, text))
        return self.terms_from_morphemes(morphemes(text))

    def terms_many(self, texts: Iterable[str]) -> list[list[str]]:
        """:meth:`terms` of each text, in order."""
        return [self.terms(t) for t in texts]


@functools.lru_cache(maxsize=TERMS_CACHE_SIZE)
def _cached_terms(analyzer: BM25Analyzer, text: str) -> tuple[str, ...]:
    # Keyed by the analyzer (its spec and stop tags) and the text. A tuple, so no caller can
    # change what the next one gets; terms are interned, so repeated ones share one string.
    return tuple(sys.intern(t) for t in analyzer.terms_from_morphemes(morphemes(text)))


def terms_cache_info() -> functools._CacheInfo:
    """Hits, misses and size of the BM25 terms cache of :meth:`BM25Analyzer.terms`."""
    return _cached_terms.cache_info()


def clear_terms_cache() -> None:
    """Forget every cached analysis of :meth:`BM25Analyzer.terms` (e.g. after changing Kiwi)."""
    _cached_terms.cache_clear()


def _parse_stoptags(spec: str) -> tuple[str, ...]:
    items = [part.strip().upper() for part in spec.split(",") if part.strip()]
    bad = [item for item in items if not any(tag.startswith(item) for tag in KIWI_TAGS)]
    if bad or not items:
        what = f"unknown Kiwi tag {bad[0]!r}" if bad else "no tag"
        raise ValueError(
            f"{what} in analyzer spec {spec!r}: use one of {', '.join(repr(p) for p in ANALYZER_PRESETS)} "
            f"or a comma-separated list of Kiwi tags or tag prefixes (e.g. 'J,E,XSV') from {', '.join(KIWI_TAGS)}"
        )
    return tuple(sorted(set(items)))


@functools.lru_cache(maxsize=64)
def _analyzer(spec: str) -> BM25Analyzer:
    key = spec.strip()
    if key.lower() in ANALYZER_PRESETS:
        name = key.lower()
        return BM25Analyzer(name, frozenset(ANALYZER_PRESETS[name] + ALWAYS_STOPPED))
    tags = _parse_stoptags(key)
    return BM25Analyzer(",".join(tags), frozenset(tags + ALWAYS_STOPPED))


def get_analyzer(spec: str | BM25Analyzer = DEFAULT_ANALYZER) -> BM25Analyzer:
    """The BM25 analyzer for a spec.

    Args:
        spec: ``"default"`` (content morphemes only: drop particles ``J*``, endings ``E*``,
            suffixes ``XS*``, copulas ``VCP``/``VCN``, auxiliaries ``VX``, determiners ``MM``,
            conjunctive adverbs ``MAJ``, interjections ``IC``, prefixes ``XPN``, ``SB``, ``UN``,
            ``Z_*``), ``"all"`` (keep every morpheme), ``"nori"`` (nori's default stop tags),
            or a comma-separated list of Kiwi stop tags or tag prefixes (``"J,E,XSV"``).
            Punctuation, symbols and web tags are always dropped. An
            analyzer is returned as is.

    Raises:
        ValueError: the spec is not a string, is empty, or names an unknown tag (the message
            lists the valid ones).

    Example:
        >>> get_analyzer(" J, e ").spec
        'E,J'
    """
    if isinstance(spec, BM25Analyzer):
        return spec
    if not isinstance(spec, str):
        raise ValueError(  # noqa: TRY004 - user data: ValueError by design
            f"analyzer spec must be a string such as {', '.join(repr(p) for p in ANALYZER_PRESETS)} "
            f"or 'J,E,XSV', got {type(spec).__name__}"
        )
    if not spec.strip():
        raise ValueError(
            "empty analyzer spec: use 'all' to keep every morpheme, 'default', 'nori' or a "
            "comma-separated list of Kiwi stop tags such as 'J,E,XSV'"
        )
    return _analyzer(spec)


def bm25_terms(text: str, analyzer: str | BM25Analyzer = DEFAULT_ANALYZER) -> list[str]:
    """Terms for Korean BM25: Kiwi ``form/tag`` morphemes after the analyzer's stop tags.

    Both search backends index exactly these strings (OpenSearch receives them space-joined
    in a whitespace-analysed field), so they rank identically. See :func:`get_analyzer`.

    Example:
        >>> bm25_terms("혈당 수치를 낮추려면?")
        ['혈당/NNG', '수치/NNG', '낮추/VV']
    """
    return get_analyzer(analyzer).terms(text)


def morpheme_at(morphs: list[Morpheme], start: int, end: int) -> Morpheme | None:
    """The morpheme overlapping the character span ``[start, end)`` the most, if any."""
    best, best_overlap = None, 0
    for m in morphs:
        overlap = min(end, m.end) - max(start, m.start)
        if overlap > best_overlap:
            best, best_overlap = m, overlap
    return best


def strip_marker(token: str) -> str:
    """A token's readable surface: subword markers removed, surrounding space trimmed."""
    for marker in _SUBWORD_MARKERS:
        if token.startswith(marker):
            token = token[len(marker) :]
            break
    return token.replace("▁", " ").strip()


def is_punctuation(surface: str) -> bool:
    """True when every character is punctuation, a symbol or a separator (e.g. ``.``, ``?!``)."""
    return bool(surface) and all(unicodedata.category(ch)[0] in "PSZC" for ch in surface)


def parse_stopwords(data: bytes | str) -> frozenset[str]:
    """Parse a stopword file: one word per line (or comma/tab separated), ``#`` comments.

    Raises:
        ValueError: the data is not UTF-8 text, is too large, or holds no word.
    """
    if isinstance(data, bytes):
        if len(data) > _MAX_STOPWORD_FILE_BYTES:
            raise ValueError(f"Stopword file is {len(data):,} bytes; the limit is {_MAX_STOPWORD_FILE_BYTES:,}.")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(f"Stopword file is not UTF-8 text (byte {exc.start}); save it as UTF-8.") from exc
    words = set()
    for line in data.splitlines():
        line = line.split("#", 1)[0]
        for part in line.replace("\t", ",").split(","):
            word = strip_marker(part.strip())
            if word:
                words.add(unicodedata.normalize("NFC", word))
    if not words:
        raise ValueError("Stopword file holds no word (expected one word per line).")
    return frozenset(words)


@functools.lru_cache(maxsize=4)
def load_stopwords(path: str | Path | None = None) -> frozenset[str]:
    """Load a stopword list; the bundled Korean list when ``path`` is None."""
    path = Path(path) if path is not None else DEFAULT_STOPWORDS_PATH
    return parse_stopwords(path.read_bytes())


@functools.lru_cache(maxsize=200_000)
def is_function_only(surface: str) -> bool:
    """True when Kiwi analyses ``surface`` as function morphemes only (J*, E*, XS*, VCP, VCN).

    Only Hangul surfaces are analysed; Latin, digits and symbols are never function-only.
    """
    if not surface or not any("\uac00" <= ch <= "\ud7a3" or "\u3131" <= ch <= "\u318e" for ch in surface):
        return False
    morphs = morphemes(surface)
    return bool(morphs) and all(m.tag.startswith(FUNCTION_TAG_PREFIXES) for m in morphs)


class StopwordRule:
    """Decides whether a token surface is a stopword: list membership or the Kiwi POS rule.

    Args:
        words: the stopword list (surface forms without subword markers).
        use_pos_rule: also treat surfaces that Kiwi analyses as function morphemes only
            as stopwords.

    Example:
        >>> rule = StopwordRule(frozenset({"수"}))
        >>> rule.is_stopword("▁수"), rule.is_stopword("에서"), rule.is_stopword("혈당")
        (True, True, False)
    """

    def __init__(self, words: frozenset[str] | None = None, *, use_pos_rule: bool = True) -> None:
        self.words = load_stopwords() if words is None else frozenset(words)
        self.use_pos_rule = use_pos_rule

    def is_stopword(self, token: str) -> bool:
        return self.in_list(token) or (self.use_pos_rule and is_function_only(self._surface(token)))

    def in_list(self, token: str) -> bool:
        """True when the token's surface is in the stopword list (the POS rule aside)."""
        surface = self._surface(token)
        return bool(surface) and (surface in self.words or surface.lower() in self.words)

    @staticmethod
    def _surface(token: str) -> str:
        return unicodedata.normalize("NFC", strip_marker(token))

    def __len__(self) -> int:
        return len(self.words)

"""Korean language resources: Kiwi morphemes, stopwords and the stopword rule.

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
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_STOPWORDS_PATH = ASSETS_DIR / "stopwords_ko.txt"

#: Kiwi tag prefixes of content morphemes: a subword inside one of these in the input is not a
#: function word, whatever Kiwi makes of the fragment alone (``뇨`` of ``당뇨병``).
CONTENT_TAG_PREFIXES: tuple[str, ...] = ("NN", "NR", "NP", "VV", "VA", "MA", "MM", "XR", "SL", "SH", "SN")
#: Kiwi tag prefixes of function morphemes (particles, endings, suffixes, copulas).
FUNCTION_TAG_PREFIXES: tuple[str, ...] = ("J", "E", "XS", "VCP", "VCN")
#: Kiwi tags of content morphemes used for BM25 terms when ``content_only`` is set.
CONTENT_TAGS: frozenset[str] = frozenset(
    {"NNG", "NNP", "NNB", "NR", "NP", "VV", "VA", "MAG", "SL", "SH", "SN", "XR"}
)
_PUNCT_TAGS = frozenset({"SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW"})
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


def bm25_terms(text: str, *, content_only: bool = False) -> list[str]:
    """Terms for Korean BM25: Kiwi morphemes as ``form/tag`` strings.

    Both search backends index exactly these strings (OpenSearch receives them space-joined
    in a whitespace-analysed field), so they rank identically. Punctuation is dropped.
    """
    out = []
    for m in morphemes(text):
        if m.tag in _PUNCT_TAGS or m.tag.startswith("W_"):
            continue
        if content_only and m.tag not in CONTENT_TAGS:
            continue
        form = "".join(m.form.split())  # terms never contain whitespace
        if form:
            out.append(f"{form}/{m.tag}")
    return out


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
            raise ValueError(
                f"Stopword file is {len(data):,} bytes; the limit is {_MAX_STOPWORD_FILE_BYTES:,}."
            )
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"Stopword file is not UTF-8 text (byte {exc.start}); save it as UTF-8."
            ) from exc
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

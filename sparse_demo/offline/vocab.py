"""The demo model's vocabulary: XLM-R's SentencePiece pieces that Korean text needs.

:func:`build_vocabulary` keeps every XLM-R piece that contains Hangul, the pieces XLM-R uses to
tokenise Kiwi's lexicon (:func:`kiwi_lexicon`: the morpheme table of the ``kiwipiepy_model``
package, ~510k forms of common nouns, verb and adjective stems, adverbs, particles, endings and
proper nouns) and the bundled texts, and the single-character pieces of ASCII, Latin letters with
diacritics and the KS X 1001 (EUC-KR) set (hanja, Greek, Cyrillic, kana, symbols); the KS X 1001
Hangul syllables XLM-R lacks are added as new single-character pieces. Piece scores are XLM-R's,
so text tokenises as with XLM-R wherever its pieces are kept.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sparse_demo.modeling import restrict_unigram

logger = logging.getLogger(__name__)


#: Kiwi tags left out of the lexicon (unknown-word placeholders).
SKIPPED_TAGS = frozenset({"UN"})


#: Non-ASCII single characters kept besides the KS X 1001 set: Latin-1, Latin Extended-A/B, IPA.
LATIN_RANGE = ("\u00c0", "\u02af")


SPECIAL_PIECES = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def kiwi_lexicon() -> list[str]:
    """Every morpheme form of Kiwi's dictionary (the ``kiwipiepy_model`` package), sorted.

    Kiwi's morpheme table holds its built-in lexicon (common nouns, verb and adjective stems,
    adverbs, particles, endings, ...) and the proper nouns of its default dictionaries.
    """
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    forms: set[str] = set()
    index = 0
    while True:
        try:
            morpheme = kiwi.morpheme(index)
        except ValueError:  # past the last id
            break
        index += 1
        if morpheme.form and morpheme.tag not in SKIPPED_TAGS:
            forms.add(morpheme.form)
    if not forms:
        raise RuntimeError("Kiwi's morpheme table is empty; is the kiwipiepy_model package installed?")
    return sorted(forms)


def _has_hangul(text: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e" for c in text)


def _is_kept_char(char: str) -> bool:
    """Single characters kept as pieces: ASCII, Latin with diacritics, KS X 1001 (hanja, symbols, ...)."""
    if char.isascii():
        return char.isprintable()
    if LATIN_RANGE[0] <= char <= LATIN_RANGE[1]:
        return True
    return _in_ksx1001(char)


def _in_ksx1001(char: str) -> bool:
    """A character of the KS X 1001 set: two bytes in EUC-KR (Python's codec also writes
    8-byte jamo sequences for the other syllables; those are not in the set)."""
    try:
        return len(char.encode("euc-kr")) == 2
    except UnicodeEncodeError:
        return False


def ksx1001_syllables() -> list[str]:
    """The 2,350 Hangul syllables of KS X 1001 (the common-use set)."""
    out = []
    for cp in range(0xAC00, 0xD7A4):
        if _in_ksx1001(chr(cp)):
            out.append(chr(cp))
    return out


@dataclass
class VocabularyReport:
    """How the demo vocabulary was chosen (recorded in ``build_record.json``)."""

    base_tokenizer: str
    base_size: int
    kept: int
    from_hangul: int
    from_lexicon: int
    from_bundled: int
    from_single_chars: int
    added_syllables: int
    lexicon_forms: int
    unk_rate_bundled: float = 0.0
    tokens_bundled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _used_ids(tokenizer: Any, texts: Sequence[str]) -> set[int]:
    used: set[int] = set()
    for start in range(0, len(texts), 4096):
        for enc in tokenizer.encode_batch(list(texts[start : start + 4096]), add_special_tokens=False):
            used.update(enc.ids)
    return used


def resolve_tokenizer_file(tokenizer: str) -> Path:
    """The ``tokenizer.json`` of a folder, or of a Hub id through the local Hugging Face cache / the Hub.

    Raises:
        FileNotFoundError: neither a folder with ``tokenizer.json`` nor a downloadable Hub id.
    """
    folder = Path(tokenizer).expanduser()
    if folder.is_dir():
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"{folder} has no tokenizer.json (a fast SentencePiece tokenizer is needed)")
        return path
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(tokenizer, "tokenizer.json"))
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, ...: one message
        raise FileNotFoundError(
            f"tokenizer {tokenizer!r} is neither a folder with tokenizer.json nor a reachable Hub id ({exc})"
        ) from exc


def build_vocabulary(
    tokenizer_file: Path, lexicon: Sequence[str], bundled: Sequence[str], out_dir: Path
) -> VocabularyReport:
    """Write the pruned tokenizer (``tokenizer.json``, ``tokenizer_config.json``) to ``out_dir``.

    Kept, in the base order: the special tokens, every piece containing Hangul, the pieces the
    base tokenizer uses on ``lexicon`` and ``bundled``, and the single-character pieces (with and
    without ``▁``) of the characters :func:`_is_kept_char` accepts; then new single-syllable
    pieces for the KS X 1001 Hangul syllables the base lacks (scored below every other piece, so
    they are used only where nothing else fits). Piece scores are the base's, so text
    tokenises as with the base tokenizer wherever the base's pieces are kept.

    Raises:
        ValueError: the base tokenizer is not a Unigram (SentencePiece) ``tokenizer.json``.
    """
    from tokenizers import Tokenizer

    spec = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    model = spec.get("model", {})
    if model.get("type") != "Unigram":
        raise ValueError(
            f"{tokenizer_file} is a {model.get('type')} tokenizer; the demo model needs a Unigram "
            "(SentencePiece) one such as XLM-R's"
        )
    vocab: list[list[Any]] = model["vocab"]
    base = Tokenizer.from_file(str(tokenizer_file))
    specials = {i for i, (piece, _s) in enumerate(vocab) if piece in SPECIAL_PIECES}
    hangul = {i for i, (piece, _s) in enumerate(vocab) if _has_hangul(piece)}
    lex = _used_ids(base, list(lexicon))
    bun = _used_ids(base, list(bundled))
    singles = set()
    for i, (piece, _s) in enumerate(vocab):
        bare = piece[1:] if piece.startswith("▁") else piece
        if piece == "▁" or (len(bare) == 1 and _is_kept_char(bare)):
            singles.add(i)
    keep = sorted(specials | hangul | lex | bun | singles)
    present = {piece for piece, _s in vocab}
    floor = min(float(s) for _p, s in vocab) - 1.0
    added = [[ch, floor] for ch in ksx1001_syllables() if ch not in present]
    pieces = [vocab[i] for i in keep]
    mask_at = next(j for j, (piece, _s) in enumerate(pieces) if piece == "<mask>")
    pieces = pieces[:mask_at] + added + pieces[mask_at:]  # <mask> stays last, as in XLM-R
    restrict_unigram(spec, pieces)
    new_id = {piece: j for j, (piece, _s) in enumerate(pieces)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    config = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "cls_token": "<s>",
        "sep_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
        "add_prefix_space": True,
        "model_max_length": 512,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    report = VocabularyReport(
        base_tokenizer=str(tokenizer_file),
        base_size=len(vocab),
        kept=len(pieces),
        from_hangul=len(hangul),
        from_lexicon=len(lex),
        from_bundled=len(bun),
        from_single_chars=len(singles),
        added_syllables=len(added),
        lexicon_forms=len(lexicon),
    )
    pruned = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    unk = new_id["<unk>"]
    total = unknown = 0
    for start in range(0, len(bundled), 4096):
        for enc in pruned.encode_batch(list(bundled[start : start + 4096]), add_special_tokens=False):
            total += len(enc.ids)
            unknown += sum(1 for i in enc.ids if i == unk)
    report.tokens_bundled, report.unk_rate_bundled = total, unknown / max(1, total)
    logger.info(
        "Vocabulary: %d of %d pieces (+%d syllables); <unk> rate on bundled texts %.5f",
        len(pieces),
        len(vocab),
        len(added),
        report.unk_rate_bundled,
    )
    return report


def unk_rates(tokenizer_files: dict[str, Path], texts: Sequence[str]) -> dict[str, float]:
    """Share of ``<unk>`` among the tokens of ``texts`` for each tokenizer file."""
    from tokenizers import Tokenizer

    out = {}
    for name, path in tokenizer_files.items():
        tok = Tokenizer.from_file(str(path))
        unk = tok.token_to_id("<unk>")
        total = unknown = 0
        for start in range(0, len(texts), 4096):
            for enc in tok.encode_batch(list(texts[start : start + 4096]), add_special_tokens=False):
                total += len(enc.ids)
                unknown += enc.ids.count(unk)
        out[name] = round(unknown / max(1, total), 6)
    return out


__all__ = [
    "VocabularyReport",
    "build_vocabulary",
    "kiwi_lexicon",
    "ksx1001_syllables",
    "resolve_tokenizer_file",
    "unk_rates",
]

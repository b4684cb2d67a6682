"""Build small MLM encoders and tokenizers locally (offline; for tests and from-scratch training).

``train_tokenizer`` makes an XLM-R-style SentencePiece (Unigram, ``▁`` word marker) tokenizer
from texts; ``make_mlm`` makes a randomly initialised ``XLMRobertaForMaskedLM`` of a named size
for any tokenizer. Both save as standard folders that :class:`~sparse_demo.encoder.SpladeEncoder`
and ``transformers.AutoModelForMaskedLM`` load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

ModelSize = Literal["tiny", "mini", "small"]
_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    "mini": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 512},
    "small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
}


def restrict_unigram(spec: dict[str, Any], pieces: list[list[Any]]) -> dict[str, Any]:
    """A Unigram ``tokenizer.json`` spec with its vocabulary replaced by ``pieces``, every id remapped.

    ``pieces`` is ``[[piece, score], ...]`` in the new id order; it must hold the ``<unk>`` piece and every
    special token the spec names. The unknown id, the added tokens and the post-processor's special-token
    ids are remapped by their text, so pieces may be dropped, kept, reordered or added (the one remap
    both vocabulary builders use: the fine-tune's pruning and the demo model's).

    Example:
        >>> spec = {"model": {"type": "Unigram", "unk_id": 2, "vocab": [["<s>", 0], ["a", -1], ["<unk>", 0]]},
        ...         "added_tokens": [{"id": 0, "content": "<s>"}],
        ...         "post_processor": {"special_tokens": {"<s>": {"ids": [0], "tokens": ["<s>"]}}}}
        >>> out = restrict_unigram(spec, [["<unk>", 0], ["<s>", 0]])
        >>> out["model"]["unk_id"], out["added_tokens"][0]["id"], out["post_processor"]["special_tokens"]["<s>"]["ids"]
        (0, 1, [1])
    """
    old_vocab = spec["model"]["vocab"]
    new_id = {piece: j for j, (piece, _score) in enumerate(pieces)}
    spec["model"]["vocab"] = pieces
    if spec["model"].get("unk_id") is not None:
        spec["model"]["unk_id"] = new_id[old_vocab[spec["model"]["unk_id"]][0]]
    for tok in spec.get("added_tokens", []):
        tok["id"] = new_id[tok["content"]]
    post = spec.get("post_processor") or {}
    for proc in [post, *post.get("processors", [])]:
        for value in (proc.get("special_tokens") or {}).values():
            value["ids"] = [new_id[t] for t in value["tokens"]]
        for key in ("sep", "cls"):
            if isinstance(proc.get(key), list):
                proc[key][1] = new_id[proc[key][0]]
    return spec


_REQUIRED_STEP = 1e-4  # tokenizers' UnigramTrainer scores each added required character this much above the last


def canonical_pieces(pieces: list[list[Any]], special: Iterable[str] = SPECIAL_TOKENS) -> list[list[Any]]:
    """Trained Unigram ``[[piece, score], ...]`` in an order, and with scores, that do not depend on the run.

    tokenizers' ``UnigramTrainer`` is not reproducible, whatever the seed: the characters it must keep but
    did not learn as pieces come out of a hash set in a different order on every call, each scored by its
    position (the model's lowest score plus ``1e-4`` per step), and pieces of equal score come out in hash
    order; the other scores differ in their last floating-point digits. Here the scores are rounded to 8
    decimals, that low band (the lowest score and every score within ``1e-4`` per piece of it) is given its
    scores in the order of the pieces' text, and everything is sorted by (score descending, text); special
    tokens stay first. So the same texts always give the same tokenizer, and a from-scratch run is
    reproducible.

    Example:
        >>> canonical_pieces([["<s>", 0.0], ["ab", -1.000000000001], ["c", -5.0], ["a", -5.0001], ["b", -5.0002]])
        [['<s>', 0.0], ['ab', -1.0], ['a', -5.0], ['b', -5.0001], ['c', -5.0002]]
    """
    special = set(special)
    head = [[piece, score] for piece, score in pieces if piece in special]
    rest = [(piece, round(float(score), 8)) for piece, score in pieces if piece not in special]
    if not rest:
        return head
    low = min(score for _, score in rest)
    size = 0
    while True:
        band = [i for i, (_, score) in enumerate(rest) if score <= low + _REQUIRED_STEP * size + 1e-7]
        if len(band) == size:
            break
        size = len(band)
    texts = sorted(rest[i][0] for i in band)
    scores = sorted((rest[i][1] for i in band), reverse=True)
    in_band = set(band)
    rest = [item for i, item in enumerate(rest) if i not in in_band] + list(zip(texts, scores))
    rest.sort(key=lambda item: (-item[1], item[0]))
    return head + [[piece, score] for piece, score in rest]


def _canonical_unigram(tok):
    """``tok`` (a trained Unigram ``tokenizers.Tokenizer``) rebuilt from :func:`canonical_pieces`."""
    import json

    from tokenizers import Tokenizer

    spec = json.loads(tok.to_str())
    spec = restrict_unigram(spec, canonical_pieces(spec["model"]["vocab"]))
    return Tokenizer.from_str(json.dumps(spec))


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4000):
    """Train an XLM-R-style Unigram tokenizer (``<s> X </s>``, ``▁`` marker) on ``texts``.

    Returns a ``transformers`` fast tokenizer with ``<s> <pad> </s> <unk> <mask>`` as ids 0-4.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < len(SPECIAL_TOKENS) + 10:
        raise ValueError(f"vocab_size must be at least {len(SPECIAL_TOKENS) + 10}, got {vocab_size}")
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), unk_token="<unk>", show_progress=False
    )
    texts = [t for t in texts if t and t.strip()]
    try:
        tok.train_from_iterator(texts, trainer=trainer)
    except Exception as exc:  # tokenizers raises a bare Exception when the texts hold more characters
        chars = len(set("".join(texts)))
        raise ValueError(
            f"a {vocab_size:,}-piece tokenizer cannot hold the {chars:,} distinct characters of these texts "
            f"({exc}); ask for a larger vocabulary"
        ) from exc
    tok = _canonical_unigram(tok)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=512,
    )


def make_mlm(tokenizer, size: ModelSize = "tiny", *, max_positions: int = 514, seed: int = 0):
    """A randomly initialised ``XLMRobertaForMaskedLM`` sized for ``tokenizer``.

    Args:
        tokenizer: any transformers tokenizer (its length sets the vocabulary size).
        size: ``tiny`` (hidden 32, 2 layers), ``mini`` (128, 2) or ``small`` (256, 4).
        max_positions: position embeddings (XLM-R uses 514 = 512 + padding offset).
        seed: torch seed for reproducible weights.
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM

    if size not in _SIZES:
        raise ValueError(f"size must be one of {sorted(_SIZES)}, got {size!r}")
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0,
        eos_token_id=tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 2,
        type_vocab_size=1,
        **_SIZES[size],
    )
    model = XLMRobertaForMaskedLM(config)
    model.config.architectures = ["XLMRobertaForMaskedLM"]
    return model

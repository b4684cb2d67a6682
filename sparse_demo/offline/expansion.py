"""Expansions for the demo models: Kiwi's CoNg model as a teacher, distilled into the MLM head.

A SPLADE model is worth exploring for what it adds to a text (당뇨병 → 인슐린; 남자 → 남성, 사람),
and a small model trained on a few hundred bundled pairs never learns that by itself. The
semantic source here ships with the project's own dependencies: ``kiwipiepy_model`` (Apache-2.0)
holds Kiwi's CoNg model, whose :meth:`kiwipiepy.Kiwi.most_similar_morphemes` gives the content
morphemes closest to a morpheme (cosine of CoNg embeddings).

**The teacher** (:class:`CongTeacher`). For a text, Kiwi (CoNg model) finds its morphemes; for each
content morpheme of an :data:`EXPANDED_TAGS` tag it asks for the ``top_n`` most similar morphemes
and keeps those that

* have an :data:`EXPANDED_TAGS` tag, a CoNg similarity of at least ``min_score``, and a form the
  text does not already hold;
* tokenise (in the model's vocabulary, as a word: ``▁form``) into at most ``max_pieces`` pieces,
  none shorter than ``min_piece_chars`` characters (a single-syllable piece such as ``당`` belongs
  to too many words to be a meaningful expansion), none of them a piece of the text itself.

Each kept piece gets the target weight ``weight * similarity * rarity`` (the largest over the
morphemes that propose it). ``rarity`` is 1 unless ``rarity_ref`` is set (the shipped builds set
20,000: :data:`sparse_demo.offline.recipe.DEMO_TEACHER`); then it is
``clamp(ln(id) / ln(rarity_ref), rarity_floor, 1)`` of the proposed morpheme's CoNg id (the model numbers
morphemes by frequency): with ``rarity_ref`` 20,000 and at the same similarity,
a frequent, unspecific neighbour such as 방식 (of 방법) proposes about 70% of what a specific one such
as 인슐린 (of 당뇨병) does, so the expansion mass goes to the words that tell texts apart. The text's
own content pieces (content in context, as the Explore tab judges them: :meth:`CongTeacher.own_pieces`)
get the target :data:`OWN_TARGET`; its other input pieces (particles, endings, punctuation,
stopword-list words) get ``function_target``: 0 for the V26-style teacher (which knows stopwords, as
the card's penalties do), twice :data:`OWN_TARGET` for the V25-style one (which does not, and whose
function words outrank content words as V25's did), or no target at all.
With ``length_norm`` (0.25 with ``length_ref`` 12 in the shipped builds), a text whose targets weigh more
than ``length_ref`` in all has every target scaled by ``(length_ref / L1) ** length_norm``: without it, a
document's vector gains a full-weight term for every word it holds and an expansion for many of them, so
the dot product favours long documents for being long (a model built without it ranks a longer sentence
above a shorter paraphrase that BM25, which normalises by length, finds: README, *Length normalisation*).

**Distillation** (:func:`distil_expansions`): the lexically initialised model is trained to
produce the teacher's vector (squared error over the whole vocabulary except the free pieces,
every other piece's target being 0) on the bundled training texts plus :func:`lexicon_texts`
(the CoNg model's most frequent content morphemes as one-word texts, so the expansions reach
words the bundled pairs never use). The retrieval training (the card's loss) then starts from it, and
keeps the teacher's vectors as one of its terms (the loss's vector distillation, ``lambda_vector_kd``), so
that learning to retrieve on a few hundred pairs does not wash out what the teacher added.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: Tags of the morphemes that are expanded and that may be proposed as expansions.
EXPANDED_TAGS: frozenset[str] = frozenset({"NNG", "NNP", "VV", "VA", "XR"})
#: Target weight of a text's own content pieces during distillation.
OWN_TARGET = 1.0
#: The distillation's default slope below 0 for an expansion the student does not produce yet (:func:`_pooled`).
DISTIL_LEAK = 0.1


def _base_tag(tag: Any) -> str:
    return str(tag).split("-")[0]


def frequent_verb(tag: Any, morpheme_id: int, below: int) -> bool:
    """A verb or adjective stem (VV, VA) whose CoNg id is below ``below`` (ids follow frequency: 하, 되, 생기)."""
    return _base_tag(tag) in ("VV", "VA") and morpheme_id < below


@dataclass(frozen=True)
class TeacherSettings:
    """What the CoNg teacher proposes (see the module docstring).

    Attributes:
        top_n: similar morphemes asked for per content morpheme.
        min_score: lowest CoNg similarity kept.
        weight: an expansion piece's target is ``weight * similarity``.
        max_pieces: most pieces an expansion word may tokenise into.
        min_piece_chars: shortest piece (without the word-start marker) an expansion may add.
        function_target: the target of a text's other input pieces (particles, endings, punctuation):
            None leaves them (and special tokens) free; 0 targets them and special tokens at 0 (the
            V26-style teacher, which knows stopwords); a positive value targets them at that value, a content
            piece's target being 1 (the V25-style teacher, which does not know stopwords; special tokens stay
            free).
        rarity_ref: 0, or an expansion's target is also scaled by ``clamp(ln(id) / ln(rarity_ref), rarity_floor, 1)``
            where ``id`` is its CoNg morpheme id (the model's ids follow frequency): frequent, unspecific words
            (방법, 결과) propose less weight than specific ones (인슐린, 임대차).
        rarity_floor: the smallest such factor.
        min_verb_id: verb and adjective stems (VV, VA) with a CoNg id below this (the most frequent ones:
            하, 되, 있, 보, 만들, 생기) are neither expanded (unless ``expand_frequent_verbs``) nor proposed: they
            carry little meaning of their own, and their CoNg neighbours are each other and generic nouns
            (하 → 보, 되, 생각), which a model would then add to every question that ends in 하나요 or 있나요.
            0: no such rule.
        max_indegree: 0, or an expansion proposed by more than this many of the CoNg model's first
            ``indegree_words`` content morphemes (its in-degree in their nearest-neighbour graph, counted with the
            settings above) has its target scaled by ``max_indegree / in-degree``: the graph's hubs (사람, 방식,
            and rare-word hubs such as 가소롭 or 섬멸) are proposed for unrelated texts alike, so they match
            unrelated texts to each other, as a term found in every document would without an IDF.
        indegree_words: how many morphemes the in-degree is counted over.
        expand_frequent_verbs: with ``min_verb_id``, the frequent verb and adjective stems are still expanded
            (먹 → 마시, 드시; 치 → 때리, 두드리) though never proposed: the rule then only keeps stems such as 나오 and
            생기 out of every text's vector, and the verbs of a text (captions are mostly verbs: 먹고 있다,
            자르고 있다) keep their expansions.
        length_norm: 0, or a text whose target vector weighs more than ``length_ref`` in all (its L1 norm) has
            every target scaled by ``(length_ref / L1) ** length_norm``: a long text's terms each weigh less,
            as BM25's length normalisation does, so the student learns vectors whose dot product does not
            favour a document for being long (many terms, many expansions: more ways to match anything).
        length_ref: the L1 norm below which a target vector is not scaled.
    """

    top_n: int = 10
    min_score: float = 0.55
    weight: float = 0.8
    max_pieces: int = 2
    min_piece_chars: int = 2
    function_target: float | None = None
    rarity_ref: int = 0
    rarity_floor: float = 0.5
    min_verb_id: int = 0
    max_indegree: int = 0
    indegree_words: int = 12_000
    expand_frequent_verbs: bool = False
    length_norm: float = 0.0
    length_ref: float = 4.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cong_kiwi():
    """A Kiwi analyser with the CoNg model (from ``kiwipiepy_model``), or ``ValueError`` naming what is missing."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as exc:  # pragma: no cover - a dependency
        raise ValueError("kiwipiepy is required for the CoNg teacher") from exc
    try:
        return Kiwi(model_type="cong")
    except Exception as exc:  # noqa: BLE001 - an old kiwipiepy_model without cong.mdl
        raise ValueError(f"Kiwi's CoNg model could not load (kiwipiepy_model >= 0.21 has it): {exc}") from exc


class CongTeacher:
    """Teacher vectors (piece id -> target weight) for texts, in a tokenizer's vocabulary.

    Args:
        tokenizer: the student's tokenizer (a transformers tokenizer).
        settings: what is proposed.
        kiwi: a CoNg Kiwi (default: :func:`cong_kiwi`).
        rule: the stopword rule that decides which input pieces are content in context (default: the
            bundled list with the part-of-speech rule, as the Explore tab and the training penalties use).
    """

    def __init__(
        self, tokenizer: Any, settings: TeacherSettings | None = None, kiwi: Any = None, rule: Any = None
    ) -> None:
        from sparse_demo.korean import StopwordRule

        self.tokenizer = tokenizer
        self.settings = settings or TeacherSettings()
        self.rule = rule if rule is not None else StopwordRule()
        self.kiwi = kiwi if kiwi is not None else cong_kiwi()
        self._special = set(getattr(tokenizer, "all_special_ids", []) or [])
        self._similar = functools.lru_cache(maxsize=None)(self._similar_uncached)
        self._word_pieces = functools.lru_cache(maxsize=None)(self._word_pieces_uncached)
        self._indegree: dict[str, int] | None = None

    # ------------------------------------------------------------------ lookups
    def _similar_uncached(self, form: str, tag: str) -> tuple[tuple[str, str, float, float], ...]:
        """``(form, base tag, score, rarity factor)`` of the ``top_n`` nearest morphemes."""
        s = self.settings
        try:
            found = self.kiwi.most_similar_morphemes((form, tag), top_n=s.top_n)
        except Exception:  # noqa: BLE001 - a morpheme CoNg has no embedding for
            return ()
        return tuple(
            (m.form, _base_tag(m.tag), float(m.score), self._rarity(int(m.id)))
            for m in found
            if not frequent_verb(m.tag, int(m.id), s.min_verb_id)
        )

    def indegree(self) -> dict[str, int]:
        """Form -> how many of the first ``indegree_words`` content morphemes propose it (``min_score`` and the
        stem rule applied); counted once, on first use."""
        if self._indegree is None:
            s = self.settings
            counts: dict[str, int] = {}
            for idx, form, tag in itertools.islice(_content_morphemes(self.kiwi), s.indegree_words):
                if self._not_expanded(tag, idx):
                    continue
                for other, _tag, score, _rarity in self._similar(form, tag):
                    if score >= s.min_score and other != form:
                        counts[other] = counts.get(other, 0) + 1
            self._indegree = counts
        return self._indegree

    def _hub_factor(self, form: str) -> float:
        limit = self.settings.max_indegree
        if limit <= 0:
            return 1.0
        degree = self.indegree().get(form, 0)
        return min(1.0, limit / degree) if degree else 1.0

    def _not_expanded(self, tag: Any, morpheme_id: int) -> bool:
        """Whether a text's morpheme is left without expansions by the verb rule."""
        s = self.settings
        return not s.expand_frequent_verbs and frequent_verb(tag, morpheme_id, s.min_verb_id)

    def _rarity(self, morpheme_id: int) -> float:
        s = self.settings
        if s.rarity_ref <= 1:
            return 1.0
        return min(1.0, max(s.rarity_floor, math.log(max(morpheme_id, 2)) / math.log(s.rarity_ref)))

    def _word_pieces_uncached(self, form: str) -> tuple[int, ...]:
        """The pieces of ``form`` as a word, or () when it breaks into too many or too short pieces."""
        pieces = self.tokenizer.tokenize(form)
        s = self.settings
        if not pieces or len(pieces) > s.max_pieces:
            return ()
        if any(len(p.lstrip("▁")) < s.min_piece_chars for p in pieces):
            return ()
        ids = self.tokenizer.convert_tokens_to_ids(pieces)
        if self.tokenizer.unk_token_id in ids:
            return ()
        return tuple(ids)

    def _piece(self, piece_id: int) -> str:
        return self.tokenizer.convert_ids_to_tokens(piece_id)

    # ------------------------------------------------------------------ vectors
    def own_pieces(self, text: str, max_length: int = 192) -> tuple[set[int], set[int]]:
        """``(content, other)``: the text's input piece ids that are content in context, and the rest.

        "In context" is exactly the Explore tab's judgement (:func:`sparse_demo.analysis.input_token_categories`
        with the teacher's stopword rule): the piece takes the category of the Kiwi morpheme it lies in, so
        the teacher that targets function pieces at 0 (V26-style) suppresses what the app counts as stopword
        leakage, list words such as ``수/NNB`` or ``더/MAG`` included, and nothing else.
        """
        from sparse_demo.analysis import input_token_categories
        from sparse_demo.korean import morphemes, strip_marker

        enc = self.tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
        ids = [int(i) for i in enc["input_ids"]]
        categories = input_token_categories(ids, enc["offset_mapping"], morphemes(text), self.rule)
        content = {
            i for i in ids if i not in self._special and categories.get(i) == "content" and strip_marker(self._piece(i))
        }  # a bare word-start piece is whitespace, never content
        return content, set(ids) - content

    def expansions(self, text: str, own: Iterable[int] = ()) -> dict[int, float]:
        """Expansion piece id -> target weight for ``text`` (no piece of ``own``)."""
        s = self.settings
        tokens = self.kiwi.tokenize(text)
        forms = {t.form for t in tokens}
        skip = set(own)
        out: dict[int, float] = {}
        for t in tokens:
            if _base_tag(t.tag) not in EXPANDED_TAGS or self._not_expanded(t.tag, int(t.id)):
                continue
            for form, tag, score, rarity in self._similar(t.form, str(t.tag)):
                if score < s.min_score or tag not in EXPANDED_TAGS or form in forms:
                    continue
                value = s.weight * score * rarity * self._hub_factor(form)
                for pid in self._word_pieces(form):
                    if pid in skip or pid in self._special:
                        continue
                    out[pid] = max(out.get(pid, 0.0), value)
        return out

    def target(self, text: str, max_length: int = 192) -> tuple[dict[int, float], set[int]]:
        """``(targets, free)``: piece id -> target weight, and the ids left without a target."""
        targets, free, _ = self.target_parts(text, max_length)
        return targets, free

    def target_parts(self, text: str, max_length: int = 192) -> tuple[dict[int, float], set[int], set[int]]:
        """``(targets, free, expansions)``: :meth:`target` and the ids among its targets that are expansions."""
        content, other = self.own_pieces(text, max_length)
        targets = dict.fromkeys(content, OWN_TARGET)
        expansions = self.expansions(text, content | other)
        targets.update(expansions)
        function = other - self._special
        ft = self.settings.function_target
        if ft is None:  # free: left to the retrieval training
            free = function | self._special
        elif ft > 0:  # a teacher that knows no stopwords: every input piece counts (V25-style)
            targets.update(dict.fromkeys(function, ft))
            free = set(self._special)
        else:
            free = set()  # function pieces and special tokens target 0 (V26-style)
        return self._length_normalised(targets), free, set(expansions)

    def _length_normalised(self, targets: dict[int, float]) -> dict[int, float]:
        """``targets`` scaled by ``(length_ref / L1) ** length_norm`` when their L1 norm exceeds ``length_ref``."""
        s = self.settings
        total = sum(targets.values())
        if not s.length_norm or total <= s.length_ref:
            return targets
        scale = (s.length_ref / total) ** s.length_norm
        return {k: v * scale for k, v in targets.items()}


def _content_morphemes(kiwi: Any, first_id: int = 200, max_id: int = 60_000) -> Iterator[tuple[int, str, str]]:
    """``(id, form, tag)`` of the CoNg model's content morphemes by id (roughly by frequency), single-syllable
    nouns and roots left out."""
    for idx in range(first_id, max_id):
        try:
            m = kiwi.morpheme(idx)
        except Exception:  # noqa: BLE001 - past the model's last id
            return
        tag = _base_tag(m.tag)
        if tag not in EXPANDED_TAGS or not m.form or len(m.form) < 2 and tag in ("NNG", "NNP", "XR"):
            continue
        yield idx, m.form, str(m.tag)


def lexicon_texts(kiwi: Any, count: int, *, first_id: int = 200, max_id: int = 60_000) -> list[str]:
    """The CoNg model's first ``count`` content morphemes (by id, roughly by frequency) as one-word texts.

    Nouns and roots are their form; verb and adjective stems get the dictionary ending (먹 → 먹다).
    """
    out: list[str] = []
    seen: set[str] = set()
    for _idx, form, tag in _content_morphemes(kiwi, first_id, max_id):
        if len(out) >= count:
            break
        text = form + "다" if _base_tag(tag) in ("VV", "VA") else form
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


#: Particle pairs (after a final consonant, after a vowel) and other function words for :func:`function_phrases`.
_PARTICLES = (
    ("이", "가"),
    ("을", "를"),
    ("은", "는"),
    ("과", "와"),
    ("으로", "로"),
    ("에", "에"),
    ("에서", "에서"),
    ("의", "의"),
    ("도", "도"),
    ("만", "만"),
    ("까지", "까지"),
)
_TEMPLATES = ("{n}{p}", "{n}{p} 있다", "한 {n}{p}", "그 {n}{p}", "{n}{p} 하고", "{n}{p} 합니다", "{n}{p} 수 있습니다")


def _has_final_consonant(word: str) -> bool:
    last = word[-1]
    return "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0


def function_phrases(words: Sequence[str], count: int, seed: int = 0) -> list[str]:
    """Short phrases of a noun with particles, determiners and endings (seeded), e.g. ``한 남자가 있다``.

    Function words occur in every text but in none of the one-word lexicon texts: these phrases let the
    distillation teach what each style does with them (0 for the V26-style teacher, above content for
    the V25-style one) on words the bundled pairs never use.
    """
    rng = random.Random(seed)
    nouns = [w for w in words if not w.endswith("다")]
    out: list[str] = []
    for noun in nouns[:count]:
        after_consonant, after_vowel = rng.choice(_PARTICLES)
        particle = after_consonant if _has_final_consonant(noun) else after_vowel
        out.append(rng.choice(_TEMPLATES).format(n=noun, p=particle))
    return out


@dataclass
class DistilResult:
    """What :func:`distil_expansions` did (for the build record)."""

    texts: int
    lexicon_texts: int
    steps: int
    seconds: float
    loss_first: float
    loss_last: float
    mean_expansions: float
    settings: dict[str, Any]
    graph_pieces: int = 0
    leak: float = DISTIL_LEAK

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _pooled(logits: Any, attention_mask: Any, positive: Any, leak: float = DISTIL_LEAK) -> Any:
    """The card's vector ``log(1 + relu(z))``, ``z = max_t logits``, leaky below 0 where the target is positive.

    ``relu`` has no gradient below 0, and an expansion the model does not produce yet sits there (its
    logit is negative at every position). Where the target is positive the value is
    ``log(1 + relu(z)) + leak * min(z, 0)``: the card's value for ``z >= 0``, and below 0 a negative
    value whose gradient raises ``z`` until the expansion really fires (a smooth surrogate such as
    softplus would be satisfied with ``z < 0``, a vector that is still 0 at inference). Targets of 0
    keep the card's value, so nothing pushes other logits further below 0.
    """
    import torch

    masked = logits.float().masked_fill(~attention_mask.bool().unsqueeze(-1), float("-inf"))
    z = masked.max(dim=1).values
    value = torch.log1p(torch.relu(z))
    return torch.where(positive, value + leak * torch.clamp(z, max=0.0), value)


def distil_expansions(  # noqa: PLR0913 - one training loop's knobs
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    teacher: CongTeacher,
    *,
    lexicon: Sequence[str] = (),
    lexicon_limit: int | None = None,
    epochs: int = 2,
    batch_size: int = 64,
    lr: float = 1e-3,
    max_length: int = 192,
    seed: int = 0,
    leak: float = DISTIL_LEAK,
    progress: Callable[[int, int, float], None] | None = None,
) -> DistilResult:
    """Train ``model`` in place to produce the teacher's vectors (see the module docstring).

    ``leak`` is the slope below 0 of an expansion the model does not produce yet (:func:`_pooled`).

    Texts are sorted into batches of similar length (seeded order), so one-word lexicon texts do
    not pad to a passage's length; a lexicon text the teacher proposes no expansion for is dropped
    (it would teach nothing the lexical init does not already do).
    """
    import torch

    from sparse_demo.train.losses import dense_targets

    t0 = time.time()
    own_texts = list(dict.fromkeys(texts))
    parts = [teacher.target_parts(t, max_length) for t in own_texts]
    items = list(own_texts)
    kept_lexicon = 0
    for word in dict.fromkeys(lexicon):
        if lexicon_limit is not None and kept_lexicon >= lexicon_limit:
            break
        if word in own_texts:
            continue
        part = teacher.target_parts(word, max_length)
        if part[2]:
            items.append(word)
            parts.append(part)
            kept_lexicon += 1
    lengths = [len(tokenizer(t, truncation=True, max_length=max_length)["input_ids"]) for t in items]
    n_exp = [len(exp) for _, _, exp in parts]
    rng = random.Random(seed)
    order = sorted(range(len(items)), key=lambda i: (lengths[i], i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    total = max(1, epochs * len(batches))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1.0 - s / total))
    vocab = model.get_output_embeddings().weight.shape[0]
    model.train()
    step, first, last = 0, float("nan"), float("nan")
    for _ in range(epochs):
        rng.shuffle(batches)
        for batch in batches:
            enc = tokenizer(
                [items[i] for i in batch], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            target, weight = dense_targets([parts[i][:2] for i in batch], vocab)
            pooled = _pooled(out.logits, enc["attention_mask"], target > 0, leak)
            loss = ((pooled - target) ** 2 * weight).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            value = float(loss.detach())
            first = value if step == 1 else first
            last = value
            if progress is not None:
                progress(step, total, value)
    model.eval()
    return DistilResult(
        texts=len(own_texts),
        lexicon_texts=kept_lexicon,
        steps=step,
        seconds=time.time() - t0,
        loss_first=first,
        loss_last=last,
        mean_expansions=sum(n_exp) / max(1, len(n_exp)),
        settings=teacher.settings.to_dict(),
        leak=leak,
    )


__all__ = [
    "DISTIL_LEAK",
    "EXPANDED_TAGS",
    "OWN_TARGET",
    "CongTeacher",
    "DistilResult",
    "TeacherSettings",
    "cong_kiwi",
    "distil_expansions",
    "frequent_verb",
    "lexicon_texts",
]


def expansion_graph(teacher: CongTeacher, words: Sequence[str]) -> dict[int, dict[int, float]]:
    """Piece -> {expansion piece: target weight} from one-word texts that are a single piece of the vocabulary."""
    graph: dict[int, dict[int, float]] = {}
    for word in words:
        pieces = teacher._word_pieces(word)  # noqa: SLF001 - the teacher's own cached tokenisation
        if len(pieces) != 1:
            continue
        exp = teacher.expansions(word, pieces)
        if exp:
            row = graph.setdefault(pieces[0], {})
            for pid, w in exp.items():
                row[pid] = max(row.get(pid, 0.0), w)
    return graph


def graph_init(model: Any, graph: dict[int, dict[int, float]], strength: float = 0.5) -> int:
    """Pull each piece's (tied) embedding towards its expansions': ``E_i += strength * sum_j w_ij E_j``, norms kept.

    With the lexical init's head (``logits = E . h + b``, ``h`` about the input piece's embedding) the
    logit of expansion ``j`` at piece ``i`` rises by about ``strength * w_ij * |E_j|^2``: an initialisation
    of the output layer from CoNg's morpheme similarities, which the distillation then sharpens.
    Returns the number of pieces moved.
    """
    import torch

    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        base = emb.detach().clone()
        norms = base.norm(dim=1, keepdim=True)
        for i, row in graph.items():
            ids = torch.tensor(list(row), dtype=torch.long)
            weights = torch.tensor(list(row.values()), dtype=base.dtype).unsqueeze(1)
            moved = base[i] + strength * (weights * base[ids]).sum(dim=0)
            emb[i] = moved * (norms[i] / moved.norm().clamp_min(1e-6))
    return len(graph)

"""The demo model's recipe: bundled data -> Korean vocabulary -> lexical init -> training -> folder.

The parts live in :mod:`~sparse_demo.offline.data` (pairs and the split),
:mod:`~sparse_demo.offline.vocab` (the vocabulary), :mod:`~sparse_demo.offline.measure`
(held-out sweep and benchmarks through the Search code) and :mod:`~sparse_demo.offline.card`
(the model card); this module puts them together (:func:`build`).

Everything the demo model is built from ships with the project or with its dependencies:

* **Data** (:func:`load_bundled`, :func:`training_and_heldout`): the pairs files of
  ``assets/pairs/`` (queries written for the project over ``assets/corpus/ko_sample``), the
  corpus' own evaluation queries with their qrels, and each passage's title as one more query.
  A seeded split by passage (:func:`sparse_demo.train.split_pairs`) holds out about 15% of the
  passages with all their queries: no held-out passage or query is trained on.
* **Vocabulary** (:func:`build_vocabulary`): the XLM-R SentencePiece vocabulary (the shared copy in
  ``../shared/models/xlmr-tokenizer`` or the Hub id ``xlm-roberta-base``) pruned to the pieces
  Korean text needs: every piece that contains Hangul, every piece XLM-R uses to tokenise Kiwi's
  lexicon (:func:`kiwi_lexicon`: the morpheme table of the ``kiwipiepy_model`` package, ~510k
  forms of common nouns, verb and adjective stems, adverbs, particles, endings and proper nouns)
  and the bundled texts, plus the single-character pieces of ASCII, Latin letters with
  diacritics and the KS X 1001 (EUC-KR) set (hanja, Greek, Cyrillic, kana, symbols). The KS X 1001
  Hangul syllables XLM-R lacks are added as new single-character pieces.
* **Weights** (:func:`init_model`): a new ``XLMRobertaForMaskedLM`` (``mini``: hidden 128, 2
  layers, tied input and output embeddings) started as a lexical matcher
  (:func:`sparse_demo.train.vocab.lexical_init`), taught expansions by Kiwi's CoNg model
  (:func:`distil_init`, :mod:`sparse_demo.offline.expansion`), then trained with the public
  ``sparse_demo.train`` API (the card's loss plus the same teacher's vectors as a distillation term,
  ``BuildOptions.vector_kd``), evaluating on the held-out split every epoch and keeping the best
  checkpoint (the untrained model included): held-out metrics after training are never below
  before.
* **Style** (:data:`STYLES`): ``v26`` (the card's stopword and special-token penalties; a teacher that
  targets function pieces at 0) or ``v25`` (no penalties; a teacher that weighs them twice a content piece),
  the two embedded demo models of :data:`STYLE_DIRS`.
* **Settings** (:data:`SETTINGS_FILE`): ``sparse_demo.json`` next to ``config.json`` records the
  name, the recommended hybrid weight (the sparse leg's weight in the Search tab's min-max hybrid,
  the best held-out MRR@10 of :data:`WEIGHT_GRID`) and the max length; ``README.md`` is the model
  card and ``build_record.json`` the training record (data hashes, vocabulary sources, held-out
  metrics before/after, timings, versions).

The seed is fixed and torch runs single-threaded with deterministic algorithms, so a rebuild on
the same software gives the same weights as far as torch allows. ``scripts/build_demo_model.py``
is the command line; :func:`sparse_demo.offline.build_local_model` retrains it inside the app.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sparse_demo.model_settings import SETTINGS_FILE
from sparse_demo.offline.calibrate import calibrate_background
from sparse_demo.offline.card import model_card
from sparse_demo.offline.data import load_bundled, training_and_heldout
from sparse_demo.offline.expansion import (
    CongTeacher,
    DistilResult,
    TeacherSettings,
    distil_expansions,
    expansion_graph,
    function_phrases,
    graph_init,
    lexicon_texts,
)
from sparse_demo.offline.measure import WEIGHT_GRID, benchmark_shared, held_out_metrics, pick_weight, shared_texts
from sparse_demo.offline.vocab import build_vocabulary, kiwi_lexicon, resolve_tokenizer_file, unk_rates
from sparse_demo.progress import ShouldStop, TrainingEvent, TrainingProgress

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The two embedded demo models, by style: folder, display name and description.
STYLE_DIRS: dict[str, Path] = {
    "v25": REPO_ROOT / "assets" / "demo-v25-style",
    "v26": REPO_ROOT / "assets" / "demo-v26-style",
}
STYLE_NAMES: dict[str, str] = {"v25": "demo-v25-style (bundled)", "v26": "demo-v26-style (bundled)"}
STYLE_DESCRIPTIONS: dict[str, str] = {
    "v25": "small demo model shipped with the app, trained like V25: no stopword or special-token penalties "
    "(function words rise into its top ranks); not the V25 checkpoint",
    "v26": "small demo model shipped with the app, trained like V26: the card's stopword and special-token "
    "penalties; expansions distilled from Kiwi's CoNg model; not the V26 checkpoint",
}
DEFAULT_OUT = STYLE_DIRS["v26"]
SHARED_TOKENIZER = REPO_ROOT.parent / "shared" / "models" / "xlmr-tokenizer"
HUB_TOKENIZER = "xlm-roberta-base"
#: The bundled demo model every picker falls back to (the V26-style one), and its description.
DEMO_MODEL_NAME = STYLE_NAMES["v26"]
DEMO_MODEL_DESCRIPTION = STYLE_DESCRIPTIONS["v26"]
#: The build's training record.
RECORD_FILE = "build_record.json"
SIZES = ("tiny", "mini", "small")


# ---------------------------------------------------------------------- model
def init_model(vocab_dir: Path, out_dir: Path, size: str, docs: Sequence[str], seed: int) -> dict[str, Any]:
    """A new lexically initialised MLM saved to ``out_dir`` (the training base); returns init facts."""
    import torch
    from transformers import AutoTokenizer

    from sparse_demo.modeling import make_mlm
    from sparse_demo.train.vocab import lexical_init

    tokenizer = AutoTokenizer.from_pretrained(str(vocab_dir))
    model = make_mlm(tokenizer, size, seed=seed)  # type: ignore[arg-type]
    sample = tokenizer(list(docs[:16]), truncation=True, max_length=192, padding=True, return_tensors="pt")
    with torch.no_grad():
        bias = lexical_init(model, "auto", sample=(sample["input_ids"], sample["attention_mask"]))
    model.config.architectures = [type(model).__name__]
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    return {"output_bias": round(float(bias), 4), "parameters": int(sum(p.numel() for p in model.parameters()))}


@contextlib.contextmanager
def _reproducible(seed: int, threads: int | None) -> Iterator[None]:
    """Seed every RNG, use deterministic torch algorithms and ``threads``; restore torch's settings after."""
    import random

    import numpy as np
    import torch

    saved = (
        torch.get_num_threads(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])


#: The FLOPS weights of the demo build (small model, few steps); the penalties come from the style.
_DEFAULT_LOSS: dict[str, Any] = {"lambda_flops_query": 5e-3, "lambda_flops_doc": 3e-3, "reg_warmup_steps": 50}
#: How the two demo styles differ, as V25 and V26 do: the card's stopword (x15) and special-token
#: (x100) FLOPS penalties in the retrieval training, and in the distillation a teacher that targets
#: particles, endings and special tokens at 0 (V26) or function pieces at twice a content piece's target
#: (V25: the card's complaint, 있습니다, 수 and 하는 outranking content words).
STYLES: dict[str, dict[str, float]] = {
    "v26": {"stopword_penalty": 15.0, "special_token_penalty": 100.0},
    "v25": {"stopword_penalty": 1.0, "special_token_penalty": 1.0},
}
STYLE_FUNCTION_TARGET: dict[str, float] = {"v26": 0.0, "v25": 2.0}
#: The shipped builds' CoNg teacher (both styles; the style sets ``function_target``): expansions weigh 2.1 x
#: similarity x rarity (ids below 20,000 propose less), the graph's hubs are scaled down past 8 proposers,
#: frequent verb stems (나오, 생기) are expanded but never proposed, and a text whose targets weigh more than
#: 12 in all has them scaled by (12 / L1) ^ 0.25, so the student does not favour long documents. The other
#: settings tried are in the README's *Length normalisation* and *Build history*.
DEMO_TEACHER = TeacherSettings(
    weight=2.1,
    rarity_ref=20_000,
    min_verb_id=500,
    max_indegree=8,
    expand_frequent_verbs=True,
    length_norm=0.25,
    length_ref=12.0,
)
#: The shipped builds' distillation leak (:attr:`BuildOptions.distil_leak`).
DEMO_DISTIL_LEAK = 0.5


def style_teacher(folder: Path, options: BuildOptions) -> CongTeacher:
    """The CoNg teacher of ``options.style`` in the vocabulary of the model in ``folder``."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    settings = replace(options.teacher or DEMO_TEACHER, function_target=STYLE_FUNCTION_TARGET[options.style])
    return CongTeacher(tokenizer, settings)


def distil_init(folder: Path, texts: Sequence[str], options: BuildOptions, teacher: CongTeacher) -> DistilResult:
    """Distil ``teacher``'s expansions into the initial model in ``folder`` (rewritten in place)."""
    import torch
    from transformers import AutoModelForMaskedLM

    tokenizer = teacher.tokenizer
    model = AutoModelForMaskedLM.from_pretrained(str(folder), use_safetensors=True, dtype=torch.float32)
    lexicon = lexicon_texts(teacher.kiwi, options.lexicon_candidates)
    phrases = function_phrases(lexicon, options.function_phrases, seed=options.seed)
    moved = (
        graph_init(model, expansion_graph(teacher, lexicon), options.graph_strength) if options.graph_strength else 0
    )
    logger.info("Embeddings of %d single-piece words moved towards their CoNg expansions", moved)

    def report(step: int, total: int, loss: float) -> None:
        if step == 1 or step % 50 == 0 or step == total:
            logger.info("distil step %d/%d  loss %.4f", step, total, loss)

    torch.manual_seed(options.seed)
    result = distil_expansions(
        model,
        tokenizer,
        [*texts, *phrases],
        teacher,
        lexicon=lexicon,
        lexicon_limit=options.lexicon_count,
        epochs=options.distil_epochs,
        max_length=options.max_length,
        seed=options.seed,
        leak=options.distil_leak,
        progress=report,
    )
    model.save_pretrained(str(folder), safe_serialization=True)
    result.graph_pieces = moved
    return result


# ---------------------------------------------------------------------- benchmarks
def shared_benchmarks(
    folder: Path, weight: float, max_length: int, base_tokenizer: Path | None = None
) -> dict[str, Any]:
    """:func:`benchmark_shared` at :data:`WEIGHT_GRID` and ``weight``, plus the ``<unk>`` rates (demo vs base)."""
    out = benchmark_shared(folder, sorted({*WEIGHT_GRID, weight}), max_length)
    files = {"demo": folder / "tokenizer.json"}
    if base_tokenizer is not None:
        files["xlm-r"] = base_tokenizer
    out["unk_rate"] = unk_rates(files, shared_texts())
    return out


def update_benchmarks(folder: Path = DEFAULT_OUT, tokenizer: str = "") -> dict[str, Any]:
    """Measure a built folder on ``../shared/data`` and rewrite its build record and model card.

    Raises:
        FileNotFoundError: no build record in ``folder``, or no benchmark data.
    """
    path = folder / RECORD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; build the model first")
    record = json.loads(path.read_text(encoding="utf-8"))
    try:
        base: Path | None = resolve_tokenizer_file(tokenizer or _default_tokenizer())
    except FileNotFoundError:
        base = None
    record["benchmarks"] = shared_benchmarks(folder, record["hybrid_weight"], record["max_length"], base)
    (folder / "README.md").write_text(model_card(record), encoding="utf-8")
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return record


def calibration_texts(data: Any) -> list[str]:
    """The texts of :func:`~sparse_demo.offline.calibrate.calibrate_background`: the bundled passages and
    evaluation queries, sorted (so the calibration is deterministic)."""
    return sorted(set(data.passages.values()) | set(data.eval_queries.values()))


def recalibrate(folder: Path) -> dict[str, Any]:
    """Apply the build's last steps to a folder built before background calibration existed: calibrate it,
    pick the hybrid weight again on the held-out split, and rewrite its settings, record and card (what
    :func:`build` now writes for the same trained weights).

    Raises:
        FileNotFoundError: no build record in ``folder``.
        ValueError: the folder is already calibrated.
    """
    path = folder / RECORD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; build the model first")
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("background_calibration"):
        raise ValueError(f"{folder} is already calibrated")
    data = load_bundled()
    held = training_and_heldout(data, eval_fraction=BuildOptions.eval_fraction, seed=record["seed"])[1]
    if len(held) != record["training"]["num_eval_pairs"]:
        raise ValueError(f"{folder} was built with another held-out split than the default; rebuild it instead")
    calibration = calibrate_background(folder, calibration_texts(data), max_length=record["max_length"])
    sweep = held_out_metrics(folder, held, list(data.passages.values()), WEIGHT_GRID, record["max_length"])
    weight = pick_weight(sweep, WEIGHT_GRID)
    record = {**record, "background_calibration": calibration, "weight_sweep": sweep, "hybrid_weight": weight}
    settings_path = folder / SETTINGS_FILE
    settings = json.loads(settings_path.read_text(encoding="utf-8"))
    settings["hybrid_weight"] = weight
    settings_path.write_text(json.dumps(settings, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(model_card(record), encoding="utf-8")
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return record


# ---------------------------------------------------------------------- build
def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


@dataclass
class BuildOptions:
    """Settings of one build (the command line's options).

    Attributes:
        out: the model folder written (replaced only once the new one is complete).
        tokenizer: XLM-R tokenizer folder or Hub id ("" : the shared copy, else ``xlm-roberta-base``).
        size: ``tiny`` | ``mini`` | ``small`` (:func:`sparse_demo.modeling.make_mlm`).
        seed: every RNG's seed.
        epochs, batch_size, lr: training (:class:`sparse_demo.train.TrainConfig`).
        time_limit_s: cap on the training loop; below it the run is step-bound (deterministic).
        threads: torch CPU threads (None: keep the process' setting).
        max_length: tokens per text (training documents, evaluation, the shipped settings).
        eval_fraction: share of passages held out; ``patience``: evaluations without gain before stopping.
        half: ship float16 weights.
        name, note: display name (``sparse_demo.json``, card) and the trainer's note.
        description: the settings file's description ("": the style's).
        work_dir: keep intermediate folders there (default: a temporary folder, removed).
        progress, should_stop: passed to :func:`sparse_demo.train.train`.
        extra: more :class:`~sparse_demo.train.TrainConfig` fields; ``extra_record``: more record keys.
        benchmark: also measure BoolQ / KorSTS from ``../shared/data`` into the record and card.
        style: ``v26`` (the card's stopword and special-token penalties) or ``v25`` (none: the V25
            situation); see :data:`STYLES`.
        teacher: the CoNg teacher distilled before the retrieval training (None: no expansions).
        lexicon_count: one-word lexicon texts (with expansions) added to the distillation (:func:`lexicon_texts`).
        distil_epochs: passes of the distillation.
        distil_leak: the distillation's slope below 0 for an expansion not produced yet (``leak`` of
            :func:`~sparse_demo.offline.expansion.distil_expansions`): at 0.1 the student kept about 0.6 of the
            teacher's expansion share on the bundled training questions themselves, at 0.5 about 0.75 (README,
            *Build history*, for what the retrieval training then kept).
        vector_kd: weight of the teacher's vectors in the retrieval training (the loss's ``lambda_vector_kd``:
            the expansions distilled before are kept while retrieval is learnt; 0: not used there).
        graph_strength: how far each single-piece word's embedding moves towards its expansions' before
            the distillation (:func:`~sparse_demo.offline.expansion.graph_init`; 0: not at all).
        lexicon_candidates: CoNg morphemes read (most frequent first) for the graph and the lexicon texts.
        function_phrases: noun phrases with particles, determiners and endings added to the distillation
            (:func:`~sparse_demo.offline.expansion.function_phrases`).
        passages: build on the bundled corpus's first ``passages`` passages and their pairs only (a quick
            build for checks, e.g. the byte-identical rebuild test); None: all of it.
    """

    out: Path = DEFAULT_OUT
    tokenizer: str = ""
    size: str = "mini"
    seed: int = 0
    epochs: float = 4.0
    batch_size: int = 32
    lr: float = 1e-3
    time_limit_s: float = 1800.0
    threads: int | None = 1
    max_length: int = 192
    eval_fraction: float = 0.15
    patience: int = 4
    half: bool = True
    name: str = DEMO_MODEL_NAME
    description: str = ""
    note: str = "embedded demo model trained on bundled sample data"
    work_dir: Path | None = None
    progress: TrainingProgress | None = None
    should_stop: ShouldStop | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    extra_record: dict[str, Any] = field(default_factory=dict)
    benchmark: bool = False
    style: str = "v26"
    teacher: TeacherSettings | None = DEMO_TEACHER
    lexicon_count: int = 12_000
    distil_epochs: int = 2
    distil_leak: float = DEMO_DISTIL_LEAK
    graph_strength: float = 2.0
    vector_kd: float = 1.0
    lexicon_candidates: int = 60_000
    function_phrases: int = 4_000
    passages: int | None = None


def _logging_progress(progress: TrainingProgress | None) -> TrainingProgress:
    """Log training and evaluation events, then pass them on to ``progress``."""

    def report(event: TrainingEvent) -> None:
        if event.phase == "train":
            logger.info(
                "step %d/%d  loss %.4f  infonce %.4f  active q/d %.0f/%.0f  lr %.2e  %.0f s",
                event.step,
                event.max_steps,
                event.total or 0.0,
                event.infonce or 0.0,
                event.active_q or 0.0,
                event.active_d or 0.0,
                event.lr or 0.0,
                event.elapsed_s or 0.0,
            )
        elif event.phase == "eval":
            logger.info(
                "held-out at step %s: %s",
                event.step,
                {k: v for k, v in event.to_dict().items() if k not in ("phase", "step")},
            )
        elif event.message:
            logger.info("%s: %s", event.phase, event.message)
        if progress is not None:
            progress(event)

    return report


def _default_tokenizer() -> str:
    return str(SHARED_TOKENIZER) if (SHARED_TOKENIZER / "tokenizer.json").is_file() else HUB_TOKENIZER


def build(options: BuildOptions) -> dict[str, Any]:
    """Build the demo model into ``options.out`` (replaced atomically); returns the build record.

    Raises:
        ValueError: bad options; FileNotFoundError: a bundled file or the tokenizer is missing;
        RuntimeError: training stopped without a model.
    """
    if options.size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {options.size!r}")
    if options.style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {options.style!r}")
    with _reproducible(options.seed, options.threads):
        return _build(options)


def _build(options: BuildOptions) -> dict[str, Any]:  # noqa: PLR0915 - one linear recipe
    import torch

    from sparse_demo.train import TrainConfig, train

    t_start = time.time()
    data = load_bundled()
    if options.passages is not None:
        data = data.first_passages(options.passages)
    pairs, held = training_and_heldout(data, eval_fraction=options.eval_fraction, seed=options.seed)
    logger.info(
        "%d training pairs (%s, corpus queries, titles); %d held-out pairs over %d held-out passages",
        len(pairs),
        ", ".join(f.name for f in data.train_files),
        len(held),
        len({p.positive for p in held}),
    )
    work = Path(options.work_dir or tempfile.mkdtemp(prefix="demo-model-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        tokenizer_file = resolve_tokenizer_file(options.tokenizer or _default_tokenizer())
        t0 = time.time()
        lexicon = kiwi_lexicon()
        bundled = data.texts(pairs)
        vocab = build_vocabulary(tokenizer_file, lexicon, bundled, work / "vocab")
        vocab_s = time.time() - t0
        distil: dict[str, Any] | None = None
        init = init_model(work / "vocab", work / "init", options.size, list(data.passages.values()), options.seed)
        teacher: CongTeacher | None = None
        if options.teacher is not None:
            teacher = style_teacher(work / "init", options)
            own_texts = [t for p in pairs for t in (p.query, p.positive)]  # the training split only
            distil = distil_init(work / "init", own_texts, options, teacher).to_dict()
            logger.info("Expansion distillation: %s", distil)
        loss = {**_DEFAULT_LOSS, **STYLES[options.style]}
        if teacher is not None and options.vector_kd:
            loss["lambda_vector_kd"] = options.vector_kd
        config = TrainConfig(
            base=str(work / "init"),
            epochs=options.epochs,
            batch_size=options.batch_size,
            lr=options.lr,
            max_length=options.max_length,
            time_limit_s=options.time_limit_s,
            eval_every=0,  # every epoch
            patience=options.patience,
            eval_distractors=len(data.passages),
            log_every=5,
            seed=options.seed,
            num_threads=options.threads,
            bf16="off",
            out_path=str(work / "trained"),
            run_name="demo-model",
            note=options.note,
            **{"loss": loss, **options.extra},
        )
        result = train(
            config,
            pairs,
            held,
            progress=_logging_progress(options.progress),
            should_stop=options.should_stop,
            wait=True,
            vector_teacher=teacher.target if teacher is not None and options.vector_kd else None,
        )
        if result.model_dir is None:
            raise RuntimeError(f"training stopped without a model ({result.status})")
        before = result.metrics_before.get("model", {}).get("MRR@10", 0.0)
        after = result.metrics_after.get("model", {}).get("MRR@10", 0.0)
        if after + 1e-9 < before:
            raise RuntimeError(
                f"held-out MRR@10 fell from {before:.4f} to {after:.4f}; the best checkpoint was not kept"
            )
        trained = Path(result.model_dir)
        final = work / "final"
        _write_final(trained, final, half=options.half)
        calibration = calibrate_background(final, calibration_texts(data), max_length=options.max_length)
        logger.info("Background calibration silenced %s", [t["token"] for t in calibration["silenced"]])
        # measured on the folder as shipped (float16 weights, loaded as the app loads them)
        sweep = held_out_metrics(final, held, list(data.passages.values()), WEIGHT_GRID, options.max_length)
        weight = pick_weight(sweep, WEIGHT_GRID)
        logger.info("Held-out sweep: %s -> hybrid weight %g", sweep, weight)
        benchmarks = None
        if options.benchmark:
            benchmarks = shared_benchmarks(final, weight, options.max_length, tokenizer_file)
            logger.info("Benchmarks: %s", benchmarks)
        info = json.loads((trained / "training_info.json").read_text(encoding="utf-8"))
        arch_cfg = json.loads((final / "config.json").read_text(encoding="utf-8"))
        record: dict[str, Any] = {
            "name": options.name,
            "seed": options.seed,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "data_sha256": data.sha256(),
            "max_length": options.max_length,
            "hybrid_weight": weight,
            "architecture": {
                "model_type": arch_cfg["model_type"],
                "hidden_size": arch_cfg["hidden_size"],
                "num_hidden_layers": arch_cfg["num_hidden_layers"],
                "num_attention_heads": arch_cfg["num_attention_heads"],
                "intermediate_size": arch_cfg["intermediate_size"],
                "vocab_size": arch_cfg["vocab_size"],
                "tie_word_embeddings": arch_cfg.get("tie_word_embeddings", True),
                "dtype": "float16" if options.half else "float32",
                "parameters": init["parameters"],
            },
            "vocabulary": {
                **vocab.to_dict(),
                "base_tokenizer": Path(vocab.base_tokenizer).parent.name,
                "build_s": round(vocab_s, 1),
            },
            "init": init,
            "style": options.style,
            "expansion_distillation": distil,
            "background_calibration": calibration,
            "training": {
                "files": [f.name for f in data.train_files],
                "num_train_pairs": result.num_train_pairs,
                "num_eval_pairs": result.num_eval_pairs,
                "num_eval_queries": len({p.query for p in held}),
                "num_eval_passages": len({p.positive for p in held}),
                "num_corpus_passages": len(data.passages),
                "status": result.status,
                "steps": result.steps,
                "epochs": round(result.epochs, 3),
                "train_s": round(result.train_s, 1),
                "best_by": info.get("config", {}).get("best_by", "model"),
                "metrics_before": result.metrics_before,
                "metrics_after": result.metrics_after,
                "config": info.get("config", result.config),
                "history": [h.to_dict() for h in result.history if h.phase in ("eval", "eval_before", "eval_after")],
            },
            "weight_sweep": sweep,
            "benchmarks": benchmarks,
            "software": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": __import__("transformers").__version__,
                "tokenizers": __import__("tokenizers").__version__,
                "kiwipiepy": __import__("kiwipiepy").__version__,
                "kiwipiepy_model": __import__("kiwipiepy_model").__version__,
            },
        }
        settings = {
            "name": options.name,
            "description": options.description or STYLE_DESCRIPTIONS[options.style],
            "hybrid_weight": weight,
            "max_length": options.max_length,
            "drop_special": True,
            "vocab_size": arch_cfg["vocab_size"],
        }
        (final / SETTINGS_FILE).write_text(json.dumps(settings, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        record.update(options.extra_record)
        record["build_s"] = round(time.time() - t_start, 1)
        record["size_bytes"] = _folder_size(final) + 8192  # card and record, roughly
        (final / "README.md").write_text(model_card(record), encoding="utf-8")
        (final / RECORD_FILE).write_text(
            scrub_paths(json.dumps(record, ensure_ascii=False, indent=2) + "\n", work), encoding="utf-8"
        )
        info_path = final / "training_info.json"
        info_path.write_text(scrub_paths(info_path.read_text(encoding="utf-8"), work), encoding="utf-8")
        record["size_bytes"] = _folder_size(final)
        for path in final.iterdir():
            path.chmod(0o644)
        _replace(final, options.out)
        logger.info("Wrote %s (%.1f MB) in %.0f s", options.out, record["size_bytes"] / 1e6, time.time() - t_start)
        return record
    finally:
        if options.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)


def build_styles(options: Sequence[BuildOptions]) -> list[dict[str, Any]]:
    """Build several styles one after the other (each from its own distillation: the teachers differ)."""
    return [build(opts) for opts in options]


#: Files of the trained folder the shipped model keeps (the trainer's own card is replaced).
_KEPT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def scrub_paths(text: str, work: Path) -> str:
    """Replace this machine's folders (the build's work folder, the checkout) by placeholders."""
    return text.replace(str(work), "<build folder>").replace(str(REPO_ROOT), "<repo>")


def _write_final(trained: Path, final: Path, *, half: bool) -> None:
    """Copy the trained model to ``final``, with float16 weights when ``half``."""
    import torch
    from transformers import AutoModelForMaskedLM

    final.mkdir(parents=True, exist_ok=True)
    model = AutoModelForMaskedLM.from_pretrained(str(trained), use_safetensors=True, dtype=torch.float32)
    if half:
        model = model.half()
    model.save_pretrained(str(final), safe_serialization=True)
    for name in _KEPT_FILES[1:]:
        if (trained / name).is_file():
            shutil.copy(trained / name, final / name)
    if (trained / "training_info.json").is_file():
        shutil.copy(trained / "training_info.json", final / "training_info.json")
    cfg = json.loads((final / "config.json").read_text(encoding="utf-8"))
    cfg.pop("sparse_demo", None)  # the trainer's note; sparse_demo.json holds the settings
    (final / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _replace(src: Path, dest: Path) -> None:
    """Move ``src`` to ``dest``, replacing an existing folder only once the new one is complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.new-{uuid.uuid4().hex[:6]}"
    shutil.copytree(src, staging)
    old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:6]}"
    if dest.exists():
        dest.rename(old)
    staging.rename(dest)
    shutil.rmtree(old, ignore_errors=True)

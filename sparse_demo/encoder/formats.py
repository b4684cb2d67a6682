"""Which format a model folder is in, and what each side (query, document) runs: read from its JSON files.

Three layouts load (:func:`read_layout`), all with safetensors weights only and no code from the folder:

- ``masked-lm``: a plain ``*ForMaskedLM`` folder (``config.json``, weights, tokenizer); both sides are the
  MLM with the card's max pooling.
- ``sentence-transformers``: a ``SparseEncoder`` folder, ``modules.json`` listing an MLM module
  (``MLMTransformer``, or ``Transformer`` with ``transformer_task: fill-mask``) and a ``SpladePooling``
  (pooling strategy ``max`` / ``sum``, activation ``relu`` / ``log1p_relu``, ``embedding_dimension``,
  ``chunk_size``); ``config_sentence_transformers.json`` may set ``max_active_dims`` and prompts.
- ``router``: a ``Router`` (or legacy ``Asym``) module whose ``router_config.json`` names a query route and
  a document route; a route is an MLM + ``SpladePooling`` or a ``SparseStaticEmbedding`` (a weight per
  vocabulary token looked up for the tokens present: an inference-free side).

What sentence-transformers 6.3 does is followed exactly: the sides are resolved like ``Router``'s routes for
``task="query"`` / ``task="document"``; an MLM side truncates at its tokenizer's ``model_max_length`` capped
by ``max_position_embeddings`` (or a saved ``max_seq_length`` / ``query_length`` / ``document_length``); a
static side tokenises without special tokens. A module type not in :data:`KNOWN_MODULES`, a module that is
code shipped with the model, a config that asks for ``trust_remote_code`` and pickle-only weights are
refused with one line naming them. This module reads JSON only (no torch).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import ModelLoadError

Format = Literal["masked-lm", "sentence-transformers", "router"]
Side = Literal["query", "document"]
#: The two sides of a model, in the order the app shows them.
SIDES: tuple[Side, ...] = ("query", "document")

#: sentence-transformers module classes this app reads (the last part of ``modules.json``'s ``type``).
KNOWN_MODULES: tuple[str, ...] = ("MLMTransformer", "Transformer", "SpladePooling", "SparseStaticEmbedding", "Router")
_ROUTERS = ("Router", "Asym")
POOLING_STRATEGIES = ("max", "sum")
ACTIVATIONS = ("relu", "log1p_relu")
#: ``Transformer`` config files sentence-transformers tries, in its order.
_TRANSFORMER_CONFIGS = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
#: Keys of a ``Transformer`` config that hold keyword arguments (where ``trust_remote_code`` could hide).
_KWARG_KEYS = ("model_args", "model_kwargs", "tokenizer_args", "processor_kwargs", "config_args", "config_kwargs")


@dataclass(frozen=True)
class PoolingSpec:
    """``SpladePooling``'s settings: ``w = pool_t act(logits[t])`` over the real positions.

    ``act`` is ``log(1 + relu(x))``, or ``log(1 + log(1 + relu(x)))`` for ``log1p_relu``; ``pool`` is max or sum.
    ``chunk_size`` bounds positions per step in sentence-transformers; the app tiles on its own bound, so the
    vectors do not depend on it (kept for the facts).
    """

    strategy: str = "max"
    activation: str = "relu"
    embedding_dimension: int | None = None
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        if self.strategy not in POOLING_STRATEGIES:
            raise ValueError(f"pooling_strategy must be one of {', '.join(POOLING_STRATEGIES)}, got {self.strategy!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation_function must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")


@dataclass(frozen=True)
class SideSpec:
    """What one side runs.

    Attributes:
        kind: ``mlm`` (a ``*ForMaskedLM`` + pooling) or ``static`` (a weight per token, no model).
        folder: The module's folder (weights and tokenizer).
        pooling: The pooling of an ``mlm`` side (None for ``static``).
        max_length: Tokens this side reads at most, as the folder sets it (None: the tokenizer's and the
            model's limits decide when loading).
        do_lower_case: Lower-case the text first (a saved ``do_lower_case``).
        prompt: Text put before every input (the model's saved prompt for this side; usually "").
        modules: The module names of the route, for the facts (``("MLMTransformer", "SpladePooling")``).
    """

    kind: Literal["mlm", "static"]
    folder: Path
    pooling: PoolingSpec | None = None
    max_length: int | None = None
    do_lower_case: bool = False
    prompt: str = ""
    modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelLayout:
    """A model folder's format and its two sides (the same :class:`SideSpec` when the model is symmetric)."""

    format: Format
    query: SideSpec
    document: SideSpec
    default_side: Side = "document"
    max_active_dims: int | None = None
    similarity: str | None = None
    folders: tuple[Path, ...] = field(default=())

    @property
    def asymmetric(self) -> bool:
        """Whether queries and documents go through different modules or settings."""
        return self.query != self.document

    @property
    def inference_free(self) -> bool:
        """Whether the query side runs no model (a token weight table)."""
        return self.query.kind == "static"

    def side(self, side: Side) -> SideSpec:
        return self.query if side == "query" else self.document


def _read_json(path: Path, source: str, name: str | None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(source, f"{path.name} could not be read as JSON ({type(exc).__name__})", name) from exc


def _check_types(refs: list[str], where: str, source: str, name: str | None) -> None:
    """Refuse, in one line naming every one of them, module types shipped as code or not understood."""
    refs = [str(r) for r in refs]
    remote = [r for r in refs if not r.startswith("sentence_transformers.")]
    if remote:
        raise ModelLoadError(
            source,
            f"{where} names module type(s) {', '.join(remote)}: code shipped with the model (it needs "
            "trust_remote_code), which this app never runs",
            name,
        )
    unknown = [r for r in refs if r.rsplit(".", 1)[-1] not in (*KNOWN_MODULES, *_ROUTERS)]
    if unknown:
        listed = ", ".join(f"{r.rsplit('.', 1)[-1]} ({r})" for r in unknown)
        raise ModelLoadError(
            source,
            f"{where} names module type(s) not understood: {listed}; this app reads {', '.join(KNOWN_MODULES)}",
            name,
        )


def _class_name(type_ref: str, source: str, name: str | None) -> str:
    """``Router`` of ``sentence_transformers.base.modules.router.Router``; code from elsewhere is refused."""
    ref = str(type_ref)
    last = ref.rsplit(".", 1)[-1]
    if not ref.startswith("sentence_transformers."):
        raise ModelLoadError(
            source,
            f"module type {ref!r} is code shipped with the model (it needs trust_remote_code), "
            "which this app never runs",
            name,
        )
    if last not in KNOWN_MODULES and last not in _ROUTERS:
        raise ModelLoadError(
            source,
            f"module type {last} ({ref}) is not understood; this app reads {', '.join(KNOWN_MODULES)}",
            name,
        )
    return "Router" if last in _ROUTERS else last


def _subfolder(root: Path, rel: str, source: str, name: str | None) -> Path:
    """``root / rel``, refused when it leaves the folder (``..``, an absolute path)."""
    target = (root / rel).resolve()
    if rel.startswith(("/", "\\")) or ".." in Path(rel).parts or not target.is_relative_to(root.resolve()):
        raise ModelLoadError(source, f"module path {rel!r} points outside the model folder", name)
    if not target.is_dir():
        raise ModelLoadError(source, f"module folder {rel or '.'!r} named in the model's config is missing", name)
    return target


def check_weights(folder: Path, source: str, name: str | None, root: Path | None = None) -> None:
    """Refuse a module folder without ``*.safetensors`` weights (a pickle such as ``pytorch_model.bin``)."""
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl"))
    where = "the folder" if root is None or folder.resolve() == root.resolve() else f"{folder.name}/"
    if pickles:
        raise ModelLoadError(
            source,
            f"{where} holds only pickle weights ({', '.join(pickles[:3])}); this app loads safetensors only "
            "(convert them with safetensors' save_file, or save_pretrained(..., safe_serialization=True))",
            name,
        )
    raise ModelLoadError(source, f"no *.safetensors weights in {where} (this app loads safetensors only)", name)


def _check_remote_code(config: dict, file: str, source: str, name: str | None) -> None:
    for key in _KWARG_KEYS:
        value = config.get(key)
        if isinstance(value, dict) and value.get("trust_remote_code"):
            raise ModelLoadError(
                source, f"{file} asks for trust_remote_code in {key}; this app never runs code from a model", name
            )


def _mlm_side(
    folder: Path,
    class_name: str,
    pooling: PoolingSpec,
    names: tuple[str, ...],
    task: Side,
    source: str,
    name: str | None,
) -> SideSpec:
    if (folder / "config.json").is_file():
        _check_auto_map(_read_json(folder / "config.json", source, name), source, name)
    config: dict = {}
    for file in _TRANSFORMER_CONFIGS:
        if (folder / file).is_file():
            config = _read_json(folder / file, source, name)
            _check_remote_code(config, file, source, name)
            break
    task = config.get("transformer_task", "fill-mask" if class_name == "MLMTransformer" else "feature-extraction")
    if task != "fill-mask":
        raise ModelLoadError(
            source,
            f"its {class_name} module runs transformer_task {task!r}; a sparse (SPLADE) side needs 'fill-mask' "
            "(MLM logits)",
            name,
        )
    for key in ("query_expansion", "processing_kwargs"):
        if config.get(key):
            raise ModelLoadError(
                source, f"its {class_name} module sets {key}, which this app does not understand", name
            )
    return SideSpec(
        kind="mlm",
        folder=folder,
        pooling=pooling,
        max_length=config.get(f"{task}_length") or config.get("max_seq_length"),
        do_lower_case=bool(config.get("do_lower_case", False)),
        modules=names,
    )


def _pooling(folder: Path, source: str, name: str | None) -> PoolingSpec:
    cfg = _read_json(folder / "config.json", source, name) if (folder / "config.json").is_file() else {}
    try:
        return PoolingSpec(
            strategy=cfg.get("pooling_strategy", "max"),
            activation=cfg.get("activation_function", "relu"),
            embedding_dimension=cfg.get("embedding_dimension", cfg.get("word_embedding_dimension")),
            chunk_size=cfg.get("chunk_size"),
        )
    except ValueError as exc:
        raise ModelLoadError(source, f"its SpladePooling config: {exc}", name) from exc


def _route(
    root: Path,
    entries: list[tuple[str, str]],
    source: str,
    name: str | None,
    what: str,
    task: Side,
    *,
    allow_router: bool,
) -> SideSpec | tuple[str, list]:
    """One route: ``[(module folder relative to root, class name), ...]`` -> its :class:`SideSpec`."""
    classes = [c for _, c in entries]
    if allow_router and classes == ["Router"]:
        return ("router", entries)
    if "Router" in classes:
        raise ModelLoadError(source, f"{what}: a Router mixed with other modules is not understood", name)
    folders = [_subfolder(root, rel, source, name) if rel else root for rel, _ in entries]
    if classes == ["SparseStaticEmbedding"]:
        check_weights(folders[0], source, name, root)
        return SideSpec(kind="static", folder=folders[0], modules=tuple(classes))
    if len(classes) == 2 and classes[0] in ("MLMTransformer", "Transformer") and classes[1] == "SpladePooling":
        check_weights(folders[0], source, name, root)
        return _mlm_side(folders[0], classes[0], _pooling(folders[1], source, name), tuple(classes), task, source, name)
    raise ModelLoadError(
        source,
        f"{what} is {' + '.join(classes) or 'empty'}; this app reads an MLM module + SpladePooling, "
        "or a SparseStaticEmbedding",
        name,
    )


def _resolve_route(router: dict, task: Side, source: str, name: str | None) -> str:
    """The route ``Router`` takes for ``task`` on text (sentence-transformers' ``_resolve_route_name``)."""
    structure = router.get("structure") or {}
    params = router.get("parameters") or {}
    mappings: dict = {}
    for key, value in (params.get("route_mappings") or {}).items():
        try:
            parsed = ast.literal_eval(key) if isinstance(key, str) else key
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, tuple) and len(parsed) == 2:
            mappings[parsed] = value
    for key in ((task, "text"), (task, None), (None, "text"), (None, None)):
        if key in mappings:
            return mappings[key]
    if task in structure:
        return task
    if "text" in structure:
        return "text"
    raise ModelLoadError(
        source, f"its Router has no route for {task}s (routes: {', '.join(structure) or 'none'})", name
    )


def _default_route(router: dict) -> str | None:
    params = router.get("parameters") or {}
    default = params.get("default_route")
    if default is None and params.get("allow_empty_key", True):
        default = next(iter(router.get("structure") or {}), None)
    return default


def _prompts(model_config: dict) -> dict[Side, str]:
    """The prompt ``encode_query`` / ``encode_document`` put before a text (sentence-transformers' rules)."""
    prompts = model_config.get("prompts") or {}
    default = model_config.get("default_prompt_name")
    query = prompts["query"] if "query" in prompts else prompts.get(default, "") if default else ""
    doc_name = next((n for n in ("document", "passage", "corpus") if n in prompts), default)
    document = prompts.get(doc_name, "") if doc_name else ""
    return {"query": query or "", "document": document or ""}


def read_layout(folder: str | Path, source: str | None = None, name: str | None = None) -> ModelLayout:
    """The format and sides of a local model folder (JSON files only; weights are not read).

    Args:
        folder: The model folder.
        source: What the user typed (for messages; defaults to the folder).
        name: A display name for messages.

    Raises:
        ModelLoadError: an unknown or remote-code module type, pickle-only weights, a route this app cannot run,
            a config asking for ``trust_remote_code``; one line naming what was found.
    """
    root = Path(folder).expanduser()
    source = source or str(folder)
    if not (root / "modules.json").is_file():
        cfg = root / "config.json"
        if cfg.is_file():
            _check_auto_map(_read_json(cfg, source, name), source, name)
        if (root / "router_config.json").is_file():
            raise ModelLoadError(
                source, "router_config.json without modules.json: not a sentence-transformers folder", name
            )
        spec = SideSpec(kind="mlm", folder=root, pooling=PoolingSpec(), modules=("MaskedLM",))
        return ModelLayout("masked-lm", spec, spec, folders=(root,))
    modules = _read_json(root / "modules.json", source, name)
    if not isinstance(modules, list) or not modules:
        raise ModelLoadError(source, "modules.json lists no modules", name)
    try:
        _check_types([m["type"] for m in modules], "modules.json", source, name)
        entries = [(str(m.get("path", "")), _class_name(m["type"], source, name)) for m in modules]
    except (KeyError, TypeError, AttributeError) as exc:
        raise ModelLoadError(source, "modules.json is not a list of {path, type} entries", name) from exc
    model_config = {}
    if (root / "config_sentence_transformers.json").is_file():
        model_config = _read_json(root / "config_sentence_transformers.json", source, name)
    model_type = model_config.get("model_type")
    if model_type not in (None, "SparseEncoder"):
        raise ModelLoadError(source, f"it is a sentence-transformers {model_type}, not a SparseEncoder", name)
    max_active = model_config.get("max_active_dims")
    if max_active is not None and (isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1):
        raise ModelLoadError(source, f"max_active_dims must be a positive integer, got {max_active!r}", name)
    prompts = _prompts(model_config)
    first = _route(root, entries, source, name, "modules.json", "query", allow_router=True)
    if isinstance(first, SideSpec):
        query = _with_prompt(first, prompts["query"])
        second = _route(root, entries, source, name, "modules.json", "document", allow_router=False)
        assert isinstance(second, SideSpec)
        document = _with_prompt(second, prompts["document"])
        return ModelLayout(
            "sentence-transformers",
            query,
            document,
            max_active_dims=max_active,
            similarity=model_config.get("similarity_fn_name"),
            folders=_folders(root, query, document),
        )
    router_dir = _subfolder(root, first[1][0][0], source, name) if first[1][0][0] else root
    cfg_file = router_dir / "router_config.json"
    if not cfg_file.is_file():
        cfg_file = router_dir / "config.json"  # legacy Asym
    if not cfg_file.is_file():
        raise ModelLoadError(source, "its Router module has no router_config.json", name)
    router = _read_json(cfg_file, source, name)
    types = router.get("types") or {}
    structure = router.get("structure") or {}
    _check_types(list(types.values()), cfg_file.name, source, name)
    sides: dict[str, SideSpec] = {}
    for task in SIDES:
        route = _resolve_route(router, task, source, name)
        if route not in structure:
            raise ModelLoadError(source, f"its Router's route {route!r} for {task}s is not in its structure", name)
        route_entries = []
        for module_id in structure[route]:
            if module_id not in types:
                raise ModelLoadError(source, f"its Router names module {module_id!r} without a type", name)
            rel = str(Path(first[1][0][0], module_id)) if first[1][0][0] else module_id
            route_entries.append((rel, _class_name(types[module_id], source, name)))
        spec = _route(root, route_entries, source, name, f"the {task} route ({route})", task, allow_router=False)
        assert isinstance(spec, SideSpec)
        sides[task] = _with_prompt(spec, prompts[task])
    default = _default_route(router)
    default_side: Side = (
        "query" if default is not None and default == _resolve_route(router, "query", source, name) else "document"
    )
    if sides["query"].kind == "static" and sides["document"].kind == "static":
        raise ModelLoadError(
            source, "both of its sides are token weight tables; this app needs an MLM on one side", name
        )
    return ModelLayout(
        "router",
        sides["query"],
        sides["document"],
        default_side=default_side,
        max_active_dims=max_active,
        similarity=model_config.get("similarity_fn_name"),
        folders=_folders(root, sides["query"], sides["document"]),
    )


def _with_prompt(spec: SideSpec, prompt: str) -> SideSpec:
    if not prompt:
        return spec
    return SideSpec(spec.kind, spec.folder, spec.pooling, spec.max_length, spec.do_lower_case, prompt, spec.modules)


def _folders(root: Path, *sides: SideSpec) -> tuple[Path, ...]:
    out = [root]
    for s in sides:
        if s.folder not in out:
            out.append(s.folder)
    return tuple(out)


def _check_auto_map(config: dict, source: str, name: str | None) -> None:
    """Refuse a ``config.json`` whose model type only exists as code shipped in the folder (``auto_map``)."""
    if not config.get("auto_map"):
        return
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ModelLoadError(
            source,
            f"its config.json maps model type {model_type!r} to code shipped with the model (auto_map), which needs "
            "trust_remote_code; this app never runs code from a model",
            name,
        )


__all__ = [
    "ACTIVATIONS",
    "KNOWN_MODULES",
    "POOLING_STRATEGIES",
    "SIDES",
    "Format",
    "ModelLayout",
    "PoolingSpec",
    "Side",
    "SideSpec",
    "check_weights",
    "read_layout",
]

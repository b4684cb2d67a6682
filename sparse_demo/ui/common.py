"""Shared UI plumbing: the app context, model selection and message formatting."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from ..analysis import Analyzer
from ..config import Settings, load_settings
from ..encoder import SpladeEncoder
from ..korean import StopwordRule, load_stopwords, parse_stopwords
from ..models import ModelRegistry

logger = logging.getLogger(__name__)

#: Korean example queries offered in every tab.
EXAMPLE_QUERIES: list[str] = [
    "당뇨병 치료 방법",
    "전세 보증금 돌려받는 방법",
    "주택담보대출 금리 비교",
    "연말정산 의료비 공제",
    "클라우드 보안 인증",
    "여권 발급에 필요한 서류",
    "고혈압에 좋은 음식은 무엇이 있습니까?",
    "김치찌개 맛있게 끓이는 법",
]


class UserError(ValueError):
    """An input problem to show to the user as a message (never a stack trace)."""


@dataclass
class AppContext:
    """Process-wide objects shared by every visitor (read-only after start, or thread-safe)."""

    settings: Settings
    registry: ModelRegistry
    stopwords: frozenset[str]
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sparse_demo_")))

    @classmethod
    def create(cls, settings: Settings | None = None, registry: ModelRegistry | None = None) -> AppContext:
        settings = settings or load_settings()
        registry = registry or ModelRegistry(settings)
        stopwords = load_stopwords(settings.stopwords_path)
        return cls(settings=settings, registry=registry, stopwords=stopwords)

    def model_choices(self, visitor_models: dict[str, str] | None = None) -> list[str]:
        names = list(self.registry.names)
        for name in visitor_models or {}:
            if name not in names:
                names.append(name)
        return names

    def rule(self, custom: frozenset[str] | None = None, use_pos_rule: bool = True) -> StopwordRule:
        return StopwordRule(custom if custom else self.stopwords, use_pos_rule=use_pos_rule)

    def encoder(self, choice: str | None, folder: str | None = None,
                visitor_models: dict[str, str] | None = None) -> SpladeEncoder:
        """The encoder for a dropdown choice, or for a typed local folder / Hub id (which wins).

        Raises:
            UserError: nothing chosen, or the model cannot be loaded (with the reason).
        """
        folder = (folder or "").strip()
        if folder:
            key = folder
        elif choice and visitor_models and choice in visitor_models:
            key = choice
            if self.registry.resolve(choice).source != visitor_models[choice]:
                self.registry.register(choice, visitor_models[choice], "this visitor's fine-tuned model",
                                       public=False)
        else:
            key = (choice or "").strip()
        if not key:
            raise UserError("Pick a model, or type a local model folder.")
        encoder, error = self.registry.try_get(key)
        if encoder is None:
            raise UserError(
                f"{error}\n\nType the path of a local model folder (config.json, *.safetensors, "
                "tokenizer files) in the 'local folder' box, or pick another model."
            )
        return encoder

    def analyzer(self, encoder: SpladeEncoder, rule: StopwordRule | None = None) -> Analyzer:
        return Analyzer(encoder, rule or self.rule())


def load_custom_stopwords(path: str | None) -> frozenset[str] | None:
    """Stopwords from an uploaded file, or None when nothing was uploaded."""
    if not path:
        return None
    try:
        return parse_stopwords(Path(path).read_bytes())
    except ValueError as exc:
        raise UserError(f"Stopword file: {exc}") from exc


MAX_TOP_K = 500


def pct(x: float) -> str:
    """A ratio as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def check_top_k(top_k: float) -> int:
    """``top_k`` as an int in ``[1, MAX_TOP_K]``, else a :class:`UserError`."""
    k = int(top_k)
    if not 1 <= k <= MAX_TOP_K:
        raise UserError(f"top-k must be between 1 and {MAX_TOP_K}, got {k}.")
    return k


def model_picker(ctx: AppContext, prefix: str, label: str = "Model", value: str | None = None,
                 folder_label: str = "…or a local model folder / Hub id") -> tuple[gr.Dropdown, gr.Textbox]:
    """A preset dropdown (``#<prefix>-model``) plus a local-folder / Hub-id box that wins when filled.

    ``value`` defaults to the settings' default model (or the first choice).
    """
    choices = ctx.model_choices()
    if value is None:
        value = ctx.settings.default_model if ctx.settings.default_model in choices else (choices or [None])[0]
    dropdown = gr.Dropdown(choices=choices, value=value, label=label, elem_id=f"{prefix}-model",
                           allow_custom_value=False)
    folder = gr.Textbox(label=folder_label, placeholder="/models/korean-sparse-v26", elem_id=f"{prefix}-folder")
    return dropdown, folder


def message(text: str, kind: str = "info") -> str:
    """A Markdown status line; ``kind`` is info, warning or error."""
    icon = {"info": "ℹ️", "warning": "⚠️", "error": "⛔"}.get(kind, "")
    return f"{icon} {text}".strip()


def write_csv(frame: pd.DataFrame, workdir: Path, stem: str) -> str:
    """Write a frame to a fresh CSV (UTF-8 with BOM so spreadsheet apps read Korean)."""
    out = Path(tempfile.mkstemp(prefix=f"{stem}_", suffix=".csv", dir=workdir)[1])
    frame.to_csv(out, index=False, encoding="utf-8-sig")
    return str(out)

"""Settings read from the environment: the one module that reads environment variables.

Each variable is read when a ``load_*`` function (or an accessor below) is called, at start (``app.py``,
the CLI, a script), never at import; modules take the typed object (:class:`Settings`,
:class:`~sparse_demo.limits.Limits`, :class:`ConnectionSettings`, :class:`ServerOptions`) or call the
function. Every function takes an optional ``env`` mapping (``os.environ`` when None) so tests pass their own.

Models (:func:`load_settings`, all optional):

- ``SPARSE_DEMO_MODELS``: path to a presets JSON file (format of ``assets/models.json``).
- ``SPARSE_DEMO_MODEL_<NAME>``: ``<source>[@<revision>]`` for preset ``<NAME>`` (upper case),
  e.g. ``SPARSE_DEMO_MODEL_V26=/models/v26`` in a closed network. A new name adds a preset.
- ``SPARSE_DEMO_DEFAULT_MODEL``: the preset selected at start.
- ``SPARSE_DEMO_DEVICE``: ``auto`` (default), ``cpu`` or ``cuda``.
- ``SPARSE_DEMO_MAX_LENGTH``: tokens per text (default 192).
- ``SPARSE_DEMO_PRECISION``: ``auto`` (float32 on CPU, float16 on CUDA), ``fp32``, ``bf16`` or ``int8`` (CPU).
- ``SPARSE_DEMO_STOPWORDS``: path to a stopword list replacing the bundled one.

Model sources and memory (a public Space sets ``SPARSE_DEMO_MODEL_SOURCES=public``):

- ``SPARSE_DEMO_MODEL_SOURCES``: ``any`` (default: a private deployment, any folder or Hub id typed in the
  app loads) or ``public`` (presets, the demo model, a visitor's own models, Hub ids matching
  ``SPARSE_DEMO_HUB_ALLOW`` and folders under ``SPARSE_DEMO_ALLOWED_ROOTS`` only).
- ``SPARSE_DEMO_HUB_ALLOW``: comma-separated ``fnmatch`` patterns of Hub ids a visitor may type in
  ``public`` mode (default ``sewoong/*``).
- ``SPARSE_DEMO_ALLOWED_ROOTS``: folders (separated by ``os.pathsep``) under which typed local folders may
  load in ``public`` mode (default: none).
- ``SPARSE_DEMO_HUB_MAX_MB``: a typed Hub model whose safetensors weights exceed this is refused before
  downloading (default 2,500).
- ``SPARSE_DEMO_MODEL_CACHE_MB`` / ``SPARSE_DEMO_MAX_MODELS``: budget of the loaded-model LRU (default
  6,000 MB of parameters, 4 models); the least recently used model is dropped beyond either.
- ``SPARSE_DEMO_RETRY_FAILED_S``: a preset that failed to load is tried again after this many seconds
  (default 60) or on *Refresh model status*.

Per-request limits (:func:`load_limits`; what each limit does: :mod:`sparse_demo.limits`):

- ``SPARSE_DEMO_MAX_QUERY_CHARS``: characters of one query in every tab and the CLI (default 20,000).
- ``SPARSE_DEMO_MAX_TOP_K``: the largest top-k (tokens shown, hits returned) one request may ask (default 100).
- ``SPARSE_DEMO_MAX_BATCH``: queries analysed by one batch request (default 5,000).
- ``SPARSE_DEMO_MAX_UPLOAD_MB``: bytes of one uploaded file (default 10 MB).
- ``SPARSE_DEMO_MAX_ROWS``: rows (pairs, queries) read from one upload (default 50,000).
- ``SPARSE_DEMO_MAX_UNPACKED_MB``: bytes one upload may unpack to: a zip's members together, or one
  corpus file read by the CLI (default 50 MB).
- ``SPARSE_DEMO_MAX_DOCS``: documents of one corpus (default 20,000).
- ``SPARSE_DEMO_MAX_DOC_CHARS``: characters of one document (title + text) or one pair text (default
  100,000; Kiwi takes about 5 s on such a text on a busy 2-core machine).
- ``SPARSE_DEMO_MAX_INDEX_SECONDS``: seconds (wall clock) indexing, encoding or evaluating one visitor
  upload may take in one request (default 120); in ``public`` mode the ``sparse_vector`` report gets it for the
  server's corpora too. Wall clock, not CPU time: the process's CPU time counts
  every visitor's work, a thread's misses the encoder's worker threads.
- ``SPARSE_DEMO_VISITOR_QUOTA_MB``: disk one visitor's own models may use (default 500 MB).
- ``SPARSE_DEMO_VISITOR_MODELS``: how many models one visitor may keep (default 3).
- ``SPARSE_DEMO_MAX_INDEXES``: built search indexes the process keeps (default 8, least recently used dropped).
- ``SPARSE_DEMO_INDEX_CACHE_MB``: estimated memory those indexes may use together (default 1,000 MB).
- ``SPARSE_DEMO_PUBLIC_TRAIN_SECONDS``: in ``public`` mode, the longest turn one fine-tuning run may hold
  (default 600 s).

Folders (:func:`data_dir`, :func:`model_cache_dir`):

- ``SPARSE_DEMO_DATA_DIR``: the benchmark and training data (default ``../shared/data`` next to the checkout).
- ``SPARSE_DEMO_CACHE``: where a demo model retrained here is kept (default ``.cache/models`` in the checkout).
- ``SPARSE_DEMO_VECTOR_CACHE``: where encoded shared corpora are kept across restarts (default ``.cache/vectors``
  in the checkout; ``off`` disables it); ``SPARSE_DEMO_VECTOR_CACHE_MB`` bounds it (default 2,000 MB). A
  visitor's upload is never written there.

OpenSearch backend (:meth:`ConnectionSettings.from_env`; credentials are never logged, shown or put in ``repr``):

- ``OPENSEARCH_URL`` (default ``http://127.0.0.1:9200``), ``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD``,
  ``OPENSEARCH_VERIFY_CERTS`` (true/false, default true).

Read here, owned by other tools (:func:`hub_offline`, :func:`hub_host`, :func:`server_options`):

- ``HF_HUB_OFFLINE`` / ``HF_ENDPOINT``: the Hugging Face Hub is not tried when offline; its host.
- ``LOGLEVEL`` (default ``INFO``), ``GRADIO_SERVER_NAME`` (default ``127.0.0.1``), ``GRADIO_SERVER_PORT``
  (default 7860): how ``app.py`` logs and where it listens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from .limits import Limits

#: Tokens per text by default (``SPARSE_DEMO_MAX_LENGTH``); longer texts are truncated. Defined here,
#: not in :mod:`sparse_demo.encoder`, so reading settings never imports torch.
DEFAULT_MAX_LENGTH = 192
#: Encoder precisions (``SPARSE_DEMO_PRECISION``). ``auto``: float32 on CPU (exact), float16 on CUDA.
#: ``bf16``: bfloat16 autocast (about 2x faster on CPUs with avx512_bf16/AMX; weights differ from
#: float32 by ~1e-2). ``int8``: the transformer's linear layers dynamically quantised to int8 (CPU only; the
#: vocabulary projection stays float32); ``benchmarks/bench_encode.py`` prints its speed and agreement.
#: ``fp32``: exact.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")
ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_PRESETS_PATH = ASSETS_DIR / "models.json"
_ENV_PREFIX = "SPARSE_DEMO_MODEL_"
#: ``SPARSE_DEMO_MODEL_<NAME>`` variables that are settings, not presets.
_RESERVED = frozenset({"SOURCES", "CACHE_MB"})
#: Valid values of ``SPARSE_DEMO_MODEL_SOURCES``.
MODEL_SOURCES: tuple[str, ...] = ("any", "public")
ModelSources = Literal["any", "public"]


@dataclass(frozen=True)
class ModelPreset:
    """A named model: a Hub id or local folder, with an optional pinned revision."""

    name: str
    source: str
    revision: str | None = None
    description: str = ""

    @property
    def is_local(self) -> bool:
        return Path(self.source).expanduser().is_dir()


@dataclass(frozen=True)
class Settings:
    presets: tuple[ModelPreset, ...]
    default_model: str
    device: str = "auto"
    max_length: int = DEFAULT_MAX_LENGTH
    precision: str = "auto"
    stopwords_path: Path | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    model_sources: ModelSources = "any"
    hub_allow: tuple[str, ...] = ("sewoong/*",)
    allowed_roots: tuple[Path, ...] = ()
    hub_max_bytes: int = 2_500 * 1024 * 1024
    model_cache_bytes: int = 6_000 * 1024 * 1024
    max_models: int = 4
    retry_failed_s: float = 60.0

    @property
    def public(self) -> bool:
        """True in ``public`` mode (a multi-visitor Space): typed sources follow the allowlists."""
        return self.model_sources == "public"

    def preset(self, name: str) -> ModelPreset | None:
        return next((p for p in self.presets if p.name == name), None)

    @property
    def preset_names(self) -> list[str]:
        return [p.name for p in self.presets]


def _parse_source(value: str) -> tuple[str, str | None]:
    """``source@revision`` -> (source, revision); a local path keeps any ``@`` it contains."""
    if "@" in value and not Path(value).expanduser().exists():
        source, _, revision = value.rpartition("@")
        return source, revision or None
    return value, None


def load_presets(path: str | Path | None = None) -> tuple[list[ModelPreset], str | None]:
    """Read presets from a JSON file. Returns (presets, default name).

    Raises:
        ValueError: the file is not valid JSON or a preset lacks ``name``/``source``.
    """
    path = Path(path) if path else DEFAULT_PRESETS_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"Cannot read model presets from {path}: {exc}") from exc
    presets = []
    for i, item in enumerate(data.get("presets", [])):
        if not isinstance(item, dict) or not item.get("name") or not item.get("source"):
            raise ValueError(f"{path}: preset #{i} needs 'name' and 'source'")
        presets.append(
            ModelPreset(
                name=str(item["name"]),
                source=str(item["source"]),
                revision=item.get("revision") or None,
                description=str(item.get("description", "")),
            )
        )
    return presets, data.get("default")


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from the presets file and the environment (see the module docstring)."""
    env = _environ(env)
    presets, default = load_presets(env.get("SPARSE_DEMO_MODELS"))
    by_name = {p.name.upper(): p for p in presets}
    for key, value in env.items():
        if not key.startswith(_ENV_PREFIX) or not value.strip():
            continue
        name = key[len(_ENV_PREFIX) :]
        if name in _RESERVED:
            continue
        source, revision = _parse_source(value.strip())
        if name in by_name:
            by_name[name] = replace(by_name[name], source=source, revision=revision)
        else:
            by_name[name] = ModelPreset(name=name, source=source, revision=revision, description="from environment")
    merged = list(by_name.values())
    default = env.get("SPARSE_DEMO_DEFAULT_MODEL") or default or (merged[0].name if merged else "")
    try:
        max_length = int(env.get("SPARSE_DEMO_MAX_LENGTH", DEFAULT_MAX_LENGTH))
    except ValueError as exc:
        raise ValueError("SPARSE_DEMO_MAX_LENGTH must be an integer") from exc
    precision = env.get("SPARSE_DEMO_PRECISION", "auto")
    if precision not in PRECISIONS:
        raise ValueError(f"SPARSE_DEMO_PRECISION must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    stop = env.get("SPARSE_DEMO_STOPWORDS")
    sources = env.get("SPARSE_DEMO_MODEL_SOURCES", "any").strip().lower() or "any"
    if sources not in MODEL_SOURCES:
        raise ValueError(f"SPARSE_DEMO_MODEL_SOURCES must be one of {', '.join(MODEL_SOURCES)}, got {sources!r}")
    allow = tuple(p.strip() for p in env.get("SPARSE_DEMO_HUB_ALLOW", "sewoong/*").split(",") if p.strip())
    roots = tuple(
        Path(r).expanduser().resolve() for r in env.get("SPARSE_DEMO_ALLOWED_ROOTS", "").split(os.pathsep) if r.strip()
    )
    mb = 1024 * 1024
    return Settings(
        presets=tuple(merged),
        default_model=default,
        device=env.get("SPARSE_DEMO_DEVICE", "auto"),
        max_length=max_length,
        precision=precision,
        stopwords_path=Path(stop) if stop else None,
        model_sources=sources,  # type: ignore[arg-type]
        hub_allow=allow,
        allowed_roots=roots,
        hub_max_bytes=int(env_number(env, "SPARSE_DEMO_HUB_MAX_MB", 2_500, minimum=1) * mb),
        model_cache_bytes=int(env_number(env, "SPARSE_DEMO_MODEL_CACHE_MB", 6_000, minimum=1) * mb),
        max_models=int(env_number(env, "SPARSE_DEMO_MAX_MODELS", 4, minimum=1)),
        retry_failed_s=env_number(env, "SPARSE_DEMO_RETRY_FAILED_S", 60.0, minimum=0),
    )


def env_number(env: Mapping[str, str], key: str, default: float, *, minimum: float = 0) -> float:
    """A number from the environment, ``default`` when unset.

    Raises:
        ValueError: the value is not a number or is below ``minimum`` (the message names the variable).
    """
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{key} must be a number, got {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{key} must be at least {minimum:g}, got {raw!r}")
    return value


def _environ(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


_MB = 1024 * 1024


def load_limits(env: Mapping[str, str] | None = None) -> Limits:
    """The per-request :class:`~sparse_demo.limits.Limits` from the environment (defaults: the field defaults).

    Raises:
        ValueError: a variable is not a number or below its minimum (the message names it).
    """
    env = _environ(env)
    d = Limits()

    def mb(key: str, default_bytes: float) -> int:
        return int(env_number(env, key, default_bytes / _MB, minimum=0.001) * _MB)

    return Limits(
        max_query_chars=int(env_number(env, "SPARSE_DEMO_MAX_QUERY_CHARS", d.max_query_chars, minimum=1)),
        max_top_k=int(env_number(env, "SPARSE_DEMO_MAX_TOP_K", d.max_top_k, minimum=1)),
        max_batch=int(env_number(env, "SPARSE_DEMO_MAX_BATCH", d.max_batch, minimum=1)),
        max_upload_bytes=mb("SPARSE_DEMO_MAX_UPLOAD_MB", d.max_upload_bytes),
        max_rows=int(env_number(env, "SPARSE_DEMO_MAX_ROWS", d.max_rows, minimum=1)),
        visitor_quota_bytes=mb("SPARSE_DEMO_VISITOR_QUOTA_MB", d.visitor_quota_bytes),
        visitor_models=int(env_number(env, "SPARSE_DEMO_VISITOR_MODELS", d.visitor_models, minimum=1)),
        max_indexes=int(env_number(env, "SPARSE_DEMO_MAX_INDEXES", d.max_indexes, minimum=1)),
        index_cache_bytes=mb("SPARSE_DEMO_INDEX_CACHE_MB", d.index_cache_bytes),
        max_unpacked_bytes=mb("SPARSE_DEMO_MAX_UNPACKED_MB", d.max_unpacked_bytes),
        max_docs=int(env_number(env, "SPARSE_DEMO_MAX_DOCS", d.max_docs, minimum=1)),
        max_doc_chars=int(env_number(env, "SPARSE_DEMO_MAX_DOC_CHARS", d.max_doc_chars, minimum=1)),
        max_index_seconds=env_number(env, "SPARSE_DEMO_MAX_INDEX_SECONDS", d.max_index_seconds, minimum=0.001),
        public_train_seconds=int(
            env_number(env, "SPARSE_DEMO_PUBLIC_TRAIN_SECONDS", d.public_train_seconds, minimum=10)
        ),
    )


# ---------------------------------------------------------------------- folders
_CHECKOUT = Path(__file__).resolve().parents[1]


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """``SPARSE_DEMO_DATA_DIR``, else ``../shared/data`` next to the checkout (benchmark and training data)."""
    raw = _environ(env).get("SPARSE_DEMO_DATA_DIR", "").strip()
    return Path(raw).expanduser() if raw else _CHECKOUT.parent / "shared" / "data"


def model_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``SPARSE_DEMO_CACHE``, else ``.cache/models`` in the checkout (a demo model retrained here)."""
    raw = _environ(env).get("SPARSE_DEMO_CACHE", "").strip()
    return Path(raw).expanduser() if raw else _CHECKOUT / ".cache" / "models"


def vector_cache(env: Mapping[str, str] | None = None) -> tuple[Path | None, int]:
    """``(folder, max bytes)`` of the on-disk document-vector store (folder None: ``SPARSE_DEMO_VECTOR_CACHE=off``).

    Raises:
        ValueError: ``SPARSE_DEMO_VECTOR_CACHE_MB`` is not a positive number.
    """
    values = _environ(env)
    raw = values.get("SPARSE_DEMO_VECTOR_CACHE", "").strip()
    mb_raw = values.get("SPARSE_DEMO_VECTOR_CACHE_MB", "2000").strip() or "2000"
    try:
        mb = float(mb_raw)
    except ValueError:
        mb = -1.0
    if not mb > 0:
        raise ValueError(f"SPARSE_DEMO_VECTOR_CACHE_MB must be a positive number of megabytes, got {mb_raw!r}")
    if raw.lower() in ("off", "0", "false", "no", "none"):
        return None, int(mb * 1e6)
    return (Path(raw).expanduser() if raw else _CHECKOUT / ".cache" / "vectors"), int(mb * 1e6)


# ---------------------------------------------------------------------- Hugging Face Hub, app server
def hub_offline(env: Mapping[str, str] | None = None) -> bool:
    """True when ``HF_HUB_OFFLINE`` is 1 / true / yes: the Hub is not tried."""
    return _environ(env).get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes")


def hub_host(env: Mapping[str, str] | None = None) -> str:
    """The Hub's host name (from ``HF_ENDPOINT``; default ``huggingface.co``)."""
    return urlsplit(_environ(env).get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"


@dataclass(frozen=True)
class ServerOptions:
    """How ``app.py`` logs and where it listens."""

    log_level: str = "INFO"
    host: str = "127.0.0.1"
    port: int = 7860


def server_options(env: Mapping[str, str] | None = None) -> ServerOptions:
    """``LOGLEVEL``, ``GRADIO_SERVER_NAME`` and ``GRADIO_SERVER_PORT``.

    Raises:
        ValueError: the port is not an integer in 1..65535 (the message names the variable).
    """
    env = _environ(env)
    raw = (env.get("GRADIO_SERVER_PORT") or "7860").strip()
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError(f"GRADIO_SERVER_PORT must be a port number (1-65535), got {raw!r}")
    return ServerOptions(
        log_level=(env.get("LOGLEVEL") or "INFO").strip().upper(),
        host=(env.get("GRADIO_SERVER_NAME") or "127.0.0.1").strip(),
        port=port,
    )


# ---------------------------------------------------------------------- OpenSearch
#: Where the OpenSearch backend connects without ``OPENSEARCH_URL``.
DEFAULT_OPENSEARCH_URL = "http://127.0.0.1:9200"


def _env_bool(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"OPENSEARCH_VERIFY_CERTS must be one of true/false/1/0/yes/no/on/off, got {value!r}")


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how the OpenSearch backend connects. ``password`` never appears in ``repr``.

    Attributes:
        url: ``http(s)://host:port`` without credentials.
        user: Basic-auth user, or None.
        password: Basic-auth password, or None.
        verify_certs: Verify the node's TLS certificate.
        timeout: Seconds per request.
    """

    url: str = DEFAULT_OPENSEARCH_URL
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    verify_certs: bool = True
    timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectionSettings:
        """Read ``OPENSEARCH_URL``, ``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD``, ``OPENSEARCH_VERIFY_CERTS``.

        Credentials embedded in the URL (``https://user:pw@host``) are moved out of it.

        Args:
            environ: The variables to read; ``os.environ`` when None.

        Raises:
            ValueError: the URL is not ``http(s)://host[:port]`` or the certificate flag is
                not a boolean word.
        """
        env = _environ(environ)
        url = (env.get("OPENSEARCH_URL") or DEFAULT_OPENSEARCH_URL).strip()
        user = env.get("OPENSEARCH_USER") or None
        password = env.get("OPENSEARCH_PASSWORD") or None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("OPENSEARCH_URL must look like http(s)://host:port")
        if parts.username:
            user = user or unquote(parts.username)
            password = password or (unquote(parts.password) if parts.password else None)
            netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
            url = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        verify = _env_bool(env.get("OPENSEARCH_VERIFY_CERTS"), True)
        return cls(url=url.rstrip("/"), user=user, password=password, verify_certs=verify)

    @property
    def display_url(self) -> str:
        """The URL without credentials, safe to show."""
        parts = urlsplit(self.url)
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))

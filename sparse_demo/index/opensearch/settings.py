"""Connection settings of the OpenSearch backend, read from the environment.

``OPENSEARCH_URL`` (default ``http://127.0.0.1:9200``), ``OPENSEARCH_USER``,
``OPENSEARCH_PASSWORD`` and ``OPENSEARCH_VERIFY_CERTS``; credentials are never logged, put
in messages or shown by ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit, urlunsplit

__all__ = ["DEFAULT_URL", "ConnectionSettings"]

DEFAULT_URL = "http://127.0.0.1:9200"


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
    """Where and how to connect. ``password`` never appears in ``repr``.

    Attributes:
        url: ``http(s)://host:port`` without credentials.
        user: Basic-auth user, or None.
        password: Basic-auth password, or None.
        verify_certs: Verify the node's TLS certificate.
        timeout: Seconds per request.
    """

    url: str = DEFAULT_URL
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
        env = os.environ if environ is None else environ
        url = (env.get("OPENSEARCH_URL") or DEFAULT_URL).strip()
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

"""The opensearch-py client and the translation of its failures into readable errors.

opensearch-py is imported lazily (only when the OpenSearch backend is used), with an
install hint when missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sparse_demo.index.opensearch.errors import OpenSearchUnavailable
from sparse_demo.index.opensearch.settings import ConnectionSettings

__all__ = ["START_HINT", "guarded_call", "make_client"]

logger = logging.getLogger(__name__)

START_HINT = "Start a local node with `scripts/opensearch.sh start` or set OPENSEARCH_URL."

T = TypeVar("T")


class _DropTraceback(logging.Filter):
    """opensearch-py logs every failed connection with a full traceback; keep the one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


_DROP_TRACEBACK = _DropTraceback()


def make_client(settings: ConnectionSettings) -> Any:
    """An ``opensearchpy.OpenSearch`` client for ``settings`` (one retry, no retry on timeout).

    Raises:
        ImportError: opensearch-py is not installed (the message says how to install it).
    """
    try:
        from opensearchpy import OpenSearch
    except ImportError as exc:  # pragma: no cover - dependency is in requirements
        raise ImportError("opensearch-py is required for the OpenSearch backend: pip install opensearch-py") from exc
    client_logger = logging.getLogger("opensearch")
    if _DROP_TRACEBACK not in client_logger.filters:
        client_logger.addFilter(_DROP_TRACEBACK)
    return OpenSearch(
        hosts=[settings.url],
        http_auth=(settings.user, settings.password or "") if settings.user else None,
        use_ssl=settings.url.startswith("https"),
        verify_certs=settings.verify_certs,
        ssl_show_warn=settings.verify_certs,
        timeout=settings.timeout,
        max_retries=1,
        retry_on_timeout=False,
    )


def guarded_call(settings: ConnectionSettings, index: str, what: str, fn: Callable[[], T]) -> T:
    """Run a client call, turning connection and auth failures into :class:`OpenSearchUnavailable`.

    Args:
        settings: Where the client connects (only the credential-free URL is shown).
        index: The index the call works on (named in authorization errors).
        what: What the call does, as a verb phrase ("count documents").
        fn: The call.

    Returns:
        What ``fn`` returns. Other OpenSearch errors (``NotFoundError``, ``RequestError``)
        pass through for the caller to handle.

    Raises:
        OpenSearchUnavailable: the node is unreachable, too slow, or refuses the credentials.
    """
    from opensearchpy import exceptions as exc

    url = settings.display_url
    try:
        return fn()
    except exc.AuthenticationException:
        raise OpenSearchUnavailable(
            f"OpenSearch at {url} refused the credentials while trying to {what} "
            "(check OPENSEARCH_USER / OPENSEARCH_PASSWORD)."
        ) from None
    except exc.AuthorizationException:
        raise OpenSearchUnavailable(
            f"OpenSearch at {url}: the configured user may not {what} on index {index!r}."
        ) from None
    except exc.ConnectionTimeout:
        raise OpenSearchUnavailable(
            f"OpenSearch at {url} did not answer in time while trying to {what}. {START_HINT}"
        ) from None
    except exc.SSLError:
        raise OpenSearchUnavailable(
            f"TLS handshake with OpenSearch at {url} failed while trying to {what} "
            "(for a self-signed certificate set OPENSEARCH_VERIFY_CERTS=false)."
        ) from None
    except exc.ConnectionError as e:
        logger.debug("OpenSearch connection error: %s", type(e).__name__)
        raise OpenSearchUnavailable(f"OpenSearch is not reachable at {url} (could not {what}). {START_HINT}") from None

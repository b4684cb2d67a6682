"""Connection settings of the OpenSearch backend: :class:`sparse_demo.config.ConnectionSettings`.

They are read from the environment (``OPENSEARCH_URL``, ``OPENSEARCH_USER``, ``OPENSEARCH_PASSWORD``,
``OPENSEARCH_VERIFY_CERTS``) by :mod:`sparse_demo.config`, the one module that reads environment variables;
this module names them for the backend.
"""

from __future__ import annotations

from sparse_demo.config import DEFAULT_OPENSEARCH_URL as DEFAULT_URL
from sparse_demo.config import ConnectionSettings

__all__ = ["DEFAULT_URL", "ConnectionSettings"]

"""Clients for terafoundation connectors used by operations.

Only Elasticsearch (``elasticsearch-next`` and legacy ``elasticsearch`` connector types) is
needed by the built-in operations. Connector configs look like Teraslice's:
``{"node": ["http://es:9200"], "username": ..., "password": ..., "caCertificate": ...,
"requestTimeout": ...}``. Clients are built by the store's
:func:`~teraslice_k8s.store.es_client.make_client`, so operations and the state store
speak the same (Elasticsearch 8 compatible) REST dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import Elasticsearch

from teraslice_k8s.models.config import ELASTICSEARCH_CONNECTOR_TYPES
from teraslice_k8s.models.schema import parse_duration
from teraslice_k8s.store.es_client import make_client

ES_CONNECTOR_TYPES = ELASTICSEARCH_CONNECTOR_TYPES
DEFAULT_NODE = "http://127.0.0.1:9200"


def elasticsearch_client(config: Mapping[str, Any]) -> Elasticsearch:
    """A synchronous client for one connector config (call it from a worker thread)."""
    nodes = config.get("node") or config.get("host") or DEFAULT_NODE
    auth = config.get("auth") if isinstance(config.get("auth"), Mapping) else {}
    ca = config.get("caCertificate")
    return make_client(
        [str(n) for n in nodes] if isinstance(nodes, list) else str(nodes),
        username=config.get("username") or (auth or {}).get("username"),
        password=config.get("password") or (auth or {}).get("password"),
        ca_certificate="\n".join(ca) if isinstance(ca, list) else ca,
        request_timeout=parse_duration(config.get("requestTimeout", 120_000)) / 1000,
        max_retries=int(config.get("maxRetries", 3)),
    )

"""Clients for terafoundation connectors used by operations.

Only Elasticsearch (``elasticsearch-next`` and legacy ``elasticsearch`` connector types) is
needed by the built-in operations. Connector configs look like Teraslice's:
``{"node": ["http://es:9200"], "username": ..., "password": ..., "caCertificate": ...,
"requestTimeout": ...}``. Clients are built by the store's
:func:`~teraslice_k8s.store.es_client.connector_client`, so operations and the state store
read connector settings by the same rules and speak the same (Elasticsearch 8 compatible)
REST dialect.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import Elasticsearch

from teraslice_k8s.models.terafoundation import ELASTICSEARCH_CONNECTOR_TYPES
from teraslice_k8s.store.es_client import connector_client

ES_CONNECTOR_TYPES = ELASTICSEARCH_CONNECTOR_TYPES


def elasticsearch_client(config: Mapping[str, Any], path: str = "connector") -> Elasticsearch:
    """A synchronous client for one connector config (call it from a worker thread).

    ``path`` names the connector in errors (``terafoundation.connectors.<type>.<name>``).
    """
    return connector_client(path, config)

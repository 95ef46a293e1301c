"""Clients for terafoundation connectors used by operations.

Only Elasticsearch/OpenSearch (``elasticsearch-next`` and legacy ``elasticsearch`` connector
types) is needed by the built-in operations. Connector configs look like Teraslice's:
``{"node": ["http://es:9200"], "username": ..., "password": ...}`` (``host`` / ``nodes`` are
accepted for the legacy type); hosts without a scheme get ``http://``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import Elasticsearch

ES_CONNECTOR_TYPES = ("elasticsearch-next", "elasticsearch")


def es_hosts(config: Mapping[str, Any]) -> list[str]:
    raw = config.get("node") or config.get("nodes") or config.get("host") or config.get("hosts")
    if raw is None:
        raise ValueError("elasticsearch connector needs 'node' (a URL or a list of URLs)")
    items = [raw] if isinstance(raw, str) else list(raw)
    return [h if "://" in h else f"http://{h}" for h in (str(i) for i in items)]


def elasticsearch_client(config: Mapping[str, Any]) -> Elasticsearch:
    """A synchronous client for one connector config (call it from a worker thread)."""
    kwargs: dict[str, Any] = {
        "request_timeout": float(config.get("requestTimeout", config.get("request_timeout", 120000))) / 1000,
    }
    if config.get("username"):
        kwargs["basic_auth"] = (str(config["username"]), str(config.get("password", "")))
    if config.get("caCertificate"):
        kwargs["ca_certs"] = str(config["caCertificate"])
    return Elasticsearch(es_hosts(config), **kwargs)

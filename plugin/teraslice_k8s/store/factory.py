"""Open the store a cluster config asks for (``teraslice.storage``).

- ``type: sqlite``: :class:`SqliteStore` at ``storage.path`` (relative paths are relative to the
  working directory; missing parent directories are created).
- ``type: elasticsearch``: :class:`ElasticsearchStore` with index prefix ``teraslice.name``
  and ``teraslice.index_settings``, connected through the terafoundation connector named by
  ``storage.connection`` under ``elasticsearch-next`` (or ``elasticsearch``): ``node`` (URL or
  list, default ``http://127.0.0.1:9200``), ``username``/``password`` or ``auth: {username,
  password}``, ``caCertificate`` (PEM, string or list), ``requestTimeout`` (duration, default
  2 minutes) and ``maxRetries`` (default 3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.models.schema import parse_duration
from teraslice_k8s.store.base import Store
from teraslice_k8s.store.sqlite import SqliteStore

DEFAULT_NODE = "http://127.0.0.1:9200"


def _invalid(path: str, message: str) -> ValidationError:
    return ValidationError([Problem(path, message)], subject="config")


def _connector_options(path: str, extras: dict[str, Any]) -> dict[str, Any]:
    """Client options from a connector's client-specific keys (terafoundation's names)."""
    options: dict[str, Any] = {}
    auth = extras.get("auth")
    if auth is not None:
        if not isinstance(auth, dict) or not {"username", "password"} <= auth.keys():
            raise _invalid(f"{path}.auth", "must be a mapping with username and password")
        options["username"], options["password"] = auth["username"], auth["password"]
    ca = extras.get("caCertificate")
    if ca is not None:
        if isinstance(ca, list) and all(isinstance(c, str) for c in ca):
            ca = "\n".join(ca)
        if not isinstance(ca, str):
            raise _invalid(f"{path}.caCertificate", "must be a PEM string or a list of PEM strings")
        options["ca_certificate"] = ca
    if "requestTimeout" in extras:
        try:
            options["request_timeout"] = parse_duration(extras["requestTimeout"]) / 1000
        except ValueError as error:
            raise _invalid(f"{path}.requestTimeout", str(error)) from None
    retries = extras.get("maxRetries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise _invalid(f"{path}.maxRetries", "must be a non-negative integer")
    options["max_retries"] = retries
    return options


def open_store(config: SysConfig) -> Store:
    """The store ``config.teraslice.storage`` describes; a bad storage config raises
    :class:`ValidationError` naming the key, an unreachable store :class:`StoreError`."""
    storage = config.teraslice.storage
    if storage.type in (None, "sqlite"):
        path = Path(storage.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return SqliteStore(path)
    # Imported here: the Elasticsearch client takes ~0.5 s to import, which every execution
    # controller and worker would pay at start-up even with SQLite.
    from teraslice_k8s.store.elasticsearch import ElasticsearchStore
    from teraslice_k8s.store.es_client import make_client

    connection = config.terafoundation.connection(storage.connection)
    if connection is None:
        raise _invalid(
            "teraslice.storage.connection",
            f'no "elasticsearch-next" or "elasticsearch" connector named "{storage.connection}" '
            "in terafoundation.connectors",
        )
    kind = config.terafoundation.connection_type(storage.connection)
    extras = dict(connection.model_extra or {})
    options = _connector_options(f"terafoundation.connectors.{kind}.{storage.connection}", extras)
    if connection.username is not None or connection.password is not None:
        options["username"], options["password"] = connection.username, connection.password
    client = make_client(connection.node or DEFAULT_NODE, **options)
    try:
        return ElasticsearchStore(
            client, config.teraslice.name, index_settings=config.teraslice.index_settings, close_client=True
        )
    except BaseException:
        client.close()
        raise

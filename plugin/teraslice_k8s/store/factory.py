"""Open the store a cluster config asks for (``teraslice.storage``).

- ``type: sqlite``: :class:`SqliteStore` at ``storage.path`` (relative paths are relative to the
  working directory; missing parent directories are created).
- ``type: elasticsearch``: :class:`ElasticsearchStore` with index prefix ``teraslice.name``
  and ``teraslice.index_settings``, connected through the terafoundation connector named by
  ``storage.connection`` under ``elasticsearch-next`` (or ``elasticsearch``), read by
  :func:`~teraslice_k8s.store.es_client.connector_client` (the same rules as operations).
"""

from __future__ import annotations

from pathlib import Path

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.base import Store
from teraslice_k8s.store.sqlite import SqliteStore


def _invalid(path: str, message: str) -> ValidationError:
    return ValidationError([Problem(path, message)], subject="config")


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
    from teraslice_k8s.store.es_client import connector_client

    connection = config.terafoundation.connection(storage.connection)
    if connection is None:
        raise _invalid(
            "teraslice.storage.connection",
            f'no "elasticsearch-next" or "elasticsearch" connector named "{storage.connection}" '
            "in terafoundation.connectors",
        )
    kind = config.terafoundation.connection_type(storage.connection)
    settings = connection.model_dump(exclude_none=True)  # typed fields and the extras
    client = connector_client(f"terafoundation.connectors.{kind}.{storage.connection}", settings)
    try:
        return ElasticsearchStore(
            client,
            config.teraslice.name,
            index_settings=config.teraslice.index_settings,
            close_client=True,
            startup_timeout=storage.startup_timeout / 1000,  # ms, parsed by the model
        )
    except BaseException:
        client.close()
        raise

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
from typing import TYPE_CHECKING

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.assets import AssetIndex, AssetStore, BlobStorage
from teraslice_k8s.store.base import Store
from teraslice_k8s.store.sqlite import SqliteStore
from teraslice_k8s.store.sqlite_assets import SqliteAssetIndex

if TYPE_CHECKING:  # the client is imported lazily (slow import, see open_store)
    from elasticsearch import Elasticsearch


def _invalid(path: str, message: str) -> ValidationError:
    return ValidationError([Problem(path, message)], subject="config")


def _sqlite_path(config: SysConfig) -> Path:
    """The state store's SQLite file (its folder created)."""
    path = Path(config.teraslice.storage.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _state_client(config: SysConfig) -> Elasticsearch:
    """A client for the state store's connector; :class:`ValidationError` naming the key when
    the connector is missing or its settings are bad."""
    from teraslice_k8s.store.es_client import connector_client

    storage = config.teraslice.storage
    connection = config.terafoundation.connection(storage.connection)
    if connection is None:
        raise _invalid(
            "teraslice.storage.connection",
            f'no "elasticsearch-next" or "elasticsearch" connector named "{storage.connection}" '
            "in terafoundation.connectors",
        )
    kind = config.terafoundation.connection_type(storage.connection)
    settings = connection.model_dump(exclude_none=True)  # typed fields and the extras
    return connector_client(f"terafoundation.connectors.{kind}.{storage.connection}", settings)


def open_store(config: SysConfig) -> Store:
    """The store ``config.teraslice.storage`` describes; a bad storage config raises
    :class:`ValidationError` naming the key, an unreachable store :class:`StoreError`."""
    storage = config.teraslice.storage
    if storage.type in (None, "sqlite"):
        return SqliteStore(_sqlite_path(config))
    # Imported here: the Elasticsearch client takes ~0.5 s to import, which every execution
    # controller and worker would pay at start-up even with SQLite.
    from teraslice_k8s.store.elasticsearch import ElasticsearchStore

    client = _state_client(config)
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


def open_asset_store(config: SysConfig) -> AssetStore:
    """The asset records next to the state (SQLite table ``assets`` in the same file, or the
    ``<cluster>__assets`` index on the same connection), with the zips in S3 when
    ``teraslice.asset_storage_connection_type`` is ``s3`` (connector
    ``terafoundation.connectors.s3.<asset_storage_connection>``, bucket
    ``asset_storage_bucket``, default ``ts-assets-<cluster name>``)."""
    ts = config.teraslice
    blobs: BlobStorage | None = None
    if ts.asset_storage_connection_type == "s3":
        from teraslice_k8s.store.s3_blobs import S3Blobs

        connection = config.terafoundation.connection(ts.asset_storage_connection, ("s3",))
        if connection is None:
            raise _invalid(
                "teraslice.asset_storage_connection",
                f'no "s3" connector named "{ts.asset_storage_connection}" in terafoundation.connectors',
            )
        bucket = ts.asset_storage_bucket or f"ts-assets-{ts.name}".replace("_", "-")
        blobs = S3Blobs(connection.model_dump(exclude_none=True), bucket)
    try:
        return AssetStore(_asset_index(config), blobs)
    except BaseException:
        if blobs is not None:
            blobs.close()
        raise


def _asset_index(config: SysConfig) -> AssetIndex:
    storage = config.teraslice.storage
    if storage.type in (None, "sqlite"):
        return SqliteAssetIndex(_sqlite_path(config))
    from teraslice_k8s.store.es_assets import ElasticsearchAssetIndex

    client = _state_client(config)
    try:
        return ElasticsearchAssetIndex(
            client, config.teraslice.name, index_settings=config.teraslice.index_settings, close_client=True
        )
    except BaseException:
        client.close()
        raise

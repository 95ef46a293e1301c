"""Asset records in Elasticsearch: index ``<cluster>__assets``, document id = asset id (§5.2).

Mapping as Teraslice's (``dynamic: false``; keyword ``name, version, id, description, arch,
platform``, integer ``node_version``, binary ``blob``, date ``_created``) plus keyword
``python_version``. Writes refresh the index before returning, as Teraslice's asset store
does, so a listing right after an upload shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from teraslice_k8s.store.assets import ASSET_KIND, DEFAULT_ASSET_PAGE
from teraslice_k8s.store.base import Page, Record, RecordExists, RecordNotFound, StoreError
from teraslice_k8s.store.es_schema import Index
from teraslice_k8s.store.query import check_page

log = logging.getLogger(__name__)

_KEYWORD = {"type": "keyword"}
ASSET_FIELDS: dict[str, dict[str, Any]] = {
    **dict.fromkeys(("name", "version", "id", "description", "arch", "platform", "python_version"), _KEYWORD),
    "node_version": {"type": "integer"},
    "blob": {"type": "binary"},
    "_created": {"type": "date"},
}


class ElasticsearchAssetIndex:
    """:class:`~teraslice_k8s.store.assets.AssetIndex` in ``<cluster_name>__assets``."""

    def __init__(
        self,
        client: Elasticsearch,
        cluster_name: str,
        *,
        index_settings: Mapping[str, Mapping[str, int]] | None = None,
        close_client: bool = False,
    ) -> None:
        self._client, self._owns_client = client, close_client
        self.index = Index(f"{cluster_name}__assets", ASSET_KIND, "id", ASSET_FIELDS, "assets")
        settings = dict((index_settings or {}).get("assets", {}))
        body = {
            "number_of_shards": settings.get("number_of_shards", 5),
            "number_of_replicas": settings.get("number_of_replicas", 1),
        }
        try:
            if not client.indices.exists(index=self.index.name):
                client.indices.create(
                    index=self.index.name,
                    settings={"index": body},
                    mappings={"dynamic": False, "properties": ASSET_FIELDS},
                )
        except ApiError as error:
            if error.error != "resource_already_exists_exception":
                raise StoreError(f"cannot create index {self.index.name}: {error}") from error
        except TransportError as error:
            raise StoreError(f"cannot reach Elasticsearch to create {self.index.name}: {error}") from error

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (ApiError, TransportError) as error:
            raise StoreError(f"Elasticsearch {self.index.name}: {action} failed: {error}") from error

    def create(self, record: Record) -> None:
        try:
            with self._errors(f"create asset {record['id']}"):
                self._client.index(
                    index=self.index.name,
                    id=record["id"],
                    document=dict(record),
                    op_type="create",
                    refresh=True,
                )
        except StoreError as error:
            if isinstance(error.__cause__, ConflictError):
                raise RecordExists(ASSET_KIND, record["id"]) from None
            raise

    def get(self, asset_id: str, *, with_blob: bool = False) -> Record:
        try:
            with self._errors(f"get asset {asset_id}"):
                found = self._client.get(
                    index=self.index.name, id=asset_id, source_excludes=None if with_blob else ["blob"]
                )
        except StoreError as error:
            if isinstance(error.__cause__, NotFoundError):
                raise RecordNotFound(ASSET_KIND, asset_id) from None
            raise
        source: Record = dict(found["_source"])
        if not with_blob:
            source.pop("blob", None)
        return source

    @staticmethod
    def _query(fields: Mapping[str, Any]) -> dict[str, Any]:
        if not fields:
            return {"match_all": {}}
        return {"bool": {"filter": [{"term": {key: value}} for key, value in fields.items()]}}

    def count(self, fields: Mapping[str, Any]) -> int:
        with self._errors("count assets"):
            return int(self._client.count(index=self.index.name, query=self._query(fields))["count"])

    def search(self, name: str | None, version: str | None, page: Page = DEFAULT_ASSET_PAGE) -> list[Record]:
        keys = check_page(page)
        fields = {k: v for k, v in (("name", name), ("version", version)) if v is not None}
        with self._errors("search assets"):
            found = self._client.search(
                index=self.index.name,
                query=self._query(fields),
                sort=self.index.sort(keys),
                size=page.size,
                from_=page.from_,
                source_excludes=["blob"],
            )
        out = []
        for hit in found["hits"]["hits"]:
            source = dict(hit["_source"])
            source.pop("blob", None)
            source["id"] = hit["_id"]
            out.append(source)
        return out

    def delete(self, asset_id: str) -> bool:
        try:
            with self._errors(f"delete asset {asset_id}"):
                self._client.delete(index=self.index.name, id=asset_id, refresh=True)
        except StoreError as error:
            if isinstance(error.__cause__, NotFoundError):
                return False
            raise
        return True

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

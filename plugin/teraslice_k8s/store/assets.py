"""Asset storage: the asset records (Teraslice's ``<cluster>__assets`` index, §5.6) and the zips.

Two parts, composed by :class:`AssetStore`:

- an :class:`AssetIndex`: one record per asset id holding the ``asset.json`` metadata, ``id``
  and ``_created``, plus the zip as base64 text in ``blob`` unless the zips live elsewhere
  (SQLite table ``assets`` in the state file: ``store.sqlite_assets``; Elasticsearch index
  ``<cluster>__assets``: ``store.es_assets``);
- optionally a :class:`BlobStorage` for the zips (``asset_storage_connection_type: s3``:
  ``store.s3_blobs``, object ``<id>.zip``), the records then holding metadata only.

Contract of every :class:`AssetIndex` (shared tests: ``tests/unit/store/asset_contract.py``):
``create`` raises :class:`RecordExists` for a taken id; ``get`` raises :class:`RecordNotFound`
(message ``Could not find asset <id>``); ``count(fields)`` counts records whose every given
field equals the value exactly; ``search`` lists records (never ``blob``) of a name and
version (None = any) sorted by ``page.sort`` (default ``_created:desc``); writes are visible to
every later read of any process when they return.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from teraslice_k8s.store.base import Page, Record, RecordNotFound, StoreError
from teraslice_k8s.store.timestamps import StoreClock

log = logging.getLogger(__name__)

ASSET_KIND = "asset"
DEFAULT_ASSET_PAGE = Page(size=100, from_=0, sort="_created:desc")
#: Fields of a listing item (Teraslice's ``assetsSearch`` fields, plus our ``python_version``).
LIST_FIELDS = (
    "_created",
    "name",
    "version",
    "description",
    "node_version",
    "python_version",
    "platform",
    "arch",
    "id",
)


class AssetIndex(Protocol):
    """The asset records (see the module docstring for the contract)."""

    def create(self, record: Record) -> None: ...
    def get(self, asset_id: str, *, with_blob: bool = False) -> Record: ...
    def count(self, fields: Mapping[str, Any]) -> int: ...
    def search(
        self, name: str | None, version: str | None, page: Page = DEFAULT_ASSET_PAGE
    ) -> list[Record]: ...
    def delete(self, asset_id: str) -> bool:
        """Remove the record; False if there was none."""
        ...

    def close(self) -> None: ...


class BlobStorage(Protocol):
    """Where the zips live when not in the records (S3)."""

    def put(self, asset_id: str, data: bytes) -> None: ...
    def get(self, asset_id: str) -> bytes:
        """The zip; :class:`RecordNotFound` when missing."""
        ...

    def exists(self, asset_id: str) -> bool: ...
    def delete(self, asset_id: str) -> None: ...
    def ids(self) -> set[str]: ...
    def close(self) -> None: ...


def listing_item(record: Mapping[str, Any]) -> Record:
    """A record as ``GET /assets`` shows it: only :data:`LIST_FIELDS` that are present."""
    return {key: record[key] for key in LIST_FIELDS if key in record}


class AssetStore:
    """Records plus zips: where the master, controllers and workers read and write assets."""

    def __init__(self, index: AssetIndex, blobs: BlobStorage | None = None) -> None:
        self.index = index
        self.blobs = blobs
        self._clock = StoreClock()  # strictly increasing _created: "newest" is well defined

    @property
    def external(self) -> bool:
        """True when the zips are stored outside the records (S3)."""
        return self.blobs is not None

    def save(self, record: Mapping[str, Any], data: bytes) -> Record:
        """Store a new asset (``record`` = metadata with ``id``); stamps ``_created``. With
        external storage the zip is written first and removed again if the record fails."""
        stored: Record = {**record, "_created": self._clock.next()}
        if self.blobs is None:
            self.index.create({**stored, "blob": base64.b64encode(data).decode("ascii")})
            return stored
        self.blobs.put(stored["id"], data)
        try:
            self.index.create(stored)
        except BaseException:
            self.blobs.delete(stored["id"])
            raise
        return stored

    def exists(self, asset_id: str) -> bool:
        """The record exists (and, with external storage, its zip)."""
        if self.index.count({"id": asset_id}) != 1:
            return False
        return self.blobs is None or self.blobs.exists(asset_id)

    def get(self, asset_id: str) -> Record:
        return self.index.get(asset_id)

    def get_zip(self, asset_id: str) -> bytes:
        """The zip of an asset (:class:`RecordNotFound` when the record or the zip is missing)."""
        if self.blobs is not None:
            self.index.get(asset_id)
            return self.blobs.get(asset_id)
        record = self.index.get(asset_id, with_blob=True)
        blob = record.get("blob")
        if not isinstance(blob, str):
            raise RecordNotFound(ASSET_KIND, asset_id)
        try:
            return base64.b64decode(blob, validate=True)
        except binascii.Error as err:
            raise StoreError(f"asset {asset_id}: stored blob is not base64: {err}") from err

    def search(self, name: str | None, version: str | None, page: Page = DEFAULT_ASSET_PAGE) -> list[Record]:
        """Listing items; with external storage each gets ``external_storage``
        (``available``/``missing``), as Teraslice's S3 mode."""
        items = [listing_item(r) for r in self.index.search(name, version, page)]
        if self.blobs is not None:
            present = self.blobs.ids()
            for item in items:
                item["external_storage"] = "available" if item.get("id") in present else "missing"
        return items

    def records_named(self, name: str) -> list[Record]:
        """Every record of ``name`` (for resolution; Teraslice searches up to 10,000)."""
        return self.index.search(name, None, Page(size=10_000, from_=0, sort="_created:desc"))

    def count(self, fields: Mapping[str, Any]) -> int:
        return self.index.count(fields)

    def delete(self, asset_id: str) -> bool:
        """Remove the zip (external) then the record, so a failed delete stays listed and can
        be retried; False when neither existed."""
        found = False
        if self.blobs is not None and self.blobs.exists(asset_id):
            self.blobs.delete(asset_id)
            found = True
        return self.index.delete(asset_id) or found

    def close(self) -> None:
        self.index.close()
        if self.blobs is not None:
            self.blobs.close()

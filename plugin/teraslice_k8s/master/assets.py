"""The master's asset use cases: upload, list, delete, autoload, and resolution at submit.

Upload (Teraslice's assets service, §1.7/§6.4): the body must be a zip; its id is the SHA-1
of its base64 text; an id already stored answers 200 (nothing written), a new one 201. A new
bundle is checked whole in memory first (zip entries, ``asset.json``, uniqueness of name,
version, node_version, python_version, platform and arch), then stored, then unpacked into
``assets_directory/<id>``; a refused bundle writes nothing. Teraslice answers some client
mistakes with 500 (not a zip, bad ``asset.json`` fields) and, without ``blocking``, only logs
them; here every refusal is the fitting 4xx with Teraslice's message, whatever ``blocking``
says (docs/compatibility.md).

Resolution: a job's ``assets`` entries become asset ids (models.asset_versions), and the
assets are loaded (unpacked + imported) so the job's operations are validated against the
assets' schemas, exactly as the built-ins'.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.models.asset import (
    DEFAULT_LIMITS,
    AssetRejected,
    BundleLimits,
    asset_id,
    describe_query,
    inspect_bundle,
    is_zip,
    uniqueness_query,
)
from teraslice_k8s.models.asset_versions import ASSET_ID, resolve_entries, split_entry
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.runtime.assets import assets_root, load_assets, remove_unpacked, unpack
from teraslice_k8s.runtime.operations.asset_ops import AssetLoadError, LoadedAsset
from teraslice_k8s.store.assets import AssetStore
from teraslice_k8s.store.base import Page, Record, RecordExists, RecordNotFound

log = logging.getLogger(__name__)

#: Teraslice asset names whose operations (data_generator, stdout, elasticsearch_reader...) are
#: built in here.
BUILTIN_ASSETS = frozenset({"standard", "elasticsearch"})


class AssetService:
    """Thread-safe asset use cases over one :class:`AssetStore` and the assets directory."""

    def __init__(
        self,
        store: AssetStore,
        assets_dir: Path,
        *,
        upload_enabled: bool = True,
        limits: BundleLimits = DEFAULT_LIMITS,
        autoload_dir: Path | None = None,
        payload_limit: int = 100 * 1024 * 1024,
    ) -> None:
        self.store = store
        self.assets_dir = assets_dir
        self.autoload_dir = autoload_dir
        self.payload_limit = payload_limit
        self.upload_enabled = upload_enabled
        self.limits = limits
        # Uploads are serialised (as Teraslice's mutex): the uniqueness check and the write
        # of two bundles with the same name and version must not interleave.
        self._upload_lock = threading.Lock()

    @classmethod
    def from_config(cls, config: SysConfig, store: AssetStore) -> AssetService:
        ts = config.teraslice
        return cls(
            store,
            assets_root(ts.assets_directory),
            upload_enabled=ts.assets_upload_enabled,
            autoload_dir=Path(ts.autoload_directory) if ts.autoload_directory else None,
            payload_limit=ts.payload_limit_bytes,
        )

    def start(self) -> None:
        """Autoload (master start): every ``*.zip`` of ``autoload_dir``."""
        if self.autoload_dir is not None:
            self.autoload(self.autoload_dir)

    # -- upload ---------------------------------------------------------------------------

    def upload(self, data: bytes) -> tuple[bool, str]:
        """Store a bundle: ``(created, id)``. Raises :class:`ApiError` with Teraslice's message."""
        if not self.upload_enabled:
            raise ApiError(
                403, "asset uploads are disabled on this cluster (teraslice.assets_upload_enabled)"
            )
        return self._store_bundle(data)

    def _store_bundle(self, data: bytes) -> tuple[bool, str]:
        if not is_zip(data):
            raise ApiError(400, "Failed to save asset. File type not recognized as zip.")
        new_id = asset_id(data)
        with self._upload_lock:
            if self.store.exists(new_id):
                log.info("asset id: %s already exists", new_id)
                self._unpack_quietly(data, new_id)
                return False, new_id
            try:
                record = inspect_bundle(data, self.limits)
            except AssetRejected as err:
                log.info("asset %s refused: %s", new_id, err.message)
                raise ApiError(err.status, err.message) from err
            unique = uniqueness_query(record)
            if self.store.count(unique):
                raise ApiError(
                    409,
                    f"Asset {describe_query(unique)} already exists, "
                    "please increment the version and send again",
                )
            try:
                self.store.save(record, data)
            except RecordExists:
                return False, new_id
        self._unpack_quietly(data, new_id)
        log.info("asset %s@%s (%s) saved", record["name"], record["version"], new_id)
        return True, new_id

    def _unpack_quietly(self, data: bytes, new_id: str) -> None:
        # The store is the source of truth; every process unpacks on demand, so an unpack
        # failure here (full disk) only costs the master a later retry.
        try:
            unpack(data, self.assets_dir, new_id, self.limits)
        except (OSError, AssetRejected) as err:
            log.warning("asset %s stored but not unpacked into %s: %s", new_id, self.assets_dir, err)

    def autoload(self, directory: Path) -> list[str]:
        """Upload every ``*.zip`` in ``directory`` (sorted); duplicates and an already stored
        name+version are skipped; any other refusal is raised (the master does not start)."""
        if not directory.is_dir():
            return []
        ids = []
        for path in sorted(directory.glob("*.zip")):
            log.info("autoloading asset %s...", path.name)
            try:
                created, new_id = self._store_bundle(path.read_bytes())
            except ApiError as err:
                if err.status != 409:
                    raise ApiError(err.status, f"autoload of {path}: {err.message}") from err
                log.info("autoloaded asset %s already exists", path.name)
                continue
            log.info("autoloaded asset %s%s", path.name, "" if created else " already exists")
            ids.append(new_id)
        log.info("done autoloading assets")
        return ids

    # -- list and delete ------------------------------------------------------------------

    def search(self, name: str | None, version: str | None, page: Page) -> list[Record]:
        return self.store.search(name, version, page)

    def delete(self, asset_id_: str) -> dict[str, str]:
        if len(asset_id_) != 40:
            raise ApiError(
                400, f"asset {asset_id_} is not formatted correctly, please provide the full asset_id"
            )
        if not self.store.delete(asset_id_) and not (self.assets_dir / asset_id_).exists():
            raise ApiError(404, f"Unable to find asset {asset_id_}")
        remove_unpacked(self.assets_dir, asset_id_)
        log.info("asset %s deleted", asset_id_)
        return {"asset_id": asset_id_, "_id": asset_id_}

    # -- jobs -----------------------------------------------------------------------------

    def resolve(self, entries: Sequence[str]) -> list[str]:
        """A job's ``assets`` as ids (404 with Teraslice's messages when one matches nothing).

        ``standard`` and ``elasticsearch`` (Teraslice's asset names of the operations built in
        here) are dropped when no asset of that name is stored, so Teraslice jobs naming them
        run on the built-ins; a stored asset of that name is resolved as any other."""
        kept = [
            entry
            for entry in entries
            if not (
                split_entry(entry)[0] in BUILTIN_ASSETS and not self.store.records_named(entry.split(":")[0])
            )
        ]
        if len(kept) < len(entries):
            log.info("assets %s are built in here (not stored): not loaded", sorted(set(entries) - set(kept)))
        try:
            return resolve_entries(
                kept,
                by_id=lambda found: bool(ASSET_ID.fullmatch(found)) and self.store.count({"id": found}) == 1,
                by_name=self.store.records_named,
            )
        except AssetRejected as err:
            raise ApiError(err.status, err.message) from err

    def load(self, ids: Sequence[str]) -> list[LoadedAsset]:
        """Unpack (when missing) and import the assets ``ids`` in this process."""
        try:
            return load_assets(ids, self.store.get_zip, self.assets_dir, self.limits)
        except RecordNotFound as err:
            raise ApiError(404, f'No assets found for "{err.record_id}"') from err
        except (AssetRejected, AssetLoadError) as err:
            raise ApiError(422, f"cannot load asset: {err}") from err

    def close(self) -> None:
        self.store.close()

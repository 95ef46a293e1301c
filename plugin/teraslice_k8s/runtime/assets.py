"""Making a job's assets available in a process: fetch, unpack, import (§6.4 "Loading").

The master (to validate a job's options), the execution controller and every worker call
:func:`load_assets` with the execution's resolved asset ids. For each id whose directory
``<assets_directory>/<id>/`` is missing, the zip is read from the store and unpacked:
into a fresh temporary directory next to it, then renamed into place in one step, so a
process never sees a half-written asset and several pods sharing one ``assets_volume`` PVC
can unpack the same asset at once (the first rename wins; the others drop their copy).
Every entry is checked again while unpacking (paths, symlinks, file count, bytes actually
inflated), so a bundle that slipped into the store some other way cannot escape the
directory either.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from teraslice_k8s.errors import TerasliceError
from teraslice_k8s.models.asset import (
    DEFAULT_LIMITS,
    MANIFEST,
    AssetRejected,
    BundleLimits,
    check_members,
    open_zip,
    safe_member_path,
)
from teraslice_k8s.models.asset_versions import ASSET_ID
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.runtime.operations.asset_ops import AssetLoadError, LoadedAsset, activate, import_asset
from teraslice_k8s.store.base import StoreError

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024


def assets_root(assets_directory: str | Sequence[str]) -> Path:
    """The directory assets are unpacked into (the first one when Teraslice's list form is used)."""
    if isinstance(assets_directory, str):
        return Path(assets_directory)
    if not assets_directory:
        raise ValueError("teraslice.assets_directory is an empty list")
    return Path(assets_directory[0])


def _too_big(limit: int) -> AssetRejected:
    return AssetRejected(422, f"asset bundle unpacks to more than the limit of {limit} bytes")


def _extract(data: bytes, target: Path, limits: BundleLimits) -> None:
    with open_zip(data) as archive:
        infos = check_members(archive, limits)
        written = 0
        for info in infos:
            relative = safe_member_path(info.filename)
            assert relative is not None  # check_members refused unsafe paths
            path = target / relative
            if info.is_dir():
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                dst = path.open("xb")
            except FileExistsError:
                raise AssetRejected(422, f'asset bundle entry "{info.filename}" appears twice') from None
            with archive.open(info) as src, dst:
                while chunk := src.read(_CHUNK):
                    written += len(chunk)
                    if written > limits.max_unpacked_bytes:
                        raise _too_big(limits.max_unpacked_bytes)
                    dst.write(chunk)
    if not (target / MANIFEST).is_file():
        raise AssetRejected(422, "asset.json was not found in root directory of asset bundle")


def unpack(data: bytes, root: Path, asset_id: str, limits: BundleLimits = DEFAULT_LIMITS) -> Path:
    """``root/<asset_id>/`` holding the bundle's files, unpacked atomically if missing."""
    final = root / asset_id
    if (final / MANIFEST).is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{asset_id}.", dir=root))
    try:
        try:
            _extract(data, staging, limits)
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:  # sizes or CRCs that lie
            raise AssetRejected(422, f"asset bundle is damaged: {err}") from None
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / MANIFEST).is_file():
                raise
            log.info("asset %s was unpacked by another process meanwhile", asset_id)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def remove_unpacked(root: Path, asset_id: str) -> None:
    """Delete ``root/<asset_id>`` (after the asset was deleted), atomically for readers: it
    is renamed aside first."""
    final = root / asset_id
    if not final.exists():
        return
    doomed = root / f".deleted.{asset_id}.{os.getpid()}.{time.monotonic_ns()}"
    try:
        os.rename(final, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def load_assets(
    asset_ids: Sequence[str],
    fetch_zip: Callable[[str], bytes],
    root: Path,
    limits: BundleLimits = DEFAULT_LIMITS,
) -> list[LoadedAsset]:
    """Unpack (when missing) and import each asset, in order; ``fetch_zip(id)`` reads a zip
    from the store. Raises ``RecordNotFound`` for an id the store lacks, :class:`AssetRejected`
    for a bundle that breaks the rules, ``AssetLoadError`` for code that does not import."""
    loaded = []
    for asset_id in asset_ids:
        started = time.monotonic()
        directory = root / asset_id
        if not (directory / MANIFEST).is_file():
            directory = unpack(fetch_zip(asset_id), root, asset_id, limits)
            log.info("asset %s unpacked into %s in %.2f s", asset_id, directory, time.monotonic() - started)
        asset = import_asset(asset_id, directory)
        log.info(
            "asset %s (%s@%s) loaded: operations %s",
            asset_id,
            asset.name,
            asset.version,
            ", ".join(sorted(asset.operations)) or "none",
        )
        loaded.append(asset)
    return loaded


class AssetUnavailable(TerasliceError):
    """An execution's asset could not be fetched, unpacked or imported (the process exits 1)."""


def load_execution_assets(config: SysConfig, execution: Mapping[str, Any]) -> list[LoadedAsset]:
    """Process start-up of a controller or worker: load the execution's resolved assets (the
    40-hex ids the master put in ``assets``) from the store and make their operations this
    process's (:func:`~teraslice_k8s.runtime.operations.asset_ops.activate`). Entries that are
    not ids (records written before assets were resolved) are ignored."""
    ids = [a for a in execution.get("assets") or [] if isinstance(a, str) and ASSET_ID.fullmatch(a)]
    if not ids:
        return []
    from teraslice_k8s.store.factory import open_asset_store

    try:
        store = open_asset_store(config)
    except (StoreError, ValueError) as err:
        raise AssetUnavailable(f"cannot open the asset store: {err}") from err
    try:
        loaded = load_assets(ids, store.get_zip, assets_root(config.teraslice.assets_directory))
    except (StoreError, AssetRejected, AssetLoadError, OSError) as err:
        raise AssetUnavailable(f"cannot load the execution's assets: {err}") from err
    finally:
        store.close()
    activate(loaded)
    return loaded

"""Asset bundles: the id, the ``asset.json`` manifest rules and the safety checks of a zip.

A bundle is a zip whose root holds ``asset.json`` and the operations (docs/assets.md). This
module only reads bytes in memory and never writes anything, so a refused bundle leaves no
trace: the checks run before any store write or unpack.

- :func:`asset_id`: SHA-1 hex of the *base64 text* of the zip (Teraslice's id, §6.4).
- :func:`inspect_bundle`: zip magic, every entry checked (no absolute or ``..`` paths, no
  symlinks or special files, bounded file count and unpacked size: :class:`BundleLimits`),
  then ``asset.json`` parsed and validated into the stored record (:func:`asset_record`).

Every refusal is an :class:`AssetRejected` with Teraslice's message and the HTTP status the
API answers (Teraslice answers 500 for some client mistakes; we answer a 4xx, see
docs/compatibility.md).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import platform
import re
import stat
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nodesemver

from teraslice_k8s.errors import TerasliceError

ZIP_MAGIC = b"PK\x03\x04"
MANIFEST = "asset.json"
#: Node major version the master reports (``GET /`` ``node_version`` v22.12.0): JS bundles
#: built for Node <= 22 count as compatible, as on a Teraslice 3.18 image.
NODE_MAJOR = 22
TERASLICE_VERSION = "3.18.0"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_PYTHON_VERSION = re.compile(r"(\d+)\.(\d+)")
#: Fields that decide whether two uploads are the same asset (Teraslice's five + ours).
UNIQUE_FIELDS = ("name", "version", "node_version", "python_version", "platform", "arch")


class AssetRejected(TerasliceError):
    """A bundle or an asset request refused; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class BundleLimits:
    """Bounds a bundle must stay within (checked on the zip's directory *and* while unpacking,
    since an entry's declared size can lie)."""

    max_files: int = 10_000
    max_unpacked_bytes: int = 1024 * 1024 * 1024


DEFAULT_LIMITS = BundleLimits()


def asset_id(data: bytes) -> str:
    """Teraslice's asset id: SHA-1 hex of the base64 text of the zip bytes."""
    return hashlib.sha1(base64.b64encode(data)).hexdigest()


def is_zip(data: bytes) -> bool:
    return data[:4] == ZIP_MAGIC


def node_platform() -> str:
    """Node's ``process.platform`` on this machine (``linux``, ``darwin``...)."""
    return sys.platform if sys.platform != "win32" else "win32"


def node_arch() -> str:
    """Node's ``process.arch`` on this machine (``x64``, ``arm64``...)."""
    machine = platform.machine().lower()
    return {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "i386": "ia32", "i686": "ia32"}.get(
        machine, machine
    )


def python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


# -- zip entries ---------------------------------------------------------------------------


def safe_member_path(name: str) -> str | None:
    """The entry's relative path if it stays inside the target directory, else None
    (absolute, drive-letter, backslash or ``..`` paths: "zip slip")."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts) or None


def check_members(archive: zipfile.ZipFile, limits: BundleLimits) -> list[zipfile.ZipInfo]:
    """Every entry checked against the rules above; returns the entries in order."""
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise AssetRejected(
            422, f"asset bundle has {len(infos)} entries, more than the limit of {limits.max_files}"
        )
    total = 0
    for info in infos:
        if safe_member_path(info.filename) is None:
            raise AssetRejected(422, f'asset bundle entry "{info.filename}" has an unsafe path')
        kind_bits = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded
        if kind_bits not in (0, stat.S_IFREG, stat.S_IFDIR):
            kind = "a symbolic link" if kind_bits == stat.S_IFLNK else "not a regular file or directory"
            raise AssetRejected(422, f'asset bundle entry "{info.filename}" is {kind}')
        total += info.file_size
        if total > limits.max_unpacked_bytes:
            raise AssetRejected(
                422, f"asset bundle unpacks to more than the limit of {limits.max_unpacked_bytes} bytes"
            )
    return infos


def open_zip(data: bytes) -> zipfile.ZipFile:
    if not is_zip(data):
        raise AssetRejected(400, "Failed to save asset. File type not recognized as zip.")
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as err:
        raise AssetRejected(400, f"Failed to save asset. The zip file is damaged: {err}") from None


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """An entry's bytes, refusing to inflate more than ``limit`` (declared sizes can lie)."""
    with archive.open(info) as src:
        data = src.read(limit + 1)
    if len(data) > limit:
        raise AssetRejected(422, f"asset bundle unpacks to more than the limit of {limit} bytes")
    return data


# -- the manifest --------------------------------------------------------------------------


def _major(value: Any) -> int | None:
    """Node-style major of ``22``, ``"22"``, ``"v22.1.0"``; None if it has none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = re.match(r"v?(\d+)", str(value).strip())
    return int(match.group(1)) if match else None


def asset_record(manifest: Any, asset_id_: str) -> dict[str, Any]:
    """The stored record of a bundle (§5.6): every ``asset.json`` key, ``id``, ``version``
    semver-cleaned, ``node_version`` reduced to its major, falsy ``node_version``,
    ``python_version``, ``platform`` and ``arch`` dropped (wildcards). Raises
    :class:`AssetRejected` (422) for a broken rule."""
    if not isinstance(manifest, Mapping):
        raise AssetRejected(422, "Failure parsing asset.json, please ensure that's it formatted correctly")
    record: dict[str, Any] = {"id": asset_id_, **manifest}
    record["id"] = asset_id_
    name = record.get("name")
    if not name:
        raise AssetRejected(422, "Missing name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise AssetRejected(
            422,
            f"Invalid name {json.dumps(name)}: must be 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )
    raw_version = record.get("version")
    cleaned = nodesemver.clean(raw_version, loose=False) if isinstance(raw_version, str) else None
    if cleaned is None:
        raise AssetRejected(422, f"Invalid version {json.dumps(raw_version)}")
    record["version"] = cleaned
    if record.get("node_version"):
        major = _major(record["node_version"])
        if major is None:
            raise AssetRejected(422, f"Invalid node_version {json.dumps(record['node_version'])}")
        record["node_version"] = major
    for key in ("node_version", "python_version", "platform", "arch"):
        if not record.get(key):
            record.pop(key, None)
    py = record.get("python_version")
    if py is not None and not (isinstance(py, str) and _PYTHON_VERSION.fullmatch(py)):
        raise AssetRejected(422, f'Invalid python_version {json.dumps(py)}: must be "<major>.<minor>"')
    for key in ("platform", "arch", "description"):
        if key in record and not isinstance(record[key], str):
            raise AssetRejected(422, f"Invalid {key} {json.dumps(record[key])}: must be a string")
    minimum = record.get("minimum_teraslice_version")
    if minimum:
        if not (isinstance(minimum, str) and nodesemver.valid(minimum, loose=False)):
            raise AssetRejected(422, f"Invalid minimum_teraslice_version {json.dumps(minimum)}")
        if nodesemver.gt(minimum, TERASLICE_VERSION, loose=False):
            raise AssetRejected(422, f"Asset requires teraslice version {minimum} or greater.")
    return record


def read_manifest(archive: zipfile.ZipFile, limits: BundleLimits) -> Any:
    """The parsed root ``asset.json`` (422 when missing or not JSON)."""
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise AssetRejected(422, "asset.json was not found in root directory of asset bundle") from None
    raw = read_member(archive, info, limits.max_unpacked_bytes)
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AssetRejected(
            422, "Failure parsing asset.json, please ensure that's it formatted correctly"
        ) from None


def inspect_bundle(data: bytes, limits: BundleLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """Check a whole bundle in memory and return its record (without ``blob``/``_created``)."""
    with open_zip(data) as archive:
        check_members(archive, limits)
        return asset_record(read_manifest(archive, limits), asset_id(data))


def uniqueness_query(record: Mapping[str, Any]) -> dict[str, Any]:
    """The fields two uploads must not share (those present in ``record``)."""
    return {key: record[key] for key in UNIQUE_FIELDS if key in record}


def describe_query(fields: Mapping[str, Any]) -> str:
    """Teraslice's rendering of a uniqueness query: ``name:"x" AND version:"1.0.0"``."""
    return " AND ".join(f'{key}:"{value}"' for key, value in fields.items())


def bundle_filename(name: str, version: str, python: str | None = None) -> str:
    """``<name>-v<version>-py<major.minor>-bundle.zip`` (teraslice-cli's ``-node-<major>-``)."""
    return f"{name}-v{version}-py{python or python_version()}-bundle.zip"

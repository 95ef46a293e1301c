"""``teraslice-k8s assets build|deploy|list|delete``: make asset bundles and manage them on a master.

::

    assets build DIR [--output OUT]            write OUT/<name>-v<version>-py<X.Y>-bundle.zip
    assets deploy ZIP|DIR [--replace]          POST /v1/assets?blocking=true (a DIR is built first)
    assets list [NAME [VERSION]]               GET  /v1/assets[/NAME[/VERSION]]
    assets delete ID                           DELETE /v1/assets/ID

``DIR`` holds ``asset.json`` and the operations (docs/assets.md), or an ``asset/``
sub-directory that does (teraslice-cli's layout). The zip is reproducible: sorted entries,
fixed timestamps, no ``__pycache__``/``*.pyc``/hidden files, so the same sources give the same
asset id. ``python_version`` is filled with this interpreter's ``major.minor`` when absent.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

from teraslice_k8s.cli.client import Api, InputError, _common, _handler, _output, _table

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _source_root(directory: Path) -> Path:
    if (directory / "asset.json").is_file():
        return directory
    if (directory / "asset" / "asset.json").is_file():
        return directory / "asset"
    raise InputError(f"{directory}: no asset.json (nor asset/asset.json) found")


def _included(relative: Path) -> bool:
    return not any(
        part.startswith(".") or part in ("__pycache__", "build", "node_modules") for part in relative.parts
    ) and relative.suffix not in (".pyc", ".pyo")


def build_bundle(directory: str | Path) -> tuple[str, bytes]:
    """(file name, zip bytes) of the asset in ``directory`` (validated like an upload)."""
    from teraslice_k8s.models.asset import AssetRejected, bundle_filename, inspect_bundle, python_version

    root = _source_root(Path(directory))
    try:
        manifest = json.loads((root / "asset.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{root / 'asset.json'}: cannot read it: {err}") from err
    if not isinstance(manifest, dict):
        raise InputError(f"{root / 'asset.json'}: must hold a JSON object")
    manifest.setdefault("python_version", python_version())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_entry("asset.json"), json.dumps(manifest, indent=4) + "\n")
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_symlink():
                raise InputError(f"{path}: symbolic links cannot go into an asset bundle")
            if not path.is_file() or relative == Path("asset.json") or not _included(relative):
                continue
            archive.writestr(_entry(relative.as_posix()), path.read_bytes())
    data = buffer.getvalue()
    try:
        record = inspect_bundle(data)
    except AssetRejected as err:
        raise InputError(f"{root}: {err.message}") from err
    return bundle_filename(record["name"], record["version"], manifest.get("python_version")), data


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o100644 << 16
    return info


def register(sub: Any) -> None:
    assets = sub.add_parser("assets", help="build asset bundles; deploy, list and delete them on a master")
    assets_sub = assets.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = assets_sub.add_parser("build", help="zip an asset directory into a bundle")
    p.add_argument("directory", help="directory holding asset.json and the operations")
    p.add_argument("--output", "-o", help="directory for the zip (default DIR/build)")
    p.set_defaults(handler=_build)

    p = assets_sub.add_parser("deploy", help="upload a bundle (a directory is built first)")
    p.add_argument("source", help="bundle zip or asset directory")
    p.add_argument("--replace", action="store_true", help="delete the stored asset of the same version first")
    p.set_defaults(handler=_handler(_deploy))

    p = assets_sub.add_parser("list", help="list assets")
    p.add_argument("name", nargs="?", help="only assets of this name")
    p.add_argument("version", nargs="?", help="only this version (or semver range) of NAME")
    p.add_argument("--size", type=int, default=100, help="at most this many assets (default 100)")
    p.set_defaults(handler=_handler(_list))

    p = assets_sub.add_parser("delete", help="delete an asset by its id")
    p.add_argument("asset_id", help="the asset's id (assets list shows it)")
    p.set_defaults(handler=_handler(_delete))

    for name in ("deploy", "list", "delete"):
        _common(assets_sub.choices[name])


def _build(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    try:
        name, data = build_bundle(directory)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = Path(args.output) if args.output else directory / "build"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    target.write_bytes(data)
    print(target)
    return 0


def _bundle_bytes(source: str) -> bytes:
    path = Path(source)
    if path.is_dir():
        return build_bundle(path)[1]
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"{source}: cannot read it: {err.strerror}") from err


def _deploy(api: Api, args: argparse.Namespace) -> None:
    from teraslice_k8s.models.asset import AssetRejected, inspect_bundle

    data = _bundle_bytes(args.source)
    if args.replace:
        try:
            record = inspect_bundle(data)
        except AssetRejected as err:
            raise InputError(f"{args.source}: {err.message}") from err
        for item in api.call("GET", f"/v1/assets/{record['name']}"):
            if item.get("version") == record["version"] and item.get("id") != record["id"]:
                api.call("DELETE", f"/v1/assets/{item['id']}")
    result = api.call(
        "POST",
        "/v1/assets",
        params={"blocking": "true"},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    _output(args, result, lambda r: print(r["asset_id"]))


def _list(api: Api, args: argparse.Namespace) -> None:
    if args.version and not args.name:
        raise InputError("a version needs a name")
    path = "/v1/assets" + "".join(f"/{part}" for part in (args.name, args.version) if part)
    result = api.call("GET", path, params={"size": args.size})
    columns = ("name", "version", "id", "_created", "description", "python_version")
    _output(args, result, lambda items: _table(None, columns, [[i.get(c) for c in columns] for i in items]))


def _delete(api: Api, args: argparse.Namespace) -> None:
    result = api.call("DELETE", f"/v1/assets/{args.asset_id}")
    _output(args, result, lambda r: print(f"deleted {r['asset_id']}"))

"""Operations that come from asset bundles: importing an unpacked asset, and the lookup scope.

An unpacked asset directory (``assets_directory/<id>/``) is imported as the Python package
``teraslice_asset_<id>`` in one of two layouts (docs/assets.md):

- **folders**: one directory per operation named as the ``_op``, holding ``processor.py``
  (the one :class:`Processor` subclass defined there) or ``fetcher.py`` (the one
  :class:`Reader` subclass; its slicers may live in ``slicer.py``), and optionally
  ``schema.py`` (the one :class:`OpOptions` subclass defined there, which becomes the
  operation's ``Options``);
- **registry**: a root ``__init__.py`` exporting ``ASSETS = {"<op>": {"Processor"|"Reader":
  cls, "Schema": model}}``.

Lookup (:func:`asset_operation`): only the assets *in scope* are searched, i.e. those of the
job being validated (:func:`asset_scope`, master) or run (:func:`activate`, execution
controller and worker processes). ``op@asset`` searches only the asset whose name or id is
``asset`` when that asset is in scope; a plain ``op`` searches the assets in the job's order.
Nothing else is ever imported, so an asset's code runs only for jobs that name it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from teraslice_k8s.errors import TerasliceError
from teraslice_k8s.runtime.operations.base import Operation, OpOptions, Processor, Reader

PACKAGE_PREFIX = "teraslice_asset_"


class AssetLoadError(TerasliceError):
    """An asset's code could not be imported or does not follow the layout rules."""


@dataclass(frozen=True, slots=True)
class LoadedAsset:
    id: str
    name: str
    version: str
    path: Path
    operations: Mapping[str, type[Operation]]


_lock = threading.Lock()
_loaded: dict[str, LoadedAsset] = {}
#: The assets of this process's execution (one slot, replaced whole by :func:`activate`).
_process_assets: list[tuple[LoadedAsset, ...]] = [()]
_scope: ContextVar[tuple[LoadedAsset, ...] | None] = ContextVar("teraslice_asset_scope", default=None)


def _defined_in(module: types.ModuleType, base: type) -> list[type]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, base) and value.__module__ == module.__name__
    ]


def _one(module: types.ModuleType, base: type, what: str) -> type:
    found = _defined_in(module, base)
    if len(found) != 1:
        names = ", ".join(sorted(c.__name__ for c in found)) or "none"
        raise AssetLoadError(f"{module.__file__}: must define exactly one {what} class (found: {names})")
    return found[0]


def _with_schema(op: type[Operation], schema: type[OpOptions] | None) -> type[Operation]:
    if schema is None:
        return op
    # A subclass, so the user's class object is left as it is.
    return type(op.__name__, (op,), {"Options": schema, "__module__": op.__module__})


def _import(name: str) -> types.ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as err:
        raise AssetLoadError(f"cannot import {name}: {type(err).__name__}: {err}") from err


def _folder_operations(package: str, root: Path) -> dict[str, type[Operation]]:
    operations: dict[str, type[Operation]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        kind = next((f for f in ("processor", "fetcher") if (folder / f"{f}.py").is_file()), None)
        if kind is None:
            continue
        module = _import(f"{package}.{folder.name}.{kind}")
        op: type[Operation] = (
            _one(module, Processor, "Processor") if kind == "processor" else _one(module, Reader, "Reader")
        )
        schema = None
        if (folder / "schema.py").is_file():
            schema = _one(_import(f"{package}.{folder.name}.schema"), OpOptions, "OpOptions")
        operations[folder.name] = _with_schema(op, schema)
    return operations


def _registry_operations(module: types.ModuleType) -> dict[str, type[Operation]]:
    table = getattr(module, "ASSETS", None)
    if not isinstance(table, Mapping):
        raise AssetLoadError(f"{module.__file__}: must export ASSETS = {{'<op>': {{'Processor': cls, ...}}}}")
    operations: dict[str, type[Operation]] = {}
    for op_name, parts in table.items():
        op = parts.get("Processor") or parts.get("Reader") if isinstance(parts, Mapping) else None
        if not (isinstance(op, type) and issubclass(op, (Processor, Reader))):
            raise AssetLoadError(f'ASSETS["{op_name}"] needs a "Processor" or "Reader" operation class')
        schema = parts.get("Schema")
        if schema is not None and not (isinstance(schema, type) and issubclass(schema, OpOptions)):
            raise AssetLoadError(f'ASSETS["{op_name}"]["Schema"] must be an OpOptions subclass')
        operations[str(op_name)] = _with_schema(op, schema)
    return operations


def import_asset(asset_id: str, directory: Path) -> LoadedAsset:
    """Import the unpacked asset in ``directory`` (once per process and id)."""
    with _lock:
        if asset_id in _loaded:
            return _loaded[asset_id]
        manifest = json.loads((directory / "asset.json").read_text(encoding="utf-8"))
        package = PACKAGE_PREFIX + asset_id
        init = directory / "__init__.py"
        if init.is_file():
            spec = importlib.util.spec_from_file_location(
                package, init, submodule_search_locations=[str(directory)]
            )
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[package] = module
            try:
                spec.loader.exec_module(module)
            except Exception as err:
                del sys.modules[package]
                raise AssetLoadError(f"cannot import asset {asset_id}: {type(err).__name__}: {err}") from err
            operations = _registry_operations(module)
        else:
            module = types.ModuleType(package)
            module.__path__ = [str(directory)]
            sys.modules[package] = module
            operations = _folder_operations(package, directory)
        loaded = LoadedAsset(asset_id, str(manifest["name"]), str(manifest["version"]), directory, operations)
        _loaded[asset_id] = loaded
        return loaded


def activate(assets: Sequence[LoadedAsset]) -> None:
    """Make ``assets`` the operations of this process (execution controller, worker)."""
    _process_assets[0] = tuple(assets)


@contextmanager
def asset_scope(assets: Sequence[LoadedAsset]) -> Iterator[None]:
    """Look operations up in ``assets`` (one job's) within the block, in this context only."""
    token = _scope.set(tuple(assets))
    try:
        yield
    finally:
        _scope.reset(token)


def assets_in_scope() -> tuple[LoadedAsset, ...]:
    scoped = _scope.get()
    return _process_assets[0] if scoped is None else scoped


def asset_operation(name: str) -> type[Operation] | None:
    """The asset operation ``name`` (``op`` or ``op@asset``) means, or None to fall back to the
    installed operations. ``op@asset`` naming an asset in scope that lacks ``op`` is a
    :class:`LookupError` (the caller reports it as an unknown operation)."""
    op, _, ref = name.partition("@")
    assets = assets_in_scope()
    if ref:
        ref_name = ref.partition(":")[0]
        named = [a for a in assets if ref in (a.id, a.name) or a.name == ref_name]
        if named:
            for asset in named:
                if op in asset.operations:
                    return asset.operations[op]
            raise LookupError(f'asset "{ref}" has no operation "{op}"')
        return None
    for asset in assets:
        if op in asset.operations:
            return asset.operations[op]
    return None


def loaded_operations() -> dict[str, Any]:
    """``{asset id: [operation names]}`` of the assets in scope (for logs and tests)."""
    return {a.id: sorted(a.operations) for a in assets_in_scope()}

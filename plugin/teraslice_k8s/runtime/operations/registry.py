"""Finds operation classes through the ``teraslice_k8s.operations`` entry-point group.

Built-ins register there too (see ``pyproject.toml``), so a user's package adds an operation
exactly the way the built-ins do (``docs/operations.md``). The name of the entry point is the
``_op`` value; ``name@asset`` suffixes (Teraslice asset pinning) are ignored for lookup.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points

from teraslice_k8s.errors import TerasliceError
from teraslice_k8s.runtime.operations.asset_ops import asset_operation
from teraslice_k8s.runtime.operations.base import Operation

GROUP = "teraslice_k8s.operations"


class OperationNotFound(TerasliceError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'unknown operation "{name}"')


class OperationLoadError(TerasliceError):
    """The entry point exists but importing it failed or it is not an Operation class."""


def op_name(value: str) -> str:
    """``noop@standard:2.1.2`` -> ``noop``."""
    return value.split("@", 1)[0]


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_operations() -> list[str]:
    return sorted(_entry_points())


def get_operation(name: str) -> type[Operation]:
    """The operation ``name`` means: the job's assets first (``asset_ops``: only the assets
    in scope, and ``op@asset`` only that asset), then the installed entry points (where an
    ``@asset`` suffix is ignored, so Teraslice jobs naming ``noop@standard`` still run)."""
    try:
        found = asset_operation(name)
    except LookupError as exc:
        raise OperationNotFound(name) from exc
    return found if found is not None else installed_operation(name)


@cache
def installed_operation(name: str) -> type[Operation]:
    """The class registered as ``name`` in the entry points (asset suffix ignored)."""
    ep = _entry_points().get(op_name(name))
    if ep is None:
        raise OperationNotFound(op_name(name))
    try:
        cls = ep.load()
    except Exception as exc:  # a broken user package must not crash validation
        raise OperationLoadError(f'operation "{ep.name}" ({ep.value}) failed to load: {exc}') from exc
    if not (isinstance(cls, type) and issubclass(cls, Operation)):
        raise OperationLoadError(f'operation "{ep.name}" ({ep.value}) is not an Operation subclass')
    return cls


# Kept so callers that reset the lookup (tests patching the entry points) need not know the split.
get_operation.cache_clear = installed_operation.cache_clear  # type: ignore[attr-defined]

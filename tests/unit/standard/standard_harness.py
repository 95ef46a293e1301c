"""Test harness for the standard asset's operations: loads the repository's
``assets/standard`` bundle through the real asset loader and runs its operations as a worker
does (options parsed and validated as at submit, initialize, one
``process`` per slice, the shutdown flush)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pydantic

from teraslice_k8s import testing
from teraslice_k8s.models.schema import problems_from_pydantic
from teraslice_k8s.runtime.data_entity import DataEntity
from teraslice_k8s.runtime.operations.asset_ops import LoadedAsset
from teraslice_k8s.runtime.operations.base import OpContext, Processor

BUNDLE = Path(__file__).parents[3] / "assets" / "standard"


def standard() -> LoadedAsset:
    """The source tree, imported by ``teraslice_k8s.testing`` (the same id as ``ops run``)."""
    asset = testing.standard_asset()
    assert asset is not None and asset.path == BUNDLE
    return asset


def op_class(name: str) -> type[Processor]:
    cls = standard().operations[name]
    assert issubclass(cls, Processor)
    return cls


def config_error(config: Mapping[str, Any]) -> str:
    """The problem message(s) the options of ``config`` give at submit ("" when valid)."""
    cls = op_class(str(config["_op"]))
    try:
        cls.Options.model_validate(dict(config))
    except pydantic.ValidationError as exc:
        return "; ".join(p.message for p in problems_from_pydantic(exc, "operations[1]"))
    return ""


async def make_op(
    config: Mapping[str, Any], execution: Mapping[str, Any] | None = None, **ctx: Any
) -> Processor:
    cls = op_class(str(config["_op"]))
    op = cls(OpContext(execution or {}, **ctx), cls.Options.model_validate(dict(config)))
    await op.initialize()
    return op


async def run_slices(op: Processor, slices: Sequence[list[Any]], flush: bool = False) -> list[list[Any]]:
    out = [await op.process(list(batch), {}) for batch in slices]
    if flush:
        hook = getattr(op, "on_flush_start", None)
        if hook is not None:
            await hook()
        out.append(await op.process([], {}))
        end = getattr(op, "on_flush_end", None)
        if end is not None:
            await end()
    return out


async def run(config: Mapping[str, Any], records: list[Any]) -> list[Any]:
    op = await make_op(config)
    return await op.process(records, {})


def entity(body: Mapping[str, Any] | None = None, **meta: Any) -> DataEntity:
    return DataEntity(body or {}, meta)


#: A record as ``ops run`` shows it: ``{"data", "metadata"}`` without ``_createTime``, a
#: DataWindow as ``{"window": [...], "metadata"}`` (``teraslice_k8s.testing.to_json``).
show = testing.to_json


def bodies(records: list[Any]) -> list[Any]:
    return [json.loads(json.dumps(r)) for r in records]

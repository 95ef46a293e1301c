"""Operations' own Prometheus metrics on a real worker's ``/metrics`` (``OpContext.metrics``):
the standard asset's count_by_field, run by an in-process worker of a real execution
controller, scraped over HTTP while the worker holds its first slice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from teraslice_k8s.runtime.operations import registry
from teraslice_k8s.runtime.operations.asset_ops import LoadedAsset, asset_scope
from teraslice_k8s.runtime.operations.base import Batch, OpOptions, Processor, SliceRequest
from teraslice_k8s.testing import standard_asset

from .harness import _EP, WAIT, Cluster, Gate, free_port, wait_until

#: The reference's count_by_field example (§2.7): node_id 100, "100", 101, 101, "101", "101",
#: missing.
NODE_IDS: list[Any] = [100, "100", 101, 101, "101", "101", None]


class NodeIdsOptions(OpOptions):
    """``spec_node_ids`` has no options."""


class SpecNodeIds(Processor):
    """Gives the slice's records the example's ``node_id`` values, in order (None: no field)."""

    Options: ClassVar[type[OpOptions]] = NodeIdsOptions

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        out = []
        for rec, value in zip(batch, NODE_IDS, strict=True):
            rec.clear()
            if value is not None:
                rec["node_id"] = value
            out.append(rec)
        return out


@pytest.fixture
def standard(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoadedAsset]:
    """The standard asset in scope, ``gate`` and ``spec_node_ids`` installed, no pending counts."""
    real = registry._entry_points()
    extra = {"gate": _EP("gate", Gate), "spec_node_ids": _EP("spec_node_ids", SpecNodeIds)}
    monkeypatch.setattr(registry, "_entry_points", lambda: {**real, **extra})
    registry.get_operation.cache_clear()
    Gate.entered = asyncio.Event()
    Gate.gate = asyncio.Event()
    asset = standard_asset()
    assert asset is not None
    counts = asset.operations["count_by_field"].counts  # type: ignore[attr-defined]
    counts.clear()
    with asset_scope([asset]):
        yield asset
    counts.clear()
    registry.get_operation.cache_clear()


async def test_count_by_field_series_on_the_worker_metrics_endpoint(
    tmp_path: Path, standard: LoadedAsset
) -> None:
    ops = [
        {"_op": "data_generator", "size": 7, "slice_size": 7},
        {"_op": "spec_node_ids"},
        {"_op": "count_by_field", "field": "node_id", "collect_metrics": True},
        {"_op": "gate"},  # holds the slice after count_by_field: the scrape sees exactly one
    ]
    c = Cluster(tmp_path, {"name": "counting", "assets": ["standard"], "operations": ops})
    worker_port = free_port()
    c.controller.settings = replace(c.settings, prom_metrics_enabled=True, prom_metrics_port=free_port())
    await c.start(workers=0)
    worker = c.add_worker()
    worker.settings = replace(
        c.settings, prom_metrics_enabled=True, prom_metrics_port=worker_port, prom_metrics_add_default=False
    )
    await wait_until(Gate.entered.is_set, WAIT)
    async with httpx.AsyncClient() as client:
        first = (await client.get(f"http://127.0.0.1:{worker_port}/metrics")).text
        second = (await client.get(f"http://127.0.0.1:{worker_port}/metrics")).text
    Gate.gate.set()
    ex = await c.finish()
    c.close()
    assert ex["_status"] == "completed"

    name = "teraslice_job_count_by_field_count_total"
    labels = (  # the exposition orders labels by name
        f'ex_id="{c.ex_id}",field="node_id",job_id="{c.ex["job_id"]}",name="counting",op_name="count_by_field"'
    )
    expected = [
        f"# HELP {name} count_by_field value field count",
        f"# TYPE {name} counter",
        f'{name}{{{labels},value="100"}} 1.0',
        f'{name}{{{labels},value="\\"100\\""}} 1.0',
        f'{name}{{{labels},value="101"}} 2.0',
        f'{name}{{{labels},value="\\"101\\""}} 2.0',
        f'{name}{{{labels},value="undefined"}} 1.0',
    ]
    assert [ln for ln in first.splitlines() if "count_by_field" in ln] == expected
    # Pending counts went into the counter at the first scrape; the second adds nothing.
    assert [ln for ln in second.splitlines() if "count_by_field" in ln] == expected


def test_add_counter_contract() -> None:
    from prometheus_client import generate_latest

    from teraslice_k8s.runtime.metrics import JobMetrics

    metrics = JobMetrics("worker", {"ex_id": "e", "job_id": "j", "name": "n"}, add_default=False)
    assert metrics.default_labels == {"ex_id": "e", "job_id": "j", "name": "n"}
    calls: list[int] = []
    counter = metrics.add_counter("things", "things seen", ["ex_id", "kind"], lambda c: calls.append(1))
    # Adding a name again keeps the first (terafoundation's addCounter); _total is not doubled.
    assert metrics.add_counter("things_total", "other help", ["x"]) is counter
    assert metrics.has_metric("things") and not metrics.has_metric("other")
    counter.inc({"ex_id": "e", "kind": "a"})
    counter.inc({"kind": "a", "ex_id": "e"}, 2.5)
    with pytest.raises(ValueError, match="unknown label"):
        counter.inc({"nope": "x"})
    with pytest.raises(ValueError, match="only goes up"):
        counter.inc({"kind": "a"}, -1)
    lines = [ln for ln in generate_latest(metrics.registry).decode().splitlines() if "things" in ln]
    assert lines == [
        "# HELP teraslice_job_things_total things seen",
        "# TYPE teraslice_job_things_total counter",
        'teraslice_job_things_total{ex_id="e",kind="a"} 3.5',
    ]
    assert calls == [1]  # the collect callback ran once, at that scrape

"""Recovery (``recovered_execution``): re-running a source execution's unfinished slices."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from teraslice_k8s.runtime.execution_controller import ExecutionController

from .harness import Cluster, test_ops

__all__ = ["test_ops"]

GEN = {"_op": "data_generator", "size": 1000, "slice_size": 100}


def recovery_of(source: Cluster, **extra: Any) -> None:
    """Turn ``source``'s store into a recovery execution of ``source.ex`` (same store)."""
    record = {
        **{k: v for k, v in source.ex.items() if not k.startswith("_")},
        "ex_id": str(uuid.uuid4()),
        "_status": "pending",
        "recovered_execution": source.ex_id,
        **extra,
    }
    ex = source.store.create_execution(record)
    source.store.set_status(ex["ex_id"], "scheduling")
    source.ex = source.store.set_status(ex["ex_id"], "initializing")
    source.controller = ExecutionController(
        source.ex, source.store, source.settings, host="127.0.0.1", port=source.port
    )
    source.workers, source.worker_tasks = [], []


async def test_cleanup_errors_reruns_only_failed_slices_then_completes(
    tmp_path: Path, test_ops: None
) -> None:
    ops = [GEN, {"_op": "fail_on", "fail_at": [300], "attempts": 1}]
    c = Cluster(tmp_path, {"operations": ops, "max_retries": 0})
    await c.start(workers=1)
    assert (await c.finish())["_status"] == "failed"
    source_id = c.ex_id
    recovery_of(c, recovered_slice_type="errors")
    await c.start(workers=1)
    ex = await c.finish()
    assert ex["_status"] == "completed"
    assert ex["_slicer_stats"]["processed"] == 1
    source = c.store.list_slices(_flt(source_id))
    assert Counter(s["state"] for s in source) == {"completed": 10}  # the source's record was updated
    assert c.slices() == []  # no new slices were cut
    c.close()


async def test_recovery_without_cleanup_continues_after_the_last_completed_slice(
    tmp_path: Path, test_ops: None
) -> None:
    ops = [GEN, {"_op": "fail_on", "fail_at": [200], "attempts": 1}]
    c = Cluster(tmp_path, {"operations": ops, "max_retries": 0})
    await c.start(workers=1)
    assert (await c.finish())["_status"] == "failed"
    source_id = c.ex_id
    # Pretend the source stopped early: its last three slices never ran.
    for record in c.store.list_slices(_flt(source_id)):
        if record["slicer_order"] >= 7:
            c.store.update_slice(record["slice_id"], {"state": "pending"})
    for record in c.store.list_slices(_flt(source_id)):
        if record["slicer_order"] == 9:
            c.store.update_slice(record["slice_id"], {"state": "completed"})
    recovery_of(c)
    await c.start(workers=2)
    ex = await c.finish()
    assert ex["_status"] == "completed"
    assert Counter(s["state"] for s in c.store.list_slices(_flt(source_id))) == {"completed": 10}
    # Slicing resumed after the last completed request (processed 900 + 100): nothing new to cut.
    assert c.slices() == []
    assert ex["_slicer_stats"]["processed"] == 3  # slices 2, 7 and 8 of the source
    c.close()


def _flt(ex_id: str) -> Any:
    from teraslice_k8s.store.base import SliceFilter

    return SliceFilter(ex_id=ex_id)


async def test_recovery_resumes_after_the_newest_source_slice_without_cutting_it_again(
    tmp_path: Path, test_ops: None
) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "noop"}]})
    await c.start(workers=1)
    assert (await c.finish())["_status"] == "completed"
    source_id = c.ex_id
    for record in c.store.list_slices(_flt(source_id)):
        if record["slicer_order"] >= 6:  # the last four never finished
            c.store.update_slice(
                record["slice_id"], {"state": "start" if record["slicer_order"] == 6 else "pending"}
            )
    recovery_of(c)
    await c.start(workers=2)
    ex = await c.finish()
    assert ex["_status"] == "completed"
    assert ex["_slicer_stats"]["records"] == 400
    assert c.slices() == []
    c.close()

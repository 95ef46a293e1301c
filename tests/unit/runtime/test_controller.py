"""The execution controller with in-process workers over real websockets (SQLite store)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from .harness import WAIT, Cluster, Gate, test_ops, wait_until

__all__ = ["test_ops"]

GEN = {"_op": "data_generator", "size": 1000, "slice_size": 100}


async def test_once_job_completes_with_exact_records_and_analytics(tmp_path: Path) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "noop"}]})
    await c.start(workers=2)
    ex = await c.finish()
    assert ex["_status"] == "completed"
    slices = c.slices()
    assert [s["state"] for s in slices] == ["completed"] * 10
    assert sum(s["record_count"] for s in slices) == 1000
    assert [s["slicer_order"] for s in slices] == list(range(10))
    assert ex["_slicer_stats"]["processed"] == 10
    assert ex["_slicer_stats"]["records"] == 1000
    assert ex["_slicer_stats"]["failed"] == 0
    assert ex["_slicer_stats"]["workers_joined"] == 2
    assert "queuing_complete" in ex["_slicer_stats"]
    assert c.store.count_analytics(c.ex_id) == 20  # one per op per slice
    c.close()


async def test_failed_slice_fails_the_execution_with_teraslice_message(
    tmp_path: Path, test_ops: None
) -> None:
    ops = [GEN, {"_op": "fail_on", "fail_at": [300]}]
    c = Cluster(tmp_path, {"operations": ops, "max_retries": 2})
    await c.start(workers=1)
    ex = await c.finish()
    assert ex["_status"] == "failed"
    assert ex["_failureReason"] == f"execution: {c.ex_id} had 1 slice failure(s) during processing"
    assert ex["_has_errors"] is True
    states = Counter(s["state"] for s in c.slices())
    assert states == {"completed": 9, "error": 1}
    (bad,) = [s for s in c.slices() if s["state"] == "error"]
    assert bad["retry_count"] == 2
    assert "RuntimeError: failing slice at 300" in bad["error"]
    assert ex["_slicer_stats"]["failed"] == 1
    c.close()


async def test_retried_slice_that_succeeds_completes(tmp_path: Path, test_ops: None) -> None:
    ops = [GEN, {"_op": "fail_on", "fail_at": [0, 500], "attempts": 1}]
    c = Cluster(tmp_path, {"operations": ops, "max_retries": 1})
    await c.start(workers=2)
    ex = await c.finish()
    assert ex["_status"] == "completed"
    retried = {s["request"]: s.get("retry_count") for s in c.slices() if s.get("retry_count")}
    assert retried == {'{"count":100,"processed":0}': 1, '{"count":100,"processed":500}': 1}
    assert sum(s["record_count"] for s in c.slices()) == 1000
    c.close()


async def test_no_worker_within_slicer_timeout_fails(tmp_path: Path) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "noop"}]}, slicer_timeout=0.2)
    await c.start(workers=0)
    ex = await c.finish()
    assert ex["_status"] == "failed"
    assert ex["_failureReason"] == "No workers have connected to slicer in the allotted time: 0.2s"
    c.close()


async def test_all_workers_gone_for_worker_disconnect_timeout_fails(tmp_path: Path, test_ops: None) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "gate"}]}, worker_disconnect_timeout=0.2)
    await c.start(workers=1)
    await asyncio.wait_for(Gate.entered.wait(), WAIT)
    c.worker_tasks[0].cancel()
    ex = await c.finish()
    assert ex["_status"] == "failed"
    assert ex["_failureReason"] == f"All workers from workers from {c.ex_id} have disconnected"
    c.close()


async def test_slice_of_a_vanished_worker_is_redispatched_and_counted_once(
    tmp_path: Path, test_ops: None
) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "gate"}], "max_retries": 0})
    await c.start(workers=1)
    await asyncio.wait_for(Gate.entered.wait(), WAIT)
    c.worker_tasks[0].cancel()  # dies mid-slice
    Gate.gate.set()
    c.add_worker()
    ex = await c.finish()
    assert ex["_status"] == "completed"
    slices = c.slices()
    assert len(slices) == 10
    assert {s["state"] for s in slices} == {"completed"}
    assert sum(s["record_count"] for s in slices) == 1000
    assert ex["_slicer_stats"]["records"] == 1000
    assert ex["_slicer_stats"]["workers_disconnected"] == 1
    c.close()


async def test_shutdown_waits_for_in_flight_slices_then_terminates(tmp_path: Path, test_ops: None) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "gate"}]}, shutdown_timeout=30)
    await c.start(workers=1)
    await asyncio.wait_for(Gate.entered.wait(), WAIT)
    c.controller.request_shutdown()
    Gate.gate.set()
    ex = await c.finish()
    assert ex["_status"] == "terminated"
    queued = ex["_slicer_stats"]["queued"]
    assert ex["_failureReason"] == (
        f"execution {c.ex_id} received shutdown before the slicer could complete, "
        f'setting status to "terminated" (0 slices in flight and {queued} queued did not finish)'
    )
    states = Counter(s["state"] for s in c.slices())
    assert states["completed"] == 2  # the running slice and the one the worker had prefetched
    assert states["start"] == 0
    c.close()


async def test_shutdown_while_stopping_leaves_stopped_to_the_master(tmp_path: Path, test_ops: None) -> None:
    # The controller used to write "stopped" itself, while its processes still ran (issue 16):
    # now it records its stats only and the master writes "stopped" once nothing is left.
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "gate"}]})
    await c.start(workers=1)
    await asyncio.wait_for(Gate.entered.wait(), WAIT)
    c.store.set_status(c.ex_id, "stopping")
    c.controller.request_shutdown()
    Gate.gate.set()
    ex = await c.finish()
    assert ex["_status"] == "stopping"
    assert ex["_slicer_stats"]["processed"] >= 1
    assert "_failureReason" not in ex
    c.close()


async def test_http_endpoints(tmp_path: Path, test_ops: None) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "gate"}], "name": "http-test"})
    await c.start(workers=0)
    base = f"http://127.0.0.1:{c.port}"
    async with httpx.AsyncClient(base_url=base) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        assert (await client.post("/pause")).json() == {"status": "paused"}
        assert c.controller.scheduler.paused
        assert (await client.post("/resume")).json() == {"status": "running"}
        assert not c.controller.scheduler.paused
        assert (await client.post("/loglevel", params={"level": "debug"})).json() == {"level": "debug"}
        bad = await client.post("/loglevel", params={"level": "loud"})
        assert bad.status_code == 400
        stats = (await client.get("/analytics")).json()
        assert {k: stats[k] for k in ("ex_id", "job_id", "name", "slicers", "processed")} == {
            "ex_id": c.ex_id,
            "job_id": c.ex["job_id"],
            "name": "http-test",
            "slicers": 1,
            "processed": 0,
        }
        assert set(stats) >= {
            "workers_available", "workers_active", "workers_joined", "workers_reconnected",
            "workers_disconnected", "job_duration", "failed", "subslices", "queued",
            "slice_range_expansion", "subslice_by_key", "started",
        }  # fmt: skip
    c.add_worker()
    await asyncio.wait_for(Gate.entered.wait(), WAIT)
    Gate.gate.set()
    ex = await c.finish()
    assert ex["_status"] == "completed"
    c.close()


async def test_health_is_503_until_the_allocator_is_done_and_slicers_ready(tmp_path: Path) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "noop"}]})
    c.store.set_status(c.ex_id, "scheduling")  # the allocator has not written initializing yet
    task = asyncio.create_task(c.controller.run(handle_signals=False))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{c.port}") as client:

        async def health() -> httpx.Response:
            while True:
                try:
                    return await client.get("/health")
                except httpx.ConnectError:
                    await asyncio.sleep(0.01)

        response = await asyncio.wait_for(health(), WAIT)
        assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
        assert c.store.get_execution(c.ex_id)["_status"] == "scheduling"
        c.store.set_status(c.ex_id, "initializing")
        await wait_until(lambda: c.controller.ready)
        assert (await client.get("/health")).status_code == 200
    c.ec_task = task
    c.add_worker()
    assert (await c.finish())["_status"] == "completed"
    c.close()


async def test_already_terminal_execution_exits_zero_without_changes(tmp_path: Path) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "noop"}]})
    c.store.set_status(c.ex_id, "failed", {"_failureReason": "earlier"})
    assert await asyncio.wait_for(c.controller.run(handle_signals=False), WAIT) == 0
    assert c.store.get_execution(c.ex_id)["_failureReason"] == "earlier"
    c.close()


async def test_restarted_controller_fails_a_running_execution(tmp_path: Path) -> None:
    c = Cluster(tmp_path, {"operations": [GEN, {"_op": "noop"}]})
    c.store.set_status(c.ex_id, "running")
    assert await asyncio.wait_for(c.controller.run(handle_signals=False), WAIT) == 0
    ex = c.store.get_execution(c.ex_id)
    assert ex["_status"] == "failed"
    assert ex["_failureReason"] == (
        f'execution controller for {c.ex_id} restarted while the execution was "running"; '
        "its slicers are not relocatable"
    )
    c.close()


def _sample(text: str, name: str) -> float:
    (line,) = [ln for ln in text.splitlines() if ln.startswith(name + "{")]
    return float(line.rsplit(" ", 1)[1])


async def test_prometheus_metrics_on_controller_and_worker(tmp_path: Path) -> None:
    from .harness import free_port

    ec_port, worker_port = free_port(), free_port()
    job = {"lifecycle": "persistent", "operations": [{"_op": "data_generator", "size": 10}, {"_op": "noop"}]}
    c = Cluster(tmp_path, job, prom_metrics_enabled=True)
    c.controller.settings = replace(c.settings, prom_metrics_port=ec_port)
    await c.start(workers=0)
    worker = c.add_worker()
    worker.settings = replace(c.settings, prom_metrics_port=worker_port, prom_metrics_add_default=False)
    await wait_until(lambda: c.controller.scheduler.counters.processed >= 3)
    async with httpx.AsyncClient() as client:
        ec = (await client.get(f"http://127.0.0.1:{ec_port}/metrics")).text
        wk = (await client.get(f"http://127.0.0.1:{worker_port}/metrics")).text
    labels = f'ex_id="{c.ex_id}",job_id="{c.ex["job_id"]}",name="test"'
    assert f'teraslice_job_execution_controller_info{{{labels},version="' in ec
    assert _sample(ec, "teraslice_job_slices_processed_total") >= 3
    records = _sample(ec, "teraslice_job_records_processed_total")
    assert records == 10 * _sample(ec, "teraslice_job_slices_processed_total")
    assert "process_cpu_seconds_total" in ec  # prom_metrics_add_default
    assert f'teraslice_job_worker_info{{{labels},version="' in wk
    assert _sample(wk, "teraslice_job_slices_processed_total") >= 3
    assert "process_cpu_seconds_total" not in wk
    c.controller.request_shutdown()
    assert (await c.finish())["_status"] == "terminated"
    c.close()


async def test_persistent_job_goes_failing_then_back_to_running_after_probation(
    tmp_path: Path, test_ops: None
) -> None:
    ops = [{"_op": "data_generator", "size": 10}, {"_op": "fail_on", "fail_at": [0]}]
    c = Cluster(tmp_path, {"lifecycle": "persistent", "operations": ops, "probation_window": 100})
    statuses: list[str] = []
    real = c.store.set_status

    def record(ex_id: str, status: str, fields: Any = None) -> Any:
        statuses.append(status)
        return real(ex_id, status, fields)

    c.store.set_status = record  # type: ignore[method-assign]
    await c.start(workers=1)
    await wait_until(lambda: statuses[-2:] == ["failing", "running"])
    ex = c.store.get_execution(c.ex_id)
    assert ex["_has_errors"] is True
    assert ex["_failureReason"] == (
        f"execution {c.ex_id} has encountered a processing error, reason: slice failure watch dog"
    )
    c.controller.request_shutdown()
    assert (await c.finish())["_status"] == "terminated"
    assert statuses == ["running", "failing", "running", "terminated"]
    c.close()

"""Faults for real (issue 10 item 4): each test breaks something on the real control plane while
an execution starts or runs, then asserts the execution's status, its ``_failureReason`` and that
the API server lists nothing of it afterwards.

One namespace and Elasticsearch per module (``support.k8s_stack``); each test starts its own
master (in the test process, or as a child process the test SIGKILLs), so settings can differ
per fault and no master outlives its test. Unschedulable pods are test_real_unschedulable.py's.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.k8s_real import Cluster, wait_until
from support.k8s_stack import ApiServer, MasterProcess, Stack, master_in_process, objects_left, stack
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.store.base import SliceFilter
from teraslice_k8s.store.factory import open_store

pytestmark = pytest.mark.cluster

#: Bound (seconds) on each condition: pod start-up and the cluster's own pace, never a sleep.
WAIT = 120.0
TERMINAL = {"completed", "failed", "stopped", "terminated", "rejected"}
#: How long the API server stays down (issue 10: 20 s).
OUTAGE = 20.0


@pytest.fixture(scope="module")
def s(k8s_cluster: Cluster) -> Iterator[Stack]:
    with (
        k8s_cluster.namespace("ts-fault") as namespace,
        stack(k8s_cluster, namespace, shutdown_timeout=10_000) as st,
    ):
        yield st


def submit(url: str, job: dict[str, Any]) -> str:
    response = httpx.post(f"{url}/v1/jobs", json=job, timeout=60)
    assert response.status_code == 200, response.text
    ex_id: str = response.json()["ex_id"]
    return ex_id


def get_ex(url: str, ex_id: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v1/ex/{ex_id}", timeout=30)
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def wait_status(url: str, ex_id: str, *statuses: str, timeout: float = WAIT) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        record = get_ex(url, ex_id)
        if record["_status"] in TERMINAL and record["_status"] not in statuses:
            raise AssertionError(
                f"execution {ex_id} ended {record['_status']}: {record.get('_failureReason')}"
            )
        return record if record["_status"] in statuses else None

    result: dict[str, Any] = wait_until(reached, timeout, f"execution {ex_id} {'/'.join(statuses)}")
    return result


def nothing_left(s: Stack, ex_id: str) -> None:
    wait_until(lambda: objects_left(s.api, ex_id) == [], WAIT, f"no object of {ex_id} left")


def generator(
    name: str, *, records: int, slice_size: int, delay: float = 0, workers: int = 1
) -> dict[str, Any]:
    return {
        "name": name,
        "workers": workers,
        "operations": [
            {"_op": "data_generator", "size": records, "slice_size": slice_size, "delay": delay},
            {"_op": "noop"},
        ],
    }


def test_an_image_the_kubelet_cannot_run_fails_the_execution(s: Stack) -> None:
    with master_in_process(s) as master:
        job = {
            **generator("bad-image", records=10, slice_size=10),
            "kubernetes_image": "registry.invalid/none:0",
        }
        ex_id = submit(master.url, job)
        record = wait_status(master.url, ex_id, "failed")
        reason = record["_failureReason"]
        assert "ErrImagePull" in reason or "ImagePullBackOff" in reason, reason
        assert "registry.invalid/none:0" in reason or "ts-exc-bad-image-" in reason, reason
        nothing_left(s, ex_id)


def test_a_missing_volume_claim_fails_the_execution(s: Stack) -> None:
    with master_in_process(s, slicer_timeout=5_000) as master:
        job = {
            **generator("no-claim", records=10, slice_size=10),
            "volumes": [{"name": "no-such-claim", "path": "/data"}],
        }
        ex_id = submit(master.url, job)
        record = wait_status(master.url, ex_id, "failed")
        reason = record["_failureReason"]
        assert 'persistentvolumeclaim "no-such-claim" not found' in reason, reason
        nothing_left(s, ex_id)


def test_a_worker_pod_deleted_mid_run_loses_no_record(s: Stack) -> None:
    with master_in_process(s) as master:
        # 8 slices of 1.5 s on 2 workers: a worker is always inside a slice until the end.
        ex_id = submit(
            master.url, generator("worker-loss", records=800, slice_size=100, delay=1.5, workers=2)
        )
        wait_until(lambda: len(s.running_pods(ex_id, "worker")) == 2, WAIT, "2 running workers")
        store = master.service.store
        wait_until(
            lambda: store.count_slices(SliceFilter(ex_id=ex_id, states=("completed",))) >= 1,
            WAIT,
            "a completed slice",
        )
        victim = s.running_pods(ex_id, "worker")[0]["metadata"]["name"]
        # 1 s grace: SIGKILL inside its current 1.5 s slice, which is lost with the worker.
        s.cluster.kubectl("-n", s.namespace, "delete", "pod", victim, "--grace-period=1", "--wait=false")
        record = wait_status(master.url, ex_id, "completed")
        slices = store.list_slices(SliceFilter(ex_id=ex_id))
        assert len(slices) == 8 and {sl["state"] for sl in slices} == {"completed"}
        assert sum(sl["record_count"] for sl in slices) == 800
        stats = record["_slicer_stats"]
        assert (stats["processed"], stats["failed"], stats["records"]) == (8, 0, 800), stats
        assert stats["workers_disconnected"] >= 1, stats
        assert stats["workers_joined"] >= 3, stats  # the Deployment replaced the deleted pod
        nothing_left(s, ex_id)


def test_the_controller_pod_deleted_mid_run_ends_the_execution(s: Stack) -> None:
    with master_in_process(s) as master:
        ex_id = submit(master.url, generator("controller-loss", records=2000, slice_size=100, delay=1.0))
        wait_status(master.url, ex_id, "running")
        (controller,) = s.running_pods(ex_id, "execution_controller")
        s.cluster.kubectl("-n", s.namespace, "delete", "pod", controller["metadata"]["name"], "--wait=false")
        record = wait_until(
            lambda: (ex := get_ex(master.url, ex_id))["_status"] in TERMINAL and ex, WAIT, "a terminal status"
        )
        assert record["_status"] == "terminated", record
        assert record["_failureReason"], record
        nothing_left(s, ex_id)


def test_a_killed_master_adopts_the_live_execution_on_restart(s: Stack, tmp_path: Path) -> None:
    master = MasterProcess(s, tmp_path)
    master.start()
    try:
        ex_id = submit(
            master.url, generator("master-loss", records=1000, slice_size=100, delay=1.0, workers=2)
        )
        wait_status(master.url, ex_id, "running")
        master.kill()
        assert get_ex_direct(s, ex_id)["_status"] == "running"
        master.start()
        record = wait_status(master.url, ex_id, "completed")
        assert (record["_slicer_stats"]["processed"], record["_slicer_stats"]["records"]) == (10, 1000)
        nothing_left(s, ex_id)
    finally:
        master.terminate()


def test_a_master_killed_during_a_stop_finishes_the_cleanup_on_restart(s: Stack, tmp_path: Path) -> None:
    master = MasterProcess(s, tmp_path)
    master.start()
    try:
        job = {
            "name": "stop-loss",
            "lifecycle": "persistent",
            "workers": 2,
            "operations": [{"_op": "data_generator", "size": 10}, {"_op": "delay", "ms": 100}],
        }
        ex_id = submit(master.url, job)
        wait_status(master.url, ex_id, "running")
        wait_until(lambda: len(s.running_pods(ex_id, "worker")) == 2, WAIT, "2 running workers")
        response = master.post(f"/v1/ex/{ex_id}/_stop?blocking=false")
        assert response.status_code == 200, response.text
        master.kill()
        assert get_ex_direct(s, ex_id)["_status"] in {"stopping", "stopped"}
        master.start()
        record = wait_status(master.url, ex_id, "stopped")
        assert record["_status"] == "stopped"
        nothing_left(s, ex_id)
    finally:
        master.terminate()


# A TLS connection whose peer (the kube-apiserver) was SIGKILLed mid-request is sometimes only
# collected later with a ResourceWarning (seen once in five runs; source not yet found: urllib3's
# pool, or a request in flight while the master closed). Only that warning is let through here.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
def test_the_master_rides_out_20s_without_the_api_server(s: Stack) -> None:
    apiserver = ApiServer(s.cluster)
    if not apiserver.available:
        pytest.skip("only a k8s-real control plane can be stopped by the test")
    with master_in_process(s) as master:
        ex_id = submit(
            master.url, generator("api-outage", records=1000, slice_size=100, delay=1.0, workers=2)
        )
        wait_status(master.url, ex_id, "running")
        apiserver.stop()
        try:
            # For the whole outage the master's API keeps answering from the store, and the
            # pods keep working (their records reach Elasticsearch, not the API server).
            deadline = time.monotonic() + OUTAGE
            while time.monotonic() < deadline:
                assert get_ex(master.url, ex_id)["_status"] in {"running", "completed"}
                assert s.cluster.kubectl("get", "--raw", "/readyz", check=False, timeout=10) != "ok"
        finally:
            apiserver.start()
        record = wait_status(master.url, ex_id, "completed")
        assert (record["_slicer_stats"]["processed"], record["_slicer_stats"]["records"]) == (10, 1000)
        nothing_left(s, ex_id)
        # The master's own view (its caches, polling since the watches broke) agrees.
        wait_until(lambda: master.service.backend.execution_ids() == set(), WAIT, "the master seeing nothing")


def get_ex_direct(s: Stack, ex_id: str) -> dict[str, Any]:
    """The execution record as the store has it (while no master runs)."""
    with contextlib.closing(open_store(parse_config(s.config()))) as store:
        return store.get_execution(ex_id)

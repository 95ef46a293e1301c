"""Executions for real (issue 10 item 3): jobs submitted through the master's HTTP API run on
the real control plane, their execution controller and workers as real pods (local processes
on k8s-real), and the records are really processed.

One namespace, Elasticsearch (the chart's image) and master per module (``support.k8s_stack``):
the master runs in the test process with the admin kubeconfig (the chart's own master pod, with
its ServiceAccount, is ``tests/chart/test_chart_cluster.py``'s). Every test asserts through the
API server what exists (Job, Service, Deployment while running) and that nothing is left after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support.k8s_real import Cluster, wait_until
from support.k8s_stack import InProcessMaster, Stack, master_in_process, objects_left, stack
from teraslice_k8s.kubernetes.api import Kind
from teraslice_k8s.store.base import SliceFilter

pytestmark = pytest.mark.cluster

#: Bound (seconds) on each condition: pod start-up and the cluster's own pace, never a sleep.
WAIT = 120.0
TERMINAL = {"completed", "failed", "stopped", "terminated", "rejected"}


@pytest.fixture(scope="module")
def s(k8s_cluster: Cluster) -> Iterator[Stack]:
    with (
        k8s_cluster.namespace("ts-exec") as namespace,
        stack(k8s_cluster, namespace, shutdown_timeout=10_000) as st,
    ):
        yield st


@pytest.fixture(scope="module")
def master(s: Stack) -> Iterator[InProcessMaster]:
    with master_in_process(s) as m:
        yield m


def submit(master: InProcessMaster, job: dict[str, Any]) -> str:
    response = master.http.post("/v1/jobs", json=job)
    assert response.status_code == 200, response.text
    ex_id: str = response.json()["ex_id"]
    return ex_id


def execution(master: InProcessMaster, ex_id: str) -> dict[str, Any]:
    response = master.http.get(f"/v1/ex/{ex_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record


def wait_status(master: InProcessMaster, ex_id: str, *statuses: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        record = execution(master, ex_id)
        if record["_status"] in TERMINAL and record["_status"] not in statuses:
            raise AssertionError(
                f"execution {ex_id} ended {record['_status']}: {record.get('_failureReason')}"
            )
        return record if record["_status"] in statuses else None

    result: dict[str, Any] = wait_until(reached, WAIT, f"execution {ex_id} {'/'.join(statuses)}")
    return result


def kinds(names: list[str]) -> set[str]:
    return {name.split("/", 1)[0] for name in names}


def assert_ran_and_cleaned(s: Stack, master: InProcessMaster, ex_id: str, records: int, slices: int) -> None:
    """The execution completed with exactly ``records`` records in ``slices`` slices, and the
    API server lists nothing of it any more."""
    ex = wait_status(master, ex_id, "completed")
    stored = master.service.store.list_slices(SliceFilter(ex_id=ex_id))
    assert len(stored) == slices
    assert {sl["state"] for sl in stored} == {"completed"}
    assert sum(sl["record_count"] for sl in stored) == records
    stats = ex["_slicer_stats"]
    assert (stats["processed"], stats["failed"], stats["records"]) == (slices, 0, records)
    assert ex["_has_errors"] is False
    assert master.http.get(f"/v1/ex/{ex_id}/errors").json() == []
    wait_until(lambda: objects_left(s.api, ex_id) == [], WAIT, f"no object of {ex_id} left")


def test_a_generator_job_completes_with_exact_counts_and_its_objects_come_and_go(
    s: Stack, master: InProcessMaster
) -> None:
    ex_id = submit(
        master,
        {
            "name": "gen-noop",
            "workers": 2,
            # 100 ms per slice: slices of 2 ms or more go one at a time, so both workers get
            # some (a worker takes a group of quick slices at once; docs/execution-lifecycle.md).
            "operations": [
                {"_op": "data_generator", "size": 1000, "slice_size": 100},
                {"_op": "delay", "ms": 100},
                {"_op": "noop"},
            ],
        },
    )
    # While it runs: the controller Job, its Service and the worker Deployment (and their pods).
    seen = wait_until(
        lambda: (k := kinds(objects_left(s.api, ex_id))) >= {"Job", "Service", "Deployment"} and k,
        WAIT,
        "the Job, Service and Deployment of the execution",
    )
    assert seen <= {"Job", "Service", "Deployment", "ReplicaSet", "Pod"}
    (deployment,) = s.api.list(Kind.DEPLOYMENT, f"teraslice.terascope.io/exId={ex_id}").items
    assert deployment["spec"]["replicas"] == 2
    assert_ran_and_cleaned(s, master, ex_id, records=1000, slices=10)
    assert execution(master, ex_id)["_slicer_stats"]["workers_joined"] == 2


def test_an_elasticsearch_job_writes_every_record(s: Stack, master: InProcessMaster) -> None:
    index = "ts-real-bulk-out"
    s.es("PUT", f"/{index}", {"mappings": {"properties": {}}})
    ex_id = submit(
        master,
        {
            "name": "gen-to-es",
            "workers": 1,
            "operations": [
                {"_op": "data_generator", "size": 500, "slice_size": 100},
                {"_op": "elasticsearch_bulk", "index": index, "size": 50},
            ],
        },
    )
    assert_ran_and_cleaned(s, master, ex_id, records=500, slices=5)
    s.es("POST", f"/{index}/_refresh")
    assert s.es("POST", f"/{index}/_count", {"query": {"match_all": {}}})["count"] == 500


def test_a_persistent_job_scales_pauses_resumes_shows_its_pods_and_stops(
    s: Stack, master: InProcessMaster
) -> None:
    ex_id = submit(
        master,
        {
            "name": "persistent",
            "lifecycle": "persistent",
            "workers": 1,
            "operations": [{"_op": "data_generator", "size": 10}, {"_op": "delay", "ms": 100}],
        },
    )
    wait_status(master, ex_id, "running")
    selector = f"teraslice.terascope.io/exId={ex_id}"

    def scale(query: str, total: int) -> None:
        response = master.http.post(f"/v1/ex/{ex_id}/_workers?{query}")
        assert response.status_code == 200, response.text
        assert response.json()["message"].endswith(f" for execution: {ex_id}")
        (deployment,) = s.api.list(Kind.DEPLOYMENT, selector).items
        assert deployment["spec"]["replicas"] == total
        wait_until(
            lambda: len(s.running_pods(ex_id, "worker")) == total and len(s.pods(ex_id, "worker")) == total,
            WAIT,
            f"{total} running worker pods",
        )

    scale("add=1", 2)
    scale("remove=1", 1)
    scale("total=2", 2)

    # /v1/cluster/state: the node of the pods, listing exactly the controller and both workers
    # with the pod names and IPs the API server reports (the master runs outside a pod here).
    def state_matches() -> bool:
        pods = s.running_pods(ex_id, "execution_controller") + s.running_pods(ex_id, "worker")
        want = sorted(
            (
                p["metadata"]["labels"]["app.kubernetes.io/component"],
                p["metadata"]["name"],
                p["status"]["podIP"],
            )
            for p in pods
        )
        state = master.http.get("/v1/cluster/state").json()
        got = sorted(
            (w["assignment"], w["pod_name"], w["pod_ip"])
            for node in state.values()
            for w in node["active"]
            if w.get("ex_id") == ex_id
        )
        return len(want) == 3 and got == want

    wait_until(state_matches, WAIT, "/v1/cluster/state listing the controller and 2 workers")
    state = master.http.get("/v1/cluster/state").json()
    for node_id, node in state.items():
        assert node["node_id"] == node_id == "127.0.0.1" or not s.cluster.processes
        assert node["state"] == "connected"
    table = master.http.get("/txt/workers").text
    for pod in s.running_pods(ex_id, "worker") + s.running_pods(ex_id, "execution_controller"):
        line = next(row for row in table.splitlines() if pod["metadata"]["name"] in row)
        assert ex_id in line and s.cluster.image in line, table

    # pause / resume reach the controller pod (through its Service name or the API server's proxy).
    assert master.http.post(f"/v1/ex/{ex_id}/_pause").json() == {"status": "paused"}
    assert execution(master, ex_id)["_status"] == "paused"
    assert master.http.post(f"/v1/ex/{ex_id}/_resume").json() == {"status": "running"}
    wait_status(master, ex_id, "running")
    # The controller's own figures, through the master (slices done so far).
    (stats,) = master.http.get(f"/v1/ex/{ex_id}/controller").json()
    assert stats["ex_id"] == ex_id and stats["processed"] > 0, stats

    response = master.http.post(f"/v1/ex/{ex_id}/_stop")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "stopped"}
    record = execution(master, ex_id)
    assert record["_status"] == "stopped"
    assert record["_slicer_stats"]["processed"] >= stats["processed"], record["_slicer_stats"]
    assert objects_left(s.api, ex_id) == []
    assert all(
        w.get("ex_id") != ex_id
        for n in master.http.get("/v1/cluster/state").json().values()
        for w in n["active"]
    )

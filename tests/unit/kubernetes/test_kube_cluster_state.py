"""gen_cluster_state: Teraslice's kubernetesV2 cluster-state shape (k8s-backend.md §8.2)."""

from __future__ import annotations

import copy
from typing import Any

from teraslice_k8s.kubernetes.state import gen_cluster_state


def pod(
    name: str,
    *,
    component: str,
    ex_id: str | None = None,
    job_id: str | None = None,
    phase: str = "Running",
    host_ip: str | None = "192.168.99.100",
    pod_ip: str | None = None,
    image: str = "docker.registry.example/teraslice:0.0.0",
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "teraslice", "app.kubernetes.io/component": component}
    if ex_id:
        labels["teraslice.terascope.io/exId"] = ex_id
    if job_id:
        labels["teraslice.terascope.io/jobId"] = job_id
    status: dict[str, Any] = {"phase": phase}
    if host_ip:
        status["hostIP"] = host_ip
    if pod_ip:
        status["podIP"] = pod_ip
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": image}]},
        "status": status,
    }


#: The three Running pods of Teraslice's job-running-v1-k8s-pods.json fixture.
FIXTURE_PODS = [
    pod(
        "teraslice-master-6cbf8454cd-7jgrs",
        component="master",
        pod_ip="172.17.0.3",
        image="teraslice:k8sdev",
    ),
    pod(
        "teraslice-execution_controller-123456-784cbt5mz",
        component="execution_controller",
        ex_id="123456",
        job_id="654321",
        pod_ip="172.17.0.5",
    ),
    pod(
        "teraslice-worker-123456-8b68v7p8t",
        component="worker",
        ex_id="123456",
        job_id="654321",
        pod_ip="172.17.0.6",
    ),
]

#: Teraslice's expected result for that fixture (k8s-backend.md §8.2), verbatim.
FIXTURE_STATE = {
    "192.168.99.100": {
        "node_id": "192.168.99.100",
        "hostname": "192.168.99.100",
        "pid": "N/A",
        "node_version": "N/A",
        "teraslice_version": "N/A",
        "total": "N/A",
        "state": "connected",
        "available": "N/A",
        "active": [
            {
                "assets": [],
                "assignment": "master",
                "image": "teraslice:k8sdev",
                "pod_name": "teraslice-master-6cbf8454cd-7jgrs",
                "pod_ip": "172.17.0.3",
                "worker_id": "teraslice-master-6cbf8454cd-7jgrs",
            },
            {
                "assets": [],
                "assignment": "execution_controller",
                "ex_id": "123456",
                "image": "docker.registry.example/teraslice:0.0.0",
                "job_id": "654321",
                "pod_name": "teraslice-execution_controller-123456-784cbt5mz",
                "pod_ip": "172.17.0.5",
                "worker_id": "teraslice-execution_controller-123456-784cbt5mz",
            },
            {
                "assets": [],
                "assignment": "worker",
                "ex_id": "123456",
                "image": "docker.registry.example/teraslice:0.0.0",
                "job_id": "654321",
                "pod_name": "teraslice-worker-123456-8b68v7p8t",
                "pod_ip": "172.17.0.6",
                "worker_id": "teraslice-worker-123456-8b68v7p8t",
            },
        ],
    }
}


def test_teraslice_fixture_gives_teraslice_state() -> None:
    assert gen_cluster_state(FIXTURE_PODS) == FIXTURE_STATE


def test_key_order_matches_teraslice() -> None:
    node = gen_cluster_state(FIXTURE_PODS)["192.168.99.100"]
    assert list(node) == [
        "node_id",
        "hostname",
        "pid",
        "node_version",
        "teraslice_version",
        "total",
        "state",
        "available",
        "active",
    ]
    assert list(node["active"][1]) == [
        "assets",
        "assignment",
        "ex_id",
        "image",
        "job_id",
        "pod_name",
        "pod_ip",
        "worker_id",
    ]


def test_same_input_same_state_and_input_untouched() -> None:
    pods = copy.deepcopy(FIXTURE_PODS)
    first = gen_cluster_state(pods)
    assert gen_cluster_state(pods) == first
    assert pods == FIXTURE_PODS
    first["192.168.99.100"]["active"].clear()  # results are fresh objects
    assert gen_cluster_state(pods) == FIXTURE_STATE


def test_pending_pod_without_host_creates_no_undefined_node() -> None:
    pending = pod("ts-wkr-x-1", component="worker", ex_id="e", job_id="j", phase="Pending", host_ip=None)
    assert gen_cluster_state([pending]) == {}
    assert gen_cluster_state([*FIXTURE_PODS, pending]) == FIXTURE_STATE


def test_scheduled_but_not_running_pod_makes_an_empty_node() -> None:
    pending = pod("ts-wkr-x-1", component="worker", ex_id="e", phase="Pending", host_ip="10.0.0.9")
    failed = pod(
        "ts-exc-x-1", component="execution_controller", ex_id="e", phase="Failed", host_ip="10.0.0.9"
    )
    state = gen_cluster_state([pending, failed])
    assert list(state) == ["10.0.0.9"]
    assert state["10.0.0.9"]["active"] == []
    assert state["10.0.0.9"]["state"] == "connected"


def test_pods_grouped_by_host_in_pod_order() -> None:
    a = pod("w-a", component="worker", ex_id="e", host_ip="10.0.0.2", pod_ip="10.1.0.1")
    b = pod("w-b", component="worker", ex_id="e", host_ip="10.0.0.1", pod_ip="10.1.0.2")
    c = pod("w-c", component="worker", ex_id="e", host_ip="10.0.0.2", pod_ip="10.1.0.3")
    state = gen_cluster_state([a, b, c])
    assert list(state) == ["10.0.0.2", "10.0.0.1"]
    assert [w["pod_name"] for w in state["10.0.0.2"]["active"]] == ["w-a", "w-c"]
    assert [w["pod_name"] for w in state["10.0.0.1"]["active"]] == ["w-b"]


def test_running_pod_without_ip_omits_pod_ip() -> None:
    p = pod("w-a", component="worker", ex_id="e", job_id="j")
    (entry,) = gen_cluster_state([p])["192.168.99.100"]["active"]
    assert "pod_ip" not in entry
    assert entry["ex_id"] == "e"

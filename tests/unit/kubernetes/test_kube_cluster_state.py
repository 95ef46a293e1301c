"""gen_cluster_state: Teraslice's kubernetesV2 cluster-state shape (k8s-backend.md §8.2)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from teraslice_k8s.kubernetes.state import PodAssetIds, gen_cluster_state


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


# ---------------------------------------------------------------------------------------- assets

ASSET_A = "a" * 40
ASSET_B = "0123456789abcdef0123456789abcdef01234567"


def with_ex(
    p: dict[str, Any], execution: Any, uid: str | None = None, raw: str | None = None
) -> dict[str, Any]:
    """``p`` with an ``EX`` env (base64 JSON of ``execution``, or ``raw`` as is) and a uid."""
    p = copy.deepcopy(p)
    value = raw if raw is not None else base64.b64encode(json.dumps(execution).encode()).decode()
    p["spec"]["containers"][0]["env"] = [
        {"name": "NODE_TYPE", "value": "worker"},
        {"name": "EX", "value": value},
    ]
    p["metadata"]["uid"] = uid or f"uid-{p['metadata']['name']}"
    return p


def pods_with_assets(assets: list[Any]) -> list[dict[str, Any]]:
    master, controller, worker = FIXTURE_PODS
    execution = {"ex_id": "123456", "job_id": "654321", "assets": assets, "operations": []}
    return [with_ex(master, execution), with_ex(controller, execution), with_ex(worker, execution)]


def expected_with_assets(ids: list[str]) -> dict[str, Any]:
    state = copy.deepcopy(FIXTURE_STATE)
    for entry in state["192.168.99.100"]["active"][1:]:  # the controller and the worker, not the master
        entry["assets"] = ids
    return state


def test_controller_and_worker_list_the_executions_resolved_asset_ids() -> None:
    pods = pods_with_assets([ASSET_A, ASSET_B])
    assert gen_cluster_state(pods) == expected_with_assets([ASSET_A, ASSET_B])
    assert PodAssetIds().cluster_state(pods) == expected_with_assets([ASSET_A, ASSET_B])


def test_only_resolved_ids_are_listed_as_the_processes_load_only_those() -> None:
    pods = pods_with_assets(["example:1.x", ASSET_A, 7, None, ASSET_B.upper()])
    assert gen_cluster_state(pods) == expected_with_assets([ASSET_A])


def test_without_assets_the_output_is_byte_identical_to_teraslices() -> None:
    expected = json.dumps(FIXTURE_STATE)
    for pods in (FIXTURE_PODS, pods_with_assets([])):
        assert json.dumps(gen_cluster_state(pods)) == expected
        assert json.dumps(PodAssetIds().cluster_state(pods)) == expected


def test_an_unreadable_ex_lists_no_assets_and_never_fails() -> None:
    master, controller, worker = FIXTURE_PODS
    for raw in ("not base64!", base64.b64encode(b"{not json").decode(), base64.b64encode(b"[1]").decode()):
        pods = [master, with_ex(controller, None, raw=raw), with_ex(worker, None, raw=raw)]
        assert gen_cluster_state(pods) == FIXTURE_STATE
    assets_not_a_list = [master, with_ex(controller, {"assets": ASSET_A}), worker]
    assert gen_cluster_state(assets_not_a_list) == FIXTURE_STATE


def test_pod_asset_ids_decodes_a_pod_once_and_forgets_pods_that_are_gone() -> None:
    states = PodAssetIds()
    pods = pods_with_assets([ASSET_A])
    assert states.cluster_state(pods) == expected_with_assets([ASSET_A])
    # Same uids: the ids remembered from the first decode are used (a pod's EX cannot change);
    # a status change (new resourceVersion) does not make it decode again either.
    same_uids = pods_with_assets([ASSET_B])
    for p in same_uids:
        p["metadata"]["resourceVersion"] = "2"
    assert states.cluster_state(same_uids) == expected_with_assets([ASSET_A])
    # New pods (new uids) are decoded.
    replaced = [with_ex(p, {"assets": [ASSET_B]}, uid=f"new-{i}") for i, p in enumerate(FIXTURE_PODS)]
    assert states.cluster_state(replaced) == expected_with_assets([ASSET_B])
    # The first pods left the listing in between, so they are decoded afresh when they reappear.
    assert states.cluster_state(same_uids) == expected_with_assets([ASSET_B])
    # Results are fresh lists.
    first = states.cluster_state(same_uids)
    first["192.168.99.100"]["active"][1]["assets"].clear()
    assert states.cluster_state(same_uids) == expected_with_assets([ASSET_B])


def test_pods_without_uid_are_remembered_by_name_and_resource_version() -> None:
    states = PodAssetIds()
    pods = pods_with_assets([ASSET_A])
    for p in pods:
        del p["metadata"]["uid"]
        p["metadata"]["resourceVersion"] = "1"
    assert states.cluster_state(pods) == expected_with_assets([ASSET_A])
    changed = pods_with_assets([ASSET_B])
    for p in changed:
        del p["metadata"]["uid"]
        p["metadata"]["resourceVersion"] = "2"
    assert states.cluster_state(changed) == expected_with_assets([ASSET_B])

"""KubernetesBackend against the emulator over HTTP: start, stop, force stop, scale, state.

Every test asserts what reached the API (method, path, body, in order) and what is left in
the emulator afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import EX_ID, JOB_ID, NAMESPACE, Events, make_execution
from teraslice_k8s.backend.base import BackendError, ControllerAddress
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.render import (
    OwnerRef,
    render_controller_job,
    render_controller_service,
    render_worker_deployment,
    service_hostname,
    worker_execution,
)
from teraslice_k8s.models.config import SysConfig

JOB_NAME = "ts-exc-example-data-generator-job-7ba9afb0-417a"
SERVICE_NAME = "svc-ts-exc-example-data-generator-job-7ba9afb0-417a"
DEPLOYMENT_NAME = "ts-wkr-example-data-generator-job-7ba9afb0-417a"

JOBS = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
SERVICES = f"/api/v1/namespaces/{NAMESPACE}/services"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
REPLICASETS = f"/apis/apps/v1/namespaces/{NAMESPACE}/replicasets"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
CONFIG_MAP = f"/api/v1/namespaces/{NAMESPACE}/configmaps/teraslice-worker"


def start(backend: KubernetesBackend, execution: dict[str, Any], config: SysConfig) -> ControllerAddress:
    """The master's start sequence: controller, then workers with the initializing record."""
    address = backend.allocate_controller(execution)
    backend.allocate_workers(worker_execution(execution, config))
    return address


def remaining(emulator: EmulatorThread) -> list[tuple[str, str]]:
    """(resource, name) of everything left except the worker ConfigMap."""
    return sorted((res, name) for (res, _, name) in emulator.objects() if res != "v1/configmaps")


def pod(
    name: str, component: str, *, ex_id: str = EX_ID, instance: str = "ts-dev1", **status: Any
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "teraslice",
                "app.kubernetes.io/instance": instance,
                "app.kubernetes.io/component": component,
                "teraslice.terascope.io/exId": ex_id,
                "teraslice.terascope.io/jobId": JOB_ID,
            },
        },
        "spec": {"containers": [{"name": name, "image": "teraslice:k8sdev"}]},
        "status": status,
    }


# ----------------------------------------------------------------------------------- start


def test_start_creates_job_service_deployment_in_order_with_rendered_bodies(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    emulator.clear_log()
    address = start(backend, execution, config)

    assert address == ControllerAddress(f"{SERVICE_NAME}.{NAMESPACE}", 45680)
    assert address.hostname == service_hostname(execution, config)
    assert emulator.calls() == [
        ("GET", CONFIG_MAP),
        ("POST", JOBS),
        ("POST", SERVICES),
        ("GET", JOBS),
        ("POST", DEPLOYMENTS),
    ]
    posts = [r for r in emulator.requests if r.method == "POST"]
    assert all(r.query == {"fieldValidation": "Strict"} for r in posts)
    job = emulator.objects("batch/v1/jobs")["batch/v1/jobs", NAMESPACE, JOB_NAME]
    owner = OwnerRef(JOB_NAME, job["metadata"]["uid"])
    assert posts[0].body == render_controller_job(execution, config)
    assert posts[1].body == render_controller_service(execution, config, owner)
    assert posts[2].body == render_worker_deployment(worker_execution(execution, config), config, owner)
    # The list that found the Job selected it by execution id, not job id.
    by_ex_id = f"app.kubernetes.io/component=execution_controller,teraslice.terascope.io/exId={EX_ID}"
    assert emulator.requests[3].query == {"labelSelector": by_ex_id}
    stored = emulator.objects()
    for key in (
        ("v1/services", NAMESPACE, SERVICE_NAME),
        ("apps/v1/deployments", NAMESPACE, DEPLOYMENT_NAME),
    ):
        (reference,) = stored[key]["metadata"]["ownerReferences"]
        assert (reference["kind"], reference["name"], reference["uid"]) == (
            "Job",
            JOB_NAME,
            job["metadata"]["uid"],
        )


def test_missing_config_map_is_reported_and_nothing_is_created(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any]
) -> None:
    emulator.remove("v1/configmaps", NAMESPACE, "teraslice-worker")
    emulator.clear_log()
    with pytest.raises(BackendError) as info:
        backend.allocate_controller(execution)
    assert str(info.value) == (
        'the worker ConfigMap "teraslice-worker" (teraslice.kubernetes_config_map_name) does not exist '
        'in namespace "ts-dev1"; create it (the Helm chart does) or fix the setting'
    )
    assert emulator.calls() == [("GET", CONFIG_MAP)]
    assert remaining(emulator) == []


def test_workers_find_their_controller_by_ex_id_not_job_id(
    backend: KubernetesBackend, emulator: EmulatorThread, config: SysConfig
) -> None:
    # A lingering controller Job of an earlier execution of the same job (Teraslice's lookup by
    # job id would find two Jobs and fail).
    earlier = make_execution(config, ex_id="0c1d2e3f-0000-4000-8000-000000000001")
    leftover = render_controller_job(earlier, config)
    leftover["metadata"]["name"] = "ts-exc-leftover"
    emulator.apply("batch/v1/jobs", NAMESPACE, leftover)

    current = make_execution(config, job_id="11111111-2222-4333-8444-555555555555")
    start(backend, current, config)
    deployment_name = f"ts-wkr-example-data-generator-job-{current['job_id'][:13]}"
    deployment = emulator.objects()["apps/v1/deployments", NAMESPACE, deployment_name]
    (reference,) = deployment["metadata"]["ownerReferences"]
    assert reference["name"] == f"ts-exc-example-data-generator-job-{current['job_id'][:13]}"


def test_workers_without_a_controller_job_are_refused(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    with pytest.raises(BackendError) as info:
        backend.allocate_workers(worker_execution(execution, config))
    assert str(info.value) == (
        f"expected one execution controller Job for execution {EX_ID} in namespace "
        '"ts-dev1", found 0; was allocate_controller called?'
    )
    assert remaining(emulator) == []


# ----------------------------------------------------------------------------------- stop

BACKGROUND = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
FORCE = {**BACKGROUND, "gracePeriodSeconds": 1}


def test_stop_deletes_the_job_and_the_garbage_collector_the_rest(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    start(backend, execution, config)
    emulator.clear_log()
    backend.stop_execution(EX_ID)

    # One delete per execution (Teraslice's): the Service and the worker Deployment go with
    # their owner, the Job (the emulator collects them as the garbage collector would).
    assert emulator.calls() == [("GET", JOBS), ("DELETE", f"{JOBS}/{JOB_NAME}")]
    deletes = [r for r in emulator.requests if r.method == "DELETE"]
    assert [r.body for r in deletes] == [BACKGROUND]
    assert remaining(emulator) == []


def test_stop_is_idempotent(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    start(backend, execution, config)
    backend.stop_execution(EX_ID)
    emulator.clear_log()
    backend.stop_execution(EX_ID)
    assert emulator.calls() == [("GET", JOBS)]


def test_stop_leaves_other_executions_alone(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    other = make_execution(
        config, ex_id="aaaaaaaa-0000-4000-8000-000000000002", job_id="bbbbbbbb-0000-4000-8000"
    )
    start(backend, execution, config)
    start(backend, other, config)
    backend.stop_execution(EX_ID)
    assert remaining(emulator) == [
        ("apps/v1/deployments", "ts-wkr-example-data-generator-job-bbbbbbbb-0000"),
        ("batch/v1/jobs", "ts-exc-example-data-generator-job-bbbbbbbb-0000"),
        ("v1/services", "svc-ts-exc-example-data-generator-job-bbbbbbbb-0000"),
    ]


def test_force_stop_deletes_children_first_with_one_second_grace(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    start(backend, execution, config)
    # What the controllers would have created (the emulator runs none).
    emulator.apply("v1/pods", NAMESPACE, pod("ts-wkr-a", "worker", phase="Running"))
    terminating = pod("ts-wkr-b", "worker", phase="Running")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    emulator.apply("v1/pods", NAMESPACE, terminating)
    emulator.apply("v1/pods", NAMESPACE, pod("ts-wkr-c", "worker", phase="Running"))
    replica_set = pod("ts-wkr-rs", "worker")
    del replica_set["spec"], replica_set["status"]
    emulator.apply("apps/v1/replicasets", NAMESPACE, replica_set)
    emulator.apply("v1/pods", NAMESPACE, pod("ts-exc-p", "execution_controller", phase="Running"))
    emulator.clear_log()

    backend.stop_execution(EX_ID, force=True)

    assert emulator.calls() == [
        ("GET", PODS),
        ("DELETE", f"{PODS}/ts-wkr-a"),
        ("DELETE", f"{PODS}/ts-wkr-b"),  # already terminating: still deleted, and the rest too
        ("DELETE", f"{PODS}/ts-wkr-c"),
        ("GET", REPLICASETS),
        ("DELETE", f"{REPLICASETS}/ts-wkr-rs"),
        ("GET", DEPLOYMENTS),
        ("DELETE", f"{DEPLOYMENTS}/{DEPLOYMENT_NAME}"),
        ("GET", PODS),
        ("DELETE", f"{PODS}/ts-exc-p"),
        ("GET", SERVICES),
        ("DELETE", f"{SERVICES}/{SERVICE_NAME}"),
        ("GET", JOBS),
        ("DELETE", f"{JOBS}/{JOB_NAME}"),
    ]
    assert all(r.body == FORCE for r in emulator.requests if r.method == "DELETE")
    assert remaining(emulator) == []


# ----------------------------------------------------------------------------------- scale


def test_scale_patches_replicas_with_json_patch(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    start(backend, execution, config)
    emulator.clear_log()

    assert backend.scale_workers(EX_ID, "add", 3) == 5
    assert backend.scale_workers(EX_ID, "remove", 4) == 1
    assert backend.scale_workers(EX_ID, "set", 7) == 7
    assert backend.scale_workers(EX_ID, "remove", 7) == 0

    patches = [r for r in emulator.requests if r.method == "PATCH"]
    assert [r.body for r in patches] == [
        [{"op": "replace", "path": "/spec/replicas", "value": n}] for n in (5, 1, 7, 0)
    ]
    assert {r.content_type for r in patches} == {"application/json-patch+json"}
    assert {r.path for r in patches} == {f"{DEPLOYMENTS}/{DEPLOYMENT_NAME}"}
    deployment = emulator.objects()["apps/v1/deployments", NAMESPACE, DEPLOYMENT_NAME]
    assert deployment["spec"]["replicas"] == 0


def test_scale_below_zero_is_refused_without_a_patch(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    start(backend, execution, config)
    emulator.clear_log()
    with pytest.raises(BackendError) as info:
        backend.scale_workers(EX_ID, "remove", 3)
    assert str(info.value) == (
        f"cannot remove 3 workers from execution {EX_ID}: it has 2, and the worker count cannot go below 0"
    )
    with pytest.raises(BackendError) as negative:
        backend.scale_workers(EX_ID, "set", -1)
    assert str(negative.value) == "the worker count must not be negative, got -1"
    assert [m for m, _ in emulator.calls()] == ["GET"]
    assert emulator.objects()["apps/v1/deployments", NAMESPACE, DEPLOYMENT_NAME]["spec"]["replicas"] == 2


def test_scale_without_deployment_is_an_error(backend: KubernetesBackend, emulator: EmulatorThread) -> None:
    with pytest.raises(BackendError) as info:
        backend.scale_workers(EX_ID, "add", 1)
    assert str(info.value) == (
        "expected one worker Deployment matching app.kubernetes.io/component=worker,"
        f'teraslice.terascope.io/exId={EX_ID} in namespace "ts-dev1", found 0'
    )


# ----------------------------------------------------------------------------------- state


def test_cluster_state_from_the_pod_cache(
    make_backend: Any, emulator: EmulatorThread, events: Events
) -> None:
    emulator.apply(
        "v1/pods",
        NAMESPACE,
        pod("ts-exc-p", "execution_controller", phase="Running", hostIP="10.0.0.1", podIP="10.1.0.5"),
    )
    emulator.apply(
        "v1/pods", NAMESPACE, pod("ts-wkr-1", "worker", phase="Running", hostIP="10.0.0.2", podIP="10.1.0.6")
    )
    emulator.apply("v1/pods", NAMESPACE, pod("ts-wkr-2", "worker", phase="Pending"))  # not scheduled
    emulator.apply(
        "v1/pods",
        NAMESPACE,
        pod(
            "other", "worker", instance="other-cluster", phase="Running", hostIP="10.0.0.3", podIP="10.1.0.7"
        ),
    )
    backend = make_backend()
    backend.start(events)

    node = {
        "pid": "N/A",
        "node_version": "N/A",
        "teraslice_version": "N/A",
        "total": "N/A",
        "state": "connected",
        "available": "N/A",
    }
    entry = {"assets": [], "ex_id": EX_ID, "image": "teraslice:k8sdev", "job_id": JOB_ID}
    assert backend.cluster_state() == {
        "10.0.0.1": {
            "node_id": "10.0.0.1",
            "hostname": "10.0.0.1",
            **node,
            "active": [
                {
                    **entry,
                    "assignment": "execution_controller",
                    "pod_name": "ts-exc-p",
                    "pod_ip": "10.1.0.5",
                    "worker_id": "ts-exc-p",
                }
            ],
        },
        "10.0.0.2": {
            "node_id": "10.0.0.2",
            "hostname": "10.0.0.2",
            **node,
            "active": [
                {
                    **entry,
                    "assignment": "worker",
                    "pod_name": "ts-wkr-1",
                    "pod_ip": "10.1.0.6",
                    "worker_id": "ts-wkr-1",
                }
            ],
        },
    }


def test_one_list_and_one_watch_per_kind_never_a_call_per_pod(
    make_backend: Any, emulator: EmulatorThread, events: Events
) -> None:
    for i in range(50):
        emulator.apply("v1/pods", NAMESPACE, pod(f"ts-wkr-{i}", "worker", phase="Running", hostIP="10.0.0.1"))
    emulator.clear_log()
    backend = make_backend()
    backend.start(events)
    for _ in range(5):
        state = backend.cluster_state()
        assert len(state["10.0.0.1"]["active"]) == 50
        assert backend.execution_ids() == {EX_ID}
    selector = "app.kubernetes.io/name=teraslice,app.kubernetes.io/instance=ts-dev1"
    lists = sorted(r.path for r in emulator.requests if r.query.get("watch") != "true")
    assert lists == sorted([PODS, JOBS, DEPLOYMENTS])
    assert all(r.query["labelSelector"] == selector for r in emulator.requests)

"""Fault injection: 409 (adopt vs foreign), 500 / 429 / timeouts (retried), 403, broken watches.

Each test asserts the outcome in the emulator afterwards: no orphaned object, nothing foreign
touched, and the exact error, attempts and log lines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import EX_ID, NAMESPACE, Events, make_execution
from support.k8s_real import wait_until
from teraslice_k8s.backend.base import BackendError, BackendEvent, EventKind
from teraslice_k8s.kubernetes.api import KubeApi
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.errors import Forbidden, Transient
from teraslice_k8s.kubernetes.render import (
    OwnerRef,
    default_owner,
    render_controller_job,
    render_controller_service,
    render_worker_deployment,
    worker_execution,
)
from teraslice_k8s.kubernetes.state import CacheSettings
from teraslice_k8s.models.config import SysConfig

JOB_NAME = "ts-exc-example-data-generator-job-7ba9afb0-417a"
SERVICE_NAME = "svc-ts-exc-example-data-generator-job-7ba9afb0-417a"
DEPLOYMENT_NAME = "ts-wkr-example-data-generator-job-7ba9afb0-417a"
JOBS = f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
SERVICES = f"/api/v1/namespaces/{NAMESPACE}/services"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
CONFIG_MAP = f"/api/v1/namespaces/{NAMESPACE}/configmaps/teraslice-worker"
FOREIGN_EX_ID = "99999999-0000-4000-8000-000000000009"

API_LOGGER = "teraslice_k8s.kubernetes.api"


def remaining(emulator: EmulatorThread) -> dict[tuple[str, str], dict[str, Any]]:
    return {(res, name): obj for (res, _, name), obj in emulator.objects().items() if res != "v1/configmaps"}


def start(backend: KubernetesBackend, execution: dict[str, Any], config: SysConfig) -> None:
    backend.allocate_controller(execution)
    backend.allocate_workers(worker_execution(execution, config))


# ----------------------------------------------------------------------------------- 409


def test_409_on_our_own_objects_adopts_them(
    backend: KubernetesBackend,
    emulator: EmulatorThread,
    execution: dict[str, Any],
    config: SysConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A previous attempt of this execution got as far as the Job and the Deployment.
    job = emulator.apply("batch/v1/jobs", NAMESPACE, render_controller_job(execution, config))
    owner = OwnerRef(JOB_NAME, job["metadata"]["uid"])
    deployment_body = render_worker_deployment(worker_execution(execution, config), config, owner)
    deployment = emulator.apply("apps/v1/deployments", NAMESPACE, deployment_body)
    emulator.clear_log()

    with caplog.at_level(logging.INFO, logger="teraslice_k8s.kubernetes.backend"):
        start(backend, execution, config)

    assert emulator.calls() == [
        ("GET", CONFIG_MAP),
        ("POST", JOBS),
        ("GET", f"{JOBS}/{JOB_NAME}"),
        ("POST", SERVICES),
        ("GET", JOBS),
        ("POST", DEPLOYMENTS),
        ("GET", f"{DEPLOYMENTS}/{DEPLOYMENT_NAME}"),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        f'adopting the existing Job "{JOB_NAME}" of execution {EX_ID}',
        f'adopting the existing Deployment "{DEPLOYMENT_NAME}" of execution {EX_ID}',
    ]
    left = remaining(emulator)
    assert sorted(left) == [
        ("apps/v1/deployments", DEPLOYMENT_NAME),
        ("batch/v1/jobs", JOB_NAME),
        ("v1/services", SERVICE_NAME),
    ]
    assert left["batch/v1/jobs", JOB_NAME]["metadata"]["uid"] == job["metadata"]["uid"]
    assert left["apps/v1/deployments", DEPLOYMENT_NAME]["metadata"]["uid"] == deployment["metadata"]["uid"]
    (reference,) = left["v1/services", SERVICE_NAME]["metadata"]["ownerReferences"]
    assert reference["uid"] == job["metadata"]["uid"]


def test_409_on_a_foreign_job_fails_clearly_and_touches_nothing(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    # A leftover of an earlier execution of the same job (names are per job, not per execution).
    foreign = emulator.apply(
        "batch/v1/jobs", NAMESPACE, render_controller_job(make_execution(config, ex_id=FOREIGN_EX_ID), config)
    )
    with pytest.raises(BackendError) as info:
        backend.allocate_controller(execution)
    assert str(info.value) == (
        f'Job "{JOB_NAME}" already exists in namespace "ts-dev1" and belongs to execution '
        f"{FOREIGN_EX_ID} of cluster ts-dev1, not to execution {EX_ID} of cluster ts-dev1; "
        "delete it or wait for Kubernetes to remove it"
    )
    assert remaining(emulator) == {("batch/v1/jobs", JOB_NAME): foreign}


def test_409_on_a_job_of_another_cluster_is_foreign(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    other = render_controller_job(execution, config)
    other["metadata"]["labels"]["app.kubernetes.io/instance"] = "ts-prod"
    emulator.apply("batch/v1/jobs", NAMESPACE, other)
    with pytest.raises(BackendError) as info:
        backend.allocate_controller(execution)
    assert (
        f"belongs to execution {EX_ID} of cluster ts-prod, not to execution {EX_ID} of cluster ts-dev1"
        in str(info.value)
    )
    assert list(remaining(emulator)) == [("batch/v1/jobs", JOB_NAME)]


def test_409_on_a_foreign_service_removes_the_job_it_created(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    other = make_execution(config, ex_id=FOREIGN_EX_ID)
    foreign = emulator.apply(
        "v1/services", NAMESPACE, render_controller_service(other, config, default_owner(other, config))
    )
    emulator.clear_log()
    with pytest.raises(BackendError) as info:
        backend.allocate_controller(execution)
    assert str(info.value).startswith(f'Service "{SERVICE_NAME}" already exists in namespace "ts-dev1"')
    assert emulator.calls() == [
        ("GET", CONFIG_MAP),
        ("POST", JOBS),
        ("POST", SERVICES),
        ("GET", f"{SERVICES}/{SERVICE_NAME}"),
        ("DELETE", f"{JOBS}/{JOB_NAME}"),
    ]
    assert remaining(emulator) == {("v1/services", SERVICE_NAME): foreign}


# ----------------------------------------------------------------------------------- retries


def test_500_on_create_is_retried_with_logged_attempts(
    *,
    backend: KubernetesBackend,
    emulator: EmulatorThread,
    execution: dict[str, Any],
    config: SysConfig,
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.fail("POST", "/jobs$", 500, times=2)
    with caplog.at_level(logging.WARNING, logger=API_LOGGER):
        start(backend, execution, config)
    assert [m for m, p in emulator.calls() if p == JOBS] == ["POST", "POST", "POST", "GET"]
    assert sleeps == [0.5, 1.0]
    where = f'create batch/jobs "{JOB_NAME}" in namespace "ts-dev1": HTTP 500 (injected fault 500)'
    assert [r.getMessage() for r in caplog.records] == [
        f"attempt #1/3 failed: {where}; will retry in 0.50s",
        f"attempt #2/3 failed: {where}; will retry in 1.00s",
    ]
    assert len(remaining(emulator)) == 3


def test_429_honours_retry_after(
    backend: KubernetesBackend,
    emulator: EmulatorThread,
    execution: dict[str, Any],
    config: SysConfig,
    sleeps: list[float],
) -> None:
    emulator.fail("POST", "/services$", 429, headers={"Retry-After": "2"})
    start(backend, execution, config)
    assert sleeps == [2.0]
    assert [m for m, p in emulator.calls() if p == SERVICES] == ["POST", "POST"]
    assert len(remaining(emulator)) == 3


def test_timeout_is_retried(
    *,
    make_api: Callable[..., KubeApi],
    make_backend: Callable[..., KubernetesBackend],
    emulator: EmulatorThread,
    execution: dict[str, Any],
    config: SysConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = make_backend(kube=make_api(request_timeout=0.5))
    emulator.fail("POST", "/deployments$", hang=True)
    with caplog.at_level(logging.WARNING, logger=API_LOGGER):
        start(backend, execution, config)
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(
        f'attempt #1/3 failed: create apps/deployments "{DEPLOYMENT_NAME}" in namespace "ts-dev1": timed out'
    )
    assert len(remaining(emulator)) == 3


def test_persistent_500_escalates_and_leaves_no_orphans(
    backend: KubernetesBackend,
    emulator: EmulatorThread,
    execution: dict[str, Any],
    sleeps: list[float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.fail("POST", "/services$", 503, times=3)
    with pytest.raises(Transient) as info, caplog.at_level(logging.WARNING, logger=API_LOGGER):
        backend.allocate_controller(execution)
    assert str(info.value) == (
        f'create services "{SERVICE_NAME}" in namespace "ts-dev1": HTTP 503 (injected fault 503)'
    )
    assert caplog.records[-1].getMessage() == f"attempt #3/3 failed: {info.value}; escalating"
    assert len(sleeps) == 2
    assert remaining(emulator) == {}  # the Job it had created is gone again
    backend.stop_execution(EX_ID)  # what the master does next: a no-op now
    assert remaining(emulator) == {}


def test_500_on_delete_is_retried(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    start(backend, execution, config)
    emulator.fail("DELETE", f"/jobs/{JOB_NAME}$", 500)
    backend.stop_execution(EX_ID)
    assert remaining(emulator) == {}


def test_forbidden_names_verb_and_resource_and_stop_cleans_up(
    backend: KubernetesBackend, emulator: EmulatorThread, execution: dict[str, Any], config: SysConfig
) -> None:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "Forbidden",
        "code": 403,
        "message": 'deployments.apps is forbidden: User "system:serviceaccount:ts-dev1:teraslice-master" '
        'cannot create resource "deployments" in API group "apps" in the namespace "ts-dev1"',
    }
    emulator.fail("POST", "/deployments$", 403, body=body)
    backend.allocate_controller(execution)
    with pytest.raises(Forbidden) as info:
        backend.allocate_workers(worker_execution(execution, config))
    assert str(info.value) == (
        'forbidden: the master\'s ServiceAccount may not "create" "apps/deployments" in namespace '
        '"ts-dev1" — grant it in the Role'
    )
    assert info.value.payload is not None
    assert info.value.payload["message"] == body["message"]
    assert [m for m, p in emulator.calls() if p == DEPLOYMENTS] == ["POST"]  # never retried
    backend.stop_execution(EX_ID)  # the master's reaction to a failed start
    assert remaining(emulator) == {}


# ----------------------------------------------------------------------------------- watches


def failing_pod(name: str = f"{JOB_NAME}-abcde") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/name": "teraslice",
                "app.kubernetes.io/instance": "ts-dev1",
                "app.kubernetes.io/component": "execution_controller",
                "teraslice.terascope.io/exId": EX_ID,
            },
        },
        "status": {"phase": "Failed", "reason": "Evicted"},
    }


STATE_LOGGER = "teraslice_k8s.kubernetes.state"


def state_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == STATE_LOGGER]


def test_a_transiently_broken_watch_polls_briefly_then_watches_again(
    make_backend: Callable[..., KubernetesBackend],
    emulator: EmulatorThread,
    events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 5xx (the API server restarting, say) is not a reason to poll for a whole resync: the
    cache polls for 2 x poll_delay, then doubles it while watching keeps failing, and watches
    again as soon as it can."""
    fault = emulator.fail("WATCH", "/pods$", 500, times=9)  # three watch requests, 3 attempts each
    backend = make_backend(cache=CacheSettings(resync=300.0, poll_delay=0.05, watch_timeout=5.0))
    with caplog.at_level(logging.INFO, logger=STATE_LOGGER):
        backend.start(events)
        wait_until(
            lambda: sum(m == "WATCH" and p == PODS for m, p in emulator.calls()) >= 10,
            30,
            "a watch request after the nine failed attempts",
        )
        assert fault.served == 9
        emulator.clear_log()
        emulator.apply("v1/pods", NAMESPACE, failing_pod())
        event = events.next()
    assert event == BackendEvent(EX_ID, EventKind.CONTROLLER_FAILED, f"pod {JOB_NAME}-abcde: Evicted")
    failed = 'watching Pod failed: watch pods in namespace "ts-dev1": HTTP 500 (injected fault 500); '
    assert [m for m in state_messages(caplog) if m.startswith("watching Pod")] == [
        f"{failed}polling every 0.05s for 0.1s",
        "watching Pod again",
        f"{failed}polling every 0.05s for 0.2s",
        "watching Pod again",
        f"{failed}polling every 0.05s for 0.4s",
        "watching Pod again",
    ]
    # Watching again: the pod came through the watch, not through a list.
    assert [m for m, p in emulator.calls() if p == PODS] == []


def test_a_refused_watch_polls_for_a_whole_resync(
    make_backend: Callable[..., KubernetesBackend],
    emulator: EmulatorThread,
    events: Events,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Role without ``watch`` (403): watching again soon cannot help, so the cache polls for
    ``resync`` before it tries again (Teraslice's seed Role works, with more API calls)."""
    emulator.fail("WATCH", "/pods$", 403, times=1000)
    backend = make_backend(cache=CacheSettings(resync=300.0, poll_delay=0.05, watch_timeout=5.0))
    with caplog.at_level(logging.WARNING, logger=STATE_LOGGER):
        backend.start(events)
        emulator.apply("v1/pods", NAMESPACE, failing_pod())
        event = events.next()
        wait_until(lambda: sum(p == PODS for _, p in emulator.calls()) >= 12, 30, "ten polls")
    assert event == BackendEvent(EX_ID, EventKind.CONTROLLER_FAILED, f"pod {JOB_NAME}-abcde: Evicted")
    (message,) = state_messages(caplog)
    assert message.startswith("watching Pod failed: forbidden: ")
    assert message.endswith("; polling every 0.05s for 300s")
    pod_calls = [m for m, p in emulator.calls() if p == PODS]
    assert pod_calls[:2] == ["GET", "WATCH"]  # one list, one watch: a 403 is not retried
    assert set(pod_calls[2:]) == {"GET"}  # then lists only


def test_expired_watch_relists(
    make_backend: Callable[..., KubernetesBackend], emulator: EmulatorThread, events: Events
) -> None:
    emulator.fail("WATCH", "/pods$", 410)
    backend = make_backend()
    backend.start(events)
    emulator.apply("v1/pods", NAMESPACE, failing_pod())
    assert events.next() == BackendEvent(EX_ID, EventKind.CONTROLLER_FAILED, f"pod {JOB_NAME}-abcde: Evicted")
    pod_calls = [m for m, p in emulator.calls() if p == PODS]
    assert pod_calls[:3] == ["GET", "WATCH", "GET"]  # 410 -> list again at once, no retries

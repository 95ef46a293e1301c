"""The execution controller through the API server's service proxy (hybrid mode: the master
runs outside the cluster), against the emulator forwarding to a real local HTTP server.

What reached the API server (method, path, query) and what reached the controller are both
asserted; a ``POST`` is sent exactly once even when the controller answers 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.fake_controller import FakeControllerServer, SeenRequest
from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import NAMESPACE, make_execution
from teraslice_k8s.backend.base import BackendError
from teraslice_k8s.kubernetes.api import KubeApi
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.errors import NotFound, Transient
from teraslice_k8s.kubernetes.render import execution_names
from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.controller_client import Route
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.sqlite import SqliteStore
from unit.master.fakes import ApiClient, analytics_for, settle

SERVICE = "svc-ts-exc-example-data-generator-job-7ba9afb0-417a"
PROXY = f"/api/v1/namespaces/{NAMESPACE}/services/{SERVICE}:45680/proxy"


@pytest.fixture
def controller(emulator: EmulatorThread) -> Iterator[FakeControllerServer]:
    """A controller behind the Service ``SERVICE`` port 45680, reachable only via the proxy."""
    with FakeControllerServer({"processed": 7}) as server:
        emulator.proxy_service_to(NAMESPACE, SERVICE, 45680, server.url)
        yield server


def proxy_requests(emulator: EmulatorThread) -> list[tuple[str, str, dict[str, str]]]:
    return [(r.method, r.path, r.query) for r in emulator.requests if "/proxy" in r.path]


# -- KubeApi.proxy_service ------------------------------------------------------------------


def test_get_reaches_the_controller_through_the_proxy(
    api: KubeApi, emulator: EmulatorThread, controller: FakeControllerServer
) -> None:
    assert api.proxy_service(SERVICE, 45680, "GET", "/analytics", timeout=5) == b'{"processed": 7}'
    assert proxy_requests(emulator) == [("GET", f"{PROXY}/analytics", {})]
    assert controller.seen() == [SeenRequest("GET", "/analytics", {})]


def test_post_passes_the_query_through(
    api: KubeApi, emulator: EmulatorThread, controller: FakeControllerServer
) -> None:
    reply = api.proxy_service(SERVICE, 45680, "POST", "/loglevel", params={"level": "debug"})
    assert reply == b'{"level": "debug"}'
    assert proxy_requests(emulator) == [("POST", f"{PROXY}/loglevel", {"level": "debug"})]
    assert controller.seen() == [SeenRequest("POST", "/loglevel", {"level": "debug"})]


def test_post_is_not_retried_when_the_controller_answers_500(
    api: KubeApi, emulator: EmulatorThread, controller: FakeControllerServer, sleeps: list[float]
) -> None:
    controller.scripted[("POST", "/pause")] = (500, {"error": "slicer crashed"})
    with pytest.raises(Transient, match=r'create services/proxy "svc-ts-exc-[^"]+" .*HTTP 500'):
        api.proxy_service(SERVICE, 45680, "POST", "/pause")
    assert controller.seen() == [SeenRequest("POST", "/pause", {})]
    assert proxy_requests(emulator) == [("POST", f"{PROXY}/pause", {})]
    assert sleeps == []


def test_post_is_not_retried_when_the_api_server_answers_503(
    api: KubeApi, emulator: EmulatorThread, controller: FakeControllerServer, sleeps: list[float]
) -> None:
    emulator.fail("POST", "/proxy/pause", 503)
    with pytest.raises(Transient, match="HTTP 503"):
        api.proxy_service(SERVICE, 45680, "POST", "/pause")
    assert len(proxy_requests(emulator)) == 1
    assert controller.seen() == []
    assert sleeps == []


def test_get_is_retried_like_every_read(
    api: KubeApi, emulator: EmulatorThread, controller: FakeControllerServer, sleeps: list[float]
) -> None:
    emulator.fail("GET", "/proxy/analytics", 503)
    assert api.proxy_service(SERVICE, 45680, "GET", "/analytics") == b'{"processed": 7}'
    assert len(proxy_requests(emulator)) == 2
    assert controller.seen() == [SeenRequest("GET", "/analytics", {})]
    assert sleeps == [0.5]


def test_forbidden_names_the_missing_grant(api: KubeApi, emulator: EmulatorThread) -> None:
    emulator.fail("POST", "/proxy/", 403)
    with pytest.raises(Exception, match=r'may not "create" "services/proxy" in namespace "ts-dev1"'):
        api.proxy_service(SERVICE, 45680, "POST", "/pause")


def test_only_get_and_post_are_proxied(api: KubeApi, emulator: EmulatorThread) -> None:
    with pytest.raises(ValueError, match="only used with GET or POST, not DELETE"):
        api.proxy_service(SERVICE, 45680, "DELETE", "/pause")
    assert emulator.requests == []


def test_unknown_service_is_not_found(api: KubeApi, emulator: EmulatorThread) -> None:
    with pytest.raises(NotFound, match=r'services "svc-gone" not found'):
        api.proxy_service("svc-gone", 45680, "GET", "/analytics")


# -- KubernetesBackend.call_controller ------------------------------------------------------


def controller_record(config: SysConfig, **fields: Any) -> dict[str, Any]:
    execution = make_execution(config)
    assert execution_names(execution).service == SERVICE
    return {**execution, "slicer_hostname": f"{SERVICE}.{NAMESPACE}", "slicer_port": 45680, **fields}


def test_backend_calls_the_service_named_by_slicer_hostname(
    backend: KubernetesBackend, config: SysConfig, emulator: EmulatorThread, controller: FakeControllerServer
) -> None:
    reply = backend.call_controller(controller_record(config), "POST", "/loglevel", {"level": "warn"}, 5)
    assert reply == {"level": "warn"}
    assert proxy_requests(emulator) == [("POST", f"{PROXY}/loglevel", {"level": "warn"})]


def test_backend_falls_back_to_the_rendered_service_name(
    backend: KubernetesBackend, config: SysConfig, controller: FakeControllerServer
) -> None:
    record = controller_record(config, slicer_hostname=None)
    assert backend.call_controller(record, "GET", "/analytics", {}, 5) == {"processed": 7}


def test_backend_error_names_the_route(
    backend: KubernetesBackend, config: SysConfig, emulator: EmulatorThread
) -> None:
    emulator.apply("v1/services", NAMESPACE, {"metadata": {"name": SERVICE}, "spec": {}})
    with pytest.raises(BackendError) as caught:
        backend.call_controller(controller_record(config), "POST", "/pause", {}, 5)
    ex_id = make_execution(config)["ex_id"]
    assert str(caught.value).startswith(
        f"POST /pause on the execution controller of {ex_id} through the API server's service proxy "
        f'(Service "{SERVICE}" port 45680 in namespace "ts-dev1") failed: create services/proxy '
        f'"{SERVICE}" in namespace "ts-dev1": HTTP 503 (no endpoints available for service "{SERVICE}")'
    )


def test_backend_makes_one_attempt_for_a_get(
    backend: KubernetesBackend, config: SysConfig, emulator: EmulatorThread, sleeps: list[float]
) -> None:
    """A starting controller has no ready endpoint (503): the master's next call is the retry."""
    emulator.apply("v1/services", NAMESPACE, {"metadata": {"name": SERVICE}, "spec": {}})
    with pytest.raises(BackendError, match="HTTP 503"):
        backend.call_controller(controller_record(config), "GET", "/analytics", {}, 5)
    assert proxy_requests(emulator) == [("GET", f"{PROXY}/analytics", {})]
    assert sleeps == []


def test_backend_rejects_a_non_object_answer(
    backend: KubernetesBackend, config: SysConfig, controller: FakeControllerServer
) -> None:
    controller.scripted[("GET", "/analytics")] = (200, [1, 2])
    with pytest.raises(BackendError, match="answered list, not an object"):
        backend.call_controller(controller_record(config), "GET", "/analytics", {}, 5)


# -- the master, outside the cluster --------------------------------------------------------


@pytest.fixture
def master(
    tmp_path: Path, config: SysConfig, backend: KubernetesBackend
) -> Iterator[tuple[MasterService, SqliteStore, ApiClient]]:
    """A master whose executions get the Service's cluster DNS name (``svc-...ts-dev1``), which
    does not resolve here: like a master run on a laptop against a remote cluster."""
    store = SqliteStore(tmp_path / "state.sqlite", synchronous="NORMAL")
    service = MasterService(
        store,
        backend,
        MasterSettings.from_config(config),
        job_validator(config),
        prepare=spec_preparer(config),
    )
    service.start()
    client = ApiClient(create_app(service))
    yield service, store, client
    client.close()
    service.allocator.close()
    service.lifecycle.close()
    service.stats.close()
    service.controllers.close()
    store.close()


def start_running(service: MasterService, store: SqliteStore, client: ApiClient) -> dict[str, Any]:
    spec = {
        "name": "example-data-generator-job",
        "workers": 2,
        "operations": [{"_op": "data_generator", "size": 100}, {"_op": "noop"}],
    }
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 200, response.text
    settle(service)
    ex = store.get_execution(response.json()["ex_id"])
    assert ex["_status"] == "initializing", ex
    store.set_status(ex["ex_id"], "running")  # what the controller would write
    return dict(ex)


def test_pause_and_resume_go_through_the_proxy_when_the_address_does_not_resolve(
    master: tuple[MasterService, SqliteStore, ApiClient],
    emulator: EmulatorThread,
    controller: FakeControllerServer,
) -> None:
    service, store, client = master
    ex = start_running(service, store, client)
    emulator.proxy_service_to(NAMESPACE, ex["slicer_hostname"].split(".")[0], 45680, controller.url)
    assert ex["slicer_hostname"].endswith(f".{NAMESPACE}")

    response = client.post(f"/v1/ex/{ex['ex_id']}/_pause")
    assert (response.status_code, response.json()) == (200, {"status": "paused"})
    assert store.get_execution(ex["ex_id"])["_status"] == "paused"
    assert service.controllers.route(ex) is Route.BACKEND
    response = client.post(f"/v1/ex/{ex['ex_id']}/_resume")
    assert (response.status_code, response.json()) == (200, {"status": "running"})
    assert controller.seen() == [SeenRequest("POST", "/pause", {}), SeenRequest("POST", "/resume", {})]
    service_name = ex["slicer_hostname"].split(".")[0]
    proxy = f"/api/v1/namespaces/{NAMESPACE}/services/{service_name}:45680/proxy"
    assert proxy_requests(emulator) == [("POST", f"{proxy}/pause", {}), ("POST", f"{proxy}/resume", {})]


def test_controllers_and_settings_go_through_the_proxy(
    master: tuple[MasterService, SqliteStore, ApiClient],
    emulator: EmulatorThread,
    controller: FakeControllerServer,
) -> None:
    service, store, client = master
    ex = start_running(service, store, client)
    emulator.proxy_service_to(NAMESPACE, ex["slicer_hostname"].split(".")[0], 45680, controller.url)
    controller.analytics = analytics_for(ex["ex_id"], ex["job_id"], ex["name"])

    response = client.get("/v1/cluster/controllers")
    assert response.status_code == 200, response.text
    assert response.json() == [controller.analytics]
    response = client.post(f"/v1/jobs/{ex['job_id']}/_settings", params={"log_level": "debug"})
    assert (response.status_code, response.json()) == (200, {"exId": ex["ex_id"], "level": "debug"})
    assert controller.seen() == [
        SeenRequest("GET", "/analytics", {}),
        SeenRequest("POST", "/loglevel", {"level": "debug"}),
    ]


def test_pause_is_not_available_when_the_proxy_cannot_reach_the_controller(
    master: tuple[MasterService, SqliteStore, ApiClient], emulator: EmulatorThread
) -> None:
    service, store, client = master
    ex = start_running(service, store, client)  # its Service exists, with no endpoint behind it
    response = client.post(f"/v1/ex/{ex['ex_id']}/_pause")
    assert response.status_code == 500
    assert response.json() == {"error": 500, "message": f"Execution {ex['ex_id']} is not available to pause"}
    assert store.get_execution(ex["ex_id"])["_status"] == "running"
    assert len(proxy_requests(emulator)) == 1

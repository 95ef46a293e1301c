"""Execution routes: /ex listing and get, _stop, _pause, _resume, _recover, _workers, errors,
controller stats and _settings, by execution and by job (latest execution)."""

from __future__ import annotations

from typing import Any

import pytest

from teraslice_k8s.backend.base import EventKind
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.base import ExFilter
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, FakeControllers, RecordingBackend, analytics_for, job_spec, settle


def start(client: ApiClient, service: MasterService, **overrides: Any) -> dict[str, str]:
    response = client.post("/v1/jobs", json=job_spec(**overrides))
    assert response.status_code == 200, response.text
    settle(service)
    ids: dict[str, str] = response.json()
    return ids


def running(
    client: ApiClient, service: MasterService, store: SqliteStore, **overrides: Any
) -> dict[str, str]:
    """A started execution that its (simulated) controller moved to ``running``."""
    ids = start(client, service, **overrides)
    store.set_status(ids["ex_id"], "running")
    return ids


def host_of(store: SqliteStore, ex_id: str) -> str:
    host: str = store.get_execution(ex_id)["slicer_hostname"]
    return host


# -- listing ------------------------------------------------------------------------------------


def test_list_and_get_executions(client: ApiClient, service: MasterService, store: SqliteStore) -> None:
    first = running(client, service, store, name="a")
    second = start(client, service, name="b")
    listed = client.get("/v1/ex", params={"sort": "_created:asc"}).json()
    assert [e["ex_id"] for e in listed] == [first["ex_id"], second["ex_id"]]
    only_running = client.get("/v1/ex", params={"status": "running"}).json()
    assert [e["ex_id"] for e in only_running] == [first["ex_id"]]
    both = client.get("/v1/ex", params={"status": "running,initializing"}).json()
    assert len(both) == 2
    assert len(client.get("/v1/ex", params={"status": "*"}).json()) == 2
    got = client.get(f"/ex/{first['ex_id']}").json()
    assert got == store.get_execution(first["ex_id"])
    assert client.get("/v1/ex/nope").json() == {"error": 404, "message": "Could not find execution nope"}


def test_list_executions_unknown_status_is_400(client: ApiClient) -> None:
    response = client.get("/v1/ex", params={"status": "runing"})
    assert response.json() == {"error": 400, "message": 'Invalid Job status: "runing"'}


# -- stop ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("by_job", [False, True])
def test_blocking_stop_waits_for_stopped(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend, by_job: bool
) -> None:
    ids = running(client, service, store)
    path = f"/v1/jobs/{ids['job_id']}/_stop" if by_job else f"/v1/ex/{ids['ex_id']}/_stop"
    response = client.post(path)
    assert response.json() == {"status": "stopped"}
    assert backend.calls_of("stop_execution") == [("stop_execution", ids["ex_id"], False)]
    assert store.get_execution(ids["ex_id"])["_status"] == "stopped"


def test_force_false_does_not_force(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    ids = running(client, service, store)
    client.post(f"/v1/ex/{ids['ex_id']}/_stop", params={"force": "false"})
    assert backend.calls_of("stop_execution") == [("stop_execution", ids["ex_id"], False)]


def test_force_stop(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    ids = running(client, service, store)
    response = client.post(f"/v1/ex/{ids['ex_id']}/_stop", params={"force": "true"})
    assert response.json() == {"message": f"Force stop complete for exId {ids['ex_id']}", "status": "stopped"}
    assert backend.calls_of("stop_execution") == [("stop_execution", ids["ex_id"], True)]


def test_non_blocking_stop_then_processes_go(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    backend.stop_removes = False  # pods take their grace period to go
    ids = running(client, service, store)
    response = client.post(f"/v1/ex/{ids['ex_id']}/_stop", params={"blocking": "false"})
    assert response.json() == {"status": "stopping"}
    settle(service)
    assert store.get_execution(ids["ex_id"])["_status"] == "stopping"
    backend.live.discard(ids["ex_id"])
    backend.emit(ids["ex_id"], EventKind.GONE)
    settle(service)
    assert store.get_execution(ids["ex_id"])["_status"] == "stopped"


def test_stop_of_terminal_execution_does_nothing(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    ids = running(client, service, store)
    store.set_status(ids["ex_id"], "completed")
    assert client.post(f"/v1/ex/{ids['ex_id']}/_stop").json() == {"status": "completed"}
    assert backend.calls_of("stop_execution") == []


def test_stop_unknown_is_404(client: ApiClient) -> None:
    assert client.post("/v1/ex/nope/_stop").json() == {
        "error": 404,
        "message": "Could not find execution nope",
    }
    assert client.post("/v1/jobs/nope/_stop").status_code == 404


def test_stop_bad_flag_is_400(client: ApiClient, service: MasterService, store: SqliteStore) -> None:
    ids = running(client, service, store)
    response = client.post(f"/v1/ex/{ids['ex_id']}/_stop", params={"force": "maybe"})
    assert response.json() == {"error": 400, "message": '"maybe" is not a boolean, use true or false'}
    assert store.get_execution(ids["ex_id"])["_status"] == "running"


# -- pause / resume -----------------------------------------------------------------------------


@pytest.mark.parametrize("by_job", [False, True])
def test_pause_and_resume(
    client: ApiClient,
    service: MasterService,
    store: SqliteStore,
    controllers: FakeControllers,
    by_job: bool,
) -> None:
    ids = running(client, service, store)
    host = host_of(store, ids["ex_id"])
    controllers.analytics[host] = analytics_for(ids["ex_id"], ids["job_id"], "generator")
    base = f"/v1/jobs/{ids['job_id']}" if by_job else f"/v1/ex/{ids['ex_id']}"
    assert client.post(f"{base}/_pause").json() == {"status": "paused"}
    assert store.get_execution(ids["ex_id"])["_status"] == "paused"
    assert client.post(f"{base}/_resume").json() == {"status": "running"}
    assert store.get_execution(ids["ex_id"])["_status"] == "running"
    assert [r[:3] for r in controllers.requests] == [("POST", host, "/pause"), ("POST", host, "/resume")]


def test_pause_unreachable_controller_is_500_and_keeps_status(
    client: ApiClient, service: MasterService, store: SqliteStore
) -> None:
    ids = running(client, service, store)
    response = client.post(f"/v1/ex/{ids['ex_id']}/_pause")
    assert response.json() == {"error": 500, "message": f"Execution {ids['ex_id']} is not available to pause"}
    assert store.get_execution(ids["ex_id"])["_status"] == "running"
    resumed = client.post(f"/v1/ex/{ids['ex_id']}/_resume")
    assert resumed.json()["message"] == f"Execution {ids['ex_id']} is not available to resume"


def test_pause_of_terminal_execution_is_404(
    client: ApiClient, service: MasterService, store: SqliteStore
) -> None:
    ids = running(client, service, store)
    store.set_status(ids["ex_id"], "completed")
    response = client.post(f"/v1/ex/{ids['ex_id']}/_pause")
    assert response.json() == {
        "error": 404,
        "message": f"no active execution context was found for ex_id: {ids['ex_id']}",
    }


def test_invalid_transition_is_refused_with_422(
    client: ApiClient, service: MasterService, store: SqliteStore, controllers: FakeControllers
) -> None:
    ids = running(client, service, store)
    controllers.analytics[host_of(store, ids["ex_id"])] = {}
    # The controller finishes the execution while the master asks it to pause.
    controllers.on_request = lambda _request: store.set_status(ids["ex_id"], "completed")
    response = client.post(f"/v1/ex/{ids['ex_id']}/_pause")
    assert response.json() == {
        "error": 422,
        "message": f"Unable to set execution {ids['ex_id']} status code to paused, caused by "
        'Cannot update terminal job status of "completed" to "paused"',
    }
    assert store.get_execution(ids["ex_id"])["_status"] == "completed"


# -- recover ------------------------------------------------------------------------------------


def test_recover_execution_copies_its_config(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    ids = running(client, service, store, workers=3)
    store.set_status(ids["ex_id"], "failed")
    backend.live.discard(ids["ex_id"])
    response = client.post(f"/v1/ex/{ids['ex_id']}/_recover", params={"cleanup_type": "errors"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["job_id"] == ids["job_id"] and body["ex_id"] != ids["ex_id"]
    settle(service)
    new = store.get_execution(body["ex_id"])
    assert new["recovered_execution"] == ids["ex_id"]
    assert new["recovered_slice_type"] == "errors"
    assert new["workers"] == 3
    assert new["_status"] == "initializing"
    assert new["_failureReason"] == "" and new["_slicer_stats"] == {}
    allocated = backend.calls_of("allocate_controller")[-1]
    assert allocated[1] == body["ex_id"] and allocated[2]["recovered_execution"] == ids["ex_id"]


def test_recover_job_uses_current_job_config(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    ids = running(client, service, store, workers=3)
    store.set_status(ids["ex_id"], "failed")
    backend.live.discard(ids["ex_id"])
    client.put(f"/v1/jobs/{ids['job_id']}", json=job_spec(workers=7))
    body = client.post(f"/v1/jobs/{ids['job_id']}/_recover", params={"cleanup": "pending"}).json()
    new = store.get_execution(body["ex_id"])
    assert new["workers"] == 7
    assert new["recovered_execution"] == ids["ex_id"] and new["recovered_slice_type"] == "pending"


def test_recover_refusals(client: ApiClient, service: MasterService, store: SqliteStore) -> None:
    ids = running(client, service, store)
    bad = client.post(f"/v1/ex/{ids['ex_id']}/_recover", params={"cleanup_type": "some"})
    assert bad.json() == {
        "error": 400,
        "message": "cleanup_type must be empty or set to all, errors, pending",
    }
    # Recovering while the job still runs would run two executions of one job at once.
    busy = client.post(f"/v1/ex/{ids['ex_id']}/_recover")
    assert busy.status_code == 409
    registered = client.post("/v1/jobs?start=false", json=job_spec()).json()["job_id"]
    missing = client.post(f"/v1/jobs/{registered}/_recover")
    assert missing.json() == {
        "error": 404,
        "message": f"Job {registered} is missing an execution to recover from",
    }
    assert client.post("/v1/ex/nope/_recover").status_code == 404
    count = store.count_executions(ExFilter(deleted=None))
    assert count == 1


# -- workers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [({"add": "2"}, "add", 4), ({"remove": "1"}, "remove", 1), ({"total": "5"}, "set", 5)],
)
def test_scale_workers(
    client: ApiClient,
    service: MasterService,
    store: SqliteStore,
    backend: RecordingBackend,
    case: tuple[dict[str, str], str, int],
) -> None:
    params, action, expected = case
    ids = running(client, service, store)
    response = client.post(f"/v1/ex/{ids['ex_id']}/_workers", params=params)
    count = next(iter(params.values()))
    assert response.json() == {"message": f"{count} workers have been {action} for execution: {ids['ex_id']}"}
    assert backend.calls_of("scale_workers") == [("scale_workers", ids["ex_id"], action, int(count))]
    assert backend.replicas[ids["ex_id"]] == expected
    assert store.get_execution(ids["ex_id"])["workers"] == expected


@pytest.mark.parametrize(
    "params", [{}, {"add": "0"}, {"remove": "-1"}, {"total": "x"}, {"add": "1", "remove": "1"}]
)
def test_scale_workers_bad_parameters(
    client: ApiClient,
    service: MasterService,
    store: SqliteStore,
    backend: RecordingBackend,
    params: dict[str, str],
) -> None:
    ids = running(client, service, store)
    response = client.post(f"/v1/jobs/{ids['job_id']}/_workers", params=params)
    assert response.json() == {
        "error": 400,
        "message": "Must provide a valid worker parameter(add/remove/total) "
        "that is a number and greater than zero",
    }
    assert backend.calls_of("scale_workers") == []


def test_scale_workers_of_terminal_execution_is_404(
    client: ApiClient, service: MasterService, store: SqliteStore
) -> None:
    ids = running(client, service, store)
    store.set_status(ids["ex_id"], "failed")
    response = client.post(f"/v1/ex/{ids['ex_id']}/_workers", params={"add": "1"})
    assert response.status_code == 404


# -- errors, controllers, settings -------------------------------------------------------------


def _slice(ex_id: str, n: int, state: str) -> dict[str, Any]:
    return {
        "slice_id": f"{ex_id[:8]}-{n}",
        "slicer_id": 0,
        "slicer_order": n,
        "request": '{"count":5}',
        "state": state,
        "ex_id": ex_id,
        **({"error": "Error: Uh-oh"} if state == "error" else {}),
    }


def test_errors_routes(client: ApiClient, service: MasterService, store: SqliteStore) -> None:
    ids = running(client, service, store)
    other = running(client, service, store, name="other")
    store.create_slices([_slice(ids["ex_id"], 1, "error"), _slice(ids["ex_id"], 2, "completed")])
    store.create_slices([_slice(other["ex_id"], 1, "error")])
    by_ex = client.get(f"/v1/ex/{ids['ex_id']}/errors").json()
    assert [(s["slice_id"], s["error"]) for s in by_ex] == [(f"{ids['ex_id'][:8]}-1", "Error: Uh-oh")]
    assert client.get(f"/v1/jobs/{ids['job_id']}/errors").json() == by_ex
    assert len(client.get("/v1/ex/errors").json()) == 2
    assert client.get("/v1/ex/nope/errors").status_code == 404


def test_controller_stats(
    client: ApiClient, service: MasterService, store: SqliteStore, controllers: FakeControllers
) -> None:
    ids = running(client, service, store)
    stats = analytics_for(ids["ex_id"], ids["job_id"], "generator")
    controllers.analytics[host_of(store, ids["ex_id"])] = stats
    assert client.get(f"/v1/ex/{ids['ex_id']}/controller").json() == [stats]
    assert client.get(f"/v1/jobs/{ids['job_id']}/slicer").json() == [stats]
    assert client.get("/v1/cluster/controllers").json() == [stats]
    assert client.get("/v1/cluster/stats").json() == {
        "controllers": {
            "processed": 40,
            "failed": 1,
            "queued": 3,
            "job_duration": 5,
            "workers_joined": 2,
            "workers_disconnected": 0,
            "workers_reconnected": 0,
        },
        "slicer": {
            "processed": 40,
            "failed": 1,
            "queued": 3,
            "job_duration": 5,
            "workers_joined": 2,
            "workers_disconnected": 0,
            "workers_reconnected": 0,
        },
    }


def test_controller_unreachable_is_404(client: ApiClient, service: MasterService, store: SqliteStore) -> None:
    ids = running(client, service, store)
    response = client.get(f"/v1/ex/{ids['ex_id']}/controller")
    assert response.json() == {
        "error": 404,
        "message": f"Could not find active slicer for ex_id: {ids['ex_id']}",
    }
    assert client.get("/v1/cluster/controllers").json() == []


def test_log_level_settings(
    client: ApiClient, service: MasterService, store: SqliteStore, controllers: FakeControllers
) -> None:
    ids = running(client, service, store)
    host = host_of(store, ids["ex_id"])
    controllers.analytics[host] = {}
    response = client.post(f"/v1/jobs/{ids['job_id']}/_settings", params={"log_level": "debug"})
    assert response.json() == {"exId": ids["ex_id"], "level": "debug"}
    assert controllers.requests == [("POST", host, "/loglevel", "level=debug")]
    bad = client.post(f"/v1/jobs/{ids['job_id']}/_settings", params={"log_level": "loud"})
    assert bad.json() == {
        "error": 400,
        "message": 'Invalid log level "loud", must be one of: trace, debug, info, warn, error, fatal',
    }

"""Job routes: POST/GET/PUT/DELETE /jobs, _start, _active/_inactive, /jobs/:id/ex, on SQLite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from teraslice_k8s.backend.base import EventKind
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.base import ExFilter, JobFilter
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, RecordingBackend, job_spec, settle

PREFIXES = ("", "/v1")


def submit(client: ApiClient, spec: dict[str, Any] | None = None, **params: str) -> dict[str, Any]:
    response = client.post("/v1/jobs", json=spec or job_spec(), params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("prefix", PREFIXES)
def test_submit_stores_the_posted_spec_and_starts_an_execution(
    client: ApiClient, store: SqliteStore, backend: RecordingBackend, service: MasterService, prefix: str
) -> None:
    response = client.post(f"{prefix}/jobs", json=job_spec())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"job_id", "ex_id"}
    # JSON is pretty-printed with 4 spaces, as Teraslice's express app does.
    assert response.text == json.dumps(body, indent=4)

    job = store.get_job(body["job_id"])
    # The job record is the posted spec verbatim plus metadata: no defaults filled in.
    assert {k: v for k, v in job.items() if not k.startswith("_") and k != "job_id"} == job_spec()
    assert job["_context"] == "job"
    assert job["_created"].endswith("Z")

    settle(service)
    ex = store.get_execution(body["ex_id"])
    # The execution is the validated config: defaults filled.
    assert ex["job_id"] == body["job_id"]
    assert ex["slicers"] == 1 and ex["max_retries"] == 3 and ex["analytics"] is True
    assert ex["_status"] == "initializing"
    assert ex["slicer_hostname"] == f"svc-{body['ex_id'][:8]}.default"
    assert ex["slicer_port"] == 45680
    assert ex["teraslice_version"] == "v3.18.0"
    assert ex["_has_errors"] is False and ex["_failureReason"] == "" and ex["_slicer_stats"] == {}
    assert ex["metadata"] == {}
    controller_call = backend.calls_of("allocate_controller")[0]
    assert controller_call[1] == body["ex_id"]
    assert controller_call[2]["_status"] == "pending"
    workers_call = backend.calls_of("allocate_workers")[0]
    assert workers_call[2]["slicer_hostname"] == ex["slicer_hostname"]
    assert workers_call[2]["workers"] == 2


def test_submit_with_start_false_only_stores_the_job(
    client: ApiClient, store: SqliteStore, backend: RecordingBackend
) -> None:
    body = submit(client, start="false")
    assert set(body) == {"job_id"}
    assert store.count_executions(ExFilter(deleted=None)) == 0
    assert backend.calls_of("allocate_controller") == []


def test_submit_start_anything_but_false_starts(client: ApiClient) -> None:
    assert "ex_id" in submit(client, start="no")


def test_invalid_job_is_rejected_with_every_field_and_nothing_stored(
    client: ApiClient, store: SqliteStore, backend: RecordingBackend
) -> None:
    spec = job_spec(workers=0, operations=[{"_op": "nope"}, {"_op": "noop"}], targets=[{"key": "zone"}])
    response = client.post("/v1/jobs", json=spec)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == 422
    assert body["problems"] == [
        "workers: must be >= 1",
        'operations[0]._op: unknown operation "nope"',
        "targets[0].value: is required",
    ]
    assert body["message"] == "; ".join(body["problems"])
    assert store.count_jobs(JobFilter()) == 0
    assert store.count_executions(ExFilter(deleted=None)) == 0
    assert backend.calls_of("allocate_controller") == []


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "No job was posted"),
        ([], 400, "No job was posted"),
        ({**job_spec(), "job_id": "x"}, 422, "Job cannot include a job_id on submit"),
    ],
)
def test_submit_bad_bodies(
    client: ApiClient, store: SqliteStore, body: Any, status: int, message: str
) -> None:
    response = client.post("/v1/jobs", json=body)
    assert (response.status_code, response.json()) == (status, {"error": status, "message": message})
    assert store.count_jobs(JobFilter()) == 0


def test_malformed_json_is_400(client: ApiClient) -> None:
    response = client.post("/v1/jobs", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": 400, "message": "the json submitted is malformed"}


def test_form_content_type_is_parsed_as_json(client: ApiClient, store: SqliteStore) -> None:
    # curl -d @job.json sends application/x-www-form-urlencoded; Teraslice parses it as JSON.
    response = client.post(
        "/v1/jobs?start=false",
        content=json.dumps(job_spec()).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert store.get_job(response.json()["job_id"])["name"] == "generator"


def test_other_content_type_is_415(client: ApiClient) -> None:
    response = client.post("/v1/jobs", content=b"name: x", headers={"content-type": "text/yaml"})
    assert response.status_code == 415
    assert (
        response.json()["message"] == "unsupported content type text/yaml, send the job as application/json"
    )


def test_submit_adds_the_metrics_port_when_prometheus_is_enabled(
    client: ApiClient, store: SqliteStore
) -> None:
    body = submit(client, job_spec(prom_metrics_enabled=True, prom_metrics_port=3333), start="false")
    assert store.get_job(body["job_id"])["external_ports"] == [{"name": "metrics", "port": 3333}]


def test_deprecation_warnings_are_returned(client: ApiClient) -> None:
    body = submit(client, job_spec(cpu=1), start="false")
    assert body["warnings"] == [
        {
            "type": "JobValidation",
            "reason": {
                "type": "jobProperty",
                "kind": "deprecation",
                "reason": {
                    "field": "cpu",
                    "description": (
                        '"cpu" on a job is deprecated and should use "resources_requests_cpu" instead'
                    ),
                },
            },
        }
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_get_job_and_unknown_job(client: ApiClient, prefix: str) -> None:
    job_id = submit(client, start="false")["job_id"]
    got = client.get(f"{prefix}/jobs/{job_id}")
    assert got.status_code == 200
    assert got.json()["job_id"] == job_id and got.json()["name"] == "generator"
    missing = client.get(f"{prefix}/jobs/nope")
    assert missing.status_code == 404
    assert missing.json() == {"error": 404, "message": "Could not find job nope"}


def test_list_jobs_filters_pages_and_sorts(client: ApiClient) -> None:
    ids = [submit(client, job_spec(name=f"job-{i}"), start="false")["job_id"] for i in range(5)]
    inactive = ids[0]
    assert client.post(f"/v1/jobs/{inactive}/_inactive").status_code == 200

    listed = client.get("/v1/jobs", params={"sort": "_created:asc"}).json()
    assert [j["job_id"] for j in listed] == ids
    page = client.get("/v1/jobs", params={"sort": "_created:asc", "size": 2, "from": 1}).json()
    assert [j["job_id"] for j in page] == ids[1:3]
    active = client.get("/v1/jobs", params={"active": "true", "sort": "_created:asc"}).json()
    assert [j["job_id"] for j in active] == ids[1:]
    not_active = client.get("/v1/jobs", params={"active": "false"}).json()
    assert [j["job_id"] for j in not_active] == [inactive]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"deleted": "maybe"}, "deleted query option must true or false"),
        ({"active": "yes"}, "active query option must be true or false"),
        ({"size": "ten"}, "size parameter must be a integer, got ten"),
        ({"from": "1.5"}, "from parameter must be a integer, got 1.5"),
        ({"filter": "name:x"}, "the filter query option (a Lucene query) is not supported by this master"),
    ],
)
def test_list_jobs_bad_options_are_400(client: ApiClient, params: dict[str, str], message: str) -> None:
    response = client.get("/v1/jobs", params=params)
    assert (response.status_code, response.json()) == (400, {"error": 400, "message": message})


def test_list_jobs_bad_sort_names_the_field(client: ApiClient) -> None:
    response = client.get("/v1/jobs", params={"sort": "name:sideways"})
    assert response.status_code == 400
    assert response.json()["problems"][0].startswith("sort: ")


def test_list_jobs_with_ex_fields(client: ApiClient, service: MasterService) -> None:
    started = submit(client)
    settle(service)
    registered = submit(client, start="false")
    jobs = {j["job_id"]: j for j in client.get("/v1/jobs", params={"ex": "_status,ex_id"}).json()}
    assert jobs[started["job_id"]]["ex"] == {"_status": "initializing", "ex_id": started["ex_id"]}
    assert jobs[registered["job_id"]]["ex"] == {}
    one = client.get(f"/v1/jobs/{started['job_id']}", params={"ex": "_status"}).json()
    assert one["ex"] == {"_status": "initializing"}


def test_update_replaces_the_job(client: ApiClient, store: SqliteStore) -> None:
    job_id = submit(client, job_spec(slicers=2), start="false")["job_id"]
    created = store.get_job(job_id)["_created"]
    response = client.put(f"/v1/jobs/{job_id}", json=job_spec(workers=5))
    assert response.status_code == 200
    stored = store.get_job(job_id)
    assert response.json() == stored
    assert stored["workers"] == 5
    assert "slicers" not in stored  # replaced, not merged
    assert stored["_created"] == created and stored["job_id"] == job_id


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "no data was provided to update job {id}"),
        ({**job_spec(), "job_id": "other"}, 406, "job.job_id doesn't match request id"),
    ],
)
def test_update_bad_bodies(client: ApiClient, body: Any, status: int, message: str) -> None:
    job_id = submit(client, start="false")["job_id"]
    response = client.put(f"/v1/jobs/{job_id}", json=body)
    assert response.json() == {"error": status, "message": message.format(id=job_id)}


def test_update_invalid_job_stores_nothing(client: ApiClient, store: SqliteStore) -> None:
    job_id = submit(client, start="false")["job_id"]
    before = store.get_job(job_id)
    response = client.put(f"/v1/jobs/{job_id}", json=job_spec(lifecycle="sometimes"))
    assert response.status_code == 422
    assert response.json()["problems"][0].startswith("lifecycle: ")
    assert store.get_job(job_id) == before


def test_update_unknown_and_deleted(client: ApiClient) -> None:
    assert client.put("/v1/jobs/nope", json=job_spec()).status_code == 404
    job_id = submit(client, start="false")["job_id"]
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 200
    response = client.put(f"/v1/jobs/{job_id}", json=job_spec())
    assert response.json() == {
        "error": 410,
        "message": f"Job {job_id} has been deleted and cannot be updated.",
    }


def test_active_and_inactive(client: ApiClient, store: SqliteStore) -> None:
    job_id = submit(client, start="false")["job_id"]
    assert client.post(f"/v1/jobs/{job_id}/_inactive").json()["active"] is False
    assert store.get_job(job_id)["active"] is False
    assert client.post(f"/v1/jobs/{job_id}/_active").json()["active"] is True
    assert store.get_job(job_id)["name"] == "generator"


def test_delete_soft_deletes_job_and_executions(
    client: ApiClient, store: SqliteStore, service: MasterService
) -> None:
    ids = submit(client)
    settle(service)
    # running execution -> refused
    refused = client.delete(f"/v1/jobs/{ids['job_id']}")
    assert refused.json() == {
        "error": 409,
        "message": f"Job {ids['job_id']} is currently running, cannot delete a running job.",
    }
    store.set_status(ids["ex_id"], "completed")
    response = client.delete(f"/v1/jobs/{ids['job_id']}")
    assert response.status_code == 200
    job = store.get_job(ids["job_id"])
    assert response.json() == job
    assert job["_deleted"] is True and job["active"] is False and job["_deleted_on"].endswith("Z")
    ex = store.get_execution(ids["ex_id"])
    assert ex["_deleted"] is True and ex["_status"] == "completed"
    # Deleted jobs leave the default listing and show with deleted=true.
    assert client.get("/v1/jobs").json() == []
    assert [j["job_id"] for j in client.get("/v1/jobs", params={"deleted": "true"}).json()] == [ids["job_id"]]
    again = client.delete(f"/v1/jobs/{ids['job_id']}")
    assert again.json() == {"error": 410, "message": f"Job {ids['job_id']} has already been deleted."}


def test_job_ex_latest_and_missing(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    job_id = submit(client, start="false")["job_id"]
    missing = client.get(f"/v1/jobs/{job_id}/ex")
    # teraslice-cli matches this exact text.
    assert missing.json() == {"error": 404, "message": f"No execution was found for job {job_id}"}
    first = client.post(f"/v1/jobs/{job_id}/_start").json()["ex_id"]
    settle(service)
    store.set_status(first, "completed")
    backend.emit(first, EventKind.CONTROLLER_SUCCEEDED)  # the master then removes its objects
    settle(service)
    assert backend.calls_of("stop_execution") == [("stop_execution", first, False)]
    second = client.post(f"/v1/jobs/{job_id}/_start").json()["ex_id"]
    assert client.get(f"/v1/jobs/{job_id}/ex").json()["ex_id"] == second
    assert client.get("/v1/jobs/nope/ex").status_code == 404


def test_start_refusals(client: ApiClient, service: MasterService, store: SqliteStore) -> None:
    ids = submit(client)
    settle(service)
    running = client.post(f"/v1/jobs/{ids['job_id']}/_start")
    assert running.json() == {
        "error": 409,
        "message": f"Job {ids['job_id']} is currently running, cannot have the same job concurrently running",
    }
    assert client.post("/v1/jobs/nope/_start").status_code == 404
    store.set_status(ids["ex_id"], "failed")
    # The failed execution's objects are still there: starting would collide with them.
    orphaned = client.post(f"/v1/jobs/{ids['job_id']}/_start")
    assert orphaned.status_code == 409
    assert orphaned.json()["message"] == (
        f"There are orphaned resources for job: {ids['job_id']}, exId: {ids['ex_id']}. "
        "Please wait for Kubernetes to clean up orphaned resources."
    )


def test_start_deleted_job_is_410(client: ApiClient) -> None:
    job_id = submit(client, start="false")["job_id"]
    client.delete(f"/v1/jobs/{job_id}")
    response = client.post(f"/v1/jobs/{job_id}/_start")
    assert response.json() == {
        "error": 410,
        "message": f"Job {job_id} has been deleted and cannot be started.",
    }


def test_start_with_autorecover_recovers_the_latest_execution(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    ids = submit(client, job_spec(autorecover=True))
    settle(service)
    store.set_status(ids["ex_id"], "failed")
    backend.live.discard(ids["ex_id"])
    started = client.post(f"/v1/jobs/{ids['job_id']}/_start").json()
    new = store.get_execution(started["ex_id"])
    assert (new["recovered_execution"], new["recovered_slice_type"]) == (ids["ex_id"], "pending")


def test_deactivating_skips_validation(client: ApiClient, store: SqliteStore) -> None:
    job_id = submit(client, start="false")["job_id"]
    # An invalid spec is accepted when the update only deactivates an active job (Teraslice's rule)...
    response = client.put(f"/v1/jobs/{job_id}", json=job_spec(workers=0, active=False))
    assert response.status_code == 200
    assert store.get_job(job_id)["active"] is False
    # ...but not when the job is already inactive.
    again = client.put(f"/v1/jobs/{job_id}", json=job_spec(workers=0, active=False))
    assert again.json() == {
        "error": 422,
        "message": "workers: must be >= 1",
        "problems": ["workers: must be >= 1"],
    }

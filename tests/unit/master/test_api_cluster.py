"""Cluster routes, unknown routes, the OpenAPI document, /txt tables and /metrics."""

from __future__ import annotations

import platform
from typing import Any

import pytest

from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, FakeControllers, RecordingBackend, analytics_for, job_spec, settle

K8S_STATE: dict[str, Any] = {
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
                "assignment": "execution_controller",
                "ex_id": "123456",
                "image": "ts:1",
                "job_id": "654321",
                "pod_name": "ts-exc-1",
                "pod_ip": "172.17.0.5",
                "worker_id": "ts-exc-1",
            },
            {
                "assets": [],
                "assignment": "worker",
                "ex_id": "123456",
                "image": "ts:1",
                "job_id": "654321",
                "pod_name": "ts-wkr-1",
                "pod_ip": "172.17.0.6",
                "worker_id": "ts-wkr-1",
            },
        ],
    }
}


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/"])
def test_root(client: ApiClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert body["clustering_type"] == "kubernetesV2"
    assert body["name"] == "testcluster"
    assert body["teraslice_version"] == "v3.18.0"
    assert body["node_version"] == "v22.12.0"
    assert body["platform"] == platform.system().lower()
    assert body["arch"] in ("x64", "arm64", platform.machine().lower())
    assert set(body) == {"arch", "clustering_type", "name", "node_version", "platform", "teraslice_version"}


def test_trailing_slash_is_the_same_route(client: ApiClient) -> None:
    response = client.get("/v1/jobs/")
    assert (response.status_code, response.json()) == (200, [])
    assert client.post("/v1/jobs/?start=false", json={}).json()["message"] == "No job was posted"


@pytest.mark.parametrize("prefix", ["", "/v1"])
def test_cluster_state_is_the_backends(client: ApiClient, backend: RecordingBackend, prefix: str) -> None:
    backend.state = K8S_STATE
    assert client.get(f"{prefix}/cluster/state").json() == K8S_STATE


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/v1/jobs/abc/_update"),
        ("DELETE", "/v1/ex/abc"),
        ("PUT", "/v1/ex/abc"),
        ("GET", "/v1/txt/jobs"),
        ("POST", "/v1/ex/abc/_start"),
        ("POST", "/v1/ex/abc/_settings"),
    ],
)
def test_unknown_routes_and_methods_are_405(client: ApiClient, method: str, path: str) -> None:
    response = client.request(method, path + "?x=1")
    assert response.status_code == 405
    assert response.json() == {"error": 405, "message": f"cannot {method} endpoint {path}?x=1"}


def test_openapi_document(client: ApiClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/jobs" in doc["paths"] and "post" in doc["paths"]["/v1/jobs"]
    assert "/v1/ex/{item_id}/_stop" in doc["paths"]
    assert "/txt/jobs" in doc["paths"]
    # Teraslice's own routes are not shadowed by the documentation routes.
    assert not any(p.startswith(("/openapi", "/docs")) for p in doc["paths"])


def test_txt_jobs_and_ex(client: ApiClient, service: MasterService, store: SqliteStore) -> None:
    ids = client.post("/v1/jobs", json=job_spec()).json()
    settle(service)
    job = store.get_job(ids["job_id"])
    ex = store.get_execution(ids["ex_id"])
    response = client.get("/txt/jobs")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text.splitlines() == [
        "job_id                                name       active  lifecycle  slicers  workers  "
        "_created                  _updated                ",
        "------------------------------------  ---------  ------  ---------  -------  -------  "
        "------------------------  ------------------------",
        f"{job['job_id']}  generator  N/A     once       N/A      2        "
        f"{job['_created']}  {job['_updated']}",
    ]
    text = client.get("/txt/ex", params={"fields": "ex_id,_status", "headers": "false"}).text
    assert text == f"{ex['ex_id']}  initializing\n"


def test_txt_empty_table(client: ApiClient) -> None:
    assert client.get("/txt/jobs", params={"fields": "job_id name"}).text == (
        "job_id  name\n------  ----\n" + " " * 12 + "\n"
    )


def test_txt_workers_and_nodes(client: ApiClient, backend: RecordingBackend) -> None:
    backend.state = K8S_STATE
    assert client.get("/txt/workers").text.splitlines() == [
        "assignment            job_id  ex_id   node_id         pod_name  image",
        "--------------------  ------  ------  --------------  --------  -----",
        "execution_controller  654321  123456  192.168.99.100  ts-exc-1  ts:1 ",
        "worker                654321  123456  192.168.99.100  ts-wkr-1  ts:1 ",
    ]
    assert client.get("/txt/workers", params={"from": "1", "size": "1", "headers": "false"}).text == (
        "worker  654321  123456  192.168.99.100  ts-wkr-1  ts:1\n"
    )
    assert client.get("/txt/nodes").text.splitlines() == [
        "node_id         state      hostname        total  active  pid  teraslice_version  node_version",
        "--------------  ---------  --------------  -----  ------  ---  -----------------  ------------",
        "192.168.99.100  connected  192.168.99.100  N/A    2       N/A  N/A                N/A         ",
    ]


def test_txt_controllers(
    client: ApiClient, service: MasterService, store: SqliteStore, controllers: FakeControllers
) -> None:
    ids = client.post("/v1/jobs", json=job_spec()).json()
    settle(service)
    store.set_status(ids["ex_id"], "running")
    host = store.get_execution(ids["ex_id"])["slicer_hostname"]
    controllers.analytics[host] = analytics_for(ids["ex_id"], ids["job_id"], "generator")
    assert client.get("/txt/controllers", params={"headers": "false"}).text == (
        f"generator  {ids['job_id']}  0  2  1  3  40\n"
    )


def test_metrics(client: ApiClient, service: MasterService) -> None:
    client.post("/v1/jobs", json=job_spec())
    client.post("/v1/jobs?start=false", json=job_spec())
    settle(service)
    response = client.get("/metrics")
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert 'teraslice_master_executions{status="initializing"} 1.0' in lines
    assert 'teraslice_master_executions{status="running"} 0.0' in lines
    assert "teraslice_master_jobs 2.0" in lines
    assert "teraslice_master_allocation_queue 0.0" in lines
    assert any(line.startswith("teraslice_master_info{") for line in lines)


def test_txt_workers_pages_by_the_listing_rules(client: ApiClient, backend: RecordingBackend) -> None:
    backend.state = K8S_STATE
    for path in ("/txt/workers", "/v1/jobs"):
        response = client.get(path, params={"size": "-1"})
        assert response.status_code == 400, path
        assert response.json()["message"] == "size: must be an integer from 0 to 10000", path


def test_head_answers_like_get_without_a_body(client: ApiClient) -> None:
    get = client.get("/v1/jobs")
    head = client.request("HEAD", "/v1/jobs")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]
    assert client.request("HEAD", "/v1/no-such-route").status_code == 405

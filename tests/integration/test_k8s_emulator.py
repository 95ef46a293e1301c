"""The emulator shim itself, driven by the official client's typed APIs (tooling.md §2's cases).

If these fail, every backend test is suspect: they pin the behaviours the backend relies on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from support.k8s_emulator import EmulatorThread, Requirement, parse_selector

NS = "ts-dev1"


@pytest.fixture
def apis(k8s_emulator: EmulatorThread) -> Iterator[tuple[Any, Any, Any]]:
    configuration = client.Configuration()
    configuration.host = k8s_emulator.url
    api_client = client.ApiClient(configuration)
    yield client.BatchV1Api(api_client), client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    api_client.close()


def job(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}}
        },
    }


def test_selector_parser() -> None:
    assert parse_selector("a=b,c==d,e!=f,g in (h, i),j notin (k),l,!m") == [
        Requirement("a", "=", frozenset({"b"})),
        Requirement("c", "=", frozenset({"d"})),
        Requirement("e", "!=", frozenset({"f"})),
        Requirement("g", "in", frozenset({"h", "i"})),
        Requirement("j", "notin", frozenset({"k"})),
        Requirement("l", "exists"),
        Requirement("m", "!exists"),
    ]
    with pytest.raises(ValueError, match="unparsable"):
        parse_selector("a=b,=c")


@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("app=teraslice", ["a", "b", "c"]),
        ("app=teraslice,exId=1", ["a"]),
        ("exId!=1", ["b", "c"]),
        ("exId in (1,2)", ["a", "b"]),
        ("exId notin (1,2)", ["c"]),
        ("extra", ["c"]),
        ("!extra", ["a", "b"]),
    ],
)
def test_label_selectors(apis: tuple[Any, Any, Any], selector: str, names: list[str]) -> None:
    batch, _, _ = apis
    batch.create_namespaced_job(NS, job("a", {"app": "teraslice", "exId": "1"}))
    batch.create_namespaced_job(NS, job("b", {"app": "teraslice", "exId": "2"}))
    batch.create_namespaced_job(NS, job("c", {"app": "teraslice", "exId": "3", "extra": ""}))
    batch.create_namespaced_job("elsewhere", job("d", {"app": "teraslice", "exId": "1"}))
    listing = batch.list_namespaced_job(NS, label_selector=selector)
    assert sorted(j.metadata.name for j in listing.items) == names


def test_server_metadata_and_list_fields(apis: tuple[Any, Any, Any], k8s_emulator: EmulatorThread) -> None:
    batch, _, _ = apis
    created = batch.create_namespaced_job(NS, job("a", {}))
    assert created.metadata.uid
    assert created.metadata.resource_version.isdigit()
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.generation == 1
    assert created.metadata.namespace == NS
    raw = k8s_emulator.requests[-1]
    assert raw.method == "POST"
    listing = batch.list_namespaced_job(NS, _preload_content=False)
    data = json.loads(listing.data)
    assert (data["kind"], data["apiVersion"]) == ("JobList", "batch/v1")
    assert int(data["metadata"]["resourceVersion"]) > int(created.metadata.resource_version)


def test_put_replaces_and_keeps_server_fields(apis: tuple[Any, Any, Any]) -> None:
    _, _, core = apis
    created = core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    replaced = core.replace_namespaced_config_map("cm", NS, {"metadata": {"name": "cm"}, "data": {"b": "2"}})
    assert replaced.data == {"b": "2"}
    assert replaced.metadata.uid == created.metadata.uid
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)


def test_status_reasons(apis: tuple[Any, Any, Any]) -> None:
    batch, _, _ = apis
    batch.create_namespaced_job(NS, job("a", {}))
    with pytest.raises(client.ApiException) as conflict:
        batch.create_namespaced_job(NS, job("a", {}))
    with pytest.raises(client.ApiException) as missing:
        batch.read_namespaced_job("zzz", NS)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "AlreadyExists"
    assert json.loads(conflict.value.body)["message"] == 'jobs.batch "a" already exists'
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["reason"] == "NotFound"


def test_filtered_watch_ends_at_timeout(apis: tuple[Any, Any, Any], k8s_emulator: EmulatorThread) -> None:
    batch, _, _ = apis
    batch.create_namespaced_job(NS, job("mine", {"exId": "1"}))
    batch.create_namespaced_job(NS, job("other", {"exId": "2"}))
    seen = [
        (event["type"], event["raw_object"]["metadata"]["name"])
        for event in watch.Watch().stream(
            batch.list_namespaced_job, NS, label_selector="exId=1", timeout_seconds=1
        )
    ]
    assert seen == [("ADDED", "mine")]


def test_watch_resumes_after_a_resource_version(
    apis: tuple[Any, Any, Any], k8s_emulator: EmulatorThread
) -> None:
    batch, _, _ = apis
    batch.create_namespaced_job(NS, job("before", {}))
    rv = batch.list_namespaced_job(NS).metadata.resource_version
    batch.create_namespaced_job(NS, job("after", {}))
    batch.delete_namespaced_job("before", NS)
    seen = [
        (event["type"], event["raw_object"]["metadata"]["name"])
        for event in watch.Watch().stream(
            batch.list_namespaced_job, NS, resource_version=rv, timeout_seconds=1
        )
    ]
    assert seen == [("ADDED", "after"), ("DELETED", "before")]


def test_version_endpoint(apis: tuple[Any, Any, Any], k8s_emulator: EmulatorThread) -> None:
    configuration = client.Configuration()
    configuration.host = k8s_emulator.url
    with client.ApiClient(configuration) as api_client:
        assert client.VersionApi(api_client).get_code().git_version == "v1.26.4+k3s1"


def test_faults_apply_to_the_next_matching_requests(
    apis: tuple[Any, Any, Any], k8s_emulator: EmulatorThread
) -> None:
    batch, _, _ = apis
    fault = k8s_emulator.fail("GET", "/jobs$", 503, times=2)
    for _ in range(2):
        with pytest.raises(client.ApiException) as info:
            batch.list_namespaced_job(NS)
        assert info.value.status == 503
    assert batch.list_namespaced_job(NS).items == []
    assert fault.served == 2


def test_kubeconfig_points_at_the_emulator(k8s_emulator: EmulatorThread, tmp_path: Any) -> None:
    from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, load_client_configuration

    path = k8s_emulator.write_kubeconfig(tmp_path / "kubeconfig")
    api = KubeApi(ApiSettings(namespace=NS), load_client_configuration(kubeconfig=str(path)))
    try:
        assert api.list(Kind.POD, "").items == []
    finally:
        api.close()
    assert k8s_emulator.requests[-1].path == f"/api/v1/namespaces/{NS}/pods"

"""open_store: the storage section of teraslice.yaml -> the store it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from es_emulator import Emulator, running_emulator

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.store.elasticsearch import ElasticsearchStore
from teraslice_k8s.store.factory import open_store
from teraslice_k8s.store.sqlite import SqliteStore


def config(storage: dict[str, Any], connectors: dict[str, Any] | None = None, **teraslice: Any) -> Any:
    return parse_config(
        {
            "teraslice": {"name": "factorytest", "storage": storage, **teraslice},
            "terafoundation": {"connectors": connectors or {}},
        }
    )


def test_sqlite_at_the_configured_path(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "state.sqlite"
    store = open_store(config({"type": "sqlite", "path": str(path)}))
    try:
        assert isinstance(store, SqliteStore) and store.path == path
        store.create_job({"job_id": "j1", "name": "x"})
    finally:
        store.close()
    assert path.is_file()


def test_sqlite_is_the_local_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(parse_config({"teraslice": {"cluster_manager_type": "local"}}))
    store.close()
    assert isinstance(store, SqliteStore) and (tmp_path / "teraslice-state.sqlite").is_file()


@pytest.fixture(scope="module")
def emulator() -> Any:
    with running_emulator() as served:
        yield served


# elasticsearch_next: the spelling of the Kubernetes clustering document.
@pytest.mark.parametrize("connector_type", ["elasticsearch-next", "elasticsearch_next", "elasticsearch"])
def test_elasticsearch_through_the_named_connector(
    emulator: tuple[str, Emulator], connector_type: str
) -> None:
    url, state = emulator
    host_port = url.removeprefix("http://")
    connectors = {
        connector_type: {"state": {"node": [host_port], "requestTimeout": "30 seconds", "maxRetries": 1}}
    }
    settings = {n: {"number_of_shards": 1, "number_of_replicas": 0} for n in ("jobs", "execution", "state")}
    cfg = config({"type": "elasticsearch", "connection": "state"}, connectors, index_settings=settings)
    store = open_store(cfg)
    try:
        assert isinstance(store, ElasticsearchStore)
        assert store.index_names == (
            "factorytest__jobs",
            "factorytest__ex",
            "factorytest__state",
            "factorytest__analytics",
        )
        store.create_job({"job_id": "j1", "name": "x"})
        assert store.get_job("j1")["name"] == "x"
    finally:
        store.close()
    for name in store.index_names:
        del state.indices[name]


@pytest.mark.parametrize(
    ("connectors", "problem"),
    [
        (
            {"elasticsearch-next": {"other": {"node": "http://x:9200"}}},
            Problem(
                "teraslice.storage.connection",
                'no "elasticsearch-next" or "elasticsearch" connector named "default" '
                "in terafoundation.connectors",
            ),
        ),
        (
            {"elasticsearch-next": {"default": {"auth": "user:pass"}}},
            Problem(
                "terafoundation.connectors.elasticsearch-next.default.auth",
                "must be a mapping with username and password",
            ),
        ),
        (
            {"elasticsearch": {"default": {"requestTimeout": "soon"}}},
            Problem(
                "terafoundation.connectors.elasticsearch.default.requestTimeout",
                'must be a duration: milliseconds or a string like "1 minute"',
            ),
        ),
        (
            {"elasticsearch-next": {"default": {"maxRetries": -1}}},
            Problem(
                "terafoundation.connectors.elasticsearch-next.default.maxRetries",
                "must be a non-negative integer",
            ),
        ),
        (
            {"elasticsearch-next": {"default": {"caCertificate": 5}}},
            Problem(
                "terafoundation.connectors.elasticsearch-next.default.caCertificate",
                "must be a PEM string or a list of PEM strings",
            ),
        ),
    ],
)
def test_bad_elasticsearch_connection_is_reported(connectors: dict[str, Any], problem: Problem) -> None:
    with pytest.raises(ValidationError) as caught:
        open_store(config({"type": "elasticsearch"}, connectors))
    assert caught.value.problems == (problem,)


def test_operations_and_the_store_read_connectors_by_the_same_rules() -> None:
    from teraslice_k8s.runtime.connectors import elasticsearch_client
    from teraslice_k8s.store.es_client import connector_options

    options = connector_options(
        "c",
        {
            "host": "es:9200",
            "auth": {"username": "a", "password": "b"},
            "username": "u",
            "password": "p",
            "caCertificate": ["-----A-----", "-----B-----"],
            "requestTimeout": "1 minute",
        },
    )
    assert options == {
        "nodes": "es:9200",
        "username": "u",  # explicit username/password win over auth
        "password": "p",
        "ca_certificate": "-----A-----\n-----B-----",
        "request_timeout": 60.0,
        "max_retries": 3,
    }
    with pytest.raises(ValidationError) as info:
        elasticsearch_client({"node": ["http://es:9200"], "auth": "a:b"}, "terafoundation.connectors.*.x")
    assert info.value.lines == [
        "terafoundation.connectors.*.x.auth: must be a mapping with username and password"
    ]
    with pytest.raises(ValidationError) as info:
        connector_options("c", {"node": 9200})
    assert info.value.lines == ["c.node: must be a URL or a list of URLs"]


@pytest.mark.parametrize(
    ("connector", "expected"),
    [
        # each of username/password falls back to auth's on its own; empty means unset
        ({"username": "u", "auth": {"username": "x", "password": "p"}}, {"username": "u", "password": "p"}),
        ({"password": "pw", "auth": {"username": "x", "password": "p"}}, {"username": "x", "password": "pw"}),
        ({"username": "", "password": ""}, {}),
        # an empty node falls back to host, then to the default
        ({"node": [], "host": ["es:9200"]}, {"nodes": ["es:9200"]}),
        ({"node": ""}, {"nodes": "http://127.0.0.1:9200"}),
    ],
)
def test_connector_settings_fall_back_key_by_key(connector: dict[str, Any], expected: dict[str, Any]) -> None:
    from teraslice_k8s.store.es_client import connector_options

    options = connector_options("c", connector)
    assert {k: options[k] for k in ("nodes", "username", "password") if k in options} == {
        "nodes": expected.pop("nodes", "http://127.0.0.1:9200"),
        **expected,
    }

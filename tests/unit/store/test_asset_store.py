"""The asset store contract on SQLite, on the Elasticsearch emulator, and with zips in S3
(moto's server mode over loopback), plus the factory's choices."""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from es_emulator import Emulator, running_emulator
from moto.server import ThreadedMotoServer

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.store.assets import AssetStore
from teraslice_k8s.store.base import Page, RecordExists, RecordNotFound
from teraslice_k8s.store.es_assets import ElasticsearchAssetIndex
from teraslice_k8s.store.es_client import make_client
from teraslice_k8s.store.factory import open_asset_store
from teraslice_k8s.store.s3_blobs import S3Blobs
from teraslice_k8s.store.sqlite_assets import SqliteAssetIndex

SMALL = {"assets": {"number_of_shards": 1, "number_of_replicas": 0}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, Emulator]]:
    with running_emulator() as served:
        yield served


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_settings(url: str) -> dict[str, Any]:
    return {
        "endpoint": url,
        "accessKeyId": "test",
        "secretAccessKey": "test",
        "region": "us-east-1",
        "forcePathStyle": True,
    }


@pytest.fixture(params=["sqlite", "elasticsearch", "sqlite+s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, emulator: tuple[str, Emulator], s3_url: str
) -> Iterator[AssetStore]:
    if request.param == "elasticsearch":
        index: Any = ElasticsearchAssetIndex(
            make_client(emulator[0]), f"a{uuid.uuid4().hex[:10]}", index_settings=SMALL, close_client=True
        )
    else:
        index = SqliteAssetIndex(tmp_path / "state.sqlite")
    blobs = S3Blobs(s3_settings(s3_url), f"b-{uuid.uuid4().hex[:10]}") if "s3" in request.param else None
    opened = AssetStore(index, blobs)
    yield opened
    opened.close()


def record(asset_id: str, name: str = "a", version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    return {"id": asset_id, "name": name, "version": version, **extra}


def test_save_get_zip_and_exists(store: AssetStore) -> None:
    stored = store.save(record("1" * 40, description="d", node_version=22), b"PK\x03\x04zip")
    assert set(stored) == {"id", "name", "version", "description", "node_version", "_created"}
    assert store.get("1" * 40) == stored  # never the blob
    assert store.get_zip("1" * 40) == b"PK\x03\x04zip"
    assert store.exists("1" * 40) is True
    assert store.exists("2" * 40) is False
    with pytest.raises(RecordExists):
        store.save(record("1" * 40), b"other")
    with pytest.raises(RecordNotFound) as caught:
        store.get("2" * 40)
    assert str(caught.value) == f"Could not find asset {'2' * 40}"
    with pytest.raises(RecordNotFound):
        store.get_zip("2" * 40)


def test_blob_is_base64_in_the_record_unless_external(store: AssetStore) -> None:
    store.save(record("1" * 40), b"\x00\x01zip")
    raw = store.index.get("1" * 40, with_blob=True)
    if store.external:
        assert "blob" not in raw
        assert store.blobs is not None and store.blobs.ids() == {"1" * 40}
    else:
        assert raw["blob"] == base64.b64encode(b"\x00\x01zip").decode()


def test_count_matches_every_given_field_exactly(store: AssetStore) -> None:
    store.save(record("1" * 40, node_version=22, platform="linux"), b"z1")
    store.save(record("2" * 40, version="1.1.0"), b"z2")
    assert store.count({"name": "a", "version": "1.0.0"}) == 1
    assert store.count({"name": "a", "version": "1.0.0", "node_version": 22, "platform": "linux"}) == 1
    assert store.count({"name": "a", "version": "1.0.0", "platform": "darwin"}) == 0
    assert store.count({"name": "a"}) == 2
    assert store.count({"id": "2" * 40}) == 1


def test_search_newest_first_by_name_and_version(store: AssetStore) -> None:
    for index, (name, version) in enumerate([("a", "1.0.0"), ("b", "1.0.0"), ("a", "2.0.0")]):
        store.save(record(str(index + 1) * 40, name, version, description="x" * 3), b"z")
    assert [i["id"] for i in store.search(None, None)] == ["3" * 40, "2" * 40, "1" * 40]
    assert [i["id"] for i in store.search("a", None)] == ["3" * 40, "1" * 40]
    items = store.search("a", "1.0.0")
    expected: dict[str, Any] = {
        "_created": items[0]["_created"],
        "name": "a",
        "version": "1.0.0",
        "description": "xxx",
        "id": "1" * 40,
    }
    if store.external:
        expected["external_storage"] = "available"
    assert items == [expected]
    assert [i["id"] for i in store.search(None, None, Page(size=1, from_=1, sort="_created:asc"))] == [
        "2" * 40
    ]
    assert [r["id"] for r in store.records_named("a")] == ["3" * 40, "1" * 40]


def test_delete(store: AssetStore) -> None:
    store.save(record("1" * 40), b"z")
    assert store.delete("1" * 40) is True
    assert store.delete("1" * 40) is False
    assert store.search(None, None) == []
    assert store.exists("1" * 40) is False


def test_external_storage_reports_missing_zips(tmp_path: Path, s3_url: str) -> None:
    blobs = S3Blobs(s3_settings(s3_url), "missing-zips")
    with_s3 = AssetStore(SqliteAssetIndex(tmp_path / "s.sqlite"), blobs)
    with_s3.save(record("1" * 40), b"z")
    blobs.delete("1" * 40)
    assert [i["external_storage"] for i in with_s3.search(None, None)] == ["missing"]
    assert with_s3.exists("1" * 40) is False
    with_s3.close()


def test_factory_sqlite_and_s3(tmp_path: Path, s3_url: str) -> None:
    config = parse_config(
        {
            "teraslice": {
                "name": "my_cluster",
                "storage": {"path": str(tmp_path / "state" / "s.sqlite")},
                "asset_storage_connection_type": "s3",
                "asset_storage_connection": "minio",
            },
            "terafoundation": {"connectors": {"s3": {"minio": s3_settings(s3_url)}}},
        }
    )
    opened = open_asset_store(config)
    assert isinstance(opened.index, SqliteAssetIndex)
    assert isinstance(opened.blobs, S3Blobs) and opened.blobs.bucket == "ts-assets-my-cluster"
    opened.save(record("1" * 40), b"z")
    opened.close()
    reopened = open_asset_store(config)
    assert reopened.get_zip("1" * 40) == b"z"
    reopened.close()


def test_factory_refuses_a_missing_s3_connector(tmp_path: Path) -> None:
    config = parse_config(
        {
            "teraslice": {
                "storage": {"path": str(tmp_path / "s.sqlite")},
                "asset_storage_connection_type": "s3",
            }
        }
    )
    with pytest.raises(ValidationError) as caught:
        open_asset_store(config)
    assert caught.value.problems == (
        Problem(
            "teraslice.asset_storage_connection",
            'no "s3" connector named "default" in terafoundation.connectors',
        ),
    )


def test_elasticsearch_index_has_teraslice_mapping(emulator: tuple[str, Emulator]) -> None:
    url, state = emulator
    ElasticsearchAssetIndex(make_client(url), "mapped", index_settings=SMALL, close_client=True).close()
    assert state.indices["mapped__assets"].mappings == {
        "dynamic": False,
        "properties": {
            "name": {"type": "keyword"},
            "version": {"type": "keyword"},
            "id": {"type": "keyword"},
            "description": {"type": "keyword"},
            "arch": {"type": "keyword"},
            "platform": {"type": "keyword"},
            "python_version": {"type": "keyword"},
            "node_version": {"type": "integer"},
            "blob": {"type": "binary"},
            "_created": {"type": "date"},
        },
    }

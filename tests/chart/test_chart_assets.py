"""The worker ConfigMap gives execution controller and worker pods what loading assets needs
(issue 11): the master's asset store (the state storage connection, Elasticsearch index
``<cluster>__assets``; S3 with ``asset_storage_connection_type: s3``), with every credential it
references available to job pods.

Proved for real: the teraslice.yaml of the rendered master ConfigMap stores an asset (in the
Elasticsearch emulator and moto's S3 server, both on loopback), and the rendered worker
ConfigMap's teraslice.yaml, parsed as a pod parses it (``${NAME}`` from the environment the
pod gets), loads it with ``runtime.assets.load_execution_assets``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.models.asset import asset_id, inspect_bundle
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.runtime import assets as runtime_assets
from teraslice_k8s.runtime.operations import asset_ops
from teraslice_k8s.store.factory import open_asset_store
from unit.store.es_emulator import running_emulator

from .helm_render import ROOT, render

EXAMPLE = ROOT / "examples" / "assets" / "example"
#: What the job pods' env holds (Secret-backed entries: the chart's ES credentials and secretEnv).
POD_ENV = {
    "TERASLICE_ES_USERNAME": "elastic",
    "TERASLICE_ES_PASSWORD": "es-pass",
    "S3_KEY": "test",
    "S3_SECRET": "test",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def es_url() -> Iterator[str]:
    """A fresh Elasticsearch (emulator) per case: nothing stored yet."""
    with running_emulator() as (url, _emulator):
        yield url


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def values(es_url: str, s3_url: str | None) -> dict[str, Any]:
    """An external Elasticsearch with credentials; with ``s3_url``, zips in S3 (credentials from
    a Secret through secretEnv, as values.yaml documents)."""
    out: dict[str, Any] = {
        "elasticsearch": {
            "enabled": False,
            "external": {"nodes": [es_url]},
            "auth": {"existingSecret": "es-credentials"},
        },
    }
    if s3_url:
        out["teraslice"] = {
            "asset_storage_connection_type": "s3",
            "asset_storage_connection": "minio",
            "asset_storage_bucket": "ts-chart-assets",
        }
        out["terafoundation"] = {
            "connectors": {
                "s3": {
                    "minio": {
                        "endpoint": s3_url,
                        "accessKeyId": "${S3_KEY}",
                        "secretAccessKey": "${S3_SECRET}",
                        "region": "us-east-1",
                        "forcePathStyle": True,
                    }
                }
            }
        }
        out["secretEnv"] = [
            {"name": "S3_KEY", "secretName": "s3", "key": "key"},
            {"name": "S3_SECRET", "secretName": "s3", "key": "secret"},
        ]
    return out


@pytest.mark.parametrize("storage", ["elasticsearch", "s3"])
def test_worker_configmap_loads_what_the_master_stored(
    storage: str, es_url: str, s3_url: str, tmp_path: Path
) -> None:
    rendered = render(values=values(es_url, s3_url if storage == "s3" else None))
    master_doc = rendered.config("ts-teraslice-master")
    worker_doc = rendered.config("ts-teraslice-worker")

    # Every ${NAME} the worker config references is a Secret-backed env var of the job pods.
    referenced = set(re.findall(r"\$\{(\w+)\}", repr(worker_doc)))
    assert referenced == (
        {"TERASLICE_ES_USERNAME", "TERASLICE_ES_PASSWORD"}
        | ({"S3_KEY", "S3_SECRET"} if storage == "s3" else set())
    )
    assert referenced == set(worker_doc["teraslice"]["kubernetes_env_secret_refs"])

    master = parse_config(master_doc, environ=POD_ENV)
    # The pod's assets volume is mounted at assets_directory; here a temporary directory.
    worker_doc["teraslice"]["assets_directory"] = str(tmp_path / "assets")
    worker = parse_config(worker_doc, environ=POD_ENV)
    assert worker.teraslice.master is False

    name, data = build_bundle(EXAMPLE)
    new_id = asset_id(data)
    store = open_asset_store(master)
    try:
        store.save(inspect_bundle(data), data)
    finally:
        store.close()

    asset_ops._loaded.clear()  # as in a fresh pod process
    try:
        loaded = runtime_assets.load_execution_assets(worker, {"ex_id": "e", "assets": [new_id]})
    finally:
        asset_ops.activate([])
    assert [(a.id, a.name, sorted(a.operations)) for a in loaded] == [
        (new_id, "example", ["counter", "uppercase"])
    ]
    assert (tmp_path / "assets" / new_id / "asset.json").is_file(), name

"""End to end on the local backend: the standard asset as users get it (the bundle built from
assets/standard by ``teraslice-k8s assets build`` and autoloaded by the master), and a job
file as Teraslice users write it (``"assets": ["standard"]``, data_generator -> add_key ->
dedupe -> field_router -> routed_sender) run by real controller and worker processes into the
Elasticsearch emulator: the exact documents land in the right indices, keyed by ``_key``."""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.local_master import wait_for
from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.models.asset import asset_id
from teraslice_k8s.models.config import load_config

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "store"))
from es_emulator import Emulator, running_emulator

pytestmark = pytest.mark.slow

BUNDLE = Path(__file__).parents[2] / "assets" / "standard"

JOB: dict[str, Any] = {
    "name": "standard-chain",
    "lifecycle": "once",
    "workers": 2,
    "assets": ["standard"],
    "apis": [{"_name": "elasticsearch_sender_api", "index": "gen", "size": 50}],
    "operations": [
        # stress_test: each slice is one generated record repeated; seeded: reproducible.
        {"_op": "data_generator", "size": 400, "slice_size": 100, "stress_test": True, "seed": 11},
        {"_op": "add_key"},
        {"_op": "dedupe"},
        {"_op": "field_router", "fields": ["bytes"]},
        {"_op": "routed_sender", "_api_name": "elasticsearch_sender_api", "routing": {"**": "default"}},
    ],
}


@contextmanager
def master_with_standard(tmp_path: Path, es_url: str) -> Iterator[str]:
    autoload = tmp_path / "autoload"
    autoload.mkdir()
    name, data = build_bundle(BUNDLE)
    (autoload / name).write_bytes(data)
    config = {
        "terafoundation": {"connectors": {"elasticsearch-next": {"default": {"node": [es_url]}}}},
        "teraslice": {
            "name": "standardtest",
            "cluster_manager_type": "local",
            "shutdown_timeout": 10_000,
            "storage": {"type": "sqlite", "path": str(tmp_path / "state.sqlite")},
            "autoload_directory": str(autoload),
            "assets_directory": str(tmp_path / "assets"),
        },
    }
    path = tmp_path / "teraslice.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    service = build_service(load_config(path), config_path=path)
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
    service.start()
    try:
        yield server.start()
    finally:
        server.stop()
        service.close()


def expected_key(doc: dict[str, Any]) -> str:
    """add_key's default key, computed here from its definition: every top-level field but
    ``_key`` in code-unit order, values as JavaScript strings, md5, URL-safe base64 unpadded."""
    text = "".join(str(doc[k]) for k in sorted(doc) if k != "_key")
    return base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).decode().rstrip("=")


def documents(emulator: Emulator) -> dict[str, dict[str, Any]]:
    return {name: {i: s for i, (s, _q) in index.docs.items()} for name, index in emulator.indices.items()}


def test_a_teraslice_job_file_using_the_standard_asset_runs_unchanged(tmp_path: Path) -> None:
    with running_emulator() as (es_url, emulator), master_with_standard(tmp_path, es_url) as url:
        listed = httpx.get(f"{url}/v1/assets/standard").json()
        assert [(a["name"], a["version"]) for a in listed] == [("standard", "2.1.2")]
        bundle_id = listed[0]["id"]
        assert bundle_id == asset_id(build_bundle(BUNDLE)[1])

        response = httpx.post(f"{url}/v1/jobs", json=JOB, params={"start": "true"}, timeout=30)
        assert response.status_code in (200, 201), response.text
        job_id = response.json()["job_id"]
        ex = wait_for(
            lambda: (
                (r := httpx.get(f"{url}/v1/jobs/{job_id}/ex").json())["_status"] in ("completed", "failed")
                and r
            ),
            "the execution to finish",
            timeout=120,
        )
        assert ex["_status"] == "completed", ex
        assert ex["assets"] == [bundle_id]
        assert ex["_slicer_stats"]["processed"] == 4
        found = documents(emulator)

    # Four slices of one repeated record: dedupe leaves one per slice, each routed by its bytes.
    assert sum(len(docs) for docs in found.values()) == 4
    for index, docs in found.items():
        for doc_id, doc in docs.items():
            assert index == f"gen-bytes_{doc['bytes']}"
            assert doc_id == doc["_key"] == expected_key(doc)
            assert set(doc) == {
                "ip",
                "userAgent",
                "url",
                "uuid",
                "created",
                "ipv6",
                "location",
                "bytes",
                "_key",
            }


def test_a_job_naming_a_ts_transforms_operation_is_refused_at_submit(tmp_path: Path) -> None:
    with running_emulator() as (es_url, _emulator), master_with_standard(tmp_path, es_url) as url:
        job = {
            "name": "transform",
            "assets": ["standard:2.1.x"],
            "operations": [{"_op": "data_generator"}, {"_op": "transform", "rules": ["standard:rules.txt"]}],
        }
        response = httpx.post(f"{url}/v1/jobs", json=job, timeout=30)
        assert response.status_code == 422, response.text
        assert (
            "transform is a ts-transforms operation of the standard asset, which is not implemented yet"
            in response.json()["message"]
        )
        unknown = httpx.post(
            f"{url}/v1/jobs", json={**job, "operations": [{"_op": "data_generator"}, {"_op": "nope"}]}
        )
        assert unknown.status_code == 422

"""The standard asset on the real control plane (issue 17): a Teraslice job file as users write
it (``"assets": ["standard"]``, data_generator -> add_key -> dedupe -> field_router ->
routed_sender) submitted to a master whose autoload directory holds the bundle built from
``assets/standard`` (as the image's ``/app/autoload`` does), run by execution controller and
worker pods that load the asset from the store, and writing into the stack's Elasticsearch:
exactly the expected documents, in exactly the expected indices.

The pods' assets directory follows ``test_real_assets.py`` (``${ASSETS_DIR}``, the mount path
of their assets volume). The generator is seeded with dated records (``utcBetween``), so the
records of every slice are known in advance: each slice is one record repeated
(``stress_test``), which dedupe reduces to one document keyed by add_key's hash.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.k8s_real import REPO, Cluster, wait_until
from support.k8s_stack import InProcessMaster, Stack, assets_stack, master_in_process, objects_left
from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.models.asset import asset_id
from teraslice_k8s.runtime.operations.base import OpContext
from teraslice_k8s.runtime.operations.data_generator import DataGenerator, DataGeneratorOptions

pytestmark = pytest.mark.cluster

#: Bound (seconds) on each condition: pod start-up and the cluster's own pace, never a sleep.
WAIT = 120.0
TERMINAL = {"completed", "failed", "stopped", "terminated", "rejected"}
BUNDLE = REPO / "assets" / "standard"
GENERATOR: dict[str, Any] = {
    "_op": "data_generator",
    "size": 400,
    "slice_size": 100,
    "stress_test": True,
    "seed": 11,
    "format": "utcBetween",
    "start": "2024-01-01T00:00:00.000Z",
    "end": "2024-01-02T00:00:00.000Z",
}
JOB: dict[str, Any] = {
    "name": "standard-chain",
    "lifecycle": "once",
    "workers": 2,
    "assets": ["standard"],
    "apis": [{"_name": "elasticsearch_sender_api", "index": "gen", "size": 50}],
    "operations": [
        GENERATOR,
        {"_op": "add_key"},
        {"_op": "dedupe"},
        {"_op": "field_router", "fields": ["bytes"]},
        {"_op": "routed_sender", "_api_name": "elasticsearch_sender_api", "routing": {"**": "default"}},
    ],
}


@pytest.fixture(scope="module")
def mount_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``assets_directory`` of the master, and the pods' mount path of the assets volume."""
    return str(tmp_path_factory.mktemp("assets-mount") / "assets")


@pytest.fixture(scope="module")
def s(k8s_cluster: Cluster, mount_path: str) -> Iterator[Stack]:
    with assets_stack(k8s_cluster, "ts-standard", mount_path) as st:
        yield st


@pytest.fixture(scope="module")
def autoload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An autoload directory holding the standard bundle; (directory, its asset id)."""
    directory = tmp_path_factory.mktemp("autoload")
    name, data = build_bundle(BUNDLE)
    (directory / name).write_bytes(data)
    return directory, asset_id(data)


def expected_key(doc: dict[str, Any]) -> str:
    """add_key's default key, from its definition: every top-level field but ``_key`` in
    code-unit order, values as JavaScript strings, md5, URL-safe base64 unpadded."""
    text = "".join(str(doc[k]) for k in sorted(doc) if k != "_key")
    return base64.urlsafe_b64encode(hashlib.md5(text.encode()).digest()).decode().rstrip("=")


def expected_documents() -> dict[str, dict[str, dict[str, Any]]]:
    """index -> id -> source: each slice's record (the reader's, as a worker fetches it) with
    its ``_key``, in ``gen-bytes_<bytes>`` (field_router's route after the API's index)."""
    reader = DataGenerator(OpContext(JOB), DataGeneratorOptions.model_validate(GENERATOR))
    expected: dict[str, dict[str, dict[str, Any]]] = {}
    for processed in range(0, 400, 100):
        batch = asyncio.run(reader.fetch({"count": 100, "processed": processed}))
        assert len(batch) == 100 and all(r == batch[0] for r in batch)  # one record repeated
        doc = {**batch[0], "_key": expected_key(batch[0])}
        expected.setdefault(f"gen-bytes_{doc['bytes']}", {})[doc["_key"]] = doc
    return expected


def written_documents(s: Stack) -> dict[str, dict[str, dict[str, Any]]]:
    """Every document of every ``gen-*`` index of the stack's Elasticsearch."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in s.es("GET", "/_cat/indices?format=json"):
        index = entry["index"]
        if not index.startswith("gen-"):
            continue
        s.es("POST", f"/{index}/_refresh")
        hits = s.es("POST", f"/{index}/_search", {"query": {"match_all": {}}, "size": 1000})["hits"]["hits"]
        found[index] = {hit["_id"]: hit["_source"] for hit in hits}
    return found


def test_a_teraslice_job_file_using_the_standard_asset_runs_on_the_real_control_plane(
    s: Stack, mount_path: str, autoload: tuple[Path, str]
) -> None:
    directory, standard_id = autoload
    with master_in_process(s, assets_directory=mount_path, autoload_directory=str(directory)) as master:
        listed = master.http.get("/v1/assets/standard").json()
        assert [(a["name"], a["version"], a["id"]) for a in listed] == [("standard", "2.1.2", standard_id)]
        ex_id = submit(master, JOB)
        ex = wait_until(lambda: finished(master, ex_id), WAIT, f"execution {ex_id} to finish")
        assert ex["_status"] == "completed", ex.get("_failureReason")
        assert ex["assets"] == [standard_id]
        stats = ex["_slicer_stats"]
        assert (stats["processed"], stats["failed"], stats["records"]) == (4, 0, 400)
        assert master.http.get(f"/v1/ex/{ex_id}/errors").json() == []
        wait_until(lambda: objects_left(s.api, ex_id) == [], WAIT, f"no object of {ex_id} left")
    expected = expected_documents()
    assert sum(len(docs) for docs in expected.values()) == 4
    assert written_documents(s) == expected


def submit(master: InProcessMaster, job: dict[str, Any]) -> str:
    response = master.http.post("/v1/jobs", json=job)
    assert response.status_code == 200, response.text
    ex_id: str = response.json()["ex_id"]
    return ex_id


def finished(master: InProcessMaster, ex_id: str) -> dict[str, Any] | None:
    response = master.http.get(f"/v1/ex/{ex_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    return record if record["_status"] in TERMINAL else None

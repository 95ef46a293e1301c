"""Assets for real (issue 11): the example asset, built with ``teraslice-k8s assets build`` and
uploaded to the master, is loaded by the execution controller and worker pods from the store
(the stack's Elasticsearch, ``<cluster>__assets``) into their assets volume and runs there, on
the real control plane; once with the default ``emptyDir`` and once with a PVC shared by every
pod (``assets_volume``).

Where the pods are local processes (the process kubelet), an in-container path only reaches a
volume through the pod's ``rootfs`` view, which the kubelet substitutes in env values, not
inside the config file. So the worker ConfigMap says ``assets_directory: ${ASSETS_DIR}`` and
the cluster's ``env_vars`` set ``ASSETS_DIR`` to the mount path (the config loader substitutes
``${NAME}``, as the chart does for credentials): each process then unpacks into its own pod's
volume, never into a directory of this machine. The in-process master uses the mount path as
its own ``assets_directory`` (it unpacks the asset there to validate the job at submit).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from support.k8s_real import REPO, Cluster, wait_until
from support.k8s_stack import InProcessMaster, Stack, assets_stack, master_in_process, objects_left
from teraslice_k8s.models.asset import asset_id
from teraslice_k8s.store.base import SliceFilter

pytestmark = pytest.mark.cluster

#: Bound (seconds) on each condition: pod start-up and the cluster's own pace, never a sleep.
WAIT = 90.0
TERMINAL = {"completed", "failed", "stopped", "terminated", "rejected"}
EXAMPLE = REPO / "examples" / "assets" / "example"
#: 10 slices of 100 records through the asset's reader and processor; ``delay`` keeps the two
#: workers busy for about a second, so /cluster/state is read while every pod runs.
JOB: dict[str, Any] = {
    "name": "real-asset",
    "lifecycle": "once",
    "workers": 2,
    "assets": ["example:1.x"],
    "operations": [
        {"_op": "counter@example", "total": 1000, "per_slice": 100},
        {"_op": "uppercase", "fields": ["name"]},
        {"_op": "delay", "ms": 200},
    ],
}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The example asset's zip, built by the CLI as a user builds it."""
    out = tmp_path_factory.mktemp("asset-build")
    subprocess.run(
        [sys.executable, "-m", "teraslice_k8s", "assets", "build", str(EXAMPLE), "--output", str(out)],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    (zip_path,) = out.glob("example-v1.0.0-py*-bundle.zip")
    return zip_path.read_bytes()


@pytest.fixture(scope="module")
def mount_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """``assets_directory`` of the master, and the pods' mount path of the assets volume."""
    return str(tmp_path_factory.mktemp("assets-mount") / "assets")


@pytest.fixture(scope="module")
def s(k8s_cluster: Cluster, mount_path: str) -> Iterator[Stack]:
    with assets_stack(k8s_cluster, "ts-assets", mount_path) as st:
        yield st


def create_claim(s: Stack, name: str) -> None:
    # ReadWriteOnce: every pod of the test runs on the one node (kind's provisioner has no RWX).
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
    }
    s.cluster.kubectl("-n", s.namespace, "create", "-f", "-", stdin=json.dumps(claim))


def upload(master: InProcessMaster, data: bytes) -> str:
    response = master.http.post(
        "/v1/assets",
        params={"blocking": "true"},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    expected = asset_id(data)
    # 201 the first time, 200 when the other volume's test stored the same zip already.
    assert response.status_code in (200, 201), response.text
    assert response.json() == {"asset_id": expected, "_id": expected}
    return expected


def execution(master: InProcessMaster, ex_id: str) -> dict[str, Any]:
    response = master.http.get(f"/v1/ex/{ex_id}")
    assert response.status_code == 200, response.text
    record: dict[str, Any] = response.json()
    if record["_status"] in TERMINAL and record["_status"] != "completed":
        raise AssertionError(f"execution {ex_id} ended {record['_status']}: {record.get('_failureReason')}")
    return record


def watch_state(master: InProcessMaster, ex_id: str, new_id: str) -> dict[str, set[str]]:
    """Reads ``/v1/cluster/state`` until it has listed the controller and both workers of
    ``ex_id`` (in one read or across reads), each with ``assets: [new_id]``; their pod names by
    assignment."""
    seen: dict[str, set[str]] = {"execution_controller": set(), "worker": set()}

    def everyone_listed() -> bool:
        response = master.http.get("/v1/cluster/state")
        assert response.status_code == 200, response.text
        for node in response.json().values():
            for entry in node["active"]:
                if entry.get("ex_id") != ex_id:
                    continue
                assert entry["assets"] == [new_id], entry
                seen[entry["assignment"]].add(entry["pod_name"])
        execution(master, ex_id)  # fails at once if the execution failed
        return len(seen["execution_controller"]) == 1 and len(seen["worker"]) >= 2

    wait_until(everyone_listed, WAIT, f"the controller and 2 workers of {ex_id} in /v1/cluster/state", 0.1)
    return seen


def pod_log(cluster: Cluster, namespace: str, pod: str) -> str:
    """The process kubelet's log of ``pod``'s container (kept after the pod is gone)."""
    (path,) = (cluster.logs_dir / "kubelet" / "logs" / namespace).glob(f"{pod}.*.log")
    return path.read_text(errors="replace")


def run_with_asset(s: Stack, master: InProcessMaster, data: bytes) -> tuple[str, str, dict[str, set[str]]]:
    """Uploads the asset, runs :data:`JOB` to completion with exact counts and nothing left;
    (asset id, ex id, pod names by assignment)."""
    new_id = upload(master, data)
    response = master.http.post("/v1/jobs", json=JOB)
    assert response.status_code == 200, response.text
    ex_id: str = response.json()["ex_id"]
    pods = watch_state(master, ex_id, new_id)
    ex = wait_until(
        lambda: (r := execution(master, ex_id))["_status"] == "completed" and r, WAIT, f"{ex_id} completed"
    )
    assert ex["assets"] == [new_id]
    stats = ex["_slicer_stats"]
    assert (stats["processed"], stats["failed"], stats["records"]) == (10, 0, 1000)
    stored = master.service.store.list_slices(SliceFilter(ex_id=ex_id))
    assert sorted((sl["state"], sl["record_count"]) for sl in stored) == [("completed", 100)] * 10
    assert master.http.get(f"/v1/ex/{ex_id}/errors").json() == []
    wait_until(lambda: objects_left(s.api, ex_id) == [], WAIT, f"no object of {ex_id} left")
    return new_id, ex_id, pods


def loaded_from(log: str, new_id: str) -> str:
    """The directory the process imported the asset's operations from (its start-up line)."""
    found = re.findall(rf"asset {new_id} \(example@1\.0\.0\) loaded from (\S+): counter, uppercase\n", log)
    assert len(found) >= 1, log
    assert len(set(found)) == 1, found  # a restarted worker loads it from the same place
    return str(found[0])


def test_pods_load_the_asset_into_their_own_empty_dir_and_run_it(
    k8s_cluster: Cluster, s: Stack, mount_path: str, bundle: bytes
) -> None:
    with master_in_process(s, assets_directory=mount_path) as master:
        new_id, _ex_id, pods = run_with_asset(s, master, bundle)
    if not k8s_cluster.processes:
        return  # pod logs and volumes are inside the cluster's nodes
    for pod in pods["execution_controller"] | pods["worker"]:
        # Every pod loaded it from its own emptyDir (empty at start: so it fetched the zip
        # from the store and unpacked it there), seen through the pod's root: the mount path.
        where = loaded_from(pod_log(k8s_cluster, s.namespace, pod), new_id)
        assert where.startswith(str(k8s_cluster.logs_dir / "kubelet" / "pods" / s.namespace / f"{pod}-")), (
            where
        )
        assert "/rootfs/" in where and where.endswith(f"{mount_path}/{new_id}"), where


def test_pods_share_the_asset_through_the_assets_volume_claim(
    k8s_cluster: Cluster, s: Stack, mount_path: str, bundle: bytes
) -> None:
    claim = "ts-assets"
    create_claim(s, claim)
    with master_in_process(s, assets_directory=mount_path, assets_volume=claim) as master:
        new_id, _ex_id, pods = run_with_asset(s, master, bundle)
    if not k8s_cluster.processes:
        return
    shared = k8s_cluster.logs_dir / "kubelet" / "pvc" / s.namespace / claim
    # One unpacked copy on the claim, no temporary directory left by pods racing to unpack.
    assert sorted(p.name for p in shared.iterdir()) == [new_id]
    assert (shared / new_id / "uppercase" / "processor.py").is_file()
    for pod in pods["execution_controller"] | pods["worker"]:
        where = loaded_from(pod_log(k8s_cluster, s.namespace, pod), new_id)
        assert where.startswith(str(k8s_cluster.logs_dir / "kubelet" / "pods" / s.namespace / f"{pod}-")), (
            where
        )
        assert "/rootfs/" in where and where.endswith(f"{mount_path}/{new_id}"), where

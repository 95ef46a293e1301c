"""``GET /cluster/state`` of a real master with the Kubernetes backend on the emulator (kmock)
lists exactly the live pods before, during and after a run, through the real HTTP app.

The kubelet harness of ``test_master_kubernetes`` runs each pod the master asks for as a local
process and reports it to the emulator (``Running`` on host ``10.0.0.7``, then
``Succeeded``/``Failed``; pods removed when their Job/Deployment is deleted).

Regression (issue 16 item 1): the route served its first answer forever (``{}`` here).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_master_kubernetes import (  # the kubelet harness and its fixtures (same folder)
    TIMEOUT,
    Kubelet,
    cluster_config,
    dump_logs,
    k8s_emulator,
    kubelet,
    master,
    poll_until,
)

from support.k8s_emulator import EmulatorThread
from teraslice_k8s.master.service import MasterService

__all__ = ["cluster_config", "k8s_emulator", "kubelet", "master"]

pytestmark = pytest.mark.slow

HOST_IP = "10.0.0.7"  # where the harness "schedules" every pod
JOB = {
    "name": "state-persistent",
    "lifecycle": "persistent",
    "workers": 2,
    "operations": [{"_op": "data_generator", "size": 50}, {"_op": "delay", "ms": 100}],
}
N_A = "N/A"


def state(url: str, prefix: str = "/v1") -> dict[str, Any]:
    response = httpx.get(f"{url}{prefix}/cluster/state", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed(url: str) -> list[str]:
    """Pod names in the cluster state's ``active`` lists, sorted."""
    return sorted(p["pod_name"] for node in state(url).values() for p in node["active"])


def live_pods(kubelet: Kubelet) -> list[str]:
    """Pods whose process runs now (the harness's view), sorted."""
    with kubelet.cond:
        return sorted(pod for pod, proc in kubelet.processes.items() if proc.poll() is None)


def expected_state(emulator: EmulatorThread, kubelet: Kubelet, ex_id: str, job_id: str) -> dict[str, Any]:
    """The kubernetesV2 node of :data:`HOST_IP` with one entry per live pod of the execution
    (role and image from the Job or Deployment the master created for it)."""
    owners_by_name = {
        name: obj
        for (resource, _, name), obj in emulator.objects().items()
        if resource in ("batch/v1/jobs", "apps/v1/deployments")
    }
    with kubelet.cond:
        pod_owner = dict(kubelet.owner)
    active = []
    for pod in live_pods(kubelet):
        owner = owners_by_name[pod_owner[pod]]
        template = owner["spec"]["template"]
        active.append(
            {
                "assets": [],
                "assignment": template["metadata"]["labels"]["app.kubernetes.io/component"],
                "ex_id": ex_id,
                "image": template["spec"]["containers"][0]["image"],
                "job_id": job_id,
                "pod_name": pod,
                "pod_ip": "127.0.0.1",
                "worker_id": pod,
            }
        )
    node = {
        "node_id": HOST_IP,
        "hostname": HOST_IP,
        "pid": N_A,
        "node_version": N_A,
        "teraslice_version": N_A,
        "total": N_A,
        "state": "connected",
        "available": N_A,
        "active": active,
    }
    return {HOST_IP: node}


def sorted_state(body: dict[str, Any]) -> dict[str, Any]:
    return {
        key: {**node, "active": sorted(node["active"], key=lambda p: p["pod_name"])}
        for key, node in body.items()
    }


def test_cluster_state_lists_exactly_the_live_pods(
    master: tuple[MasterService, str], kubelet: Kubelet, k8s_emulator: EmulatorThread
) -> None:
    service, url = master
    # Before: nothing runs (Teraslice's kubernetes state is an empty object then). Asked first.
    assert state(url) == {}
    assert state(url, "") == {}

    ids = httpx.post(f"{url}/v1/jobs", json=JOB, timeout=30).json()
    job_id, ex_id = ids["job_id"], ids["ex_id"]
    assert poll_until(lambda: service.store.get_execution(ex_id)["_status"] == "running"), dump_logs(
        kubelet.logs
    )
    assert poll_until(lambda: len(live_pods(kubelet)) == 3 and listed(url) == live_pods(kubelet)), (
        listed(url),
        live_pods(kubelet),
    )
    during = state(url)
    want = expected_state(k8s_emulator, kubelet, ex_id, job_id)
    assert sorted_state(during) == want
    assert sorted(p["assignment"] for p in during[HOST_IP]["active"]) == [
        "execution_controller",
        "worker",
        "worker",
    ]
    assert sorted_state(state(url, "")) == want

    # A worker added through the API is listed once its pod runs.
    assert httpx.post(f"{url}/v1/ex/{ex_id}/_workers?add=1", timeout=30).status_code == 200
    assert poll_until(lambda: len(live_pods(kubelet)) == 4 and listed(url) == live_pods(kubelet)), (
        listed(url),
        live_pods(kubelet),
    )

    stopped = httpx.post(f"{url}/v1/jobs/{job_id}/_stop", timeout=TIMEOUT)
    assert stopped.json() == {"status": "stopped"}, dump_logs(kubelet.logs)
    assert kubelet.wait_gone(ex_id) == []
    # After: no pod is left, so no node either.
    assert poll_until(lambda: state(url) == {}), state(url)
    assert state(url, "") == {}

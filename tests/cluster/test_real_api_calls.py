"""The master's Kubernetes API calls per execution lifecycle, counted against the real API
server by the API module's own counters (issue 10 item 5), as ``/metrics`` exports them.

An execution costs exactly three creates (controller Job, its Service, worker Deployment) and
one delete (the Job, with Background propagation: the garbage collector removes its pod, the
Service and the Deployment, which it owns, and the Deployment's ReplicaSet and pods); while it
runs, reading the cluster state, the worker table, the execution and its controller's stats
costs no API call at all (the pod cache is kept by one watch per kind). The figures are printed
by ``benchmarks/k8s_calls.py --real``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest

from support.k8s_real import Cluster, wait_until
from support.k8s_stack import InProcessMaster, Stack, master_in_process, objects_left, stack

pytestmark = pytest.mark.cluster

WAIT = 120.0
#: API reads at rest (each of the four routes this many times).
READS = 25
CREATES = {("create", "batch/jobs"): 1, ("create", "services"): 1, ("create", "apps/deployments"): 1}
DELETES = {("delete", "batch/jobs"): 1}


@pytest.fixture(scope="module")
def master(k8s_cluster: Cluster) -> Iterator[tuple[Stack, InProcessMaster]]:
    with (
        k8s_cluster.namespace("ts-calls") as namespace,
        stack(k8s_cluster, namespace) as s,
        master_in_process(s) as m,
    ):
        yield s, m


def calls(master: InProcessMaster) -> Counter[tuple[str, str]]:
    return Counter(master.backend.api_calls())


def without_watches(diff: Counter[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The calls of a phase except re-established watches (one per kind every WATCH_TIMEOUT)."""
    return {call: n for call, n in diff.items() if call[0] != "watch" and n}


def of(diff: dict[tuple[str, str], int], verb: str) -> dict[tuple[str, str], int]:
    return {call: n for call, n in diff.items() if call[0] == verb}


def test_an_execution_costs_three_creates_one_delete_and_nothing_at_rest(
    master: tuple[Stack, InProcessMaster],
) -> None:
    s, m = master
    job = {
        "name": "api-calls",
        "lifecycle": "persistent",
        "workers": 3,
        "operations": [{"_op": "data_generator", "size": 10}, {"_op": "delay", "ms": 100}],
    }
    before = calls(m)
    response = m.http.post("/v1/jobs", json=job)
    assert response.status_code == 200, response.text
    ex_id = response.json()["ex_id"]
    wait_until(
        lambda: (
            m.http.get(f"/v1/ex/{ex_id}").json()["_status"] == "running"
            and len(s.running_pods(ex_id, "worker")) == 3
        ),
        WAIT,
        "running with 3 worker pods",
    )
    start = without_watches(calls(m) - before)
    assert of(start, "create") == CREATES
    # Besides the creates: the worker ConfigMap check and the Job lookup for the owner reference.
    assert start == {**CREATES, ("get", "configmaps"): 1, ("list", "batch/jobs"): 1}

    before = calls(m)
    for _ in range(READS):
        for path in ("/v1/cluster/state", "/txt/workers", f"/v1/ex/{ex_id}", f"/v1/ex/{ex_id}/controller"):
            assert m.http.get(path).status_code == 200, path
    state = m.http.get("/v1/cluster/state").json()
    assert sum(w.get("ex_id") == ex_id for node in state.values() for w in node["active"]) == 4
    assert without_watches(calls(m) - before) == {}  # no call at rest, per pod or otherwise

    before = calls(m)
    assert m.http.post(f"/v1/ex/{ex_id}/_stop").json() == {"status": "stopped"}
    assert objects_left(s.api, ex_id) == []
    stop = without_watches(calls(m) - before)
    # The Job only: the real garbage collector removes everything it owns.
    assert of(stop, "delete") == DELETES
    assert of(stop, "create") == {}
    assert not {call for call in stop if call[1] == "pods" and call[0] != "list"}, stop

    # /metrics exports the same counters.
    metrics = m.http.get("/metrics").text
    exported = {
        (verb, resource): int(float(value))
        for resource, verb, value in re.findall(
            r'^teraslice_master_kubernetes_api_requests_total\{resource="([^"]+)",verb="([^"]+)"\} (\S+)$',
            metrics,
            re.MULTILINE,
        )
    }
    counted = m.backend.api_calls()
    assert {c: n for c, n in exported.items() if c[0] != "watch"} == {
        c: n for c, n in counted.items() if c[0] != "watch"
    }
    assert exported["create", "batch/jobs"] >= 1

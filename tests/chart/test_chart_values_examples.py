"""Every values example in ``values-examples/`` installed for real (issue 10 item 2), on the
session's cluster (k8s-real here, kind in the GitHub workflow; see ``support.k8s_real``).

For each example, in a fresh PodSecurity-``restricted`` namespace: the chart rendered with the
example passes the API server's admission with strict field validation (a server-side dry run
of every object); ``helm install --wait`` with the example succeeds (only the image is pointed
at one this cluster runs, and what the example expects to exist outside the chart is put there
first, as its comments tell the operator); the master pod is Ready by its probes and lists its
own pod through its ServiceAccount; ``helm test`` passes; ``helm uninstall`` leaves nothing but
what the operator created (and the chart keeps on purpose). The isolated-namespace example
(an admin's Role, no chart RBAC) also runs an execution to completion, so every verb the
master uses goes through that Role for real.

What the examples expect from outside, and what stands in for it here:

- ``isolated-namespace``: the ServiceAccount, Role (the chart's ``rbac.rules``) and RoleBinding
  an admin created;
- ``production``: the credentials Secret; an external Elasticsearch (the stack's Elasticsearch
  pod, ``support.k8s_stack``, as ``elasticsearch.external.nodes``); a PersistentVolume of the
  ``nfs-client`` class for the shared assets claim; the node labelled ``node-pool:
  teraslice-controllers`` for the master's ``nodeSelector`` (on the process kubelet, from its
  start). Its ServiceMonitor and PodMonitor
  are skipped by the chart (no Prometheus Operator CRDs on this cluster).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.k8s_real import CHART, NODE_POOL_LABEL, REPO, Cluster, wait_until
from support.k8s_stack import es_manifests, pod_ready

pytestmark = pytest.mark.cluster

RELEASE = "teraslice"
EXAMPLES = REPO / "values-examples"
#: Bounds (seconds) on conditions that must come.
READY_TIMEOUT = 180.0
RUN_TIMEOUT = 120.0
#: Kinds whose leftovers in the namespace count after ``helm uninstall``.
LEFTOVER_KINDS = (
    "pods,jobs,deployments,statefulsets,replicasets,services,configmaps,secrets,"
    "persistentvolumeclaims,serviceaccounts,roles,rolebindings,networkpolicies,poddisruptionbudgets"
)
#: Always in a namespace (not the chart's): the CA ConfigMap and the default ServiceAccount.
NAMESPACE_DEFAULTS = {"configmap/kube-root-ca.crt", "serviceaccount/default"}


def test_every_values_example_is_covered() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == sorted(SETUPS)


def image_values(cluster: Cluster) -> list[str]:
    """Point the example's image at the one this cluster runs (its only change to the example)."""
    repository, _, tag = cluster.image.rpartition(":")
    return ["--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}"]


# ------------------------------------------------------------------ what each example expects


def _apply(cluster: Cluster, namespace: str, *manifests: dict[str, Any]) -> set[str]:
    """Create ``manifests`` (as the operator would); their ``kind/name`` in kubectl's spelling."""
    names = set()
    for manifest in manifests:
        out = cluster.kubectl("-n", namespace, "create", "-o", "name", "-f", "-", stdin=json.dumps(manifest))
        names.add(out.strip().replace(".rbac.authorization.k8s.io", ""))
    return names


@contextlib.contextmanager
def isolated_namespace(cluster: Cluster, namespace: str) -> Iterator[tuple[list[str], set[str]]]:
    """The admin's ServiceAccount, Role (exactly the chart's ``rbac.rules``) and RoleBinding."""
    rules = yaml.safe_load((CHART / "values.yaml").read_text())["rbac"]["rules"]
    account = "master-service-account"
    created = _apply(
        cluster,
        namespace,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "teraslice-master-role"},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "teraslice-master"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "teraslice-master-role",
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    )
    yield [], created


@contextlib.contextmanager
def production(cluster: Cluster, namespace: str) -> Iterator[tuple[list[str], set[str]]]:
    """Credentials Secret, an Elasticsearch, a volume for the assets claim, the labelled node."""
    created = _apply(
        cluster,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "es-teraslice-credentials"},
            "stringData": {"username": "teraslice", "password": "not-a-secret"},
        },
        *es_manifests(),
    )
    wait_until(lambda: pod_ready(cluster, namespace, "elasticsearch-0"), READY_TIMEOUT, "Elasticsearch Ready")
    volume = f"{namespace}-assets"
    cluster.kubectl(
        "create",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": volume},
                "spec": {
                    "storageClassName": "nfs-client",
                    "accessModes": ["ReadWriteMany"],
                    "capacity": {"storage": "50Gi"},
                    "persistentVolumeReclaimPolicy": "Delete",
                    "hostPath": {"path": f"/tmp/{volume}", "type": "DirectoryOrCreate"},
                },
            }
        ),
    )
    # A real scheduler reads the Node's labels (kind); the process kubelet has the label from
    # its start (``support.k8s_real``) and reads only those.
    (node,) = cluster.kubectl("get", "nodes", "-o", "name").split()
    cluster.kubectl("label", node, NODE_POOL_LABEL, "--overwrite")
    try:
        es = f"http://elasticsearch.{namespace}.svc.cluster.local:9200"
        yield ["--set-json", f"elasticsearch.external.nodes={json.dumps([es])}"], created
    finally:
        if not cluster.processes:
            cluster.kubectl("label", node, f"{NODE_POOL_LABEL.split('=')[0]}-", check=False)
        cluster.kubectl("delete", "persistentvolume", volume, "--wait=false", check=False)


@contextlib.contextmanager
def nothing(cluster: Cluster, namespace: str) -> Iterator[tuple[list[str], set[str]]]:
    yield [], set()


#: example -> its set-up: (extra ``helm install`` arguments, the objects it created).
SETUPS = {
    "isolated-namespace": isolated_namespace,
    "kind": nothing,
    "minikube": nothing,
    "production": production,
}
#: Examples that also run an execution through the master.
RUN_AN_EXECUTION = {"isolated-namespace"}


# ------------------------------------------------------------------------------------ the test


def kept_by_the_chart(rendered: str) -> set[str]:
    """What the chart keeps on purpose after an uninstall (``kind/name``): objects annotated
    ``helm.sh/resource-policy: keep`` (the Elasticsearch password, the assets claim) and the
    ``helm test`` pods (Helm never deletes hook objects; kept for ``helm test --logs``)."""
    kept = set()
    for doc in yaml.safe_load_all(rendered):
        annotations = ((doc or {}).get("metadata") or {}).get("annotations") or {}
        if annotations.get("helm.sh/resource-policy") == "keep" or annotations.get("helm.sh/hook") == "test":
            kept.add(f"{doc['kind'].lower()}/{doc['metadata']['name']}")
    return kept


def _diagnose(cluster: Cluster, namespace: str) -> str:
    """The namespace's pods and events, for a failed install's message."""
    pods = cluster.kubectl("-n", namespace, "get", "pods", "-o", "wide", check=False)
    events = cluster.kubectl("-n", namespace, "get", "events", "--sort-by=.lastTimestamp", check=False)
    return f"\npods:\n{pods}\nevents:\n{events[-4000:]}"


def _master_pod(cluster: Cluster, namespace: str) -> dict[str, Any]:
    pods = cluster.kubectl_json("-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=master")
    live = [p for p in pods["items"] if not p["metadata"].get("deletionTimestamp")]
    assert len(live) == 1, [p["metadata"]["name"] for p in pods["items"]]
    return live[0]  # type: ignore[no-any-return]


def _run_an_execution(master: httpx.Client) -> None:
    job = {
        "name": "values-example",
        "workers": 1,
        "operations": [{"_op": "data_generator", "size": 50}, {"_op": "noop"}],
    }
    response = master.post("/v1/jobs", params={"start": "true"}, content=json.dumps(job))
    assert response.status_code in (200, 201), response.text
    ex_id = response.json()["ex_id"]
    terminal = ("completed", "stopped", "rejected", "failed", "terminated")
    status = wait_until(
        lambda: (s := master.get(f"/v1/ex/{ex_id}").json()["_status"]) in terminal and s,
        RUN_TIMEOUT,
        f"execution {ex_id} finished",
    )
    record = master.get(f"/v1/ex/{ex_id}").json()
    assert status == "completed", record.get("_failureReason")
    assert record["_slicer_stats"]["processed"] == 1


@pytest.mark.parametrize("example", sorted(SETUPS))
def test_values_example_installs_runs_and_uninstalls(
    k8s_cluster: Cluster, example: str, tmp_path: Path
) -> None:
    values = EXAMPLES / f"{example}.yaml"
    with (
        k8s_cluster.namespace(f"ts-{example[:8]}") as namespace,
        SETUPS[example](k8s_cluster, namespace) as (extra, created),
    ):
        args = ["--namespace", namespace, "--values", str(values), *image_values(k8s_cluster), *extra]

        # Every object of the release (hooks and tests included) through real admission with
        # strict field validation, before anything is installed.
        rendered = k8s_cluster.helm("template", RELEASE, str(CHART), *args)
        k8s_cluster.kubectl(
            "-n", namespace, "create", "--dry-run=server", "--validate=strict", "-o", "name", "-f", "-",
            stdin=rendered,
        )  # fmt: skip

        output = k8s_cluster.helm(
            "install", RELEASE, str(CHART), *args, "--wait", "--timeout", "4m", check=False
        )
        assert "STATUS: deployed" in output, output + _diagnose(k8s_cluster, namespace)
        pod = _master_pod(k8s_cluster, namespace)
        assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
        cluster_name = yaml.safe_load(values.read_text()).get("clusterName") or RELEASE
        with (
            k8s_cluster.pod_url(namespace, pod["metadata"]["name"], 5678) as url,
            httpx.Client(base_url=url, timeout=60) as master,
        ):
            root = master.get("/").json()
            assert (root["name"], root["clustering_type"]) == (cluster_name, "kubernetesV2")
            # The master lists pods with its ServiceAccount's token: its own pod shows.
            active = [a for node in master.get("/v1/cluster/state").json().values() for a in node["active"]]
            assert [a["pod_name"] for a in active if a.get("assignment") == "master"] == [
                pod["metadata"]["name"]
            ]
            if example in RUN_AN_EXECUTION:
                _run_an_execution(master)

        test_output = k8s_cluster.helm("test", RELEASE, "--namespace", namespace, "--logs")
        assert "Phase:          Succeeded" in test_output

        k8s_cluster.helm("uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "5m")
        expected = NAMESPACE_DEFAULTS | kept_by_the_chart(rendered) | created
        left: set[str] = set()

        def only_expected_left() -> bool:
            listed = k8s_cluster.kubectl("-n", namespace, "get", LEFTOVER_KINDS, "-o", "name").split()
            left.clear()
            left.update(n.replace(".rbac.authorization.k8s.io", "").replace(".policy", "") for n in listed)
            return left <= expected

        with contextlib.suppress(AssertionError):
            wait_until(only_expected_left, READY_TIMEOUT, "the release's objects gone")
        assert sorted(left - expected) == []
        # Nothing cluster-scoped is left either (the production example's PriorityClass).
        classes = k8s_cluster.kubectl("get", "priorityclasses", "-o", "name").split()
        assert not [c for c in classes if namespace in c], classes

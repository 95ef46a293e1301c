"""The chart on a real cluster, installed with its defaults (k8s-real with pods as processes here;
kind with ``values-examples/kind.yaml`` in the GitHub workflow; see ``support.k8s_real``).

One release per module (fixture ``release``), in a fresh PodSecurity-``restricted`` namespace;
its tests run in file order and the last of them uninstalls it: ``helm install --wait`` (real
admission), the master Ready by its probes and talking to the API server as its ServiceAccount,
``helm test --logs``, the ServiceAccount's exact rights, ``/v1/cluster/state`` of a running
execution through the master's pod, and ``helm uninstall`` stopping that execution (its
pre-delete hook) and leaving nothing. Then a release of its own whose master is down: the hook
warns and the uninstall goes on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from support.k8s_real import CHART, Cluster, wait_until
from teraslice_k8s.kubernetes.api import RBAC_RULES, load_client_configuration

pytestmark = pytest.mark.cluster

RELEASE = "teraslice"
SERVICE_ACCOUNT = "teraslice-master-service-account"
EX_LABEL = "teraslice.terascope.io/exId"
#: Bounds (seconds) for conditions that must come.
RUNNING_TIMEOUT = 120.0
STOP_TIMEOUT = 120.0


@dataclass
class Release:
    cluster: Cluster
    namespace: str
    #: What `helm install` printed (status and NOTES).
    install_output: str

    def master_pod(self) -> dict[str, Any]:
        pods = self.cluster.kubectl_json(
            "-n", self.namespace, "get", "pods", "-l", "app.kubernetes.io/component=master"
        )["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        assert len(live) == 1, [p["metadata"]["name"] for p in pods]
        return live[0]  # type: ignore[no-any-return]

    def execution_objects(self, ex_id: str) -> list[str]:
        """``kind/name`` of every pod, Job, Deployment, ReplicaSet and Service of ``ex_id``."""
        out = self.cluster.kubectl(
            "-n", self.namespace, "get", "pods,jobs,deployments,replicasets,services",
            "-l", f"{EX_LABEL}={ex_id}", "-o", "name",
        )  # fmt: skip
        return out.split()


@pytest.fixture(scope="module")
def release(k8s_cluster: Cluster) -> Iterator[Release]:
    """The chart installed with its defaults (plus the cluster's image values) and ``--wait``."""
    with k8s_cluster.namespace("ts-chart") as namespace:
        output = k8s_cluster.helm(
            "install", RELEASE, str(CHART), "--namespace", namespace, "--wait", "--timeout", "5m",
            *k8s_cluster.chart_values,
        )  # fmt: skip
        try:
            yield Release(k8s_cluster, namespace, output)
        finally:
            k8s_cluster.helm("uninstall", RELEASE, "--namespace", namespace, "--wait", check=False)


@pytest.fixture
def master(release: Release) -> Iterator[httpx.Client]:
    """An HTTP client of the master's API through its pod (its IP here, a port-forward on kind)."""
    pod = release.master_pod()["metadata"]["name"]
    with (
        release.cluster.pod_url(release.namespace, pod, 5678) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


def test_master_pod_is_ready_by_its_probes(release: Release) -> None:
    pod = release.master_pod()
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    (container,) = pod["status"]["containerStatuses"]
    assert container["ready"] is True
    assert container["restartCount"] == 0
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(pod["spec"]["containers"][0])


def test_master_sees_its_own_pod_through_its_service_account(release: Release, master: httpx.Client) -> None:
    # The master lists pods with its ServiceAccount token (the chart's Role): its own pod shows.
    pod = release.master_pod()
    assert master.get("/").json()["clustering_type"] == "kubernetesV2"
    active = [a for node in master.get("/v1/cluster/state").json().values() for a in node["active"]]
    assert {
        "assignment": "master",
        "pod_name": pod["metadata"]["name"],
        "pod_ip": pod["status"]["podIP"],
    }.items() <= next(a for a in active if a.get("assignment") == "master").items()


def test_install_notes_say_that_uninstall_stops_the_executions(release: Release) -> None:
    assert "STATUS: deployed" in release.install_output
    assert (
        "helm uninstall first stops every running execution through the master (a pre-delete hook; up to\n"
        "120 s, then forced), so no execution pod, Job, Deployment or Service is left behind."
    ) in release.install_output


def test_helm_test_logs_show_the_test_output(release: Release) -> None:
    output = release.cluster.helm("test", RELEASE, "--namespace", release.namespace, "--logs")
    assert "Phase:          Succeeded" in output
    assert f"GET http://teraslice-master.{release.namespace}.svc.cluster.local:5678/ -> " in output
    assert "'clustering_type': 'kubernetesV2'" in output


def _allowed(release: Release, group: str, resource: str, verb: str) -> bool:
    from kubernetes import client

    # A SubjectAccessReview names a subresource separately ("services/proxy" -> services + proxy).
    resource, _, subresource = resource.partition("/")
    user = f"system:serviceaccount:{release.namespace}:{SERVICE_ACCOUNT}"
    if subresource == "proxy" and release.cluster.processes:
        # k8s-real (OpenShift's fork) reviews services/proxy as services/unsafeproxy in explicit
        # SubjectAccessReviews only; an impersonated self-review checks what requests get.
        out = release.cluster.kubectl(
            "auth", "can-i", verb, resource, "--subresource", subresource,
            "--namespace", release.namespace, "--as", user, check=False,
        )  # fmt: skip
        return out.strip().splitlines()[0] == "yes"
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}"],
            "resourceAttributes": {
                "namespace": release.namespace,
                "group": group,
                "resource": resource,
                "subresource": subresource,
                "verb": verb,
            },
        },
    }
    configuration = load_client_configuration(kubeconfig=release.cluster.kubeconfig)
    with client.ApiClient(configuration) as api:
        result = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(result.status.allowed)


def test_service_account_may_make_exactly_the_declared_calls(release: Release) -> None:
    verbs = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
    granted = {
        (group, resource, verb)
        for rule in RBAC_RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for group, resource in {(g, r) for g, r, _ in granted} | {("", "secrets")}:
        for verb in verbs:
            expected = (group, resource, verb) in granted
            assert _allowed(release, group, resource, verb) is expected, (group, resource, verb)


PERSISTENT_JOB = {
    "name": "cluster-state",
    "lifecycle": "persistent",
    "workers": 2,
    "operations": [{"_op": "data_generator", "size": 10}, {"_op": "delay", "ms": 200}, {"_op": "noop"}],
}


TERMINAL = ("completed", "stopped", "rejected", "failed", "terminated")


def _ex_status(master: httpx.Client, ex_id: str) -> str:
    return str(master.get(f"/v1/ex/{ex_id}").json()["_status"])


def _active_of(master: httpx.Client, ex_id: str) -> list[dict[str, Any]]:
    state = master.get("/v1/cluster/state").json()
    return [a for node in state.values() for a in node["active"] if a.get("ex_id") == ex_id]


def _start(master: httpx.Client) -> tuple[str, str]:
    response = master.post("/v1/jobs", params={"start": "true"}, content=json.dumps(PERSISTENT_JOB))
    assert response.status_code in (200, 201), response.text
    body = response.json()
    job_id, ex_id = body["job_id"], body["ex_id"]
    status = wait_until(
        lambda: (s := _ex_status(master, ex_id)) in ("running", *TERMINAL) and s,
        RUNNING_TIMEOUT,
        f"execution {ex_id} running",
    )
    assert status == "running", master.get(f"/v1/ex/{ex_id}").json().get("_failureReason")
    return job_id, ex_id


def _pods_of(release: Release, ex_id: str) -> dict[str, tuple[str, str]]:
    """pod name -> (component, pod IP) of the execution's Running pods."""
    pods = release.cluster.kubectl_json("-n", release.namespace, "get", "pods", "-l", f"{EX_LABEL}={ex_id}")
    return {
        p["metadata"]["name"]: (p["metadata"]["labels"]["app.kubernetes.io/component"], p["status"]["podIP"])
        for p in pods["items"]
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    }


def test_cluster_state_lists_a_running_execution_then_nothing_of_it(
    release: Release, master: httpx.Client
) -> None:
    job_id, ex_id = _start(master)
    # The pods' phases reach the master's pod cache through its watch: bounded wait for all 3.
    wait_until(
        lambda: len(_active_of(master, ex_id)) == 3, RUNNING_TIMEOUT, "controller and 2 workers listed"
    )
    listed = {a["pod_name"]: (a["assignment"], a["pod_ip"]) for a in _active_of(master, ex_id)}
    assert listed == _pods_of(release, ex_id)
    assert sorted(component for component, _ in listed.values()) == [
        "execution_controller",
        "worker",
        "worker",
    ]
    assert all(a["job_id"] == job_id for a in _active_of(master, ex_id))
    master_entries = [
        a for node in master.get("/v1/cluster/state").json().values() for a in node["active"]
        if a.get("assignment") == "master"
    ]  # fmt: skip
    assert [a["pod_name"] for a in master_entries] == [release.master_pod()["metadata"]["name"]]

    response = master.post(f"/v1/ex/{ex_id}/_stop")
    assert response.status_code == 200, response.text
    wait_until(lambda: _ex_status(master, ex_id) == "stopped", STOP_TIMEOUT, f"execution {ex_id} stopped")
    wait_until(lambda: _active_of(master, ex_id) == [], STOP_TIMEOUT, "no process of the execution listed")
    wait_until(
        lambda: release.execution_objects(ex_id) == [], STOP_TIMEOUT, "no object of the execution left"
    )


def test_the_master_pod_killed_mid_execution_is_replaced_and_adopts_it(release: Release) -> None:
    """The chart's master pod killed (force-deleted, no grace) while an execution runs: its
    Deployment starts a new master pod, which adopts the live execution (its pods untouched,
    still ``running``, listed in the cluster state) and can stop it."""
    old = release.master_pod()["metadata"]["name"]
    with (
        release.cluster.pod_url(release.namespace, old, 5678) as url,
        httpx.Client(base_url=url, timeout=60) as m,
    ):
        _job_id, ex_id = _start(m)
        wait_until(
            lambda: len(_pods_of(release, ex_id)) == 3, RUNNING_TIMEOUT, "controller and 2 workers running"
        )
    pods_before = _pods_of(release, ex_id)

    release.cluster.kubectl(
        "-n", release.namespace, "delete", "pod", old, "--grace-period=0", "--force", "--wait=true"
    )  # fmt: skip

    def new_master_ready() -> str:
        pods = release.cluster.kubectl_json(
            "-n", release.namespace, "get", "pods", "-l", "app.kubernetes.io/component=master"
        )["items"]
        for pod in pods:
            ready = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}.get("Ready")
            if (
                pod["metadata"]["name"] != old
                and ready == "True"
                and not pod["metadata"].get("deletionTimestamp")
            ):
                return str(pod["metadata"]["name"])
        return ""

    new = wait_until(new_master_ready, RUNNING_TIMEOUT, "a new master pod Ready")
    with (
        release.cluster.pod_url(release.namespace, new, 5678) as url,
        httpx.Client(base_url=url, timeout=60) as m,
    ):
        assert _ex_status(m, ex_id) == "running"
        assert _pods_of(release, ex_id) == pods_before  # the execution's pods were not touched
        wait_until(
            lambda: len(_active_of(m, ex_id)) == 3, RUNNING_TIMEOUT, "the adopted execution's pods listed"
        )
        response = m.post(f"/v1/ex/{ex_id}/_stop")
        assert response.status_code == 200, response.text
        wait_until(lambda: _ex_status(m, ex_id) == "stopped", STOP_TIMEOUT, f"execution {ex_id} stopped")
    wait_until(
        lambda: release.execution_objects(ex_id) == [], STOP_TIMEOUT, "no object of the execution left"
    )


def test_helm_uninstall_stops_running_executions_and_leaves_nothing(
    release: Release, master: httpx.Client
) -> None:
    """Last test of the module's release: it uninstalls it."""
    _job_id, ex_id = _start(master)
    wait_until(
        lambda: len(_pods_of(release, ex_id)) == 3, RUNNING_TIMEOUT, "controller and 2 workers running"
    )
    master.close()

    output = release.cluster.helm(
        "uninstall", RELEASE, "--namespace", release.namespace, "--wait", "--timeout", "5m"
    )
    assert f'release "{RELEASE}" uninstalled' in output
    # `--wait` returns once the release's own objects are gone; the execution's were deleted
    # before (the pre-delete hook waits until none of its processes is left), so none is left.
    assert release.execution_objects(ex_id) == []
    if release.cluster.processes:  # the hook's own log (Helm deleted its Job on success)
        (log,) = (release.cluster.logs_dir / "kubelet" / "logs" / release.namespace).glob(
            "teraslice-master-stop-executions-*.log"
        )
        assert f"ex {ex_id}: stopped" in log.read_text().splitlines()

    def leftovers() -> list[str]:
        names = release.cluster.kubectl(
            "-n", release.namespace, "get", "pods,jobs,deployments,replicasets,services,configmaps,secrets",
            "-o", "name",
        ).split()  # fmt: skip
        # Kept on purpose: the Elasticsearch password (resource-policy keep) and the namespace's CA.
        return [n for n in names if n not in ("secret/teraslice-elasticsearch", "configmap/kube-root-ca.crt")]

    # The master pod goes after its Deployment (garbage collector); Helm never deletes hook
    # objects, so the `helm test` pod stays (kept for `helm test --logs`) until the namespace goes.
    wait_until(
        lambda: leftovers() == ["pod/teraslice-master-test-api"], STOP_TIMEOUT, "only the test pod left"
    )


def test_uninstall_with_the_master_down_warns_and_goes_on(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    """The pre-delete hook never blocks an uninstall: with no master to ask, it warns and exits 0."""
    base = ("--namespace", k8s_namespace)
    k8s_cluster.helm(
        "install", RELEASE, str(CHART), *base, "--set", "uninstallHook.reachTimeoutSeconds=1",
        *k8s_cluster.chart_values,
    )  # fmt: skip
    k8s_cluster.kubectl(*base, "scale", "deployment/teraslice-master", "--replicas=0")
    wait_until(
        lambda: (
            not k8s_cluster.kubectl(
                *base, "get", "pods", "-l", "app.kubernetes.io/component=master", "-o", "name"
            )
        ),
        STOP_TIMEOUT,
        "no master pod",
    )

    output = k8s_cluster.helm("uninstall", RELEASE, *base, "--wait", "--timeout", "2m")
    assert f'release "{RELEASE}" uninstalled' in output
    if k8s_cluster.processes:  # the hook's own log (Helm deleted its Job on success)
        (log,) = (k8s_cluster.logs_dir / "kubelet" / "logs" / k8s_namespace).glob(
            "teraslice-master-stop-executions-*.log"
        )
        url = f"http://teraslice-master.{k8s_namespace}.svc.cluster.local:5678"
        (line,) = log.read_text().splitlines()
        assert line.startswith(f"warning: cannot reach the master at {url}: ")
        assert line.endswith(
            "; no execution was stopped. Their Jobs, Deployments and Services stay until you delete "
            "them (or their namespace)."
        )

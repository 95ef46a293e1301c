"""pod_spec_override on a real API server: what validation accepts, the server accepts too.

Every override that ``validate_job`` accepts is rendered into the controller Job, its Service and
the worker Deployment and sent to the real kube-apiserver as a server-side dry run with strict
field validation (``kubectl create --dry-run=server --validate=strict``): admission, defaulting and
the API's own validation all run, nothing is stored. The refused overrides (tests/unit/render/
test_override_rules.py) never get that far; the last test shows why one of them must be refused:
merged by generated name, it gives the other pod an image-less container, which the server refuses.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from support.k8s_real import Cluster
from teraslice_k8s.kubernetes.overrides import merge_pod_spec
from teraslice_k8s.kubernetes.render import render_execution
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.models.job import validate_job

pytestmark = pytest.mark.cluster

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "seccompProfile": {"type": "RuntimeDefault"},
}
ACCEPTED: list[dict[str, Any]] = [
    {"containers": [{"resources": {"limits": {"memory": "3Gi"}, "requests": {"memory": "1Gi"}}}]},
    {
        "containers": [
            {"name": "teraslice", "image": "teraslice-k8s:other", "env": [{"name": "X", "value": "1"}]}
        ]
    },
    {"containers": [{}, {"name": "sidecar", "image": "busybox:1.36", "securityContext": RESTRICTED}]},
    {
        "initContainers": [
            {"name": "init-hello", "image": "busybox:1.28", "command": ["sh", "-c", "echo HELLO WORLD"]}
        ],
        "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["example.test"]}],
    },
    {
        "volumes": [{"name": "scratch", "emptyDir": {}}],
        "containers": [{"volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}],
    },
]


def cluster_config(namespace: str) -> SysConfig:
    return parse_config(
        {
            "teraslice": {
                "name": "ts-overrides",
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_namespace": namespace,
                "kubernetes_image": "teraslice-k8s:dev",
                "kubernetes_overrides_enabled": True,
            }
        }
    )


def manifests(override: dict[str, Any], config: SysConfig) -> list[dict[str, Any]]:
    job = validate_job(
        {
            "name": "override-job",
            "operations": [{"_op": "data_generator"}, {"_op": "noop"}],
            "pod_spec_override": override,
        },
        config,
    ).config
    execution = {**job, "job_id": str(uuid.uuid4()), "ex_id": str(uuid.uuid4())}
    return render_execution(execution, config)


def dry_run(cluster: Cluster, documents: list[dict[str, Any]]) -> str:
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": documents})
    return cluster.kubectl(
        "create", "--dry-run=server", "--validate=strict", "-o", "name", "-f", "-", stdin=body
    )


@pytest.mark.parametrize("override", ACCEPTED, ids=range(len(ACCEPTED)))
def test_accepted_overrides_are_accepted_by_the_api_server(
    k8s_cluster: Cluster, k8s_namespace: str, override: dict[str, Any]
) -> None:
    documents = manifests(override, cluster_config(k8s_namespace))
    created = dry_run(k8s_cluster, documents).split()
    assert [name.split("/")[0] for name in created] == ["job.batch", "service", "deployment.apps"]


def test_a_main_container_named_for_one_pod_would_break_the_other(
    k8s_cluster: Cluster, k8s_namespace: str
) -> None:
    """Why ``ts-exc-*``/``ts-wkr-*`` names are refused at submit: merged by name into the worker
    pod, the controller's container name adds a second container without an image."""
    config = cluster_config(k8s_namespace)
    job, _service, deployment = manifests({}, config)
    controller_name = job["spec"]["template"]["spec"]["containers"][0]["name"]
    broken = copy.deepcopy(deployment)
    pod = broken["spec"]["template"]
    pod["spec"] = merge_pod_spec(pod["spec"], {"containers": [{"name": controller_name, "env": []}]})
    assert [c["name"] for c in pod["spec"]["containers"]][1] == controller_name
    output = k8s_cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", stdin=json.dumps(broken), check=False
    )
    assert "spec.template.spec.containers[1].image: Required value" in output

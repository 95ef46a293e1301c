"""The Kubernetes backend against a real cluster: the master's backend runs in the test process
(admin kubeconfig), the execution's pods run on the cluster (as local processes on k8s-real).

The cluster and the per-test namespace come from ``support.k8s_real`` (k8s-real here, where the
test must run; ``TEST_KUBECONFIG`` elsewhere, e.g. kind in the GitHub workflow).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from support.k8s_real import Cluster, wait_until
from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, load_client_configuration
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.render import worker_execution
from teraslice_k8s.kubernetes.state import CacheSettings
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.models.job import validate_job

pytestmark = pytest.mark.cluster


@pytest.fixture
def config(k8s_cluster: Cluster, k8s_namespace: str) -> SysConfig:
    k8s_cluster.kubectl(
        "-n",
        k8s_namespace,
        "create",
        "configmap",
        "teraslice-worker",
        "--from-literal=teraslice.yaml=teraslice: {}\n",
    )
    return parse_config(
        {
            "teraslice": {
                "name": "ts-test",
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_namespace": k8s_namespace,
                "kubernetes_image": k8s_cluster.image,
                "assets_directory": "/app/assets",
            }
        }
    )


@pytest.fixture
def backend(k8s_cluster: Cluster, config: SysConfig) -> Iterator[KubernetesBackend]:
    namespace = config.teraslice.kubernetes_namespace
    api = KubeApi(
        ApiSettings(namespace=namespace), load_client_configuration(kubeconfig=k8s_cluster.kubeconfig)
    )
    backend = KubernetesBackend(config, api, cache_settings=CacheSettings(watch_timeout=10.0))
    yield backend
    backend.close()


def execution(config: SysConfig) -> dict[str, Any]:
    job = validate_job(
        {
            "name": "real-cluster-job",
            "workers": 1,
            "operations": [{"_op": "data_generator"}, {"_op": "noop"}],
        },
        config,
    ).config
    return {**job, "job_id": str(uuid.uuid4()), "ex_id": str(uuid.uuid4()), "_status": "scheduling"}


def test_create_scale_and_stop_an_execution(
    k8s_cluster: Cluster, backend: KubernetesBackend, config: SysConfig
) -> None:
    ex = execution(config)
    selector = f"teraslice.terascope.io/exId={ex['ex_id']}"
    address = backend.allocate_controller(ex)
    backend.allocate_workers(worker_execution(ex, config))
    assert address.hostname.endswith(f".{config.teraslice.kubernetes_namespace}")
    assert backend.execution_ids() == {ex["ex_id"]}

    assert backend.scale_workers(ex["ex_id"], "add", 1) == 2
    (deployment,) = backend.api.list(Kind.DEPLOYMENT, selector).items
    assert deployment["spec"]["replicas"] == 2
    (job,) = backend.api.list(Kind.JOB, selector).items
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert owner["uid"] == job["metadata"]["uid"]
    # Real admission (PodSecurity restricted on the namespace) let the Job controller create the
    # controller pod, and the kubelet bound and started it.
    wait_until(
        lambda: (
            backend.api.list(Kind.POD, f"{selector},app.kubernetes.io/component=execution_controller").items
        ),
        60,
        "the execution controller pod",
    )

    backend.stop_execution(ex["ex_id"], force=True)
    for kind in (Kind.JOB, Kind.DEPLOYMENT, Kind.SERVICE):
        items = backend.api.list(kind, selector).items
        assert [i for i in items if not i["metadata"].get("deletionTimestamp")] == []

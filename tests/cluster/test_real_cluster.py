"""The Kubernetes backend against a real cluster (kind in GitHub CI).

Runs only when ``TEST_KUBECONFIG`` points at a kubeconfig; each test works in a fresh namespace
that it deletes afterwards. Set ``TEST_K8S_IMAGE`` to an image the cluster can pull (default:
``busybox:1.36``, enough for object creation; the pods need not become ready).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, load_client_configuration
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.render import worker_execution
from teraslice_k8s.kubernetes.state import CacheSettings
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.models.job import validate_job

KUBECONFIG = os.environ.get("TEST_KUBECONFIG")

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not KUBECONFIG, reason="TEST_KUBECONFIG is not set: no real cluster to talk to"),
]


@pytest.fixture
def namespace() -> Iterator[str]:
    from kubernetes import client

    name = f"ts-test-{uuid.uuid4().hex[:8]}"
    configuration = load_client_configuration(kubeconfig=KUBECONFIG)
    with client.ApiClient(configuration) as api_client:
        core = client.CoreV1Api(api_client)
        core.create_namespace({"metadata": {"name": name}})
        core.create_namespaced_config_map(
            name, {"metadata": {"name": "teraslice-worker"}, "data": {"teraslice.yaml": "teraslice: {}\n"}}
        )
        try:
            yield name
        finally:
            core.delete_namespace(name)


@pytest.fixture
def config(namespace: str) -> SysConfig:
    return parse_config(
        {
            "teraslice": {
                "name": "ts-test",
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_namespace": namespace,
                "kubernetes_image": os.environ.get("TEST_K8S_IMAGE", "busybox:1.36"),
                "assets_directory": "/app/assets",
            }
        }
    )


@pytest.fixture
def backend(config: SysConfig, namespace: str) -> Iterator[KubernetesBackend]:
    api = KubeApi(ApiSettings(namespace=namespace), load_client_configuration(kubeconfig=KUBECONFIG))
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


def test_create_scale_and_stop_an_execution(backend: KubernetesBackend, config: SysConfig) -> None:
    ex = execution(config)
    address = backend.allocate_controller(ex)
    backend.allocate_workers(worker_execution(ex, config))
    assert address.hostname.endswith(f".{config.teraslice.kubernetes_namespace}")
    assert backend.execution_ids() == {ex["ex_id"]}

    assert backend.scale_workers(ex["ex_id"], "add", 1) == 2
    (deployment,) = backend.api.list(Kind.DEPLOYMENT, f"teraslice.terascope.io/exId={ex['ex_id']}").items
    assert deployment["spec"]["replicas"] == 2
    (job,) = backend.api.list(Kind.JOB, f"teraslice.terascope.io/exId={ex['ex_id']}").items
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert owner["uid"] == job["metadata"]["uid"]

    backend.stop_execution(ex["ex_id"], force=True)
    for kind in (Kind.JOB, Kind.DEPLOYMENT, Kind.SERVICE):
        items = backend.api.list(kind, f"teraslice.terascope.io/exId={ex['ex_id']}").items
        assert [i for i in items if not i["metadata"].get("deletionTimestamp")] == []

"""On the real control plane: a job whose pods no node can take (``targets`` naming a zone no
node has) ends ``failed`` after a short ``slicer_timeout``, with the scheduler's reason in
``_failureReason``, a WARNING naming it, and none of its objects left (issue 16 item 4).

The master's service (store, allocator, lifecycle, Kubernetes backend with the admin
kubeconfig) runs in the test process; the scheduling verdict is the cluster's own
(``PodScheduled=False``, reason ``Unschedulable``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.k8s_real import Cluster, wait_until
from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, load_client_configuration
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.state import CacheSettings
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.store.sqlite import SqliteStore

pytestmark = pytest.mark.cluster

#: Short, so the test is quick; the watchdog counts it from the controller Job's creation.
SLICER_TIMEOUT_MS = 5_000
#: Bound on each wait (the cluster's own pace), not a sleep.
WAIT = 90.0
LIFECYCLE_LOG = "teraslice_k8s.master.lifecycle"


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
                "name": "ts-unsched",
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_namespace": k8s_namespace,
                "kubernetes_image": k8s_cluster.image,
                "assets_directory": "/app/assets",
                "slicer_timeout": SLICER_TIMEOUT_MS,
            },
            "terafoundation": {"prom_metrics_enabled": False},
        }
    )


@pytest.fixture
def service(k8s_cluster: Cluster, config: SysConfig, tmp_path: Path) -> Iterator[MasterService]:
    api = KubeApi(
        ApiSettings(namespace=config.teraslice.kubernetes_namespace),
        load_client_configuration(kubeconfig=k8s_cluster.kubeconfig),
    )
    backend = KubernetesBackend(config, api, cache_settings=CacheSettings(watch_timeout=10.0))
    store = SqliteStore(tmp_path / "state.sqlite")
    settings = MasterSettings.from_config(config)
    assert settings.slicer_timeout_ms == SLICER_TIMEOUT_MS
    svc = MasterService(store, backend, settings, job_validator(config), prepare=spec_preparer(config))
    svc.start()
    yield svc
    svc.close()


def left(api: KubeApi, ex_id: str) -> list[str]:
    """Every object of the execution the API server still lists (pods included)."""
    selector = f"teraslice.terascope.io/exId={ex_id}"
    kinds = (Kind.JOB, Kind.SERVICE, Kind.DEPLOYMENT, Kind.REPLICA_SET, Kind.POD)
    return [
        f"{kind.value}/{item['metadata']['name']}"
        for kind in kinds
        for item in api.list(kind, selector).items
    ]


def test_an_unschedulable_job_fails_after_slicer_timeout_and_leaves_nothing(
    service: MasterService, caplog: pytest.LogCaptureFixture
) -> None:
    body: dict[str, Any] = {
        "name": "unschedulable",
        "workers": 1,
        "targets": [{"key": "zone", "value": "nowhere"}],
        "operations": [{"_op": "data_generator"}, {"_op": "noop"}],
    }
    with caplog.at_level(logging.INFO, logger=LIFECYCLE_LOG):
        ex_id = service.submit_job(body, start=True)["ex_id"]
        wait_until(
            lambda: "Unschedulable" in (service.get_execution(ex_id).get("_pendingReason") or ""),
            WAIT,
            "the Unschedulable reason in _pendingReason",
        )
        waiting = service.get_execution(ex_id)
        assert waiting["_status"] == "initializing"
        assert waiting["_pendingReason"].startswith("pod ts-exc-unschedulable-")  # the controller's
        record = wait_until(
            lambda: (ex := service.get_execution(ex_id))["_status"] == "failed" and ex, WAIT, "failed"
        )
    reason = record["_failureReason"]
    assert reason.startswith(
        f"the execution controller of {ex_id} was not running 5s after allocation (slicer_timeout): "
        "pod ts-exc-unschedulable-"
    )
    assert ": Unschedulable: 0/1 nodes are available: " in reason
    assert "node(s) didn't match Pod's node affinity/selector" in reason
    warnings = [
        r.getMessage() for r in caplog.records if r.name == LIFECYCLE_LOG and r.levelno == logging.WARNING
    ]
    assert warnings == [f"execution {ex_id} failed: {reason}"]
    # Its Job, Service and Deployment were deleted; the garbage collector takes the rest.
    assert isinstance(service.backend, KubernetesBackend)
    api = service.backend.api
    wait_until(lambda: left(api, ex_id) == [], WAIT, "no object of the execution left")

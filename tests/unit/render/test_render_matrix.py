"""A matrix of job properties x cluster settings, each rendered whole and compared with golden files."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from teraslice_k8s.kubernetes.render import render_execution
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.models.job import validate_job

from .cases import EX_ID, JOB_ID, OWNER
from .conftest import Golden

OPERATIONS = [{"_op": "data_generator", "size": 100}, {"_op": "noop"}]

JOBS: dict[str, dict[str, Any]] = {
    "plain": {},
    "labels": {"labels": {"team": "data", "cost center": 42, "on-call": True}},
    "targets": {
        "targets": [
            {"key": "zone", "value": "west"},
            {"key": "example.com/disk", "value": "ssd", "constraint": "preferred"},
            {"key": "dedicated", "value": "teraslice", "constraint": "accepted"},
        ]
    },
    "resources-new": {
        "resources_requests_cpu": 0.25,
        "resources_limits_cpu": 1,
        "resources_limits_memory": 536870912,
        "cpu_execution_controller": 2,
    },
    "resources-old": {"cpu": 2, "memory_execution_controller": 1073741824},
    "storage": {"volumes": [{"name": "data.v1", "path": "/data"}], "ephemeral_storage": True},
    "ports-image-env": {
        "external_ports": [9090, {"name": "metrics", "port": 3333}],
        "kubernetes_image": "registry.example/teraslice-k8s:dev",
        "env_vars": {"NODE_OPTIONS": "--trace-warnings", "EXAMPLE": "job", "QUOTE": 'say "hi"\n'},
    },
    "stateful-hostile-name": {"name": "Ünïcode job: {{ x }} #1 😀 " + "y" * 80, "stateful": True},
}

SETTINGS: dict[str, dict[str, Any]] = {
    "minimal": {"cluster_manager_type": "kubernetesV2"},
    "full": {
        "cluster_manager_type": "kubernetes",
        "name": "prod cluster:east",
        "kubernetes_namespace": "teraslice-prod",
        "kubernetes_image": "teraslice-k8s:1.0.0",
        "kubernetes_image_pull_secret": "regcred",
        "kubernetes_priority_class_name": "teraslice-critical",
        "kubernetes_worker_antiaffinity": True,
        "kubernetes_config_map_name": "prod-worker",
        "execution_controller_targets": [{"key": "node-role", "value": "controllers"}],
        "assets_directory": "/app/assets",
        "assets_volume": "teraslice-assets",
        "cpu": 1,
        "memory": 2147483648,
        "env_vars": {"EXAMPLE": "cluster", "TZ": "UTC"},
        "shutdown_timeout": "2 minutes",
    },
    "overrides": {
        "cluster_manager_type": "kubernetes",
        "kubernetes_overrides_enabled": True,
        "assets_directory": "/app/assets",
    },
}

OVERRIDE = {
    "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["es.local"]}],
    "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
    "dnsPolicy": "ClusterFirst",
}


def make_job(job_key: str, setting_key: str) -> dict[str, Any]:
    job = {"name": f"matrix-{job_key}", "workers": 3, "operations": copy.deepcopy(OPERATIONS)}
    job.update(copy.deepcopy(JOBS[job_key]))
    if setting_key == "overrides":
        job["pod_spec_override"] = copy.deepcopy(OVERRIDE)
    return job


MATRIX = [(j, s) for j in JOBS for s in SETTINGS]


def test_matrix_is_big_enough() -> None:
    assert len(MATRIX) >= 20


@pytest.mark.parametrize(("job_key", "setting_key"), MATRIX, ids=[f"{j}-{s}" for j, s in MATRIX])
def test_matrix_case(job_key: str, setting_key: str, golden: Golden, monkeypatch: pytest.MonkeyPatch) -> None:
    # assets_directory defaults to <cwd>/assets (as in Teraslice); a fixed cwd keeps the golden
    # files independent of where the checkout lives.
    monkeypatch.chdir("/")
    config = parse_config({"teraslice": SETTINGS[setting_key]})
    job = validate_job(make_job(job_key, setting_key), config).config
    record = {**job, "job_id": JOB_ID, "ex_id": EX_ID, "_status": "scheduling"}
    before = copy.deepcopy(record)
    manifests = render_execution(record, config, OWNER)
    assert record == before, "render must not mutate its input"
    golden.check(f"matrix-{job_key}-{setting_key}", manifests)

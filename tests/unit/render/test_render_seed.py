"""Every job snippet of the seed (kubernetes-clustering.md) as a runnable example job.

Each example in examples/jobs/k8s-*.json renders with examples/teraslice.yaml (overrides:
teraslice-overrides.yaml) exactly as the golden files say, and the seed's YAML snippet is
asserted verbatim where the seed shows one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from teraslice_k8s.cli.render import default_ex_id, default_job_id, execution_from_job
from teraslice_k8s.kubernetes.render import render_execution
from teraslice_k8s.models.config import SysConfig, load_config
from teraslice_k8s.models.job import apply_prom_metrics_port, validate_job
from teraslice_k8s.runtime.operations.validation import validate_operations

from .cases import container, decode_ex, pod_spec
from .conftest import Golden

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
JOBS = sorted((EXAMPLES / "jobs").glob("k8s-*.json"))


def config_for(job_file: Path) -> SysConfig:
    name = "teraslice-overrides.yaml" if "override" in job_file.name else "teraslice.yaml"
    return load_config(EXAMPLES / name)


def render_example(job_file: Path) -> list[dict[str, Any]]:
    config = config_for(job_file)
    raw = json.loads(job_file.read_text())
    job = apply_prom_metrics_port(validate_job(raw, config, op_validator=validate_operations).config, config)
    job_id = default_job_id(raw)
    return render_execution(execution_from_job(job, job_id, default_ex_id(job_id)), config)


@pytest.mark.parametrize("job_file", JOBS, ids=[p.stem for p in JOBS])
def test_example_job_renders_as_golden(job_file: Path, golden: Golden) -> None:
    manifests = render_example(job_file)
    assert [m["kind"] for m in manifests] == ["Job", "Service", "Deployment"]
    golden.check(f"seed-{job_file.stem}", manifests)


def seed(snippet: str) -> Any:
    return yaml.safe_load(snippet)


def example(name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    job, service, deployment = render_example(EXAMPLES / "jobs" / f"{name}.json")
    return job, service, deployment


def test_seed_ephemeral_storage() -> None:
    for manifest in example("k8s-ephemeral-storage")[::2]:
        assert {"name": "ephemeral-volume", "emptyDir": {}} in pod_spec(manifest)["volumes"]
        assert {"name": "ephemeral-volume", "mountPath": "/ephemeral0"} in container(manifest)["volumeMounts"]


def test_seed_external_ports() -> None:
    expected = seed("""
    - containerPort: 9090
      protocol: TCP
    - containerPort: 3333
      name: metrics
      protocol: TCP
    """)
    for manifest in example("k8s-external-ports")[::2]:
        assert container(manifest)["ports"] == [{"containerPort": 45680}, *expected]


def test_seed_labels() -> None:
    job, service, deployment = example("k8s-labels")
    assert "job.teraslice.terascope.io/key1" not in service["metadata"]["labels"]  # as Teraslice
    for manifest in (job, deployment):
        assert manifest["metadata"]["labels"]["job.teraslice.terascope.io/key1"] == "value1"
        assert (
            manifest["spec"]["template"]["metadata"]["labels"]["job.teraslice.terascope.io/key1"] == "value1"
        )
    standard = [
        "app.kubernetes.io/name",
        "app.kubernetes.io/component",
        "teraslice.terascope.io/exId",
        "teraslice.terascope.io/jobId",
        "teraslice.terascope.io/jobName",
        "app.kubernetes.io/instance",
    ]
    assert list(deployment["metadata"]["labels"]) == [*standard, "job.teraslice.terascope.io/key1"]
    assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "execution_controller"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/instance"] == "ts-dev1"
    assert deployment["metadata"]["labels"]["teraslice.terascope.io/jobName"] == "k8s-labels"


def test_seed_resources_new_method() -> None:
    _, _, deployment = example("k8s-resources-new")
    assert container(deployment)["resources"] == {
        "requests": {"cpu": 0.25, "memory": 128000000},
        "limits": {"cpu": 1, "memory": 536870912},
    }


def test_seed_resources_old_method() -> None:
    _, _, deployment = example("k8s-resources-old")
    amounts = {"cpu": 1, "memory": 2147483648}
    assert container(deployment)["resources"] == {"requests": amounts, "limits": amounts}


def test_seed_execution_controller_resources() -> None:
    for name in ("k8s-controller-resources", "k8s-labels"):
        job = example(name)[0]
        amounts = {"cpu": 0.5, "memory": 512000000}
        assert container(job)["resources"] == {"requests": amounts, "limits": amounts}


def test_seed_stateful() -> None:
    job, _, deployment = example("k8s-stateful")
    for manifest in (job, deployment):
        assert pod_spec(manifest)["priorityClassName"] == "teraslice-high-priority"
        assert (
            manifest["spec"]["template"]["metadata"]["labels"]["job-property.teraslice.terascope.io/stateful"]
            == "true"
        )
    # Not stateful: workers get no priority class (the controller always does, as in Teraslice).
    plain_job, _, plain_deployment = example("k8s-labels")
    assert "priorityClassName" not in pod_spec(plain_deployment)
    assert pod_spec(plain_job)["priorityClassName"] == "teraslice-high-priority"


REQUIRED_TWO = """
affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: zone
              operator: In
              values:
                - west
            - key: region
              operator: In
              values:
                - texas
"""
PREFERRED_TWO = """
affinity:
  nodeAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 1
        preference:
          matchExpressions:
            - key: zone
              operator: In
              values:
                - west
      - weight: 1
        preference:
          matchExpressions:
            - key: region
              operator: In
              values:
                - texas
"""
ACCEPTED_TWO = """
tolerations:
  - key: zone
    operator: Equal
    value: west
    effect: NoSchedule
  - key: region
    operator: Equal
    value: texas
    effect: NoSchedule
"""


@pytest.mark.parametrize(
    ("name", "snippet"),
    [
        ("k8s-targets-required", REQUIRED_TWO),
        ("k8s-targets-preferred", PREFERRED_TWO),
        ("k8s-targets-accepted", ACCEPTED_TWO),
    ],
)
def test_seed_target_constraints(name: str, snippet: str) -> None:
    expected = seed(snippet)
    for manifest in example(name)[::2]:
        key = next(iter(expected))
        assert pod_spec(manifest)[key] == expected[key]


def test_seed_targets_default_and_required_accepted() -> None:
    zone = {"key": "zone", "operator": "In", "values": ["west"]}
    for manifest in example("k8s-targets-default")[::2]:
        terms = pod_spec(manifest)["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert terms == {"nodeSelectorTerms": [{"matchExpressions": [zone]}]}
    for manifest in example("k8s-targets-required-accepted")[::2]:
        spec = pod_spec(manifest)
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms == {"nodeSelectorTerms": [{"matchExpressions": [zone]}]}
        assert spec["tolerations"] == [
            {"key": "region", "operator": "Equal", "value": "texas", "effect": "NoSchedule"}
        ]


def test_seed_volumes() -> None:
    for manifest in example("k8s-volumes")[::2]:
        assert {
            "name": "teraslice-data1",
            "persistentVolumeClaim": {"claimName": "teraslice-data1"},
        } in pod_spec(manifest)["volumes"]
        assert {"name": "teraslice-data1", "mountPath": "/data"} in container(manifest)["volumeMounts"]


def test_seed_pod_spec_override() -> None:
    init = [
        {"name": "init-hello-world", "image": "busybox:1.28", "command": ["sh", "-c", "echo 'HELLO WORLD'"]}
    ]
    for manifest in example("k8s-pod-spec-override")[::2]:
        assert pod_spec(manifest)["initContainers"] == init
        assert container(manifest)["name"] == manifest["metadata"]["name"]


def test_seed_prometheus_adds_metrics_port_and_keeps_settings_in_ex() -> None:
    job, _, deployment = example("k8s-prometheus")
    for manifest in (job, deployment):
        assert container(manifest)["ports"][-1] == {
            "containerPort": 3333,
            "name": "metrics",
            "protocol": "TCP",
        }
        ex = decode_ex(manifest)
        assert (ex["prom_metrics_enabled"], ex["prom_metrics_port"], ex["prom_metrics_add_default"]) == (
            True,
            3333,
            True,
        )


def test_master_and_worker_ex_payloads() -> None:
    job, service, deployment = example("k8s-labels")
    controller_ex, worker_ex = decode_ex(job), decode_ex(deployment)
    assert controller_ex["slicer_port"] == 45680 and list(controller_ex)[-1] == "slicer_port"
    assert "slicer_hostname" not in controller_ex
    assert worker_ex["_status"] == "initializing"
    assert worker_ex["slicer_hostname"] == f"{service['metadata']['name']}.ts-dev1"
    assert worker_ex["slicer_port"] == 45680

"""Teraslice 3.18's own kubernetesV2 unit cases (k8s-backend.md §10.1-10.4), ported.

Each case asserts what Teraslice's test asserts (same inputs) and compares the whole manifest
with a golden file. Where Teraslice's expectation is a bug we fixed, the case says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.kubernetes.context import build_context
from teraslice_k8s.kubernetes.render import (
    render_controller_job,
    render_controller_service,
    render_worker_deployment,
)
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.models.job import OVERRIDES_DISABLED_MESSAGE

from .cases import OWNER, config, container, env_value, execution, pod_spec
from .conftest import Golden

ABSENT = object()
Manifest = dict[str, Any]

CONFIG_VOLUME = {
    "name": "config",
    "configMap": {"name": "ts-dev1-worker", "items": [{"key": "teraslice.yaml", "path": "teraslice.yaml"}]},
}
CONFIG_MOUNT = {"mountPath": "/app/config", "name": "config"}
ANTI_AFFINITY = {
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 1,
                "podAffinityTerm": {
                    "labelSelector": {
                        "matchExpressions": [
                            {"key": "app.kubernetes.io/name", "operator": "In", "values": ["teraslice"]},
                            {"key": "app.kubernetes.io/instance", "operator": "In", "values": ["ts-dev1"]},
                        ]
                    },
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
}


def required(*pairs: tuple[str, str]) -> dict[str, Any]:
    expressions = [{"key": k, "operator": "In", "values": [v]} for k, v in pairs]
    return {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": expressions}]
        }
    }


def preferred(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "preference": {"matchExpressions": [{"key": k, "operator": "In", "values": [v]}]}}
            for k, v in pairs
        ]
    }


def tolerations(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "operator": "Equal", "value": v, "effect": "NoSchedule"} for k, v in pairs]


def same(**amounts: Any) -> dict[str, Any]:
    return {"requests": dict(amounts), "limits": dict(amounts)}


def check(**expected: Any) -> Callable[[Manifest], None]:
    """Assert pod-spec keys (``spec_<key>``), container keys (``c_<key>``) and env (``env_<NAME>``)."""

    def run(manifest: Manifest) -> None:
        for key, value in expected.items():
            if key.startswith("spec_"):
                actual = pod_spec(manifest).get(key[5:], ABSENT)
            elif key.startswith("c_"):
                actual = container(manifest).get(key[2:], ABSENT)
            elif key.startswith("env_"):
                actual = env_value(manifest, key[4:])
            elif key == "replicas":
                actual = manifest["spec"]["replicas"]
            elif key == "name":
                actual = manifest["metadata"]["name"]
            elif key == "labels":
                actual = manifest["metadata"]["labels"]
            elif key == "pod_labels":
                actual = manifest["spec"]["template"]["metadata"]["labels"]
            else:
                raise AssertionError(key)
            if isinstance(value, dict) and key in {"labels", "pod_labels"}:
                actual = {k: v for k, v in actual.items() if k in value}
            assert actual == value, key

    return run


WORKER = "ts-wkr-example-data-generator-job-7ba9afb0-417a"
DEFAULTS = check(
    name=WORKER, replicas=2, spec_affinity=ABSENT, spec_imagePullSecrets=ABSENT, spec_priorityClassName=ABSENT
)

# (id, manifest, config overrides, execution overrides, Teraslice's assertions)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], Callable[[Manifest], None]]] = [
    ("01-default", "deployment", {}, {}, DEFAULTS),
    (
        "01b-default-volumes",
        "deployment",
        {},
        {},
        check(spec_volumes=[CONFIG_VOLUME], c_volumeMounts=[CONFIG_MOUNT]),
    ),
    (
        "02-image-pull-secret",
        "deployment",
        {"kubernetes_image_pull_secret": "teraslice-image-pull-secret"},
        {},
        check(spec_imagePullSecrets=[{"name": "teraslice-image-pull-secret"}]),
    ),
    (
        "03-worker-antiaffinity",
        "deployment",
        {"kubernetes_worker_antiaffinity": True},
        {},
        check(spec_affinity=ANTI_AFFINITY),
    ),
    (
        "04-assets-volume",
        "deployment",
        {"assets_directory": "/assets", "assets_volume": "asset-volume"},
        {},
        check(
            spec_volumes=[
                CONFIG_VOLUME,
                {"name": "asset-volume", "persistentVolumeClaim": {"claimName": "asset-volume"}},
            ],
            c_volumeMounts=[CONFIG_MOUNT, {"name": "asset-volume", "mountPath": "/assets"}],
        ),
    ),
    (
        "05-assets-empty-dir",
        "deployment",
        {"assets_directory": "/app/assets"},
        {},
        check(
            spec_volumes=[CONFIG_VOLUME, {"name": "assets", "emptyDir": {}}],
            c_volumeMounts=[CONFIG_MOUNT, {"name": "assets", "mountPath": "/app/assets"}],
        ),
    ),
    (
        "06-one-volume",
        "deployment",
        {},
        {"volumes": [{"name": "teraslice-data1", "path": "/data"}]},
        check(
            spec_volumes=[
                CONFIG_VOLUME,
                {"name": "teraslice-data1", "persistentVolumeClaim": {"claimName": "teraslice-data1"}},
            ],
            c_volumeMounts=[CONFIG_MOUNT, {"name": "teraslice-data1", "mountPath": "/data"}],
        ),
    ),
    (
        "07-two-volumes",
        "deployment",
        {},
        {"volumes": [{"name": "teraslice-data1", "path": "/data"}, {"name": "tmp", "path": "/tmp"}]},
        check(
            spec_volumes=[
                CONFIG_VOLUME,
                {"name": "teraslice-data1", "persistentVolumeClaim": {"claimName": "teraslice-data1"}},
                {"name": "tmp", "persistentVolumeClaim": {"claimName": "tmp"}},
            ],
            c_volumeMounts=[
                CONFIG_MOUNT,
                {"name": "teraslice-data1", "mountPath": "/data"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        ),
    ),
    ("08-no-resources", "deployment", {}, {}, check(c_resources=ABSENT, env_NODE_OPTIONS=None)),
    (
        "09-config-resources",
        "deployment",
        {"cpu": 1, "memory": 2147483648},
        {},
        check(c_resources=same(cpu=1, memory=2147483648), env_NODE_OPTIONS="--max-old-space-size=1843"),
    ),
    ("10-env-job-wins", "deployment", {}, {}, check(env_FOO="baz", env_EXAMPLE="test")),
    (
        "11-execution-resources",
        "deployment",
        {"cpu": 1, "memory": 2147483648},
        {"cpu": 2, "memory": 1073741824},
        check(c_resources=same(cpu=2, memory=1073741824), env_NODE_OPTIONS="--max-old-space-size=922"),
    ),
    (
        "12-execution-cpu-config-memory",
        "deployment",
        {"cpu": 1, "memory": 2147483648},
        {"cpu": 2},
        check(c_resources=same(cpu=2, memory=2147483648), env_NODE_OPTIONS="--max-old-space-size=1843"),
    ),
    (
        "13-execution-cpu-memory",
        "deployment",
        {},
        {"cpu": 1, "memory": 2147483648},
        check(c_resources=same(cpu=1, memory=2147483648), env_NODE_OPTIONS="--max-old-space-size=1843"),
    ),
    (
        "14-new-resources",
        "deployment",
        {},
        {
            "resources_requests_cpu": 1,
            "resources_limits_cpu": 2,
            "resources_requests_memory": 2147483648,
            "resources_limits_memory": 3147483648,
        },
        check(
            c_resources={
                "requests": {"cpu": 1, "memory": 2147483648},
                "limits": {"cpu": 2, "memory": 3147483648},
            },
            env_NODE_OPTIONS="--max-old-space-size=2702",
        ),
    ),
    ("15-memory-only", "deployment", {}, {"memory": 2147483648}, check(c_resources=same(memory=2147483648))),
    ("16-cpu-only", "deployment", {}, {"cpu": 1}, check(c_resources=same(cpu=1), env_NODE_OPTIONS=None)),
    (
        "17-ephemeral-storage",
        "deployment",
        {},
        {"ephemeral_storage": True},
        check(c_volumeMounts=[CONFIG_MOUNT, {"name": "ephemeral-volume", "mountPath": "/ephemeral0"}]),
    ),
    (
        "18-no-ephemeral-storage",
        "deployment",
        {},
        {"ephemeral_storage": False},
        check(c_volumeMounts=[CONFIG_MOUNT]),
    ),
    (
        "19-no-targets",
        "deployment",
        {},
        {"targets": []},
        check(spec_affinity=ABSENT, spec_tolerations=ABSENT),
    ),
    (
        "20-one-target",
        "deployment",
        {},
        {"targets": [{"key": "zone", "value": "west"}]},
        check(spec_affinity={"nodeAffinity": required(("zone", "west"))}),
    ),
    (
        "21-target-and-antiaffinity",
        "deployment",
        {"kubernetes_worker_antiaffinity": True},
        {"targets": [{"key": "zone", "value": "west"}]},
        check(spec_affinity={"nodeAffinity": required(("zone", "west")), **ANTI_AFFINITY}),
    ),
    (
        "22-required",
        "deployment",
        {},
        {"targets": [{"key": "zone", "value": "west", "constraint": "required"}]},
        check(spec_affinity={"nodeAffinity": required(("zone", "west"))}),
    ),
    (
        "23-two-required",
        "deployment",
        {},
        {
            "targets": [
                {"key": "zone", "value": "west", "constraint": "required"},
                {"key": "region", "value": "42", "constraint": "required"},
            ]
        },
        check(spec_affinity={"nodeAffinity": required(("zone", "west"), ("region", "42"))}),
    ),
    (
        "24-preferred",
        "deployment",
        {},
        {"targets": [{"key": "zone", "value": "west", "constraint": "preferred"}]},
        check(spec_affinity={"nodeAffinity": preferred(("zone", "west"))}),
    ),
    (
        "25-two-preferred",
        "deployment",
        {},
        {
            "targets": [
                {"key": "zone", "value": "west", "constraint": "preferred"},
                {"key": "region", "value": "texas", "constraint": "preferred"},
            ]
        },
        check(spec_affinity={"nodeAffinity": preferred(("zone", "west"), ("region", "texas"))}),
    ),
    (
        "26-accepted",
        "deployment",
        {},
        {"targets": [{"key": "zone", "value": "west", "constraint": "accepted"}]},
        check(spec_tolerations=tolerations(("zone", "west")), spec_affinity=ABSENT),
    ),
    (
        "27-two-accepted",
        "deployment",
        {},
        {
            "targets": [
                {"key": "zone", "value": "west", "constraint": "accepted"},
                {"key": "region", "value": "texas", "constraint": "accepted"},
            ]
        },
        check(spec_tolerations=tolerations(("zone", "west"), ("region", "texas"))),
    ),
    (
        "28-required-and-preferred",
        "deployment",
        {},
        {
            "targets": [
                {"key": "zone", "value": "west", "constraint": "required"},
                {"key": "region", "value": "texas", "constraint": "preferred"},
            ]
        },
        check(
            spec_affinity={"nodeAffinity": {**required(("zone", "west")), **preferred(("region", "texas"))}}
        ),
    ),
    (
        "29-six-targets",
        "deployment",
        {},
        {
            "targets": [
                {"key": "zone", "value": "west", "constraint": "required"},
                {"key": "region", "value": "42", "constraint": "required"},
                {"key": "zone", "value": "west", "constraint": "preferred"},
                {"key": "region", "value": "texas", "constraint": "preferred"},
                {"key": "zone", "value": "west", "constraint": "accepted"},
                {"key": "region", "value": "texas", "constraint": "accepted"},
            ]
        },
        check(
            spec_affinity={
                "nodeAffinity": {
                    **required(("zone", "west"), ("region", "42")),
                    **preferred(("zone", "west"), ("region", "texas")),
                }
            },
            spec_tolerations=tolerations(("zone", "west"), ("region", "texas")),
        ),
    ),
    (
        "30-labels",
        "deployment",
        {},
        {"labels": {"key1": "value1", "key2": "value2"}},
        check(
            labels={"job.teraslice.terascope.io/key1": "value1", "job.teraslice.terascope.io/key2": "value2"},
            pod_labels={
                "job.teraslice.terascope.io/key1": "value1",
                "job.teraslice.terascope.io/key2": "value2",
            },
        ),
    ),
    (
        # Teraslice gives `…/key2-` (ends in "-": invalid); ours gets the hash suffix.
        "31-label-forbidden-characters",
        "deployment",
        {},
        {"labels": {"key 1": "value1", "key2%": "value2", "abcdefghij" * 6 + "j123": "value3"}},
        check(
            labels={
                "job.teraslice.terascope.io/key-1": "value1",
                "job.teraslice.terascope.io/key2-2b62a860e4": "value2",
                "job.teraslice.terascope.io/" + ("abcdefghij" * 6 + "j12"): "value3",
            }
        ),
    ),
    (
        # Teraslice omits `protocol` on external ports; the seed shows `protocol: TCP`.
        "32-external-port-deployment",
        "deployment",
        {},
        {"external_ports": [9090]},
        check(c_ports=[{"containerPort": 45680}, {"containerPort": 9090, "protocol": "TCP"}]),
    ),
    (
        "33-external-port-job",
        "job",
        {},
        {"external_ports": [9090]},
        check(c_ports=[{"containerPort": 45680}, {"containerPort": 9090, "protocol": "TCP"}]),
    ),
    (
        "34-external-ports-named",
        "deployment",
        {},
        {"external_ports": [9090, {"name": "metrics", "port": 9091}]},
        check(
            c_ports=[
                {"containerPort": 45680},
                {"containerPort": 9090, "protocol": "TCP"},
                {"containerPort": 9091, "name": "metrics", "protocol": "TCP"},
            ]
        ),
    ),
    (
        "35-external-ports-job",
        "job",
        {},
        {"external_ports": [9090, 9091]},
        check(
            c_ports=[
                {"containerPort": 45680},
                {"containerPort": 9090, "protocol": "TCP"},
                {"containerPort": 9091, "protocol": "TCP"},
            ]
        ),
    ),
    (
        # Teraslice leaves -1 here when nothing is configured; we use the documented defaults.
        "36-controller-default",
        "job",
        {},
        {},
        check(
            name="ts-exc-example-data-generator-job-7ba9afb0-417a",
            spec_affinity=ABSENT,
            spec_imagePullSecrets=ABSENT,
            spec_priorityClassName=ABSENT,
            spec_volumes=[CONFIG_VOLUME],
            c_volumeMounts=[CONFIG_MOUNT],
            c_resources=same(cpu=0.5, memory=512000000),
            env_NODE_OPTIONS="--max-old-space-size=439",
        ),
    ),
    (
        "37-controller-config-resources",
        "job",
        {"cpu_execution_controller": 1, "memory_execution_controller": 2147483648},
        {},
        check(c_resources=same(cpu=1, memory=2147483648), env_NODE_OPTIONS="--max-old-space-size=1843"),
    ),
    (
        "38-controller-execution-resources",
        "job",
        {"cpu_execution_controller": 1, "memory_execution_controller": 2147483648},
        {"cpu_execution_controller": 2, "memory_execution_controller": 1073741824},
        check(c_resources=same(cpu=2, memory=1073741824), env_NODE_OPTIONS="--max-old-space-size=922"),
    ),
    (
        "40-controller-targets",
        "job",
        {
            "execution_controller_targets": [
                {"key": "key1", "value": "value1"},
                {"key": "key2", "value": "value2"},
            ]
        },
        {},
        check(
            spec_affinity={"nodeAffinity": required(("key1", "value1"), ("key2", "value2"))},
            spec_tolerations=tolerations(("key1", "value1"), ("key2", "value2")),
        ),
    ),
    (
        "41-controller-and-job-targets",
        "job",
        {"execution_controller_targets": [{"key": "key1", "value": "value1"}]},
        {
            "targets": [
                {"key": "zone", "value": "west"},
                {"key": "region", "value": "texas", "constraint": "accepted"},
            ]
        },
        check(
            spec_affinity={"nodeAffinity": required(("zone", "west"), ("key1", "value1"))},
            spec_tolerations=tolerations(("region", "texas"), ("key1", "value1")),
        ),
    ),
    (
        "42-stateful-deployment",
        "deployment",
        {"kubernetes_priority_class_name": "testpriorityclass"},
        {"stateful": True},
        check(
            spec_priorityClassName="testpriorityclass",
            pod_labels={"job-property.teraslice.terascope.io/stateful": "true"},
        ),
    ),
    (
        "42-stateful-job",
        "job",
        {"kubernetes_priority_class_name": "testpriorityclass"},
        {"stateful": True},
        check(
            spec_priorityClassName="testpriorityclass",
            pod_labels={"job-property.teraslice.terascope.io/stateful": "true"},
        ),
    ),
    (
        "44-overrides-enabled",
        "deployment",
        {"kubernetes_overrides_enabled": True},
        {"pod_spec_override": {"initContainers": []}},
        check(spec_initContainers=[]),
    ),
    (
        "44-overrides-enabled-job",
        "job",
        {"kubernetes_overrides_enabled": True},
        {"pod_spec_override": {"initContainers": []}},
        check(spec_initContainers=[]),
    ),
]


def render(kind: str, cfg: dict[str, Any], ex: dict[str, Any]) -> Manifest:
    conf, record = config(**cfg), execution(**ex)
    if kind == "job":
        return render_controller_job(record, conf)
    if kind == "service":
        return render_controller_service(record, conf, OWNER)
    return render_worker_deployment(record, conf, OWNER)


Case = tuple[str, str, dict[str, Any], dict[str, Any], Callable[[Manifest], None]]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_teraslice_case(case: Case, golden: Golden) -> None:
    name, kind, cfg, ex, expect = case
    manifest = render(kind, cfg, ex)
    expect(manifest)
    golden.check(f"teraslice-{name}", [manifest])


@pytest.mark.parametrize("kind", ["job", "deployment"])
def test_39_names_table_matches_teraslice(kind: str) -> None:
    infix = "exc" if kind == "job" else "wkr"
    table = [("aa", "aa"), ("00", "a0"), ("a", "a"), ("0", "a"), ("-job-", "ajob0"), ("-JOB-", "ajob0")]
    for name, label in [*table, ("teraslice-JOB-name", "teraslice-job-name")]:
        manifest = render(kind, {}, {"name": name})
        assert manifest["metadata"]["name"] == f"ts-{infix}-{label}-7ba9afb0-417a"


def test_43_override_with_overrides_disabled_is_a_clear_error() -> None:
    # Teraslice silently ignores a stored override when the flag is off; we refuse it.
    with pytest.raises(ValidationError) as info:
        render("deployment", {}, {"pod_spec_override": {"initContainers": []}})
    assert info.value.lines == [f"pod_spec_override: {OVERRIDES_DISABLED_MESSAGE}"]


def test_45_security_contexts() -> None:
    for kind in ("job", "deployment"):
        manifest = render(kind, {}, {})
        assert pod_spec(manifest)["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container(manifest)["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": 10001,
        }


def test_46_service(golden: Golden) -> None:
    manifest = render("service", {}, {})
    assert manifest["kind"] == "Service"
    assert manifest["metadata"]["name"] == "svc-ts-exc-example-data-generator-job-7ba9afb0-417a"
    assert manifest["spec"] == {
        "selector": {
            "app.kubernetes.io/component": "execution_controller",
            "teraslice.terascope.io/exId": "e76a0278-d9bc-4d78-bf14-431bcd97528c",
        },
        "ports": [{"port": 45680, "targetPort": 45680}],
    }
    golden.check("teraslice-46-service", [manifest])


# --- utils-v2-spec.ts (§10.4): template-level cases --------------------------------------

UTILS_CONFIG = {
    "name": "example-cluster",
    "kubernetes_namespace": "some-namespace",
    "shutdown_timeout": 12345000,
    "kubernetes_image": "some/docker-image",
    "kubernetes_config_map_name": "teracluster-worker",
}
UTILS_EXECUTION = {"name": "example-job", "job_id": "some-job-id", "ex_id": "some-ex-id", "workers": 1}


def test_utils_job_template() -> None:
    manifest = render_controller_job(UTILS_EXECUTION, parse_config({"teraslice": UTILS_CONFIG}))
    assert manifest["kind"] == "Job"
    assert list(manifest["metadata"]) == ["labels", "name", "namespace"]
    assert manifest["metadata"]["labels"] == manifest["spec"]["template"]["metadata"]["labels"]
    assert container(manifest)["image"] == "some/docker-image"
    assert container(manifest)["name"] == manifest["metadata"]["name"]
    assert [e["name"] for e in container(manifest)["env"]][:3] == ["NODE_TYPE", "EX", "POD_IP"]
    assert container(manifest)["env"][2] == {
        "name": "POD_IP",
        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
    }
    assert pod_spec(manifest)["terminationGracePeriodSeconds"] == 12345


def test_utils_deployment_and_service_templates() -> None:
    conf = parse_config({"teraslice": UTILS_CONFIG})
    deployment = render_worker_deployment(UTILS_EXECUTION, conf, OWNER)
    owner = {
        "apiVersion": "batch/v1",
        "controller": False,
        "blockOwnerDeletion": False,
        "kind": "Job",
        "name": "example-job-abcd",
        "uid": "UID1",
    }
    assert list(deployment["metadata"]) == ["labels", "name", "namespace", "ownerReferences"]
    assert deployment["metadata"]["ownerReferences"] == [owner]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["metadata"]["labels"] == deployment["spec"]["template"]["metadata"]["labels"]
    service = render_controller_service(UTILS_EXECUTION, conf, OWNER)
    assert service["metadata"]["labels"] == {
        "app.kubernetes.io/name": "teraslice",
        "app.kubernetes.io/component": "execution_controller",
        "teraslice.terascope.io/exId": "some-ex-id",
        "teraslice.terascope.io/jobId": "some-job-id",
    }
    assert service["metadata"]["ownerReferences"] == [owner]
    assert service["spec"]["ports"] == [{"port": 45680, "targetPort": 45680}]


@pytest.mark.parametrize("kind", ["deployment", "service"])
def test_utils_owner_required(kind: str) -> None:
    # Teraslice: "K8s config requires exName to create a <folder> template".
    with pytest.raises(ValueError, match=f"a {kind} needs the owner reference"):
        build_context(UTILS_EXECUTION, parse_config({"teraslice": UTILS_CONFIG}), kind)  # type: ignore[arg-type]


def test_utils_image_required() -> None:
    # Teraslice: "K8s config requires a dockerImage ..."; an empty image cannot get this far.
    with pytest.raises(ValidationError, match=r"teraslice\.kubernetes_image: must not be empty"):
        parse_config({"teraslice": {**UTILS_CONFIG, "kubernetes_image": ""}})

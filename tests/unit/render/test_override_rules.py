"""pod_spec_override: how it addresses the main container of both pods, and what it may not break.

Submit-time rules (``models.pod_override.override_problems`` through ``validate_job``), one test
per rule with its exact message; then the rendered pods: one override reaches the main container
of the controller AND the worker pod, and adds a sidecar to both without a second main container.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.kubernetes.render import render_controller_job, render_worker_deployment
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.models.job import validate_job

from .cases import OWNER, config, execution, pod_spec

K8S_OVERRIDES = parse_config(
    {"teraslice": {"cluster_manager_type": "kubernetes", "kubernetes_overrides_enabled": True}}
)
OPS = [{"_op": "data_generator", "size": 10}, {"_op": "noop"}]

NAME_REQUIRED = (
    "must be an object with a name (these lists merge by name; only containers[0] may omit it, "
    'to address the main container, or name it "teraslice")'
)
RESERVED = (
    "is reserved for the main containers, which are named differently in the two pods; address the "
    'main container of both pods as containers[0] without a name or as "teraslice"'
)
CONFIG_VOLUME = "the config volume is managed by Teraslice and cannot be overridden"
CONFIG_MOUNT = "the config mount (/app/config) is managed by Teraslice and cannot be overridden"
IMAGE = "the main container's image can be changed but not removed: must be a non-empty string"


def problems(override: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        validate_job(
            {"name": "j", "operations": copy.deepcopy(OPS), "pod_spec_override": override}, K8S_OVERRIDES
        )
    return list(info.value.lines)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"containers": None},
            [
                "pod_spec_override.containers: must not be null: every pod needs its main "
                "container and its config volume"
            ],
        ),
        (
            {"volumes": None},
            [
                "pod_spec_override.volumes: must not be null: every pod needs its main "
                "container and its config volume"
            ],
        ),
        (
            {"containers": [{"volumeMounts": None}]},
            [
                "pod_spec_override.containers[0].volumeMounts: must not be null: "
                "the main container needs its config mount (/app/config)"
            ],
        ),
        (
            {
                "containers": [
                    {"name": "teraslice", "volumeMounts": [{"name": "config", "mountPath": "/etc"}]}
                ]
            },
            [f"pod_spec_override.containers[0].volumeMounts[0]: {CONFIG_MOUNT}"],
        ),
        ({"containers": [{"image": None}]}, [f"pod_spec_override.containers[0].image: {IMAGE}"]),
        ({"containers": [{"image": "  "}]}, [f"pod_spec_override.containers[0].image: {IMAGE}"]),
        (
            {"containers": [{"name": "s", "image": "b"}, {"name": "teraslice", "image": ""}]},
            [f"pod_spec_override.containers[1].image: {IMAGE}"],
        ),
        (
            {"volumes": [{"name": "config", "configMap": None, "emptyDir": {}}]},
            [f"pod_spec_override.volumes[0]: {CONFIG_VOLUME}"],
        ),
        (
            {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "config", "configMap": {"name": "x"}}]},
            [f"pod_spec_override.volumes[1]: {CONFIG_VOLUME}"],
        ),
        (
            {"containers": [{"name": "ts-exc-my-job-1234", "image": "x"}]},
            [f"pod_spec_override.containers[0].name: {RESERVED}"],
        ),
        (
            {"initContainers": [{"name": "ts-wkr-x", "image": "x"}]},
            [f"pod_spec_override.initContainers[0].name: {RESERVED}"],
        ),
        (
            {"containers": [{"image": "a"}, {"image": "b"}]},
            [f"pod_spec_override.containers[1]: {NAME_REQUIRED}"],
        ),
        ({"initContainers": [{"image": "a"}]}, [f"pod_spec_override.initContainers[0]: {NAME_REQUIRED}"]),
        ({"volumes": [{"emptyDir": {}}]}, [f"pod_spec_override.volumes[0]: {NAME_REQUIRED}"]),
    ],
)
def test_refused_at_submit(override: dict[str, Any], expected: list[str]) -> None:
    assert problems(override) == expected


@pytest.mark.parametrize(
    "override",
    [
        {"containers": [{"resources": {"limits": {"memory": "1Gi"}}}]},
        {
            "containers": [
                {"name": "teraslice", "image": "mine:2", "volumeMounts": [{"name": "d", "mountPath": "/d"}]}
            ]
        },
        {"containers": [{"env": [{"name": "A", "value": "1"}]}, {"name": "sidecar", "image": "busybox"}]},
        {
            "volumes": [{"name": "d", "emptyDir": {}}],
            "initContainers": [{"name": "init", "image": "busybox"}],
        },
    ],
)
def test_accepted_at_submit(override: dict[str, Any]) -> None:
    spec = {"name": "j", "operations": copy.deepcopy(OPS), "pod_spec_override": override}
    assert validate_job(spec, K8S_OVERRIDES).config["pod_spec_override"] == override


def without_ex(spec: dict[str, Any]) -> dict[str, Any]:
    """The pod spec minus the ``EX`` env value (it carries the execution, override included)."""
    for item in spec["containers"][0]["env"]:
        if item["name"] == "EX":
            item["value"] = "<EX>"
    return spec


def both_pods(override: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = config(kubernetes_overrides_enabled=True)
    ex = execution(pod_spec_override=override)
    return (
        without_ex(pod_spec(render_controller_job(ex, cfg))),
        without_ex(pod_spec(render_worker_deployment(ex, cfg, OWNER))),
    )


def test_one_override_reaches_the_main_container_of_both_pods() -> None:
    plain = both_pods({})
    override = {
        "containers": [
            {"resources": {"limits": {"memory": "3Gi"}}, "env": [{"name": "EXTRA", "value": "1"}]},
            {"name": "sidecar", "image": "busybox:1.36"},
        ]
    }
    for base, pod in zip(plain, both_pods(override), strict=True):
        main, sidecar = pod["containers"]
        expected_main = copy.deepcopy(base["containers"][0])
        expected_main["resources"] = {
            **expected_main.get("resources", {}),
            "limits": {**expected_main.get("resources", {}).get("limits", {}), "memory": "3Gi"},
        }
        expected_main["env"] = [*expected_main["env"], {"name": "EXTRA", "value": "1"}]
        assert main == expected_main
        assert sidecar == {"name": "sidecar", "image": "busybox:1.36"}
        assert pod["volumes"] == base["volumes"]


def test_the_alias_changes_the_image_of_both_pods_and_keeps_their_names() -> None:
    plain = both_pods({})
    pods = both_pods({"containers": [{"name": "teraslice", "image": "mine:2"}]})
    for base, pod in zip(plain, pods, strict=True):
        assert pod["containers"] == [{**base["containers"][0], "image": "mine:2"}]
    assert pods[0]["containers"][0]["name"].startswith("ts-exc-")
    assert pods[1]["containers"][0]["name"].startswith("ts-wkr-")

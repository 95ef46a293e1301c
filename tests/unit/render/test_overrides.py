"""pod_spec_override merge rules (overrides.merge_pod_spec)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.kubernetes.overrides import merge_pod_spec

BASE: dict[str, Any] = {
    "containers": [
        {
            "name": "ts-wkr-x",
            "image": "teraslice-k8s:0.1.0",
            "env": [{"name": "NODE_TYPE", "value": "worker"}],
            "ports": [{"containerPort": 45680}],
            "volumeMounts": [{"mountPath": "/app/config", "name": "config"}],
        }
    ],
    "volumes": [{"name": "config", "configMap": {"name": "teraslice-worker"}}],
    "tolerations": [{"key": "zone", "operator": "Equal", "value": "west", "effect": "NoSchedule"}],
    "securityContext": {"runAsUser": 10001, "runAsNonRoot": True},
}


@pytest.mark.parametrize(
    ("override", "expected_changes"),
    [
        # new keys are appended
        (
            {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}]},
            {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}]},
        ),
        ({"initContainers": []}, {"initContainers": []}),
        # dicts merge deeply
        (
            {"securityContext": {"fsGroup": 2000}},
            {"securityContext": {"runAsUser": 10001, "runAsNonRoot": True, "fsGroup": 2000}},
        ),
        # named lists merge by name: new names appended ...
        (
            {"volumes": [{"name": "scratch", "emptyDir": {}}]},
            {"volumes": [BASE["volumes"][0], {"name": "scratch", "emptyDir": {}}]},
        ),
        # ... same names merged deeply, recursively into the container's own named lists
        (
            {
                "containers": [
                    {
                        "name": "ts-wkr-x",
                        "env": [{"name": "DEBUG", "value": "1"}],
                        "imagePullPolicy": "Always",
                    }
                ]
            },
            {
                "containers": [
                    {
                        **BASE["containers"][0],
                        "env": [{"name": "NODE_TYPE", "value": "worker"}, {"name": "DEBUG", "value": "1"}],
                        "imagePullPolicy": "Always",
                    }
                ]
            },
        ),
        (
            {"containers": [{"name": "sidecar", "image": "busybox"}]},
            {"containers": [BASE["containers"][0], {"name": "sidecar", "image": "busybox"}]},
        ),
        # the main container is containers[0] without a name, or "teraslice" anywhere
        (
            {"containers": [{"resources": {"limits": {"cpu": "2"}}}]},
            {"containers": [{**BASE["containers"][0], "resources": {"limits": {"cpu": "2"}}}]},
        ),
        (
            {
                "containers": [
                    {"name": "sidecar", "image": "busybox"},
                    {"name": "teraslice", "image": "mine:1"},
                ]
            },
            {
                "containers": [
                    {**BASE["containers"][0], "image": "mine:1"},
                    {"name": "sidecar", "image": "busybox"},
                ]
            },
        ),
        # lists of unnamed items are replaced
        ({"tolerations": [{"operator": "Exists"}]}, {"tolerations": [{"operator": "Exists"}]}),
        # an empty named list adds nothing; scalars and null replace
        ({"volumes": []}, {}),
        ({"dnsPolicy": "None", "securityContext": None}, {"dnsPolicy": "None", "securityContext": None}),
    ],
)
def test_merge_rules(override: dict[str, Any], expected_changes: dict[str, Any]) -> None:
    base, before_override = copy.deepcopy(BASE), copy.deepcopy(override)
    merged = merge_pod_spec(base, override)
    assert merged == {**BASE, **expected_changes}
    assert list(merged)[: len(BASE)] == list(BASE), "base keys keep their order"
    assert base == BASE and override == before_override, "inputs must not be mutated"


def test_result_shares_nothing_with_inputs() -> None:
    base, override = copy.deepcopy(BASE), {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}]}
    merged = merge_pod_spec(base, override)
    merged["containers"][0]["env"].append({"name": "X"})
    merged["hostAliases"][0]["hostnames"].append("b")
    assert base == BASE
    assert override == {"hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}]}


NAMES_HINT = "give every item a name (these lists merge by name)"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"containers": [{"name": "sidecar", "image": "evil"}, {"image": "evil"}]},
            "pod_spec_override.containers: must not remove ts-wkr-x; " + NAMES_HINT,
        ),
        (
            {"containers": None},
            "pod_spec_override.containers: must not remove ts-wkr-x; " + NAMES_HINT,
        ),
        # the render-time guard behind the submit-time rules (models/pod_override.py)
        (
            {"containers": [{"volumeMounts": None}]},
            "pod_spec_override.containers[0].volumeMounts: the config mount (/app/config) is managed by "
            "Teraslice and cannot be overridden",
        ),
        (
            {"containers": [{"name": "teraslice", "volumeMounts": [{"name": "config", "mountPath": "/x"}]}]},
            "pod_spec_override.containers[0].volumeMounts: the config mount (/app/config) is managed by "
            "Teraslice and cannot be overridden",
        ),
        (
            {"containers": [{"image": None}]},
            "pod_spec_override.containers[0].image: the main container's image can be changed but not "
            "removed: must be a non-empty string",
        ),
        (
            {"volumes": [{"name": "config", "configMap": None, "emptyDir": {}}]},
            "pod_spec_override.volumes: the config volume is managed by Teraslice and cannot be overridden",
        ),
        (
            {"volumes": [{"name": "config", "configMap": {"name": "other"}}]},
            "pod_spec_override.volumes: the config volume is managed by Teraslice and cannot be overridden",
        ),
        (
            {"volumes": None},
            "pod_spec_override.volumes: must not remove config; " + NAMES_HINT,
        ),
    ],
)
def test_main_container_and_config_volume_cannot_be_dropped(override: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        merge_pod_spec(BASE, override)
    assert info.value.lines == [message]

"""values.schema.json rejects wrong types and unknown keys, and ``helm lint`` says why."""

from __future__ import annotations

from typing import Any

import pytest

from .helm_render import HelmError, lint, render

BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown top-level key", {"iamge": {"tag": "x"}}, "Additional property iamge is not allowed"),
    (
        "unknown nested key",
        {"jobPods": {"workerAntiAfinity": True}},
        "Additional property workerAntiAfinity is not allowed",
    ),
    (
        "string for boolean",
        {"elasticsearch": {"enabled": "yes"}},
        "elasticsearch.enabled: Invalid type. Expected: boolean, given: string",
    ),
    (
        "string for number",
        {"jobPods": {"executionController": {"cpu": "half"}}},
        "jobPods.executionController.cpu: Invalid type. Expected: number, given: string",
    ),
    (
        "float for integer",
        {"jobPods": {"executionController": {"memory": 1.5}}},
        "jobPods.executionController.memory: Invalid type. Expected: integer, given: number",
    ),
    (
        "bad enum",
        {"image": {"pullPolicy": "Sometimes"}},
        'image.pullPolicy must be one of the following: "Always", "IfNotPresent", "Never"',
    ),
    (
        "bad service type",
        {"service": {"type": "LoadBalancer"}},
        'service.type must be one of the following: "ClusterIP", "NodePort"',
    ),
    ("node port out of range", {"service": {"type": "NodePort", "nodePort": 5678}}, "service.nodePort"),
    ("list for map", {"commonLabels": ["a"]}, "commonLabels: Invalid type. Expected: object, given: array"),
    (
        "target without value",
        {"jobPods": {"executionController": {"targets": [{"key": "zone"}]}}},
        "value is required",
    ),
    (
        "bad rbac verb",
        {"rbac": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]}},
        "rbac.rules.0.verbs.0 must be one of the following",
    ),
    ("uppercase cluster name", {"clusterName": "Prod"}, "clusterName: Does not match pattern"),
    ("cluster name with a quote", {"clusterName": 'a"b'}, "clusterName: Does not match pattern"),
    (
        "pull secret not an object name",
        {"jobPods": {"imagePullSecret": "My Secret"}},
        "jobPods.imagePullSecret: Does not match pattern",
    ),
    (
        "reserved env var",
        {"jobPods": {"envVars": {"EX": "1"}}},
        "jobPods.envVars: Must not validate the schema (not)",
    ),
    (
        "bad secretEnv name",
        {"secretEnv": [{"name": "A-B", "secretName": "s", "key": "k"}]},
        "secretEnv.0.name: Does not match pattern",
    ),
]


@pytest.mark.parametrize(("case", "values", "message"), BAD_VALUES, ids=[c[0] for c in BAD_VALUES])
def test_lint_rejects_bad_values_with_the_reason(case: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmError) as error:
        lint(values)
    assert "values don't meet the specifications of the schema" in error.value.output
    assert message in error.value.output


@pytest.mark.parametrize(("case", "values", "message"), BAD_VALUES[:3], ids=[c[0] for c in BAD_VALUES[:3]])
def test_template_and_install_refuse_bad_values(case: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(HelmError) as error:
        render(values=values)
    assert message in error.value.output


def test_lint_accepts_the_defaults() -> None:
    assert "0 chart(s) failed" in lint({})

"""Hostile strings in user values never break the rendered YAML and arrive unchanged."""

from __future__ import annotations

import pytest

from .helm_render import container, render

HOSTILE = [
    "quote \" and ' apostrophe",
    "new\nline: value\n- item",
    "# not a comment",
    "{{ .Values.image }}",
    "key: value, {flow: map}",
    "tab\tand trailing space ",
    "ünïcödé ✓ 🚀",
    "yes",
    "0x1F",
    "",
]


#: Cluster names the config model accepts (lowercase, no index-forbidden characters) that are
#: still hostile to YAML.
HOSTILE_NAMES = [
    "new\nline: x\n- y",
    "it's {{ .x }}",
    "\u00fcn\u00ef \U0001f680",
    "yes",
    "0x1f",
    "key: v, {flow: map}",
    "'",
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_strings_round_trip(value: str) -> None:
    rendered = render(
        values={
            "commonLabels": {"team": value},
            "master": {
                "extraEnv": [{"name": "HOSTILE", "value": value}],
                "podAnnotations": {"note": value},
                "podLabels": {"owner": value},
            },
            "jobPods": {"envVars": {"HOSTILE": value}},
            "teraslice": {"custom": value},
        }
    )
    config = rendered.config("ts-teraslice-master")
    assert config["teraslice"]["env_vars"] == {"HOSTILE": value}
    assert config["teraslice"]["custom"] == value
    deployment = rendered.get("Deployment", "ts-teraslice-master")
    assert deployment["metadata"]["labels"]["team"] == value
    pod_meta = deployment["spec"]["template"]["metadata"]
    assert pod_meta["annotations"]["note"] == value
    assert pod_meta["labels"]["owner"] == value
    env = {e["name"]: e.get("value") for e in container(deployment, "master")["env"]}
    assert env["HOSTILE"] == value


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_cluster_names_round_trip(name: str) -> None:
    rendered = render(values={"clusterName": name})
    assert rendered.config("ts-teraslice-master")["teraslice"]["name"] == name
    assert rendered.config("ts-teraslice-worker")["teraslice"]["name"] == name
    test_pod = rendered.get("Pod", "ts-teraslice-master-test-api")
    test_env = {e["name"]: e["value"] for e in container(test_pod, "test-api")["env"]}
    assert test_env["TERASLICE_NAME"] == name
    # The instance label only ever holds label-safe characters.
    instance = test_pod["metadata"]["labels"]["app.kubernetes.io/instance"]
    assert all(ch.isascii() and (ch.isalnum() or ch in "_.-") for ch in instance)
    assert instance[0].isalnum() and instance[-1].isalnum()


def test_hostile_value_cannot_override_selector_labels() -> None:
    rendered = render(values={"master": {"podLabels": {"app.kubernetes.io/component": "worker"}}})
    labels = rendered.get("Deployment", "ts-teraslice-master")["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "master"

"""The master pod gets what the seed says it runs with: the assets volume and the job pods'
priority class, whichever way they are set (issue 14 item 2)."""

from __future__ import annotations

import pytest

from .helm_render import HelmError, render

MASTER = "ts-teraslice-master"


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("assets_directory", "assets.directory"),
        ("assets_volume", "assets.persistence (enabled, existingClaim)"),
    ],
)
def test_free_form_assets_keys_are_refused_with_the_value_to_use(key: str, hint: str) -> None:
    with pytest.raises(HelmError) as error:
        render(values={"teraslice": {key: "/data/assets"}})
    assert (
        f"teraslice.{key} is set by the chart from {hint}, which also mounts it into the master pod; "
        f"set {hint} instead"
    ) in error.value.output


def test_assets_directory_and_claim_reach_the_master_and_the_job_pods_alike() -> None:
    rendered = render(
        values={
            "assets": {
                "directory": "/data/assets",
                "persistence": {"enabled": True, "existingClaim": "shared"},
            }
        }
    )
    pod = rendered.get("Deployment", MASTER)["spec"]["template"]["spec"]
    (main,) = [c for c in pod["containers"] if c["name"] == "master"]
    assert {"name": "assets", "mountPath": "/data/assets"} in main["volumeMounts"]
    assert {"name": "assets", "persistentVolumeClaim": {"claimName": "shared"}} in pod["volumes"]
    for configmap in (MASTER, "ts-teraslice-worker"):
        teraslice = rendered.config(configmap)["teraslice"]
        assert (teraslice["assets_directory"], teraslice["assets_volume"]) == ("/data/assets", "shared")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, None),
        ({"jobPods": {"priorityClassName": "high"}}, "high"),
        ({"teraslice": {"kubernetes_priority_class_name": "free"}}, "free"),
        (
            {
                "teraslice": {"kubernetes_priority_class_name": "free"},
                "jobPods": {"priorityClassName": "high"},
            },
            "free",
        ),
        ({"jobPods": {"priorityClassName": "high"}, "master": {"priorityClassName": "own"}}, "own"),
        ({"priorityClass": {"create": True, "name": "created"}}, "created"),
    ],
)
def test_master_runs_with_the_job_pods_priority_class(
    values: dict[str, object], expected: str | None
) -> None:
    rendered = render(values=values)
    pod = rendered.get("Deployment", MASTER)["spec"]["template"]["spec"]
    assert pod.get("priorityClassName") == expected
    if "master" not in values:  # the job pods' setting and the master's are the same value
        config = rendered.config("ts-teraslice-worker")["teraslice"]
        assert config.get("kubernetes_priority_class_name") == expected

"""Inputs shared by the render tests: Teraslice's own unit-test fixture (k8s-backend.md §10)."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from teraslice_k8s.kubernetes.render import OwnerRef
from teraslice_k8s.models.config import SysConfig, parse_config

JOB_ID = "7ba9afb0-417a-4936-adc5-b15e31d1edd1"
EX_ID = "e76a0278-d9bc-4d78-bf14-431bcd97528c"
OWNER = OwnerRef(name="example-job-abcd", uid="UID1")

#: k8sResource-v2-spec.ts `terasliceConfig` (+ the config-map fallback it relies on).
TERASLICE_CONFIG: dict[str, Any] = {
    "cluster_manager_type": "kubernetesV2",
    "shutdown_timeout": 60000,
    "assets_directory": "",
    "assets_volume": "",
    "name": "ts-dev1",
    "env_vars": {"FOO": "bar", "EXAMPLE": "test"},
    "kubernetes_image": "teraslice:k8sdev",
    "kubernetes_namespace": "ts-dev1",
    "kubernetes_image_pull_secret": "",
    "kubernetes_config_map_name": "ts-dev1-worker",
}

#: k8sResource-v2-spec.ts `execution`.
EXECUTION: dict[str, Any] = {
    "name": "example-data-generator-job",
    "workers": 2,
    "job_id": JOB_ID,
    "ex_id": EX_ID,
    "env_vars": {"FOO": "baz"},
}


def config(**teraslice: Any) -> SysConfig:
    return parse_config({"teraslice": {**copy.deepcopy(TERASLICE_CONFIG), **teraslice}})


def execution(**fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(EXECUTION), **fields}


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = manifest["spec"]["template"]["spec"]
    return spec


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = pod_spec(manifest)["containers"][0]
    return first


def env_value(manifest: dict[str, Any], name: str) -> Any:
    found = [item for item in container(manifest)["env"] if item["name"] == name]
    assert len(found) <= 1, f"duplicate env {name}"
    return found[0].get("value") if found else None


def decode_ex(manifest: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(env_value(manifest, "EX")).decode("utf-8"))

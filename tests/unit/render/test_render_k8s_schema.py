"""Every golden manifest passes kubernetes-validate --strict for every Kubernetes >= 1.25."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import pytest
import yaml

from .conftest import GOLDEN_DIR


def supported_versions() -> list[str]:
    versions = {v for v in kv_utils.all_versions() if tuple(int(p) for p in v.split(".")[:2]) >= (1, 25)}
    return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


VERSIONS = supported_versions()


@functools.cache
def golden_documents() -> list[dict[str, Any]]:
    """Every distinct manifest of tests/golden/render (read once per session)."""
    seen: dict[str, dict[str, Any]] = {}
    for path in sorted(GOLDEN_DIR.glob("*.yaml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader):
            seen.setdefault(json.dumps(doc, sort_keys=True), doc)
    return list(seen.values())


@pytest.fixture(scope="module", autouse=True)
def _schemas(cached_k8s_schemas: None) -> None:
    """Every test here validates; share the memoised schema reader."""


def test_versions_cover_125_to_newest() -> None:
    assert VERSIONS[0] == "1.25.0"
    assert VERSIONS[-1] == kv_utils.latest_version()


def test_there_are_golden_manifests() -> None:
    kinds = {doc["kind"] for doc in golden_documents()}
    assert kinds == {"Job", "Service", "Deployment"}
    assert len(golden_documents()) > 100


@pytest.mark.parametrize("version", VERSIONS)
def test_golden_manifests_are_valid_kubernetes(version: str) -> None:
    failures = []
    for doc in golden_documents():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{doc['kind']} {doc['metadata']['name']}: {str(exc).splitlines()[0]}")
    assert failures == []


def test_validator_rejects_unknown_fields() -> None:
    doc = copy.deepcopy(golden_documents()[0])
    broken = {**doc, "spec": {**doc["spec"], "unknownField": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_golden_dir_exists() -> None:
    assert Path(GOLDEN_DIR).is_dir()

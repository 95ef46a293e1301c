"""Rendering helpers for the chart tests: ``helm template`` in a subprocess, parsed with PyYAML.

helm is required: these tests fail (never skip) when it is missing, because CI installs it
(``bash ci/install-tools.sh`` puts helm v3 in ``.tools/bin``).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "teraslice"
EXAMPLES_DIR = ROOT / "values-examples"
EXAMPLES = sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml"))
RELEASE = "ts"
NAMESPACE = "ts-dev1"

#: Objects without a namespace.
CLUSTER_SCOPED = {"PriorityClass"}


def helm_binary() -> str:
    """``$HELM``, else the repo's ``.tools/bin/helm``, else ``helm`` on PATH; fails the test otherwise."""
    candidates = [os.environ.get("HELM"), str(ROOT / ".tools" / "bin" / "helm"), shutil.which("helm")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("helm is not installed: run `bash ci/install-tools.sh` (it puts helm in .tools/bin)")


class HelmError(Exception):
    """``helm`` exited non-zero; ``output`` holds its stdout and stderr."""

    def __init__(self, args: Sequence[str], output: str) -> None:
        super().__init__(f"{' '.join(args)} failed:\n{output}")
        self.output = output


def run_helm(args: Sequence[str]) -> str:
    cmd = [helm_binary(), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise HelmError(cmd, proc.stdout + proc.stderr)
    return proc.stdout


@dataclass(frozen=True)
class Rendered:
    """The parsed documents of one ``helm template`` run."""

    text: str
    docs: tuple[dict[str, Any], ...]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}: {self.names()}"
        return found[0]

    def names(self) -> list[tuple[str, str]]:
        return sorted((d["kind"], d["metadata"]["name"]) for d in self.docs)

    def config(self, configmap: str) -> dict[str, Any]:
        """The parsed ``teraslice.yaml`` of a ConfigMap."""
        data: dict[str, Any] = yaml.safe_load(self.get("ConfigMap", configmap)["data"]["teraslice.yaml"])
        return data


@functools.lru_cache(maxsize=64)
def _render_cached(args: tuple[str, ...]) -> Rendered:
    text = run_helm(args)
    docs = tuple(d for d in yaml.safe_load_all(text) if d)
    return Rendered(text, docs)


def render(
    *,
    examples: Iterable[str] = (),
    values: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    namespace: str = NAMESPACE,
    release: str = RELEASE,
    api_versions: Iterable[str] = (),
) -> Rendered:
    """``helm template <release> charts/teraslice`` with values-examples files, an inline values
    mapping (written to a temporary file, so any string survives), ``--set`` and ``--api-versions``."""
    args = ["template", release, str(CHART), "--namespace", namespace]
    for example in examples:
        args += ["--values", str(EXAMPLES_DIR / example)]
    for api in api_versions:
        args += ["--api-versions", api]
    for item in sets:
        args += ["--set", item]
    if values is None:
        return _render_cached(tuple(args))
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(values), handle)
    try:
        text = run_helm([*args, "--values", handle.name])
    finally:
        os.unlink(handle.name)
    return Rendered(text, tuple(d for d in yaml.safe_load_all(text) if d))


def lint(values: Mapping[str, Any]) -> str:
    """``helm lint --strict`` with an inline values mapping; returns the output, raises HelmError."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(values), handle)
    try:
        return run_helm(["lint", "--strict", str(CHART), "--namespace", NAMESPACE, "--values", handle.name])
    finally:
        os.unlink(handle.name)


def container(pod_owner: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A named container of a Deployment/StatefulSet/Pod."""
    spec = pod_owner["spec"]
    pod_spec = spec["template"]["spec"] if "template" in spec else spec
    found = [c for c in pod_spec["containers"] if c["name"] == name]
    assert len(found) == 1, f"container {name!r} not found"
    result: dict[str, Any] = found[0]
    return result

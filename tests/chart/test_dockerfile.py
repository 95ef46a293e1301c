"""The Dockerfile builds the image the chart and the config default name (no Docker engine here,
so the file is parsed and checked instruction by instruction)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from teraslice_k8s.models.config import DEFAULT_IMAGE

from .helm_render import CHART, ROOT, render


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


INSTRUCTIONS = parse_dockerfile((ROOT / "Dockerfile").read_text())


def _stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "FROM":
            stages.append([])
        assert stages, "instructions before the first FROM"
        stages[-1].append(instruction)
    return stages


def _last(stage: list[Instruction], keyword: str) -> str:
    found = [i.arguments for i in stage if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def test_multi_stage_on_python_311_slim() -> None:
    stages = _stages()
    assert len(stages) == 2
    assert stages[0][0].arguments == "python:3.11-slim AS build"
    assert stages[1][0].arguments == "python:3.11-slim"
    build_runs = " ".join(i.arguments for i in stages[0] if i.keyword == "RUN")
    assert re.search(r"pip install \.(\s|$)", build_runs)
    assert any(i.keyword == "COPY" and i.arguments.startswith("--from=build ") for i in stages[1])


def test_runtime_stage_is_non_root_with_the_node_type_entrypoint() -> None:
    final = _stages()[-1]
    assert _last(final, "USER").split(":") == ["10001", "10001"]
    assert _last(final, "WORKDIR") == "/app"
    assert json.loads(_last(final, "ENTRYPOINT"))[-3:] == ["python", "-m", "teraslice_k8s"]
    assert _last(final, "EXPOSE").split() == ["5678", "45680"]
    env = " ".join(i.arguments for i in final if i.keyword == "ENV")
    assert "TERAFOUNDATION_CONFIG=/app/config/teraslice.yaml" in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert not [i for i in INSTRUCTIONS if i.keyword == "HEALTHCHECK"]
    runs = " ".join(i.arguments for i in final if i.keyword == "RUN")
    assert "--uid 10001" in runs and "--gid 10001" in runs


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "COPY" and not instruction.arguments.startswith("--from"):
            *sources, _destination = instruction.arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source not in ignored, f"{source} is copied but .dockerignore drops it"
    assert (ROOT / "plugin" / "teraslice_k8s" / "__main__.py").exists()


def test_chart_config_and_image_agree_on_the_default_image() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert f"{values['image']['repository']}:{chart['appVersion']}" == DEFAULT_IMAGE
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in pyproject
    deployment = render().get("Deployment", "ts-teraslice-master")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == DEFAULT_IMAGE


def test_chart_pod_security_matches_the_image_user() -> None:
    pod_spec = render().get("Deployment", "ts-teraslice-master")["spec"]["template"]["spec"]
    assert pod_spec["securityContext"]["runAsUser"] == 10001
    assert pod_spec["securityContext"]["runAsGroup"] == 10001
    assert Path("/tmp") in {Path(m["mountPath"]) for m in pod_spec["containers"][0]["volumeMounts"]}

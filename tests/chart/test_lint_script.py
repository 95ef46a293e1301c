"""ci/lint-chart.sh fails, loudly, on what it exists to catch (ci/check.sh runs it on the real chart)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .helm_render import CHART, ROOT

SCRIPT = ROOT / "ci" / "lint-chart.sh"


def run_lint(chart: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHART": str(chart), "KUBE_VERSIONS": "1.25.0 1.37.0", "CT_TARGET": "no-such-ref"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, check=False, env=env, cwd=ROOT
    )


@pytest.fixture
def chart_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "teraslice"
    shutil.copytree(CHART, copy)
    return copy


def test_unknown_core_kind_fails(chart_copy: Path) -> None:
    # A misspelt kind: helm renders it, only the schema validation can notice.
    (chart_copy / "templates" / "typo.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deploymnet\nmetadata:\n  name: typo\nspec: {}\n"
    )
    result = run_lint(chart_copy)
    assert result.returncode == 1
    assert "Couldn't find schema for kind Deploymnet with api version apps/v1" in result.stderr
    assert "lint-chart: FAILED: kubernetes-validate -k 1.25.0 has no schema" in result.stderr


def test_yamllint_failure_fails(chart_copy: Path) -> None:
    values = chart_copy / "values.yaml"
    values.write_text(values.read_text() + "#no starting space\n")
    result = run_lint(chart_copy)
    assert result.returncode == 1
    assert "missing starting space in comment" in result.stdout
    assert "lint-chart: FAILED: yamllint" in result.stderr


def test_missing_tool_fails(tmp_path: Path) -> None:
    # A checkout without .tools/ and .venv/, and a PATH with only what a shell needs.
    (tmp_path / "ci").mkdir()
    shutil.copy(SCRIPT, tmp_path / "ci" / SCRIPT.name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    result = subprocess.run(
        [str(bin_dir / "bash"), str(tmp_path / "ci" / SCRIPT.name)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env={"PATH": str(bin_dir), "CHART": str(CHART)},
    )
    assert result.returncode == 1
    assert result.stderr == "lint-chart: FAILED: 'helm' is not installed (run: bash ci/install-tools.sh)\n"

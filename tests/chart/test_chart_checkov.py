"""checkov (offline) finds no failed check in what the chart renders, except checks the chart
itself skips with a written reason (``checkov.io/skipN`` annotations).

checkov is required: ``$CHECKOV`` (set by ci/check.sh) or ``.venv-checkov/bin/checkov``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .helm_render import CHART, EXAMPLES, ROOT, helm_binary, render

MONITORING = ("monitoring.coreos.com/v1",)


def checkov_binary() -> str:
    candidate = os.environ.get("CHECKOV") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if not os.access(candidate, os.X_OK):
        pytest.fail(f"checkov is not installed at {candidate}: run `bash ci/install-tools.sh`")
    return candidate


def run_checkov(args: list[str]) -> dict[str, Any]:
    """One checkov run with JSON output; helm's directory goes first on PATH for the helm runner."""
    env = {**os.environ, "PATH": f"{Path(helm_binary()).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [checkov_binary(), *args, "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=ROOT,
    )
    assert proc.returncode in (0, 1), f"checkov crashed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    # Several frameworks give a list; an empty scan gives a bare summary. Both are wrong here.
    assert isinstance(report, dict) and "results" in report, f"checkov scanned nothing: {proc.stdout[:500]}"
    return report


def _failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]


def test_rendered_manifests_pass_checkov(tmp_path: Path) -> None:
    cases = {"default": ()} | {Path(e).stem: (e,) for e in EXAMPLES}
    for name, examples in cases.items():
        (tmp_path / f"{name}.yaml").write_text(render(examples=examples, api_versions=MONITORING).text)
    report = run_checkov(["--directory", str(tmp_path), "--framework", "kubernetes"])
    summary = report["summary"]
    # Not a silent pass: every render was parsed and checked.
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 14 * len(cases) // 2
    assert summary["passed"] > 100
    assert _failures(report) == []
    skipped = report["results"]["skipped_checks"]
    assert skipped, "the chart's documented skips should show up as skipped checks"
    for check in skipped:
        # Only the chart skips checks (no --skip-check here), and always with a reason.
        assert len(check["check_result"].get("suppress_comment", "")) > 30, check


def test_chart_directory_passes_checkov_helm_runner() -> None:
    """checkov's own helm runner (it calls helm template itself, into namespace `default`)."""
    report = run_checkov(["--directory", str(CHART), "--framework", "helm"])
    assert report["check_type"] == "helm"
    assert report["summary"]["resource_count"] >= 10, "helm was not found or rendered nothing"
    # CKV_K8S_21 ("default namespace") only fires because this runner renders into `default`;
    # every object is in .Release.Namespace, which test_rendered_manifests_pass_checkov checks.
    assert [f for f in _failures(report) if not f.startswith("CKV_K8S_21 ")] == []

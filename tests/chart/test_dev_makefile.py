"""examples/k8s/Makefile (the seed's dev workflow) is correct without a cluster: every target
expands under ``make -n`` in every mode, the helm command it runs renders, and the files and CLI
commands it uses exist."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
import yaml

from teraslice_k8s.cli import build_parser

from .helm_render import ROOT, run_helm

MAKEFILE_DIR = ROOT / "examples" / "k8s"
TARGETS = [
    "help", "cluster-up", "cluster-down", "build", "setup-all", "setup", "show", "logs", "logs-master",
    "register", "start", "stop", "status", "scaleup", "scaledown", "master-start", "master-stop",
    "rebuild", "test", "port-forward", "destroy", "destroy-all",
]  # fmt: skip
MODES = ["minikube", "kind", "hybrid"]
#: Fixed URLs so the dry run never asks minikube for its IP.
FIXED = ["TERASLICE_MASTER_URL=http://master.test:5678", "ES_URL=http://es.test:9200"]


def dry_run(target: str, mode: str) -> list[str]:
    make = shutil.which("make")
    if make is None:
        pytest.fail("GNU make is required for the Makefile tests")
    proc = subprocess.run(
        [make, "-s", "-n", "-C", str(MAKEFILE_DIR), target, f"TERASLICE_MODE={mode}", *FIXED],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", TARGETS)
def test_every_target_expands(target: str, mode: str) -> None:
    assert dry_run(target, mode)


def test_help_lists_every_target() -> None:
    text = "\n".join(dry_run("help", "minikube"))
    proc = subprocess.run(["bash", "-c", text], capture_output=True, text=True, check=True, cwd=MAKEFILE_DIR)
    listed = {
        line.split()[0] for line in proc.stdout.splitlines() if line.startswith("  ") and "=" not in line
    }
    assert listed == set(TARGETS)


@pytest.mark.parametrize("mode", MODES)
def test_setup_installs_the_chart_with_values_that_render(mode: str) -> None:
    helm_lines = [line for line in dry_run("setup-all", mode) if line.startswith("helm upgrade --install")]
    assert len(helm_lines) == 1
    args = shlex.split(helm_lines[0])[1:]
    assert args[:4] == ["upgrade", "--install", "teraslice", str(ROOT / "charts" / "teraslice")]
    # The same install as `helm template` (no cluster): it must render with these values.
    template = ["template", *args[2:]]
    for flag in ("--create-namespace", "--wait"):
        template.remove(flag)
    timeout = template.index("--timeout")
    del template[timeout : timeout + 2]
    docs = [d for d in yaml.safe_load_all(run_helm(template)) if d]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["metadata"] == {
        **deployment["metadata"],
        "name": "teraslice-master",
        "namespace": "ts-dev1",
    }
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "teraslice-k8sdev:1"
    service = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "teraslice-master")
    assert service["spec"]["ports"][0]["nodePort"] == 30678
    instance = deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"]
    assert f"app.kubernetes.io/instance={instance}," in "\n".join(dry_run("master-stop", "minikube"))


def test_register_uses_existing_jobs_and_real_cli_commands() -> None:
    lines = "\n".join(dry_run("register", "minikube"))
    jobs = lines.split("for job in ", 1)[1].split("; do", 1)[0].split()
    assert "generate-to-es" in jobs
    for job in jobs:
        assert (ROOT / "examples" / "jobs" / f"{job}.json").exists(), job
    parser = build_parser()
    used = {
        ("jobs", "register", "--save"): "register",
        ("jobs", "start"): "start",
        ("jobs", "stop"): "stop",
        ("jobs", "status"): "status",
        ("jobs", "workers"): "scaleup",
        ("ex", "list"): "show",
    }
    for command, target in used.items():
        text = " ".join(dry_run(target, "minikube"))
        assert "teraslice-k8s " + " ".join(command) in text, (command, target)
    # The client commands exist and take the job file / the arguments the Makefile passes.
    parser.parse_args(["jobs", "register", "--save", "job.json"])
    parser.parse_args(["jobs", "start", "job.json"])
    parser.parse_args(["jobs", "stop", "job.json"])
    parser.parse_args(["jobs", "workers", "job.json", "add", "2"])
    parser.parse_args(["ex", "list"])
    parser.parse_args(["master", "--config", "teraslice.yaml"])


def test_help_never_asks_minikube() -> None:
    """`make help` on a machine without minikube prints the targets and nothing on stderr (the
    master URL is expanded only by the recipes that use it)."""
    make = shutil.which("make")
    assert make is not None, "GNU make is required for the Makefile tests"
    proc = subprocess.run(
        [make, "-s", "-C", str(MAKEFILE_DIR), "help", "TERASLICE_MODE=minikube"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "  status" in proc.stdout

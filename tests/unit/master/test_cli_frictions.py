"""The command line's small frictions of issue 12 (items 2 and 5), asserted on its real output:
a saved job file registered again, ``--url`` ending in ``/v1``, whole ids in tables off a
terminal, config errors naming the file once, ``--help`` texts, and a reader that closes the
pipe (``| head``)."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from teraslice_k8s.cli import build_parser
from teraslice_k8s.cli.run import _Progress, _rate
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.base import ExFilter, JobFilter
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import job_spec
from .test_cli_client import cli

ROOT = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "teraslice_k8s"]


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job_spec(name="cli-job")), encoding="utf-8")
    return path


def test_register_save_on_a_saved_file_updates_its_job(
    master_url: str, job_file: Path, store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("jobs", "register", str(job_file), "--save", "--url", master_url) == 0
    (job,) = store.list_jobs()
    assert capsys.readouterr().out == f"registered job cli-job as {job['job_id']}\n"

    saved = json.loads(job_file.read_text(encoding="utf-8"))
    saved["workers"] = 5
    job_file.write_text(json.dumps(saved), encoding="utf-8")
    assert cli("jobs", "register", str(job_file), "--save", "--url", master_url) == 0
    out, err = capsys.readouterr()
    assert out == f"updated job cli-job as {job['job_id']}\n"
    assert err == (
        f"warning: {job_file} is already registered on {master_url} as job {job['job_id']}: "
        "updating that job instead of registering another\n"
    )
    (updated,) = store.list_jobs()
    assert (updated["job_id"], updated["workers"]) == (job["job_id"], 5)
    assert "__metadata" not in updated


def test_register_without_save_on_a_saved_file_warns(
    master_url: str, job_file: Path, store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("jobs", "register", str(job_file), "--save", "--url", master_url) == 0
    first = store.list_jobs()[0]["job_id"]
    capsys.readouterr()
    assert cli("jobs", "register", str(job_file), "--url", master_url) == 0
    out, err = capsys.readouterr()
    second = next(j["job_id"] for j in store.list_jobs() if j["job_id"] != first)
    assert out == f"registered job cli-job as {second}\n"
    assert err == (
        f"warning: {job_file} is already registered on {master_url} as job {first}; "
        "registering another job (--save updates the saved one)\n"
    )


def test_a_saved_file_for_another_master_registers_a_new_job(
    master_url: str, job_file: Path, store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(job_file.read_text(encoding="utf-8"))
    data["__metadata"] = {"cli": {"cluster": "http://elsewhere:5678", "job_id": "not-here"}}
    job_file.write_text(json.dumps(data), encoding="utf-8")
    assert cli("jobs", "register", str(job_file), "--save", "--url", master_url) == 0
    (job,) = store.list_jobs()
    assert capsys.readouterr() == (f"registered job cli-job as {job['job_id']}\n", "")


@pytest.mark.parametrize("suffix", ["/v1", "/v1/", "/"])
def test_url_with_the_api_prefix_is_the_same_master(
    master_url: str, job_file: Path, store: SqliteStore, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("jobs", "register", str(job_file), "--url", master_url + suffix) == 0
    assert store.count_jobs(JobFilter()) == 1
    capsys.readouterr()
    assert cli("jobs", "list", "--json", "--url", master_url + suffix) == 0
    assert [j["name"] for j in json.loads(capsys.readouterr().out)] == ["cli-job"]


def test_tables_print_whole_ids_off_a_terminal(
    master_url: str, job_file: Path, store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "a-job-name-long-enough-to-be-cut-in-eighty-columns"
    job_file.write_text(json.dumps(job_spec(name=name)), encoding="utf-8")
    assert cli("jobs", "register", str(job_file), "--start", "--url", master_url) == 0
    capsys.readouterr()
    (ex,) = store.list_executions(ExFilter())
    assert cli("ex", "list", "--url", master_url) == 0
    out = capsys.readouterr().out
    row = re.compile(rf"│ {name} │ {ex['ex_id']} │ {ex['job_id']} │ \w+ +│ 2 +│ \d{{4}}-\d\d-\d\dT[\d:.]+Z │")
    assert any(row.fullmatch(line) for line in out.splitlines()), out
    assert "…" not in out


def test_master_config_errors_name_the_file_once(tmp_path: Path) -> None:
    missing = run_cli(tmp_path, "master", "--config", "teraslice.yaml")
    assert (missing.returncode, missing.stderr) == (
        2,
        "cannot read teraslice.yaml: No such file or directory\n",
    )

    (tmp_path / "bad.yaml").write_text("teraslice:\n  name: [a\n", encoding="utf-8")
    bad = run_cli(tmp_path, "master", "--config", "bad.yaml")
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "bad.yaml is not valid YAML: while parsing a flow sequence",
        '  in "bad.yaml", line 2, column 9',
        "expected ',' or ']', but got '<stream end>'",
        '  in "bad.yaml", line 3, column 1',
    ]

    (tmp_path / "port.yaml").write_text("teraslice:\n  port: 99999\n", encoding="utf-8")
    port = run_cli(tmp_path, "master", "--config", "port.yaml")
    assert (port.returncode, port.stderr) == (2, "port.yaml: teraslice.port: must be <= 65535\n")


def test_every_argument_has_help_without_markup() -> None:
    problems: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        texts = [parser.description or ""]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    walk(child, f"{path} {name}")
                texts += [a.help or "" for a in action._choices_actions]
                continue
            if action.help is None:
                problems.append(f"{path} {'/'.join(action.option_strings) or action.dest}: no help")
            texts.append(action.help or "")
        for text in texts:
            if re.search(r"``|:(class|func|mod|meth):`", text):
                problems.append(f"{path}: markup in {text!r}")

    walk(build_parser(), "teraslice-k8s")
    assert problems == []


def test_progress_and_summary_show_the_same_rate() -> None:
    progress = _Progress({"name": "j", "operations": []}, enabled=False, started=0.0)
    progress.update(
        {"name": "j", "_status": "completed", "_slicer_stats": {"records": 100_000}}, elapsed=3.048
    )
    task = progress.progress.tasks[0]
    assert task.fields["rate"] == f"{_rate(100_000, 3.048):,}" == "32,808"


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def closed_pipe_run(*args: str) -> tuple[int, str]:
    """Run the CLI with stdout a pipe whose reader is already gone (``| head`` that quit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = subprocess.run(
            [*CLI, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False
        )
    finally:
        os.close(write_end)
    return process.returncode, process.stderr


@pytest.mark.parametrize("argv", [["ex", "list", "--json"], ["jobs", "list", "--json"], ["ex", "list"]])
def test_closed_pipe_ends_quietly(
    master_url: str,
    job_file: Path,
    service: MasterService,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    for _ in range(3):
        assert cli("jobs", "register", str(job_file), "--start", "--url", master_url) == 0
    capsys.readouterr()
    code, err = closed_pipe_run(*argv, "--url", master_url)
    assert (code, err) == (141, "")


def test_closed_pipe_ends_render_quietly() -> None:
    code, err = closed_pipe_run(
        "render",
        "--config",
        str(ROOT / "examples" / "teraslice.yaml"),
        "--job",
        str(ROOT / "examples" / "jobs" / "k8s-labels.json"),
    )
    assert (code, err) == (141, "")

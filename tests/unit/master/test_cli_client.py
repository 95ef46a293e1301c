"""``teraslice-k8s jobs ...`` / ``ex ...`` against a running master, and ``master`` argument errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.cli import client as client_cli
from teraslice_k8s.cli import master as master_cli
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.base import ExFilter
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import RecordingBackend, job_spec, settle


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="teraslice-k8s")
    sub = parser.add_subparsers(dest="command")
    client_cli.register(sub)
    master_cli.register(sub)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def json_out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job_spec(name="cli-job")), encoding="utf-8")
    return path


def test_register_start_status_workers_stop(
    master_url: str,
    job_file: Path,
    store: SqliteStore,
    service: MasterService,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend = service.backend
    assert isinstance(backend, RecordingBackend)
    assert cli("jobs", "register", str(job_file), "--save", "--url", master_url) == 0
    job_id = store.list_jobs()[0]["job_id"]
    assert capsys.readouterr().out == f"registered job cli-job as {job_id}\n"
    saved = json.loads(job_file.read_text(encoding="utf-8"))
    assert saved["__metadata"]["cli"]["job_id"] == job_id
    assert store.count_executions(ExFilter(deleted=None)) == 0

    # The saved file stands for the job; __metadata is never sent to the master.
    assert cli("jobs", "start", str(job_file), "--url", master_url, "--json") == 0
    ex_id = json_out(capsys)["ex_id"]
    assert "__metadata" not in store.get_job(job_id)
    settle(service)

    assert cli("jobs", "status", job_id, "--url", master_url, "--json") == 0
    assert json_out(capsys)["_status"] == "initializing"

    assert cli("jobs", "workers", job_id, "total", "4", "--url", master_url) == 0
    assert capsys.readouterr().out == f"4 workers have been set for execution: {ex_id}\n"
    assert backend.calls_of("scale_workers") == [("scale_workers", ex_id, "set", 4)]

    assert cli("jobs", "stop", job_id, "--url", master_url) == 0
    assert capsys.readouterr().out == f"job {job_id}: stopped\n"

    assert cli("jobs", "list", "--url", master_url, "--json") == 0
    listed = json_out(capsys)
    assert [(j["job_id"], j["ex"]["_status"]) for j in listed] == [(job_id, "stopped")]
    assert cli("ex", "list", "--status", "stopped", "--url", master_url, "--json") == 0
    assert [e["ex_id"] for e in json_out(capsys)] == [ex_id]
    assert cli("ex", "status", ex_id, "--url", master_url, "--json") == 0
    assert json_out(capsys)["ex_id"] == ex_id


def test_tables_are_printed(
    master_url: str,
    job_file: Path,
    service: MasterService,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: Any,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TERASLICE_MASTER_URL", master_url)  # no --url: the env var
    assert cli("jobs", "register", str(job_file), "--start") == 0
    settle(service)
    capsys.readouterr()
    assert cli("jobs", "list") == 0
    out = capsys.readouterr().out
    assert "cli-job" in out and "initializing" in out
    assert cli("ex", "list") == 0
    assert "cli-job" in capsys.readouterr().out


def test_invalid_job_lists_fields_and_exits_2(
    master_url: str, tmp_path: Path, store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(job_spec(workers=0, lifecycle="sometimes")), encoding="utf-8")
    assert cli("jobs", "register", str(path), "--url", master_url) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error 422: ")
    assert err[1:] == ["  lifecycle: must be one of once, persistent", "  workers: must be >= 1"]
    assert store.list_jobs() == []


def test_master_errors_exit_1(master_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("jobs", "status", "nope", "--url", master_url) == 1
    assert capsys.readouterr().err == "error 404: Could not find job nope\n"


def test_unreachable_master_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("jobs", "list", "--url", "http://127.0.0.1:9", "--timeout", "2") == 1
    assert capsys.readouterr().err.startswith("error: cannot reach the master at http://127.0.0.1:9")


def test_unsaved_job_file_is_input_error(job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("jobs", "start", str(job_file), "--url", "http://127.0.0.1:9") == 2
    assert "no job id saved in the file" in capsys.readouterr().err


def test_master_with_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "teraslice.yaml"
    config.write_text("teraslice:\n  port: 0\n  name: Upper\n", encoding="utf-8")
    assert cli("master", "--config", str(config)) == 2
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[1] for line in err] == ["teraslice.name", "teraslice.port"]

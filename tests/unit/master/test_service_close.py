"""What the master records about executions when it stops (``MasterService.close``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import RecordingBackend
from .test_lifecycle import make_ex


def close_master(tmp_path: Path, config: SysConfig, backend: RecordingBackend) -> dict[str, str]:
    """Start a master over executions in each status (all with live processes), stop it, and
    return the statuses the store holds afterwards."""
    store = SqliteStore(tmp_path / "ts.sqlite")
    statuses = ("initializing", "running", "completed")
    ids = {status: make_ex(store, status) for status in statuses}
    backend.live.update(ids.values())
    service = MasterService(
        store,
        backend,
        MasterSettings.from_config(config),
        job_validator(config),
        prepare=spec_preparer(config),
    )
    service.start()
    service.close()
    reopened = SqliteStore(tmp_path / "ts.sqlite")
    try:
        after = {status: reopened.get_execution(ex_id) for status, ex_id in ids.items()}
    finally:
        reopened.close()
    return {status: record["_status"] for status, record in after.items()}


def test_executions_ended_with_a_local_master_are_recorded_terminated(
    tmp_path: Path, config: SysConfig
) -> None:
    backend = RecordingBackend(executions_survive_master=False)
    assert close_master(tmp_path, config, backend) == {
        "initializing": "terminated",
        "running": "terminated",
        "completed": "completed",
    }
    assert backend.closed


def test_executions_outliving_the_master_are_left_alone(tmp_path: Path, config: SysConfig) -> None:
    backend = RecordingBackend(executions_survive_master=True)
    assert close_master(tmp_path, config, backend) == {
        "initializing": "initializing",
        "running": "running",
        "completed": "completed",
    }


@pytest.mark.parametrize("status", ["initializing", "running"])
def test_terminated_reason_names_the_master_stop(tmp_path: Path, config: SysConfig, status: str) -> None:
    store = SqliteStore(tmp_path / "ts.sqlite")
    ex_id = make_ex(store, status)
    backend = RecordingBackend(executions_survive_master=False)
    backend.live.add(ex_id)
    service = MasterService(
        store,
        backend,
        MasterSettings.from_config(config),
        job_validator(config),
        prepare=spec_preparer(config),
    )
    service.start()
    service.close()
    reopened = SqliteStore(tmp_path / "ts.sqlite")
    record = reopened.get_execution(ex_id)
    reopened.close()
    assert record["_has_errors"] is True
    assert record["_failureReason"] == (
        f'execution {ex_id} was ended because the master stopped, setting status to "terminated"'
    )

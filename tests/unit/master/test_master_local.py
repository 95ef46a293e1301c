"""The master with ``cluster_manager_type: local``: a job submitted over HTTP runs to
``completed`` as local processes, and the master then has nothing left running."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.models.config import load_config
from teraslice_k8s.store.base import SliceFilter

pytestmark = pytest.mark.slow

TIMEOUT = 120.0


def test_local_master_runs_a_job_to_completed(tmp_path: Path) -> None:
    config_path = tmp_path / "teraslice.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "teraslice": {
                    "name": "localtest",
                    "cluster_manager_type": "local",
                    "storage": {"type": "sqlite", "path": str(tmp_path / "state.sqlite")},
                }
            }
        ),
        encoding="utf-8",
    )
    config = load_config(config_path)
    service = build_service(config, config_path=config_path)
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
    service.start()
    url = server.start()
    try:
        job = {
            "name": "local-generator",
            "workers": 2,
            "operations": [{"_op": "data_generator", "size": 500, "slice_size": 50}, {"_op": "noop"}],
        }
        response = httpx.post(f"{url}/v1/jobs", json=job, timeout=30)
        assert response.status_code == 200, response.text
        ex_id = response.json()["ex_id"]
        execution = service.lifecycle.wait_terminal(ex_id, TIMEOUT)
        assert execution["_status"] == "completed", execution.get("_failureReason")
        assert execution["slicer_hostname"] == "127.0.0.1"
        assert service.store.count_slices(SliceFilter(ex_id=ex_id, states=("completed",))) == 10
        info = httpx.get(f"{url}/", timeout=30).json()
        assert info["clustering_type"] == "local"
    finally:
        server.stop()
        service.close()

"""A real third-party client, ts-topy's TerasliceClient, reads a running master (uvicorn on a
free port, real HTTP) and validates every response into its pydantic models."""

from __future__ import annotations

from ts_topy.client import TerasliceClient

from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import FakeControllers, analytics_for, job_spec, settle


def test_ts_topy_reads_jobs_executions_and_controllers(
    master_url: str, service: MasterService, store: SqliteStore, controllers: FakeControllers
) -> None:
    with TerasliceClient(master_url) as ts:
        # An empty cluster first.
        assert ts.fetch_jobs() == []
        assert ts.fetch_execution_contexts() == []
        assert ts.fetch_controllers() == []

        ids = ts.client.post(f"{master_url}/v1/jobs", json=job_spec(name="topy")).json()
        settle(service)
        store.set_status(ids["ex_id"], "running")
        host = store.get_execution(ids["ex_id"])["slicer_hostname"]
        controllers.analytics[host] = analytics_for(ids["ex_id"], ids["job_id"], "topy")

        jobs = ts.fetch_jobs(size=1000, from_=0)
        assert [(j.job_id, j.name, j.workers, j.lifecycle) for j in jobs] == [
            (ids["job_id"], "topy", 2, "once")
        ]
        assert jobs[0].operations[0].op == "data_generator"
        assert jobs[0].context == "job"

        executions = ts.fetch_execution_contexts(size=1000)
        assert [(e.ex_id, e.status, e.slicer_port) for e in executions] == [(ids["ex_id"], "running", 45680)]
        assert executions[0].slicers == 1 and executions[0].analytics is True

        controllers_seen = ts.fetch_controllers()
        assert [(c.ex_id, c.processed, c.workers_active) for c in controllers_seen] == [(ids["ex_id"], 40, 2)]
        assert controllers_seen[0].started is not None

        assert ts.fetch_job_by_id(ids["job_id"])["job_id"] == ids["job_id"]
        assert ts.fetch_execution_context_by_id(ids["ex_id"])["_status"] == "running"

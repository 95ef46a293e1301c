"""The SQLite store's records version (what the API keys cached listings by) and its
latest-execution-per-job query (what ``GET /v1/jobs?ex=`` reads), issue 13.

- Every job and execution write changes ``records_version()``, whichever connection or process
  makes it (an execution controller writes its status from its own process); reads and the
  workers' slice and analytics writes do not.
- ``latest_executions`` (one query for a page of jobs) returns exactly what the per-job lookup
  ``latest_execution`` returns, on random data with ties in ``_created``.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from es_emulator import running_emulator

from teraslice_k8s.store import sqlite_schema
from teraslice_k8s.store.base import ExFilter, Page
from teraslice_k8s.store.elasticsearch import ElasticsearchStore
from teraslice_k8s.store.es_client import make_client
from teraslice_k8s.store.sqlite import SqliteStore


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = SqliteStore(tmp_path / "state.sqlite")
    yield opened
    opened.close()


def job(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "name": job_id, "operations": [{"_op": "noop"}]}


def execution(ex_id: str, job_id: str, status: str = "pending") -> dict[str, Any]:
    return {"ex_id": ex_id, "job_id": job_id, "_status": status, "name": job_id}


def test_every_job_and_execution_write_changes_the_version(store: SqliteStore) -> None:
    seen = [store.records_version()]

    def changed() -> None:
        version = store.records_version()
        assert version not in seen
        seen.append(version)

    store.create_job(job("j1"))
    changed()
    store.replace_job("j1", {**job("j1"), "active": False})
    changed()
    store.create_execution(execution("e1", "j1"))
    changed()
    store.update_execution("e1", {"workers": 3})
    changed()
    store.set_status("e1", "scheduling")
    changed()
    # reads change nothing
    store.list_jobs()
    store.list_executions()
    store.latest_executions(["j1"])
    store.get_execution("e1")
    assert store.records_version() == seen[-1]


def test_slice_and_analytics_writes_leave_the_version(store: SqliteStore) -> None:
    store.create_job(job("j1"))
    store.create_execution(execution("e1", "j1"))
    before = store.records_version()
    store.create_slices(
        [{"slice_id": "s1", "ex_id": "e1", "slicer_id": 0, "slicer_order": 1, "state": "start"}]
    )
    store.update_slice("s1", {"state": "completed"})
    store.add_analytics([{"ex_id": "e1", "slice_id": "s1", "time": [1]}])
    assert store.records_version() == before


def test_a_write_through_another_connection_changes_the_version(store: SqliteStore) -> None:
    store.create_job(job("j1"))
    store.create_execution(execution("e1", "j1"))
    before = store.records_version()
    other = SqliteStore(store.path)
    try:
        other.set_status("e1", "scheduling")
    finally:
        other.close()
    assert store.records_version() != before


def _controller_writes(db: str, ex_id: str) -> None:
    """What an execution controller does from its own process: a status write."""
    store = SqliteStore(db)
    try:
        store.set_status(ex_id, "scheduling")
    finally:
        store.close()


def test_a_write_by_another_process_changes_the_version(store: SqliteStore) -> None:
    store.create_job(job("j1"))
    store.create_execution(execution("e1", "j1"))
    before = store.records_version()
    process = multiprocessing.get_context("spawn").Process(
        target=_controller_writes, args=(str(store.path), "e1")
    )
    process.start()
    process.join(120)
    assert process.exitcode == 0
    assert store.get_execution("e1")["_status"] == "scheduling"
    assert store.records_version() != before


def test_a_file_from_before_the_counter_gets_it(tmp_path: Path) -> None:
    # A state file written by a version without the records_version table and triggers.
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    for statement in sqlite_schema.SCHEMA.split("CREATE TABLE IF NOT EXISTS records_version")[0].split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(f"PRAGMA user_version={sqlite_schema.SCHEMA_VERSION}")
    conn.commit()
    conn.close()
    store = SqliteStore(db)
    try:
        before = store.records_version()
        store.create_job(job("j1"))
        assert store.records_version() != before
        reopened = SqliteStore(db)  # opening again keeps the counter and its triggers (idempotent)
        middle = reopened.records_version()
        reopened.close()
        store.create_execution(execution("e1", "j1"))
        assert store.records_version() not in (before, middle)
    finally:
        store.close()


# -- the latest execution of each job --------------------------------------------------------


def _random_records(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Jobs with 0-6 executions each; ``_created`` drawn from a few values so ties happen."""
    jobs = [job(f"job-{n:03d}") for n in range(rng.randint(1, 60))]
    stamps = [f"2026-11-27T10:00:0{s}.000Z" for s in range(4)]
    executions = []
    for j in jobs:
        for _ in range(rng.choice((0, 0, 1, 2, 6))):
            ex = execution(f"ex-{rng.getrandbits(32):08x}", j["job_id"], rng.choice(("completed", "failed")))
            ex.update(_context="ex", _created=rng.choice(stamps), _updated=rng.choice(stamps))
            if rng.random() < 0.2:
                ex.update(_deleted=True, _deleted_on=ex["_updated"])
            executions.append(ex)
    return jobs, executions


@pytest.mark.parametrize("seed", range(8))
def test_latest_executions_equal_the_per_job_lookups_on_random_data(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    jobs, executions = _random_records(rng)
    store = SqliteStore(tmp_path / "state.sqlite")
    try:
        for j in jobs:
            store.create_job(j)
        # Written as rows, so the random (tied) timestamps are kept as they are.
        with store._db.write() as conn:
            conn.executemany(
                "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?)",
                [sqlite_schema.ex_row(ex) for ex in executions],
            )
        job_ids = [j["job_id"] for j in jobs] + ["no-such-job"]
        rng.shuffle(job_ids)
        together = store.latest_executions(job_ids)
        one_by_one = {
            job_id: found for job_id in job_ids if (found := store.latest_execution(job_id)) is not None
        }
        assert together == one_by_one
        # ... and both are the newest by (_created, ex_id), deleted ones included.
        model: dict[str, dict[str, Any]] = {}
        for ex in executions:
            best = model.get(ex["job_id"])
            if best is None or (ex["_created"], ex["ex_id"]) > (best["_created"], best["ex_id"]):
                model[ex["job_id"]] = ex
        assert together == model
        # A page's worth at a time gives the same answers.
        assert store.latest_executions(job_ids[:7]) == {k: v for k, v in model.items() if k in job_ids[:7]}
        all_listed = store.list_executions(ExFilter(deleted=None), Page(size=10_000))
        assert len(all_listed) == len(executions)
    finally:
        store.close()


def test_latest_executions_is_one_indexed_query(store: SqliteStore) -> None:
    """One statement for a page of jobs (any size), reading the newest execution of each job
    through the executions_by_job index: no scan, no sort of all their executions."""
    job_ids = [f"job-{n}" for n in range(1200)]  # more than one IN (...) chunk used to hold
    for job_id in job_ids[:3]:
        store.create_job(job(job_id))
        store.create_execution(execution(f"ex-{job_id}", job_id))
    statements: list[str] = []
    store._db.conn().set_trace_callback(statements.append)
    found = store.latest_executions(job_ids)
    store._db.conn().set_trace_callback(None)
    assert sorted(found) == job_ids[:3]
    assert len(statements) == 1
    conn = sqlite3.connect(store.path)
    sql = statements[0]
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    conn.close()
    assert any("COVERING INDEX executions_by_job" in step for step in plan), plan
    assert not any("TEMP B-TREE" in step or step.startswith("SCAN e") for step in plan), plan


# -- Elasticsearch: the version is the jobs and executions indices' operation and refresh counts --

ES_URL = os.environ.get("TEST_ELASTICSEARCH_URL", "")


@pytest.fixture(params=["emulator", pytest.param("elasticsearch", marks=pytest.mark.elasticsearch)])
def es_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "emulator":
        with running_emulator() as (url, _emulator):
            yield url
    elif not ES_URL:
        pytest.skip("TEST_ELASTICSEARCH_URL is not set: no Elasticsearch to test against")
    else:
        yield ES_URL


def test_elasticsearch_writes_by_another_store_object_change_the_version(es_url: str) -> None:
    cluster = f"ts-rv-{uuid.uuid4().hex[:12]}"
    small = {n: {"number_of_shards": 1, "number_of_replicas": 0} for n in ("jobs", "execution")}
    mine = ElasticsearchStore(es_url, cluster, index_settings=small)
    other = ElasticsearchStore(es_url, cluster, index_settings=small)  # a controller's own client
    try:
        seen = [mine.records_version()]
        for write in (
            lambda: other.create_job(job("j1")),
            lambda: other.create_execution(execution("e1", "j1")),
            lambda: other.set_status("e1", "scheduling"),
            lambda: other.update_execution("e1", {"workers": 3}),
            lambda: other.replace_job("j1", {**job("j1"), "active": False}),
        ):
            write()
            version = mine.records_version()
            assert version not in seen
            seen.append(version)
        assert mine.get_execution("e1")["workers"] == 3
    finally:
        mine.close()
        other.close()
        client = make_client(es_url)
        for suffix in ("jobs", "ex", "state", "analytics"):
            client.indices.delete(index=f"{cluster}__{suffix}", ignore_unavailable=True)
        client.close()

"""The store contract on SQLite (always), plus what only the SQLite store promises."""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

import pytest
from store_contract import RUNNING, Opener, StoreContract, job

from teraslice_k8s.store import sqlite_schema as schema
from teraslice_k8s.store.base import ExFilter, JobFilter, Page, SliceFilter, StoreError
from teraslice_k8s.store.sqlite import SqliteStore


@pytest.fixture
def store_opener(tmp_path: Path) -> Opener:
    return functools.partial(SqliteStore, tmp_path / "state.sqlite")


@pytest.fixture
def store(store_opener: Opener):  # type: ignore[no-untyped-def]
    opened = store_opener()
    yield opened
    opened.close()


class TestSqliteContract(StoreContract):
    pass


def test_sort_by_any_top_level_field(store: SqliteStore) -> None:
    store.create_job(job("a", custom={"nested": 1}, rank=3))
    store.create_job(job("b", rank=1))
    store.create_job(job("c", rank="text"))
    store.create_job(job("d"))
    assert [r["job_id"] for r in store.list_jobs(page=Page(sort="rank:asc"))] == ["b", "a", "c", "d"]
    assert [r["job_id"] for r in store.list_jobs(page=Page(sort="rank:desc"))] == ["c", "a", "b", "d"]


def test_frequent_queries_read_through_indexes(store: SqliteStore) -> None:
    """The queries behind GET /v1/jobs, the execution lookups and the slice counts must not
    scan or sort a table: they have to stay fast with 10,000 jobs and millions of slices."""
    statements: list[str] = []
    store._db.conn().set_trace_callback(statements.append)
    store.list_jobs()
    store.list_jobs(JobFilter(active=True), Page(sort="_created:asc"))
    store.count_jobs()
    store.latest_execution("j")
    store.list_executions(ExFilter(job_id="j", statuses=["running"], deleted=None))
    store.count_slices(SliceFilter(ex_id="e", states=["error"]))
    store.list_slices(
        SliceFilter(ex_id="e", slicer_id=0, exclude_states=["completed"]), Page(sort="slicer_order:desc")
    )
    store._db.conn().set_trace_callback(None)
    conn = sqlite3.connect(store.path)
    plans = [" | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in statements]
    conn.close()
    # The jobs listing is the hot path (GET /v1/jobs): index order, no sort step at all.
    assert plans[:3] == [
        "SEARCH jobs USING INDEX jobs_by_updated (deleted=?)",
        "SEARCH jobs USING INDEX jobs_by_created (deleted=?)",
        "SEARCH jobs USING COVERING INDEX jobs_by_created (deleted=?)",
    ]
    # The others narrow through an index first; sorting the few rows left is cheap.
    assert [plan.split(" USING ")[0] for plan in plans[3:]] == [
        "SEARCH executions",
        "SEARCH executions",
        "SEARCH slices",
        "SEARCH slices",
    ]
    assert "INDEX slices_by_order (ex_id=? AND slicer_id=?)" in plans[-1]


@pytest.mark.parametrize("analyzed", [False, True], ids=["fresh", "analyzed"])
def test_status_listings_read_through_the_status_index(store: SqliteStore, analyzed: bool) -> None:
    """The running executions (/cluster/controllers on every poll, ?status=running) are a few
    among many finished ones: they are found through executions_by_status, whether or not the
    file carries ANALYZE statistics (which average over all statuses), never by a scan."""
    rows = [
        schema.ex_row(
            {
                "ex_id": f"ex-{n:03d}",
                "job_id": f"job-{n % 50}",
                "_status": "running" if n % 100 == 0 else ("completed", "failed", "stopped")[n % 3],
                "_created": f"2026-12-07T10:00:{n // 10:02d}.{n % 10:03d}Z",
                "_updated": f"2026-12-07T10:00:{n // 10:02d}.{n % 10:03d}Z",
                "_deleted": n == 300,
            }
        )
        for n in range(400)
    ]
    conn = sqlite3.connect(store.path)
    with conn:
        conn.executemany("INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    if analyzed:
        conn.execute("ANALYZE")
    conn.close()
    living = ExFilter(statuses=tuple(RUNNING))
    statements: list[str] = []
    store._db.conn().set_trace_callback(statements.append)
    found = store.list_executions(living, Page(size=10_000, sort="_created:asc"))
    counted = store.count_executions(ExFilter(statuses=("running",)))
    store._db.conn().set_trace_callback(None)
    assert [r["ex_id"] for r in found] == ["ex-000", "ex-100", "ex-200"]  # ex-300 is deleted
    assert counted == 3
    conn = sqlite3.connect(store.path)
    plans = [" | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in statements]
    conn.close()
    assert [plan.split(" | ")[0] for plan in plans] == [
        "SEARCH executions USING INDEX executions_by_status (status=?)",
        "SEARCH executions USING INDEX executions_by_status (status=?)",
    ]


def test_store_is_one_file_in_wal_mode(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "one.sqlite") as store:
        store.create_job(job("a"))
        mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name == "one.sqlite") == ["one.sqlite"]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError) as caught:
        SqliteStore(path)
    assert str(caught.value) == (
        f"SQLite store {path} has schema version 99; this version of teraslice-k8s reads up to 1"
    )


def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite")
    store.close()
    store.close()
    with pytest.raises(StoreError) as caught:
        store.count_jobs(JobFilter())
    assert str(caught.value) == f"SQLite store {tmp_path / 's.sqlite'} is closed"


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        SqliteStore(tmp_path / "missing-dir" / "s.sqlite")
    assert str(caught.value) == (
        f"cannot open SQLite store {tmp_path / 'missing-dir' / 's.sqlite'}: unable to open database file"
    )


def test_invalid_synchronous_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous must be FULL or NORMAL, not 'OFF'"):
        SqliteStore(tmp_path / "s.sqlite", synchronous="OFF")  # type: ignore[arg-type]

"""The embedded store: one SQLite file shared safely by the master, controllers and workers.

Concurrency model (:mod:`teraslice_k8s.store.sqlite_connections` provides it):
- WAL journal, so readers never block the (single) writer and vice versa; a busy timeout makes
  a writer wait for another process's write instead of failing.
- Every write is one short ``BEGIN IMMEDIATE`` transaction: the write lock is taken before the
  read of a read-check-write (``set_status``, updates), so two processes cannot interleave
  between the check and the write, and SQLite's "upgrade a read lock" deadlock cannot happen.
- One connection per thread (created on first use, re-created after ``fork``), so a store object
  may be shared by any number of threads.

The tables, rows and SQL fragments are :mod:`teraslice_k8s.store.sqlite_schema`'s.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from teraslice_k8s.store import records as prepare
from teraslice_k8s.store import sqlite_schema as schema
from teraslice_k8s.store.base import (
    ANY_EXECUTION,
    ANY_JOB,
    DEFAULT_PAGE,
    ExFilter,
    JobFilter,
    Page,
    Record,
    RecordExists,
    RecordNotFound,
    SliceFilter,
    StoreError,
)
from teraslice_k8s.store.query import check_page
from teraslice_k8s.store.sqlite_connections import SqliteConnections
from teraslice_k8s.store.timestamps import StoreClock


class SqliteStore:
    """:class:`~teraslice_k8s.store.base.Store` in one SQLite file (created if missing).

    ``synchronous``: ``NORMAL`` (default, SQLite's recommendation for WAL) makes every returned
    write survive a crash of any process; after a power cut or OS crash the newest commits may
    be missing but the file stays consistent. ``FULL`` syncs the WAL on every commit, so
    returned writes survive power cuts too, at two to three times the cost per write.
    ``busy_timeout`` (seconds) bounds how long a write waits for another process's write lock
    before failing with :class:`StoreError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL"] = "NORMAL",
        busy_timeout: float = 30.0,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
        self.path = Path(path)
        self._clock = StoreClock()
        self._db = SqliteConnections(self.path, busy_timeout=busy_timeout, synchronous=synchronous)
        self._initialise()

    def _initialise(self) -> None:
        with self._db.write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > schema.SCHEMA_VERSION:
                raise StoreError(
                    f"SQLite store {self.path} has schema version {version}; "
                    f"this version of teraslice-k8s reads up to {schema.SCHEMA_VERSION}"
                )
            for statement in schema.SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            for trigger in schema.TRIGGERS:
                conn.execute(trigger)
            conn.execute(f"PRAGMA user_version={schema.SCHEMA_VERSION}")

    def close(self) -> None:
        """Close every connection of this object (all threads); later calls raise StoreError."""
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    #: ``records_version`` reads this file only (the API calls it on its event loop).
    records_version_is_local = True

    def records_version(self) -> int:
        """:class:`~teraslice_k8s.store.base.RecordsVersioned`: a counter that triggers bump in
        the transaction of every job and execution write, whatever process or connection makes
        it (the master, an execution controller, ``teraslice-k8s run``). One single-row read;
        in WAL mode it never waits for a writer."""
        version: int = self._db.read("SELECT n FROM records_version WHERE id = 1", ())[0][0]
        return version

    # -- generic helpers --

    def _get(self, table: schema.Table, record_id: str) -> Record:
        fields, columns = zip(*table.columns.items(), strict=True)
        rows = self._db.read(
            f"SELECT doc, {', '.join(columns)} FROM {table.name} WHERE {table.id_column} = ?", (record_id,)
        )
        if not rows:
            raise RecordNotFound(table.kind, record_id)
        return prepare.readable(
            rows[0][0], table.kind, table.id_column, dict(zip(fields, rows[0][1:], strict=True))
        )

    def _list(self, table: schema.Table, where: tuple[str, list[Any]], page: Page) -> list[Record]:
        keys = check_page(page)
        clause, params = where
        order = schema.order_by(table, keys, params)
        fields, columns = zip(*table.columns.items(), strict=True)
        sql = f"SELECT doc, {', '.join(columns)} FROM {table.name}{clause}{order} LIMIT ? OFFSET ?"
        rows = self._db.read(sql, [*params, page.size, page.from_])
        # One unreadable row (written around this store) is shown in a safe form, not a failed list.
        return [
            prepare.readable(row[0], table.kind, table.id_column, dict(zip(fields, row[1:], strict=True)))
            for row in rows
        ]

    def _list_json(
        self,
        table: schema.Table,
        where: tuple[str, list[Any]],
        page: Page,
        body: str = "doc",
        body_params: Sequence[Any] = (),
    ) -> str:
        """The rows of ``_list`` as JSON array text; SQLite builds each element (``body``), so
        Python only joins strings, and the query runs without holding the GIL."""
        keys = check_page(page)
        clause, params = where
        order_params: list[Any] = []
        order = schema.order_by(table, keys, order_params)
        sql = f"SELECT {body} FROM {table.name} AS t{clause}{order} LIMIT ? OFFSET ?"
        rows = self._db.read(sql, [*body_params, *params, *order_params, page.size, page.from_])
        return "[" + ",".join(row[0] for row in rows) + "]"

    def _count(self, table: str, where: tuple[str, list[Any]]) -> int:
        clause, params = where
        count: int = self._db.read(f"SELECT count(*) FROM {table}{clause}", params)[0][0]
        return count

    def _modify(
        self,
        table: schema.Table,
        record_id: str,
        change: prepare.Change,
        row: Callable[[Record], tuple[Any, ...]],
    ) -> Record:
        """Read-check-write of one record inside one write transaction."""
        with self._db.write() as conn:
            found = conn.execute(
                f"SELECT doc FROM {table.name} WHERE {table.id_column} = ?", (record_id,)
            ).fetchone()
            if found is None:
                raise RecordNotFound(table.kind, record_id)
            record = change(json.loads(found[0]))
            values = row(record)
            conn.execute(f"REPLACE INTO {table.name} VALUES ({schema.placeholders(values)})", values)
        return record

    def _insert(self, table: schema.Table, record: Record, row: tuple[Any, ...]) -> Record:
        try:
            with self._db.write() as conn:
                conn.execute(f"INSERT INTO {table.name} VALUES ({schema.placeholders(row)})", row)
        except StoreError as error:
            if isinstance(error.__cause__, sqlite3.IntegrityError):
                raise RecordExists(table.kind, record[table.id_column]) from None
            raise
        return record

    # -- jobs --

    def create_job(self, record: Record) -> Record:
        job = prepare.new_job(record, self._clock)
        return self._insert(schema.JOBS, job, schema.job_row(job))

    def get_job(self, job_id: str) -> Record:
        return self._get(schema.JOBS, job_id)

    def replace_job(self, job_id: str, record: Record) -> Record:
        return self._modify(
            schema.JOBS,
            job_id,
            lambda old: prepare.replacement_job(job_id, record, old["_created"], self._clock),
            schema.job_row,
        )

    def list_jobs(self, flt: JobFilter = ANY_JOB, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._list(schema.JOBS, schema.job_where(flt), page)

    def count_jobs(self, flt: JobFilter = ANY_JOB) -> int:
        return self._count("jobs", schema.job_where(flt))

    def list_jobs_json(
        self, flt: JobFilter = ANY_JOB, page: Page = DEFAULT_PAGE, ex_fields: Sequence[str] | None = None
    ) -> str:
        if ex_fields is None:
            return self._list_json(schema.JOBS, schema.job_where(flt), page)
        return self._list_json(
            schema.JOBS,
            schema.job_where(flt),
            page,
            schema.WITH_EX.format(fields=schema.placeholders(ex_fields)),
            list(ex_fields),
        )

    # -- executions --

    def create_execution(self, record: Record) -> Record:
        execution = prepare.new_execution(record, self._clock)
        return self._insert(schema.EXECUTIONS, execution, schema.ex_row(execution))

    def get_execution(self, ex_id: str) -> Record:
        return self._get(schema.EXECUTIONS, ex_id)

    def update_execution(self, ex_id: str, fields: Mapping[str, Any]) -> Record:
        return self._modify(
            schema.EXECUTIONS, ex_id, prepare.execution_change(ex_id, fields, self._clock), schema.ex_row
        )

    def set_status(self, ex_id: str, status: str, fields: Mapping[str, Any] | None = None) -> Record:
        change = prepare.status_change(ex_id, status, fields, self._clock)
        return self._modify(schema.EXECUTIONS, ex_id, change, schema.ex_row)

    def list_executions(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._list(schema.EXECUTIONS, schema.ex_where(flt), page)

    def count_executions(self, flt: ExFilter = ANY_EXECUTION) -> int:
        return self._count("executions", schema.ex_where(flt))

    def list_executions_json(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> str:
        return self._list_json(schema.EXECUTIONS, schema.ex_where(flt), page)

    def latest_execution(self, job_id: str) -> Record | None:
        found = self._list(
            schema.EXECUTIONS,
            schema.ex_where(ExFilter(job_id=job_id, deleted=None)),
            Page(size=1, sort="_created:desc"),
        )
        return found[0] if found else None

    def latest_executions(self, job_ids: Sequence[str]) -> dict[str, Record]:
        # One query for any number of jobs (the ids go in as one JSON array): per job, an index
        # seek on executions_by_job for the newest (created, ex_id), then that one row. A window
        # function over the jobs' executions read every execution's document instead (~35x
        # slower for a page of 100 jobs with 10 executions each).
        unique = list(dict.fromkeys(job_ids))
        if not unique:
            return {}
        fields, columns = zip(*schema.EXECUTIONS.columns.items(), strict=True)
        rows = self._db.read(
            f"SELECT e.doc, {', '.join('e.' + c for c in columns)} FROM json_each(?) AS j "
            "JOIN executions AS e ON e.ex_id = (SELECT x.ex_id FROM executions AS x "
            "WHERE x.job_id = j.value ORDER BY x.created DESC, x.ex_id DESC LIMIT 1)",
            (json.dumps(unique),),
        )
        latest: dict[str, Record] = {}
        for row in rows:
            known = dict(zip(fields, row[1:], strict=True))
            latest[known["job_id"]] = prepare.readable(row[0], "execution", "ex_id", known)
        return latest

    # -- slice state --

    def create_slices(self, records: Sequence[Record]) -> None:
        rows = [schema.slice_row(r) for r in prepare.new_slices(records)]
        if rows:
            with self._db.write() as conn:
                conn.executemany(f"REPLACE INTO slices VALUES ({schema.placeholders(rows[0])})", rows)

    def update_slice(self, slice_id: str, fields: Mapping[str, Any]) -> None:
        # The workers' hot path: one UPDATE patching the JSON in place (no read, no re-encode
        # of the whole record), about twice as fast as a read-modify-write.
        changes = prepare.slice_update(fields)
        patch = ", ?, json(?)" * len(changes)
        params: list[Any] = []
        for key, value in changes.items():
            params += [f'$."{key}"', schema.dumps(value)]
        sets = [f"doc = json_set(doc{patch})"]
        for field, column in schema.SLICES.columns.items():
            if field in changes:
                sets.append(f"{column} = ?")
                params.append(changes[field])
        with self._db.write() as conn:
            cursor = conn.execute(
                f"UPDATE slices SET {', '.join(sets)} WHERE slice_id = ?", [*params, slice_id]
            )
            if cursor.rowcount == 0:
                raise RecordNotFound("slice", slice_id)

    def list_slices(self, flt: SliceFilter, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._list(schema.SLICES, schema.slice_where(flt), page)

    def count_slices(self, flt: SliceFilter) -> int:
        return self._count("slices", schema.slice_where(flt))

    # -- analytics --

    def add_analytics(self, records: Sequence[Record]) -> None:
        rows = [(r["ex_id"], schema.dumps(r)) for r in prepare.new_analytics(records)]
        if rows:
            with self._db.write() as conn:
                conn.executemany("INSERT INTO analytics (ex_id, doc) VALUES (?, ?)", rows)

    def count_analytics(self, ex_id: str) -> int:
        return self._count("analytics", (" WHERE ex_id = ?", [ex_id]))

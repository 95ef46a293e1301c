"""The embedded store: one SQLite file shared safely by the master, controllers and workers.

Concurrency model:
- WAL journal, so readers never block the (single) writer and vice versa; a busy timeout makes
  a writer wait for another process's write instead of failing.
- Every write is one short ``BEGIN IMMEDIATE`` transaction: the write lock is taken before the
  read of a read-check-write (``set_status``, updates), so two processes cannot interleave
  between the check and the write, and SQLite's "upgrade a read lock" deadlock cannot happen.
- One connection per thread (created on first use, re-created after ``fork``), so a store object
  may be shared by any number of threads.

Layout: each record is stored whole as JSON text in ``doc``; the fields lists filter and sort on
are copied into indexed columns when the record is written, so a list reads only the index and
the ``size`` rows it returns. Sorting by any other top-level field falls back to
``json_extract`` (correct, not indexed).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from teraslice_k8s.store import records as prepare
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
from teraslice_k8s.store.query import SortKey, check_page
from teraslice_k8s.store.timestamps import StoreClock

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,   -- 1 iff the record has "_deleted": true
    inactive INTEGER NOT NULL,  -- 1 iff the record has "active": false
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_updated ON jobs (deleted, updated, job_id, inactive);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (deleted, created, job_id, inactive);

CREATE TABLE IF NOT EXISTS executions (
    ex_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_job ON executions (job_id, created, ex_id);
CREATE INDEX IF NOT EXISTS executions_by_updated ON executions (deleted, updated, ex_id);
CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, created, ex_id);

CREATE TABLE IF NOT EXISTS slices (
    slice_id TEXT PRIMARY KEY,
    ex_id TEXT NOT NULL,
    slicer_id INTEGER,
    slicer_order INTEGER,
    state TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS slices_by_state ON slices (ex_id, state);
CREATE INDEX IF NOT EXISTS slices_by_order ON slices (ex_id, slicer_id, slicer_order, slice_id);

CREATE TABLE IF NOT EXISTS analytics (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ex_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS analytics_by_ex ON analytics (ex_id);
"""


@dataclass(frozen=True, slots=True)
class _Table:
    """How one kind of record maps to its table: id column and field -> indexed column."""

    name: str
    kind: str
    id_column: str
    columns: Mapping[str, str]
    nullable: frozenset[str] = frozenset()


_JOBS = _Table("jobs", "job", "job_id", {"job_id": "job_id", "_created": "created", "_updated": "updated"})
_EXECUTIONS = _Table(
    "executions",
    "execution",
    "ex_id",
    {"ex_id": "ex_id", "job_id": "job_id", "_status": "status", "_created": "created", "_updated": "updated"},
)
_SLICES = _Table(
    "slices",
    "slice",
    "slice_id",
    {
        "slice_id": "slice_id",
        "ex_id": "ex_id",
        "slicer_id": "slicer_id",
        "slicer_order": "slicer_order",
        "state": "state",
        "_created": "created",
        "_updated": "updated",
    },
    nullable=frozenset({"slicer_id", "slicer_order"}),
)

# A job row's JSON with "ex" = its latest execution restricted to the bound field names, or {}
# when it has none or the latest is deleted (records.restricted_execution, in SQL). json_each
# yields booleans as 1/0 and strings unquoted, so each value is turned back into JSON by type.
_WITH_EX = """json_set(t.doc, '$.ex', json(coalesce((
    SELECT CASE WHEN e.deleted THEN '{{}}' ELSE (
        SELECT json_group_object(key, CASE type
            WHEN 'true' THEN json('true') WHEN 'false' THEN json('false')
            WHEN 'object' THEN json(value) WHEN 'array' THEN json(value)
            ELSE json_quote(value) END)
        FROM json_each(e.doc) WHERE key IN ({fields})) END
    FROM executions AS e WHERE e.job_id = t.job_id ORDER BY e.created DESC, e.ex_id DESC LIMIT 1
), '{{}}')))"""

_IN_CHUNK = 500  # ids per "IN (...)" query, well under SQLite's bound-parameter limit


def _dumps(record: Mapping[str, Any]) -> str:
    try:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise StoreError(f"record cannot be stored as JSON: {error}") from error


def _order_by(table: _Table, keys: Sequence[SortKey], params: list[Any]) -> str:
    """``ORDER BY`` for ``keys``: indexed column when there is one, else ``json_extract``;
    missing values last (as Elasticsearch does), ties broken by the id."""
    terms = []
    for key in keys:
        direction = "DESC" if key.descending else "ASC"
        column = table.columns.get(key.field)
        if column is not None and column not in table.nullable:
            terms.append(f"{column} {direction}")
        elif column is not None:
            terms.append(f"{column} {direction} NULLS LAST")
        else:
            params.append(f'$."{key.field}"')
            terms.append(f"json_extract(doc, ?) {direction} NULLS LAST")
    terms.append(f"{table.id_column} {'DESC' if keys[0].descending else 'ASC'}")
    return " ORDER BY " + ", ".join(terms)


def _job_where(flt: JobFilter) -> tuple[str, list[Any]]:
    clauses, params = ["deleted = ?"], [int(flt.deleted)]
    if flt.active is not None:
        clauses.append("inactive = ?")
        params.append(int(not flt.active))
    return " WHERE " + " AND ".join(clauses), params


def _placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def _ex_where(flt: ExFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.job_id is not None:
        clauses.append("job_id = ?")
        params.append(flt.job_id)
    if flt.statuses:
        clauses.append(f"status IN ({_placeholders(flt.statuses)})")
        params.extend(flt.statuses)
    if flt.deleted is not None:
        clauses.append("deleted = ?")
        params.append(int(flt.deleted))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _slice_where(flt: SliceFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.ex_id is not None:
        clauses.append("ex_id = ?")
        params.append(flt.ex_id)
    if flt.states:
        clauses.append(f"state IN ({_placeholders(flt.states)})")
        params.extend(flt.states)
    if flt.exclude_states:
        clauses.append(f"state NOT IN ({_placeholders(flt.exclude_states)})")
        params.extend(flt.exclude_states)
    if flt.slicer_id is not None:
        clauses.append("slicer_id = ?")
        params.append(flt.slicer_id)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _job_row(record: Record) -> tuple[Any, ...]:
    return (
        record["job_id"],
        record["_created"],
        record["_updated"],
        int(record.get("_deleted") is True),
        int(record.get("active") is False),
        _dumps(record),
    )


def _ex_row(record: Record) -> tuple[Any, ...]:
    return (
        record["ex_id"],
        record["job_id"],
        record["_status"],
        record["_created"],
        record["_updated"],
        int(record.get("_deleted") is True),
        _dumps(record),
    )


def _slice_row(record: Record) -> tuple[Any, ...]:
    return (
        record["slice_id"],
        record["ex_id"],
        record.get("slicer_id"),
        record.get("slicer_order"),
        record["state"],
        record["_created"],
        record["_updated"],
        _dumps(record),
    )


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
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._clock = StoreClock()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        self._initialise()

    # -- connections and transactions --

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except sqlite3.Error as error:
            raise StoreError(f"cannot open SQLite store {self.path}: {error}") from error
        return conn

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"SQLite store {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A connection inherited through fork() must not be used by the child.
        if conn is None or self._local.pid != os.getpid():
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(f"SQLite store {self.path}: {error}") from error

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction holding the write lock from its first statement."""
        conn = self._conn()
        with self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        with self._errors():
            return self._conn().execute(sql, params).fetchall()

    def _initialise(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"SQLite store {self.path} has schema version {version}; "
                    f"this version of teraslice-k8s reads up to {SCHEMA_VERSION}"
                )
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        """Close every connection of this object (all threads); later calls raise StoreError."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- generic helpers --

    def _get(self, table: _Table, record_id: str) -> Record:
        rows = self._read(f"SELECT doc FROM {table.name} WHERE {table.id_column} = ?", (record_id,))
        if not rows:
            raise RecordNotFound(table.kind, record_id)
        doc: Record = json.loads(rows[0][0])
        return doc

    def _list(self, table: _Table, where: tuple[str, list[Any]], page: Page) -> list[Record]:
        keys = check_page(page)
        clause, params = where
        order = _order_by(table, keys, params)
        sql = f"SELECT doc FROM {table.name}{clause}{order} LIMIT ? OFFSET ?"
        rows = self._read(sql, [*params, page.size, page.from_])
        return [json.loads(row[0]) for row in rows]

    def _list_json(
        self,
        table: _Table,
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
        order = _order_by(table, keys, order_params)
        sql = f"SELECT {body} FROM {table.name} AS t{clause}{order} LIMIT ? OFFSET ?"
        rows = self._read(sql, [*body_params, *params, *order_params, page.size, page.from_])
        return "[" + ",".join(row[0] for row in rows) + "]"

    def _count(self, table: str, where: tuple[str, list[Any]]) -> int:
        clause, params = where
        count: int = self._read(f"SELECT count(*) FROM {table}{clause}", params)[0][0]
        return count

    def _modify(
        self,
        table: _Table,
        record_id: str,
        change: prepare.Change,
        row: Callable[[Record], tuple[Any, ...]],
    ) -> Record:
        """Read-check-write of one record inside one write transaction."""
        with self._write() as conn:
            found = conn.execute(
                f"SELECT doc FROM {table.name} WHERE {table.id_column} = ?", (record_id,)
            ).fetchone()
            if found is None:
                raise RecordNotFound(table.kind, record_id)
            record = change(json.loads(found[0]))
            values = row(record)
            conn.execute(f"REPLACE INTO {table.name} VALUES ({_placeholders(values)})", values)
        return record

    def _insert(self, table: _Table, record: Record, row: tuple[Any, ...]) -> Record:
        try:
            with self._write() as conn:
                conn.execute(f"INSERT INTO {table.name} VALUES ({_placeholders(row)})", row)
        except StoreError as error:
            if isinstance(error.__cause__, sqlite3.IntegrityError):
                raise RecordExists(table.kind, record[table.id_column]) from None
            raise
        return record

    # -- jobs --

    def create_job(self, record: Record) -> Record:
        job = prepare.new_job(record, self._clock)
        return self._insert(_JOBS, job, _job_row(job))

    def get_job(self, job_id: str) -> Record:
        return self._get(_JOBS, job_id)

    def replace_job(self, job_id: str, record: Record) -> Record:
        return self._modify(
            _JOBS,
            job_id,
            lambda old: prepare.replacement_job(job_id, record, old["_created"], self._clock),
            _job_row,
        )

    def list_jobs(self, flt: JobFilter = ANY_JOB, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._list(_JOBS, _job_where(flt), page)

    def count_jobs(self, flt: JobFilter = ANY_JOB) -> int:
        return self._count("jobs", _job_where(flt))

    def list_jobs_json(
        self, flt: JobFilter = ANY_JOB, page: Page = DEFAULT_PAGE, ex_fields: Sequence[str] | None = None
    ) -> str:
        if ex_fields is None:
            return self._list_json(_JOBS, _job_where(flt), page)
        return self._list_json(
            _JOBS, _job_where(flt), page, _WITH_EX.format(fields=_placeholders(ex_fields)), list(ex_fields)
        )

    # -- executions --

    def create_execution(self, record: Record) -> Record:
        execution = prepare.new_execution(record, self._clock)
        return self._insert(_EXECUTIONS, execution, _ex_row(execution))

    def get_execution(self, ex_id: str) -> Record:
        return self._get(_EXECUTIONS, ex_id)

    def update_execution(self, ex_id: str, fields: Mapping[str, Any]) -> Record:
        return self._modify(_EXECUTIONS, ex_id, prepare.execution_change(ex_id, fields, self._clock), _ex_row)

    def set_status(self, ex_id: str, status: str, fields: Mapping[str, Any] | None = None) -> Record:
        change = prepare.status_change(ex_id, status, fields, self._clock)
        return self._modify(_EXECUTIONS, ex_id, change, _ex_row)

    def list_executions(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._list(_EXECUTIONS, _ex_where(flt), page)

    def count_executions(self, flt: ExFilter = ANY_EXECUTION) -> int:
        return self._count("executions", _ex_where(flt))

    def list_executions_json(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> str:
        return self._list_json(_EXECUTIONS, _ex_where(flt), page)

    def latest_execution(self, job_id: str) -> Record | None:
        rows = self._read(
            "SELECT doc FROM executions WHERE job_id = ? ORDER BY created DESC, ex_id DESC LIMIT 1",
            (job_id,),
        )
        return json.loads(rows[0][0]) if rows else None

    def latest_executions(self, job_ids: Sequence[str]) -> dict[str, Record]:
        latest: dict[str, Record] = {}
        unique = list(dict.fromkeys(job_ids))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            rows = self._read(
                "SELECT doc FROM (SELECT doc, row_number() OVER ("
                "PARTITION BY job_id ORDER BY created DESC, ex_id DESC) AS rank "
                f"FROM executions WHERE job_id IN ({_placeholders(chunk)})) WHERE rank = 1",
                chunk,
            )
            for (doc,) in rows:
                record = json.loads(doc)
                latest[record["job_id"]] = record
        return latest

    # -- slice state --

    def create_slices(self, records: Sequence[Record]) -> None:
        rows = [_slice_row(r) for r in prepare.new_slices(records)]
        if rows:
            with self._write() as conn:
                conn.executemany(f"REPLACE INTO slices VALUES ({_placeholders(rows[0])})", rows)

    def update_slice(self, slice_id: str, fields: Mapping[str, Any]) -> None:
        # The workers' hot path: one UPDATE patching the JSON in place (no read, no re-encode
        # of the whole record), about twice as fast as a read-modify-write.
        changes = prepare.slice_update(fields)
        patch = ", ?, json(?)" * len(changes)
        params: list[Any] = []
        for key, value in changes.items():
            params += [f'$."{key}"', _dumps(value)]
        sets = [f"doc = json_set(doc{patch})"]
        for field, column in _SLICES.columns.items():
            if field in changes:
                sets.append(f"{column} = ?")
                params.append(changes[field])
        with self._write() as conn:
            cursor = conn.execute(
                f"UPDATE slices SET {', '.join(sets)} WHERE slice_id = ?", [*params, slice_id]
            )
            if cursor.rowcount == 0:
                raise RecordNotFound("slice", slice_id)

    def list_slices(self, flt: SliceFilter, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._list(_SLICES, _slice_where(flt), page)

    def count_slices(self, flt: SliceFilter) -> int:
        return self._count("slices", _slice_where(flt))

    # -- analytics --

    def add_analytics(self, records: Sequence[Record]) -> None:
        rows = [(r["ex_id"], _dumps(r)) for r in prepare.new_analytics(records)]
        if rows:
            with self._write() as conn:
                conn.executemany("INSERT INTO analytics (ex_id, doc) VALUES (?, ?)", rows)

    def count_analytics(self, ex_id: str) -> int:
        return self._count("analytics", (" WHERE ex_id = ?", [ex_id]))

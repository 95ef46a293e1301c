"""The SQLite store's layout: schema, tables, the rows records are stored as and the SQL
fragments (``WHERE``, ``ORDER BY``) its queries are built from. Pure functions, no connection.

Layout: each record is stored whole as JSON text in ``doc``; the fields lists filter and sort on
are copied into indexed columns when the record is written, so a list reads only the index and
the ``size`` rows it returns. Sorting by any other top-level field falls back to
``json_extract`` (correct, not indexed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from teraslice_k8s.store.base import ExFilter, JobFilter, Record, SliceFilter, StoreError
from teraslice_k8s.store.query import SortKey

SCHEMA_VERSION = 1

SCHEMA = """
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

CREATE TABLE IF NOT EXISTS records_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL  -- bumped by every job and execution write (the triggers below)
);
INSERT OR IGNORE INTO records_version VALUES (1, 0);
"""

#: Triggers bumping ``records_version.n`` in the transaction of every job and execution write, by
#: any process or connection (:meth:`SqliteStore.records_version`). Separate statements: their
#: bodies hold semicolons. Slice and analytics writes (the workers' hot path) bump nothing.
TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_bumps_version AFTER {event} ON {table} "
    "BEGIN UPDATE records_version SET n = n + 1 WHERE id = 1; END"
    for table in ("jobs", "executions")
    for event in ("INSERT", "UPDATE", "DELETE")
)


@dataclass(frozen=True, slots=True)
class Table:
    """How one kind of record maps to its table: id column and field -> indexed column."""

    name: str
    kind: str
    id_column: str
    columns: Mapping[str, str]
    nullable: frozenset[str] = frozenset()


JOBS = Table("jobs", "job", "job_id", {"job_id": "job_id", "_created": "created", "_updated": "updated"})
EXECUTIONS = Table(
    "executions",
    "execution",
    "ex_id",
    {"ex_id": "ex_id", "job_id": "job_id", "_status": "status", "_created": "created", "_updated": "updated"},
)
SLICES = Table(
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
WITH_EX = """json_set(t.doc, '$.ex', json(coalesce((
    SELECT CASE WHEN e.deleted THEN '{{}}' ELSE (
        SELECT json_group_object(key, CASE type
            WHEN 'true' THEN json('true') WHEN 'false' THEN json('false')
            WHEN 'object' THEN json(value) WHEN 'array' THEN json(value)
            ELSE json_quote(value) END)
        FROM json_each(e.doc) WHERE key IN ({fields})) END
    FROM executions AS e WHERE e.job_id = t.job_id ORDER BY e.created DESC, e.ex_id DESC LIMIT 1
), '{{}}')))"""


def dumps(record: Mapping[str, Any]) -> str:
    try:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise StoreError(f"record cannot be stored as JSON: {error}") from error


def order_by(table: Table, keys: Sequence[SortKey], params: list[Any]) -> str:
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
            # json_valid first: one malformed row must not fail the whole listing
            terms.append(f"CASE WHEN json_valid(doc) THEN json_extract(doc, ?) END {direction} NULLS LAST")
    terms.append(f"{table.id_column} {'DESC' if keys[0].descending else 'ASC'}")
    return " ORDER BY " + ", ".join(terms)


def placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))


def where(clauses: Sequence[str], params: list[Any]) -> tuple[str, list[Any]]:
    """A ``WHERE`` clause joining ``clauses`` with ``AND`` (empty when there are none)."""
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def job_where(flt: JobFilter) -> tuple[str, list[Any]]:
    clauses, params = ["deleted = ?"], [int(flt.deleted)]
    if flt.active is not None:
        clauses.append("inactive = ?")
        params.append(int(not flt.active))
    return where(clauses, params)


def ex_where(flt: ExFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.job_id is not None:
        clauses.append("job_id = ?")
        params.append(flt.job_id)
    # A status filter goes through executions_by_status unless a job's own executions are asked.
    # The planner cannot know that living statuses are rare (sqlite_stat1 after ANALYZE averages
    # over all statuses; without it, `deleted = ?` on executions_by_updated looks as selective),
    # and either way it scanned every execution: 40-110 ms for the running ones of 100,000
    # (/cluster/controllers, ?status=) instead of 0.3 ms. unlikely() says the status term is
    # selective; the unary + keeps `deleted` off an index.
    by_status = bool(flt.statuses) and flt.job_id is None
    if flt.statuses:
        term = f"status IN ({placeholders(flt.statuses)})"
        clauses.append(f"unlikely({term})" if by_status else term)
        params.extend(flt.statuses)
    if flt.deleted is not None:
        clauses.append("+deleted = ?" if by_status else "deleted = ?")
        params.append(int(flt.deleted))
    return where(clauses, params)


def slice_where(flt: SliceFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.ex_id is not None:
        clauses.append("ex_id = ?")
        params.append(flt.ex_id)
    if flt.states:
        clauses.append(f"state IN ({placeholders(flt.states)})")
        params.extend(flt.states)
    if flt.exclude_states:
        clauses.append(f"state NOT IN ({placeholders(flt.exclude_states)})")
        params.extend(flt.exclude_states)
    if flt.slicer_id is not None:
        clauses.append("slicer_id = ?")
        params.append(flt.slicer_id)
    return where(clauses, params)


def job_row(record: Record) -> tuple[Any, ...]:
    return (
        record["job_id"],
        record["_created"],
        record["_updated"],
        int(record.get("_deleted") is True),
        int(record.get("active") is False),
        dumps(record),
    )


def ex_row(record: Record) -> tuple[Any, ...]:
    return (
        record["ex_id"],
        record["job_id"],
        record["_status"],
        record["_created"],
        record["_updated"],
        int(record.get("_deleted") is True),
        dumps(record),
    )


def slice_row(record: Record) -> tuple[Any, ...]:
    return (
        record["slice_id"],
        record["ex_id"],
        record.get("slicer_id"),
        record.get("slicer_order"),
        record["state"],
        record["_created"],
        record["_updated"],
        dumps(record),
    )

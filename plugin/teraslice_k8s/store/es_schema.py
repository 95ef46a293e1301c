"""The Elasticsearch store's layout: Teraslice's index mappings, how each index is sorted,
and the queries its filters become. Pure data and functions, no client.

Mappings follow api-and-runtime.md §5.2 with explicit ``dynamic: false``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.store.base import ExFilter, JobFilter, SliceFilter
from teraslice_k8s.store.query import SortKey

_KEYWORD = {"type": "keyword"}
_DATE = {"type": "date"}
_BOOLEAN = {"type": "boolean"}
_INTEGER = {"type": "integer"}
_LONG = {"type": "long"}
_FLOAT = {"type": "float"}

#: ``<cluster>__jobs`` mapping (api-and-runtime.md §5.2). ``name`` gets a ``keyword``
#: sub-field (our addition) so that lists can sort by name.
JOB_FIELDS: dict[str, dict[str, Any]] = {
    **dict.fromkeys(("job_id", "_context", "lifecycle", "assets", "log_level", "kubernetes_image"), _KEYWORD),
    **dict.fromkeys(("_created", "_updated", "_deleted_on"), _DATE),
    **dict.fromkeys(
        (
            "_deleted",
            "active",
            "analytics",
            "autorecover",
            "stateful",
            "ephemeral_storage",
            "prom_metrics_enabled",
            "prom_metrics_add_default",
        ),
        _BOOLEAN,
    ),
    **dict.fromkeys(("max_retries", "probation_window", "slicers", "workers", "prom_metrics_port"), _INTEGER),
    "name": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
    **dict.fromkeys(
        ("cpu", "cpu_execution_controller", "resources_requests_cpu", "resources_limits_cpu"), _FLOAT
    ),
    **dict.fromkeys(
        ("memory", "memory_execution_controller", "resources_requests_memory", "resources_limits_memory"),
        _LONG,
    ),
}
EX_FIELDS: dict[str, dict[str, Any]] = {
    **JOB_FIELDS,
    **dict.fromkeys(
        (
            "ex_id",
            "_status",
            "recovered_execution",
            "recovered_slice_type",
            "slicer_hostname",
            "teraslice_version",
        ),
        _KEYWORD,
    ),
    **dict.fromkeys(("_has_errors", "relocatable"), _BOOLEAN),
    "_slicer_stats": {"type": "object"},
    "_failureReason": {"type": "text"},
    "metadata": {"type": "object", "enabled": False},
    "slicer_port": _INTEGER,
}
STATE_FIELDS: dict[str, dict[str, Any]] = {
    **dict.fromkeys(("ex_id", "slice_id", "slicer_id", "state"), _KEYWORD),
    # Teraslice maps error as a plain keyword, so a stack over 32 kB (Lucene's term limit)
    # makes the worker's state write fail; longer errors are kept in _source, not indexed.
    "error": {"type": "keyword", "ignore_above": 8191},
    "slicer_order": _INTEGER,
    **dict.fromkeys(("_created", "_updated"), _DATE),
}
ANALYTICS_FIELDS: dict[str, dict[str, Any]] = {
    **dict.fromkeys(("ex_id", "job_id", "worker_id", "slice_id", "slicer_id", "op", "state"), _KEYWORD),
    **dict.fromkeys(("order", "count", "time"), _INTEGER),
    "memory": _LONG,
    "@timestamp": _DATE,
}

_SORTABLE = frozenset({"keyword", "date", "boolean", "integer", "long", "float"})


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    kind: str
    id_field: str
    fields: Mapping[str, Mapping[str, Any]]
    settings_key: str  # key in teraslice.index_settings

    def sort(self, keys: Sequence[SortKey]) -> list[dict[str, Any]]:
        """Elasticsearch ``sort`` for ``keys``: missing values last, ties broken by the id."""
        clauses: list[dict[str, Any]] = []
        for key in keys:
            mapping = self.fields.get(key.field)
            target = key.field
            if mapping is not None and mapping.get("type") == "text" and "fields" in mapping:
                target = f"{key.field}.keyword"
            elif mapping is None or mapping.get("type") not in _SORTABLE:
                raise ValidationError(
                    [Problem("sort", f'cannot sort {self.kind} records by "{key.field}": it is not indexed')],
                    subject="sort",
                )
            clauses.append({target: {"order": "desc" if key.descending else "asc", "missing": "_last"}})
        clauses.append({self.id_field: {"order": "desc" if keys[0].descending else "asc"}})
        return clauses


def _bool(filters: list[dict[str, Any]], must_not: list[dict[str, Any]]) -> dict[str, Any]:
    if not filters and not must_not:
        return {"match_all": {}}
    query: dict[str, Any] = {}
    if filters:
        query["filter"] = filters
    if must_not:
        query["must_not"] = must_not
    return {"bool": query}


def _deleted(deleted: bool | None, filters: list[dict[str, Any]], must_not: list[dict[str, Any]]) -> None:
    # Teraslice: deleted=false is "_deleted:false OR no _deleted field", i.e. not _deleted:true.
    if deleted is True:
        filters.append({"term": {"_deleted": True}})
    elif deleted is False:
        must_not.append({"term": {"_deleted": True}})


def job_query(flt: JobFilter) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    _deleted(flt.deleted, filters, must_not)
    if flt.active is True:
        must_not.append({"term": {"active": False}})
    elif flt.active is False:
        filters.append({"term": {"active": False}})
    return _bool(filters, must_not)


def ex_query(flt: ExFilter) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    if flt.job_id is not None:
        filters.append({"term": {"job_id": flt.job_id}})
    if flt.statuses:
        filters.append({"terms": {"_status": list(flt.statuses)}})
    _deleted(flt.deleted, filters, must_not)
    return _bool(filters, must_not)


def slice_query(flt: SliceFilter) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    if flt.ex_id is not None:
        filters.append({"term": {"ex_id": flt.ex_id}})
    if flt.states:
        filters.append({"terms": {"state": list(flt.states)}})
    if flt.exclude_states:
        must_not.append({"terms": {"state": list(flt.exclude_states)}})
    if flt.slicer_id is not None:
        filters.append({"term": {"slicer_id": str(flt.slicer_id)}})
    return _bool(filters, must_not)

"""The storage interface of the master and the runtime (Teraslice's four state indices).

Two implementations pass one shared contract suite (``tests/unit/store/``): SQLite
(``store.sqlite``, the embedded default, one file, safe across processes) and
Elasticsearch (``store.elasticsearch``, indices ``<cluster>__jobs``, ``__ex``, ``__state``,
``__analytics``). Records are plain JSON dicts shaped exactly like Teraslice's documents
(api-and-runtime.md §2.5, §2.6, §5.4, §5.5); timestamps are ISO-8601 UTC with
milliseconds and a ``Z``.

Contract shared by every implementation:
- ``get_*`` raise :class:`RecordNotFound` for an unknown id (the API maps it to 404).
- Writes are durable when the call returns; a failed write raises and changes nothing.
- ``set_status`` is an atomic read-check-write: the transition rule of
  :mod:`teraslice_k8s.models.execution` runs inside it, so two writers cannot both win.
- Lists sort by ``sort`` given as ``"<field>:asc|desc"`` (default ``_updated:desc``) and page
  with ``size``/``from_``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from teraslice_k8s.errors import TerasliceError

Record = dict[str, Any]


class StoreError(TerasliceError):
    """The store could not complete an operation (connection, corrupt data...)."""


class RecordNotFound(StoreError):
    """No record with that id; ``message`` is what Teraslice's API returns with the 404."""

    def __init__(self, kind: str, record_id: str) -> None:
        self.kind, self.record_id = kind, record_id
        super().__init__(f"Could not find {kind} {record_id}")


@dataclass(frozen=True, slots=True)
class Page:
    """Paging and ordering of a list call (Teraslice's ``size``/``from``/``sort``)."""

    size: int = 100
    from_: int = 0
    sort: str = "_updated:desc"


@dataclass(frozen=True, slots=True)
class JobFilter:
    """``active``: None = any, True = not ``active: false``, False = ``active: false``.
    ``deleted``: False = only not-deleted (default), True = only deleted."""

    active: bool | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class ExFilter:
    job_id: str | None = None
    statuses: Sequence[str] = field(default_factory=tuple)
    deleted: bool | None = False


@dataclass(frozen=True, slots=True)
class SliceFilter:
    ex_id: str | None = None
    states: Sequence[str] = field(default_factory=tuple)


class Store(Protocol):
    """Jobs, executions, slice state and analytics of one cluster."""

    # -- jobs (index <cluster>__jobs, id job_id) --
    def create_job(self, record: Record) -> Record: ...
    def get_job(self, job_id: str) -> Record: ...
    def replace_job(self, job_id: str, record: Record) -> Record: ...
    def list_jobs(self, flt: JobFilter = JobFilter(), page: Page = Page()) -> list[Record]: ...
    def count_jobs(self, flt: JobFilter = JobFilter()) -> int: ...

    # -- executions (index <cluster>__ex, id ex_id) --
    def create_execution(self, record: Record) -> Record: ...
    def get_execution(self, ex_id: str) -> Record: ...
    def update_execution(self, ex_id: str, fields: Mapping[str, Any]) -> Record:
        """Merge top-level ``fields`` into the record, set ``_updated``; never changes ``_status``."""
        ...

    def set_status(
        self, ex_id: str, status: str, fields: Mapping[str, Any] | None = None
    ) -> Record:
        """Atomically check the transition, then write ``_status``, ``fields`` and ``_updated``."""
        ...

    def list_executions(self, flt: ExFilter = ExFilter(), page: Page = Page()) -> list[Record]: ...
    def latest_execution(self, job_id: str) -> Record | None:
        """The job's newest execution by ``_created`` (deleted ones included), or None."""
        ...

    # -- slice state (index <cluster>__state, id slice_id) --
    def create_slices(self, records: Sequence[Record]) -> None:
        """Insert state records (``slice_id, slicer_id, slicer_order, request, state, ex_id``)."""
        ...

    def update_slice(self, slice_id: str, fields: Mapping[str, Any]) -> None: ...
    def list_slices(self, flt: SliceFilter, page: Page = Page()) -> list[Record]: ...
    def count_slices(self, flt: SliceFilter) -> int: ...

    # -- analytics (index <cluster>__analytics) --
    def add_analytics(self, records: Sequence[Record]) -> None: ...

    def close(self) -> None: ...

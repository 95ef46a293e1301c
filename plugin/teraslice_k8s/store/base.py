"""The storage interface of the master and the runtime (Teraslice's four state indices).

Two implementations pass one shared contract suite (``tests/unit/store/``): SQLite
(``store.sqlite``, the embedded default, one file, safe across processes) and
Elasticsearch (``store.elasticsearch``, indices ``<cluster>__jobs``, ``__ex``, ``__state``,
``__analytics``). Records are plain JSON dicts shaped exactly like Teraslice's documents
(api-and-runtime.md §2.5, §2.6, §5.4, §5.5); timestamps are ISO-8601 UTC with
milliseconds and a ``Z`` (:func:`teraslice_k8s.store.timestamps.utc_now`).

Contract shared by every implementation:
- ``get_*`` raise :class:`RecordNotFound` for an unknown id (the API maps it to 404);
  ``create_job``/``create_execution`` raise :class:`RecordExists` for a taken id.
- ``create_job``/``create_execution`` stamp ``_context`` (``job``/``ex``), ``_created`` and
  ``_updated`` (any values the caller put there are overwritten, as Teraslice does);
  ``_created`` is strictly increasing within one store object, so "latest" is well defined.
- Writes are durable when the call returns (they survive a crash of any process; power loss:
  see ``SqliteStore``'s ``synchronous``) and visible to every later read of any process; a
  failed write raises and changes nothing (Elasticsearch bulk writes excepted: see there).
- ``set_status`` is an atomic read-check-write: the transition rule of
  :mod:`teraslice_k8s.models.execution` runs inside it, so two writers cannot both win, and a
  refused change stores nothing (``_updated`` included).
- Lists sort by ``sort`` given as ``"<field>[:asc|desc][,<field>[:asc|desc]]..."`` (default
  ``_updated:desc``; records without the field last, ties broken by the record id) and page with
  ``size``/``from_`` (``size`` 0..10000, ``from_ + size`` <= 10000, Elasticsearch's window).
  Bad paging or sort raises :class:`~teraslice_k8s.errors.ValidationError` naming ``size``,
  ``from`` or ``sort``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
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


class RecordExists(StoreError):
    """A create found the id already taken (HTTP 409 in the API)."""

    def __init__(self, kind: str, record_id: str) -> None:
        self.kind, self.record_id = kind, record_id
        super().__init__(f"{kind} {record_id} already exists")


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
    """``statuses``: empty = any. ``deleted``: None = any, False = not deleted, True = deleted."""

    job_id: str | None = None
    statuses: Sequence[str] = field(default_factory=tuple)
    deleted: bool | None = False


@dataclass(frozen=True, slots=True)
class SliceFilter:
    """``states``: empty = any; ``exclude_states``: drop these (recovery's ``NOT state:completed``)."""

    ex_id: str | None = None
    states: Sequence[str] = field(default_factory=tuple)
    slicer_id: int | None = None
    exclude_states: Sequence[str] = field(default_factory=tuple)


class RecordsVersioned(Protocol):
    """Optional for a :class:`Store`: say, cheaply, whether any job or execution record changed.

    ``records_version()`` returns a value that differs after every committed job or execution
    write by any process sharing the store, so a listing rendered while the value stayed the same
    (read before and after the render) is exactly what the store holds until it changes. The API
    keys its rendered listings by it (found with ``getattr``); a store without it gets listings
    rendered per request (and job listings bounded by a TTL, see ``master.app_caches``).
    """

    def records_version(self) -> Hashable: ...


#: Defaults of the list/count calls (module-level: frozen, so sharing them is safe).
DEFAULT_PAGE = Page()
ANY_JOB = JobFilter()
ANY_EXECUTION = ExFilter()


class Store(Protocol):
    """Jobs, executions, slice state and analytics of one cluster."""

    # -- jobs (index <cluster>__jobs, id job_id) --
    def create_job(self, record: Record) -> Record:
        """Store a new job (``record['job_id']`` required); returns the stored record."""
        ...

    def get_job(self, job_id: str) -> Record: ...
    def replace_job(self, job_id: str, record: Record) -> Record:
        """Replace the whole record (fields left out disappear), keeping ``_created``;
        sets ``job_id``, ``_context`` and ``_updated``. Unknown id: :class:`RecordNotFound`."""
        ...

    def list_jobs(self, flt: JobFilter = ANY_JOB, page: Page = DEFAULT_PAGE) -> list[Record]: ...
    def count_jobs(self, flt: JobFilter = ANY_JOB) -> int: ...
    def list_jobs_json(
        self,
        flt: JobFilter = ANY_JOB,
        page: Page = DEFAULT_PAGE,
        ex_fields: Sequence[str] | None = None,
    ) -> str:
        """``list_jobs`` as compact JSON array text, ready to send (``GET /v1/jobs``) without
        decoding and re-encoding every record. With ``ex_fields`` each job gets ``ex``: its
        latest execution restricted to those fields, or ``{}`` when it has none or the latest
        one is deleted (``?ex=<fields>``)."""
        ...

    # -- executions (index <cluster>__ex, id ex_id) --
    def create_execution(self, record: Record) -> Record:
        """Store a new execution (``ex_id``, ``job_id`` and a valid ``_status`` required)."""
        ...

    def get_execution(self, ex_id: str) -> Record: ...
    def update_execution(self, ex_id: str, fields: Mapping[str, Any]) -> Record:
        """Merge top-level ``fields`` into the record (each replaces the old value whole), set
        ``_updated``; never changes ``_status`` (a ``_status`` key is a ValidationError)."""
        ...

    def set_status(self, ex_id: str, status: str, fields: Mapping[str, Any] | None = None) -> Record:
        """Atomically check the transition, then write ``_status``, ``fields`` and ``_updated``.

        Raises :class:`~teraslice_k8s.models.execution.InvalidTransition` (refused) or
        :class:`~teraslice_k8s.models.execution.InvalidStatus` (unknown name); nothing is stored then.
        """
        ...

    def list_executions(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> list[Record]: ...
    def count_executions(self, flt: ExFilter = ANY_EXECUTION) -> int: ...
    def list_executions_json(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> str:
        """``list_executions`` as compact JSON array text (``GET /v1/ex``)."""
        ...

    def latest_execution(self, job_id: str) -> Record | None:
        """The job's newest execution by ``_created`` (deleted ones included), or None."""
        ...

    def latest_executions(self, job_ids: Sequence[str]) -> dict[str, Record]:
        """``latest_execution`` for many jobs in one query: job_id -> record (jobs without any
        execution are absent). For ``GET /v1/jobs?ex=...``."""
        ...

    # -- slice state (index <cluster>__state, id slice_id) --
    def create_slices(self, records: Sequence[Record]) -> None:
        """Insert state records (``slice_id, slicer_id, slicer_order, request, state, ex_id``;
        ``_created``/``_updated`` default to now). An existing ``slice_id`` is overwritten, so a
        retried batch is harmless."""
        ...

    def update_slice(self, slice_id: str, fields: Mapping[str, Any]) -> None:
        """Merge top-level ``fields``; ``_updated`` is set to now unless given."""
        ...

    def list_slices(self, flt: SliceFilter, page: Page = DEFAULT_PAGE) -> list[Record]: ...
    def count_slices(self, flt: SliceFilter) -> int: ...

    # -- analytics (index <cluster>__analytics) --
    def add_analytics(self, records: Sequence[Record]) -> None: ...
    def count_analytics(self, ex_id: str) -> int: ...

    def close(self) -> None: ...

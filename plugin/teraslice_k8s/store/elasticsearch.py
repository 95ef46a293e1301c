"""The Elasticsearch store: Teraslice's state indices, with Teraslice's ids, fields and mappings.

Indices (created on start when missing by :func:`~teraslice_k8s.store.es_indices.ensure_indices`,
which waits for the cluster):
``<cluster>__jobs`` (id ``job_id``), ``<cluster>__ex`` (id ``ex_id``), ``<cluster>__state``
(id ``slice_id``) and ``<cluster>__analytics`` (generated ids). Unlike Teraslice, state and
analytics are single indices (no monthly ``-YYYY.MM`` rollover), so a slice is updated by id
without knowing the month it was created in.

Consistency:
- Job and execution writes refresh the index before returning (``refresh=True`` by default,
  as Teraslice does; ``"wait_for"`` is accepted), so lists see them at once.
- Read-check-writes (``set_status``, ``update_execution``, ``replace_job``) use optimistic
  concurrency: the document is read with its ``_seq_no``/``_primary_term`` and written back
  only if unchanged (``if_seq_no``/``if_primary_term``), re-read and re-checked on conflict,
  up to ``conflict_retries`` times.
- Slice and analytics writes do not refresh (they are the hot path); list and count calls on
  them refresh the index first, so they see every write that returned before.
- ``create_slices``/``add_analytics`` are bulk requests: on failure some records of the batch
  may have been written (the error names the first failure); retrying the batch is safe for
  slices because records are indexed by ``slice_id``.

Clients built from URLs come from :func:`~teraslice_k8s.store.es_client.make_client`
(Elasticsearch 8 REST compatibility); a client object passed in is used unchanged.
Mappings, sort clauses and filter queries are :mod:`teraslice_k8s.store.es_schema`'s.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from elasticsearch import ApiError, ConflictError, Elasticsearch, NotFoundError, TransportError

from teraslice_k8s.store import es_schema as schema
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
from teraslice_k8s.store.es_client import make_client
from teraslice_k8s.store.es_indices import ensure_indices
from teraslice_k8s.store.query import check_page, id_chunks
from teraslice_k8s.store.timestamps import StoreClock

log = logging.getLogger(__name__)

Refresh = Literal[True, "wait_for"]

_CLUSTER_NAME = re.compile(r"[a-z0-9][a-z0-9_\-.]*")


class ElasticsearchStore:
    """:class:`~teraslice_k8s.store.base.Store` in the ``<cluster_name>__*`` indices.

    ``client_or_url``: an ``Elasticsearch`` client (used as is) or node URL(s) (a client is
    built with :func:`make_client`). :meth:`close` closes the client when ``close_client`` is
    true; by default only a client the store built itself.
    ``index_settings``: ``{"jobs"|"execution"|"state"|"analytics": {"number_of_shards": n,
    "number_of_replicas": n}}`` used when an index is created (Teraslice's 5/1 otherwise).
    ``startup_timeout``: how long (s) to keep retrying index creation while the cluster is
    unreachable or answers 5xx; 4xx fails at once.
    """

    def __init__(
        self,
        client_or_url: Elasticsearch | str | Sequence[str],
        cluster_name: str,
        *,
        index_settings: Mapping[str, Mapping[str, int]] | None = None,
        refresh: Refresh = True,
        conflict_retries: int = 20,
        startup_timeout: float = 120.0,
        close_client: bool | None = None,
    ) -> None:
        if not _CLUSTER_NAME.fullmatch(cluster_name):
            raise ValueError(f"cluster name {cluster_name!r} is not a valid lowercase index name prefix")
        if isinstance(client_or_url, Elasticsearch):
            self._client, self._owns_client = client_or_url, bool(close_client)
        else:
            self._client, self._owns_client = make_client(client_or_url), close_client is not False
        self.cluster_name = cluster_name
        self._refresh: Refresh = refresh
        self._conflict_retries = conflict_retries
        self._clock = StoreClock()
        self.jobs = schema.Index(f"{cluster_name}__jobs", "job", "job_id", schema.JOB_FIELDS, "jobs")
        self.executions = schema.Index(
            f"{cluster_name}__ex", "execution", "ex_id", schema.EX_FIELDS, "execution"
        )
        self.state = schema.Index(f"{cluster_name}__state", "slice", "slice_id", schema.STATE_FIELDS, "state")
        self.analytics = schema.Index(
            f"{cluster_name}__analytics", "analytics", "_id", schema.ANALYTICS_FIELDS, "analytics"
        )
        ensure_indices(
            self._client,
            (self.jobs, self.executions, self.state, self.analytics),
            index_settings or {},
            startup_timeout,
        )

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in (self.jobs, self.executions, self.state, self.analytics))

    # -- plumbing --

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (ApiError, TransportError) as error:
            raise StoreError(f"Elasticsearch store {self.cluster_name}: {action} failed: {error}") from error

    def close(self) -> None:
        """Close the client if this store owns it (see ``close_client``; idempotent)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> ElasticsearchStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _get_versioned(self, index: schema.Index, record_id: str) -> tuple[Record, int, int]:
        try:
            with self._errors(f"get {index.kind} {record_id}"):
                found = self._client.get(index=index.name, id=record_id)
        except StoreError as error:
            if isinstance(error.__cause__, NotFoundError):
                raise RecordNotFound(index.kind, record_id) from None
            raise
        return found["_source"], found["_seq_no"], found["_primary_term"]

    def _get(self, index: schema.Index, record_id: str) -> Record:
        return self._get_versioned(index, record_id)[0]

    def _create(self, index: schema.Index, record: Record) -> Record:
        record_id = record[index.id_field]
        try:
            with self._errors(f"create {index.kind} {record_id}"):
                self._client.index(
                    index=index.name, id=record_id, document=record, op_type="create", refresh=self._refresh
                )
        except StoreError as error:
            if isinstance(error.__cause__, ConflictError):
                raise RecordExists(index.kind, record_id) from None
            raise
        return record

    def _modify(self, index: schema.Index, record_id: str, change: prepare.Change) -> Record:
        """Optimistic read-check-write: ``change(record) -> record`` may raise to refuse."""
        for attempt in range(self._conflict_retries + 1):
            current, seq_no, primary_term = self._get_versioned(index, record_id)
            record: Record = change(current)
            try:
                with self._errors(f"update {index.kind} {record_id}"):
                    self._client.index(
                        index=index.name,
                        id=record_id,
                        document=record,
                        if_seq_no=seq_no,
                        if_primary_term=primary_term,
                        refresh=self._refresh,
                    )
                return record
            except StoreError as error:
                if not isinstance(error.__cause__, ConflictError):
                    raise
                log.debug("%s %s changed concurrently; re-reading", index.kind, record_id)
                # A short jittered pause keeps writers racing on one record from colliding forever.
                time.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise StoreError(
            f"{index.kind} {record_id} was changed concurrently {self._conflict_retries + 1} times; giving up"
        )

    def _search(self, index: schema.Index, query: dict[str, Any], page: Page) -> list[Record]:
        keys = check_page(page)
        sort = index.sort(keys)
        if page.size == 0:
            return []
        with self._errors(f"list {index.kind} records"):
            found = self._client.search(
                index=index.name,
                query=query,
                sort=sort,
                from_=page.from_,
                size=page.size,
                track_total_hits=False,
            )
        return [
            prepare.readable(hit.get("_source"), index.kind, index.id_field, {index.id_field: hit.get("_id")})
            for hit in found["hits"]["hits"]
        ]

    def _count(self, index: schema.Index, query: dict[str, Any]) -> int:
        with self._errors(f"count {index.kind} records"):
            count: int = self._client.count(index=index.name, query=query)["count"]
        return count

    def _refresh_index(self, index: schema.Index) -> None:
        with self._errors(f"refresh {index.name}"):
            self._client.indices.refresh(index=index.name)

    def _bulk(self, index: schema.Index, operations: list[dict[str, Any]]) -> None:
        with self._errors(f"write {index.kind} records"):
            response = self._client.bulk(operations=operations)
        if response["errors"]:
            failed = [item for item in response["items"] if "error" in next(iter(item.values()))]
            first = next(iter(failed[0].values()))
            raise StoreError(
                f"Elasticsearch store {self.cluster_name}: {len(failed)} of {len(response['items'])} "
                f"{index.kind} records were not written; first: {first.get('_id')}: {first['error']}"
            )

    # -- change detection (cached listings) --

    #: ``records_version`` is a request to Elasticsearch: callers read it off the event loop.
    records_version_is_local = False

    def records_version(self) -> tuple[int, int]:
        """:class:`~teraslice_k8s.store.base.RecordsVersioned`: (index and delete operations,
        refreshes) of the jobs and executions indices, summed over every shard copy, from one
        ``_stats`` request. Every write counts as an operation when it returns; it becomes
        visible to searches at a refresh, which counts too, so a listing read between two
        equal versions is what searches showed all along, whichever process wrote."""
        names = f"{self.jobs.name},{self.executions.name}"
        with self._errors("read index statistics"):
            stats = self._client.indices.stats(index=names, metric="indexing,refresh")
        total = stats["_all"]["total"]
        indexing, refresh = total.get("indexing", {}), total.get("refresh", {})
        operations = int(indexing.get("index_total", 0)) + int(indexing.get("delete_total", 0))
        return operations, int(refresh.get("total", 0)) + int(refresh.get("external_total", 0))

    # -- jobs --

    def create_job(self, record: Record) -> Record:
        return self._create(self.jobs, prepare.new_job(record, self._clock))

    def get_job(self, job_id: str) -> Record:
        return self._get(self.jobs, job_id)

    def replace_job(self, job_id: str, record: Record) -> Record:
        return self._modify(
            self.jobs,
            job_id,
            lambda old: prepare.replacement_job(job_id, record, old["_created"], self._clock),
        )

    def list_jobs(self, flt: JobFilter = ANY_JOB, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._search(self.jobs, schema.job_query(flt), page)

    def count_jobs(self, flt: JobFilter = ANY_JOB) -> int:
        return self._count(self.jobs, schema.job_query(flt))

    def list_jobs_json(
        self, flt: JobFilter = ANY_JOB, page: Page = DEFAULT_PAGE, ex_fields: Sequence[str] | None = None
    ) -> str:
        jobs = self.list_jobs(flt, page)
        if ex_fields is not None:
            latest = self.latest_executions([job["job_id"] for job in jobs])
            jobs = [
                {**job, "ex": prepare.restricted_execution(latest.get(job["job_id"]), ex_fields)}
                for job in jobs
            ]
        return json.dumps(jobs, separators=(",", ":"), ensure_ascii=False)

    # -- executions --

    def create_execution(self, record: Record) -> Record:
        return self._create(self.executions, prepare.new_execution(record, self._clock))

    def get_execution(self, ex_id: str) -> Record:
        return self._get(self.executions, ex_id)

    def update_execution(self, ex_id: str, fields: Mapping[str, Any]) -> Record:
        return self._modify(self.executions, ex_id, prepare.execution_change(ex_id, fields, self._clock))

    def set_status(self, ex_id: str, status: str, fields: Mapping[str, Any] | None = None) -> Record:
        return self._modify(self.executions, ex_id, prepare.status_change(ex_id, status, fields, self._clock))

    def list_executions(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> list[Record]:
        return self._search(self.executions, schema.ex_query(flt), page)

    def count_executions(self, flt: ExFilter = ANY_EXECUTION) -> int:
        return self._count(self.executions, schema.ex_query(flt))

    def list_executions_json(self, flt: ExFilter = ANY_EXECUTION, page: Page = DEFAULT_PAGE) -> str:
        return json.dumps(self.list_executions(flt, page), separators=(",", ":"), ensure_ascii=False)

    def latest_execution(self, job_id: str) -> Record | None:
        found = self._search(
            self.executions, {"term": {"job_id": job_id}}, Page(size=1, sort="_created:desc")
        )
        return found[0] if found else None

    def latest_executions(self, job_ids: Sequence[str]) -> dict[str, Record]:
        latest: dict[str, Record] = {}
        for chunk in id_chunks(job_ids):
            with self._errors("find latest executions"):
                found = self._client.search(
                    index=self.executions.name,
                    query={"terms": {"job_id": chunk}},
                    collapse={"field": "job_id"},
                    sort=[{"_created": {"order": "desc"}}, {"ex_id": {"order": "desc"}}],
                    size=len(chunk),
                    track_total_hits=False,
                )
            for hit in found["hits"]["hits"]:
                record = prepare.readable(hit.get("_source"), "execution", "ex_id", {"ex_id": hit.get("_id")})
                job_id = record.get("job_id")
                if isinstance(job_id, str):
                    latest[job_id] = record
        return latest

    # -- slice state --

    def create_slices(self, records: Sequence[Record]) -> None:
        prepared = prepare.new_slices(records)
        if prepared:
            operations: list[dict[str, Any]] = []
            for record in prepared:
                operations += [{"index": {"_index": self.state.name, "_id": record["slice_id"]}}, record]
            self._bulk(self.state, operations)

    def update_slice(self, slice_id: str, fields: Mapping[str, Any]) -> None:
        """Partial update (one request); values are flat in state records, so Elasticsearch's
        deep merge of object values never applies."""
        changes = prepare.slice_update(fields)
        try:
            with self._errors(f"update slice {slice_id}"):
                self._client.update(index=self.state.name, id=slice_id, doc=changes, retry_on_conflict=5)
        except StoreError as error:
            if isinstance(error.__cause__, NotFoundError):
                raise RecordNotFound("slice", slice_id) from None
            raise

    def list_slices(self, flt: SliceFilter, page: Page = DEFAULT_PAGE) -> list[Record]:
        check_page(page)
        self._refresh_index(self.state)
        return self._search(self.state, schema.slice_query(flt), page)

    def count_slices(self, flt: SliceFilter) -> int:
        self._refresh_index(self.state)
        return self._count(self.state, schema.slice_query(flt))

    # -- analytics --

    def add_analytics(self, records: Sequence[Record]) -> None:
        prepared = prepare.new_analytics(records)
        if prepared:
            operations: list[dict[str, Any]] = []
            for record in prepared:
                operations += [{"index": {"_index": self.analytics.name}}, record]
            self._bulk(self.analytics, operations)

    def count_analytics(self, ex_id: str) -> int:
        self._refresh_index(self.analytics)
        return self._count(self.analytics, {"term": {"ex_id": ex_id}})

"""``elasticsearch_reader`` (date-range reader) and ``elasticsearch_bulk`` (bulk writer).

Options follow the elasticsearch asset v5: keys may sit on the op or on the API its
``_api_name`` names (op keys win). The client comes from the terafoundation connector named
by ``_connection`` (``elasticsearch-next`` or ``elasticsearch`` type).

Reader slicing: the ``[start, end)`` range (defaults: the index's min of ``date_field_name``,
and max + one ``time_resolution`` unit) is split evenly between the job's ``slicers``; each
slicer walks its part in ``interval`` steps (``auto``: sized so a step holds about ``size``
documents), halving a step while it holds more than ``size`` documents (down to one
``time_resolution`` unit), and skips empty steps. Requests are
``{"start", "end", "limit", "count"}`` with ISO dates. In ``persistent`` mode the slicer
follows the clock: a step is emitted once ``end <= now - delay``.

Bulk writing: batches of ``size`` index (or ``create``) actions; documents rejected with 429
and whole-request 429s are retried with exponential backoff (0.5 s doubling, capped at 30 s,
up to ``max_retries_429`` rounds); any other rejection fails the slice with ES's reason.

Records and metadata (Teraslice's elasticsearch asset): the reader returns DataEntities with
``_key`` = the document id (:func:`hit_entity`); the sender uses a record's ``_key`` as the
document id and deletes the document named by ``_delete_id`` (:func:`bulk_actions`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import scan
from pydantic import Field, field_validator

from teraslice_k8s.models.schema import parse_duration
from teraslice_k8s.runtime.connectors import ES_CONNECTOR_TYPES, elasticsearch_client
from teraslice_k8s.runtime.data_entity import DataEntity, is_valid_key, now_ms
from teraslice_k8s.runtime.operations.base import (
    Batch,
    DateString,
    OpContext,
    Operation,
    OpOptions,
    Processor,
    Reader,
    Slicer,
    SliceRequest,
)


def hit_entity(hit: Mapping[str, Any], now: int | None = None) -> DataEntity:
    """A search hit as Teraslice's reader makes it: the ``_source`` with metadata ``_key`` =
    the document id, ``_processTime``/``_ingestTime``/``_eventTime`` = now (epoch ms) and the
    hit's ``_index``, ``_version``, ``_seq_no``, ``_primary_term`` (those it has)."""
    at = now_ms() if now is None else now
    meta: dict[str, Any] = {"_key": hit.get("_id"), "_processTime": at, "_ingestTime": at, "_eventTime": at}
    for key in ("_index", "_type", "_version", "_seq_no", "_primary_term"):
        if key in hit:
            meta[key] = hit[key]
    return DataEntity(hit.get("_source") or {}, meta)


def bulk_actions(
    records: Sequence[Any], action: str, index: str, routed: bool = False
) -> list[tuple[dict[str, Any], Any]]:
    """``(action line, document or None)`` pairs for ``records``, as Teraslice's bulk sender
    makes them: a record's valid metadata ``_key`` is the document ``_id`` (no key: Elasticsearch
    picks one); a record with metadata ``_delete_id`` (``add_key``'s ``delete_original``) first
    deletes the document with that id, unless it is the new ``_key`` itself. ``routed`` (a
    sender made for ``routed_sender``): the index is ``<index>-<standard:route>``."""
    pairs: list[tuple[dict[str, Any], Any]] = []
    for record in records:
        meta: dict[str, Any] = {"_index": index}
        if isinstance(record, DataEntity):
            if routed:
                route = record.get_metadata("standard:route")
                if route is not None and route != "":
                    meta["_index"] = f"{index}-{route}"
            key = record.get_metadata("_key")
            if is_valid_key(key):
                meta["_id"] = str(key)
            delete_id = record.get_metadata("_delete_id")
            if is_valid_key(delete_id) and str(delete_id) != meta.get("_id"):
                pairs.append(({"delete": {"_index": meta["_index"], "_id": str(delete_id)}}, None))
        pairs.append(({action: meta}, record))
    return pairs


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_date(value: Any) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float):
        parsed = datetime.fromtimestamp(value / 1000, UTC)
    else:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class ElasticsearchReaderOptions(OpOptions):
    index: str = Field(min_length=1)
    date_field_name: str = Field(min_length=1)
    size: int = Field(5000, gt=0)
    start: DateString | None = None
    end: DateString | None = None
    interval: str = "auto"
    delay: str | int = "30s"
    query: str = ""
    fields: list[str] | None = None
    time_resolution: Literal["s", "ms"] = "s"

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        if value != "auto":
            parse_duration(value)
        return value

    @field_validator("delay")
    @classmethod
    def _delay(cls, value: str | int) -> str | int:
        parse_duration(value)
        return value


class ElasticsearchSenderOptions(OpOptions):
    index: str = Field(min_length=1)
    size: int = Field(500, gt=0)
    create: bool = False
    max_retries_429: int = Field(10, ge=0)


class _ConnectorClient(Operation):
    """An operation using the Elasticsearch client of its ``connection``: built on first use
    (from a worker thread), closed on shutdown."""

    _es: Elasticsearch | None = None
    #: Checked at submit: the connector ``_connection`` names (default ``default``) must exist.
    connector_types: ClassVar[tuple[str, ...]] = tuple(ES_CONNECTOR_TYPES)

    @property
    def es(self) -> Elasticsearch:
        if self._es is None:
            path, config = self.context.connection_config(ES_CONNECTOR_TYPES, self.options.connection)
            self._es = elasticsearch_client(config, path)
        return self._es

    async def shutdown(self) -> None:
        if self._es is not None:
            self._es.close()


class DateSlicer(Slicer):
    recoverable: ClassVar[bool] = True

    def __init__(self, reader: ElasticsearchReader, slicer_id: int, slicers: int) -> None:
        self.reader = reader
        self.slicer_id = slicer_id
        self.slicers = slicers
        self.cursor: datetime | None = None
        self.limit: datetime | None = None
        self.step = timedelta(0)
        self.persistent = reader.context.lifecycle == "persistent"

    @property
    def unit(self) -> timedelta:
        return (
            timedelta(seconds=1) if self.reader.options.time_resolution == "s" else timedelta(milliseconds=1)
        )

    async def initialize(self, recovery: Sequence[Mapping[str, Any]] = ()) -> None:
        opts = self.reader.options
        if self.persistent:
            start = _parse_date(opts.start) if opts.start else datetime.now(UTC)
            self.cursor, self.limit = start, None
            self.step = timedelta(
                milliseconds=parse_duration(opts.interval if opts.interval != "auto" else "1m")
            )
        else:
            bounds = await asyncio.to_thread(self.reader.date_bounds)
            if bounds is None:
                self.cursor = self.limit = None
                return
            first, last = bounds
            span = (last - first) / self.slicers
            self.cursor = first + span * self.slicer_id
            self.limit = last if self.slicer_id == self.slicers - 1 else first + span * (self.slicer_id + 1)
            if opts.interval == "auto":
                total = await asyncio.to_thread(self.reader.count, first, last)
                self.step = max(span if total <= opts.size else (last - first) * opts.size / total, self.unit)
            else:
                self.step = timedelta(milliseconds=parse_duration(opts.interval))
        for item in recovery:
            if int(item.get("slicer_id", -1)) != self.slicer_id:
                continue
            last_slice = item.get("lastSlice") or {}
            request = last_slice.get("request", last_slice)
            if isinstance(request, Mapping) and request.get("end"):
                self.cursor = _parse_date(request["end"])
        self.reader.record_range(self.slicer_id, self.cursor, self.limit)

    async def slice(self) -> SliceRequest | None:
        opts = self.reader.options
        while True:
            if self.cursor is None:
                return None
            if self.persistent:
                horizon = datetime.now(UTC) - timedelta(milliseconds=parse_duration(opts.delay))
                if self.cursor + self.step > horizon:
                    return None
                end = self.cursor + self.step
                limit = end
            else:
                assert self.limit is not None
                if self.cursor >= self.limit:
                    return None
                limit = self.limit
                end = min(self.cursor + self.step, limit)
            count = await asyncio.to_thread(self.reader.count, self.cursor, end)
            while count > opts.size and end - self.cursor > self.unit:
                end = self.cursor + max((end - self.cursor) / 2, self.unit)
                count = await asyncio.to_thread(self.reader.count, self.cursor, end)
            start, self.cursor = self.cursor, end
            if count == 0 and not self.persistent:
                continue
            return {"start": _iso(start), "end": _iso(end), "limit": _iso(limit), "count": count}


class ElasticsearchReader(_ConnectorClient, Reader):
    Options: ClassVar[type[OpOptions]] = ElasticsearchReaderOptions
    options: ElasticsearchReaderOptions

    def __init__(self, context: OpContext, options: OpOptions) -> None:
        super().__init__(context, options)
        self._ranges: dict[int, dict[str, Any]] = {}

    def record_range(self, slicer_id: int, start: datetime | None, end: datetime | None) -> None:
        """Keep each slicer's date range in the execution's ``metadata[<op>]`` (like Teraslice)."""
        self._ranges[slicer_id] = {
            "slicer_id": slicer_id,
            "start": _iso(start) if start else None,
            "end": _iso(end) if end else None,
        }
        self.context.set_metadata(self.options.op, [self._ranges[k] for k in sorted(self._ranges)])

    @classmethod
    def validate_job(cls, options: OpOptions, index: int, job: Mapping[str, Any]) -> list[str]:
        assert isinstance(options, ElasticsearchReaderOptions)
        if job.get("lifecycle") == "persistent" and options.interval == "auto":
            return ['persistent jobs need an explicit "interval" (and "delay")']
        return []

    def _range_query(self, start: datetime, end: datetime) -> dict[str, Any]:
        must: list[dict[str, Any]] = [
            {"range": {self.options.date_field_name: {"gte": _iso(start), "lt": _iso(end)}}}
        ]
        if self.options.query:
            must.append({"query_string": {"query": self.options.query}})
        return {"bool": {"must": must}}

    def date_bounds(self) -> tuple[datetime, datetime] | None:
        """(start, end) of the range to read, or None when the index holds no dates."""
        opts = self.options
        if opts.start and opts.end:
            return _parse_date(opts.start), _parse_date(opts.end)
        field = opts.date_field_name
        resp = self.es.search(
            index=opts.index,
            size=0,
            query={"query_string": {"query": opts.query}} if opts.query else {"match_all": {}},
            aggs={"min": {"min": {"field": field}}, "max": {"max": {"field": field}}},
        )
        aggs = resp["aggregations"]
        if aggs["min"]["value"] is None:
            return None
        unit = timedelta(seconds=1) if opts.time_resolution == "s" else timedelta(milliseconds=1)
        first = _parse_date(opts.start) if opts.start else _parse_date(aggs["min"]["value"])
        last = _parse_date(opts.end) if opts.end else _parse_date(aggs["max"]["value"]) + unit
        return first, last

    def count(self, start: datetime, end: datetime) -> int:
        return int(self.es.count(index=self.options.index, query=self._range_query(start, end))["count"])

    def make_slicers(self, count: int) -> list[Slicer]:
        return [DateSlicer(self, i, count) for i in range(count)]

    def _fetch(self, request: SliceRequest) -> Batch:
        query: dict[str, Any] = {
            "query": self._range_query(_parse_date(request["start"]), _parse_date(request["end"]))
        }
        if self.options.fields:
            query["_source"] = self.options.fields
        hits = scan(self.es, index=self.options.index, query=query, size=min(self.options.size, 10000))
        return [hit_entity(hit) for hit in hits]

    async def fetch(self, request: SliceRequest) -> Batch:
        return await asyncio.to_thread(self._fetch, request)


class ElasticsearchBulk(_ConnectorClient, Processor):
    Options: ClassVar[type[OpOptions]] = ElasticsearchSenderOptions
    options: ElasticsearchSenderOptions
    #: Index ``<index>-<standard:route>`` per record (senders made for ``routed_sender``).
    routed: bool = False

    def _send(self, docs: Sequence[Any]) -> None:
        action = "create" if self.options.create else "index"
        pending = bulk_actions(docs, action, self.options.index, self.routed)
        delay = 0.5
        for attempt in range(self.options.max_retries_429 + 1):
            operations: list[Any] = []
            for line, doc in pending:
                operations.append(line)
                if doc is not None:
                    operations.append(doc)
            try:
                resp = self.es.bulk(operations=operations)
            except ApiError as exc:
                if exc.meta.status != 429 or attempt == self.options.max_retries_429:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if not resp.get("errors"):
                return
            retry: list[tuple[dict[str, Any], Any]] = []
            for pair, item in zip(pending, resp["items"], strict=True):
                kind = next(iter(pair[0]))
                result = item.get(kind, {})
                status = int(result.get("status", 200))
                if status == 429:
                    retry.append(pair)
                elif kind == "delete" and status == 404:
                    continue  # the old document is already gone
                elif status >= 300:
                    raise RuntimeError(
                        f"elasticsearch_bulk: document rejected ({status}): {result.get('error')}"
                    )
            if not retry:
                return
            if attempt == self.options.max_retries_429:
                raise RuntimeError(f"elasticsearch_bulk: {len(retry)} documents still rejected with 429")
            pending = retry
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _send_all(self, batch: Batch) -> None:
        size = self.options.size
        for i in range(0, len(batch), size):
            self._send(batch[i : i + size])

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        if batch:
            await asyncio.to_thread(self._send_all, batch)
        return batch

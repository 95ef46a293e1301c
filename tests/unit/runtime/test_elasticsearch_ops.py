"""elasticsearch_bulk / elasticsearch_reader: rules with a fake client, and end to end against
a real Elasticsearch when TEST_ELASTICSEARCH_URL is set."""

from __future__ import annotations

import itertools
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError

from teraslice_k8s.runtime.operations.base import OpContext
from teraslice_k8s.runtime.operations.elasticsearch import (
    DateSlicer,
    ElasticsearchBulk,
    ElasticsearchReader,
)

from .harness import Cluster

ES_URL = os.environ.get("TEST_ELASTICSEARCH_URL")


def _meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(status, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))


class FakeBulkClient:
    """Rejects the first ``reject`` documents of the first request with 429."""

    def __init__(self, reject: int = 0, whole_429: int = 0) -> None:
        self.reject = reject
        self.whole_429 = whole_429
        self.calls: list[list[Any]] = []

    def bulk(self, operations: list[Any]) -> dict[str, Any]:
        if self.whole_429:
            self.whole_429 -= 1
            raise ApiError("too many requests", _meta(429), {})
        docs = operations[1::2]
        self.calls.append(docs)
        items = []
        for i, _ in enumerate(docs):
            status = 429 if len(self.calls) == 1 and i < self.reject else 201
            items.append({"index": {"status": status}})
        return {"errors": any(it["index"]["status"] >= 300 for it in items), "items": items}


def bulk_op(client: FakeBulkClient, **options: Any) -> ElasticsearchBulk:
    op = ElasticsearchBulk(
        OpContext({}),
        ElasticsearchBulk.Options.model_validate({"_op": "elasticsearch_bulk", "index": "out", **options}),
    )
    op._es = client  # type: ignore[assignment]
    return op


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("teraslice_k8s.runtime.operations.elasticsearch.time.sleep", lambda _s: None)


async def test_bulk_retries_documents_rejected_with_429_only() -> None:
    client = FakeBulkClient(reject=2)
    batch = [{"n": i} for i in range(5)]
    assert await bulk_op(client).process(batch, {}) == batch
    assert client.calls == [batch, batch[:2]]


async def test_bulk_retries_whole_request_429_and_splits_by_size() -> None:
    client = FakeBulkClient(whole_429=1)
    batch = [{"n": i} for i in range(5)]
    await bulk_op(client, size=2).process(batch, {})
    assert client.calls == [batch[0:2], batch[2:4], batch[4:5]]


async def test_bulk_gives_up_after_max_retries_429() -> None:
    client = FakeBulkClient(whole_429=5)
    with pytest.raises(ApiError):
        await bulk_op(client, max_retries_429=2).process([{"n": 1}], {})


class FakeCountReader(ElasticsearchReader):
    """Documents at the given timestamps; counts answered from them."""

    def __init__(self, times: list[datetime], **options: Any) -> None:
        opts = {"_op": "elasticsearch_reader", "index": "in", "date_field_name": "created", **options}
        super().__init__(OpContext({"lifecycle": "once"}), ElasticsearchReader.Options.model_validate(opts))
        self.times = times

    def count(self, start: datetime, end: datetime) -> int:
        return sum(1 for t in self.times if start <= t < end)

    def date_bounds(self) -> tuple[datetime, datetime] | None:
        if not self.times:
            return None
        return min(self.times), max(self.times) + timedelta(seconds=1)


T0 = datetime(2024, 5, 1, tzinfo=UTC)


async def drain(slicer: DateSlicer) -> list[dict[str, Any]]:
    await slicer.initialize()
    out = []
    while (request := await slicer.slice()) is not None:
        assert isinstance(request, dict)
        out.append(request)
    return out


async def test_date_slicer_covers_every_document_once_within_size() -> None:
    times = [T0 + timedelta(seconds=i) for i in range(100)] + [T0 + timedelta(seconds=50)] * 30
    reader = FakeCountReader(times, size=20)
    (slicer,) = reader.make_slicers(1)
    assert isinstance(slicer, DateSlicer)
    requests = await drain(slicer)
    assert sum(r["count"] for r in requests) == len(times)
    assert all(r["count"] <= 20 or r["end"] == _plus(r["start"], 1) for r in requests)
    assert requests[0]["start"] == "2024-05-01T00:00:00.000Z"
    assert requests[-1]["end"] == "2024-05-01T00:01:40.000Z"
    for a, b in itertools.pairwise(requests):
        assert a["end"] <= b["start"]


async def test_parallel_date_slicers_split_the_range() -> None:
    times = [T0 + timedelta(seconds=i) for i in range(60)]
    reader = FakeCountReader(times, size=100)
    counts = [sum(r["count"] for r in await drain(s)) for s in reader.make_slicers(3)]  # type: ignore[arg-type]
    assert counts == [20, 20, 20]


async def test_empty_index_makes_no_slices() -> None:
    (slicer,) = FakeCountReader([]).make_slicers(1)
    assert await drain(slicer) == []  # type: ignore[arg-type]


def _plus(iso: str, seconds: int) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


needs_es = pytest.mark.skipif(
    not ES_URL, reason="TEST_ELASTICSEARCH_URL is not set (needs a real Elasticsearch)"
)


@pytest.fixture
def es() -> Any:
    from teraslice_k8s.runtime.connectors import elasticsearch_client

    client = elasticsearch_client({"node": ES_URL})
    created: list[str] = []
    client.created = created  # type: ignore[attr-defined]
    yield client
    for index in created:
        client.indices.delete(index=index, ignore_unavailable=True)
    client.close()


def _index(es: Any, prefix: str) -> str:
    name = f"ts-k8s-test-{prefix}-{uuid.uuid4().hex[:8]}"
    es.created.append(name)
    return name


@pytest.mark.elasticsearch
@needs_es
async def test_generate_to_elasticsearch(tmp_path: Path, es: Any) -> None:
    out = _index(es, "gen")
    ops = [
        {"_op": "data_generator", "size": 1000, "slice_size": 250},
        {"_op": "elasticsearch_bulk", "_api_name": "sender"},
    ]
    job = {"operations": ops, "apis": [{"_name": "sender", "index": out, "size": 100}]}
    c = Cluster(tmp_path, job, connectors={"elasticsearch-next": {"default": {"node": ES_URL}}})
    await c.start(workers=2)
    ex = await c.finish()
    assert ex["_status"] == "completed", ex["_failureReason"]
    es.indices.refresh(index=out)
    assert es.count(index=out)["count"] == 1000
    c.close()


@pytest.mark.elasticsearch
@needs_es
async def test_reindex_by_date_range(tmp_path: Path, es: Any) -> None:
    src, dst = _index(es, "src"), _index(es, "dst")
    operations: list[Any] = []
    for i in range(300):
        operations += [
            {"index": {"_index": src}},
            {"n": i, "created": (T0 + timedelta(seconds=i)).isoformat()},
        ]
    es.bulk(operations=operations, refresh=True)
    ops = [
        {"_op": "elasticsearch_reader", "_api_name": "reader"},
        {"_op": "elasticsearch_bulk", "index": dst},
    ]
    apis = [{"_name": "reader", "index": src, "date_field_name": "created", "size": 50}]
    c = Cluster(
        tmp_path,
        {"operations": ops, "apis": apis, "slicers": 2},
        connectors={"elasticsearch-next": {"default": {"node": ES_URL}}},
    )
    await c.start(workers=2)
    ex = await c.finish()
    assert ex["_status"] == "completed", ex["_failureReason"]
    es.indices.refresh(index=dst)
    assert es.count(index=dst)["count"] == 300
    assert sum(s["record_count"] for s in c.slices()) == 300
    assert {s["slicer_id"] for s in c.slices()} == {0, 1}
    c.close()

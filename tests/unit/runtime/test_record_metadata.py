"""Metadata through the Elasticsearch operations (reader sets it, sender honours it, the
sender API routes by it) and the dead-letter actions, against the Elasticsearch emulator."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.runtime.data_entity import DataEntity
from teraslice_k8s.runtime.dead_letter import DeadLetter
from teraslice_k8s.runtime.operations import elasticsearch as es_ops
from teraslice_k8s.runtime.operations.apis import APIError, make_api
from teraslice_k8s.runtime.operations.base import OpContext
from teraslice_k8s.runtime.operations.elasticsearch import (
    ElasticsearchBulk,
    ElasticsearchReader,
    bulk_actions,
    hit_entity,
)
from teraslice_k8s.runtime.operations.simple import Noop

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from es_emulator import Emulator, running_emulator


@pytest.fixture
def es() -> Iterator[tuple[str, Emulator]]:
    with running_emulator() as served:
        yield served


def context(url: str, apis: list[dict[str, Any]] | None = None) -> OpContext:
    connectors = {"elasticsearch-next": {"default": {"node": [url]}, "other": {"node": [url]}}}
    return OpContext({"apis": apis or []}, connectors)


def docs(emulator: Emulator, index: str) -> dict[str, dict[str, Any]]:
    return {doc_id: source for doc_id, (source, _seq) in emulator.indices[index].docs.items()}


def test_a_hit_becomes_an_entity_with_teraslices_reader_metadata() -> None:
    hit = {"_index": "logs", "_id": "abc", "_version": 3, "_seq_no": 7, "_primary_term": 1}
    hit["_source"] = {"a": 1}
    entity = hit_entity(hit, now=1000)
    assert entity == {"a": 1}
    assert entity.get_key() == "abc"
    assert {k: v for k, v in entity.get_metadata().items() if k != "_createTime"} == {
        "_key": "abc",
        "_processTime": 1000,
        "_ingestTime": 1000,
        "_eventTime": 1000,
        "_index": "logs",
        "_version": 3,
        "_seq_no": 7,
        "_primary_term": 1,
    }


def test_the_reader_returns_entities_keyed_by_document_id(monkeypatch: pytest.MonkeyPatch) -> None:
    hits = [
        {"_index": "src", "_id": f"id-{i}", "_source": {"n": i}, "_seq_no": i, "_primary_term": 1}
        for i in range(3)
    ]
    monkeypatch.setattr(es_ops, "scan", lambda *_a, **_k: iter(hits))
    reader = ElasticsearchReader(
        context("http://127.0.0.1:1"),
        ElasticsearchReader.Options.model_validate(
            {"_op": "elasticsearch_reader", "index": "src", "date_field_name": "t"}
        ),
    )
    reader._es = object()  # type: ignore[assignment]
    records = reader._fetch({"start": "2024-01-01T00:00:00Z", "end": "2024-01-02T00:00:00Z"})
    assert [(r.get_key(), dict(r), r.get_metadata("_seq_no")) for r in records] == [
        ("id-0", {"n": 0}, 0),
        ("id-1", {"n": 1}, 1),
        ("id-2", {"n": 2}, 2),
    ]
    assert {r.get_metadata("_index") for r in records} == {"src"}


def test_bulk_actions_use_key_as_id_and_delete_the_old_id() -> None:
    plain = {"p": 1}
    keyed = DataEntity({"k": 1}, {"_key": "new"})
    moved = DataEntity({"m": 1}, {"_key": "new2", "_delete_id": "old2"})
    same = DataEntity({"s": 1}, {"_key": "x", "_delete_id": "x"})
    numeric = DataEntity({"n": 1}, {"_key": 5})
    assert bulk_actions([plain, keyed, moved, same, numeric], "index", "out") == [
        ({"index": {"_index": "out"}}, plain),
        ({"index": {"_index": "out", "_id": "new"}}, keyed),
        ({"delete": {"_index": "out", "_id": "old2"}}, None),
        ({"index": {"_index": "out", "_id": "new2"}}, moved),
        ({"index": {"_index": "out", "_id": "x"}}, same),
        ({"index": {"_index": "out", "_id": "5"}}, numeric),
    ]
    routed = DataEntity({"r": 1}, {"standard:route": "a"})
    assert bulk_actions([routed, plain], "create", "out", routed=True) == [
        ({"create": {"_index": "out-a"}}, routed),
        ({"create": {"_index": "out"}}, plain),
    ]


async def test_bulk_writes_keyed_documents_and_deletes_originals(es: tuple[str, Emulator]) -> None:
    url, emulator = es
    bulk = ElasticsearchBulk(
        context(url), ElasticsearchBulk.Options.model_validate({"_op": "elasticsearch_bulk", "index": "out"})
    )
    await bulk.process([DataEntity({"v": 1}, {"_key": "a"}), DataEntity({"v": 2}, {"_key": "b"})], {})
    # Re-keyed: "a" becomes "c" (add_key delete_original); "zz" never existed (404 is fine).
    rekeyed = DataEntity({"v": 3}, {"_key": "c", "_delete_id": "a"})
    await bulk.process([rekeyed, DataEntity({"v": 4}, {"_delete_id": "zz"})], {})
    await bulk.shutdown()
    out = docs(emulator, "out")
    assert out == {"b": {"v": 2}, "c": {"v": 3}, "auto-1": {"v": 4}}


def test_the_sender_api_routes_to_index_dash_route(es: tuple[str, Emulator]) -> None:
    url, emulator = es
    apis = [{"_name": "elasticsearch_sender_api", "index": "routed", "size": 2}]
    api = make_api(context(url, apis), "elasticsearch_sender_api")
    sender = api.create("a", {"_key": "a", "_connection": "other"})
    sent = sender.send(
        [DataEntity({"n": i}, {"_key": f"k{i}", "standard:route": r}) for i, r in enumerate("aab")]
    )
    api.shutdown()
    assert sent == 3
    assert docs(emulator, "routed-a") == {"k0": {"n": 0}, "k1": {"n": 1}}
    assert docs(emulator, "routed-b") == {"k2": {"n": 2}}


def test_unknown_apis_are_errors_naming_them() -> None:
    ctx = context("http://127.0.0.1:1", [{"_name": "nothing_api"}])
    with pytest.raises(APIError) as err:
        make_api(ctx, "missing")
    assert str(err.value) == (
        "Invalid parameter _api_name: missing, could not find corresponding api on the job configuration"
    )
    with pytest.raises(APIError, match='unknown API type "nothing_api"'):
        make_api(ctx, "nothing_api")


def noop(ctx: OpContext, action: str) -> Noop:
    return Noop(ctx, Noop.Options.model_validate({"_op": "noop", "_dead_letter_action": action}))


def test_dead_letter_throw_none_log(caplog: pytest.LogCaptureFixture) -> None:
    ctx = context("http://127.0.0.1:1")
    err = ValueError("bad record")
    with pytest.raises(ValueError, match="bad record"):
        DeadLetter(noop(ctx, "throw")).reject({"a": 1}, err)
    DeadLetter(noop(ctx, "none")).reject({"a": 1}, err)
    with caplog.at_level(logging.ERROR, logger="teraslice_k8s.dead_letter"):
        DeadLetter(noop(ctx, "log")).reject({"a": 1}, err)
        DeadLetter(noop(ctx, "log")).reject(b'{"raw', err)
    assert [r.getMessage() for r in caplog.records] == [
        'noop: record rejected: ValueError: bad record; record: {"a": 1}',
        'noop: record rejected: ValueError: bad record; record: {"raw',
    ]
    dead = DeadLetter(noop(ctx, "none"))
    assert dead.try_record(lambda r: r["x"], {"x": 2}) == 2
    assert dead.try_record(lambda r: r["x"], {}) is None


def test_dead_letter_to_an_api_writes_record_and_error(es: tuple[str, Emulator]) -> None:
    url, emulator = es
    ctx = context(url, [{"_name": "elasticsearch_sender_api:dlq", "index": "dead"}])
    dead = DeadLetter(noop(ctx, "elasticsearch_sender_api:dlq"))
    dead.reject(DataEntity({"a": 1}), ValueError("no good"))
    dead.reject(b"not json", ValueError("Unexpected token"))
    dead.shutdown()
    assert sorted(docs(emulator, "dead").values(), key=str) == [
        {"record": "not json", "error": "Unexpected token"},
        {"record": {"a": 1}, "error": "no good"},
    ]

"""routed_sender: routing rules (exact routes, ``a,A`` lists, ``*``, ``**`` with verify), chunking,
dead-letter of unroutable records, errors aggregated; and through elasticsearch_sender_api to
the Elasticsearch emulator."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from standard_harness import config_error, entity, make_op, op_class

from teraslice_k8s.runtime.operations.apis import OperationAPI, register_api

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from es_emulator import running_emulator

ROUTE = "standard:route"


class Recorder:
    def __init__(self, api: RecordingAPI, route: str, connection: str) -> None:
        self.api, self.route, self.connection = api, route, connection

    def send(self, records: Sequence[Any]) -> int:
        if any(r.get("fail") for r in records):
            raise RuntimeError(f"send to {self.route} failed")
        RecordingAPI.sent.append((self.route, self.connection, [r["id"] for r in records]))
        return len(records)

    def verify(self, route: str) -> None:
        RecordingAPI.verified.append(route)


class RecordingAPI(OperationAPI):
    sent: ClassVar[list[tuple[str, str, list[int]]]] = []
    verified: ClassVar[list[str]] = []
    created: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def create(self, route: str, overrides: Mapping[str, Any]) -> Recorder:
        RecordingAPI.created.append((route, dict(overrides)))
        return Recorder(self, route, overrides["_connection"])


@pytest.fixture(autouse=True)
def recording_api() -> None:
    register_api("recording_api", RecordingAPI)
    RecordingAPI.sent, RecordingAPI.verified, RecordingAPI.created = [], [], []


JOB = {"apis": [{"_name": "recording_api"}]}


def routed(*routes: Any) -> list[Any]:
    return [entity({"id": i}, **({ROUTE: r} if r is not None else {})) for i, r in enumerate(routes)]


async def sender(**options: Any) -> Any:
    return await make_op({"_op": "routed_sender", "_api_name": "recording_api", **options}, JOB)


async def test_exact_routes_and_route_lists() -> None:
    op = await sender(routing={"*": "default", "a,A": "other"})
    records = routed("a", "b", "A")
    assert await op.process(list(records), {}) == records
    assert sorted(RecordingAPI.sent) == [("*", "default", [1]), ("A", "other", [2]), ("a", "other", [0])]


async def test_dynamic_route_verifies_each_route_once() -> None:
    op = await sender(routing={"**": "default"})
    await op.process(routed("a", "b", "A", "a"), {})
    assert RecordingAPI.created == [("**", {"_key": "**", "_connection": "default"})]
    assert RecordingAPI.verified == ["a", "b", "A"]
    assert RecordingAPI.sent == [("**", "default", [0, 1, 2, 3])]
    with pytest.raises(ValueError, match="No data route was specified in record metadata"):
        await op.process(routed(None), {})


async def test_unroutable_records_and_dead_letters() -> None:
    op = await sender(routing={"a": "someConnection"}, _dead_letter_action="none")
    records = routed("a", "b", "a", None)
    assert await op.process(list(records), {}) == records
    assert RecordingAPI.sent == [("a", "someConnection", [0, 2])]
    strict = await sender(routing={"a": "c"})
    with pytest.raises(ValueError, match="Invalid connection route: b was not found in routing"):
        await strict.process(routed("b"), {})
    with pytest.raises(ValueError, match="No route was specified in record metadata"):
        await strict.process(routed(None), {})


async def test_chunks_of_size_and_errors_after_all_sends() -> None:
    op = await sender(routing={"a": "c", "b": "c"}, size=2)
    await op.process(routed("a", "a", "a", "b"), {})
    assert sorted(RecordingAPI.sent) == [("a", "c", [0, 1]), ("a", "c", [2]), ("b", "c", [3])]
    RecordingAPI.sent.clear()
    bad = [*routed("a", "b"), entity({"id": 9, "fail": True}, **{ROUTE: "a"})]
    with pytest.raises(RuntimeError, match="send to a failed"):
        await op.process(bad, {})
    assert RecordingAPI.sent == [("b", "c", [1])]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"routing": []}, "Invalid parameter routing, it must be an object"),
        ({"routing": {}}, "Invalid parameter routing, it must have keys and values set"),
        ({"routing": {"*": "a", "**": "b"}}, 'routing cannot specify "*" and "**"'),
        (
            {"routing": {"a": "b"}, "size": "5"},
            "Invalid size parameter for routed_sender opConfig, it must be a number",
        ),
        (
            {"routing": {"a": "b"}, "size": 0},
            "Invalid size parameter for routed_sender, it must be greater than zero",
        ),
        (
            {"routing": {"a": "b"}, "concurrency": "x"},
            "Invalid parameter concurrency, must be a number, was given String",
        ),
        (
            {"routing": {"a": "b"}, "concurrency": -1},
            "Invalid parameter concurrency, it must be a positive integer greater than zero",
        ),
    ],
)
def test_messages(options: dict[str, Any], message: str) -> None:
    assert config_error({"_op": "routed_sender", "_api_name": "recording_api", **options}) == message


def test_the_api_must_be_on_the_job() -> None:
    cls = op_class("routed_sender")
    options = cls.Options.model_validate({"_op": "routed_sender", "_api_name": "nope", "routing": {"a": "b"}})
    assert cls.validate_job(options, 1, JOB) == [
        "Invalid parameter _api_name: nope, could not find corresponding api on the job configuration"
    ]


async def test_to_elasticsearch_through_the_sender_api() -> None:
    with running_emulator() as (url, emulator):
        job = {"apis": [{"_name": "elasticsearch_sender_api", "index": "people"}]}
        connectors = {"elasticsearch-next": {"default": {"node": [url]}}}
        op = await make_op(
            {"_op": "routed_sender", "_api_name": "elasticsearch_sender_api", "routing": {"**": "default"}},
            job,
            connectors=connectors,
        )
        records = [entity({"n": i}, _key=f"k{i}", **{ROUTE: r}) for i, r in enumerate(["x", "y", "x"])]
        await op.process(records, {})
        await op.shutdown()
        found = {
            name: {i: s for i, (s, _q) in index.docs.items()} for name, index in emulator.indices.items()
        }
    assert found == {"people-x": {"k0": {"n": 0}, "k2": {"n": 2}}, "people-y": {"k1": {"n": 1}}}

"""Built-in operations: data_generator slicing/fetching, simple processors, job-time validation."""

from __future__ import annotations

import random

import pytest

from teraslice_k8s.errors import Problem
from teraslice_k8s.models.schema import parse_duration
from teraslice_k8s.runtime.operations import validate_operations
from teraslice_k8s.runtime.operations.base import OpContext
from teraslice_k8s.runtime.operations.data_generator import (
    DataGenerator,
    DataGeneratorOptions,
    DataGeneratorSlicer,
    generate,
    slice_count,
)
from teraslice_k8s.runtime.operations.registry import available_operations, get_operation
from teraslice_k8s.runtime.operations.simple import Delay, Noop, Stdout

BUILTINS = ["data_generator", "delay", "elasticsearch_bulk", "elasticsearch_reader", "noop", "stdout"]


def opts(**kw: object) -> DataGeneratorOptions:
    return DataGeneratorOptions.model_validate({"_op": "data_generator", **kw})


def test_builtins_are_registered_through_the_entry_point_group() -> None:
    assert set(BUILTINS) <= set(available_operations())
    assert get_operation("noop") is Noop
    assert get_operation("noop@standard:2.1.2") is Noop
    assert get_operation("delay") is Delay
    assert get_operation("stdout") is Stdout


async def test_once_slicer_shortens_the_last_slice_then_ends() -> None:
    slicer = DataGeneratorSlicer(12, 5)
    got = [await slicer.slice() for _ in range(4)]
    assert got == [
        {"count": 5, "processed": 0},
        {"count": 5, "processed": 5},
        {"count": 2, "processed": 10},
        None,
    ]


async def test_persistent_slicer_never_ends() -> None:
    slicer = DataGeneratorSlicer(None, 3)
    got = [await slicer.slice() for _ in range(3)]
    assert got == [{"count": 3, "processed": 0}, {"count": 3, "processed": 3}, {"count": 3, "processed": 6}]


async def test_slicer_recovers_after_the_last_completed_slice() -> None:
    slicer = DataGeneratorSlicer(20, 5)
    await slicer.initialize([{"slicer_id": 0, "lastSlice": {"request": {"count": 5, "processed": 10}}}])
    assert await slicer.slice() == {"count": 5, "processed": 15}
    assert await slicer.slice() is None


def test_slice_count_follows_teraslice_rule_and_slice_size_extension() -> None:
    gen = {"_op": "data_generator", "size": 100}
    assert slice_count(opts(size=100), {"operations": [gen, {"_op": "noop"}]}) == 100
    assert slice_count(opts(size=100), {"operations": [gen, {"_op": "noop", "size": 7}]}) == 7
    api_job = {
        "operations": [gen, {"_op": "elasticsearch_bulk", "_api_name": "a"}],
        "apis": [{"_name": "a", "size": 9}],
    }
    assert slice_count(opts(size=100), api_job) == 9
    assert slice_count(opts(size=100, slice_size=3), api_job) == 3


async def test_fetch_makes_count_records_of_the_default_shape_reproducibly_with_seed() -> None:
    ctx = OpContext({"operations": [{"_op": "data_generator"}, {"_op": "noop"}]})
    reader = DataGenerator(ctx, opts(seed=7, set_id="hexadecimal"))
    first = await reader.fetch({"count": 50, "processed": 100})
    again = await reader.fetch({"count": 50, "processed": 100})
    other = await reader.fetch({"count": 50, "processed": 150})
    assert len(first) == 50
    assert set(first[0]) == {"ip", "userAgent", "url", "uuid", "created", "ipv6", "location", "bytes", "id"}
    strip = [{k: v for k, v in r.items() if k != "created"} for r in first]
    assert strip == [{k: v for k, v in r.items() if k != "created"} for r in again]
    assert first[0]["uuid"] != other[0]["uuid"]
    assert len(first[0]["id"]) == 32


def test_generated_field_formats() -> None:
    (rec,) = generate(1, random.Random(1), opts(format="utcDate"))
    assert all(0 <= int(part) <= 255 for part in rec["ip"].split("."))
    parts = rec["uuid"].split("-")
    assert [len(p) for p in parts] == [8, 4, 4, 4, 12]
    assert parts[2][0] == "4"
    assert parts[3][0] in "89ab"
    assert len(rec["ipv6"].split(":")) == 8
    lat, lon = (float(x) for x in rec["location"].split(", "))
    assert -90 <= lat <= 90
    assert -180 <= lon <= 180
    assert 0 <= rec["bytes"] < 5_000_000
    assert rec["created"].endswith("Z")


def test_between_format_stays_in_range() -> None:
    o = opts(format="utcBetween", start="2020-01-01T00:00:00Z", end="2020-01-02T00:00:00Z")
    records = generate(200, random.Random(3), o)
    assert all("2020-01-01T" <= r["created"] < "2020-01-02T" for r in records)


async def test_stdout_prints_limit_records_and_passes_everything(capsys: pytest.CaptureFixture[str]) -> None:
    proc = Stdout(OpContext({}), Stdout.Options.model_validate({"_op": "stdout", "limit": 1}))
    out = await proc.process([{"a": 1}, {"a": 2}], {})
    assert out == [{"a": 1}, {"a": 2}]
    assert capsys.readouterr().out == '{"a": 1}\n'


def test_duration_parsing() -> None:
    # Operations use the job fields' duration parser (and its message).
    assert parse_duration(250) == 250
    assert parse_duration("5 minutes") == 300_000
    assert parse_duration("30s") == 30_000
    assert parse_duration("2 hrs") == parse_duration("2h") == 7_200_000
    with pytest.raises(ValueError, match='must be a duration: milliseconds or a string like "1 minute"'):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("operations", "apis", "expected"),
    [
        (
            [{"_op": "data_generator"}, {"_op": "foo"}],
            [],
            [Problem("operations[1]._op", 'unknown operation "foo"')],
        ),
        (
            [{"_op": "data_generator", "size": 0}, {"_op": "noop"}],
            [],
            [Problem("operations[0].size", "must be > 0")],
        ),
        (
            [{"_op": "noop"}, {"_op": "noop"}],
            [],
            [Problem("operations[0]._op", '"noop" is not a reader')],
        ),
        (
            [{"_op": "data_generator"}, {"_op": "data_generator"}],
            [],
            [Problem("operations[1]._op", '"data_generator" is not a processor')],
        ),
        (
            [{"_op": "data_generator"}, {"_op": "delay", "ms": "soon"}],
            [],
            [Problem("operations[1].ms", 'must be a duration: milliseconds or a string like "1 minute"')],
        ),
        (
            [{"_op": "data_generator"}, {"_op": "elasticsearch_bulk", "_api_name": "missing"}],
            [],
            [Problem("operations[1]._api_name", "Could not find the associated api for missing")],
        ),
        (
            [{"_op": "data_generator"}, {"_op": "elasticsearch_bulk", "_api_name": "out"}],
            [{"_name": "out", "size": -1}],
            [
                Problem("operations[1].index", "is required"),
                Problem("apis[0].size", "must be > 0"),  # the bad value is the API's
            ],
        ),
        (
            [{"_op": "data_generator", "json_schema": "x.json"}, {"_op": "noop"}],
            [],
            [
                Problem(
                    "operations[0]",
                    "json_schema (custom mocker schemas) is not supported by teraslice-k8s",
                )
            ],
        ),
    ],
)
def test_validate_operations_names_the_field(
    operations: list[dict[str, object]], apis: list[dict[str, object]], expected: list[Problem]
) -> None:
    assert validate_operations(operations, apis) == expected


def test_valid_jobs_have_no_problems() -> None:
    ops = [{"_op": "data_generator", "size": 10}, {"_op": "delay", "ms": "1s"}, {"_op": "stdout"}]
    assert validate_operations(ops, []) == []
    es = [
        {"_op": "elasticsearch_reader", "_api_name": "in"},
        {"_op": "elasticsearch_bulk", "_api_name": "out"},
    ]
    apis = [{"_name": "in", "index": "a", "date_field_name": "created"}, {"_name": "out", "index": "b"}]
    assert validate_operations(es, apis) == []


def test_persistent_elasticsearch_reader_needs_an_interval() -> None:
    ops = [{"_op": "elasticsearch_reader", "index": "a", "date_field_name": "d"}, {"_op": "noop"}]
    job = {"lifecycle": "persistent", "operations": ops}
    assert validate_operations(ops, [], job) == [
        Problem("operations[0]", 'persistent jobs need an explicit "interval" (and "delay")')
    ]

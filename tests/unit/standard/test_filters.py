"""filter, filter_by_required_fields, filter_by_unknown_fields, filter_by_date: the reference's
examples, messages and edges; filter and its invert partition the batch (property)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standard_harness import bodies, config_error, run

IPS = [{"ip": ip} for ip in ("28.127.246.12", "28.127.246.232", "28.127.246.244", "4.17.23.6", "4.17.14.18")]
PEOPLE = [
    {"name": "joseph", "last_name": "smith", "age": 20},
    {"name": "Johnson", "last_name": "ray", "age": 99},
    {"name": "ray", "last_name": "cole", "age": 30},
    {"name": "bob", "last_name": "jones", "age": 99},
]


def copies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dict(r) for r in records]


@pytest.mark.parametrize(
    ("options", "data", "expected"),
    [
        ({"field": "ip", "value": "28.127.246.232"}, IPS, [IPS[i] for i in (0, 2, 3, 4)]),
        ({"field": "ip", "value": "28.127.246.232", "invert": True}, IPS, [IPS[1]]),
        ({"field": "ip", "value": "28.127.246.0/26", "filter_by": "ip_range"}, IPS, IPS[1:]),
        ({"field": "name", "value": "/^jo.*/i", "filter_by": "regex"}, PEOPLE, [PEOPLE[2], PEOPLE[3]]),
        ({"field": ["name", "last_name"], "value": "ray"}, PEOPLE, [PEOPLE[0], PEOPLE[3]]),
        (
            {
                "field": ["name", "last_name"],
                "value": "ray",
                "exception_rules": [{"field": "age", "value": 99}],
            },
            PEOPLE,
            [PEOPLE[0], PEOPLE[1], PEOPLE[3]],
        ),
        ({"field": "name", "value": ["bob", "ray"]}, PEOPLE, PEOPLE[:2]),
        ({"field": "age", "value": 99}, PEOPLE, [PEOPLE[0], PEOPLE[2]]),
        ({"field": "age", "value": "99"}, PEOPLE, PEOPLE),  # strict equality: "99" is not 99
        ({"field": "missing"}, PEOPLE, PEOPLE),  # the null default never equals a missing field
        (
            {"field": "tags", "value": "b", "array_index": 1},
            [{"tags": ["a", "b"]}, {"tags": "ab"}],
            [{"tags": "ab"}],
        ),
        (
            {"field": "age", "filter_by": "validator", "validation_function": "isNumber"},
            [{"age": 1}, {"age": "x"}],
            [{"age": "x"}],
        ),
    ],
)
async def test_filter(
    options: dict[str, Any], data: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    assert bodies(await run({"_op": "filter", **options}, copies(data))) == expected


async def test_filter_by_size_of_the_whole_document() -> None:
    small = {"_key": 1, "name": "bob", "age": 12}  # 44 bytes by Teraslice's estimate
    big = {"_key": 2, "name": "x" * 60}
    assert bodies(
        await run({"_op": "filter", "field": "doc", "filter_by": "size", "value": 100}, [small, big])
    ) == [small]


async def test_filtered_records_to_the_dead_letter_action() -> None:
    config = {"_op": "filter", "field": "a", "value": 1, "filtered_to_dead_letter_queue": True}
    with pytest.raises(ValueError, match="Record was rejected"):
        await run(config, [{"a": 1}])
    assert await run({**config, "_dead_letter_action": "none"}, [{"a": 1}, {"a": 2}]) == [{"a": 2}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"field": 5}, "Field must be a string or array of strings, received 5"),
        ({}, "Field must be a string or array of strings, received null"),
        ({"field": "a", "filter_by": "nope"}, "type must be match, regex, ip_range, validator, or size"),
        (
            {"field": "a", "validation_function": "isWhatever"},
            'Parameter validation_function was set to "isWhatever", must be a valid FieldValidator function',
        ),
        (
            {"field": "a", "filtered_to_dead_letter_queue": "yes"},
            'Paramter "drop_to_dlq" should be a boolean',
        ),
        ({"field": "a", "exception_rules": "x"}, "exception must be an array of objects, got x"),
        (
            {"field": "a", "exception_rules": [{"field": "b"}]},
            'exception properties must be either "field" with a string value or "value" '
            "with a non-null value, got [object Object]",
        ),
    ],
)
def test_filter_messages(options: dict[str, Any], message: str) -> None:
    assert config_error({"_op": "filter", **options}) == message


@settings(max_examples=50, deadline=None)
@given(st.lists(st.fixed_dictionaries({"v": st.one_of(st.integers(0, 3), st.text(max_size=2), st.none())})))
async def test_filter_and_its_invert_partition_the_batch(records: list[dict[str, Any]]) -> None:
    kept = await run({"_op": "filter", "field": "v", "value": [1, "a"]}, copies(records))
    dropped = await run({"_op": "filter", "field": "v", "value": [1, "a"], "invert": True}, copies(records))
    assert len(kept) + len(dropped) == len(records)
    assert sorted(map(repr, kept + dropped)) == sorted(map(repr, records))


REQUIRED = [
    {"age": 20, "name": "bob1", "size": 10},
    {"name": "bob2"},
    {"age": 21, "size": 12},
    {"age": 22, "name": "bob4"},
    {"goop": True, "name": "bob5", "date": "x"},
    {"age": 25, "name": "bob6", "size": None},
    {"age": None, "name": "bob7", "size": None},
]


async def test_filter_by_required_fields() -> None:
    config = {"_op": "filter_by_required_fields", "required_fields": ["age", "size"], "filter_type": "or"}
    assert bodies(await run(config, copies(REQUIRED))) == [REQUIRED[i] for i in (0, 2, 3, 5)]
    assert bodies(await run({**config, "invert": True}, copies(REQUIRED))) == [REQUIRED[i] for i in (1, 4, 6)]
    # "OR" passes validation but selects AND (Teraslice's code).
    assert bodies(await run({**config, "filter_type": "OR"}, copies(REQUIRED))) == [REQUIRED[0], REQUIRED[2]]
    assert bodies(await run({**config, "filter_type": "AND"}, copies(REQUIRED))) == [REQUIRED[0], REQUIRED[2]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"required_fields": "age"}, 'Parameter "required_fields" must be an array of strings'),
        ({}, 'Parameter "required_fields" cannot be empty and must have all string values'),
        (
            {"required_fields": [1]},
            'Parameter "required_fields" cannot be empty and must have all string values',
        ),
        ({"required_fields": ["a"], "filter_type": 1}, 'Parameter "filter_type" must be a string'),
        ({"required_fields": ["a"], "filter_type": "xor"}, 'value must be "OR" or "AND"'),
    ],
)
def test_filter_by_required_fields_messages(options: dict[str, Any], message: str) -> None:
    assert config_error({"_op": "filter_by_required_fields", **options}) == message


async def test_filter_by_unknown_fields() -> None:
    data = [{"name": "tim", "age": 33, "height": 150, "weight": 2022}, {"name": "al"}, {}]
    config = {"_op": "filter_by_unknown_fields", "known_fields": ["name", "age", "height"]}
    assert bodies(await run(config, copies(data))) == [{"name": "al"}, {}]
    assert bodies(await run({**config, "invert": True}, copies(data))) == [data[0]]
    assert config_error({"_op": "filter_by_unknown_fields"}) == (
        'Parameter "required_fields" cannot be empty and must have all string values'
    )


async def test_filter_by_date() -> None:
    now = datetime.now(UTC)
    iso = lambda d: d.isoformat(timespec="milliseconds").replace("+00:00", "Z")  # noqa: E731
    data = [
        {"timestamp": int(time.time() * 1000)},
        {"timestamp": iso(now)},
        {"timestamp": iso(now - timedelta(weeks=1))},
        {"timestamp": iso(now - timedelta(hours=1))},
        {"timestamp": "2018-01-01T00:00:00Z"},
        {"timestamp": "2040-01-01T00:00:00Z"},
        {"timestamp": 0},
        {"timestamp": "bad date"},
        {"timestamp": True},
        {"timestamp": ""},
        {"timestamp": 9e15},
        {},
    ]
    config = {
        "_op": "filter_by_date",
        "date_field": "timestamp",
        "limit_past": "2week",
        "limit_future": "2day",
    }
    assert bodies(await run(config, copies(data))) == data[:4]
    wide = {**config, "limit_past": "1000Y", "limit_future": "100000day"}
    assert bodies(await run(wide, copies(data))) == data[:7]
    fixed = {**config, "limit_past": "2017-06-01T00:00:00Z", "limit_future": "2019-01-01T00:00:00Z"}
    assert bodies(await run(fixed, copies(data))) == [data[4]]
    assert config_error({**config, "limit_past": 5}) == "Limits must be a string"
    assert config_error({**config, "limit_future": "soon"}) == "Invalid date like value, got soon"

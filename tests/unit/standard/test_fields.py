"""set_field, set_field_conditional, drop_field, drop_field_conditional, copy_field,
copy_metadata_field, remove_empty_fields, add_short_id, count_by_field."""

from __future__ import annotations

import re
from typing import Any

import pytest
from standard_harness import bodies, config_error, entity, op_class, run

from teraslice_k8s.runtime.data_entity import DataWindow


async def test_set_field() -> None:
    data = [{"id": 1, "height": 1894}, {"id": 2}, {"id": 3, "height": None}]
    out = await run({"_op": "set_field", "field": "height", "value": 1643}, [dict(d) for d in data])
    assert bodies(out) == [{"id": 1, "height": 1894}, {"id": 2, "height": 1643}, {"id": 3, "height": None}]
    out = await run(
        {"_op": "set_field", "field": "height", "value": 1643, "overwrite": True}, [dict(d) for d in data]
    )
    assert bodies(out) == [{"id": i, "height": 1643} for i in (1, 2, 3)]
    assert bodies(await run({"_op": "set_field", "field": "a.b", "value": [1]}, [{}])) == [{"a": {"b": [1]}}]
    (window,) = await run(
        {"_op": "set_field", "field": "x", "value": 0}, [DataWindow.make_window(None, [{}, {}])]
    )
    assert bodies(window.as_array()) == [{"x": 0}, {"x": 0}]
    assert config_error({"_op": "set_field", "field": "a", "value": None}) == "null cannot be null"
    assert (
        config_error({"_op": "set_field", "value": 1}) == "This field is required and must be of type string"
    )


async def test_set_field_conditional() -> None:
    config = {
        "_op": "set_field_conditional",
        "conditional_field": "type",
        "conditional_values": ["data1", "data2", 3],
        "set_field": "test_prop",
        "value": True,
    }
    data = [
        {"id": 1, "type": "data1"},
        {"id": 3, "type": "data3"},
        {"id": 1, "test_prop": "value"},
        {"type": "3"},
    ]
    assert bodies(await run(config, [dict(d) for d in data])) == [
        {"id": 1, "type": "data1", "test_prop": True},
        {"id": 3, "type": "data3"},
        {"id": 1, "test_prop": "value"},
        {"type": "3"},
    ]
    assert (
        config_error({**config, "conditional_values": "x"})
        == 'Parameter "conditional_values" must be an array'
    )


async def test_drop_field_and_copy_field() -> None:
    assert bodies(
        await run({"_op": "drop_field", "field": ["age", "name"]}, [{"id": 1, "name": "joe", "age": 22}])
    ) == [{"id": 1}]
    assert bodies(await run({"_op": "drop_field", "field": "x"}, [{"id": 1}])) == [{"id": 1}]
    assert (
        config_error({"_op": "drop_field", "field": 3})
        == "Field must be a string or an array of string, received 3"
    )
    copy = {"_op": "copy_field", "source": "name", "destination": "first_name", "delete_source": True}
    assert bodies(await run(copy, [{"id": 1, "name": "joe"}, {"id": 2, "name": None}])) == [
        {"id": 1, "first_name": "joe"},
        {"id": 2},
    ]
    nested = {"_op": "copy_field", "source": "a.b", "destination": "c.d"}
    assert bodies(await run(nested, [{"a": {"b": 1}}])) == [{"a": {"b": 1}, "c": {"d": 1}}]


@pytest.mark.parametrize(
    ("options", "data", "expected"),
    [
        ({"regex": "/.?oe/gi"}, ["joE", "mOe", "Randy"], [None, None, "Randy"]),
        ({"regex": "/.?oe/gi", "invert": True}, ["joE", "mOe", "Randy"], ["joE", "mOe", None]),
        (
            {"validation_method": "inNumberRange", "validation_args": {"min": 40, "max": 45}},
            [29, 42, 50],
            [29, None, 50],
        ),
        ({"validation_method": "isNumber"}, [29, 42, "fifty"], [None, None, "fifty"]),
    ],
)
async def test_drop_field_conditional(options: dict[str, Any], data: list[Any], expected: list[Any]) -> None:
    out = await run(
        {"_op": "drop_field_conditional", "field": "f", **options},
        [{"f": v, "id": i} for i, v in enumerate(data)],
    )
    assert [r.get("f") for r in out] == expected and [r["id"] for r in out] == [0, 1, 2]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "Config must have a regex or validation_method"),
        (
            {"regex": "/a/", "validation_method": "isNumber"},
            "Must choose either a regex or validation method, cannot use both",
        ),
        (
            {"regex": "/a/", "validation_args": {}},
            "Must have a validation method if validation_args are present",
        ),
        ({"regex": 5}, "Regex must be a string value received 5"),
        ({"regex": "abc"}, "regex must be in formate of /REGEX/Flags, received abc"),
        ({"regex": "/a/x"}, "Acceptable regex flags are d or g or i or m or s or u or y, received x"),
        (
            {"validation_method": "isNope"},
            "isNope is not a valid function, only FieldValidation methods from data-mate are valid",
        ),
        (
            {"validation_method": "isNumber", "validation_args": 3},
            "Validation args must be an object, received 3",
        ),
    ],
)
def test_drop_field_conditional_messages(options: dict[str, Any], message: str) -> None:
    assert config_error({"_op": "drop_field_conditional", "field": "f", **options}) == message


async def test_copy_metadata_field_and_remove_empty_fields() -> None:
    out = await run(
        {"_op": "copy_metadata_field", "destination": "myField"}, [entity({"name": "lilly"}, _key="a1")]
    )
    assert bodies(out) == [{"name": "lilly", "myField": "a1"}]
    (created,) = await run(
        {"_op": "copy_metadata_field", "destination": "t", "meta_key": "_createTime"}, [entity({})]
    )
    assert created["t"] == created.get_create_time()
    assert bodies(await run({"_op": "copy_metadata_field", "destination": "k"}, [{"a": 1}])) == [{"a": 1}]
    data = [
        {
            "id": 2,
            "name": "",
            "age": 23,
            "happy": True,
            "field": [],
            "field2": {},
            "field4": None,
            "field5": "UNDEFINED",
        },
        {"id": 4, "name": "         ", "age": "", "size": "", "zero": 0, "no": False},
    ]
    assert bodies(await run({"_op": "remove_empty_fields"}, data)) == [
        {"id": 2, "age": 23, "happy": True, "field5": "UNDEFINED"},
        {"id": 4, "zero": 0, "no": False},
    ]


async def test_add_short_id() -> None:
    out = await run(
        {"_op": "add_short_id", "field": "short_id", "length": 8}, [{"name": "chilly"} for _ in range(3)]
    )
    ids = [r["short_id"] for r in out]
    assert all(re.fullmatch("[0-9a-zA-Z]{8}", i) for i in ids) and len(set(ids)) == 3
    (digits,) = await run({"_op": "add_short_id", "field": "n", "dictionary": "number", "length": 16}, [{}])
    assert re.fullmatch("[0-9]{16}", digits["n"])
    assert (
        config_error({"_op": "add_short_id", "field": "f", "length": 17})
        == "number must be an integer between 2 and 16"
    )
    assert config_error({"_op": "add_short_id", "field": "f", "dictionary": "emoji"}) == (
        "dictionary value must be one of number,alpha,alpha_lower,alpha_upper,alphanum,alphanum_lower,"
        "alphanum_upper,hex.  Input was emoji"
    )
    assert config_error({"_op": "add_short_id"}) == "This field is required and must be of type string"


async def test_count_by_field_counts_json_labels() -> None:
    counter = op_class("count_by_field")
    counter.counts.clear()  # type: ignore[attr-defined]
    data = [{"node_id": v} for v in (100, "100", 101, 101, "101", "101")] + [{}]
    out = await run({"_op": "count_by_field", "field": "node_id", "collect_metrics": True}, data)
    assert out == data
    assert {k: v["count"] for k, v in counter.counts.items()} == {  # type: ignore[attr-defined]
        "100": 1,
        '"100"': 1,
        "101": 2,
        '"101"': 2,
        "undefined": 1,
    }
    assert (
        config_error({"_op": "count_by_field", "field": 5})
        == "This field is required and must be of type string"
    )

"""dedupe, count_unique, group_by, sort, sample_exact, sample_random, data_window_to_array,
json_parser: the reference's examples, messages, edges and laws."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standard_harness import bodies, config_error, entity, run, show

from teraslice_k8s.runtime.data_entity import DataEntity, DataEntityError, DataWindow

T = "2019-05-07T{}:00.000Z"
VISITS = [
    {"id": 1, "name": "roy", "first_seen": T.format("20:02"), "last_seen": T.format("20:02")},
    {"id": 2, "name": "bob", "first_seen": T.format("20:02"), "last_seen": T.format("20:02")},
    {"id": 3, "name": "mel", "first_seen": T.format("20:01"), "last_seen": T.format("20:04")},
    {"id": 4, "name": "roy", "first_seen": T.format("19:02"), "last_seen": T.format("20:10")},
    {"id": 5, "name": "bob", "first_seen": T.format("20:05"), "last_seen": T.format("20:08")},
    {"id": 6, "name": "roy", "first_seen": None, "last_seen": "not a date"},
]


async def test_dedupe_by_field_with_time_adjustment() -> None:
    config = {
        "_op": "dedupe",
        "field": "name",
        "adjust_time": [
            {"field": "first_seen", "preference": "oldest"},
            {"field": "last_seen", "preference": "newest"},
        ],
    }
    assert bodies(await run(config, [dict(v) for v in VISITS])) == [
        {"id": 1, "name": "roy", "first_seen": T.format("19:02"), "last_seen": T.format("20:10")},
        {"id": 2, "name": "bob", "first_seen": T.format("20:02"), "last_seen": T.format("20:08")},
        {"id": 3, "name": "mel", "first_seen": T.format("20:01"), "last_seen": T.format("20:04")},
    ]


async def test_dedupe_by_key_windows_and_errors() -> None:
    records = [entity({"n": i}, _key=k) for i, k in enumerate(["a", "b", "a", 1, "1", 1])]
    assert bodies(await run({"_op": "dedupe"}, records)) == [{"n": 0}, {"n": 1}, {"n": 3}, {"n": 4}]
    window = DataWindow.make_window("w", [entity({"n": 1}, _key="x"), entity({"n": 2}, _key="x")])
    (out,) = await run({"_op": "dedupe"}, [window])
    assert out is window and bodies(out.as_array()) == [{"n": 1}]
    with pytest.raises(DataEntityError, match="No key has been set in the metadata"):
        await run({"_op": "dedupe"}, [{"plain": 1}])
    # Missing fields all share one key.
    assert bodies(await run({"_op": "dedupe", "field": "x"}, [{"a": 1}, {"a": 2}])) == [{"a": 1}]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fixed_dictionaries({"k": st.integers(0, 5), "v": st.integers()})))
async def test_dedupe_is_idempotent(records: list[dict[str, Any]]) -> None:
    once = await run({"_op": "dedupe", "field": "k"}, [dict(r) for r in records])
    assert await run({"_op": "dedupe", "field": "k"}, list(once)) == once


@pytest.mark.parametrize(
    ("adjust", "message"),
    [
        (["x"], "Invalid parameter adjust_time, expected an array of objects"),
        ([{"field": "a"}], "Both the time field and the preference must be present"),
        (
            [{"field": "a", "preference": "latest"}],
            'Invalid adjust_time config, it must have key "preference" set to "oldest" or "newest"',
        ),
        (
            [{"field": 1, "preference": "newest"}],
            'Invalid adjust_time config, "field" must be specified and must be a string',
        ),
    ],
)
def test_dedupe_messages(adjust: Any, message: str) -> None:
    assert config_error({"_op": "dedupe", "adjust_time": adjust}) == message


async def test_count_unique() -> None:
    keys = [1, 2, 1, 3, 1, 1]
    records = [entity({"type": "string"} if i == 1 else {}, _key=k) for i, k in enumerate(keys)]
    out = await run({"_op": "count_unique", "preserve_fields": ["type"]}, records)
    assert [show(r) for r in out] == [
        {"data": {"count": 4, "_key": 1}, "metadata": {"_key": 1}},
        {"data": {"count": 1, "_key": 2, "type": "string"}, "metadata": {"_key": 2}},
        {"data": {"count": 1, "_key": 3}, "metadata": {"_key": 3}},
    ]
    names = [{"name": n} for n in ("joe", "frank", "joe", "frank.bob", "joe", "frank")]
    out = await run({"_op": "count_unique", "field": "name", "is_meta_field": False}, names)
    assert bodies(out) == [
        {"count": 3, "_key": "joe"},
        {"count": 2, "_key": "frank"},
        {"count": 1, "_key": "frank.bob"},
    ]
    # JavaScript object keys: 1 and "1" merge, integer-like keys first, missing is "undefined".
    mixed = [{"k": "b"}, {"k": 1}, {"k": "1"}, {}, {"k": 0}]
    out = await run({"_op": "count_unique", "field": "k", "is_meta_field": False}, mixed)
    assert bodies(out) == [
        {"count": 1, "_key": 0},
        {"count": 2, "_key": 1},
        {"count": 1, "_key": "b"},
        {"count": 1},
    ]
    assert await run({"_op": "count_unique"}, []) == []
    assert config_error({"_op": "count_unique", "preserve_fields": "a"}) == (
        'Parameter "preserve_fields" must be an array of strings'
    )


async def test_group_by_and_back_keeps_every_record() -> None:
    records = [{"id": i} for i in (1, 2, 2, 2, 3, 3)]
    windows = await run({"_op": "group_by", "field": "id"}, records)
    assert [show(w) for w in windows] == [
        {"window": [{"data": {"id": 1}, "metadata": {}}], "metadata": {"_key": 1}},
        {"window": [{"data": {"id": 2}, "metadata": {}}] * 3, "metadata": {"_key": 2}},
        {"window": [{"data": {"id": 3}, "metadata": {}}] * 2, "metadata": {"_key": 3}},
    ]
    regrouped = await run({"_op": "group_by", "field": "id"}, windows)
    assert [len(w.as_array()) for w in regrouped] == [1, 3, 2]
    flat = await run({"_op": "data_window_to_array"}, regrouped)
    assert bodies(flat) == [{"id": i} for i in (1, 2, 2, 2, 3, 3)]
    by_key = await run({"_op": "group_by"}, [entity({"a": 1}, _key="x"), {"_key": "x"}, {"b": 2}])
    assert [(w.get_metadata("_key"), len(w.as_array())) for w in by_key] == [("x", 2), (None, 1)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fixed_dictionaries({"g": st.sampled_from(["a", "b", 1, None]), "n": st.integers()})))
async def test_group_by_then_data_window_to_array_keeps_every_record(records: list[dict[str, Any]]) -> None:
    flat = await run(
        {"_op": "data_window_to_array"}, await run({"_op": "group_by", "field": "g"}, list(records))
    )
    assert sorted(map(repr, bodies(flat))) == sorted(map(repr, records))


async def test_data_window_to_array_needs_windows() -> None:
    with pytest.raises(TypeError, match="input must be DataWindows"):
        await run({"_op": "data_window_to_array"}, [{"id": 1}])


async def test_sort() -> None:
    dated = [
        {"id": 3, "date": "2019-05-03T20:02:00.000Z"},
        {"id": 1, "date": "2019-05-03T20:01:00.000Z"},
        {"id": 2, "date": "2019-05-03T20:01:00.000Z"},
        {"id": 4, "date": "2019-05-03T20:03:00.000Z"},
    ]
    assert [r["id"] for r in await run({"_op": "sort", "field": "date"}, list(dated))] == [1, 2, 3, 4]
    assert [
        r["id"] for r in await run({"_op": "sort", "field": "id"}, [{"id": 1}, {"id": 3}, {"id": 2}])
    ] == [1, 2, 3]
    desc = await run({"_op": "sort", "field": "id", "order": "desc"}, [{"id": 1}, {"id": 3}, {"id": 2}])
    assert [r["id"] for r in desc] == [3, 2, 1]
    nested = await run({"_op": "sort", "field": "a.b"}, [{"a": {"b": 2}}, {"a": {"b": 1}}])
    assert bodies(nested) == [{"a": {"b": 1}}, {"a": {"b": 2}}]
    windows = [
        DataWindow.make_window(1, [{"id": 2}, {"id": 1}]),
        DataWindow.make_window(0, [{"id": 9}, {"id": 3}]),
    ]
    out = await run({"_op": "sort", "field": "id"}, windows)
    assert [bodies(w.as_array()) for w in out] == [[{"id": 1}, {"id": 2}], [{"id": 3}, {"id": 9}]]
    assert config_error({"_op": "sort"}) == "This field is required and must be of type string"
    assert config_error({"_op": "sort", "field": "a", "order": None}) == "must be one of asc, desc"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.fixed_dictionaries({"k": st.integers(0, 3), "i": st.integers()})))
async def test_sort_is_stable(records: list[dict[str, Any]]) -> None:
    out = await run({"_op": "sort", "field": "k"}, list(records))
    assert out == sorted(records, key=lambda r: r["k"])


async def test_sample_exact() -> None:
    records = [{"i": i} for i in range(10)]
    half = await run({"_op": "sample_exact", "percent_kept": 50, "seed": 1}, list(records))
    assert len(half) == 5 and all(r in records for r in half)
    assert (
        len(await run({"_op": "sample_exact", "percent_kept": 95}, [{"i": i} for i in range(10000)])) == 9500
    )
    assert await run({"_op": "sample_exact", "percent_kept": 5}, list(records)) == []
    assert len(await run({"_op": "sample_exact"}, list(records))) == 10
    seeded = [
        await run({"_op": "sample_exact", "percent_kept": 30, "seed": 7}, list(records)) for _ in range(2)
    ]
    assert seeded[0] == seeded[1]
    for bad in ("50", 101, -1, None):
        assert (
            config_error({"_op": "sample_exact", "percent_kept": bad})
            == "Percentage must be a number between 0 and 100."
        )


async def test_sample_random() -> None:
    records = [{"i": i} for i in range(10000)]
    kept = await run({"_op": "sample_random", "probability_to_keep": 50}, list(records))
    assert 4600 <= len(kept) <= 5400
    assert kept == sorted(kept, key=lambda r: r["i"])
    assert await run({"_op": "sample_random", "probability_to_keep": 0}, list(records)) == []
    assert len(await run({"_op": "sample_random"}, list(records))) == 10000
    assert config_error({"_op": "sample_random", "probability_to_keep": 200}) == (
        "probability must be a number between 0 and 100."
    )


async def test_json_parser(caplog: pytest.LogCaptureFixture) -> None:
    good = DataEntity.from_raw(
        '{"_key":"1234","name":"\u0000joe\u0000\u0000"}', {"_key": "k", "_createTime": 5}
    )
    bad = DataEntity.from_raw('"somebadjson"')
    with caplog.at_level(logging.ERROR, logger="teraslice_k8s.dead_letter"):
        out = await run({"_op": "json_parser"}, [good, bad])
    assert [show(r) for r in out] == [{"data": {"_key": "1234", "name": "joe"}, "metadata": {"_key": "k"}}]
    assert out[0].get_create_time() == 5
    assert [r.getMessage() for r in caplog.records] == [
        'json_parser: record rejected: ValueError: Invalid data source, must be an object, got "String"; '
        'record: "somebadjson"'
    ]
    with pytest.raises(ValueError, match="Expecting property name"):
        await run({"_op": "json_parser", "_dead_letter_action": "throw"}, [DataEntity.from_raw("{nope")])
    assert await run({"_op": "json_parser", "_dead_letter_action": "none"}, [{"no": "raw"}]) == []
    assert config_error({"_op": "json_parser", "_dead_letter_action": 1234}) == "must be a string"

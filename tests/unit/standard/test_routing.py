"""field_router, key_router, hash_router, date_router, debug_routes: the reference's examples,
messages and edges; hash buckets match an independent FNV-1a on random strings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standard_harness import config_error, entity, make_op, op_class, run

from teraslice_k8s.runtime.data_entity import DataEntity, DataEntityError

ROUTE = "standard:route"


def routes(records: list[Any]) -> list[Any]:
    return [r.get_metadata(ROUTE) for r in records]


@pytest.mark.parametrize(
    ("options", "body", "route"),
    [
        ({}, {"field1": "val1", "field2": "val2"}, "field2_val2-field1_val1"),
        ({}, {"field1": "val/1", "field2": "val/2"}, "field2_val_2-field1_val_1"),
        ({"include_field_names": False}, {"field1": "val/1", "field2": "val/2"}, "val_2-val_1"),
        ({"value_delimiter": "&"}, {"field1": "val1", "field2": "val2"}, "field2&val2-field1&val1"),
        ({"field_delimiter": "+"}, {"field2": ["a", 1], "field1": None}, "field2_a,1+field1_"),
    ],
)
async def test_field_router(options: dict[str, Any], body: dict[str, Any], route: str) -> None:
    out = await run({"_op": "field_router", "fields": ["field2", "field1"], **options}, [dict(body)])
    assert routes(out) == [route] and out == [body]


async def test_field_router_sanitises_and_validates() -> None:
    out = await run({"_op": "field_router", "fields": ["foo"]}, [{"foo": "bar=asd/123/="}])
    assert routes(out) == ["foo_bar_asd_123__"]
    assert (
        config_error({"_op": "field_router", "fields": "a"}) == "Invalid `fields` option: must be an array."
    )
    assert config_error({"_op": "field_router"}) == (
        "Invalid `fields` option: must include at least one field to partition on."
    )


@pytest.mark.parametrize(
    ("options", "key", "route"),
    [
        ({}, "DaTaEnTiTyK3Y", "DaTaEnTiTyK3Y"),
        ({}, "DaTaEnTiTy/K3Y", "DaTaEnTiTy/K3Y"),
        ({"case": "lower"}, "DaTaEnTiTyK3Y", "dataentityk3y"),
        ({"case": "upper"}, "DaTaEnTiTyK3Y", "DATAENTITYK3Y"),
        ({"use": 1, "from": "beginning"}, "DaTaEnTiTyK3Y", "D"),
        ({"use": 1, "from": "end"}, "DaTaEnTiTyK3Y", "Y"),
        (
            {"case": "lower", "use": 1, "from": "beginning", "suffix_use": True, "suffix_upper": "--u"},
            "Rm9vQmFy",
            "r--u",
        ),
        (
            {"case": "upper", "use": 1, "from": "beginning", "suffix_use": True, "suffix_upper": "--u"},
            "Rm9vQmFy",
            "R--U",
        ),
        ({"use": 1, "from": "beginning", "suffix_use": True, "suffix_lower": "--l"}, "rm9v", "r--l"),
        ({"use": 1, "from": "beginning", "suffix_use": True, "suffix_number": "--n"}, "0m9v", "0--n"),
        ({"use": 1, "from": "beginning", "suffix_use": True, "suffix_other": "--c"}, "_m9v", "_--c"),
        ({"use": 3, "from": "beginning", "suffix_use": True, "suffix_upper": "--u"}, "bM9v", "bM9"),
        ({}, 42, "42"),
    ],
)
async def test_key_router(options: dict[str, Any], key: Any, route: str) -> None:
    assert routes(await run({"_op": "key_router", **options}, [entity({}, _key=key)])) == [route]


async def test_key_router_needs_a_key() -> None:
    with pytest.raises(DataEntityError, match="No key has been set in the metadata"):
        await run({"_op": "key_router"}, [{"a": 1}])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"use": "1"}, 'Parameter "use" must be a number'),
        ({"from": "middle"}, 'Parameter "from" must set to either "beginning" or "end"'),
        ({"suffix_use": "yes"}, 'Parameter "suffix_use" must be a boolean'),
    ],
)
def test_key_router_messages(options: dict[str, Any], message: str) -> None:
    assert config_error({"_op": "key_router", **options}) == message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"use": 1}, 'Invalid parameters, if "from" or "use" are specified, they must be used together'),
        (
            {"suffix_use": True, "suffix_upper": "u"},
            'Invalid parameters, if "suffix_use" is specified then "from" and "use" should be specified, '
            "they must be used together",
        ),
        (
            {"suffix_use": True, "use": 1, "from": "end"},
            "Invalid parameters, suffix_use requires that at least one "
            "suffix_(upper/lower/other/number) value be specified",
        ),
    ],
)
def test_key_router_job_checks(options: dict[str, Any], message: str) -> None:
    cls = op_class("key_router")
    parsed = cls.Options.model_validate({"_op": "key_router", **options})
    assert cls.validate_job(parsed, 1, {}) == [message]


@pytest.mark.parametrize(
    ("options", "record", "route"),
    [
        ({"fields": ["field2", "field1"]}, entity({"field1": "val1.1", "field2": "val1.2"}), "4"),
        ({"fields": ["field2", "field1"]}, entity({"field1": "val2.1", "field2": "val2.2"}), "8"),
        ({}, entity({}, _key="someId1"), "0"),
        ({}, entity({}, _key="someId2"), "14"),
        ({"partitions": 4}, entity({}, _key="bacon"), "0"),
        ({"partitions": 4}, entity({}, _key="frypan"), "3"),
    ],
)
async def test_hash_router(options: dict[str, Any], record: DataEntity, route: str) -> None:
    assert routes(await run({"_op": "hash_router", "partitions": 15, **options}, [record])) == [route]


def _fnv1a_reference(text: str) -> int:
    # Written from the FNV-1a definition, independent of the asset's code.
    h = 2166136261
    for b in text.encode():
        h ^= b
        h = (h * 16777619) % 2**32
    return h


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1), st.integers(1, 64))
async def test_hash_router_buckets_are_fnv1a(key: str, partitions: int) -> None:
    out = await run({"_op": "hash_router", "partitions": partitions}, [entity({}, _key=key)])
    assert routes(out) == [str(_fnv1a_reference(key) % partitions)]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.text(max_size=3) | st.text(st.characters(max_codepoint=127), max_size=3), min_size=128),
    st.integers(1, 64),
)
async def test_hash_router_buckets_are_fnv1a_over_whole_slices(keys: list[str], partitions: int) -> None:
    # 128+ texts of at most 3 characters, about half ASCII: lengths are shared by 16 or more
    # (hashed together, position by position, in lanes) and rarer ones are hashed one by one;
    # both must give FNV-1a.
    records = [entity({"k": key}) for key in keys]
    out = await run({"_op": "hash_router", "partitions": partitions, "fields": ["k"]}, records)
    assert routes(out) == [str(_fnv1a_reference(key) % partitions) for key in keys]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "Parameter partitions is invalid, it must be a number, received null"),
        ({"partitions": "4"}, "Parameter partitions is invalid, it must be a number, received String"),
        ({"partitions": 0}, "Parameter partitions is invalid, it must be set to a number > 0"),
        ({"partitions": 1.5}, 'Expected partitions to be integer > 0, got "1.5" (Number)'),
        ({"partitions": 2, "fields": "a"}, "Invalid `fields` option: must be an array."),
        (
            {"partitions": 2, "fields": [1]},
            "Invalid fields parameter, if specified it must be an array of strings",
        ),
    ],
)
def test_hash_router_messages(options: dict[str, Any], message: str) -> None:
    assert config_error({"_op": "hash_router", **options}) == message


DATE = "2020-01-17T19:21:52.159Z"


@pytest.mark.parametrize(
    ("options", "date", "route"),
    [
        ({}, DATE, "2020.01.17"),
        ({"date_delimiter": ""}, DATE, "20200117"),
        ({"include_date_units": True}, DATE, "year_2020.month_01.day_17"),
        (
            {"include_date_units": True, "date_delimiter": "-", "date_unit_delimiter": ""},
            DATE,
            "year2020-month01-day17",
        ),
        ({"resolution": "weekly"}, DATE, "2020.02"),
        ({"resolution": "weekly", "date_delimiter": "-"}, "2021-08-22T19:21:52.159Z", "2021-33"),
        (
            {"resolution": "weekly", "include_date_units": True, "date_delimiter": "-"},
            DATE,
            "year_2020-week_02",
        ),
        ({"resolution": "weekly_epoch"}, DATE, "2611"),
        ({"resolution": "weekly_epoch", "include_date_units": True}, DATE, "week_2611"),
        ({"resolution": "monthly"}, DATE, "2020.01"),
        ({"resolution": "yearly"}, DATE, "2020"),
        ({"resolution": "yearly", "include_date_units": True, "date_unit_delimiter": "/"}, DATE, "year/2020"),
        ({"resolution": "hourly"}, "1995-01-01T10:05:00.001Z", "1995.01.01.10"),
        ({}, 1579288912159, "2020.01.17"),
    ],
)
async def test_date_router(options: dict[str, Any], date: Any, route: str) -> None:
    out = await run({"_op": "date_router", "field": "date", **options}, [{"date": date}])
    assert routes(out) == [route] and out == [{"date": date}]


async def test_date_router_bad_dates_and_messages() -> None:
    with pytest.raises(ValueError, match="Could not convert value nope to a date"):
        await run({"_op": "date_router", "field": "date"}, [{"date": "nope"}])
    out = await run(
        {"_op": "date_router", "field": "date", "_dead_letter_action": "none"},
        [{"date": None}, {"date": DATE}],
    )
    assert out == [{}, {"date": DATE}]
    assert config_error({"_op": "date_router", "field": "d", "date_delimiter": "|"}) == (
        "Delimiter must be one of -,_,.,/,, value was |"
    )
    assert config_error({"_op": "date_router"}) == "This field is required and must be of type string"


async def test_debug_routes(capsys: pytest.CaptureFixture[str]) -> None:
    records = [entity({}, **{ROUTE: r}) for r in "abacab"] + [{"plain": 1}]
    op = await make_op({"_op": "debug_routes"})
    assert await op.process(list(records), {}) == records
    await op.process([], {})
    hashed = [entity({}, **{ROUTE: r}) for r in ("10", "2", "x")]
    await op.process(hashed, {})
    assert capsys.readouterr().out == "{ a: 3, b: 2, c: 1, '<unknown>': 1 }\n{}\n{ '2': 1, '10': 1, x: 1 }\n"

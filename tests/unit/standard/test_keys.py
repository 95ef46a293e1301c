"""set_key, remove_key, add_key: the reference's examples (spec keys recomputed) and edges."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from standard_harness import bodies, config_error, entity, run, show

from teraslice_k8s.runtime.data_entity import DataEntity, DataEntityError, DataWindow


async def test_set_key_example_and_edges() -> None:
    out = await run({"_op": "set_key", "field": "name"}, [entity({"id": 1, "name": "joe"}, _key="id")])
    assert [show(r) for r in out] == [{"data": {"id": 1, "name": "joe"}, "metadata": {"_key": "joe"}}]
    # A plain dict is wrapped; a missing field leaves _key unset (getKey throws).
    plain = await run({"_op": "set_key", "field": "name"}, [{"id": 2}])
    assert isinstance(plain[0], DataEntity) and plain[0].get_metadata("_key") is None
    with pytest.raises(DataEntityError, match="No key has been set in the metadata"):
        plain[0].get_key()
    # The default reads a body field literally named _key.
    default = await run({"_op": "set_key"}, [{"_key": "k1", "a": 1}])
    assert default[0].get_key() == "k1"
    window = DataWindow.make_window("w", [{"name": "a"}, {"name": "b"}])
    (out_window,) = await run({"_op": "set_key", "field": "name"}, [window])
    assert [r.get_key() for r in out_window.as_array()] == ["a", "b"] and out_window.get_key() == "w"


@pytest.mark.parametrize("field", [5, {}, "", None])
def test_set_key_field_must_be_a_string(field: Any) -> None:
    assert (
        config_error({"_op": "set_key", "field": field})
        == "This field is required and must be of type string"
    )


async def test_remove_key() -> None:
    out = await run({"_op": "remove_key"}, [entity({"name": "chilly"}, _key=1), {"plain": True}])
    assert [show(r) for r in out] == [
        {"data": {"name": "chilly"}, "metadata": {"_key": None}},
        {"data": {"plain": True}, "metadata": {"_key": None}},
    ]
    with pytest.raises(DataEntityError):
        out[0].get_key()


ADD_KEY_EXAMPLES = [
    ({"name": "bob", "age": 122}, {}, "ctzV5v3kRQAAEUJfEZt7nA"),
    ({"name": "joe", "age": 34}, {"key_fields": ["age"]}, "42mFPfdm-kTh7Q_2E_VjvQ"),
    ({"name": "bob", "age": 122, "thing": ["some", "thing"]}, {}, "spEib0qesWj68-lFBXD_Aw"),
    ({"name": "joe", "age": 34, "foo": {"bar": "foo"}}, {}, "s_Az1xDGGOSRaVzbq1lk2Q"),
    ({"name": "frank", "age": 99, "foo": None, "bar": False}, {}, "jmv4RTJMm7Z7vkKXeOuS7Q"),
    (
        {"name": "bob", "age": 122},
        {"key_fields": ["name"], "hash_algorithm": "sha256"},
        "gbY32PzSxtpjWeaWMROhFw3nleS3JbhNHgtM_Z7FjOk",
    ),
    (
        {"name": "bob", "age": 122, "location": {"lon": -43.4432343234, "lat": 55.3454349123934}},
        {"key_fields": ["name", "age", "location"], "truncate_location": ["location"]},
        "LvKzh7sFNReVjg405KP3eA",
    ),
    (
        {"name": "bob", "age": 122, "location": "-43.4432343234, 55.3454349123934"},
        {"key_fields": ["name", "age", "location"], "truncate_location": ["location"]},
        "llbTgbr2KUXHEOmhq7g8Qw",
    ),
]


@pytest.mark.parametrize(("body", "options", "key"), ADD_KEY_EXAMPLES)
async def test_add_key_reference_examples(body: dict[str, Any], options: dict[str, Any], key: str) -> None:
    (out,) = await run({"_op": "add_key", **options}, [dict(body)])
    assert out == {**body, "_key": key}
    assert out.get_key() == key


async def test_add_key_output_record_and_original_key() -> None:
    config = {"_op": "add_key", "preserve_original_key": True, "delete_original": True}
    (out,) = await run(config, [entity({"name": "bob", "age": 122}, _key="old")])
    assert show(out) == {
        "data": {"name": "bob", "age": 122, "_original_key": "old", "_key": "ctzV5v3kRQAAEUJfEZt7nA"},
        "metadata": {"_key": "ctzV5v3kRQAAEUJfEZt7nA", "_delete_id": "old"},
    }


async def test_add_key_other_key_name_minimum_fields_and_windows() -> None:
    out = await run(
        {"_op": "add_key", "key_name": "id", "minimum_field_count": 2},
        [{"name": "bob", "age": 122}, {"name": "solo"}, {"name": "x", "empty": [], "obj": {}}],
    )
    assert [show(r) for r in out] == [
        {
            "data": {"name": "bob", "age": 122, "id": "ctzV5v3kRQAAEUJfEZt7nA"},
            "metadata": {"id": "ctzV5v3kRQAAEUJfEZt7nA"},
        }
    ]
    window = DataWindow.make_window("w", [{"name": "bob", "age": 122}, {"only": 1}])
    (kept,) = await run({"_op": "add_key", "minimum_field_count": 2}, [window])
    assert bodies(kept.as_array()) == [{"name": "bob", "age": 122, "_key": "ctzV5v3kRQAAEUJfEZt7nA"}]


async def test_add_key_invert_fields_uses_the_rest_sorted() -> None:
    (a,) = await run(
        {"_op": "add_key", "key_fields": ["name"], "invert_key_fields": True}, [{"name": "x", "age": 34}]
    )
    (b,) = await run({"_op": "add_key", "key_fields": ["age"]}, [{"name": "y", "age": 34}])
    assert a["_key"] == b["_key"] == "42mFPfdm-kTh7Q_2E_VjvQ"


@pytest.mark.parametrize(
    "bad", ["POINT ()", "bad format", ["badPoint", 1], {"lon": "no number here", "lat": 1}]
)
async def test_add_key_truncation_errors_reject_the_record(bad: Any) -> None:
    config = {"_op": "add_key", "key_fields": ["location"], "truncate_location": ["location"]}
    with pytest.raises(ValueError, match="could not truncate location"):
        await run(config, [{"location": bad}])
    # With a non-throwing action the untruncated value is used.
    (out,) = await run({**config, "_dead_letter_action": "none"}, [{"location": "bad format"}])
    assert "_key" in out


def test_add_key_hash_algorithm_message() -> None:
    assert config_error({"_op": "add_key", "hash_algorithm": "crc"}) == (
        "hash_algorithm must be md4 or md5 or sha1 or sha256 or sha512 or whirlpool"
    )


def test_geohash_round_trip_and_truncation() -> None:
    from standard_harness import op_class

    keys = sys.modules[op_class("add_key").__module__]
    lat, lon = keys.geohash_decode("9q8yyk8yuv")
    assert (round(lat, 4), round(lon, 4)) == (37.7749, -122.4194)
    assert keys.geohash_encode(lat, lon, 10) == "9q8yyk8yuv"
    assert keys.geohash_decode("not-a-hash!") is None
    # Truncated to 2 places, the cell of (37.77, -122.41) at the same precision.
    assert keys.truncate_location("9q8yyk8yuv", 2) == keys.geohash_encode(37.77, -122.41, 10)

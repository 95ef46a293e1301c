"""DataEntity / DataWindow: a plain dict for every consumer, Teraslice's metadata rules beside it."""

from __future__ import annotations

import copy
import json
import pickle

import orjson
import pytest

from teraslice_k8s.runtime.data_entity import (
    DataEntity,
    DataEntityError,
    DataWindow,
    get_key,
    is_data_window,
    is_valid_key,
    type_of,
)


def test_an_entity_is_a_dict_and_serialises_its_body_only() -> None:
    entity = DataEntity({"a": 1}, {"_key": "k1", "standard:route": "r"})
    entity.set_raw_data(b"raw")
    assert isinstance(entity, dict)
    assert entity == {"a": 1}
    assert json.dumps(entity) == '{"a": 1}'
    assert orjson.dumps(entity) == b'{"a":1}'
    assert json.dumps([DataWindow.make_window("w", [entity])]) == (
        '[{"__isDataWindow": true, "dataArray": [{"a": 1}]}]'
    )


def test_the_body_is_a_shallow_copy_of_the_source() -> None:
    source = {"a": {"b": 1}}
    entity = DataEntity(source)
    entity["c"] = 2
    assert source == {"a": {"b": 1}}
    assert entity["a"] is source["a"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x", 'Invalid data source, must be an object, got "String"'),
        (5, 'Invalid data source, must be an object, got "Number"'),
        ([1], 'Invalid data source, must be an object, got "Array"'),
        (True, 'Invalid data source, must be an object, got "Boolean"'),
    ],
)
def test_a_body_must_be_an_object(source: object, message: str) -> None:
    with pytest.raises(DataEntityError) as err:
        DataEntity(source)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_create_time_is_set_at_creation_and_read_only() -> None:
    entity = DataEntity({"a": 1})
    created = entity.get_metadata("_createTime")
    assert isinstance(created, int) and created > 1_600_000_000_000
    assert entity.get_create_time() == created
    with pytest.raises(DataEntityError) as err:
        entity.set_metadata("_createTime", 1)
    assert str(err.value) == "Cannot set readonly metadata property _createTime"
    # Supplied at creation (a copy of another record's metadata), it wins.
    assert DataEntity({}, {"_createTime": 5}).get_metadata("_createTime") == 5


def test_metadata_keys_are_arbitrary_and_missing_ones_are_none() -> None:
    entity = DataEntity()
    entity.set_metadata("standard:route", "a")
    entity.set_metadata("anything", {"x": [1]})
    entity.set_metadata("gone", None)
    assert entity.get_metadata("standard:route") == "a"
    assert entity.get_metadata("anything") == {"x": [1]}
    assert entity.get_metadata("absent") is None
    assert set(entity.get_metadata()) == {"_createTime", "standard:route", "anything", "gone"}
    with pytest.raises(DataEntityError) as err:
        entity.set_metadata("", 1)
    assert str(err.value) == "Missing field to set in metadata"


@pytest.mark.parametrize(
    ("key", "valid"),
    [
        ("a", True),
        ("", False),
        (0, True),
        (12, True),
        (1.5, True),
        (float("nan"), False),
        (True, False),
        (None, False),
        ([], False),
        ({}, False),
    ],
)
def test_key_rules(key: object, valid: bool) -> None:
    assert is_valid_key(key) is valid
    entity = DataEntity()
    if valid:
        entity.set_key(key)
        assert entity.get_key() == key
        assert entity.get_metadata("_key") == key
    else:
        with pytest.raises(DataEntityError) as err:
            entity.set_key(key)
        assert str(err.value) == "Invalid key to set in metadata"
        entity.set_metadata("_key", key)
        with pytest.raises(DataEntityError) as err2:
            entity.get_key()
        assert str(err2.value) == "No key has been set in the metadata"


def test_get_key_of_a_plain_dict_is_teraslices_error() -> None:
    with pytest.raises(DataEntityError, match=r"^No key has been set in the metadata$"):
        get_key({"_key": "body field, not metadata"})


def test_make_returns_an_entity_as_is_and_wraps_dicts() -> None:
    entity = DataEntity({"a": 1})
    assert DataEntity.make(entity, {"_key": "x"}) is entity
    assert entity.get_key() == "x"
    plain = {"b": 2}
    made = DataEntity.make(plain, {"_key": 3})
    assert made is not plain and made == plain and made.get_key() == 3
    assert DataEntity.make_array({"c": 1}) == [{"c": 1}]
    records = [DataEntity({"d": 1})]
    assert DataEntity.make_array(records) is records


def test_raw_data() -> None:
    entity = DataEntity.from_raw('{"a":1}', {"_key": "k"})
    assert entity == {}
    assert entity.get_raw_data() == b'{"a":1}'
    entity.set_raw_data(bytearray(b"x"))
    assert entity.get_raw_data() == b"x"
    entity.set_raw_data(None)
    with pytest.raises(DataEntityError, match=r"^No data has been set$"):
        entity.get_raw_data()


def test_fork_copies_metadata_but_not_the_create_time() -> None:
    entity = DataEntity({"a": 1}, {"_key": "k", "_createTime": 1})
    forked = entity.fork()
    assert forked == {"a": 1} and forked is not entity
    assert forked.get_key() == "k"
    assert forked.get_create_time() != 1
    assert entity.fork(with_data=False) == {}


def test_copy_and_pickle_keep_metadata() -> None:
    entity = DataEntity({"a": 1}, {"_key": "k"})
    entity.set_raw_data(b"r")
    for other in (copy.copy(entity), entity.copy(), pickle.loads(pickle.dumps(entity))):
        assert isinstance(other, DataEntity)
        assert other == entity and other is not entity
        assert other.get_metadata() == entity.get_metadata()
        assert other.get_raw_data() == b"r"
    window = DataWindow.make_window("w", [entity])
    restored = pickle.loads(pickle.dumps(window))
    assert isinstance(restored, DataWindow) and restored.get_key() == "w"


def test_times() -> None:
    entity = DataEntity()
    entity.set_event_time(1000)
    entity.set_ingest_time(2000)
    entity.set_process_time()
    assert entity.get_event_time() == 1000
    assert entity.get_ingest_time() == 2000
    assert isinstance(entity.get_process_time(), int)


def test_data_window() -> None:
    first = DataEntity({"id": 1}, {"_key": "a"})
    window = DataWindow.make_window(7, [first, {"id": 2}])
    assert is_data_window(window) and is_data_window({"__isDataWindow": True, "dataArray": []})
    assert not is_data_window(first)
    assert window.get_key() == 7
    assert window.as_array()[0] is first
    assert isinstance(window.as_array()[1], DataEntity)
    window.set({"id": 3})
    assert [r["id"] for r in window.as_array()] == [1, 2, 3]
    assert window.get_at(0) is first and window.get_at(5) is None
    assert window.index_of(first) == 0 and window.index_of({"id": 1}) == -1
    assert DataWindow.make_window().get_metadata("_key") is None
    assert DataWindow.make_window(None, {"x": 1}).as_array() == [{"x": 1}]


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("s", "String"),
        (1, "Number"),
        (1.5, "Number"),
        (None, "null"),
        (True, "Boolean"),
        ([], "Array"),
        ({}, "Object"),
        (b"x", "Buffer"),
    ],
)
def test_type_names(value: object, name: str) -> None:
    assert type_of(value) == name

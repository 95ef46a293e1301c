"""Records with metadata: Teraslice's ``DataEntity`` and ``DataWindow`` in Python.

A :class:`DataEntity` **is** a ``dict`` (its body): every operation that works on plain dicts
works on it unchanged, and JSON serialisation (``json.dumps``, orjson, the Elasticsearch
client) emits only the body. Next to the body it carries, in slots that are never serialised:

- **metadata**, a dict with Teraslice's keys and rules (``_createTime`` = epoch ms at creation,
  read-only; ``_key`` a non-empty string or a number; ``_ingestTime``, ``_processTime``,
  ``_eventTime``; ``standard:route``; ``_delete_id``; any other key);
- **raw bytes** (``_encoding: raw`` readers, ``json_parser``).

Records that are plain dicts stay plain dicts: nothing in the runtime wraps them, so metadata
costs nothing where it is not used. An operation that needs metadata wraps a record with
:meth:`DataEntity.make` (a DataEntity is returned as is, like Teraslice's ``make``).

A :class:`DataWindow` is a DataEntity whose body is ``{"__isDataWindow": True, "dataArray":
[records...]}`` (Teraslice's JSON form of a window) with metadata of its own.

Error messages are Teraslice's (core-utils), verbatim. One difference from the stored
core-utils source: ``set_process_time``/``set_event_time`` write ``_processTime``/``_eventTime``
(core-utils writes ``_ingestTime`` for all three, a bug no standard operation depends on).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

CREATE_TIME = "_createTime"
KEY = "_key"
ROUTE = "standard:route"


class DataEntityError(ValueError):
    """A DataEntity rule was broken (the message is Teraslice's)."""


def type_of(value: Any) -> str:
    """The name Teraslice's ``getTypeOf`` gives a value (``String``, ``Number``, ``Object``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list | tuple):
        return "Array"
    if isinstance(value, bytes | bytearray):
        return "Buffer"
    if isinstance(value, datetime):
        return "Date"
    if isinstance(value, DataWindow):
        return "DataWindow"
    if isinstance(value, DataEntity):
        return "DataEntity"
    if isinstance(value, Mapping):
        return "Object"
    return type(value).__name__


def is_valid_key(key: Any) -> bool:
    """Teraslice's key rule: a non-empty string or a number (not a boolean, not NaN)."""
    if isinstance(key, str):
        return key != ""
    if isinstance(key, bool):
        return False
    if isinstance(key, int):
        return True
    return isinstance(key, float) and not math.isnan(key)


_time_ns = time.time_ns


def now_ms() -> int:
    """Epoch milliseconds (JavaScript's ``Date.now()``)."""
    return _time_ns() // 1_000_000


class DataEntity(dict[str, Any]):
    """A record body (this dict) with hidden metadata and optional raw bytes."""

    __slots__ = ("_metadata", "_raw")

    def __init__(self, data: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None):
        # dict first: the ABC check on Mapping costs more than the rest of the constructor.
        if isinstance(data, dict):
            dict.__init__(self, data)
        elif data is None:
            dict.__init__(self)
        elif isinstance(data, Mapping):
            dict.__init__(self, data)
        else:
            raise DataEntityError(f'Invalid data source, must be an object, got "{type_of(data)}"')
        meta: dict[str, Any] = {CREATE_TIME: _time_ns() // 1_000_000}
        if metadata:
            meta.update(metadata)
        self._metadata = meta
        self._raw: bytes | None = None

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def make(cls, record: Any, metadata: Mapping[str, Any] | None = None) -> DataEntity:
        """``record`` itself when it is already a DataEntity (``metadata`` keys set onto it), else
        a new entity holding a shallow copy of it (Teraslice's ``DataEntity.make``)."""
        if isinstance(record, DataEntity):
            if metadata:
                for key, value in metadata.items():
                    record.set_metadata(key, value)
            return record
        return DataEntity(record, metadata)

    @classmethod
    def make_array(cls, records: Any) -> list[DataEntity]:
        """A list of entities: a non-list input becomes a one-element list; records already
        entities are kept as the same objects."""
        if not isinstance(records, list):
            return [cls.make(records)]
        if records and isinstance(records[0], DataEntity):
            return records
        return [cls.make(r) for r in records]

    @classmethod
    def from_raw(cls, raw: bytes | str, metadata: Mapping[str, Any] | None = None) -> DataEntity:
        """An empty-bodied entity holding ``raw`` (what an ``_encoding: raw`` reader returns)."""
        entity = DataEntity(None, metadata)
        entity.set_raw_data(raw)
        return entity

    def fork(self, with_data: bool = True) -> DataEntity:
        """A new entity: same body (shallow copy) unless ``with_data`` is false, metadata copied
        except ``_createTime`` (the fork gets its own), raw bytes kept."""
        meta = {k: v for k, v in self._metadata.items() if k != CREATE_TIME}
        forked = DataEntity(self if with_data else None, meta)
        forked._raw = self._raw
        return forked

    # -- metadata ---------------------------------------------------------------------------

    def get_metadata(self, key: str | None = None) -> Any:
        """The whole metadata dict (live), or one value (None when absent)."""
        if key is None:
            return self._metadata
        return self._metadata.get(key)

    def set_metadata(self, key: str, value: Any) -> None:
        """Set any metadata key but ``_createTime`` (read-only); ``value`` is not checked."""
        if not key:
            raise DataEntityError("Missing field to set in metadata")
        if key == CREATE_TIME:
            raise DataEntityError(f"Cannot set readonly metadata property {CREATE_TIME}")
        self._metadata[key] = value

    def get_key(self) -> str | int | float:
        """``_key``, which must be a non-empty string or a number."""
        key: str | int | float = self._metadata.get(KEY)  # type: ignore[assignment]
        if not is_valid_key(key):
            raise DataEntityError("No key has been set in the metadata")
        return key

    def set_key(self, key: Any) -> None:
        if not is_valid_key(key):
            raise DataEntityError("Invalid key to set in metadata")
        self._metadata[KEY] = key

    def get_create_time(self) -> int:
        created: int = self._metadata[CREATE_TIME]
        return created

    def _set_time(self, key: str, value: Any) -> None:
        if value is None:
            self._metadata[key] = now_ms()
            return
        if isinstance(value, datetime):
            self._metadata[key] = int(value.timestamp() * 1000)
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataEntityError(f"Invalid date for {key}, got {value!r}")
        self._metadata[key] = int(value)

    def set_ingest_time(self, value: Any = None) -> None:
        """``_ingestTime`` = ``value`` (epoch ms or datetime; now when omitted)."""
        self._set_time("_ingestTime", value)

    def set_process_time(self, value: Any = None) -> None:
        self._set_time("_processTime", value)

    def set_event_time(self, value: Any = None) -> None:
        self._set_time("_eventTime", value)

    def get_ingest_time(self) -> int | None:
        return self._metadata.get("_ingestTime")

    def get_process_time(self) -> int | None:
        return self._metadata.get("_processTime")

    def get_event_time(self) -> int | None:
        return self._metadata.get("_eventTime")

    # -- raw data ---------------------------------------------------------------------------

    def get_raw_data(self) -> bytes:
        if self._raw is None:
            raise DataEntityError("No data has been set")
        return self._raw

    def set_raw_data(self, raw: bytes | bytearray | str | None) -> None:
        """Bytes, text (stored as UTF-8) or None (clears)."""
        if raw is None:
            self._raw = None
        elif isinstance(raw, str):
            self._raw = raw.encode("utf-8")
        elif isinstance(raw, bytes | bytearray):
            self._raw = bytes(raw)
        else:
            raise DataEntityError(f"Invalid data to set, must be a Buffer or string, got {type_of(raw)}")

    # -- dict behaviour ---------------------------------------------------------------------

    def copy(self) -> DataEntity:
        """A shallow copy with the same metadata (including ``_createTime``) and raw bytes."""
        other = DataEntity(self)
        other._metadata = dict(self._metadata)
        other._raw = self._raw
        return other

    def __copy__(self) -> DataEntity:
        return self.copy()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), dict(self), dict(self._metadata), self._raw))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict.__repr__(self)}, metadata={self._metadata!r})"


def _rebuild(cls: type[DataEntity], body: dict[str, Any], meta: dict[str, Any], raw: bytes | None) -> Any:
    entity = cls.__new__(cls)
    dict.update(entity, body)
    entity._metadata = meta
    entity._raw = raw
    return entity


def is_data_entity(value: Any) -> bool:
    return isinstance(value, DataEntity)


def get_metadata(record: Any, key: str) -> Any:
    """``record``'s metadata ``key`` (None for plain dicts, which have no metadata)."""
    return record._metadata.get(key) if isinstance(record, DataEntity) else None


def get_key(record: Any) -> Any:
    """``record.get_key()``; a plain dict has no key (Teraslice's error)."""
    if isinstance(record, DataEntity):
        return record.get_key()
    raise DataEntityError("No key has been set in the metadata")


class DataWindow(DataEntity):
    """A record holding a list of records, with its own metadata (Teraslice's DataWindow).

    The body is ``{"__isDataWindow": True, "dataArray": [...]}``; :meth:`as_array` is the live
    list of records."""

    __slots__ = ()

    def __init__(self, records: Iterable[Any] | None = None, metadata: Mapping[str, Any] | None = None):
        dict.__init__(
            self, {"__isDataWindow": True, "dataArray": [DataEntity.make(r) for r in records or ()]}
        )
        meta: dict[str, Any] = {CREATE_TIME: _time_ns() // 1_000_000}
        if metadata:
            meta.update(metadata)
        self._metadata = meta
        self._raw = None

    @classmethod
    def make_window(cls, key: Any = None, records: Any = None) -> DataWindow:
        """A new window; ``_key`` = ``key`` unless it is None; ``records`` a list (entities kept
        as the same objects) or one record."""
        window = DataWindow(None, {KEY: key} if key is not None else None)
        if isinstance(records, list):
            window.as_array().extend(DataEntity.make(r) for r in records)
        elif records is not None:
            window.set(records)
        return window

    def as_array(self) -> list[DataEntity]:
        records: list[DataEntity] = self["dataArray"]
        return records

    def set(self, record: Any) -> None:
        """Append ``record`` (wrapped unless it is an entity already)."""
        self.as_array().append(DataEntity.make(record))

    def get_at(self, index: int) -> DataEntity | None:
        records = self.as_array()
        return records[index] if -len(records) <= index < len(records) else None

    def index_of(self, record: Any) -> int:
        """Index of ``record`` by identity, -1 when absent."""
        return next((i for i, r in enumerate(self.as_array()) if r is record), -1)

    def copy(self) -> DataWindow:
        other = DataWindow(None, None)
        other["dataArray"] = list(self.as_array())
        other._metadata = dict(self._metadata)
        return other


def is_data_window(value: Any) -> bool:
    """Teraslice's test: ``__isDataWindow`` is true (a DataWindow, or its JSON form)."""
    return isinstance(value, DataWindow) or (
        isinstance(value, Mapping) and value.get("__isDataWindow") is True
    )

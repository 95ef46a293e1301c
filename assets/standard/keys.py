"""Record keys: set_key, remove_key (map processors) and add_key (batch processor)."""

from __future__ import annotations

import binascii
import functools
import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, field_validator

from teraslice_k8s.runtime.data_entity import DataEntity, DataWindow
from teraslice_k8s.runtime.operations.base import OpOptions

from ._lib import (
    MISSING,
    BatchProcessor,
    MapProcessor,
    each_record,
    js_string,
    json_text,
    number_text,
    path_get,
    required_string,
)

RequiredString = Annotated[str, BeforeValidator(required_string)]
_URLSAFE = bytes.maketrans(b"+/", b"-_")
#: Key layouts whose field order add_key remembers (forgotten all at once past this).
_MAX_LAYOUTS = 256


class SetKeyOptions(OpOptions):
    field: RequiredString = "_key"


class SetKey(MapProcessor):
    """Metadata ``_key`` = top-level ``record[field]`` (unchecked; missing -> unset)."""

    Options: ClassVar[type[OpOptions]] = SetKeyOptions
    options: SetKeyOptions

    def _set(self, record: Any) -> Any:
        entity = DataEntity.make(record)
        entity.get_metadata()["_key"] = record.get(self.options.field)
        return entity

    def map(self, record: Any) -> Any:
        return each_record(record, self._set)


class RemoveKeyOptions(OpOptions):
    """No options."""


class RemoveKey(MapProcessor):
    Options: ClassVar[type[OpOptions]] = RemoveKeyOptions

    @staticmethod
    def _remove(record: Any) -> Any:
        entity = DataEntity.make(record)
        entity.get_metadata()["_key"] = None
        return entity

    def map(self, record: Any) -> Any:
        return each_record(record, self._remove)


HASHES = ("md4", "md5", "sha1", "sha256", "sha512", "whirlpool")


class AddKeyOptions(OpOptions):
    key_name: str = "_key"
    key_fields: list[str] = Field(default_factory=list)
    invert_key_fields: bool = False
    hash_algorithm: str = "md5"
    minimum_field_count: int | float = 0
    preserve_original_key: bool = False
    delete_original: bool = False
    truncate_location: list[str] = Field(default_factory=list)
    truncate_location_places: int | float = 4

    @field_validator("hash_algorithm", mode="before")
    @classmethod
    def _algorithm(cls, value: Any) -> Any:
        if value not in HASHES:
            raise ValueError(f"hash_algorithm must be {' or '.join(HASHES)}")
        return value


def flatten_object(value: Any) -> str:
    """The key text of an object: nested key order does not matter (Teraslice's rule)."""
    pieces = [p for part in json_text(value).split(",") for p in part.split("{") if p]
    return "".join(sorted(pieces)).replace('"', "").replace("}", "")


def truncate_number(value: Any, places: int) -> float:
    number = float(value)
    text = f"{number:.{places + 5}f}"
    whole, _, fraction = text.partition(".")
    return float(f"{whole}.{fraction[:places]}") if places > 0 else float(whole)


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return value.strip() != ""
    return False


_POINT = re.compile(r"POINT\s*\(\s*(-?[\d.eE+-]+)\s+(-?[\d.eE+-]+)\s*\)", re.IGNORECASE)


def truncate_location(value: Any, places: int) -> Any:
    """``value``'s truncated form for keying (Teraslice's shapes, checked in this order)."""

    def cut(x: Any) -> float:
        return truncate_number(x, places)

    def fail() -> ValueError:
        return ValueError(f"could not truncate location {js_string(value)}")

    if isinstance(value, Mapping):
        coords = value.get("coordinates")
        point = value.get("type") == "Point" and isinstance(coords, list) and len(coords) == 2
        if point and all(_numeric(c) for c in coords):
            return {"type": "Point", "coordinates": [cut(coords[0]), cut(coords[1])]}
        if _numeric(value.get("lat")) and _numeric(value.get("lon")):
            return {"lat": cut(value["lat"]), "lon": cut(value["lon"])}
        raise fail()
    if isinstance(value, list):
        if not all(_numeric(v) for v in value):
            raise fail()
        return [cut(v) for v in value]
    if _numeric(value):
        return cut(value)
    if isinstance(value, str):
        if "POINT" in value.upper():
            match = _POINT.search(value)
            if not match:
                raise fail()
            return f"POINT ({number_text(cut(match.group(1)))} {number_text(cut(match.group(2)))})"
        if "," in value:
            lat, _, lon = value.partition(",")
            if not (_numeric(lat) and _numeric(lon)):
                raise fail()
            return f"{number_text(cut(lat))}, {number_text(cut(lon))}"
        decoded = geohash_decode(value)
        if decoded is None:
            raise fail()
        return geohash_encode(cut(decoded[0]), cut(decoded[1]), len(value))
    raise fail()


_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash_decode(text: str) -> tuple[float, float] | None:
    """(lat, lon) at the centre of the geohash cell, or None when ``text`` is not a geohash."""
    lat, lon = [-90.0, 90.0], [-180.0, 180.0]
    even = True
    for char in text.lower():
        index = _BASE32.find(char)
        if index < 0:
            return None
        for bit in (16, 8, 4, 2, 1):
            span = lon if even else lat
            mid = (span[0] + span[1]) / 2
            span[0 if index & bit else 1] = mid
            even = not even
    return (lat[0] + lat[1]) / 2, (lon[0] + lon[1]) / 2


def geohash_encode(lat: float, lon: float, length: int) -> str:
    lat_span, lon_span = [-90.0, 90.0], [-180.0, 180.0]
    chars, bits, value, even = [], 0, 0, True
    while len(chars) < length:
        span, point = (lon_span, lon) if even else (lat_span, lat)
        mid = (span[0] + span[1]) / 2
        value <<= 1
        if point >= mid:
            value |= 1
            span[0] = mid
        else:
            span[1] = mid
        even = not even
        bits += 1
        if bits == 5:
            chars.append(_BASE32[value])
            bits, value = 0, 0
    return "".join(chars)


class AddKey(BatchProcessor):
    Options: ClassVar[type[OpOptions]] = AddKeyOptions
    options: AddKeyOptions

    async def initialize(self) -> None:
        algorithm = self.options.hash_algorithm
        try:
            hashlib.new(algorithm)
        except ValueError as err:
            raise ValueError(f"hash_algorithm {algorithm} is not available in this Python ({err})") from err
        # hashlib.md5 & co. are several times faster to call than hashlib.new(name).
        self._hasher = getattr(hashlib, algorithm, None) or functools.partial(hashlib.new, algorithm)
        self._truncate = set(self.options.truncate_location)
        self._places = int(self.options.truncate_location_places)
        self._orders: dict[tuple[str, ...], list[str]] = {}

    def _fields(self, record: Mapping[str, Any]) -> list[str]:
        opts = self.options
        if opts.key_fields and not opts.invert_key_fields:
            return opts.key_fields
        # Every field (but key_fields when inverted) in UTF-16 order. A slice's records mostly
        # share one key layout: its order is computed once per layout.
        layout = tuple(record)
        order = self._orders.get(layout)
        if order is None:
            skip = set(opts.key_fields) if opts.invert_key_fields else set()
            order = sorted((k for k in layout if k not in skip), key=_utf16)
            if len(self._orders) >= _MAX_LAYOUTS:
                self._orders.clear()
            self._orders[layout] = order
        return order

    def key_text(self, record: Mapping[str, Any]) -> tuple[str, int]:
        """The text hashed for ``record`` and how many values went into it."""
        parts: list[str] = []
        truncate = self._truncate
        for name in self._fields(record):
            # A literal key wins in path_get too: look it up directly, the path only otherwise.
            value = record[name] if name in record else path_get(record, name)
            kind = type(value)
            if (kind is str or kind is int) and not truncate:  # what js_string gives them
                parts.append(value if kind is str else str(value))
                continue
            if value is MISSING or value is None:
                continue
            if name in truncate:
                try:
                    value = truncate_location(value, self._places)
                except ValueError as err:
                    self.dead_letter.reject(record, err)
            if isinstance(value, list | dict) and not value:
                continue
            parts.append(flatten_object(value) if isinstance(value, Mapping) else js_string(value))
        return "".join(parts), len(parts)

    def _key(self, text: str) -> str:
        digest = self._hasher(text.encode("utf-8")).digest()
        # base64.urlsafe_b64encode, without its Python-level wrappers.
        return binascii.b2a_base64(digest, newline=False).translate(_URLSAFE).decode("ascii").rstrip("=")

    def _keyed(self, records: list[Any]) -> list[Any]:
        opts = self.options
        out = []
        for record in records:
            text, count = self.key_text(record)
            if count < opts.minimum_field_count:
                continue
            entity = DataEntity.make(record)
            meta = entity.get_metadata()
            old = meta.get("_key")
            if opts.preserve_original_key:
                entity["_original_key"] = old
            if opts.delete_original:
                meta["_delete_id"] = old
            key = self._key(text)
            entity[opts.key_name] = key
            if opts.key_name != "_createTime":
                meta[opts.key_name] = key
            out.append(entity)
        return out

    def on_batch(self, batch: list[Any]) -> list[Any]:
        if batch and isinstance(batch[0], Mapping) and "dataArray" in batch[0]:
            for window in batch:
                inner = window.as_array() if isinstance(window, DataWindow) else window["dataArray"]
                inner[:] = self._keyed(inner)
            return batch
        return self._keyed(batch)


def _utf16(text: str) -> list[int]:
    """JavaScript's default sort order (UTF-16 code units)."""
    return list(text.encode("utf-16-be"))

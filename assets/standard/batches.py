"""Batch processors over a whole slice: dedupe, count_unique, group_by, sort, sample_exact,
sample_random, data_window_to_array, json_parser."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator

from teraslice_k8s.runtime.data_entity import DataEntity, DataWindow, get_key, is_data_window
from teraslice_k8s.runtime.operations.base import OpOptions

from ._lib import (
    MISSING,
    BatchProcessor,
    js_string,
    map_key,
    object_key_order,
    optional_string,
    path_get,
    required_string,
    valid_date_ms,
    windows_first,
)

RequiredString = Annotated[str, BeforeValidator(required_string)]
OptionalString = Annotated[str | None, BeforeValidator(optional_string)]


def _adjust_time(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ValueError("Invalid parameter adjust_time, expected an array of objects")
    for item in value:
        if "field" not in item or "preference" not in item:
            raise ValueError("Both the time field and the preference must be present")
        if item["preference"] not in ("oldest", "newest"):
            raise ValueError(
                'Invalid adjust_time config, it must have key "preference" set to "oldest" or "newest"'
            )
        if not isinstance(item["field"], str):
            raise ValueError('Invalid adjust_time config, "field" must be specified and must be a string')
    return value


class DedupeOptions(OpOptions):
    field: OptionalString = None
    adjust_time: Annotated[list[dict[str, Any]], BeforeValidator(_adjust_time)] = Field(default_factory=list)


class Dedupe(BatchProcessor):
    """Keeps the first record of each key (``field`` or ``_key``), merging ``adjust_time``."""

    Options: ClassVar[type[OpOptions]] = DedupeOptions
    options: DedupeOptions

    def _dedupe(self, records: list[Any]) -> list[Any]:
        field = self.options.field
        adjust = self.options.adjust_time
        kept: dict[Any, Any] = {}
        for record in records:
            key = map_key(record.get(field, MISSING) if field else get_key(record))
            first = kept.get(key)
            if first is None:
                kept[key] = record
                continue
            for rule in adjust:
                name = rule["field"]
                saved, incoming = valid_date_ms(first.get(name)), valid_date_ms(record.get(name))
                if incoming is None:
                    continue
                newer = rule["preference"] == "newest"
                if saved is None or (incoming > saved if newer else incoming <= saved):
                    first[name] = record[name]
        return list(kept.values())

    def on_batch(self, batch: list[Any]) -> list[Any]:
        if windows_first(batch):
            for window in batch:
                window.as_array()[:] = self._dedupe(window.as_array())
            return batch
        return self._dedupe(batch)


def _preserve(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError('Parameter "preserve_fields" must be an array of strings')
    return value


class CountUniqueOptions(OpOptions):
    field: RequiredString = "_key"
    is_meta_field: bool = True
    preserve_fields: Annotated[list[str], BeforeValidator(_preserve)] = Field(default_factory=list)


class CountUnique(BatchProcessor):
    """One ``{count, _key}`` record per distinct key (keys compared as JavaScript object keys)."""

    Options: ClassVar[type[OpOptions]] = CountUniqueOptions
    options: CountUniqueOptions

    def on_batch(self, batch: list[Any]) -> list[Any]:
        opts = self.options
        field, is_meta, preserve = opts.field, opts.is_meta_field, opts.preserve_fields
        groups: dict[str, DataEntity] = {}
        for record in batch:
            if is_meta:
                raw = record.get_metadata().get(field, MISSING) if isinstance(record, DataEntity) else MISSING
            else:
                raw = record.get(field, MISSING)
            kind = type(raw)  # str and int first: what js_string gives them, without the call
            if kind is str:
                name = raw
            elif kind is int:
                name = str(raw)
            else:
                name = "undefined" if raw is MISSING else js_string(raw)
            group = groups.get(name)
            if group is None:
                if raw is MISSING:
                    group = DataEntity({"count": 0})
                else:
                    group = DataEntity({"count": 0, "_key": raw}, {"_key": raw})
                groups[name] = group
            group["count"] += 1
            for kept in preserve:
                value = record.get(kept)
                if value is not None:
                    group[kept] = value
        return [groups[name] for name in object_key_order(list(groups))]


class GroupByOptions(OpOptions):
    field: OptionalString = None


class GroupBy(BatchProcessor):
    """One DataWindow per distinct key, in first-seen order (windows are flattened first)."""

    Options: ClassVar[type[OpOptions]] = GroupByOptions
    options: GroupByOptions

    def on_batch(self, batch: list[Any]) -> list[Any]:
        field = self.options.field
        groups: dict[Any, list[Any]] = {}  # Map key -> the window's record list
        windows: list[DataWindow] = []
        for item in batch:
            for record in item.as_array() if isinstance(item, DataWindow) else (item,):
                # A missing field (undefined) and null are different JavaScript Map keys.
                if field:
                    key = record.get(field, MISSING)
                elif isinstance(record, DataEntity):
                    key = record.get_metadata("_key")
                else:
                    key = record.get("_key", MISSING)
                kind = type(key)  # str and int are their own Map keys: skip the call
                marker = key if kind is str or kind is int else map_key(key)
                records = groups.get(marker)
                if records is None:
                    window = DataWindow.make_window(None if key is MISSING else key)
                    windows.append(window)
                    records = groups[marker] = window.as_array()
                records.append(record if isinstance(record, DataEntity) else DataEntity(record))
        return windows


class SortOptions(OpOptions):
    field: RequiredString = Field(None, validate_default=True)  # type: ignore[assignment]
    order: Literal["asc", "desc"] = "asc"


def _sort_key(value: Any) -> tuple[int, Any]:
    # Numbers before strings; missing, null and other values last (JavaScript's comparator is
    # inconsistent for them, so Teraslice leaves their place unspecified).
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, int | float) and not math.isnan(value):
        return (0, value)
    if isinstance(value, str):
        return (1, value.encode("utf-16-be"))
    return (2, 0)


class Sort(BatchProcessor):
    """Stable sort by ``field`` (path); DataWindows are sorted inside, in their order."""

    Options: ClassVar[type[OpOptions]] = SortOptions
    options: SortOptions

    def _sorted(self, records: list[Any]) -> list[Any]:
        field = self.options.field
        return sorted(
            records, key=lambda r: _sort_key(path_get(r, field)), reverse=self.options.order == "desc"
        )

    def on_batch(self, batch: list[Any]) -> list[Any]:
        if windows_first(batch):
            for window in batch:
                window.as_array()[:] = self._sorted(window.as_array())
            return batch
        return self._sorted(batch)


class SampleExactOptions(OpOptions):
    percent_kept: Any = 100
    seed: int | None = Field(None, description="ours: seed the shuffle (tests)")

    @field_validator("percent_kept", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise ValueError("Percentage must be a number between 0 and 100.")
        return value


class SampleExact(BatchProcessor):
    """Shuffles the batch and keeps ``floor(n * percent_kept / 100)`` records."""

    Options: ClassVar[type[OpOptions]] = SampleExactOptions
    options: SampleExactOptions

    async def initialize(self) -> None:
        self._random = random.Random(self.options.seed)

    def on_batch(self, batch: list[Any]) -> list[Any]:
        self._random.shuffle(batch)
        # JavaScript's Math.floor(n * percent / 100): float floor division (//) can differ by one.
        return batch[: math.floor(len(batch) * self.options.percent_kept / 100)]


class SampleRandomOptions(OpOptions):
    probability_to_keep: Any = 100
    seed: int | None = Field(None, description="ours: seed the draws (tests)")

    @field_validator("probability_to_keep", mode="before")
    @classmethod
    def _probability(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise ValueError("probability must be a number between 0 and 100.")
        return value


class SampleRandom(BatchProcessor):
    """Keeps each record when a uniform draw from 1..100 is <= ``probability_to_keep``."""

    Options: ClassVar[type[OpOptions]] = SampleRandomOptions
    options: SampleRandomOptions

    async def initialize(self) -> None:
        self._random = random.Random(self.options.seed)

    def on_batch(self, batch: list[Any]) -> list[Any]:
        draw, keep = self._random.randint, self.options.probability_to_keep
        return [r for r in batch if draw(1, 100) <= keep]


class DataWindowToArrayOptions(OpOptions):
    type: OptionalString = None


class DataWindowToArray(BatchProcessor):
    """The records of every window, windows in order (a plain record fails the slice)."""

    Options: ClassVar[type[OpOptions]] = DataWindowToArrayOptions

    def on_batch(self, batch: list[Any]) -> list[Any]:
        out: list[Any] = []
        for window in batch:
            if not is_data_window(window):
                raise TypeError("data_window_to_array: input must be DataWindows (got a record)")
            out.extend(window.as_array() if isinstance(window, DataWindow) else window["dataArray"])
        return out


class JsonParserOptions(OpOptions):
    dead_letter_action: str = Field("log", alias="_dead_letter_action", min_length=1)


class JsonParser(BatchProcessor):
    """Each record's raw bytes parsed as a JSON object into a new record (metadata copied);
    failures go to the dead-letter action (default ``log``) with the raw bytes."""

    Options: ClassVar[type[OpOptions]] = JsonParserOptions

    def on_batch(self, batch: list[Any]) -> list[Any]:
        out: list[Any] = []
        for record in batch:
            raw: Any = None
            try:
                if not isinstance(record, DataEntity):
                    raise ValueError("No data has been set")
                raw = record.get_raw_data()
                parsed = json.loads(raw.decode("utf-8").replace("\x00", ""))
                if not isinstance(parsed, dict):
                    raise ValueError(f'Invalid data source, must be an object, got "{_js_type(parsed)}"')
            except ValueError as err:
                self.dead_letter.reject(raw if raw is not None else record, err)
                continue
            out.append(DataEntity(parsed, record.get_metadata()))
        return out


def _js_type(value: Any) -> str:
    from teraslice_k8s.runtime.data_entity import type_of

    return type_of(value)

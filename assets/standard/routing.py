"""Routers (set metadata ``standard:route``): field_router, key_router, hash_router, date_router;
and debug_routes (prints route counts)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator

from teraslice_k8s.runtime.data_entity import ROUTE, DataEntity, get_key, type_of
from teraslice_k8s.runtime.operations.base import Batch, OpContext, OpOptions, SliceRequest

from ._fnv import fnv1a, fnv1a_many
from ._lib import (
    BatchProcessor,
    MapProcessor,
    js_string,
    js_text,
    object_key_order,
    optional_string,
    required_string,
    to_string,
    valid_date_ms,
)

RequiredString = Annotated[str, BeforeValidator(required_string)]
OptionalString = Annotated[str | None, BeforeValidator(optional_string)]


def _route(record: Any, route: str) -> DataEntity:
    entity = DataEntity.make(record)
    entity.get_metadata()[ROUTE] = route
    return entity


def _fields(value: Any) -> Any:
    if not isinstance(value, list):
        raise ValueError("Invalid `fields` option: must be an array.")
    if not value:
        raise ValueError("Invalid `fields` option: must include at least one field to partition on.")
    return value


class FieldRouterOptions(OpOptions):
    fields: Annotated[list[str], BeforeValidator(_fields)] = Field(
        default_factory=list, validate_default=True
    )
    field_delimiter: OptionalString = "-"
    value_delimiter: OptionalString = "_"
    include_field_names: bool = True


_SANITISE = re.compile(r"[=/]")


class FieldRouter(MapProcessor):
    Options: ClassVar[type[OpOptions]] = FieldRouterOptions
    options: FieldRouterOptions

    def __init__(self, context: OpContext, options: OpOptions) -> None:
        super().__init__(context, options)
        opts = self.options
        named = opts.include_field_names
        #: (field, what goes before its value in the route) per field, in order.
        self._parts = [(f, f"{f}{opts.value_delimiter or ''}" if named else "") for f in opts.fields]
        self._delimiter = opts.field_delimiter or ""

    def route(self, record: Any) -> str:
        parts = []
        for field, prefix in self._parts:
            value = record.get(field)
            text = value if type(value) is str else to_string(value)
            if "=" in text or "/" in text:
                text = _SANITISE.sub("_", text)
            parts.append(prefix + text)
        return self._delimiter.join(parts)

    def map(self, record: Any) -> Any:
        return _route(record, self.route(record))

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        route = self.route
        out = []
        for record in batch:
            entity = record if isinstance(record, DataEntity) else DataEntity.make(record)
            entity.get_metadata()[ROUTE] = route(record)
            out.append(entity)
        return out


class KeyRouterOptions(OpOptions):
    use: int | float | None = None
    from_: Literal["beginning", "end"] | None = Field(None, alias="from")
    case: Literal["preserve", "lower", "upper"] = "preserve"
    suffix_use: bool = False
    suffix_upper: str = ""
    suffix_lower: str = ""
    suffix_number: str = ""
    suffix_other: str = ""

    @field_validator("use", mode="before")
    @classmethod
    def _use(cls, value: Any) -> Any:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError('Parameter "use" must be a number')
        return value

    @field_validator("from_", mode="before")
    @classmethod
    def _from(cls, value: Any) -> Any:
        if value is not None and value not in ("beginning", "end"):
            raise ValueError('Parameter "from" must set to either "beginning" or "end"')
        return value

    @field_validator("suffix_use", mode="before")
    @classmethod
    def _suffix_use(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError('Parameter "suffix_use" must be a boolean')
        return value


class KeyRouter(MapProcessor):
    Options: ClassVar[type[OpOptions]] = KeyRouterOptions
    options: KeyRouterOptions

    @classmethod
    def validate_job(cls, options: OpOptions, index: int, job: Mapping[str, Any]) -> list[str]:
        assert isinstance(options, KeyRouterOptions)
        if (options.from_ is None) != (options.use is None):
            return ['Invalid parameters, if "from" or "use" are specified, they must be used together']
        if options.suffix_use and options.use is None:
            return [
                'Invalid parameters, if "suffix_use" is specified then "from" and "use" should be '
                "specified, they must be used together"
            ]
        if options.suffix_use and not any(
            (options.suffix_upper, options.suffix_lower, options.suffix_number, options.suffix_other)
        ):
            return [
                "Invalid parameters, suffix_use requires that at least one "
                "suffix_(upper/lower/other/number) value be specified"
            ]
        if options.use == 0:
            return ["KeyRouter requires that at least one character is selected, use must be greater than 0"]
        return []

    def map(self, record: Any) -> Any:
        opts = self.options
        key = js_string(get_key(record))
        if opts.use is not None:
            count = abs(int(opts.use))
            key = key[-count:] if opts.from_ == "end" else key[:count]
        if opts.suffix_use and opts.use == 1:
            if re.search("[A-Z]", key):
                key += opts.suffix_upper
            elif re.search("[a-z]", key):
                key += opts.suffix_lower
            elif re.search("[0-9]", key):
                key += opts.suffix_number
            else:
                key += opts.suffix_other
        if opts.case == "lower":
            key = key.lower()
        elif opts.case == "upper":
            key = key.upper()
        return _route(record, key)


class HashRouterOptions(OpOptions):
    partitions: Any = Field(None, validate_default=True)
    fields: list[str] | None = Field(default_factory=list)

    @field_validator("partitions", mode="before")
    @classmethod
    def _partitions(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(
                f"Parameter partitions is invalid, it must be a number, received {type_of(value)}"
            )
        if value <= 0:
            raise ValueError("Parameter partitions is invalid, it must be set to a number > 0")
        if not float(value).is_integer():
            raise ValueError(f'Expected partitions to be integer > 0, got "{js_text(value)}" (Number)')
        return int(value)

    @field_validator("fields", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        if value is None:
            return value
        if not isinstance(value, list):
            raise ValueError("Invalid `fields` option: must be an array.")
        if not all(isinstance(v, str) for v in value):
            raise ValueError("Invalid fields parameter, if specified it must be an array of strings")
        return value


class HashRouter(MapProcessor):
    Options: ClassVar[type[OpOptions]] = HashRouterOptions
    options: HashRouterOptions

    def _text(self, record: Any) -> str:
        fields = self.options.fields
        return "".join(to_string(record.get(f)) for f in fields) if fields else js_string(get_key(record))

    def map(self, record: Any) -> Any:
        return _route(record, str(fnv1a(self._text(record)) % self.options.partitions))

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        # map() for the whole slice: the texts first (a record without a key fails the slice
        # as before), then one batched FNV-1a over them.
        text = self._text
        hashes = fnv1a_many([text(record) for record in batch])
        partitions = self.options.partitions
        out = []
        for record, value in zip(batch, hashes, strict=True):
            entity = record if isinstance(record, DataEntity) else DataEntity.make(record)
            entity.get_metadata()[ROUTE] = str(value % partitions)
            out.append(entity)
        return out


DELIMITERS = ("-", "_", ".", "/", "")
WEEK_MS = 7 * 86_400_000


def _delimiter(value: Any) -> Any:
    if value not in DELIMITERS:
        raise ValueError(f"Delimiter must be one of {','.join(DELIMITERS)}, value was {js_text(value)}")
    return value


Delimiter = Annotated[str, BeforeValidator(_delimiter)]


class DateRouterOptions(OpOptions):
    field: RequiredString = Field(None, validate_default=True)  # type: ignore[assignment]
    use_clock_time: bool = False
    resolution: Literal["hourly", "daily", "monthly", "yearly", "weekly", "weekly_epoch"] = "daily"
    date_delimiter: Delimiter = "."
    date_unit_delimiter: Delimiter = "_"
    include_date_units: bool = False


class DateRouter(MapProcessor):
    Options: ClassVar[type[OpOptions]] = DateRouterOptions
    options: DateRouterOptions

    def route(self, ms: int) -> str:
        opts = self.options
        moment = datetime.fromtimestamp(ms / 1000, UTC)
        year, month, day, hour = (
            f"{moment.year:04d}",
            f"{moment.month:02d}",
            f"{moment.day:02d}",
            f"{moment.hour:02d}",
        )
        parts: list[tuple[str, str]]
        if opts.resolution == "yearly":
            parts = [("year", year)]
        elif opts.resolution == "monthly":
            parts = [("year", year), ("month", month)]
        elif opts.resolution == "daily":
            parts = [("year", year), ("month", month), ("day", day)]
        elif opts.resolution == "hourly":
            parts = [("year", year), ("month", month), ("day", day), ("hour", hour)]
        elif opts.resolution == "weekly":
            start = int(datetime(moment.year, 1, 1, tzinfo=UTC).timestamp() * 1000)
            parts = [("year", year), ("week", f"{(ms - start) // WEEK_MS:02d}")]
        else:
            parts = [("week", str(ms // WEEK_MS))]
        if opts.include_date_units:
            return opts.date_delimiter.join(f"{u}{opts.date_unit_delimiter}{v}" for u, v in parts)
        return opts.date_delimiter.join(v for _u, v in parts)

    def _one(self, record: Any) -> Any:
        if self.options.use_clock_time:
            ms: int | None = int(time.time() * 1000)
        else:
            value = record.get(self.options.field)
            ms = valid_date_ms(value)
            if ms is None:
                raise ValueError(f"Could not convert value {js_text(value)} to a date")
        return _route(record, self.route(ms))

    def map(self, record: Any) -> Any:
        return self.dead_letter.try_record(self._one, record)


class DebugRoutesOptions(OpOptions):
    """No options."""


_IDENT = re.compile(r"^[A-Za-z_$][\w$]*$")


def inspect_counts(counts: Mapping[str, int]) -> str:
    """Node's ``util.inspect`` of ``{route: count}`` (``{ a: 3, '<unknown>': 1 }``)."""
    if not counts:
        return "{}"
    items = []
    for key in object_key_order(list(counts)):
        shown = key if _IDENT.match(key) else "'" + key.replace("\\", "\\\\").replace("'", "\\'") + "'"
        items.append(f"{shown}: {counts[key]}")
    return "{ " + ", ".join(items) + " }"


class DebugRoutes(BatchProcessor):
    Options: ClassVar[type[OpOptions]] = DebugRoutesOptions

    def on_batch(self, batch: list[Any]) -> list[Any]:
        counts: dict[str, int] = {}
        for record in batch:
            route = record.get_metadata(ROUTE) if isinstance(record, DataEntity) else None
            name = "<unknown>" if route is None else js_string(route)
            counts[name] = counts.get(name, 0) + 1
        sys.stdout.write(inspect_counts(counts) + "\n")
        sys.stdout.flush()
        return batch

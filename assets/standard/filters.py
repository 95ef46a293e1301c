"""Filter processors: filter, filter_by_required_fields, filter_by_unknown_fields, filter_by_date."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, field_validator

from teraslice_k8s.runtime.operations.base import OpOptions

from ._lib import (
    MISSING,
    FilterProcessor,
    compile_js_regex,
    js_string,
    js_text,
    path_get,
    required_string,
    valid_date_ms,
)
from .validators import VALIDATORS

RequiredString = Annotated[str, BeforeValidator(required_string)]


def _fields(value: Any) -> str | list[str]:
    if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        return value
    raise ValueError(f"Field must be a string or array of strings, received {js_text(value)}")


def _exception_rules(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError(f"exception must be an array of objects, got {js_text(value)}")
    for rule in value:
        if not (
            isinstance(rule, Mapping) and isinstance(rule.get("field"), str) and rule.get("value") is not None
        ):
            raise ValueError(
                'exception properties must be either "field" with a string value or "value" '
                f"with a non-null value, got {js_text(rule)}"
            )
    return value


class FilterOptions(OpOptions):
    field: Annotated[str | list[str], BeforeValidator(_fields)] = Field(None, validate_default=True)  # type: ignore[assignment]
    value: Any = None
    invert: bool = False
    array_index: int | float = -1
    filter_by: Any = "match"
    validation_function: str | None = None
    validation_function_args: Any = None
    filtered_to_dead_letter_queue: Any = False
    exception_rules: Annotated[Any, BeforeValidator(_exception_rules)] = None

    @field_validator("filter_by", mode="before")
    @classmethod
    def _filter_by(cls, value: Any) -> Any:
        if value not in ("match", "regex", "ip_range", "validator", "size"):
            raise ValueError("type must be match, regex, ip_range, validator, or size")
        return value

    @field_validator("validation_function", mode="before")
    @classmethod
    def _validator(cls, value: Any) -> Any:
        if value is not None and value not in VALIDATORS:
            raise ValueError(
                f'Parameter validation_function was set to "{js_text(value)}", '
                "must be a valid FieldValidator function"
            )
        return value

    @field_validator("filtered_to_dead_letter_queue", mode="before")
    @classmethod
    def _dlq(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError('Paramter "drop_to_dlq" should be a boolean')
        return value


def estimate_size(value: Any) -> int:
    """Teraslice's byte estimate of a value (strings 2 bytes a character, numbers 8, ...)."""
    if value is None or value is MISSING:
        return 0
    if isinstance(value, bool):
        return 4
    if isinstance(value, int | float):
        return 8
    if isinstance(value, str):
        return len(value.encode("utf-16-le"))  # 2 bytes per UTF-16 code unit
    if isinstance(value, Mapping):
        return sum(estimate_size(str(k)) + estimate_size(v) for k, v in value.items())
    if isinstance(value, list):
        return sum(estimate_size(str(i)) + estimate_size(v) for i, v in enumerate(value))
    return 0


def _in_ip_range(value: Any, cidr: Any) -> bool:
    try:
        return ipaddress.ip_address(str(value)) in ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False


class Filter(FilterProcessor):
    """Drops the records whose value meets the criterion (keeps them with ``invert``)."""

    Options: ClassVar[type[OpOptions]] = FilterOptions
    options: FilterOptions

    async def initialize(self) -> None:
        opts = self.options
        candidates = opts.value if isinstance(opts.value, list) else [opts.value]
        self._rules: list[tuple[str, Any, re.Pattern[str] | None]] = []
        for rule in opts.exception_rules or []:
            pattern = compile_js_regex(str(rule["value"])) if rule.get("regex") else None
            self._rules.append((rule["field"], rule["value"], pattern))
        test: Callable[[Any], bool]
        if opts.filter_by == "regex":
            patterns = []
            for candidate in candidates:
                try:
                    patterns.append(compile_js_regex(js_string(candidate)))
                except re.error as err:
                    raise ValueError(f"could not convert {js_text(candidate)} to regex, {err}") from err

            def test(value: Any) -> bool:
                text = "undefined" if value is MISSING else js_string(value)
                return any(p.search(text) for p in patterns)

        elif opts.filter_by == "ip_range":

            def test(value: Any) -> bool:
                return any(_in_ip_range(value, c) for c in candidates)

        elif opts.filter_by == "validator":
            validator = VALIDATORS[opts.validation_function or ""] if opts.validation_function else None
            args = opts.validation_function_args

            def test(value: Any) -> bool:
                if validator is None:
                    return False
                return bool(validator(None if value is MISSING else value, args))

        elif opts.filter_by == "size":

            def test(value: Any) -> bool:
                return any(estimate_size(value) > c for c in candidates if isinstance(c, int | float))

        else:

            def test(value: Any) -> bool:
                return any(_strict_equal(value, c) for c in candidates)

        self._test = test

    def _value(self, record: Any) -> Any:
        opts = self.options
        if isinstance(opts.field, list):
            return [path_get(record, f) for f in opts.field]
        if opts.filter_by == "size":
            return record if opts.field == "doc" else record.get(opts.field, MISSING)
        if opts.array_index > -1:
            found = record.get(opts.field)
            index = int(opts.array_index)
            return found[index] if isinstance(found, list) and index < len(found) else MISSING
        return path_get(record, opts.field)

    def _excepted(self, record: Any) -> bool:
        for name, expected, pattern in self._rules:
            value = record.get(name)
            if value is None:
                continue
            if pattern is not None and pattern.search(js_string(value)):
                return True
            if pattern is None and _strict_equal(value, expected):
                return True
        return False

    def filter(self, record: Any) -> bool:
        if self._rules and self._excepted(record):
            return True
        value = self._value(record)
        if isinstance(self.options.field, list):
            matched = any(self._test(v) for v in value)
        else:
            matched = self._test(value)
        keep = matched if self.options.invert else not matched
        if not keep and self.options.filtered_to_dead_letter_queue:
            self.dead_letter.reject(record, ValueError("Record was rejected"))
        return keep


def _strict_equal(a: Any, b: Any) -> bool:
    """JavaScript ``===`` for JSON values (objects and arrays only by identity)."""
    if a is MISSING or b is MISSING:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return a is b
    return type(a) is type(b) and a == b


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError('Parameter "required_fields" must be an array of strings')
    if not value or not all(isinstance(v, str) for v in value):
        raise ValueError('Parameter "required_fields" cannot be empty and must have all string values')
    return value


StringList = Annotated[list[str], BeforeValidator(_string_list)]


class FilterByRequiredFieldsOptions(OpOptions):
    required_fields: StringList = Field(default_factory=list, validate_default=True)
    filter_type: Any = "AND"
    invert: bool = False

    @field_validator("filter_type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError('Parameter "filter_type" must be a string')
        if value.lower() not in ("and", "or"):
            raise ValueError('value must be "OR" or "AND"')
        return value


class FilterByRequiredFields(FilterProcessor):
    Options: ClassVar[type[OpOptions]] = FilterByRequiredFieldsOptions
    options: FilterByRequiredFieldsOptions

    def filter(self, record: Any) -> bool:
        present = (record.get(f) is not None for f in self.options.required_fields)
        # Only a lowercase "or" selects OR (Teraslice's code; "OR" passes validation but is AND).
        ok = any(present) if self.options.filter_type == "or" else all(present)
        return not ok if self.options.invert else ok


class FilterByUnknownFieldsOptions(OpOptions):
    known_fields: StringList = Field(default_factory=list, validate_default=True)
    invert: bool = False


class FilterByUnknownFields(FilterProcessor):
    Options: ClassVar[type[OpOptions]] = FilterByUnknownFieldsOptions
    options: FilterByUnknownFieldsOptions

    async def initialize(self) -> None:
        self._known = set(self.options.known_fields)

    def filter(self, record: Any) -> bool:
        unknown = any(k not in self._known for k in record)
        return unknown if self.options.invert else not unknown


_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_DURATION_MS = {
    "": 1, "ms": 1, "msec": 1, "msecs": 1, "millisecond": 1, "milliseconds": 1,
    "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "h": 3_600_000, "hr": 3_600_000, "hrs": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
    "d": 86_400_000, "day": 86_400_000, "days": 86_400_000,
    "w": 604_800_000, "week": 604_800_000, "weeks": 604_800_000,
    "y": 31_557_600_000, "yr": 31_557_600_000, "yrs": 31_557_600_000, "year": 31_557_600_000,
    "years": 31_557_600_000,
}  # fmt: skip


def duration_ms(text: str) -> float | None:
    """The ``ms`` library's parse (``2week``, ``1000Y``; a year is 365.25 days)."""
    match = _DURATION.match(text)
    if not match or match.group(2).lower() not in _DURATION_MS:
        return None
    return float(match.group(1)) * _DURATION_MS[match.group(2).lower()]


def _limit(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("Limits must be a string")
    if valid_date_ms(value, date_math=False) is None and duration_ms(value) is None:
        raise ValueError(f"Invalid date like value, got {value}")
    return value


Limit = Annotated[str, BeforeValidator(_limit)]


class FilterByDateOptions(OpOptions):
    date_field: RequiredString = "date"
    limit_past: Limit = "1week"
    limit_future: Limit = "1day"


class FilterByDate(FilterProcessor):
    """Keeps records whose ``date_field`` lies in [now - limit_past, now + limit_future]."""

    Options: ClassVar[type[OpOptions]] = FilterByDateOptions
    options: FilterByDateOptions

    async def initialize(self) -> None:
        self._past = self._guard(self.options.limit_past, -1)
        self._future = self._guard(self.options.limit_future, 1)

    @staticmethod
    def _guard(limit: str, sign: Literal[-1, 1]) -> Callable[[float], float]:
        fixed = valid_date_ms(limit, date_math=False)
        if fixed is not None:  # an ISO 8601 date: a fixed guard
            return lambda _now: float(fixed)
        span = duration_ms(limit) or 0.0
        return lambda now: now + sign * span

    def filter(self, record: Any) -> bool:
        value = record.get(self.options.date_field)
        if isinstance(value, str) and value.strip().lower() == "false":
            return False
        at = valid_date_ms(value, date_math=False)
        if at is None:
            return False
        now = time.time() * 1000
        return self._past(now) <= at <= self._future(now)

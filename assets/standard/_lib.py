"""Shared pieces of the standard asset: processor kinds (map / filter / batch, as Teraslice's
job-components run them), option checks with Teraslice's messages, and the JavaScript value
rules the operations depend on (lodash paths, ``String()``, core-utils ``toString``, dates,
``Map`` identity, object key order)."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from teraslice_k8s.runtime.data_entity import DataEntity, DataWindow, is_data_window, type_of
from teraslice_k8s.runtime.dead_letter import DeadLetter
from teraslice_k8s.runtime.operations.base import Batch, Processor, SliceRequest

REQUIRED_STRING = "This field is required and must be of type string"
MISSING = object()

# -- processor kinds ----------------------------------------------------------------------


class StandardProcessor(Processor):
    """A processor of this asset: dead-letter handling and the shutdown-flush flag."""

    flushing = False

    @property
    def dead_letter(self) -> DeadLetter:
        dead: DeadLetter | None = self.__dict__.get("_dead_letter")
        if dead is None:
            dead = self.__dict__["_dead_letter"] = DeadLetter(self)
        return dead

    async def on_flush_start(self) -> None:
        self.flushing = True

    async def on_flush_end(self) -> None:
        self.flushing = False

    async def shutdown(self) -> None:
        dead = self.__dict__.get("_dead_letter")
        if dead is not None:
            dead.shutdown()


class MapProcessor(StandardProcessor):
    """``map(record)`` per record, in order; a None result becomes an empty record ``{}``."""

    def map(self, record: Any) -> Any:
        raise NotImplementedError

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        fn = self.map
        out = [fn(r) for r in batch]
        return [DataEntity() if r is None else r for r in out]


class FilterProcessor(StandardProcessor):
    """Keeps the records ``filter(record)`` is true for, in order."""

    def filter(self, record: Any) -> bool:
        raise NotImplementedError

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        fn = self.filter
        return [r for r in batch if fn(r)]


class BatchProcessor(StandardProcessor):
    """``on_batch(records)`` returns the next batch."""

    def on_batch(self, batch: list[Any]) -> list[Any]:
        raise NotImplementedError

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        return self.on_batch(batch)


def each_record(record: Any, fn: Callable[[Any], Any]) -> Any:
    """Apply ``fn`` to a record, or to every record of a DataWindow (returned as is)."""
    if isinstance(record, DataWindow):
        inner = record.as_array()
        inner[:] = [fn(r) for r in inner]
        return record
    return fn(record)


def windows_first(batch: list[Any]) -> bool:
    return bool(batch) and is_data_window(batch[0])


# -- option checks (raise ValueError with Teraslice's message) -----------------------------


def required_string(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(REQUIRED_STRING)
    return value


def optional_string(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError("This field is optional but if specified it must be of type string")


def js_text(value: Any) -> str:
    """How a JavaScript template literal shows a value (``${v}``)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return js_string(value)


# -- JavaScript value rules -----------------------------------------------------------------


def number_text(value: float) -> str:
    """JavaScript ``String(number)``."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}e{'+' if not exp.startswith('-') else '-'}{exp.lstrip('+-').lstrip('0') or '0'}"
    return text


def js_string(value: Any) -> str:
    """JavaScript ``String(value)`` (arrays joined with ``,``, objects ``[object Object]``)."""
    if value is None:
        return "null"
    if value is MISSING:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number_text(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ",".join("" if v is None or v is MISSING else js_string(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, datetime):
        return value.isoformat()
    return "[object Object]"


def to_string(value: Any) -> str:
    """core-utils ``toString``: null/undefined ``""``, arrays element-wise joined with ``,``,
    dates ISO, other objects JSON."""
    if value is None or value is MISSING:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return js_string(value)
    if isinstance(value, list | tuple):
        return ",".join(to_string(v) for v in value)
    if isinstance(value, datetime):
        return iso_ms(int(value.timestamp() * 1000))
    return json_text(value)


def json_text(value: Any) -> str:
    """``JSON.stringify`` (no spaces; integral floats as integers)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, Mapping):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), separators=(",", ":"), ensure_ascii=False, default=str)


_PATH_PART = re.compile(r"[^.\[\]]+")


@functools.lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(_PATH_PART.findall(path))


def path_get(record: Any, path: str, default: Any = MISSING) -> Any:
    """lodash ``get``: a literal key ``a.b`` wins, else ``a.b.c`` / ``a[0].b``."""
    if isinstance(record, Mapping) and path in record:
        return record[path]
    parts = _parts(path)
    if len(parts) == 1 and parts[0] == path:
        return default
    current = record
    for part in parts:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return default
    return current


def path_has(record: Any, path: str) -> bool:
    return path_get(record, path) is not MISSING


def path_set(record: Any, path: str, value: Any) -> None:
    """lodash ``set``: creates intermediate objects."""
    if path in record or ("." not in path and "[" not in path):
        record[path] = value
        return
    parts = _parts(path)
    current = record
    for part in parts[:-1]:
        nxt = current.get(part) if isinstance(current, Mapping) else None
        if not isinstance(nxt, dict | list):
            nxt = {}
            current[part] = nxt
        current = nxt
    last = parts[-1]
    if isinstance(current, list) and last.isdigit():
        index = int(last)
        current.extend([None] * (index + 1 - len(current)))
        current[index] = value
    else:
        current[last] = value


class _Identity:
    """A ``Map`` key for an object: JavaScript compares objects by identity."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj


_NAN = ("NaN",)


def map_key(value: Any) -> Any:
    """A dict key with JavaScript ``Map`` identity: ``1`` ≠ ``"1"``, ``true`` ≠ ``1``,
    ``NaN`` = ``NaN``, objects and arrays by identity."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float):
        if math.isnan(value):
            return _NAN
        if value.is_integer():
            return int(value)
        return value
    if isinstance(value, dict | list | bytes | bytearray):
        return _Identity(value)
    return value


_INDEX_KEY = re.compile(r"(0|[1-9][0-9]*)\Z")


def object_key_order(keys: list[str]) -> list[str]:
    """JavaScript object key order: array-index keys ascending, then the rest as inserted."""
    index: list[str] = []
    rest: list[str] = []
    match = _INDEX_KEY.match
    for key in keys:
        # Only keys starting with an ASCII digit can be array indexes: skip the regex for others.
        if key and "0" <= key[0] <= "9" and match(key) and int(key) < 2**32 - 1:
            index.append(key)
        else:
            rest.append(key)
    index.sort(key=int)
    return index + rest


# -- dates ------------------------------------------------------------------------------------

MAX_MS = 8.64e15
_DATE_MATH = re.compile(r"^(?P<anchor>now|.+?\|\|)(?P<ops>([+-]\d+[yMwdhHms])*)(/[yMwdhHms])?$")
_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "H": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def iso_ms(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_date_string(text: str) -> int | None:
    value = text.strip()
    if not value:
        return None
    candidates = [value, value.replace("/", "-")]
    for candidate in candidates:
        iso = candidate.replace("Z", "+00:00").replace("z", "+00:00")
        if " " in iso and "T" not in iso and re.match(r"\d{4}-\d\d-\d\d \d", iso):
            iso = iso.replace(" ", "T", 1)
        try:
            parsed = datetime.fromisoformat(iso)
        except ValueError:
            continue
        if parsed.tzinfo is None:
            # JavaScript reads a date-only ISO string as UTC and a date-time one as local
            # time; containers run in UTC, so both are UTC here.
            parsed = parsed.replace(tzinfo=UTC)
        return int(parsed.timestamp() * 1000)
    return None


def _date_math(text: str) -> int | None:
    match = _DATE_MATH.match(text.strip().replace("NOW", "now").replace("Now", "now"))
    if not match:
        return None
    anchor = match.group("anchor")
    if anchor == "now":
        base = int(datetime.now(UTC).timestamp() * 1000)
    else:
        parsed = _parse_date_string(anchor[:-2])
        if parsed is None:
            return None
        base = parsed
    for sign, amount, unit in re.findall(r"([+-])(\d+)([yMwdhHms])", match.group("ops")):
        if unit == "y":
            delta = int(amount) * 365 * 86_400_000
        elif unit == "M":
            delta = int(amount) * 30 * 86_400_000
        else:
            delta = int(amount) * _UNITS[unit]
        base += delta if sign == "+" else -delta
    return base


def valid_date_ms(value: Any, date_math: bool = True) -> int | None:
    """core-utils ``getValidDate`` as epoch ms, or None: integer numbers are epoch ms, strings
    ISO 8601 (``/`` for ``-`` too) or, with ``date_math``, ``now-1h`` / ``<date>||+2d``."""
    if value is None or value is MISSING or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if isinstance(value, float) and not value.is_integer():
            return None
        return int(value) if abs(value) <= MAX_MS else None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
        return valid_date_ms(value[0], date_math)
    if isinstance(value, str):
        parsed = _parse_date_string(value)
        if parsed is None and date_math:
            parsed = _date_math(value)
        if parsed is not None and abs(parsed) <= MAX_MS:
            return parsed
    return None


def get_time(value: Any) -> int | bool:
    """The asset's ``getTime``: epoch ms or False."""
    found = valid_date_ms(value)
    return False if found is None else found


def compile_js_regex(text: str) -> re.Pattern[str]:
    """``/pattern/flags`` (or a bare pattern) as a Python regex (``i``, ``m``, ``s`` map;
    ``g``, ``u``, ``y``, ``d`` change nothing for a single test)."""
    flags = 0
    pattern = text
    if len(text) >= 2 and text.startswith("/") and text.rfind("/") > 0:
        end = text.rfind("/")
        pattern, suffix = text[1:end], text[end + 1 :]
        for flag in suffix:
            flags |= {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}.get(flag, 0)
    return re.compile(pattern, flags)


__all__ = ["DataEntity", "DataWindow", "type_of"]

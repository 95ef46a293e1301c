"""The data-mate ``FieldValidator`` functions ``filter`` (``validation_function``) and
``drop_field_conditional`` (``validation_method``) can name: a subset, each called as
``fn(value, args)`` and returning a boolean. A name outside this table is refused at submit."""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and not math.isnan(value)


def _in_range(value: Any, args: Any) -> bool:
    if not _number(value) or not isinstance(args, Mapping):
        return False
    low = args.get("min", float("-inf"))
    high = args.get("max", float("inf"))
    if args.get("inclusive"):
        return bool(low <= value <= high)
    return bool(low < value < high)


def _ip(version: int | None) -> Callable[[Any, Any], bool]:
    def check(value: Any, _args: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            found = ipaddress.ip_address(value)
        except ValueError:
            return False
        return version is None or found.version == version

    return check


def _uuid(value: Any, _args: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^(https?|ftp)://[^\s/$.?#].[^\s]*$", re.IGNORECASE)
_ISO = re.compile(r"^\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?)?$")

VALIDATORS: dict[str, Callable[[Any, Any], bool]] = {
    "isNumber": lambda v, _a: _number(v),
    "isInteger": lambda v, _a: _number(v) and float(v).is_integer(),
    "inNumberRange": _in_range,
    "isString": lambda v, _a: isinstance(v, str),
    "isBoolean": lambda v, _a: isinstance(v, bool),
    "isBooleanLike": lambda v, _a: v in (True, False, "true", "false", "yes", "no", 1, 0, "1", "0", None),
    "isArray": lambda v, _a: isinstance(v, list),
    "isEmpty": lambda v, _a: v is None or (isinstance(v, str | list | dict) and len(v) == 0),
    "exists": lambda v, _a: v is not None,
    "isEmail": lambda v, _a: isinstance(v, str) and bool(_EMAIL.match(v)),
    "isURL": lambda v, _a: isinstance(v, str) and bool(_URL.match(v)),
    "isIP": _ip(None),
    "isIPv4": _ip(4),
    "isIPv6": _ip(6),
    "isUUID": _uuid,
    "isISO8601": lambda v, _a: isinstance(v, str) and bool(_ISO.match(v)),
    "isAlpha": lambda v, _a: isinstance(v, str) and v.isascii() and v.isalpha(),
    "isAlphanumeric": lambda v, _a: isinstance(v, str) and v.isascii() and v.isalnum(),
    "contains": lambda v, a: isinstance(v, str) and isinstance(a, Mapping) and str(a.get("value")) in v,
    "equals": lambda v, a: isinstance(a, Mapping) and v == a.get("value"),
}

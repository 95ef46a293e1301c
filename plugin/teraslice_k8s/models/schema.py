"""Shared field types and error wording for the config and job models.

Both models are pydantic v2 models in strict mode (no silent ``"true"`` -> ``True`` or
``1.0`` -> ``1`` coercion). This module turns pydantic's errors into :class:`Problem`s
whose message is one of a small fixed vocabulary (``must be a boolean``, ``must be one of
a, b``...) and whose path uses :func:`join_path` (``teraslice.execution_controller_targets[0].key``),
so every layer reports input errors the same way.

Durations follow Teraslice/convict: an integer number of milliseconds or a string such as
``"1 minute"``, ``"30 seconds"``, ``"500ms"`` or ``"5000"``; they are normalised to int ms.
Byte sizes (:func:`parse_byte_size`) follow express's ``bytes`` units: ``"100mb"``, ``"512kb"``
or a positive number of bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from teraslice_k8s.errors import Problem, join_path

_DURATION_UNITS_MS = {
    "ms": 1,
    "millisecond": 1,
    "s": 1000,
    "sec": 1000,
    "second": 1000,
    "m": 60_000,
    "min": 60_000,
    "minute": 60_000,
    "h": 3_600_000,
    "hr": 3_600_000,
    "hour": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "w": 604_800_000,
    "week": 604_800_000,
}
_DURATION_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*\Z")
_DURATION_MESSAGE = 'must be a duration: milliseconds or a string like "1 minute"'


def parse_duration(value: Any) -> int:
    """Return ``value`` as integer milliseconds or raise ``ValueError`` with the rule.

    The one duration parser (job and config fields, operation options, connector timeouts):
    a non-negative number of milliseconds (floats rounded), or ``"<n> <unit>"`` with units
    ms, s/sec/second, m/min/minute, h/hr/hour, d/day, w/week, each also plural
    (``"30s"``, ``"5 minutes"``, ``"1.5 h"``). The error is a ``PydanticCustomError`` (a
    ``ValueError``), so pydantic validators report it under the field's path.
    """
    if isinstance(value, bool):
        raise PydanticCustomError("duration", _DURATION_MESSAGE)
    if isinstance(value, int):
        if value < 0:
            raise PydanticCustomError("duration", _DURATION_MESSAGE)
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 0:
        return math.floor(value + 0.5)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            number, unit = float(match.group(1)), match.group(2).lower()
            if unit not in _DURATION_UNITS_MS and unit.endswith("s") and unit[:-1] in _DURATION_UNITS_MS:
                unit = unit[:-1]
            factor = _DURATION_UNITS_MS.get(unit or "ms")
            if factor is not None:
                return math.floor(number * factor + 0.5)
    raise PydanticCustomError("duration", _DURATION_MESSAGE)


def _require_number(value: Any) -> Any:
    # bool is an int subclass; a boolean where a number belongs is always a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number_type", "must be a number")
    return value


#: Milliseconds, accepting Teraslice duration strings.
Duration = Annotated[int, BeforeValidator(parse_duration)]
#: A JSON number (int stays int so manifests print ``1`` not ``1.0``); booleans refused.
Number = Annotated[int | float, BeforeValidator(_require_number)]

_BYTE_UNITS = {"": 1, "b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def parse_byte_size(value: int | str) -> int:
    """``"100mb"``/``"512kb"``/``1048576`` -> bytes (the ``bytes`` package's units, as express)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*", str(value).lower())
    if isinstance(value, bool) or not match or float(match.group(1)) <= 0:
        raise ValueError('must be a positive size such as "100mb", "512kb" or a number of bytes')
    return int(float(match.group(1)) * _BYTE_UNITS[match.group(2)])


_TYPE_MESSAGES = {
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "list_type": "must be an array",
    "tuple_type": "must be an array",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "missing": "is required",
    "extra_forbidden": "is not allowed",
}


def _literal_choices(expected: str) -> str:
    # pydantic writes "'a', 'b' or 'c'"; we write "a, b, c".
    parts = re.split(r", | or ", expected)
    return ", ".join(p.strip().strip("'\"") for p in parts)


def _bound(value: Any) -> Any:
    # A float field's integral bound prints as JavaScript would (86400, not 86400.0).
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "literal_error":
        return f"must be one of {_literal_choices(str(ctx.get('expected', '')))}"
    if kind == "greater_than_equal":
        return f"must be >= {_bound(ctx['ge'])}"
    if kind == "greater_than":
        return f"must be > {_bound(ctx['gt'])}"
    if kind == "less_than_equal":
        return f"must be <= {_bound(ctx['le'])}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_short":
        return f"must have at least {ctx['min_length']} items"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"]


_UNION_MEMBERS = frozenset({"int", "float", "str", "list", "dict", "bool", "none"})


def _path(prefix: str, loc: Iterable[int | str]) -> str:
    path = prefix
    for part in loc:
        # Union members appear in loc as type names (``int``, ``function-before[...]``);
        # they are not part of the document path.
        if isinstance(part, str) and ("[" in part or "<" in part or part in _UNION_MEMBERS):
            continue
        path = join_path(path, part)
    return path


def problems_from_pydantic(error: PydanticValidationError, prefix: str = "") -> list[Problem]:
    """Convert pydantic's errors to problems, one per field, in document order.

    A union (``number | object``) that fails yields one error per member; only the first
    message per path is kept so users read one rule, not pydantic's attempt log.
    """
    seen: dict[str, Problem] = {}
    for item in error.errors(include_url=False):
        path = _path(prefix, item["loc"])
        if path not in seen:
            seen[path] = Problem(path, _message(item))
    return list(seen.values())


# --- Kubernetes name rules (apimachinery/pkg/util/validation), shared by models and names ---

_LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_DNS_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_1035_RE = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?\Z")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_PORT_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")


def is_label_value(value: str) -> bool:
    """Label value: empty, or <= 63 of ``[-A-Za-z0-9_.]`` starting and ending alphanumeric."""
    return len(value) <= 63 and bool(_LABEL_VALUE_RE.match(value))


def is_dns_label(value: str) -> bool:
    """RFC 1123 label (container, volume, port-less object names): <= 63, ``[a-z0-9-]``."""
    return len(value) <= 63 and bool(_DNS_LABEL_RE.match(value))


def is_dns_1035_label(value: str) -> bool:
    """RFC 1035 label (Service names): an RFC 1123 label that starts with a letter."""
    return len(value) <= 63 and bool(_DNS_1035_RE.match(value))


def is_dns_subdomain(value: str) -> bool:
    """RFC 1123 subdomain (PVC, Secret, ConfigMap names): <= 253, dot-separated labels."""
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN_RE.match(value))


def is_qualified_name(value: str) -> bool:
    """Label key / toleration key: ``[prefix/]name``, prefix a subdomain, name a non-empty label value."""
    prefix, _, name = value.rpartition("/")
    if "/" in value and not (prefix and is_dns_subdomain(prefix)):
        return False
    return bool(name) and is_label_value(name)


def is_port_name(value: str) -> bool:
    """IANA_SVC_NAME: <= 15 of ``[a-z0-9-]``, a letter somewhere, no ``--``, no edge ``-``."""
    return (
        len(value) <= 15
        and bool(_PORT_NAME_RE.match(value))
        and "--" not in value
        and any(c.isalpha() for c in value)
    )


class ConfigSection(BaseModel):
    """A section of the cluster config: strict types, frozen, unknown keys kept
    (``model_extra``), as Teraslice passes them through."""

    model_config = ConfigDict(strict=True, frozen=True, extra="allow")

"""JSON text for manifests and the ``EX`` payload, fast (orjson) and exact.

- :func:`quote`: a value's JSON text; the render module's ONE template filter. Non-ASCII
  stays as UTF-8 characters (JSON allows it; nothing is lost, NEL included).
- :func:`parse`: JSON text back to Python values (the render module's post-render parse).
- :func:`js_pretty_json_bytes`: ``JSON.stringify(value, null, 4)`` (UTF-8), the master API's
  response bodies (Express's ``json spaces: 4``).
- :func:`js_json_bytes`: what JavaScript's ``JSON.stringify`` would produce (UTF-8), used
  for ``EX`` so controllers and workers receive the execution exactly as Teraslice encodes
  it: integral floats print without ``.0`` (``5`` not ``5.0``), large ones without an
  exponent below 1e21, 1e-6 <= |x| < 1e-5 in decimal notation, NaN/Infinity as ``null``,
  lone surrogates escaped.

orjson is 5-15x faster than the standard library here, which is what lets a master render
thousands of executions per second. Values orjson refuses go through a slower walk that keeps
the same rules: integers beyond 64 bits print exactly (JavaScript cannot hold them at all;
this loses nothing), strings with lone surrogates escape only those, non-string keys become
strings; only what even that cannot encode (nesting deeper than orjson's 254 levels, a lone
surrogate in a key) falls back to :mod:`json` with every non-ASCII character escaped.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from jinja2 import Undefined

_dumps = orjson.dumps


def _unencodable(value: Any) -> Any:
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing variable
    raise TypeError(f"{type(value).__name__} cannot enter a manifest")


def quote(value: Any) -> str:
    """The JSON text of ``value`` (raises ``TypeError`` for non-JSON values)."""
    try:
        return _dumps(value).decode()  # the common case: no ``default`` hook to set up
    except orjson.JSONEncodeError:
        pass
    try:
        return _dumps(value, default=_unencodable).decode()
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, TypeError) and "cannot enter a manifest" in str(exc.__cause__):
            raise exc.__cause__ from None
        return json.dumps(value, separators=(",", ":"), default=_unencodable)


def parse(text: str) -> Any:
    """Parse JSON text (raises ``ValueError`` on invalid JSON)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # e.g. lone surrogate escapes, which orjson refuses


def js_number(value: int | float) -> int | float | None:
    """A number as ``JSON.stringify`` prints it: integral floats lose ``.0``; NaN/Infinity -> null."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer() and abs(value) < 1e21:
            # Below 2**53 every integer is exact. Above, JavaScript prints the shortest digits
            # that round-trip, padded with zeros (1.7982254339115437e+20 -> 179822543391154370000),
            # not the float's exact binary value (179822543391154372608).
            return int(value) if abs(value) < 2**53 else int(Decimal(repr(value)))
    return value


# Every float orjson writes differently from JS is integral ("5.0", "1000000000000000.0"), at
# least 1e16 ("1e+16") or in [1e-6, 1e-5) ("1e-6", "9.5e-6"). So a text without ".0", "+" and
# "e-6" needs no fix; the single-byte tests are memchr-fast, and a false alarm (a string such
# as "v1.0") only costs the exact walk below.
def _maybe_js_differs(data: bytes) -> bool:
    return (b"." in data and b".0" in data) or b"+" in data or b"e-6" in data


def _differs_from_js(value: float) -> bool:
    # orjson writes integral floats as "5.0" and 1e16.. as "1e+16" (JS: "5", digits below
    # 1e21), and 1e-6 <= |x| < 1e-5 as "1e-6" (JS: "0.000001").
    return value.is_integer() or not math.isfinite(value) or 1e-6 <= abs(value) < 1e-5


def _needs_js_fix(value: Any) -> bool:
    """Whether orjson's text of ``value`` could differ from JSON.stringify's (exact)."""
    stack = [value]
    while stack:  # iterative, exact type checks: this runs for every execution record
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is float:
            if _differs_from_js(item):
                return True
        elif kind is not str and kind is not int and kind is not bool and item is not None:
            return True  # subclasses and other types: let the exact path decide
    return False


_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _js_value(value: Any) -> Any:
    """``value`` with every part orjson would write unlike ``JSON.stringify`` (or refuse) as
    an :class:`orjson.Fragment` of the right text."""
    if isinstance(value, float) and _differs_from_js(value):
        if 1e-6 <= abs(value) < 1e-5:  # JS: plain decimal notation
            return orjson.Fragment(format(Decimal(repr(value)), "f").encode("ascii"))
        number = js_number(value)
        if isinstance(number, float):  # >= 1e21: orjson and JS both write "1e+21"
            return number
        return orjson.Fragment(b"null" if number is None else str(number).encode("ascii"))
    if isinstance(value, Mapping):
        return {key: _js_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_js_value(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _UINT64_MAX:
        return orjson.Fragment(str(value).encode("ascii"))
    if isinstance(value, str) and _LONE_SURROGATE.search(value):
        # JSON.stringify escapes lone surrogates and nothing else beyond JSON's required set.
        literal = json.dumps(value, ensure_ascii=False)
        literal = _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", literal)
        return orjson.Fragment(literal.encode("utf-8"))
    return value


def _js_fallback(value: Any, option: int) -> bytes:
    """The bytes of ``value`` when orjson refused it as it was (see the module docstring)."""
    try:
        return orjson.dumps(_js_value(value), option=option | orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        # indent 2 like orjson's OPT_INDENT_2: js_pretty_json_bytes re-indents either result.
        indent = 2 if option & orjson.OPT_INDENT_2 else None
        text = json.dumps(_plain(value), indent=indent, separators=None if indent else (",", ":"))
        return text.encode("ascii")


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return js_number(value)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def js_json_bytes(value: Any) -> bytes:
    """UTF-8 bytes of ``JSON.stringify(value)`` for JSON-shaped values."""
    try:
        data = orjson.dumps(value)
        if _maybe_js_differs(data) and _needs_js_fix(value):
            data = orjson.dumps(_js_value(value))
        return data
    except orjson.JSONEncodeError:
        return _js_fallback(value, 0)


def js_pretty_json_bytes(value: Any) -> bytes:
    """UTF-8 bytes of ``JSON.stringify(value, null, 4)`` for JSON-shaped values."""
    option = orjson.OPT_INDENT_2
    try:
        data = orjson.dumps(value, option=option)
        if _maybe_js_differs(data) and _needs_js_fix(value):
            data = orjson.dumps(_js_value(value), option=option)
    except orjson.JSONEncodeError:
        data = _js_fallback(value, option)
    return _four_space_indent(data)


def _four_space_indent(data: bytes) -> bytes:
    """orjson's 2-space indentation as 4 spaces, without a Python step per line.

    JSON text has no raw newline or NUL inside strings (both are escaped), so the spaces after
    a newline are all indentation: from the deepest level up, each level's newline plus 2k
    spaces becomes a newline plus k NULs (deeper lines, already converted, cannot match a
    shallower pattern), then every NUL becomes 4 spaces.
    """
    depth = 0
    while b"\n" + b"  " * (depth + 1) in data:
        depth += 1
    for level in range(depth, 0, -1):
        data = data.replace(b"\n" + b"  " * level, b"\n" + b"\x00" * level)
    return data.replace(b"\x00", b"    ")

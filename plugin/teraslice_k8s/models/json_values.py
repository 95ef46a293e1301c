"""JSON values the platform keeps exactly: the request-body parser and its limits.

A job travels as JSON through the master, the store (SQLite text or Elasticsearch), the ``EX``
environment variable and JavaScript-compatible clients, so the master only accepts values
every one of them keeps unchanged. :func:`parse_json` parses a request body and
:func:`value_problems` checks any JSON-shaped value against these rules:

- integers within JavaScript's safe range, ``-(2**53 - 1)`` to ``2**53 - 1``
  (:data:`MAX_SAFE_INTEGER`): beyond it ``JSON.parse`` and Elasticsearch's ``long``/``double``
  silently change the digits;
- finite numbers: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (Python's parser
  accepts them; they are reported as malformed JSON naming the field) and a literal such as
  ``1e400`` overflows to infinity;
- at most :data:`MAX_DEPTH` (100) levels of nested arrays and objects (the top-level object
  is level 1);
- strings and keys without unpaired UTF-16 surrogates (``"\\ud800"``), which UTF-8 cannot hold.

Neither function recurses: nesting of any depth costs a bounded stack (the standard
library's C parser stops at the interpreter's recursion limit with ``RecursionError``, reported
as too deep).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError, join_path

#: Deepest nesting of arrays and objects a request body may have (the top-level value is 1).
MAX_DEPTH = 100
#: ``Number.MAX_SAFE_INTEGER``: the largest integer JavaScript (and so Teraslice) keeps exactly.
MAX_SAFE_INTEGER = 2**53 - 1
#: At most this many problems are listed for one body (a body can hold millions of bad values).
MAX_PROBLEMS = 20

INTEGER_MESSAGE = (
    f"must be an integer between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER} "
    "(larger integers lose digits in JavaScript and Elasticsearch)"
)
FINITE_MESSAGE = "must be a finite number"
DEPTH_MESSAGE = f"is nested deeper than {MAX_DEPTH} levels of arrays and objects"
SURROGATE_MESSAGE = "must not contain an unpaired UTF-16 surrogate (it cannot be stored as UTF-8)"
MALFORMED_MESSAGE = "the json submitted is malformed"

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedJson(ValueError):
    """The text is not JSON; ``problems`` names the fields holding ``NaN``/``Infinity``, if any."""

    def __init__(self, problems: list[Problem] | None = None) -> None:
        self.problems = problems or []
        detail = "; ".join(str(p) for p in self.problems)
        super().__init__(f"{MALFORMED_MESSAGE}: {detail}" if detail else MALFORMED_MESSAGE)

    @property
    def message(self) -> str:
        return str(self)


class _NonJsonConstant:
    """What the parser returns for ``NaN``/``Infinity``/``-Infinity`` so the walk can name the field."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def parse_json(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a request body and check it with :func:`value_problems`.

    Raises :class:`MalformedJson` (not JSON: syntax, encoding, ``NaN``/``Infinity``) or
    :class:`ValidationError` (JSON the platform cannot keep exactly, each problem naming its
    field; nesting so deep the parser itself stops is one problem for the whole document).
    """
    try:
        value = json.loads(raw, parse_constant=_NonJsonConstant)
    except RecursionError:
        raise ValidationError([Problem("", DEPTH_MESSAGE)], subject="json body") from None
    except (ValueError, UnicodeDecodeError):
        # json.JSONDecodeError, UnicodeDecodeError, and int() refusing > 4300 digits
        raise MalformedJson() from None
    syntax, problems = _walk(value, max_depth)
    if syntax:
        raise MalformedJson(syntax)
    if problems:
        raise ValidationError(problems, subject="json body")
    return value


def value_problems(value: Any, *, max_depth: int = MAX_DEPTH, path: str = "") -> list[Problem]:
    """Every rule of the module docstring ``value`` breaks (at most :data:`MAX_PROBLEMS`),
    each at its field path (``operations[0].size``) under ``path``."""
    syntax, problems = _walk(value, max_depth, path)
    return (syntax + problems)[:MAX_PROBLEMS]


def _printable(key: str) -> str:
    # A path must itself be printable JSON: escape any surrogate a key carries.
    return key.encode("utf-8", "backslashreplace").decode("utf-8") if _has_surrogate(key) else key


def _has_surrogate(text: str) -> bool:
    return not text.isascii() and _LONE_SURROGATE.search(text) is not None


def _walk(value: Any, max_depth: int, root: str = "") -> tuple[list[Problem], list[Problem]]:
    """(syntax problems, value problems), iteratively (an explicit stack, no recursion)."""
    syntax: list[Problem] = []
    problems: list[Problem] = []
    stack: list[tuple[Any, str, int]] = [(value, root, 1)]
    while stack and len(syntax) + len(problems) < MAX_PROBLEMS:
        item, path, depth = stack.pop()
        kind = type(item)
        if kind is dict or kind is list or kind is tuple:
            if depth > max_depth:
                problems.append(Problem(path, DEPTH_MESSAGE))
                continue
            children: list[tuple[Any, str, int]] = []
            if kind is dict:
                for raw_key, child in item.items():
                    key = raw_key if isinstance(raw_key, str) else str(raw_key)
                    if _has_surrogate(key):
                        problems.append(Problem(join_path(path, _printable(key)), SURROGATE_MESSAGE))
                        continue
                    children.append((child, join_path(path, key), depth + 1))
            else:
                children = [(child, join_path(path, index), depth + 1) for index, child in enumerate(item)]
            stack.extend(reversed(children))  # document order
        elif kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                problems.append(Problem(path, INTEGER_MESSAGE))
        elif kind is float:
            if not math.isfinite(item):
                problems.append(Problem(path, FINITE_MESSAGE))
        elif kind is str:
            if _has_surrogate(item):
                problems.append(Problem(path, SURROGATE_MESSAGE))
        elif kind is _NonJsonConstant:
            syntax.append(Problem(path, f"{item.text} is not a JSON value"))
        elif item is None or kind is bool:
            pass
        elif isinstance(item, int | float | str):  # subclasses (enums): judge by the plain value
            plain: Any = str(item) if isinstance(item, str) else item.real
            stack.append((plain, path, depth))
        else:
            problems.append(Problem(path, "must be a JSON value"))
    return syntax, problems

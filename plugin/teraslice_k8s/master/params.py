"""Request parsing with Teraslice's rules and messages (api-and-runtime.md §1.1-§1.6).

Query options (paging, ``deleted``, ``active``, ``status``, ``ex=``, worker counts, booleans)
and the job body. Every refusal is an :class:`~teraslice_k8s.master.errors.ApiError` 4xx naming
the option.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.models.execution import InvalidStatus, parse_status
from teraslice_k8s.store.base import Page

JSON_MEDIA_TYPES = ("application/json", "application/x-www-form-urlencoded")


def truthy(value: str | None, default: bool) -> bool:
    """``true``/``1``/``yes`` or a bare ``?flag`` -> True; ``false``/``0``/``no`` -> False."""
    if value is None:
        return default
    text = value.strip().lower()
    if text in ("", "true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ApiError(400, f'"{value}" is not a boolean, use true or false')


def int_option(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"{name} parameter must be a integer, got {raw}") from None


def page(params: Mapping[str, str], default_sort: str = "_updated:desc") -> Page:
    if params.get("filter"):
        raise ApiError(400, "the filter query option (a Lucene query) is not supported by this master")
    return Page(
        size=int_option(params, "size", 100),
        from_=int_option(params, "from", 0),
        sort=params.get("sort") or default_sort,
    )


def deleted(params: Mapping[str, str]) -> bool:
    value = params.get("deleted", "")
    if value not in ("", "true", "false"):
        raise ApiError(400, "deleted query option must true or false")
    return value == "true"


def active(params: Mapping[str, str]) -> bool | None:
    value = params.get("active")
    if value is None or value == "":
        return None
    if value not in ("true", "false"):
        raise ApiError(400, "active query option must be true or false")
    return value == "true"


def ex_fields(params: Mapping[str, str]) -> list[str] | None:
    value = params.get("ex")
    return None if value is None else [f.strip() for f in value.split(",")]


def statuses(params: Mapping[str, str]) -> tuple[str, ...]:
    value = (params.get("status") or "").strip()
    if value in ("", "*"):
        return ()
    try:
        return tuple(parse_status(s.strip()).value for s in value.split(",") if s.strip())
    except InvalidStatus as err:
        raise ApiError(400, str(err)) from None


def workers_option(params: Mapping[str, str]) -> tuple[str, int]:
    given = [(key, params[key]) for key in ("add", "remove", "total") if key in params]
    message = "Must provide a valid worker parameter(add/remove/total) that is a number and greater than zero"
    if len(given) != 1:
        raise ApiError(400, message)
    key, raw = given[0]
    try:
        count = int(raw)
    except ValueError:
        raise ApiError(400, message) from None
    if count <= 0:
        raise ApiError(400, message)
    return ("set" if key == "total" else key), count


async def json_body(request: Request) -> Any:
    """The parsed body (§1.1): JSON under ``application/json`` or form content types.

    No body -> ``None``; an empty body with a JSON content type -> ``{}``; malformed -> 400;
    a body with another content type -> 415.
    """
    raw = await request.body()
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in JSON_MEDIA_TYPES:
        if not raw:
            return None
        raise ApiError(415, f"unsupported content type {media}, send the job as application/json")
    if not raw:
        return {} if media else None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the json submitted is malformed") from None

"""Request parsing with Teraslice's rules and messages (api-and-runtime.md §1.1-§1.6).

Query options (paging, ``deleted``, ``active``, ``status``, ``ex=``, worker counts, booleans)
and the job body. Every refusal is an :class:`~teraslice_k8s.master.errors.ApiError` 4xx naming
the option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.master import memory
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.models.execution import InvalidStatus, parse_status
from teraslice_k8s.models.json_values import MalformedJson, parse_json
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


def strict(params: Mapping[str, str]) -> bool | None:
    """``?strict=true``: unknown job keys refuse the job; absent: the master's setting."""
    return None if "strict" not in params else truthy(params["strict"], True)


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


#: ``teraslice.api_payload_limit``'s default (express body-parser's ``"100mb"``).
DEFAULT_PAYLOAD_LIMIT = 100 * 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it passes ``limit`` bytes (the declared
    ``Content-Length`` is checked first, so an oversized body is not read at all)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request entity too large (limit {limit} bytes)")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request entity too large (limit {limit} bytes)")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, limit: int = DEFAULT_PAYLOAD_LIMIT) -> Any:
    """The parsed body (§1.1): JSON under ``application/json`` or form content types.

    No body -> ``None``; an empty body with a JSON content type -> ``{}``; a body over
    ``limit`` bytes -> 413; another content type -> 415; not JSON (``NaN`` and ``Infinity``
    included, naming their fields) -> 400 ``the json submitted is malformed``; JSON holding
    values the platform cannot keep exactly (:mod:`teraslice_k8s.models.json_values`: unsafe
    integers, numbers overflowing to infinity, nesting deeper than 100, unpaired surrogates)
    -> 422 naming each field. Parsing runs in the thread pool (a 100 MB body takes a while).
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await read_body(request, limit)
    if media and media not in JSON_MEDIA_TYPES:
        if not raw:
            return None
        raise ApiError(415, f"unsupported content type {media}, send the job as application/json")
    if not raw:
        return {} if media else None
    try:
        return await run_in_threadpool(parse_json, raw)
    except MalformedJson as err:
        raise ApiError(400, err.message, [str(p) for p in err.problems]) from None
    except ValidationError as err:
        raise ApiError(422, err.message, list(err.lines)) from None
    finally:
        if len(raw) >= memory.TRIM_AFTER_BYTES:
            del raw
            await run_in_threadpool(memory.release_free_memory)


def cleanup_type(params: Mapping[str, str]) -> str | None:
    """``_recover``'s clean-up choice: ``cleanup_type``, or Teraslice's older name ``cleanup``."""
    return params.get("cleanup_type", params.get("cleanup"))

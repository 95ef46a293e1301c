"""Blocking service calls from the API's async handlers: :func:`call` and :func:`json_call`.

:class:`~teraslice_k8s.master.service.MasterService` and the store block, so handlers run
them in the thread pool through :func:`call`. The errors the app maps to Teraslice's answers
(:mod:`.error_handlers`: ``ApiError``, a missing or existing record, a refused status or
transition, a ``ValidationError``) pass through unchanged; any other error is logged with its
traceback (``request failed``) and becomes ``ApiError(500, <its message, else its type name>)``.
:func:`json_call` renders the result as Teraslice's pretty JSON in the same thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.master.responses import json_bytes_response, render_json
from teraslice_k8s.models.execution import InvalidStatus, InvalidTransition
from teraslice_k8s.store.base import RecordExists, RecordNotFound

# The logger the API's 500s have always been logged under (log filters may name it).
log = logging.getLogger("teraslice_k8s.master.app")

_EXPECTED = (ApiError, RecordNotFound, RecordExists, InvalidTransition, InvalidStatus, ValidationError)


async def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking service call in the thread pool; unexpected errors become a logged 500."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except _EXPECTED:
        raise
    except Exception as err:
        log.exception("request failed")
        raise ApiError(500, str(err) or type(err).__name__) from err


async def json_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Response:
    """:func:`call`, with the result rendered as Teraslice's pretty JSON in the thread pool
    (FastAPI's own encoding of a returned dict walks it twice and costs more than the call)."""

    def call_and_render() -> bytes:
        return render_json(fn(*args, **kwargs))

    return json_bytes_response(await call(call_and_render))

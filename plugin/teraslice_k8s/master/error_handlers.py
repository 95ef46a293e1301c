"""The API's error answers: :func:`install_error_handlers` maps every error a handler lets out.

Each becomes Teraslice's body ``{"error": <status>, "message": "..."}`` (pretty JSON):

- :class:`~teraslice_k8s.master.errors.ApiError`: its own status, message and ``problems``;
- a missing record 404, an existing one 409, a refused status transition or status 422, each
  with the error's message;
- :class:`~teraslice_k8s.errors.ValidationError`: 400 with its message and one ``problems``
  line per field; a request FastAPI itself rejects: 400, ``<location>: <message>`` joined;
- an unknown path or method: Teraslice's ``405 "cannot <METHOD> endpoint <url>"``, with an
  ``Allow`` header naming the methods of a route whose path matched (RFC 9110); any other
  HTTP error keeps its status and detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.master import openapi
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.master.responses import error_response
from teraslice_k8s.models.execution import InvalidStatus, InvalidTransition
from teraslice_k8s.store.base import RecordExists, RecordNotFound


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app`` (before its routes are called)."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> Response:
        return error_response(err.status, err.message, err.problems)

    def message_as(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(_: Request, err: Exception) -> Response:
            return error_response(status, str(err))

        return handler

    # Store and status errors carry Teraslice's message; only the status code differs.
    for error_type, status in (
        (RecordNotFound, 404),
        (RecordExists, 409),
        (InvalidTransition, 422),
        (InvalidStatus, 422),
    ):
        app.add_exception_handler(error_type, message_as(status))

    @app.exception_handler(ValidationError)
    async def invalid(_: Request, err: ValidationError) -> Response:
        return error_response(400, err.message, list(err.lines))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, err: RequestValidationError) -> Response:
        problems = [
            ".".join(str(p) for p in e.get("loc", ())) + ": " + str(e.get("msg", "")) for e in err.errors()
        ]
        return error_response(400, "; ".join(problems), problems)

    @app.exception_handler(StarletteHTTPException)
    async def unknown_route(request: Request, err: StarletteHTTPException) -> Response:
        if err.status_code in (404, 405):
            url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = error_response(405, f"cannot {request.method} endpoint {url}")
            allowed = openapi.allowed_methods(app, request.scope)
            if allowed:  # a route's path with another method: say which ones it takes (RFC 9110)
                response.headers["Allow"] = ", ".join(allowed)
            return response
        return error_response(err.status_code, str(err.detail))

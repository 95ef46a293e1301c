"""The execution routes of the API (Teraslice's §1.5 and §1.6), added by ``master.app``.

``GET /ex`` (list; ``status`` filters), ``GET /ex/errors`` (slice errors of every execution),
``GET /ex/{ex_id}``, ``GET /ex/{ex_id}/errors``, ``GET /ex/{ex_id}/controller`` (alias
``/slicer``) and ``POST /ex/{ex_id}/_recover``. The listing answers from
:class:`~teraslice_k8s.master.app_caches.AppCaches`. Stopping, pausing, resuming and scaling
an execution are :mod:`.control_routes`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from teraslice_k8s.master import listings, params
from teraslice_k8s.master.app_caches import AppCaches
from teraslice_k8s.master.responses import json_bytes_response
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.service_calls import call, json_call
from teraslice_k8s.store.base import ExFilter


def add_ex_routes(api: APIRouter, service: MasterService, caches: AppCaches) -> None:
    """Add the routes to ``api`` (``/ex/errors`` before ``/ex/{ex_id}``, which would match it)."""

    @api.get("/ex", summary="List executions")
    async def list_ex(request: Request) -> Any:
        q = request.query_params
        flt = ExFilter(statuses=params.statuses(q), deleted=params.deleted(q))
        page = params.page(q)

        def render() -> bytes:
            return listings.render_records(service.list_executions(flt, page), "execution")

        return json_bytes_response(await caches.listing(("ex", flt, page), render))

    @api.get("/ex/errors", summary="Slice errors of every execution")
    async def all_errors(request: Request) -> Any:
        return await json_call(service.errors, None, params.page(request.query_params))

    @api.get("/ex/{ex_id}", summary="Get an execution")
    async def get_ex(ex_id: str) -> Any:
        return json_bytes_response(
            await call(lambda: listings.render_record(service.get_execution(ex_id), "execution"))
        )

    @api.get("/ex/{ex_id}/errors", summary="Slice errors of an execution")
    async def ex_errors(ex_id: str, request: Request) -> Any:
        return await json_call(service.errors, ex_id, params.page(request.query_params))

    @api.get("/ex/{ex_id}/controller", summary="Controller statistics of an execution")
    @api.get("/ex/{ex_id}/slicer", include_in_schema=False)
    async def ex_controller(ex_id: str) -> Any:
        return await json_call(service.controller, ex_id)

    @api.post("/ex/{ex_id}/_recover", summary="Recover an execution with its own config")
    async def recover_ex(ex_id: str, request: Request) -> Any:
        return await json_call(service.recover_execution, ex_id, params.cleanup_type(request.query_params))

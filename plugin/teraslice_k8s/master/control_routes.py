"""The execution-control routes of the API (Teraslice's §1.5), added by ``master.app``.

``POST <prefix>/_stop`` (query: ``timeout`` ms, ``blocking``, ``force``), ``_pause``,
``_resume`` and ``_workers`` (exactly one of ``add``, ``remove``, ``total``), once with the
prefix ``/jobs/{item_id}`` (acting on the job's latest execution) and once with
``/ex/{item_id}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request

from teraslice_k8s.master import params
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.service_calls import json_call


def add_control_routes(
    api: APIRouter, service: MasterService, prefix: str, resolve: Callable[[str], str]
) -> None:
    """Add the routes under ``prefix``; ``resolve`` turns its ``item_id`` into the ``ex_id``
    acted on (called in the thread pool, so it may block and raise the store's errors)."""

    @api.post(prefix + "/_stop", summary="Stop (query: timeout ms, blocking, force)")
    async def stop(item_id: str, request: Request) -> Any:
        q = request.query_params
        force = params.truthy(q.get("force"), False)
        blocking = params.truthy(q.get("blocking"), True)
        timeout = params.int_option(q, "timeout", -1)
        return await json_call(
            lambda: service.stop(
                resolve(item_id),
                force=force,
                blocking=blocking,
                timeout_ms=None if timeout < 0 else timeout,
            )
        )

    @api.post(prefix + "/_pause", summary="Pause")
    async def pause(item_id: str) -> Any:
        return await json_call(lambda: service.pause(resolve(item_id)))

    @api.post(prefix + "/_resume", summary="Resume")
    async def resume(item_id: str) -> Any:
        return await json_call(lambda: service.resume(resolve(item_id)))

    @api.post(prefix + "/_workers", summary="Scale workers (exactly one of add, remove, total)")
    async def workers(item_id: str, request: Request) -> Any:
        action, count = params.workers_option(request.query_params)
        return await json_call(lambda: service.scale_workers(resolve(item_id), action, count))

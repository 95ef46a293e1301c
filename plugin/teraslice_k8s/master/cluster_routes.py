"""The cluster routes of the API (Teraslice's §1.3 and §1.8), added by ``master.app``.

``GET /`` (cluster information), ``GET /cluster/state`` (nodes and their processes),
``GET /cluster/stats`` (summed controller statistics) and ``GET /cluster/controllers``
(alias ``/cluster/slicers``, left out of the OpenAPI document). ``/cluster/state`` and
``/cluster/controllers`` answer from :class:`~teraslice_k8s.master.app_caches.AppCaches`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter

from teraslice_k8s.master.app_caches import AppCaches
from teraslice_k8s.master.responses import PrettyJSONResponse, json_bytes_response, render_json
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.service_calls import json_call


def add_cluster_routes(
    api: APIRouter, service: MasterService, caches: AppCaches
) -> Callable[[], Awaitable[Any]]:
    """Add the routes to ``api``; returns the ``GET /`` handler, which ``/v1`` itself answers too."""

    @api.get("/", summary="Cluster information")
    async def root() -> Any:
        return PrettyJSONResponse(service.cluster_info())

    @api.get("/cluster/state", summary="Cluster state (nodes and their active processes)")
    async def cluster_state() -> Any:
        # Rendering 1,000 workers is the costly part, so concurrent requests share one render.
        def render() -> bytes:
            return render_json(service.cluster_state())

        return json_bytes_response(await caches.state_body("cluster/state", render))

    @api.get("/cluster/stats", summary="Summed controller statistics")
    async def cluster_stats() -> Any:
        return await json_call(service.cluster_stats)

    @api.get("/cluster/controllers", summary="Statistics of every running execution controller")
    @api.get("/cluster/slicers", include_in_schema=False)
    async def cluster_controllers() -> Any:
        # Live from every running controller; concurrent requests share one fan-out that began
        # after they arrived (FreshShared), so 50 pollers cost two fan-outs, not 50.
        return json_bytes_response(await caches.controllers.get())

    return root

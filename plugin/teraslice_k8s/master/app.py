"""The master's HTTP API: Teraslice 3.18's routes, shapes, messages and status codes.

``create_app(service)`` builds a FastAPI app whose JSON routes answer at ``/`` and ``/v1``
(the ``/txt/*`` tables and ``/metrics`` only at the root). Handlers only parse the request
(query options with Teraslice's messages, the body per §1.1) and call
:class:`~teraslice_k8s.master.service.MasterService`; errors become Teraslice's body
``{"error": <status>, "message": "..."}`` (plus ``"problems": [...]`` for rejected input).
JSON is pretty-printed with 4 spaces like Teraslice's express app; tables are
``text/html; charset=utf-8`` like Teraslice's ``res.send``. The OpenAPI document is at
``/openapi.json`` (interactive docs at ``/docs``), paths Teraslice does not use.

This module is the assembly: the middleware, the error answers (:mod:`.error_handlers`), the
bodies shared between requests (:mod:`.app_caches`) and the route groups, each in the module
named for what it serves (:mod:`.cluster_routes`, :mod:`.job_routes`, :mod:`.ex_routes`,
:mod:`.control_routes`, :mod:`.table_routes`, :mod:`.metrics`, :mod:`.assets_routes`), added
in the order Starlette matches them.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from teraslice_k8s import __version__
from teraslice_k8s.master import memory, openapi
from teraslice_k8s.master.app_caches import AppCaches
from teraslice_k8s.master.assets_routes import install_asset_routes
from teraslice_k8s.master.cluster_routes import add_cluster_routes
from teraslice_k8s.master.control_routes import add_control_routes
from teraslice_k8s.master.error_handlers import install_error_handlers
from teraslice_k8s.master.ex_routes import add_ex_routes
from teraslice_k8s.master.fast_listings import FastListingsMiddleware, LearnedListings
from teraslice_k8s.master.job_routes import add_job_routes, latest_ex_id
from teraslice_k8s.master.metrics import install_metrics_route
from teraslice_k8s.master.responses import HeadAsGetMiddleware, PrettyJSONResponse, TrailingSlashMiddleware
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.table_routes import install_table_routes


def create_app(service: MasterService) -> FastAPI:
    """The API app over one :class:`MasterService` (which the caller starts and closes)."""
    app = FastAPI(
        title="teraslice-k8s master",
        version=__version__,
        description="Teraslice 3.18-compatible master API (routes answer at / and /v1).",
        default_response_class=PrettyJSONResponse,
        redoc_url=None,
        redirect_slashes=False,
    )
    app.add_middleware(TrailingSlashMiddleware)
    app.add_middleware(HeadAsGetMiddleware)
    learned = LearnedListings()  # cached listings answered before routing (fast_listings)
    app.add_middleware(FastListingsMiddleware, learned=learned)
    install_error_handlers(app)
    memory.limit_malloc_arenas()  # request threads come and go: their arenas must not pile up
    caches = AppCaches(service, learned)

    # The JSON routes, mounted at / and /v1. Order matters: a path is matched against the routes
    # in turn (``/ex/errors`` before ``/ex/{ex_id}``).
    api = APIRouter()
    root = add_cluster_routes(api, service, caches)
    add_job_routes(api, service, caches)
    add_ex_routes(api, service, caches)
    # execution control, by job (latest execution) and by execution
    add_control_routes(api, service, "/jobs/{item_id}", lambda job_id: latest_ex_id(service, job_id))
    add_control_routes(api, service, "/ex/{item_id}", lambda ex_id: ex_id)

    app.include_router(api, include_in_schema=False)
    app.include_router(api, prefix="/v1")
    app.add_api_route("/v1", root, methods=["GET"], include_in_schema=False)
    install_table_routes(app, service, caches)
    install_metrics_route(app, service)
    if service.assets is not None:
        install_asset_routes(app, service.assets, service.assets.payload_limit)
    openapi.install(app)
    return app

"""The ``/txt/*`` text tables of the API (Teraslice's §1.9), at the root only, added by ``master.app``.

``GET /txt/jobs``, ``/txt/ex``, ``/txt/workers``, ``/txt/nodes`` and ``/txt/controllers``
(alias ``/txt/slicers``) answer ``text/html; charset=utf-8`` tables: ``fields`` picks the
columns (Teraslice's defaults otherwise; listings of deleted records add ``_deleted_on``),
``headers=false`` drops the header row, and the listings take the JSON listings' filters and
paging. Stored records a row cannot show are shown in their safe form. The job, execution and
worker tables answer from :class:`~teraslice_k8s.master.app_caches.AppCaches`. The asset
tables are :mod:`.assets_routes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from teraslice_k8s.master import listings, params, tables
from teraslice_k8s.master.app_caches import AppCaches
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.service_calls import call
from teraslice_k8s.store.base import ExFilter, JobFilter
from teraslice_k8s.store.query import check_page


def install_table_routes(app: FastAPI, service: MasterService, caches: AppCaches) -> None:
    """Add the routes to ``app`` itself (root only, as in Teraslice)."""

    def table(
        request: Request,
        items: Sequence[Mapping[str, Any]],
        defaults: Sequence[str],
        cell: Callable[[Mapping[str, Any], str], Any] | None = None,
        kind: str | None = None,
    ) -> HTMLResponse:
        """``items`` as a text table: ``fields`` picks the columns, ``headers=false`` drops the header;
        stored records (``kind``) a row cannot show are shown in their safe form."""
        q = request.query_params
        cols = tables.columns(q.get("fields"), defaults)
        headers = q.get("headers") != "false"
        if kind is not None:
            return HTMLResponse(listings.render_table(items, kind, cols, headers=headers))
        return HTMLResponse(tables.render(items, cols, headers=headers, cell=cell))

    def listing_columns(defaults: tuple[str, ...], deleted: bool) -> tuple[str, ...]:
        # A listing of deleted records also shows when they were deleted.
        return defaults + (("_deleted_on",) if deleted else ())

    def table_options(request: Request, defaults: Sequence[str]) -> tuple[tuple[str, ...], bool]:
        """(columns, headers) of a table request: ``fields`` and ``headers=false``."""
        q = request.query_params
        return tuple(tables.columns(q.get("fields"), defaults)), q.get("headers") != "false"

    @app.get("/txt/jobs", response_class=HTMLResponse, summary="Jobs as a text table")
    async def txt_jobs(request: Request) -> Any:
        q = request.query_params
        deleted = params.deleted(q)
        flt, page = JobFilter(active=params.active(q), deleted=deleted), params.page(q)
        cols, headers = table_options(request, listing_columns(tables.JOB_COLUMNS, deleted))

        def render() -> bytes:
            jobs = service.list_jobs(flt, page)
            return listings.render_table(jobs, "job", cols, headers=headers).encode()

        return HTMLResponse(await caches.listing(("txt/jobs", flt, page, cols, headers), render))

    @app.get("/txt/ex", response_class=HTMLResponse, summary="Executions as a text table")
    async def txt_ex(request: Request) -> Any:
        q = request.query_params
        deleted = params.deleted(q)
        flt, page = ExFilter(statuses=params.statuses(q), deleted=deleted), params.page(q)
        cols, headers = table_options(request, listing_columns(tables.EX_COLUMNS, deleted))

        def render() -> bytes:
            exs = service.list_executions(flt, page)
            return listings.render_table(exs, "execution", cols, headers=headers).encode()

        return HTMLResponse(await caches.listing(("txt/ex", flt, page, cols, headers), render))

    @app.get("/txt/workers", response_class=HTMLResponse, summary="Workers as a text table")
    async def txt_workers(request: Request) -> Any:
        page = params.page(request.query_params)
        check_page(page)  # the same size/from rules as the store-backed listings
        k8s = service.backend.clustering_type.startswith("kubernetes")
        defaults = tables.WORKER_COLUMNS_K8S if k8s else tables.WORKER_COLUMNS_NATIVE
        cols, headers = table_options(request, defaults)

        def render() -> bytes:
            items = tables.worker_items(service.cluster_state())[page.from_ : page.from_ + page.size]
            return tables.render(items, cols, headers=headers).encode()

        return HTMLResponse(await caches.state_body(("txt/workers", page, cols, headers), render))

    @app.get("/txt/nodes", response_class=HTMLResponse, summary="Nodes as a text table")
    async def txt_nodes(request: Request) -> Any:
        state = await call(service.cluster_state)
        nodes = [n for n in state.values() if isinstance(n, Mapping)]
        return table(request, nodes, tables.NODE_COLUMNS, cell=tables.node_cell)

    @app.get("/txt/controllers", response_class=HTMLResponse, summary="Controllers as a text table")
    @app.get("/txt/slicers", response_class=HTMLResponse, include_in_schema=False)
    async def txt_controllers(request: Request) -> Any:
        return table(request, await call(service.all_controllers), tables.CONTROLLER_COLUMNS)

"""The asset routes of the API (Teraslice's assets service, §1.7), mounted by ``master.app``.

``POST|GET|DELETE /assets...`` answer at ``/`` and ``/v1``; ``GET /txt/assets...`` only at the
root. ``POST /assets`` takes the raw zip (any content type but JSON and form bodies, which get
Teraslice's ``400 "/asset endpoints do not accept json"``); bodies over
``teraslice.api_payload_limit`` get ``413`` without being read further.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from teraslice_k8s.master import params, tables
from teraslice_k8s.master.assets import AssetService
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.master.responses import PrettyJSONResponse

#: Teraslice's default ``/txt/assets`` columns (``external_storage`` added with S3).
TXT_COLUMNS = ("name", "version", "id", "_created", "description", "node_version", "platform", "arch")
_TRUE = ("true", "1", "yes", "y", "on")


def asset_router(assets: AssetService, payload_limit: int) -> APIRouter:
    """The JSON asset routes (mounted at ``/`` and ``/v1``)."""
    api = APIRouter()

    @api.post("/assets", summary="Upload an asset bundle (raw zip body; blocking)")
    async def upload(request: Request) -> Any:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media in params.JSON_MEDIA_TYPES:
            raise ApiError(400, "/asset endpoints do not accept json")
        data = await params.read_body(request, payload_limit)
        created, asset_id = await run_in_threadpool(assets.upload, data)
        return PrettyJSONResponse(
            {"asset_id": asset_id, "_id": asset_id}, status_code=201 if created else 200
        )

    async def search(request: Request, name: str | None, version: str | None) -> Any:
        page = params.page(request.query_params, "_created:desc")
        return PrettyJSONResponse(await run_in_threadpool(assets.search, name, version, page))

    @api.get("/assets", summary="List assets (newest first)")
    async def list_all(request: Request) -> Any:
        return await search(request, None, None)

    @api.get("/assets/{name}", summary="List the assets of one name")
    async def list_name(name: str, request: Request) -> Any:
        return await search(request, name, None)

    @api.get("/assets/{name}/{version}", summary="List the assets of one name and version")
    async def list_version(name: str, version: str, request: Request) -> Any:
        return await search(request, name, version)

    @api.delete("/assets/{asset_id}", summary="Delete an asset (full 40-character id)")
    async def delete(asset_id: str) -> Any:
        return PrettyJSONResponse(await run_in_threadpool(assets.delete, asset_id))

    return api


def _cell(item: Mapping[str, Any], column: str) -> Any:
    """Teraslice cuts ``description`` to 30 characters; a missing field prints ``N/A``."""
    if column not in item:
        return tables.node_cell(item, column)  # the table's "missing" marker
    value = item[column]
    return value[:30] if column == "description" and isinstance(value, str) else value


def install_asset_routes(app: FastAPI, assets: AssetService, payload_limit: int) -> None:
    """Mount the asset routes: JSON ones at ``/`` and ``/v1``, ``/txt/assets...`` at the root."""
    router = asset_router(assets, payload_limit)
    app.include_router(router, include_in_schema=False)
    app.include_router(router, prefix="/v1")

    async def table(request: Request, name: str | None, version: str | None) -> Response:
        q = request.query_params
        items = await run_in_threadpool(assets.search, name, version, params.page(q, "_created:desc"))
        defaults = TXT_COLUMNS + (("external_storage",) if assets.store.external else ())
        cols = tables.columns(q.get("fields"), defaults)
        return HTMLResponse(tables.render(items, cols, headers=q.get("headers") != "false", cell=_cell))

    @app.get("/txt/assets", response_class=HTMLResponse, summary="Assets as a text table")
    async def txt_assets(request: Request) -> Response:
        return await table(request, None, None)

    @app.get("/txt/assets/{name}", response_class=HTMLResponse, include_in_schema=False)
    async def txt_assets_name(name: str, request: Request) -> Response:
        return await table(request, name, None)

    @app.get("/txt/assets/{name}/{version}", response_class=HTMLResponse, include_in_schema=False)
    async def txt_assets_version(name: str, version: str, request: Request) -> Response:
        return await table(request, name, version)

"""The master's HTTP API: Teraslice 3.18's routes, shapes, messages and status codes.

``create_app(service)`` builds a FastAPI app whose JSON routes answer at ``/`` and ``/v1``
(the ``/txt/*`` tables and ``/metrics`` only at the root). Handlers only parse the request
(query options with Teraslice's messages, the body per §1.1) and call
:class:`~teraslice_k8s.master.service.MasterService`; errors become Teraslice's body
``{"error": <status>, "message": "..."}`` (plus ``"problems": [...]`` for rejected input).
JSON is pretty-printed with 4 spaces like Teraslice's express app; tables are
``text/html; charset=utf-8`` like Teraslice's ``res.send``. The OpenAPI document is at
``/openapi.json`` (interactive docs at ``/docs``), paths Teraslice does not use.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from teraslice_k8s import __version__
from teraslice_k8s.errors import ValidationError
from teraslice_k8s.master import listings, memory, openapi, params, tables
from teraslice_k8s.master.assets_routes import install_asset_routes
from teraslice_k8s.master.errors import ApiError
from teraslice_k8s.master.fast_listings import FastListingsMiddleware, LearnedListings
from teraslice_k8s.master.listing_cache import FreshShared, ListingCache
from teraslice_k8s.master.metrics import metrics_response
from teraslice_k8s.master.responses import (
    HeadAsGetMiddleware,
    PrettyJSONResponse,
    RenderedCache,
    TrailingSlashMiddleware,
    error_response,
    json_bytes_response,
    render_json,
)
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.models.execution import InvalidStatus, InvalidTransition
from teraslice_k8s.store.base import ExFilter, JobFilter, RecordExists, RecordNotFound
from teraslice_k8s.store.query import check_page

log = logging.getLogger(__name__)

#: How long a rendered ``/cluster/state`` may be shared between requests (seconds); a backend with
#: a ``state_version()`` (:class:`~teraslice_k8s.backend.base.StateVersioned`) shows changes at once.
CLUSTER_STATE_TTL = 1.0
#: Upper bound on how long a rendered job listing is reused when the store has no records version
#: (jobs written by another process show up after at most this long); a store with one
#: (:class:`~teraslice_k8s.master.listing_cache.ListingCache`) shows every write at once.
JOBS_TTL = 2.0
_JOB_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "A Teraslice job (name, operations, ...)"}
            }
        },
    }
}


_EXPECTED = (ApiError, RecordNotFound, RecordExists, InvalidTransition, InvalidStatus, ValidationError)


async def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a blocking service call in the thread pool; unexpected errors become a logged 500."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except _EXPECTED:
        raise
    except Exception as err:
        log.exception("request failed")
        raise ApiError(500, str(err) or type(err).__name__) from err


async def _json_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Response:
    """:func:`_call`, with the result rendered as Teraslice's pretty JSON in the thread pool
    (FastAPI's own encoding of a returned dict walks it twice and costs more than the call)."""

    def call_and_render() -> bytes:
        return render_json(fn(*args, **kwargs))

    return json_bytes_response(await _call(call_and_render))


# -- the app ----------------------------------------------------------------------------------


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
    _install_error_handlers(app)
    api = APIRouter()

    call = _json_call
    payload_limit = service.settings.payload_limit_bytes
    memory.limit_malloc_arenas()  # request threads come and go: their arenas must not pile up
    state_cache = RenderedCache(ttl=CLUSTER_STATE_TTL)
    jobs_cache = RenderedCache(ttl=JOBS_TTL)
    listing_cache = ListingCache(service.store)
    controllers_body = FreshShared(lambda: _call(lambda: render_json(service.all_controllers())))

    async def listing(what: Hashable, render: Callable[[], bytes]) -> bytes:
        """A listing's body: shared while the store's records are unchanged (ListingCache)."""
        key, body = listing_cache.cached(what)  # on the event loop: no thread-pool hop
        if key is not None:
            learned.offer(lambda: listing_cache.cached(what)[1])
        if body is None:
            body = await _call(listing_cache.render, what, key, render)
        return body

    async def state_body(what: Hashable, render: Callable[[], bytes]) -> bytes:
        """A body rendered from the cluster state, shared between requests: keyed by the
        backend's state version where it has one (a process that joined or left shows at once),
        never served after CLUSTER_STATE_TTL."""
        version: Callable[[], Hashable] | None = getattr(service.backend, "state_version", None)
        if version is None:  # not StateVersioned: the TTL alone bounds the staleness
            learned.offer(lambda: state_cache.get(what))
            body = state_cache.get(what)  # fresh only: answered without a thread-pool hop
            if body is None:
                body = await _call(state_cache.get_or_render, what, render)
            return body

        read_version: Callable[[], Hashable] = version
        if getattr(service.backend, "state_version_is_local", False):  # cheap: ask on the loop
            learned.offer(lambda: state_cache.get((what, read_version())))
            body = state_cache.get((what, read_version()))
            if body is not None:
                return body

        def versioned() -> bytes:
            key = (what, read_version())
            # Stored only if nothing changed while rendering, so a key never holds a later state.
            return state_cache.get_or_render(key, render, lambda: read_version() == key[1])

        rendered: bytes = await _call(versioned)
        return rendered

    def ex_of_job(job_id: str) -> str:
        ex_id: str = service.latest_execution(job_id)["ex_id"]
        return ex_id

    # cluster
    @api.get("/", summary="Cluster information")
    async def root() -> Any:
        return PrettyJSONResponse(service.cluster_info())

    @api.get("/cluster/state", summary="Cluster state (nodes and their active processes)")
    async def cluster_state() -> Any:
        # Rendering 1,000 workers is the costly part, so concurrent requests share one render.
        def render() -> bytes:
            return render_json(service.cluster_state())

        return json_bytes_response(await state_body("cluster/state", render))

    @api.get("/cluster/stats", summary="Summed controller statistics")
    async def cluster_stats() -> Any:
        return await call(service.cluster_stats)

    @api.get("/cluster/controllers", summary="Statistics of every running execution controller")
    @api.get("/cluster/slicers", include_in_schema=False)
    async def cluster_controllers() -> Any:
        # Live from every running controller; concurrent requests share one fan-out that began
        # after they arrived (FreshShared), so 50 pollers cost two fan-outs, not 50.
        return json_bytes_response(await controllers_body.get())

    # jobs
    @api.post("/jobs", summary="Submit a job (start defaults to true)", openapi_extra=_JOB_BODY)
    async def submit_job(request: Request) -> Any:
        body = await params.json_body(request, payload_limit)
        start = request.query_params.get("start") != "false"
        return await call(service.submit_job, body, start=start, strict=params.strict(request.query_params))

    @api.get("/jobs", summary="List jobs")
    async def list_jobs(request: Request) -> Any:
        q = request.query_params
        flt = JobFilter(active=params.active(q), deleted=params.deleted(q))
        page, ex_fields = params.page(q), params.ex_fields(q)
        if listing_cache.versioned:  # every job or execution write shows on the next request
            fields = None if ex_fields is None else tuple(ex_fields)

            def render() -> bytes:
                return listings.render_records(service.list_jobs(flt, page, fields), "job")

            return json_bytes_response(await listing(("jobs", flt, page, fields), render))
        if ex_fields is not None:  # carries execution fields the controllers write: no cache
            return json_bytes_response(
                await _call(lambda: listings.render_records(service.list_jobs(flt, page, ex_fields), "job"))
            )
        # Only this master writes jobs: a listing stays valid until its next job write.
        key = (flt, page, service.jobs_generation)
        body = jobs_cache.get(key)  # fresh only: answered without a thread-pool hop
        if body is None:
            body = await _call(
                jobs_cache.get_or_render,
                key,
                lambda: listings.render_records(service.list_jobs(flt, page), "job"),
            )
        return json_bytes_response(body)

    @api.get("/jobs/{job_id}", summary="Get a job")
    async def get_job(job_id: str, request: Request) -> Any:
        ex_fields = params.ex_fields(request.query_params)
        return json_bytes_response(
            await _call(lambda: listings.render_record(service.get_job(job_id, ex_fields), "job"))
        )

    @api.put("/jobs/{job_id}", summary="Replace a job", openapi_extra=_JOB_BODY)
    async def update_job(job_id: str, request: Request) -> Any:
        body = await params.json_body(request, payload_limit)
        return await call(service.update_job, job_id, body, params.strict(request.query_params))

    @api.delete("/jobs/{job_id}", summary="Soft-delete a job and its executions")
    async def delete_job(job_id: str) -> Any:
        return await call(service.delete_job, job_id)

    @api.get("/jobs/{job_id}/ex", summary="Latest execution of a job")
    async def job_ex(job_id: str) -> Any:
        return await call(service.latest_execution, job_id)

    @api.post("/jobs/{job_id}/_start", summary="Start a new execution of a job")
    async def start_job(job_id: str) -> Any:
        return await call(service.start_job, job_id)

    @api.post("/jobs/{job_id}/_recover", summary="Recover the latest execution of a job")
    async def recover_job(job_id: str, request: Request) -> Any:
        q = request.query_params
        return await call(service.recover_job, job_id, q.get("cleanup_type", q.get("cleanup")))

    @api.post("/jobs/{job_id}/_active", summary="Mark a job active")
    async def job_active(job_id: str) -> Any:
        return await call(service.set_active, job_id, True)

    @api.post("/jobs/{job_id}/_inactive", summary="Mark a job inactive")
    async def job_inactive(job_id: str) -> Any:
        return await call(service.set_active, job_id, False)

    @api.post("/jobs/{job_id}/_settings", summary="Change the log level of a job's execution")
    async def job_settings(job_id: str, request: Request) -> Any:
        level = request.query_params.get("log_level")
        return await call(lambda: service.set_log_level(ex_of_job(job_id), level))

    @api.get("/jobs/{job_id}/errors", summary="Slice errors of a job's latest execution")
    async def job_errors(job_id: str, request: Request) -> Any:
        page = params.page(request.query_params)
        return await call(lambda: service.errors(ex_of_job(job_id), page))

    @api.get("/jobs/{job_id}/controller", summary="Controller statistics of a job's latest execution")
    @api.get("/jobs/{job_id}/slicer", include_in_schema=False)
    async def job_controller(job_id: str) -> Any:
        return await call(lambda: service.controller(ex_of_job(job_id)))

    # executions
    @api.get("/ex", summary="List executions")
    async def list_ex(request: Request) -> Any:
        q = request.query_params
        flt = ExFilter(statuses=params.statuses(q), deleted=params.deleted(q))
        page = params.page(q)

        def render() -> bytes:
            return listings.render_records(service.list_executions(flt, page), "execution")

        return json_bytes_response(await listing(("ex", flt, page), render))

    @api.get("/ex/errors", summary="Slice errors of every execution")
    async def all_errors(request: Request) -> Any:
        return await call(service.errors, None, params.page(request.query_params))

    @api.get("/ex/{ex_id}", summary="Get an execution")
    async def get_ex(ex_id: str) -> Any:
        return json_bytes_response(
            await _call(lambda: listings.render_record(service.get_execution(ex_id), "execution"))
        )

    @api.get("/ex/{ex_id}/errors", summary="Slice errors of an execution")
    async def ex_errors(ex_id: str, request: Request) -> Any:
        return await call(service.errors, ex_id, params.page(request.query_params))

    @api.get("/ex/{ex_id}/controller", summary="Controller statistics of an execution")
    @api.get("/ex/{ex_id}/slicer", include_in_schema=False)
    async def ex_controller(ex_id: str) -> Any:
        return await call(service.controller, ex_id)

    @api.post("/ex/{ex_id}/_recover", summary="Recover an execution with its own config")
    async def recover_ex(ex_id: str, request: Request) -> Any:
        q = request.query_params
        return await call(service.recover_execution, ex_id, q.get("cleanup_type", q.get("cleanup")))

    # execution control, by job (latest execution) and by execution
    def control_routes(prefix: str, resolve: Callable[[str], str]) -> None:
        @api.post(prefix + "/_stop", summary="Stop (query: timeout ms, blocking, force)")
        async def stop(item_id: str, request: Request) -> Any:
            q = request.query_params
            force = params.truthy(q.get("force"), False)
            blocking = params.truthy(q.get("blocking"), True)
            timeout = params.int_option(q, "timeout", -1)
            return await call(
                lambda: service.stop(
                    resolve(item_id),
                    force=force,
                    blocking=blocking,
                    timeout_ms=None if timeout < 0 else timeout,
                )
            )

        @api.post(prefix + "/_pause", summary="Pause")
        async def pause(item_id: str) -> Any:
            return await call(lambda: service.pause(resolve(item_id)))

        @api.post(prefix + "/_resume", summary="Resume")
        async def resume(item_id: str) -> Any:
            return await call(lambda: service.resume(resolve(item_id)))

        @api.post(prefix + "/_workers", summary="Scale workers (exactly one of add, remove, total)")
        async def workers(item_id: str, request: Request) -> Any:
            action, count = params.workers_option(request.query_params)
            return await call(lambda: service.scale_workers(resolve(item_id), action, count))

    control_routes("/jobs/{item_id}", ex_of_job)
    control_routes("/ex/{item_id}", lambda ex_id: ex_id)

    app.include_router(api, include_in_schema=False)
    app.include_router(api, prefix="/v1")
    app.add_api_route("/v1", root, methods=["GET"], include_in_schema=False)
    _install_root_routes(app, service, listing, state_body)
    if service.assets is not None:
        install_asset_routes(app, service.assets, service.assets.payload_limit)
    openapi.install(app)
    return app


Cached = Callable[[Hashable, Callable[[], bytes]], Awaitable[bytes]]


def _install_root_routes(app: FastAPI, service: MasterService, listing: Cached, state_body: Cached) -> None:
    """``/txt/*`` tables and ``/metrics``: root only, as in Teraslice. ``listing`` and
    ``state_body`` share rendered tables between requests while the store's records / the
    backend's state are unchanged (see ``create_app``)."""

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

        return HTMLResponse(await listing(("txt/jobs", flt, page, cols, headers), render))

    @app.get("/txt/ex", response_class=HTMLResponse, summary="Executions as a text table")
    async def txt_ex(request: Request) -> Any:
        q = request.query_params
        deleted = params.deleted(q)
        flt, page = ExFilter(statuses=params.statuses(q), deleted=deleted), params.page(q)
        cols, headers = table_options(request, listing_columns(tables.EX_COLUMNS, deleted))

        def render() -> bytes:
            exs = service.list_executions(flt, page)
            return listings.render_table(exs, "execution", cols, headers=headers).encode()

        return HTMLResponse(await listing(("txt/ex", flt, page, cols, headers), render))

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

        return HTMLResponse(await state_body(("txt/workers", page, cols, headers), render))

    @app.get("/txt/nodes", response_class=HTMLResponse, summary="Nodes as a text table")
    async def txt_nodes(request: Request) -> Any:
        state = await _call(service.cluster_state)
        nodes = [n for n in state.values() if isinstance(n, Mapping)]
        return table(request, nodes, tables.NODE_COLUMNS, cell=tables.node_cell)

    @app.get("/txt/controllers", response_class=HTMLResponse, summary="Controllers as a text table")
    @app.get("/txt/slicers", response_class=HTMLResponse, include_in_schema=False)
    async def txt_controllers(request: Request) -> Any:
        return table(request, await _call(service.all_controllers), tables.CONTROLLER_COLUMNS)

    @app.get("/metrics", summary="Prometheus metrics of the master")
    async def metrics() -> Response:
        response: Response = await _call(metrics_response, service)
        return response


def _install_error_handlers(app: FastAPI) -> None:
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

"""The job routes of the API (Teraslice's §1.4), added by ``master.app``.

``POST /jobs`` (submit; ``start=false`` only stores it), ``GET /jobs`` (list), ``GET|PUT|DELETE
/jobs/{job_id}``, ``GET /jobs/{job_id}/ex`` (latest execution), ``POST /jobs/{job_id}/_start``,
``_recover``, ``_active``, ``_inactive``, ``_settings`` (log level of the latest execution),
``GET /jobs/{job_id}/errors`` and ``/controller`` (alias ``/slicer``) of the latest execution.
Bodies are read up to ``teraslice.api_payload_limit``; ``strict`` turns unknown keys into
problems. Listings answer from :class:`~teraslice_k8s.master.app_caches.AppCaches`. Stopping,
pausing, resuming and scaling by job are :mod:`.control_routes`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from teraslice_k8s.master import listings, params
from teraslice_k8s.master.app_caches import AppCaches
from teraslice_k8s.master.responses import json_bytes_response
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.service_calls import call, json_call
from teraslice_k8s.store.base import JobFilter

#: The OpenAPI body of ``POST /jobs`` and ``PUT /jobs/{job_id}`` (the handlers read it themselves).
JOB_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "A Teraslice job (name, operations, ...)"}
            }
        },
    }
}


def latest_ex_id(service: MasterService, job_id: str) -> str:
    """The ``ex_id`` of the job's latest execution (404 when the job has none)."""
    ex_id: str = service.latest_execution(job_id)["ex_id"]
    return ex_id


def add_job_routes(api: APIRouter, service: MasterService, caches: AppCaches) -> None:
    """Add the routes to ``api``."""
    payload_limit = service.settings.payload_limit_bytes
    listing_cache, jobs_cache = caches.listings, caches.jobs

    def ex_of_job(job_id: str) -> str:
        return latest_ex_id(service, job_id)

    @api.post("/jobs", summary="Submit a job (start defaults to true)", openapi_extra=JOB_BODY)
    async def submit_job(request: Request) -> Any:
        body = await params.json_body(request, payload_limit)
        start = request.query_params.get("start") != "false"
        return await json_call(
            service.submit_job, body, start=start, strict=params.strict(request.query_params)
        )

    @api.get("/jobs", summary="List jobs")
    async def list_jobs(request: Request) -> Any:
        q = request.query_params
        flt = JobFilter(active=params.active(q), deleted=params.deleted(q))
        page, ex_fields = params.page(q), params.ex_fields(q)
        if listing_cache.versioned:  # every job or execution write shows on the next request
            fields = None if ex_fields is None else tuple(ex_fields)

            def render() -> bytes:
                return listings.render_records(service.list_jobs(flt, page, fields), "job")

            return json_bytes_response(await caches.listing(("jobs", flt, page, fields), render))
        if ex_fields is not None:  # carries execution fields the controllers write: no cache
            return json_bytes_response(
                await call(lambda: listings.render_records(service.list_jobs(flt, page, ex_fields), "job"))
            )
        # Only this master writes jobs: a listing stays valid until its next job write.
        key = (flt, page, service.jobs_generation)
        body = jobs_cache.get(key)  # fresh only: answered without a thread-pool hop
        if body is None:
            body = await call(
                jobs_cache.get_or_render,
                key,
                lambda: listings.render_records(service.list_jobs(flt, page), "job"),
            )
        return json_bytes_response(body)

    @api.get("/jobs/{job_id}", summary="Get a job")
    async def get_job(job_id: str, request: Request) -> Any:
        ex_fields = params.ex_fields(request.query_params)
        return json_bytes_response(
            await call(lambda: listings.render_record(service.get_job(job_id, ex_fields), "job"))
        )

    @api.put("/jobs/{job_id}", summary="Replace a job", openapi_extra=JOB_BODY)
    async def update_job(job_id: str, request: Request) -> Any:
        body = await params.json_body(request, payload_limit)
        return await json_call(service.update_job, job_id, body, params.strict(request.query_params))

    @api.delete("/jobs/{job_id}", summary="Soft-delete a job and its executions")
    async def delete_job(job_id: str) -> Any:
        return await json_call(service.delete_job, job_id)

    @api.get("/jobs/{job_id}/ex", summary="Latest execution of a job")
    async def job_ex(job_id: str) -> Any:
        return await json_call(service.latest_execution, job_id)

    @api.post("/jobs/{job_id}/_start", summary="Start a new execution of a job")
    async def start_job(job_id: str) -> Any:
        return await json_call(service.start_job, job_id)

    @api.post("/jobs/{job_id}/_recover", summary="Recover the latest execution of a job")
    async def recover_job(job_id: str, request: Request) -> Any:
        return await json_call(service.recover_job, job_id, params.cleanup_type(request.query_params))

    @api.post("/jobs/{job_id}/_active", summary="Mark a job active")
    async def job_active(job_id: str) -> Any:
        return await json_call(service.set_active, job_id, True)

    @api.post("/jobs/{job_id}/_inactive", summary="Mark a job inactive")
    async def job_inactive(job_id: str) -> Any:
        return await json_call(service.set_active, job_id, False)

    @api.post("/jobs/{job_id}/_settings", summary="Change the log level of a job's execution")
    async def job_settings(job_id: str, request: Request) -> Any:
        level = request.query_params.get("log_level")
        return await json_call(lambda: service.set_log_level(ex_of_job(job_id), level))

    @api.get("/jobs/{job_id}/errors", summary="Slice errors of a job's latest execution")
    async def job_errors(job_id: str, request: Request) -> Any:
        page = params.page(request.query_params)
        return await json_call(lambda: service.errors(ex_of_job(job_id), page))

    @api.get("/jobs/{job_id}/controller", summary="Controller statistics of a job's latest execution")
    @api.get("/jobs/{job_id}/slicer", include_in_schema=False)
    async def job_controller(job_id: str) -> Any:
        return await json_call(lambda: service.controller(ex_of_job(job_id)))

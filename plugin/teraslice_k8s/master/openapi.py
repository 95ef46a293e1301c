"""The master's OpenAPI document: what every route really answers (issue 9).

FastAPI's generated document knows only the routes and their path parameters, since the
handlers parse query options and bodies themselves (with Teraslice's messages). :func:`install`
replaces ``app.openapi`` with a post-processor over it that, per operation (keyed by method and
path without the ``/v1`` prefix), declares:

- every status the route answers, the errors with Teraslice's body ``{"error": int,
  "message": str}`` (``problems`` added for rejected input) under ``application/json``;
- the query options it reads, with their types and ranges (:data:`QUERY`);
- the body: a job (an object) for ``POST /jobs`` and ``PUT /jobs/{job_id}``, a zip for
  ``POST /assets``;
- the content types of its answers (``/txt/*`` tables are ``text/html``, ``/metrics`` is
  Prometheus' ``text/plain``).

FastAPI's default ``422 Validation Error`` is dropped: a request-validation error is a 400 here.
The tests run schemathesis (``--checks all``) against this document
(``tests/unit/master/test_openapi_schemathesis.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Match

from teraslice_k8s.store.query import MAX_RESULT_WINDOW

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "integer", "description": "The HTTP status"},
        "message": {"type": "string"},
        "problems": {
            "type": "array",
            "items": {"type": "string"},
            "description": "One line per rejected field",
        },
    },
}

_REASONS = {
    400: "Bad request: a query option or the body is malformed",
    404: "Not found",
    406: "The body's job_id does not match the path",
    409: "Conflict with the current state (running, orphaned resources, scaling refused)",
    410: "The job has been deleted",
    413: "The body is larger than teraslice.api_payload_limit",
    415: "The body's content type is not JSON",
    422: "The request is well-formed but refused (invalid job, status transition not allowed)",
    500: "The execution controller is not available",
    502: "The execution controller did not answer the stop",
}

#: ``deleted``/``active``: exactly these (empty: not given).
_BOOL: dict[str, Any] = {"type": "string", "enum": ["", "true", "false"]}
#: ``params.truthy``: true/1/yes, false/0/no in any case, blanks around; empty: the flag alone.
_TRUTHY: dict[str, Any] = {
    "type": "string",
    "pattern": r"^\s*([Tt][Rr][Uu][Ee]|1|[Yy][Ee][Ss]|[Ff][Aa][Ll][Ss][Ee]|0|[Nn][Oo])?\s*$",
}
_EMPTY: dict[str, Any] = {"type": "string", "maxLength": 0, "description": "empty: the default"}
#: Elasticsearch's result window: ``from + size`` must not pass it either (a 400 naming ``from``).
_PAGE: dict[str, Any] = {
    "size": {
        "oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_RESULT_WINDOW, "default": 100}, _EMPTY]
    },
    "from": {
        "oneOf": [{"type": "integer", "minimum": 0, "maximum": MAX_RESULT_WINDOW, "default": 0}, _EMPTY]
    },
    "sort": {"type": "string", "description": "field:asc|desc (default _updated:desc)"},
}
_TABLE: dict[str, Any] = {
    "fields": {"type": "string", "description": "Comma-separated columns"},
    "headers": {"type": "string", "description": "false drops the header line (anything else keeps it)"},
}
_CLEANUP: dict[str, Any] = {
    "cleanup_type": {
        "type": "string",
        "enum": ["", "all", "errors", "pending"],
        "description": "Slices to re-run (the older spelling ``cleanup`` is read when this is absent)",
    }
}
_STRICT: dict[str, Any] = {
    "strict": {**_TRUTHY, "description": "true: unknown job keys refuse the job (default: strict_job_keys)"}
}

#: Query options each operation reads, by (method, path without /v1): name -> schema.
QUERY: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("post", "/jobs"): {"start": {"type": "string", "description": "false: store only"}, **_STRICT},
    ("get", "/jobs"): {"active": _BOOL, "deleted": _BOOL, "ex": {"type": "string"}, **_PAGE},
    ("get", "/jobs/{job_id}"): {"ex": {"type": "string", "description": "Execution fields to attach"}},
    ("put", "/jobs/{job_id}"): {**_STRICT},
    ("post", "/jobs/{job_id}/_recover"): {**_CLEANUP},
    ("post", "/jobs/{job_id}/_settings"): {
        "log_level": {"type": "string", "enum": ["trace", "debug", "info", "warn", "error", "fatal"]}
    },
    ("get", "/jobs/{job_id}/errors"): {**_PAGE},
    ("get", "/ex"): {"deleted": _BOOL, "status": {"type": "string"}, **_PAGE},
    ("get", "/ex/errors"): {**_PAGE},
    ("get", "/ex/{ex_id}/errors"): {**_PAGE},
    ("post", "/ex/{ex_id}/_recover"): {**_CLEANUP},
    ("get", "/txt/jobs"): {"active": _BOOL, "deleted": _BOOL, **_PAGE, **_TABLE},
    ("get", "/txt/ex"): {"deleted": _BOOL, "status": {"type": "string"}, **_PAGE, **_TABLE},
    ("get", "/txt/workers"): {**_PAGE, **_TABLE},
    ("get", "/txt/nodes"): {**_TABLE},
    ("get", "/txt/controllers"): {**_TABLE},
    ("get", "/txt/assets"): {**_PAGE, **_TABLE},
    ("get", "/assets"): {**_PAGE},
    ("get", "/assets/{name}"): {**_PAGE},
    ("get", "/assets/{name}/{version}"): {**_PAGE},
}
for _prefix in ("/jobs/{item_id}", "/ex/{item_id}"):
    QUERY[("post", _prefix + "/_stop")] = {
        "timeout": {"type": "integer", "description": "ms"},
        "blocking": _TRUTHY,
        "force": _TRUTHY,
    }
    QUERY[("post", _prefix + "/_workers")] = {
        name: {"type": "integer", "minimum": 1, "description": "exactly one of add, remove, total"}
        for name in ("add", "remove", "total")
    }

#: Query options without which the route answers 400: (method, path, name).
REQUIRED = {("post", "/jobs/{job_id}/_settings", "log_level")}

#: Error statuses each operation answers, by (method, path without /v1); others answer 200 only.
ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/jobs"): (400, 404, 413, 415, 422),
    ("get", "/jobs"): (400,),
    ("get", "/jobs/{job_id}"): (404,),
    ("put", "/jobs/{job_id}"): (400, 404, 406, 410, 413, 415, 422),
    ("delete", "/jobs/{job_id}"): (404, 409, 410),
    ("get", "/jobs/{job_id}/ex"): (404,),
    ("post", "/jobs/{job_id}/_start"): (404, 409, 410, 422),
    ("post", "/jobs/{job_id}/_recover"): (400, 404, 409, 410, 422),
    ("post", "/jobs/{job_id}/_active"): (404, 410, 422),
    ("post", "/jobs/{job_id}/_inactive"): (404, 410, 422),
    ("post", "/jobs/{job_id}/_settings"): (400, 404),
    ("get", "/jobs/{job_id}/errors"): (400, 404),
    ("get", "/jobs/{job_id}/controller"): (404,),
    ("get", "/ex"): (400,),
    ("get", "/ex/errors"): (400,),
    ("get", "/ex/{ex_id}"): (404,),
    ("get", "/ex/{ex_id}/errors"): (400, 404),
    ("get", "/ex/{ex_id}/controller"): (404,),
    ("post", "/ex/{ex_id}/_recover"): (400, 404, 409, 410, 422),
    ("get", "/txt/jobs"): (400,),
    ("get", "/txt/ex"): (400,),
    ("get", "/txt/workers"): (400,),
    ("post", "/assets"): (400, 413, 422),
    ("get", "/assets"): (400,),
    ("get", "/assets/{name}"): (400,),
    ("get", "/assets/{name}/{version}"): (400,),
    ("delete", "/assets/{asset_id}"): (400, 404, 422),
    ("get", "/txt/assets"): (400,),
}
for _prefix in ("/jobs/{item_id}", "/ex/{item_id}"):
    ERRORS[("post", _prefix + "/_stop")] = (400, 404, 422, 502)
    ERRORS[("post", _prefix + "/_pause")] = (404, 422, 500)
    ERRORS[("post", _prefix + "/_resume")] = (404, 422, 500)
    ERRORS[("post", _prefix + "/_workers")] = (400, 404, 409, 422)

#: Successful statuses other than 200.
SUCCESS: dict[tuple[str, str], tuple[int, ...]] = {("post", "/assets"): (200, 201)}

_NULL = {"type": "null"}
_INTEGER = {"type": "integer"}
_BOOLEAN = {"type": "boolean"}
#: The job fields' types as the validator checks them (``models/job.py``); ranges and the
#: operations' own options are checked by the validator too (a 422 naming the field). Other
#: keys are kept and returned as warnings (refused with ``strict``).
_JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A Teraslice job: name, operations (a reader first, then processors), workers, ...",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "operations": {
            "type": "array",
            "minItems": 2,
            "items": {"type": "object", "required": ["_op"], "properties": {"_op": {"type": "string"}}},
        },
        "apis": {"type": "array", "items": {"type": "object"}},
        "assets": {"oneOf": [{"type": "array", "items": {"type": "string"}}, _NULL]},
        "workers": {"type": "integer", "minimum": 1},
        "lifecycle": {"type": "string", "enum": ["once", "persistent"]},
        "slicers": _INTEGER,
        "max_retries": _INTEGER,
        "analytics": _BOOLEAN,
        "autorecover": _BOOLEAN,
        "stateful": _BOOLEAN,
        "env_vars": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}},
        "targets": {"type": "array", "items": {"type": "object"}},
        "volumes": {"type": "array", "items": {"type": "object"}},
        "labels": {
            "oneOf": [
                {
                    "type": "object",
                    "propertyNames": {"minLength": 1},
                    "additionalProperties": {"type": ["string", "number", "boolean"], "minLength": 1},
                },
                _NULL,
            ]
        },
        "cpu": {"oneOf": [{"type": "number"}, _NULL]},
        "memory": {"oneOf": [{"type": "number"}, _NULL]},
        "kubernetes_image": {"oneOf": [{"type": "string"}, _NULL]},
        "external_ports": {
            "oneOf": [
                {
                    "type": "array",
                    "items": {
                        "oneOf": [
                            {"type": "integer"},
                            {
                                "type": "object",
                                "required": ["name", "port"],
                                "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                            },
                        ]
                    },
                },
                _NULL,
            ]
        },
        "pod_spec_override": {"type": "object"},
    },
    "example": {
        "name": "example-job",
        "lifecycle": "once",
        "workers": 1,
        "operations": [{"_op": "data_generator", "size": 100}, {"_op": "noop"}],
    },
}

_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/jobs"): {"required": True, "content": {"application/json": {"schema": _JOB_SCHEMA}}},
    ("put", "/jobs/{job_id}"): {"required": True, "content": {"application/json": {"schema": _JOB_SCHEMA}}},
    ("post", "/assets"): {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}

_TEXT = {
    "/metrics": {"text/plain": {"schema": {"type": "string"}}},
}


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": _REASONS.get(status, "Error"),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TerasliceError"}}},
    }


def _describe(operation: dict[str, Any], method: str, path: str) -> None:
    key = (method, path)
    ok = operation["responses"].get("200", {"description": "Successful Response"})
    content = _TEXT.get(path)
    if content is not None:
        ok = {**ok, "content": content}
    responses: dict[str, Any] = {str(status): ok for status in SUCCESS.get(key, (200,))}
    for status in ERRORS.get(key, ()):
        responses[str(status)] = _error_response(status)
    operation["responses"] = responses
    query = QUERY.get(key, {})
    path_params = [p for p in operation.get("parameters", []) if p.get("in") != "query"]
    operation["parameters"] = path_params + [
        {"name": name, "in": "query", "required": (method, path, name) in REQUIRED, "schema": schema}
        for name, schema in query.items()
    ]
    if not operation["parameters"]:
        del operation["parameters"]
    if key in _BODIES:
        operation["requestBody"] = _BODIES[key]


#: (method, path) whose answer names a resource -> (path prefix of the routes it feeds, field).
_LINK_SOURCES = {
    ("post", "/v1/jobs"): ("/v1/jobs/{", "job_id"),
    ("get", "/v1/jobs/{job_id}/ex"): ("/v1/ex/{", "ex_id"),
}


def _add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links: the ``job_id`` a submit answers feeds every ``/jobs/{id}`` route, the
    ``ex_id`` of a job's latest execution every ``/ex/{id}`` route (clients and schemathesis'
    stateful phase follow them)."""
    for (method, source), (prefix, field) in _LINK_SOURCES.items():
        ok = paths.get(source, {}).get(method, {}).get("responses", {}).get("200")
        if ok is None:
            continue
        links: dict[str, Any] = {}
        for path, item in paths.items():
            if not path.startswith(prefix):
                continue
            for operation in item.values():
                names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"]
                if len(names) == 1 and "operationId" in operation:
                    links[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {names[0]: f"$response.body#/{field}"},
                    }
        ok["links"] = links


def document(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of ``app`` with every operation described as the master answers."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    for path, item in schema.get("paths", {}).items():
        short = path.removeprefix("/v1") or "/"
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _describe(operation, method, short)
    _add_links(schema.get("paths", {}))
    components: dict[str, Any] = schema.setdefault("components", {})
    schemas: dict[str, Any] = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["TerasliceError"] = ERROR_SCHEMA
    return schema


def install(app: FastAPI) -> None:
    """Serve :func:`document` at ``/openapi.json`` (built once, on the first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_METHODS = ("DELETE", "GET", "PATCH", "POST", "PUT")


def allowed_methods(app: FastAPI, scope: Mapping[str, Any]) -> list[str]:
    """The methods the app's routes answer at ``scope``'s path (HEAD wherever GET is: the
    HEAD middleware answers it). Asked of each route by matching, so included routers count."""
    methods = {
        method
        for route in app.router.routes
        for method in _METHODS
        if route.matches({**scope, "method": method})[0] == Match.FULL
    }
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)

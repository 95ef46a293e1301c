"""The Kubernetes API errors the rest of the package sees.

The client library's exceptions change between releases (v36 added status subclasses, v37 made
bodies text and validates models with pydantic), so they never cross
:mod:`teraslice_k8s.kubernetes.api`: it maps every failure to one class of this small hierarchy
(an HTTP error answer through :func:`error_for_status`, which needs no client types), chained
(``raise ... from e``) so the original stays available in tracebacks.

Only a ``kind: Status`` payload is kept from an error body, and any text is cut to
:data:`BODY_MAX_CHARS`, because an arbitrary body (an HTML error page of a proxy, an echoed
manifest with the base64 ``EX`` env) must not end up in logs or API responses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from teraslice_k8s.backend.base import BackendError

#: Longest error text kept from a response body (kopf's ``TEXT_ERROR_MAX_SIZE``).
BODY_MAX_CHARS: Final = 256
#: HTTP statuses that are worth another attempt (besides any other 5xx).
TRANSIENT_STATUSES: Final = frozenset({429, 500, 502, 503, 504})


class KubeError(BackendError):
    """A Kubernetes API call failed.

    ``status`` is the HTTP status (``None`` for connection errors, timeouts, client-side
    rejections); ``payload`` the ``kind: Status`` body when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.payload: Mapping[str, Any] | None = payload

    @property
    def reason(self) -> str:
        """The Status ``reason`` (``AlreadyExists``, ``NotFound``...), ``""`` when unknown."""
        if self.payload is None:
            return ""
        return str(self.payload.get("reason") or "")


class NotFound(KubeError):
    """404: the object (or its namespace / resource type) does not exist."""


class Conflict(KubeError):
    """409: a conflicting write (stale resourceVersion, object being deleted...)."""


class AlreadyExists(Conflict):
    """409 on create: an object with that name already exists."""


class Gone(KubeError):
    """410 on a watch: the resourceVersion is too old; list again and watch from the new one."""


class Forbidden(KubeError):
    """403: RBAC does not allow the call; the message names the verb and resource."""


class Unauthorized(KubeError):
    """401: the credentials were refused (expired token, wrong kubeconfig user)."""


class Invalid(KubeError):
    """422 (or 400, or a client-side model rejection): the body or request is not acceptable."""


class Transient(KubeError):
    """5xx, 429, timeouts and connection errors: worth retrying.

    ``retry_after`` is the server's ``Retry-After`` in seconds (429/503), if it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        payload: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, payload=payload)
        self.retry_after = retry_after


def truncate(text: str, limit: int = BODY_MAX_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_for_status(
    status: int, body: Any, headers: Any, *, where: str, verb: str, resource: str, namespace: str
) -> KubeError:
    """The exception for an HTTP error answer of the API server.

    ``body`` is the response body (text or bytes; a ``kind: Status`` object is kept as the
    payload, anything else only as truncated text), ``headers`` a mapping with ``.get``
    (``Retry-After`` of a 429/503), ``where`` names the call in messages
    (``get batch/jobs "x" in namespace "ns"``); ``verb``/``resource`` name what a 403 lacks.
    """
    payload = _status_payload(body)
    detail = str(payload.get("message")) if payload else truncate(str(body or ""))
    if status == 401:
        return Unauthorized(
            f"unauthorized: the API server refused the master's credentials ({where})",
            status=status,
            payload=payload,
        )
    if status == 403:
        return Forbidden(
            f'forbidden: the master\'s ServiceAccount may not "{verb}" "{resource}" in namespace '
            f'"{namespace}" — grant it in the Role',
            status=status,
            payload=payload,
        )
    if status == 404:
        return NotFound(f"{where}: not found ({detail})", status=status, payload=payload)
    if status == 409:
        reason = str((payload or {}).get("reason") or "")
        if reason == "AlreadyExists" or (verb == "create" and reason != "Conflict"):
            return AlreadyExists(f"{where}: already exists ({detail})", status=status, payload=payload)
        return Conflict(f"{where}: conflict ({detail})", status=status, payload=payload)
    if status == 410:
        return Gone(f"{where}: resource version expired ({detail})", status=status, payload=payload)
    if status in (400, 422):
        return Invalid(f"{where}: rejected as invalid ({detail})", status=status, payload=payload)
    if status in TRANSIENT_STATUSES or status >= 500:
        return Transient(
            f"{where}: HTTP {status} ({detail})",
            status=status,
            payload=payload,
            retry_after=_retry_after(headers),
        )
    return KubeError(f"{where}: HTTP {status} ({detail})", status=status, payload=payload)


def _status_payload(body: Any) -> dict[str, Any] | None:
    """The body if it is a ``kind: Status`` object (message truncated), else ``None``."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not isinstance(body, str) or not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("kind") != "Status":
        return None
    kept = {k: data[k] for k in ("kind", "status", "reason", "code", "message", "details") if k in data}
    kept["message"] = truncate(str(kept.get("message", "")))
    return kept


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(str(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff

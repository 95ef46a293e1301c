"""The Kubernetes API errors the rest of the package sees.

The client library's exceptions change between releases (v36 added status subclasses, v37 made
bodies text and validates models with pydantic), so they never cross
:mod:`teraslice_k8s.kubernetes.api`: it maps every failure to one class of this small hierarchy,
chained (``raise ... from e``) so the original stays available in tracebacks.

Only a ``kind: Status`` payload is kept from an error body, and any text is cut to
:data:`BODY_MAX_CHARS`, because an arbitrary body (an HTML error page of a proxy, an echoed
manifest with the base64 ``EX`` env) must not end up in logs or API responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from teraslice_k8s.backend.base import BackendError

#: Longest error text kept from a response body (kopf's ``TEXT_ERROR_MAX_SIZE``).
BODY_MAX_CHARS: Final = 256


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

"""The error the master's use cases raise for the API to render as Teraslice's error body.

``ApiError(status, message)`` becomes ``{"error": status, "message": message}`` with that
HTTP status; ``problems`` (field-path messages of rejected input) is added to the body as
``"problems": [...]`` when present. Store, transition and validation errors raised by lower
layers are mapped in :mod:`teraslice_k8s.master.error_handlers`.
"""

from __future__ import annotations

from collections.abc import Sequence

from teraslice_k8s.errors import TerasliceError


class ApiError(TerasliceError):
    """A request the master refuses or cannot complete; ``str()`` is the user-facing message."""

    def __init__(self, status: int, message: str, problems: Sequence[str] = ()) -> None:
        self.status = status
        self.message = message
        self.problems = list(problems)
        super().__init__(message)

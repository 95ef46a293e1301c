"""Dead-letter handling: what an operation does with a record it rejects (Teraslice's
``rejectRecord`` / ``tryRecord``), chosen by the op's ``_dead_letter_action``:

| action | effect |
|---|---|
| ``throw`` (default) or empty | the error is raised: the slice fails |
| ``none`` | the record is dropped silently |
| ``log`` | the error and the record are logged at ERROR, the record dropped |
| the ``_name`` of a job API | that API's ``dead_letter(record, error)`` is called |

Every operation can use it (:func:`dead_letter_for`); submit-time validation already checks
that an API name exists in the job's ``apis``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from teraslice_k8s.runtime.operations.apis import OperationAPI, make_api
from teraslice_k8s.runtime.operations.base import Operation

log = logging.getLogger("teraslice_k8s.dead_letter")

T = TypeVar("T")


def _show(record: Any) -> str:
    if isinstance(record, bytes | bytearray):
        return bytes(record).decode("utf-8", "replace")
    try:
        return json.dumps(record, default=str)
    except (TypeError, ValueError):
        return repr(record)


class DeadLetter:
    """The dead-letter action of one operation (``op``'s ``_dead_letter_action``)."""

    def __init__(self, op: Operation, action: str | None = None) -> None:
        self.op = op
        self.action = action if action is not None else op.options.dead_letter_action
        self._api: OperationAPI | None = None

    @property
    def throws(self) -> bool:
        return self.action in ("throw", "")

    def reject(self, record: Any, error: BaseException) -> None:
        """Handle ``record`` rejected with ``error`` (raises ``error`` for ``throw``)."""
        action = self.action
        if action in ("throw", ""):
            raise error
        if action == "none":
            return
        if action == "log":
            log.error(
                "%s: record rejected: %s: %s; record: %s",
                self.op.options.op,
                type(error).__name__,
                error,
                _show(record),
            )
            return
        if self._api is None:
            self._api = make_api(self.op.context, action)
        self._api.dead_letter(record, error)

    def try_record(self, fn: Callable[[Any], T], record: Any) -> T | None:
        """``fn(record)``; on an exception the record is rejected and None returned."""
        try:
            return fn(record)
        except Exception as err:
            self.reject(record, err)
            return None

    def shutdown(self) -> None:
        if self._api is not None:
            self._api.shutdown()


def dead_letter_for(op: Operation) -> DeadLetter:
    return DeadLetter(op)

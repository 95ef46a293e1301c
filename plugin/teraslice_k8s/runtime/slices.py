"""Slices and their state records (api-and-runtime.md §4.4, §5.4).

A :class:`Slice` is what the execution controller queues and sends to a worker; its state
record is the same data with ``request`` as a JSON string plus ``state``, ``ex_id``,
timestamps and, once finished, ``record_count`` (extension: records the reader produced),
``retry_count`` (when retried) and ``error`` (the last failure).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from teraslice_k8s.store.timestamps import utc_now

#: Random UUIDs drawn per ``os.urandom`` call (one system call per slice cost more than the
#: rest of making the slice id).
_IDS_PER_DRAW = 256
_ids: list[str] = []


def new_slice_id() -> str:
    """A random (version 4) UUID string, like Teraslice's slice ids."""
    if not _ids:
        hx = os.urandom(16 * _IDS_PER_DRAW).hex()
        _ids.extend(
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
            for h in (hx[i : i + 32] for i in range(0, len(hx), 32))
        )
    return _ids.pop()


class SliceState(StrEnum):
    PENDING = "pending"
    START = "start"
    COMPLETED = "completed"
    ERROR = "error"


@dataclass(slots=True)
class Slice:
    slice_id: str
    slicer_id: int
    slicer_order: int
    request: dict[str, Any]
    #: The execution whose state record this is (the source execution for recovered slices).
    ex_id: str
    created: str = field(default_factory=utc_now)
    state: SliceState = SliceState.PENDING
    updated: str = ""
    retry_count: int = 0
    #: Times the slice was in flight on a worker that disconnected (re-dispatch budget).
    lost_count: int = 0
    record_count: int | None = None
    error: str | None = None
    _request_json: str = ""

    @classmethod
    def new(cls, ex_id: str, slicer_id: int, slicer_order: int, request: dict[str, Any]) -> Slice:
        return cls(new_slice_id(), slicer_id, slicer_order, request, ex_id)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Slice:
        request = record.get("request") or {}
        if isinstance(request, str):
            request = json.loads(request) if request else {}
        return cls(
            slice_id=str(record["slice_id"]),
            slicer_id=int(record.get("slicer_id", 0)),
            slicer_order=int(record.get("slicer_order", 0)),
            request=dict(request),
            ex_id=str(record["ex_id"]),
            created=str(record.get("_created") or utc_now()),
            state=SliceState(record.get("state", "pending")),
            retry_count=int(record.get("retry_count", 0) or 0),
        )

    def message(self) -> dict[str, Any]:
        """The slice as dispatched to a worker (Teraslice's Slice object)."""
        msg: dict[str, Any] = {
            "slice_id": self.slice_id,
            "slicer_id": self.slicer_id,
            "slicer_order": self.slicer_order,
            "request": self.request,
            "_created": self.created,
        }
        if self.retry_count:
            msg["retry_count"] = self.retry_count
        return msg

    @property
    def request_json(self) -> str:
        if not self._request_json:
            self._request_json = json.dumps(self.request, separators=(",", ":"))
        return self._request_json

    def record(self) -> dict[str, Any]:
        """The full state record (written with upsert semantics)."""
        rec: dict[str, Any] = {
            "slice_id": self.slice_id,
            "slicer_id": self.slicer_id,
            "slicer_order": self.slicer_order,
            "request": self.request_json,
            "state": str(self.state),
            "ex_id": self.ex_id,
            "_created": self.created,
            "_updated": self.updated or self.created,
        }
        if self.retry_count:
            rec["retry_count"] = self.retry_count
        if self.record_count is not None:
            rec["record_count"] = self.record_count
        if self.error is not None:
            rec["error"] = self.error
        return rec

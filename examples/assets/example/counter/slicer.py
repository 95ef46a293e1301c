"""Slicer of ``counter``: cuts ``total`` numbers into slices of ``per_slice``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from teraslice_k8s.runtime.operations.base import Slicer, SliceRequest


class CounterSlicer(Slicer):
    recoverable: ClassVar[bool] = True

    def __init__(self, total: int, per_slice: int) -> None:
        self.next, self.total, self.per_slice = 0, total, per_slice

    async def initialize(self, recovery: Sequence[Mapping[str, Any]] = ()) -> None:
        for item in recovery:  # resume after the last slice of a recovered execution
            last = item["lastSlice"]["request"]
            self.next = max(self.next, last["start"] + last["count"])

    async def slice(self) -> SliceRequest | None:
        if self.next >= self.total:
            return None
        count = min(self.per_slice, self.total - self.next)
        request = {"start": self.next, "count": count}
        self.next += count
        return request

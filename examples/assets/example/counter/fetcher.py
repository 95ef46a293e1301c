"""``counter``: a reader producing ``{"n": 0}``, ``{"n": 1}``... up to ``total`` records."""

from __future__ import annotations

from typing import ClassVar

from teraslice_k8s.runtime.operations.base import Batch, OpOptions, Reader, Slicer, SliceRequest

from .schema import CounterOptions
from .slicer import CounterSlicer


class Counter(Reader):
    Options: ClassVar[type[OpOptions]] = CounterOptions
    options: CounterOptions

    def make_slicers(self, count: int) -> list[Slicer]:
        return [CounterSlicer(self.options.total, self.options.per_slice)]

    async def fetch(self, request: SliceRequest) -> Batch:
        start = request["start"]
        return [{"n": n, "name": f"record {n}"} for n in range(start, start + request["count"])]

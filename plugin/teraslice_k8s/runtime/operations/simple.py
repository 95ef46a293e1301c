"""Built-in processors with Teraslice's names: ``noop``, ``delay`` and ``stdout``."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, ClassVar

from pydantic import Field, field_validator

from teraslice_k8s.models.schema import parse_duration
from teraslice_k8s.runtime.operations.base import Batch, OpOptions, Processor, SliceRequest


class NoopOptions(OpOptions):
    """``noop`` has no options of its own."""


class Noop(Processor):
    """Returns the batch unchanged."""

    Options: ClassVar[type[OpOptions]] = NoopOptions

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        return batch


#: Longest wait per slice ``delay`` takes: one day (longer is a mistake, not a pause).
MAX_DELAY_MS = 86_400_000


class DelayOptions(OpOptions):
    ms: int = Field(100, ge=0, le=MAX_DELAY_MS, description="milliseconds to wait per slice (at most a day)")

    @field_validator("ms", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int:
        return parse_duration(value)


class Delay(Processor):
    """Waits ``ms`` per slice, then passes the batch through."""

    Options: ClassVar[type[OpOptions]] = DelayOptions
    options: DelayOptions

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        await asyncio.sleep(self.options.ms / 1000)
        return batch


class StdoutOptions(OpOptions):
    limit: int = Field(0, ge=0, description="print only the first N records (0 = all)")


class Stdout(Processor):
    """Prints the batch (or its first ``limit`` records) as JSON lines and passes it through."""

    Options: ClassVar[type[OpOptions]] = StdoutOptions
    options: StdoutOptions

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        shown = batch[: self.options.limit] if self.options.limit else batch
        sys.stdout.write("".join(json.dumps(r, default=str) + "\n" for r in shown))
        sys.stdout.flush()
        return batch

"""The shutdown flush (Teraslice's ``onFlushStart`` / ``onFlushEnd``): when a worker stops, the
processors that hold records across slices (``window``, ``accumulate``, ``accumulate_by_key``
of the standard asset) get one more, empty, pass through the pipeline so they can emit what
they hold, and the processors after them (e.g. ``routed_sender``) deliver it.

A processor takes part by defining ``on_flush_start()`` (and optionally ``on_flush_end()``);
with none defined the flush costs nothing. A failing flush is logged, not raised: the worker's
slices are already recorded."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from teraslice_k8s.runtime.operations.base import Processor

log = logging.getLogger(__name__)


def wants_flush(processors: Sequence[Processor]) -> bool:
    return any(callable(getattr(p, "on_flush_start", None)) for p in processors)


async def flush(processors: Sequence[Processor]) -> list[Any]:
    """Run the flush pass; returns the records the last processor returned."""
    if not wants_flush(processors):
        return []
    for proc in processors:
        start = getattr(proc, "on_flush_start", None)
        if callable(start):
            await start()
    batch: list[Any] = []
    try:
        for proc in processors:
            batch = await proc.process(batch, {"flush": True})
    finally:
        for proc in processors:
            end = getattr(proc, "on_flush_end", None)
            if callable(end):
                await end()
    log.info("shutdown flush: %d records through the pipeline", len(batch))
    return batch


async def flush_quietly(processors: Sequence[Processor]) -> None:
    try:
        await flush(processors)
    except Exception as exc:
        log.error("shutdown flush failed: %s: %s", type(exc).__name__, exc, exc_info=True)

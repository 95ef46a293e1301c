"""The wake-ups the execution controller's parts signal each other with (one event loop).

The controller (:mod:`.execution_controller`), its worker dispatch (:mod:`.dispatch`) and its
slicer driver (:mod:`.slicing`) share one :class:`ControllerEvents`; each event says what
changed, the task waiting on it re-reads the scheduler (events carry no data).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(slots=True)
class ControllerEvents:
    #: Slices or workers became available: the dispatch loop pairs them.
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    #: The slice queue has room (or the execution resumed): the slicer loop makes more.
    space: asyncio.Event = field(default_factory=asyncio.Event)
    #: The execution is over (finished, failed, stopped or shut down): ``run`` finishes.
    done: asyncio.Event = field(default_factory=asyncio.Event)
    #: Nothing is in flight (the shutdown drain waits for it).
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    #: A worker connected at least once.
    worker_seen: asyncio.Event = field(default_factory=asyncio.Event)
    #: At least one worker is connected (cleared when the last one left).
    worker_back: asyncio.Event = field(default_factory=asyncio.Event)
    #: Every worker left (cleared when one connects).
    all_gone: asyncio.Event = field(default_factory=asyncio.Event)
    #: No slice is outstanding (a recovery batch is done).
    recovery_drained: asyncio.Event = field(default_factory=asyncio.Event)


async def first_of(*events: asyncio.Event) -> None:
    """Return as soon as any of ``events`` is set."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

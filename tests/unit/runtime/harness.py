"""In-process execution controller + workers over real websockets, on a real SQLite store."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from teraslice_k8s.runtime.execution_controller import ExecutionController
from teraslice_k8s.runtime.operations import registry
from teraslice_k8s.runtime.operations.base import Batch, OpOptions, Processor, SliceRequest
from teraslice_k8s.runtime.settings import RuntimeSettings
from teraslice_k8s.runtime.worker import Worker
from teraslice_k8s.store.base import Page, SliceFilter
from teraslice_k8s.store.sqlite import SqliteStore

#: Bound for every wait in these tests (a hang fails instead of blocking the suite).
WAIT = 30.0


class FailOptions(OpOptions):
    fail_at: list[int] = []
    #: Fail only the first N attempts of those slices (then succeed).
    attempts: int = 1000


class FailOn(Processor):
    """Fails slices whose request ``processed`` offset is in ``fail_at``."""

    Options: ClassVar[type[OpOptions]] = FailOptions
    options: FailOptions
    tries: ClassVar[dict[int, int]] = {}

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        at = int(request.get("processed", -1))
        if at in self.options.fail_at:
            FailOn.tries[at] = FailOn.tries.get(at, 0) + 1
            if FailOn.tries[at] <= self.options.attempts:
                raise RuntimeError(f"failing slice at {at}")
        return batch


class GateOptions(OpOptions):
    """``gate`` has no options (every operation declares its schema)."""


class Gate(Processor):
    """Blocks every slice until the test opens the gate; ``entered`` is set on the first."""

    Options: ClassVar[type[OpOptions]] = GateOptions
    entered: ClassVar[asyncio.Event]
    gate: ClassVar[asyncio.Event]

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        Gate.entered.set()
        await Gate.gate.wait()
        return batch


class GateAtOptions(OpOptions):
    #: The request ``processed`` offsets of the slices to hold.
    at: list[int] = []


class GateAt(Processor):
    """Holds the slices at ``at`` (request ``processed`` offsets) until the test opens
    :attr:`Gate.gate`; ``Gate.entered`` is set when one is held. Other slices pass."""

    Options: ClassVar[type[OpOptions]] = GateAtOptions
    options: GateAtOptions

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        if int(request.get("processed", -1)) in self.options.at:
            Gate.entered.set()
            await Gate.gate.wait()
        return batch


@dataclass
class _EP:
    name: str
    cls: type

    @property
    def value(self) -> str:
        return f"tests:{self.cls.__name__}"

    def load(self) -> type:
        return self.cls


@pytest.fixture
def test_ops(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = registry._entry_points()
    extra = {"fail_on": _EP("fail_on", FailOn), "gate": _EP("gate", Gate), "gate_at": _EP("gate_at", GateAt)}
    monkeypatch.setattr(registry, "_entry_points", lambda: {**real, **extra})
    registry.get_operation.cache_clear()
    FailOn.tries = {}
    Gate.entered = asyncio.Event()
    Gate.gate = asyncio.Event()
    yield
    registry.get_operation.cache_clear()


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait (bounded) for a condition that has no event to wait on."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    def __init__(self, tmp_path: Path, job: dict[str, Any], **settings: Any) -> None:
        self.store = SqliteStore(tmp_path / "state.sqlite", synchronous="NORMAL")
        self.port = free_port()
        record = {
            "name": "test",
            "lifecycle": "once",
            "workers": 1,
            "max_retries": 0,
            "analytics": True,
            **job,
            "job_id": str(uuid.uuid4()),
            "ex_id": str(uuid.uuid4()),
            "metadata": {},
            "_status": "pending",
            "slicer_hostname": "127.0.0.1",
            "slicer_port": self.port,
        }
        self.ex = self.store.create_execution(record)
        self.store.set_status(self.ex["ex_id"], "scheduling")
        self.store.set_status(self.ex["ex_id"], "initializing")
        self.settings = RuntimeSettings(hostname="127.0.0.1", **settings)
        self.controller = ExecutionController(
            self.ex, self.store, self.settings, host="127.0.0.1", port=self.port
        )
        self.workers: list[Worker] = []
        self.worker_tasks: list[asyncio.Task[int]] = []
        self.ec_task: asyncio.Task[int] | None = None

    @property
    def ex_id(self) -> str:
        return str(self.ex["ex_id"])

    async def start(self, workers: int = 0) -> None:
        self.ec_task = asyncio.create_task(self.controller.run(handle_signals=False))
        await wait_until(lambda: self.controller.ready or (self.ec_task is not None and self.ec_task.done()))
        for _ in range(workers):
            self.add_worker()

    def add_worker(self) -> Worker:
        worker = Worker(self.ex, self.settings, url=f"ws://127.0.0.1:{self.port}/worker")
        self.workers.append(worker)
        self.worker_tasks.append(asyncio.create_task(worker.run(handle_signals=False)))
        return worker

    async def finish(self) -> dict[str, Any]:
        assert self.ec_task is not None
        assert await asyncio.wait_for(self.ec_task, WAIT) == 0
        codes = await asyncio.wait_for(asyncio.gather(*self.worker_tasks, return_exceptions=True), WAIT)
        assert all(c == 0 or isinstance(c, asyncio.CancelledError) for c in codes), codes
        return self.store.get_execution(self.ex_id)

    def slices(self) -> list[dict[str, Any]]:
        return self.store.list_slices(
            SliceFilter(ex_id=self.ex_id), Page(size=10000, sort="slicer_order:asc")
        )

    def close(self) -> None:
        self.store.close()

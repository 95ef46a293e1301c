"""A worker told to shut down while its connection to the controller is still opening stops at
once: a controller that is going away may accept the TCP connection and never answer the
websocket handshake, and the worker must not wait out the open timeout (it once took a stopping
execution's workers 10 s to exit)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from teraslice_k8s.runtime import worker as worker_module
from teraslice_k8s.runtime.settings import RuntimeSettings
from teraslice_k8s.runtime.worker import Worker

from .harness import Cluster

GEN = {"_op": "data_generator", "size": 10}
#: A bound on the test itself (the open timeout is patched to an hour, so only the fix ends it).
BOUND = 30.0


async def test_shutdown_while_the_handshake_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "OPEN_TIMEOUT", 3600.0)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never answers
    port = silent.getsockname()[1]
    try:
        execution = {"ex_id": "ex-1", "job_id": "job-1", "operations": []}
        worker = Worker(execution, RuntimeSettings(hostname="127.0.0.1"), url=f"ws://127.0.0.1:{port}/worker")
        opening = asyncio.ensure_future(worker._open(60.0, 60.0))
        await asyncio.sleep(0)  # let the connect start
        assert not opening.done()
        worker.request_shutdown()
        assert await asyncio.wait_for(opening, BOUND) is None
    finally:
        silent.close()


async def test_an_answering_controller_is_still_connected(monkeypatch: pytest.MonkeyPatch) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        execution = {"ex_id": "ex-1", "job_id": "job-1", "operations": []}
        worker = Worker(execution, RuntimeSettings(hostname="127.0.0.1"), url=f"ws://127.0.0.1:{port}/worker")
        connection = await asyncio.wait_for(worker._open(60.0, 60.0), BOUND)
        assert connection is not None
        await connection.close()


async def test_a_controller_refuses_a_worker_of_another_execution(tmp_path: Path) -> None:
    """Controllers sharing a host (pods without network namespaces) must not take each other's
    workers: the hello names the execution, and a mismatch is closed with 1008."""
    cluster = Cluster(tmp_path, {"lifecycle": "persistent", "operations": [GEN, {"_op": "noop"}]})
    try:
        await cluster.start()
        url = f"ws://127.0.0.1:{cluster.port}/worker"
        async with connect(url) as ws:
            await ws.send(
                json.dumps({"type": "hello", "worker_id": "other__1", "ex_id": "another-execution"})
            )
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), BOUND)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            1008,
            f"this controller runs execution {cluster.ex_id}",
        )
        assert cluster.controller.connections == {}
    finally:
        cluster.controller.request_shutdown()
        if cluster.ec_task is not None:
            await asyncio.wait_for(cluster.ec_task, BOUND)
        cluster.close()

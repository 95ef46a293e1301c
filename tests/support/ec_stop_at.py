"""``python tests/support/ec_stop_at.py``: the runtime entry (``python -m teraslice_k8s.runtime``)
with a stop injected into the execution controller's start-up, for local-backend tests
(``LocalBackend.command``).

With ``TS_TEST_STOP_AT=<step>`` (one of ``STARTUP_STEPS``) and ``TS_TEST_MASTER_URL``, the
controller, right after that step, sends ``_stop`` for its execution to the master (not
blocking, from a thread: the master's stop SIGTERMs this very process) and waits (bounded) until
the SIGTERM has arrived, so the stop has fully landed at that step before start-up goes on.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import httpx

from teraslice_k8s.runtime import execution_controller as ec

STEP = os.environ.get("TS_TEST_STOP_AT", "")
MASTER = os.environ.get("TS_TEST_MASTER_URL", "")
_original = ec.ExecutionController._step


async def _step(self: ec.ExecutionController, name: str) -> None:
    await _original(self, name)
    if name != STEP:
        return
    url = f"{MASTER}/v1/ex/{self.ex_id}/_stop"
    # A daemon thread: the master answers this request only once this process is gone (the
    # local backend's stop waits for its processes), so a non-daemon thread would keep the
    # process alive until the master's SIGKILL after shutdown_timeout.
    threading.Thread(
        target=httpx.post, args=(url,), kwargs={"params": {"blocking": "false"}, "timeout": 60}, daemon=True
    ).start()
    for _ in range(2000):  # bounded: 20 s
        if self._shutdown:
            return
        await asyncio.sleep(0.01)


ec.ExecutionController._step = _step  # type: ignore[method-assign]

if __name__ == "__main__":
    from teraslice_k8s.runtime.node import main

    sys.exit(main())

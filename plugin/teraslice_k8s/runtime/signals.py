"""SIGTERM/SIGINT handling shared by the execution controller and the worker, and the
orphan watch of local processes (their parent gone is a SIGTERM)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable

#: How often a local runtime process checks that its parent still exists (seconds).
ORPHAN_CHECK_INTERVAL_S = 1.0


def on_shutdown_signals(callback: Callable[[], None]) -> None:
    """Call ``callback`` on the running loop when SIGTERM or SIGINT arrives (Kubernetes stops a
    pod with SIGTERM). Where the loop cannot handle signals (not the main thread, or a platform
    without ``add_signal_handler``) nothing is installed and the default handling stays."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)


def terminate_when_orphaned(parent_pid: int, interval: float = ORPHAN_CHECK_INTERVAL_S) -> threading.Thread:
    """Send this process SIGTERM once its parent is no longer ``parent_pid`` (the process that
    started it died, even by SIGKILL, and this one was re-parented). SIGTERM takes the normal
    shutdown path (:func:`on_shutdown_signals`), or ends the process if no handler is installed
    yet. Checked every ``interval`` seconds from a daemon thread; returns that thread."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="orphan-watch", daemon=True)
    thread.start()
    return thread

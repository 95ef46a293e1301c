"""SIGTERM/SIGINT handling shared by the execution controller and the worker."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable


def on_shutdown_signals(callback: Callable[[], None]) -> None:
    """Call ``callback`` on the running loop when SIGTERM or SIGINT arrives (Kubernetes stops a
    pod with SIGTERM). Where the loop cannot handle signals (not the main thread, or a platform
    without ``add_signal_handler``) nothing is installed and the default handling stays."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)

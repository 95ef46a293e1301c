"""Keep the master's resident memory from ratcheting up under bursts of large requests.

The API parses request bodies in worker threads that come and go (the thread pool ends idle
threads). With glibc, every new thread may get its own malloc arena (up to 8 per core), and
memory freed in an arena is kept for reuse rather than returned to the system: after a few
bursts of large or deeply nested bodies the process held 250 MB it no longer used (issue 9).
:func:`limit_malloc_arenas` caps the arenas at :data:`MALLOC_ARENAS` (what
``MALLOC_ARENA_MAX`` would do, set from inside the process) and :func:`release_free_memory`
hands freed memory back (``malloc_trim``) after a large body. Both do nothing where the C
library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

#: glibc's ``M_ARENA_MAX`` ``mallopt`` parameter.
_M_ARENA_MAX = -8
#: Arenas the master's allocations may use (threads share them beyond this).
MALLOC_ARENAS = 2
#: Bodies at least this large are followed by a trim.
TRIM_AFTER_BYTES = 1024 * 1024

_libc: ctypes.CDLL | None = None
_trim_lock = threading.Lock()


def _glibc() -> ctypes.CDLL | None:
    global _libc  # noqa: PLW0603 - loaded once per process
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name or "libc.so.6")
            libc.malloc_trim  # noqa: B018 - only glibc has it
            libc.mallopt  # noqa: B018
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for threads started from now on; False where unsupported."""
    libc = _glibc()
    if libc is None:
        return False
    done = bool(libc.mallopt(_M_ARENA_MAX, arenas))
    log.debug("malloc arenas capped at %d: %s", arenas, done)
    return done


def release_free_memory() -> None:
    """Return the C heap's free memory to the system (one caller at a time; others skip)."""
    libc = _glibc()
    if libc is None or not _trim_lock.acquire(blocking=False):
        return
    try:
        libc.malloc_trim(0)
    finally:
        _trim_lock.release()

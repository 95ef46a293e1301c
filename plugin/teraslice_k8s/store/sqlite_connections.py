"""Connections to one SQLite file, shared by every SQLite-backed store (state, assets).

Contract (the concurrency model of :mod:`teraslice_k8s.store.sqlite`):
- WAL journal, so readers never block the (single) writer and vice versa; ``busy_timeout``
  (seconds) makes a writer wait for another process's write instead of failing at once.
- One connection per thread, created on first use and re-created after ``fork`` (a connection
  inherited from the parent is never used by the child), so one object may be shared by any
  number of threads. The connection of a thread that has ended is closed when another thread
  opens one, so pools that churn threads cannot pile connections up.
- :meth:`SqliteConnections.write` is one short ``BEGIN IMMEDIATE`` transaction: the write
  lock is taken before the first statement, so a read-check-write cannot interleave with
  another process's, and SQLite's "upgrade a read lock" deadlock cannot happen. It commits
  when the block ends and rolls back when it raises.
- Every ``sqlite3.Error`` surfaces as :class:`~teraslice_k8s.store.base.StoreError` naming the
  file (and ``label``), with the SQLite error chained as its cause, so callers can tell an
  integrity error (a duplicate id) from other failures.
- After :meth:`SqliteConnections.close` every call raises ``StoreError``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from teraslice_k8s.store.base import StoreError


class SqliteConnections:
    """Per-thread connections to the SQLite file at ``path`` (not created until first use).

    ``synchronous``: the ``PRAGMA synchronous`` of every connection, or None for SQLite's
    default. ``label``: added to error messages after the path (``"assets"`` gives
    ``SQLite store state.sqlite (assets): ...``).
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float,
        synchronous: Literal["FULL", "NORMAL"] | None = None,
        label: str | None = None,
    ) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._what = f"SQLite store {path}" + (f" ({label})" if label else "")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        #: The thread each connection belongs to (by ``id(conn)``): a dead thread's connection
        #: is closed when another is opened, so thread churn cannot pile connections up.
        self._owners: dict[int, threading.Thread] = {}
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            if self._synchronous is not None:
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
        except sqlite3.Error as error:
            raise StoreError(f"cannot open SQLite store {self.path}: {error}") from error
        return conn

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use, and again after ``fork``)."""
        if self._closed:
            raise StoreError(f"SQLite store {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A connection inherited through fork() must not be used by the child.
        if conn is None or self._local.pid != os.getpid():
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._close_orphans()
                self._connections.append(conn)
                self._owners[id(conn)] = threading.current_thread()
        return conn

    def _close_orphans(self) -> None:
        """Close the connections of threads that have ended (caller holds ``_lock``).

        Worker-thread pools (the API's, anyio's) end idle threads and start new ones; without
        this every new thread's connection stayed open for the life of the store: a file
        descriptor trio (WAL) and up to a page cache each, the master's memory growth."""
        alive = []
        for conn in self._connections:
            owner = self._owners.get(id(conn))
            if owner is not None and not owner.is_alive():
                del self._owners[id(conn)]
                conn.close()
            else:
                alive.append(conn)
        self._connections = alive

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn a ``sqlite3.Error`` raised in the block into a chained ``StoreError``."""
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(f"{self._what}: {error}") from error

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction holding the write lock from its first statement."""
        conn = self.conn()
        with self.errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def read(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Every row of one query, outside any transaction."""
        with self.errors():
            return self.conn().execute(sql, params).fetchall()

    def close(self) -> None:
        """Close every connection (all threads); later calls raise ``StoreError``."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

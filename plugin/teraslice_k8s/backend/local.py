"""The local backend (``cluster_manager_type: local``): executions as local processes.

Each execution gets one execution-controller process and ``workers`` worker processes, all
``sys.executable -m teraslice_k8s.runtime`` with the pod environment (``NODE_TYPE``, ``EX``,
``POD_IP=127.0.0.1``, ``TERAFOUNDATION_CONFIG``, ``TERASLICE_SLICER_PORT``) plus the job's
``env_vars``, and ``TERASLICE_PARENT_PID`` (this process's pid: a runtime process whose parent
is gone shuts down as on SIGTERM, so a killed master leaves no orphans running). The
controller listens on a free local port chosen at allocation.

Events (to the listener given to :meth:`LocalBackend.start`, from a monitor thread):
``CONTROLLER_SUCCEEDED`` when the controller exits 0, ``CONTROLLER_FAILED`` with
``"execution controller exited with code N: <last stderr lines>"`` otherwise, and ``GONE``
when no process of the execution is left. When the controller exits, the workers still
running get SIGTERM (they finish their slice and exit) and SIGKILL after ``shutdown_timeout``.

Process output goes to ``<log_dir>/<ex_id>/{execution_controller,worker-N}.log``; the tail
of the controller's log is what a failure event reports.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from teraslice_k8s import TERASLICE_COMPAT_VERSION
from teraslice_k8s.backend.base import (
    BackendError,
    BackendEvent,
    ControllerAddress,
    EventKind,
    EventListener,
    ScaleAction,
    new_worker_total,
)

LOCAL_HOST = "127.0.0.1"
#: Env var naming the pid of the process that started a runtime process (see the module doc).
PARENT_PID_ENV = "TERASLICE_PARENT_PID"
STDERR_TAIL_LINES = 20


def free_port(host: str = LOCAL_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def encode_ex(execution: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(dict(execution), separators=(",", ":")).encode()).decode()


@dataclass(slots=True)
class _Proc:
    popen: subprocess.Popen[bytes]
    role: str
    log_path: Path
    log_file: IO[bytes]
    started: float = field(default_factory=time.time)


@dataclass(slots=True)
class _Execution:
    ex_id: str
    job_id: str
    execution: dict[str, Any]
    port: int
    controller: _Proc | None = None
    workers: list[_Proc] = field(default_factory=list)
    controller_reported: bool = False
    controller_exit: float | None = None
    worker_seq: int = 0


class LocalBackend:
    """:class:`~teraslice_k8s.backend.base.Backend` running processes on this machine."""

    clustering_type = "local"
    executions_survive_master = False

    def __init__(
        self,
        *,
        config_path: str | os.PathLike[str] | None = None,
        log_dir: str | os.PathLike[str] = ".teraslice/logs",
        shutdown_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        poll_interval: float = 0.1,
        command: Sequence[str] | None = None,
        worker_stdout_passthrough: bool = False,
        node_hostname: str = LOCAL_HOST,
    ) -> None:
        self.config_path = str(config_path) if config_path else None
        self.log_dir = Path(log_dir)
        self.shutdown_timeout = shutdown_timeout
        self.extra_env = dict(env or {})
        self.poll_interval = poll_interval
        #: What starts a runtime process (the environment says which role).
        self.command = list(command) if command else [sys.executable, "-m", "teraslice_k8s.runtime"]
        #: Workers' stdout goes to this process's stdout (``stdout`` operation output), their
        #: stderr (logs) still to the log file.
        self.worker_stdout_passthrough = worker_stdout_passthrough
        #: ``hostname`` of the node in the cluster state (the master's ``teraslice.hostname``).
        self.node_hostname = node_hostname
        self._lock = threading.RLock()
        self._executions: dict[str, _Execution] = {}
        self._listener: EventListener | None = None
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None

    # -- lifecycle --

    def start(self, listener: EventListener) -> None:
        self._listener = listener
        self._monitor = threading.Thread(target=self._watch, name="local-backend-monitor", daemon=True)
        self._monitor.start()

    def close(self) -> None:
        self._stop.set()
        for ex_id in list(self.execution_ids()):
            self.stop_execution(ex_id)
        if self._monitor is not None:
            self._monitor.join(timeout=5)

    # -- allocation --

    def _env(self, execution: Mapping[str, Any], node_type: str, port: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update({str(k): str(v) for k, v in (execution.get("env_vars") or {}).items()})
        env.update(self.extra_env)
        env.update(
            {
                "NODE_TYPE": node_type,
                "EX": encode_ex(execution),
                "POD_IP": LOCAL_HOST,
                "TERASLICE_SLICER_PORT": str(port),
                "PYTHONUNBUFFERED": "1",
                PARENT_PID_ENV: str(os.getpid()),
            }
        )
        if self.config_path:
            env["TERAFOUNDATION_CONFIG"] = self.config_path
        return env

    def _spawn(self, state: _Execution, node_type: str, name: str) -> _Proc:
        folder = self.log_dir / state.ex_id
        folder.mkdir(parents=True, exist_ok=True)
        log_path = folder / f"{name}.log"
        passthrough = node_type == "worker" and self.worker_stdout_passthrough
        log_file = open(log_path, "ab")  # noqa: SIM115 - owned by _Proc, closed when reaped
        try:
            popen = subprocess.Popen(
                self.command,
                env=self._env(state.execution, node_type, state.port),
                stdin=subprocess.DEVNULL,
                stdout=None if passthrough else log_file,
                stderr=log_file if passthrough else subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            log_file.close()
            raise BackendError(f"cannot start {node_type} for execution {state.ex_id}: {exc}") from exc
        return _Proc(popen, node_type, log_path, log_file)

    def allocate_controller(self, execution: Mapping[str, Any]) -> ControllerAddress:
        ex_id = str(execution["ex_id"])
        with self._lock:
            if ex_id in self._executions and self._executions[ex_id].controller is not None:
                raise BackendError(f"execution {ex_id} already has an execution controller")
            port = free_port()
            record = {**dict(execution), "slicer_hostname": LOCAL_HOST, "slicer_port": port}
            state = _Execution(ex_id, str(execution.get("job_id", "")), record, port)
            state.controller = self._spawn(state, "execution_controller", "execution_controller")
            self._executions[ex_id] = state
        return ControllerAddress(LOCAL_HOST, port)

    def allocate_workers(self, execution: Mapping[str, Any]) -> None:
        ex_id = str(execution["ex_id"])
        with self._lock:
            state = self._executions.get(ex_id)
            if state is None:
                raise BackendError(f"execution {ex_id} has no execution controller")
            state.execution = {
                **dict(execution),
                "slicer_hostname": execution.get("slicer_hostname") or LOCAL_HOST,
                "slicer_port": execution.get("slicer_port") or state.port,
            }
            self._add_workers(state, int(execution.get("workers", 1)))

    def _add_workers(self, state: _Execution, count: int) -> None:
        for _ in range(count):
            state.worker_seq += 1
            state.workers.append(self._spawn(state, "worker", f"worker-{state.worker_seq}"))

    # -- stop / scale --

    def stop_execution(self, ex_id: str, *, force: bool = False) -> None:
        """SIGTERM every process of the execution, SIGKILL what is left after
        ``shutdown_timeout`` (at once with ``force``). Returns once they are all gone (and
        :meth:`execution_ids` no longer lists the execution, unless workers were added
        meanwhile: the master's allocator stops it again then)."""
        with self._lock:
            state = self._executions.get(ex_id)
            if state is None:
                return
            procs = [p for p in [state.controller, *state.workers] if p is not None]
        _terminate(procs, 0 if force else self.shutdown_timeout)
        self._reap(ex_id)

    def scale_workers(self, ex_id: str, action: ScaleAction, count: int) -> int:
        with self._lock:
            state = self._executions.get(ex_id)
            if state is None:
                raise BackendError(f"execution {ex_id} is not running")
            alive = [w for w in state.workers if w.popen.poll() is None]
            target = new_worker_total(ex_id, len(alive), action, count)
            current = len(alive)
            if target > current:
                self._add_workers(state, target - current)
                return target
            victims = alive[target:]
        _terminate(victims, self.shutdown_timeout)
        return target

    # -- observation --

    def execution_ids(self) -> set[str]:
        with self._lock:
            return set(self._executions)

    def processes(self, ex_id: str) -> dict[str, list[int]]:
        """Pids of the execution's living processes by role (tests and ``run`` use it)."""
        with self._lock:
            state = self._executions.get(ex_id)
            if state is None:
                return {"execution_controller": [], "worker": []}
            ctl = state.controller
            return {
                "execution_controller": [ctl.popen.pid] if ctl and ctl.popen.poll() is None else [],
                "worker": [w.popen.pid for w in state.workers if w.popen.poll() is None],
            }

    def crashed_workers(self, ex_id: str) -> list[str]:
        """One line per worker of the execution that exited non-zero: exit code and output tail."""
        with self._lock:
            state = self._executions.get(ex_id)
            workers = list(state.workers) if state is not None else []
        out = []
        for worker in workers:
            code = worker.popen.poll()
            if code not in (None, 0):
                out.append(
                    f"{worker.log_path.stem} exited with code {_describe(code)}: {_tail(worker.log_path, 5)}"
                )
        return out

    def _active(self) -> list[dict[str, Any]]:
        """One ``active`` entry per living process (controller first, then workers, by execution)."""
        active: list[dict[str, Any]] = []
        with self._lock:
            for state in self._executions.values():
                procs = [p for p in [state.controller, *state.workers] if p is not None]
                for proc in procs:
                    if proc.popen.poll() is not None:
                        continue
                    active.append(
                        {
                            "worker_id": proc.popen.pid,
                            "assignment": proc.role,
                            "pid": proc.popen.pid,
                            "ex_id": state.ex_id,
                            "job_id": state.job_id,
                            "assets": list(state.execution.get("assets") or []),
                        }
                    )
        return active

    def state_version(self) -> Hashable:
        """Changes whenever :meth:`cluster_state` would (the living processes and what they run);
        read live, so a process that joined or exited shows in the next ``/cluster/state``."""
        return tuple(
            (e["pid"], e["assignment"], e["ex_id"], e["job_id"], tuple(e["assets"])) for e in self._active()
        )

    def cluster_state(self) -> dict[str, Any]:
        """Teraslice's native cluster state: this machine as one node (id: its host name,
        ``hostname``: the configured ``teraslice.hostname``) whose ``active`` lists exactly the
        living controller and worker processes, read from the processes at each call."""
        node_id = socket.gethostname()
        active = self._active()
        return {
            node_id: {
                "node_id": node_id,
                "hostname": self.node_hostname,
                "pid": os.getpid(),
                "node_version": f"python{sys.version_info.major}.{sys.version_info.minor}",
                # A native Teraslice node reports its version without the "v" of GET /.
                "teraslice_version": TERASLICE_COMPAT_VERSION.removeprefix("v"),
                "total": os.cpu_count() or 1,
                "state": "connected",
                "available": max((os.cpu_count() or 1) - len(active), 0),
                "active": active,
            }
        }

    def call_controller(
        self,
        execution: Mapping[str, Any],
        method: str,
        path: str,
        params: Mapping[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        """``method`` ``path`` on the controller process this backend started for the execution,
        at ``127.0.0.1:<the port it chose>`` (sent once; no retry)."""
        ex_id = str(execution.get("ex_id", ""))
        with self._lock:
            state = self._executions.get(ex_id)
            port = state.port if state is not None and state.controller is not None else None
        if port is None:
            raise BackendError(f"execution {ex_id} has no execution controller process on this machine")
        url = f"http://{LOCAL_HOST}:{port}{path}"
        try:
            response = httpx.request(
                method,
                url,
                params=dict(params) or None,
                timeout=timeout,
                headers={"Accept": "application/json"},
            )
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendError(f"{method} {url} (execution {ex_id}) failed: {exc}") from exc
        if not isinstance(body, dict):
            raise BackendError(
                f"{method} {url} (execution {ex_id}) answered {type(body).__name__}, not an object"
            )
        return body

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self.poll()

    def poll(self) -> None:
        """Check the processes once and emit events (the monitor thread calls this)."""
        events: list[BackendEvent] = []
        stale: list[_Execution] = []
        with self._lock:
            for state in list(self._executions.values()):
                ctl = state.controller
                if ctl is not None and not state.controller_reported:
                    code = ctl.popen.poll()
                    if code is not None:
                        state.controller_reported = True
                        state.controller_exit = time.monotonic()
                        ctl.log_file.close()
                        # Like the master deleting the worker Deployment on execution:finished:
                        # workers get SIGTERM now and SIGKILL after shutdown_timeout (below).
                        for worker in state.workers:
                            if worker.popen.poll() is None:
                                _signal(worker, signal.SIGTERM)
                        if code == 0:
                            events.append(BackendEvent(state.ex_id, EventKind.CONTROLLER_SUCCEEDED))
                        else:
                            events.append(
                                BackendEvent(
                                    state.ex_id,
                                    EventKind.CONTROLLER_FAILED,
                                    f"execution controller exited with code {_describe(code)}: "
                                    f"{_tail(ctl.log_path)}",
                                )
                            )
                if (
                    state.controller_exit is not None
                    and time.monotonic() - state.controller_exit > self.shutdown_timeout
                    and any(w.popen.poll() is None for w in state.workers)
                ):
                    stale.append(state)
                alive = [p for p in [ctl, *state.workers] if p is not None and p.popen.poll() is None]
                if not alive and state.controller_reported:
                    del self._executions[state.ex_id]
                    for w in state.workers:
                        w.log_file.close()
                    events.append(BackendEvent(state.ex_id, EventKind.GONE))
        for state in stale:
            _terminate([w for w in state.workers if w.popen.poll() is None], 0)
        if self._listener is not None:
            for event in events:
                self._listener(event)

    def _reap(self, ex_id: str) -> None:
        self.poll()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"{code} ({signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


def _tail(path: Path, lines: int = STDERR_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as fh:
            text = deque(fh, maxlen=lines)
    except OSError:
        return "(no output)"
    return "".join(line.decode("utf-8", "replace") for line in text).strip() or "(no output)"


def _terminate(procs: list[_Proc], timeout: float) -> None:
    """SIGTERM (the process group), wait up to ``timeout``, then SIGKILL the survivors."""
    for proc in procs:
        if proc.popen.poll() is None:
            _signal(proc, signal.SIGTERM if timeout > 0 else signal.SIGKILL)
    deadline = time.monotonic() + timeout
    for proc in procs:
        remaining = deadline - time.monotonic()
        try:
            proc.popen.wait(timeout=max(remaining, 0.01))
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            proc.popen.wait()


def _signal(proc: _Proc, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, sig)

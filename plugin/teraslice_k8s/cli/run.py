"""``teraslice-k8s run JOB.json``: run one job to the end on this machine (no cluster needed).

Validates the job (invalid: field paths on stderr, exit 2), stores the job and a ``pending``
execution in the configured store (default: SQLite at ``<data-dir>/state.sqlite``), starts it
with the master's allocator on the :class:`~teraslice_k8s.backend.local.LocalBackend`
(``pending -> scheduling -> initializing``, then the controller takes over), shows progress
(slices, records, records/s) read from the controller's ``/analytics`` (not for jobs with a
``stdout`` operation: their workers print to this terminal instead), prints a summary and
exits 0 iff the execution ``completed`` (1 otherwise). Ctrl-C (or SIGTERM) stops the execution
(``stopping``; ``stopped`` is written once its processes are gone).

If the controller process dies, the execution is marked ``failed`` with the exit code and the
tail of its output as ``_failureReason`` (what the master does with the backend's event).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from teraslice_k8s.cli.output import description
from teraslice_k8s.logs import FORMAT_ENV, FORMATS, LEVEL_NAMES

DEFAULT_DATA_DIR = ".teraslice"


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "run",
        help="run a job locally until it finishes (controller and workers as local processes)",
        description=description(__doc__),
    )
    parser.add_argument("job", help="job file (JSON)")
    parser.add_argument(
        "--config",
        help="cluster config file, teraslice.yaml (default: local mode, SQLite under --data-dir; "
        "a config without teraslice.storage.path keeps its SQLite file under --data-dir too)",
    )
    parser.add_argument("--workers", type=int, help="override the job's worker count")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse the job when it has keys no schema declares (they are warnings otherwise)",
    )
    parser.add_argument(
        "--data-dir",
        default=DEFAULT_DATA_DIR,
        help=f"directory of the state (state.sqlite) and the process logs (logs/<ex_id>/) "
        f"(default {DEFAULT_DATA_DIR})",
    )
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--log-level",
        choices=LEVEL_NAMES,
        default="warn",
        help="level of this command's own log lines on stderr (default warn; the controller and "
        "workers log at terafoundation.log_level into their log files)",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help=f"text lines or json (bunyan) records, for this command and the processes it starts "
        f"(default: ${FORMAT_ENV}, terafoundation.log_format, text)",
    )
    parser.set_defaults(handler=run)


def _sqlite_without_path(config: Any) -> bool:
    storage = config.teraslice.storage
    return storage.type in (None, "sqlite") and "path" not in storage.model_fields_set


def _config_with_state_in(data_dir: Path, config_path: Path) -> Path:
    """A copy of the config file in ``data_dir`` with ``teraslice.storage.path`` set to
    ``<data_dir>/state.sqlite`` (the execution controller reads the file, so the file changes)."""
    import yaml

    data = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    teraslice = data.setdefault("teraslice", {}) or {}
    data["teraslice"] = teraslice
    storage = teraslice.get("storage") or {}
    teraslice["storage"] = {**storage, "path": str((data_dir / "state.sqlite").resolve())}
    data_dir.mkdir(parents=True, exist_ok=True)
    copy = data_dir / "teraslice.yaml"
    copy.write_text(yaml.safe_dump(data), encoding="utf-8")
    return copy


def _problem_exit(lines: Sequence[str], prefix: str = "") -> int:
    for line in lines:
        print(f"{prefix}{line}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import os

    import yaml

    from teraslice_k8s import logs
    from teraslice_k8s.cli.output import config_error_lines, print_warnings
    from teraslice_k8s.errors import ValidationError
    from teraslice_k8s.models.config import load_config, parse_config
    from teraslice_k8s.runtime.operations.validation import validate_job_spec

    data_dir = Path(args.data_dir)
    try:
        raw = json.loads(Path(args.job).read_text(encoding="utf-8"))
    except OSError as exc:
        return _problem_exit([f"{args.job}: {exc.strerror}"])
    except json.JSONDecodeError as exc:
        return _problem_exit([f"{args.job}: not valid JSON: {exc}"])
    if isinstance(raw, dict) and args.workers is not None:
        if args.workers < 1:
            return _problem_exit(["--workers: must be at least 1"])
        raw["workers"] = args.workers
    try:
        if args.config:
            config_path = Path(args.config)
            config = load_config(config_path)
            if _sqlite_without_path(config):
                # Not the working directory: the state belongs under --data-dir with the logs.
                config_path = _config_with_state_in(data_dir, config_path)
                config = load_config(config_path)
        else:
            data_dir.mkdir(parents=True, exist_ok=True)
            config_data = {
                "teraslice": {
                    "cluster_manager_type": "local",
                    "storage": {"type": "sqlite", "path": str((data_dir / "state.sqlite").resolve())},
                }
            }
            config = parse_config(config_data)
            config_path = data_dir / "teraslice.yaml"
            config_path.write_text(yaml.safe_dump(config_data), encoding="utf-8")
    except ValidationError as exc:
        return _problem_exit(config_error_lines(args.config, exc))
    try:
        validated = validate_job_spec(raw, config, strict=args.strict)
    except ValidationError as exc:
        return _problem_exit(exc.lines, f"{args.job}: ")
    print_warnings(validated.warnings, f"{args.job}: ")
    try:
        log_format = logs.resolve_format(args.log_format, config.terafoundation.log_format)
    except ValueError as exc:
        return _problem_exit([str(exc)])
    # The execution controller and workers inherit the format.
    os.environ[FORMAT_ENV] = log_format
    logs.configure(args.log_level, assignment="run", fmt=log_format, name=config.teraslice.name)
    return _Runner(
        args,
        config=config,
        config_path=config_path.resolve(),
        data_dir=data_dir,
        spec=raw,
        validated=validated.config,
    ).run()


class _Runner:
    def __init__(
        self,
        args: argparse.Namespace,
        *,
        config: Any,
        config_path: Path,
        data_dir: Path,
        spec: dict[str, Any],
        validated: dict[str, Any],
    ) -> None:
        self.args = args
        self.config = config
        self.config_path = config_path
        self.data_dir = data_dir
        self.spec = spec
        self.validated = validated
        self.events: queue.Queue[Any] = queue.Queue()
        self.interrupted = False
        #: The run's clock: the progress bar and the summary compute records/s from both.
        self.started = time.monotonic()
        self.duration = 0.0

    def run(self) -> int:
        from teraslice_k8s.backend.local import LocalBackend
        from teraslice_k8s.master import records
        from teraslice_k8s.master.allocator import Allocator
        from teraslice_k8s.store.factory import open_store

        store = open_store(self.config)
        job = store.create_job({**self.spec, "job_id": str(uuid.uuid4())})
        ex = store.create_execution(records.new_execution(job["job_id"], self.spec, self.validated))
        self.ex_id = str(ex["ex_id"])
        shutdown_timeout = self.config.teraslice.shutdown_timeout / 1000  # ms, parsed by the model
        backend = LocalBackend(
            config_path=self.config_path,
            log_dir=self.data_dir / "logs",
            shutdown_timeout=shutdown_timeout,
            worker_stdout_passthrough=self.prints_records,
        )
        backend.start(self.events.put)
        previous = {sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        self.started = time.monotonic()
        try:
            Allocator(store, backend).allocate(self.ex_id)
            final = self._follow(store, backend)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            backend.close()
        code = self._summary(store, final, self.duration)
        store.close()
        return code

    @property
    def prints_records(self) -> bool:
        """The job has a ``stdout`` operation: its output is shown, not logged."""
        return any(
            str(op.get("_op", "")).split("@")[0] == "stdout" for op in self.validated.get("operations", [])
        )

    def _interrupt(self, _sig: int, _frame: Any) -> None:
        self.interrupted = True

    def _follow(self, store: Any, backend: Any) -> dict[str, Any]:
        """Show progress until the controller process is gone; returns the final record."""
        from teraslice_k8s.backend.base import EventKind
        from teraslice_k8s.models.execution import ExStatus, InvalidTransition, is_terminal

        # Records printed by workers would tear the live progress bar apart.
        progress = _Progress(
            self.validated, enabled=not (self.args.no_progress or self.prints_records), started=self.started
        )
        controller_exit: Any = None
        stop_sent = False
        with progress:
            while True:
                try:
                    event = self.events.get(timeout=0.25)
                except queue.Empty:
                    event = None
                if event is not None and event.ex_id == self.ex_id:
                    if event.kind in (EventKind.CONTROLLER_SUCCEEDED, EventKind.CONTROLLER_FAILED):
                        controller_exit = event
                    if event.kind == EventKind.GONE:
                        break
                ex = store.get_execution(self.ex_id)
                progress.update(ex)
                if controller_exit is not None and not backend.processes(self.ex_id)["execution_controller"]:
                    # The workers get the controller's shutdown; stop_execution makes sure.
                    backend.stop_execution(self.ex_id)
                    break
                if (
                    is_terminal(str(ex["_status"]))
                    and ex["_status"] != ExStatus.STOPPED
                    and controller_exit is None
                ) and not backend.processes(self.ex_id)["execution_controller"]:
                    break
                procs = backend.processes(self.ex_id)
                if procs["execution_controller"] and not procs["worker"] and not stop_sent:
                    crashed = backend.crashed_workers(self.ex_id)
                    if crashed:
                        # Nothing would run the slices: fail now instead of after slicer_timeout.
                        stop_sent = True
                        _mark_failed(store, self.ex_id, "every worker exited: " + "; ".join(crashed))
                        backend.stop_execution(self.ex_id)
                if self.interrupted and not stop_sent:
                    stop_sent = True
                    with contextlib.suppress(InvalidTransition):
                        store.set_status(self.ex_id, ExStatus.STOPPING)
                    backend.stop_execution(self.ex_id)
            # The last line of the bar shows what the summary will: the same records and time.
            self.duration = time.monotonic() - self.started
            progress.update(store.get_execution(self.ex_id), elapsed=self.duration)
        ex = store.get_execution(self.ex_id)
        if controller_exit is not None and controller_exit.kind == EventKind.CONTROLLER_FAILED:
            if not is_terminal(str(ex["_status"])):
                ex = _mark_failed(store, self.ex_id, controller_exit.reason)
        elif not is_terminal(str(ex["_status"])):
            if ex["_status"] == ExStatus.STOPPING:
                ex = store.set_status(self.ex_id, ExStatus.STOPPED)
            else:
                ex = _mark_failed(
                    store, self.ex_id, "execution controller exited without setting a terminal status"
                )
        return dict(ex)

    def _summary(self, store: Any, ex: dict[str, Any], duration: float) -> int:
        from teraslice_k8s.store.base import SliceFilter

        stats = ex.get("_slicer_stats") or {}
        completed = store.count_slices(SliceFilter(ex_id=self.ex_id, states=("completed",)))
        failed = store.count_slices(SliceFilter(ex_id=self.ex_id, states=("error",)))
        records = int(stats.get("records", 0))
        summary = {
            "ex_id": self.ex_id,
            "job_id": ex.get("job_id"),
            "name": ex.get("name"),
            "status": ex.get("_status"),
            "slices_completed": completed,
            "slices_failed": failed,
            "records": records,
            "duration_s": round(duration, 3),
            "records_per_second": _rate(records, duration),
            "errors": ex.get("_failureReason") or "",
            "logs": str((self.data_dir / "logs" / self.ex_id).resolve()),
        }
        if self.args.json:
            print(json.dumps(summary))
        else:
            from rich.table import Table

            from teraslice_k8s.cli.output import console

            table = Table(title=f"Execution {self.ex_id}", show_header=False)
            table.add_column(overflow="fold")
            table.add_column(overflow="fold")
            for key, value in summary.items():
                shown = f"{value:,}" if key in {"records_per_second", "records"} else str(value)
                table.add_row(key.replace("_", " "), shown)
            console().print(table)
        return 0 if ex.get("_status") == "completed" else 1


def _mark_failed(store: Any, ex_id: str, reason: str) -> Any:
    from teraslice_k8s.models.execution import InvalidTransition

    try:
        return store.set_status(ex_id, "failed", {"_has_errors": True, "_failureReason": reason})
    except InvalidTransition:
        return store.get_execution(ex_id)


class _Progress:
    """Rich progress bar: slices processed, records, records/s (from ``_slicer_stats`` /
    the controller's ``/analytics``)."""

    def __init__(self, job: dict[str, Any], *, enabled: bool, started: float) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.enabled = enabled
        self.total = _expected_records(job)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[slices]} slices"),
            TextColumn("{task.completed:,.0f} records"),
            TextColumn("{task.fields[rate]} rec/s"),
            TimeElapsedColumn(),
            disable=not enabled,
            transient=False,
        )
        self.task = self.progress.add_task(str(job.get("name", "job")), total=self.total, slices=0, rate="-")
        self.client: Any = None
        self.started = started

    def __enter__(self) -> _Progress:
        import httpx

        self.client = httpx.Client(timeout=1.0)
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)
        if self.client is not None:
            self.client.close()

    def update(self, ex: dict[str, Any], elapsed: float | None = None) -> None:
        """Show ``ex``'s progress; ``elapsed``: the run's final duration (the stored stats are
        final then), else the time since the run started and the controller's live stats."""
        from rich.markup import escape

        stats = ex.get("_slicer_stats") or {}
        host, port = ex.get("slicer_hostname"), ex.get("slicer_port")
        live = ex.get("_status") in ("running", "recovering", "failing")
        if self.enabled and elapsed is None and host and port and live:
            # The controller may be starting or gone: then keep the stored stats.
            with contextlib.suppress(Exception):
                stats = self.client.get(f"http://{host}:{port}/analytics").json()
        records = int(stats.get("records", 0) or 0)
        seconds = elapsed if elapsed is not None else time.monotonic() - self.started
        self.progress.update(
            self.task,
            completed=records,
            slices=int(stats.get("processed", 0) or 0),
            rate=f"{_rate(records, seconds):,}",
            description=escape(f"{ex.get('name', 'job')} [{ex.get('_status')}]"),
        )


def _rate(records: int, seconds: float) -> int:
    """Records per second as both the progress bar and the summary print it."""
    return round(records / seconds) if seconds > 0 else 0


def _expected_records(job: dict[str, Any]) -> int | None:
    ops = job.get("operations") or []
    if job.get("lifecycle", "once") == "once" and ops and ops[0].get("_op") == "data_generator":
        return int(ops[0].get("size", 5000))
    return None

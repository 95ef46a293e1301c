"""``teraslice-k8s jobs ...`` and ``teraslice-k8s ex ...``: a client of a master's API.

The master is ``--url``, else ``$TERASLICE_MASTER_URL``, else ``http://localhost:5678`` (a URL
ending in ``/v1`` means the same master).
Commands (the seed's ``make register`` / ``make start`` flow)::

    jobs register JOB.json [--start] [--save]   POST /v1/jobs?start=false|true
    jobs start JOB                              POST /v1/jobs/JOB/_start
    jobs stop JOB [--force] [--no-wait]         POST /v1/jobs/JOB/_stop
    jobs status JOB                             GET  /v1/jobs/JOB/ex
    jobs workers JOB add|remove|total N         POST /v1/jobs/JOB/_workers
    jobs list [--size N] [--deleted]            GET  /v1/jobs
    jobs errors JOB                             GET  /v1/jobs/JOB/errors
    ex list [--status S,...] [--size N]         GET  /v1/ex
    ex status EX                                GET  /v1/ex/EX
    ex stop EX... | --all [--no-wait]           POST /v1/ex/EX/_stop, then wait (cli/ex_stop.py)

``JOB`` is a job id or a job file saved by ``register --save`` (teraslice-cli's
``__metadata.cli.job_id``). Output is a table, or the master's JSON with ``--json``.
Exit codes: 0 ok, 1 the master refused or failed (its message on stderr), 2 invalid input
(a rejected job lists its field paths).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_URL = "http://localhost:5678"
URL_ENV = "TERASLICE_MASTER_URL"
#: Statuses that mean the request itself was wrong (exit 2).
INPUT_ERRORS = frozenset({400, 406, 415, 422})
_JOB_HELP = "job id or a job file saved by register --save"


class ClientError(Exception):
    def __init__(self, code: int, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code, self.message, self.problems = code, message, list(problems)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help=f"master URL (default ${URL_ENV} or {DEFAULT_URL})")
    parser.add_argument("--json", action="store_true", help="print the master's JSON instead of a table")
    parser.add_argument(
        "--timeout", type=float, default=330.0, help="request timeout in seconds (default 330)"
    )


def register(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="register, start, stop, scale and inspect jobs on a master")
    jobs_sub = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = jobs_sub.add_parser("register", help="submit a job file (not started unless --start)")
    p.add_argument("file", help="job file (JSON)")
    p.add_argument("--start", action="store_true", help="also start it")
    p.add_argument(
        "--strict",
        action="store_true",
        help="refuse the job when it has keys no schema declares (they are warnings otherwise)",
    )
    p.add_argument(
        "--save",
        action="store_true",
        help="write the job id into the file (__metadata.cli); a file already saved for this "
        "master updates its job instead of registering another",
    )
    p.set_defaults(handler=_handler(_register))

    for name, fn, text in (
        ("start", _start, "start a new execution"),
        ("status", _status, "status of the latest execution"),
        ("errors", _errors, "slice errors of the latest execution"),
    ):
        p = jobs_sub.add_parser(name, help=text)
        p.add_argument("job", help=_JOB_HELP)
        p.set_defaults(handler=_handler(fn))

    p = jobs_sub.add_parser("stop", help="stop the latest execution")
    p.add_argument("job", help=_JOB_HELP)
    p.add_argument("--force", action="store_true", help="delete the processes immediately")
    p.add_argument("--no-wait", action="store_true", help="return without waiting for a final status")
    p.set_defaults(handler=_handler(_stop))

    p = jobs_sub.add_parser("workers", help="add, remove or set the workers of the running execution")
    p.add_argument("job", help=_JOB_HELP)
    p.add_argument(
        "mode", choices=("add", "remove", "total"), help="add or remove COUNT workers, or set the total"
    )
    p.add_argument("count", type=int, help="number of workers (greater than zero)")
    p.set_defaults(handler=_handler(_workers))

    p = jobs_sub.add_parser("list", help="list jobs")
    p.add_argument("--size", type=int, default=100, help="at most this many jobs (default 100)")
    p.add_argument("--deleted", action="store_true", help="list deleted jobs instead")
    p.set_defaults(handler=_handler(_list_jobs))

    ex = sub.add_parser("ex", help="inspect executions on a master")
    ex_sub = ex.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = ex_sub.add_parser("list", help="list executions")
    p.add_argument("--status", help="only these statuses, comma-separated (e.g. running,failing)")
    p.add_argument("--size", type=int, default=100, help="at most this many executions (default 100)")
    p.set_defaults(handler=_handler(_list_ex))
    p = ex_sub.add_parser("status", help="one execution")
    p.add_argument("ex_id", help="execution id")
    p.set_defaults(handler=_handler(_ex_status))
    from teraslice_k8s.cli import ex_stop  # its own module: stop several and wait (uninstall hook)

    ex_stop.add_parser(ex_sub, _handler)

    for parser in (*jobs_sub.choices.values(), *ex_sub.choices.values()):
        _common(parser)


# -- plumbing ---------------------------------------------------------------------------------


class Api:
    """Minimal JSON client; HTTP errors become :class:`ClientError` with the master's message."""

    def __init__(self, url: str, timeout: float) -> None:
        import httpx

        self._http = httpx.Client(
            base_url=master_root(url), timeout=timeout, headers={"Accept": "application/json"}
        )
        self.url = url

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise ClientError(0, f"cannot reach the master at {self.url}: {err}") from err
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            if isinstance(body, dict):
                raise ClientError(
                    response.status_code, str(body.get("message", body)), body.get("problems") or ()
                )
            raise ClientError(response.status_code, str(body))
        return body

    def close(self) -> None:
        self._http.close()


def master_root(url: str) -> str:
    """The master's base URL: request paths start with ``/v1``, so a URL given with it
    (``http://host:5678/v1/``) must not double it."""
    root = url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _handler(fn: Any) -> Any:
    def handle(args: argparse.Namespace) -> int:
        api = Api(args.url or os.environ.get(URL_ENV) or DEFAULT_URL, args.timeout)
        try:
            result = fn(api, args)
        except ClientError as err:
            print(f"error{f' {err.code}' if err.code else ''}: {err.message}", file=sys.stderr)
            for problem in err.problems:
                print(f"  {problem}", file=sys.stderr)
            return 2 if err.code in INPUT_ERRORS else 1
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        finally:
            api.close()
        return 0 if result is None else int(result)

    return handle


class InputError(Exception):
    pass


def _job_id(ref: str) -> str:
    """A job id, or the id saved in a job file by ``register --save``."""
    path = Path(ref)
    if not path.is_file():
        return ref
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(f"{ref}: cannot read the job file: {err}") from err
    job_id = (
        (data.get("__metadata", {}).get("cli", {}) or {}).get("job_id") if isinstance(data, dict) else None
    )
    if not job_id:
        raise InputError(f"{ref}: no job id saved in the file; register it with --save first")
    return str(job_id)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=4))


def _output(args: argparse.Namespace, result: Any, show: Callable[[Any], None]) -> None:
    """The master's JSON with ``--json``, else ``show(result)`` (a table or a line)."""
    if args.json:
        _print_json(result)
    else:
        show(result)


def _table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from teraslice_k8s.cli.output import console, table

    console().print(table(title, columns, rows))


# -- commands ---------------------------------------------------------------------------------


def _register(api: Api, args: argparse.Namespace) -> None:
    path = Path(args.file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{args.file}: {err.strerror}") from err
    except ValueError as err:
        raise InputError(f"{args.file}: not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise InputError(f"{args.file}: a job must be a JSON object")
    spec = {k: v for k, v in data.items() if k != "__metadata"}
    saved = _saved_job(api, data)
    if saved is not None and args.save:
        # teraslice-cli refuses to register a saved file twice; updating it keeps one job.
        print(
            f"warning: {args.file} is already registered on {api.url} as job {saved}: "
            "updating that job instead of registering another",
            file=sys.stderr,
        )
        put_params = {"strict": "true"} if args.strict else None
        result: dict[str, Any] = api.call(
            "PUT", f"/v1/jobs/{saved}", params=put_params, json={**spec, "job_id": saved}
        )
        if args.start:
            result = api.call("POST", f"/v1/jobs/{saved}/_start")
    else:
        if saved is not None:
            print(
                f"warning: {args.file} is already registered on {api.url} as job {saved}; "
                "registering another job (--save updates the saved one)",
                file=sys.stderr,
            )
        post_params = {"start": "true" if args.start else "false"}
        if args.strict:
            post_params["strict"] = "true"
        result = api.call("POST", "/v1/jobs", params=post_params, json=spec)
    if args.save:
        data["__metadata"] = {
            "cli": {
                "cluster": api.url,
                "job_id": result["job_id"],
                "updated": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
        }
        path.write_text(json.dumps(data, indent=4) + "\n", encoding="utf-8")
    if args.json:
        _print_json(result)
        return
    from teraslice_k8s.cli.output import print_warnings

    print_warnings(result.get("warnings") or ())
    started = f", execution {result['ex_id']} started" if "ex_id" in result else ""
    action = "updated" if saved is not None and args.save else "registered"
    print(f"{action} job {spec.get('name', '')!s} as {result['job_id']}{started}")


def _saved_job(api: Api, data: dict[str, Any]) -> str | None:
    """The job id ``register --save`` wrote into the file, if it was saved for this master and
    the job still exists there."""
    cli = (data.get("__metadata") or {}).get("cli") or {}
    job_id = cli.get("job_id") if isinstance(cli, dict) else None
    if not job_id or master_root(str(cli.get("cluster", ""))) != master_root(api.url):
        return None
    try:
        api.call("GET", f"/v1/jobs/{job_id}")
    except ClientError as err:
        if err.code == 404:
            return None
        raise
    return str(job_id)


def _start(api: Api, args: argparse.Namespace) -> None:
    result = api.call("POST", f"/v1/jobs/{_job_id(args.job)}/_start")
    _output(args, result, lambda r: print(f"started job {r['job_id']}: execution {r['ex_id']}"))


def _stop(api: Api, args: argparse.Namespace) -> None:
    job_id = _job_id(args.job)
    params = {"force": "true" if args.force else "false", "blocking": "false" if args.no_wait else "true"}
    result = api.call("POST", f"/v1/jobs/{job_id}/_stop", params=params)
    _output(args, result, lambda r: print(f"job {job_id}: {r['status']}"))


def _ex_rows(executions: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            e.get("name"),
            e.get("ex_id"),
            e.get("job_id"),
            e.get("_status"),
            e.get("workers"),
            e.get("_updated"),
        ]
        for e in executions
    ]


EX_COLUMNS = ("name", "ex_id", "job_id", "status", "workers", "updated")


def _show_ex(ex: dict[str, Any]) -> None:
    _table(None, EX_COLUMNS, _ex_rows([ex]))
    for key, label in (("_failureReason", "failure"), ("_pendingReason", "pending")):
        if ex.get(key):
            print(f"{label}: {ex[key]}")


def _status(api: Api, args: argparse.Namespace) -> None:
    _output(args, api.call("GET", f"/v1/jobs/{_job_id(args.job)}/ex"), _show_ex)


def _error_summary(error: str) -> str:
    """The line that says what went wrong: a Python traceback's last line (its first is always
    ``Traceback (most recent call last):``), else the first line (a JS ``Error: …`` stack)."""
    lines = [line for line in error.splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]


def _errors(api: Api, args: argparse.Namespace) -> None:
    def show(errors: list[dict[str, Any]]) -> None:
        rows = [
            [e.get("slice_id"), e.get("slicer_order"), _error_summary(str(e.get("error", "")))]
            for e in errors
        ]
        _table("slice errors", ("slice_id", "order", "error"), rows)

    _output(args, api.call("GET", f"/v1/jobs/{_job_id(args.job)}/errors"), show)


def _workers(api: Api, args: argparse.Namespace) -> None:
    if args.count <= 0:
        raise InputError("count must be greater than zero")
    result = api.call("POST", f"/v1/jobs/{_job_id(args.job)}/_workers", params={args.mode: str(args.count)})
    _output(args, result, lambda r: print(r["message"]))


def _list_jobs(api: Api, args: argparse.Namespace) -> None:
    def show(jobs: list[dict[str, Any]]) -> None:
        rows = [
            [
                j.get("name"),
                j.get("job_id"),
                j.get("lifecycle"),
                j.get("workers"),
                (j.get("ex") or {}).get("_status"),
            ]
            for j in jobs
        ]
        _table("jobs", ("name", "job_id", "lifecycle", "workers", "status"), rows)

    params = {"size": str(args.size), "ex": "_status,ex_id", "deleted": "true" if args.deleted else "false"}
    _output(args, api.call("GET", "/v1/jobs", params=params), show)


def _list_ex(api: Api, args: argparse.Namespace) -> None:
    params = {"size": str(args.size)}
    if args.status:
        params["status"] = args.status
    executions = api.call("GET", "/v1/ex", params=params)
    _output(args, executions, lambda exs: _table("executions", EX_COLUMNS, _ex_rows(exs)))


def _ex_status(api: Api, args: argparse.Namespace) -> None:
    _output(args, api.call("GET", f"/v1/ex/{args.ex_id}"), _show_ex)

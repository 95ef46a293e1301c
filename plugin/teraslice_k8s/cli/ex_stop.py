"""``teraslice-k8s ex stop EX... | --all``: stop executions through a master and wait until they end.

The chart's ``pre-delete`` hook runs ``ex stop --all --unreachable-ok`` so that ``helm uninstall``
leaves no execution behind (charts/teraslice/README.md, "Uninstalling")::

    ex stop EX [EX ...]   POST /v1/ex/EX/_stop?blocking=false for each, then wait
    ex stop --all         the same for every execution not in a terminal status (GET /v1/ex)

Waiting (unless ``--no-wait``) lasts until every execution has a terminal status **and** the
master's ``/v1/cluster/state`` lists no process of it, at most ``--stop-timeout`` seconds; then
the ones left get a forced stop (``force=true``: their processes are deleted at once) and up to
``FORCE_GRACE`` seconds more. ``--reach-timeout`` is how long the master may take to answer at
all (it may be restarting).

Exit codes: 0 every execution ended (or there was none; or, with ``--unreachable-ok``, the
master could not be reached or failed (5xx) to list them: a warning says that nothing was
stopped), 1 the master could not be reached or an execution did not end in time (they are
listed on stderr), 2 invalid input.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from teraslice_k8s.models.execution import TERMINAL_STATUSES, ExStatus

#: Seconds a forced stop may take after the graceful one timed out.
FORCE_GRACE = 60.0
#: Seconds between two polls of the master while waiting.
POLL_INTERVAL = 1.0
LIVE_STATUSES = tuple(s.value for s in ExStatus if s not in TERMINAL_STATUSES)


def add_parser(ex_sub: Any, handler: Callable[[Callable[..., Any]], Any]) -> argparse.ArgumentParser:
    """Add ``stop`` to the ``ex`` subcommands; ``handler`` wraps a ``(api, args)`` function."""
    p: argparse.ArgumentParser = ex_sub.add_parser(
        "stop", help="stop executions (or --all) and wait until they have ended"
    )
    p.add_argument("ex_ids", nargs="*", metavar="EX", help="execution ids")
    p.add_argument("--all", action="store_true", help="every execution that is not in a terminal status")
    p.add_argument("--force", action="store_true", help="delete the processes immediately")
    p.add_argument("--no-wait", action="store_true", help="return once the stops are accepted")
    p.add_argument(
        "--stop-timeout", type=float, default=120.0, help="seconds to wait before forcing (default 120)"
    )
    p.add_argument(
        "--reach-timeout",
        type=float,
        default=0.0,
        help="seconds to keep trying to reach the master (default 0)",
    )
    p.add_argument(
        "--unreachable-ok",
        action="store_true",
        help="exit 0 with a warning when the master cannot be reached or fails (uninstall hooks)",
    )
    p.set_defaults(handler=handler(stop))
    return p


def stop(api: Any, args: argparse.Namespace) -> int:
    from teraslice_k8s.cli.client import ClientError, InputError

    if bool(args.ex_ids) == bool(args.all):
        raise InputError("name execution ids or --all (not both)")
    try:
        _reach(api, args.reach_timeout)
        ex_ids = list(args.ex_ids) or _living(api)
    except ClientError as err:
        # Unreachable, or reachable but failing (e.g. its store is down): it can stop nothing.
        if (err.code == 0 or err.code >= 500) and args.unreachable_ok:
            print(
                f"warning: {'' if err.code == 0 else f'the master answered {err.code}: '}{err.message}; "
                "no execution was stopped. Their Jobs, Deployments and Services stay until you "
                "delete them (or their namespace).",
                file=sys.stderr,
            )
            return 0
        raise
    if not ex_ids:
        print("no execution to stop")
        return 0
    for ex_id in ex_ids:
        _request_stop(api, ex_id, force=args.force)
    if args.no_wait:
        return 0
    left = _wait(api, ex_ids, args.stop_timeout)
    if left and not args.force:
        print(f"not ended after {args.stop_timeout:.0f} s, forcing: {', '.join(left)}", file=sys.stderr)
        for ex_id in left:
            _request_stop(api, ex_id, force=True)
        left = _wait(api, left, FORCE_GRACE)
    if left:
        print(f"error: still not ended: {', '.join(left)}", file=sys.stderr)
        return 1
    return 0


def _reach(api: Any, timeout: float) -> None:
    """``GET /`` until it answers, for at most ``timeout`` seconds (one try when 0)."""
    from teraslice_k8s.cli.client import ClientError

    deadline = time.monotonic() + timeout
    while True:
        try:
            api.call("GET", "/")
            return
        except ClientError as err:
            if err.code != 0 or time.monotonic() >= deadline:
                raise
        time.sleep(POLL_INTERVAL)


def _living(api: Any) -> list[str]:
    executions = api.call("GET", "/v1/ex", params={"status": ",".join(LIVE_STATUSES), "size": "10000"})
    return [str(ex["ex_id"]) for ex in executions]


def _request_stop(api: Any, ex_id: str, *, force: bool) -> None:
    from teraslice_k8s.cli.client import ClientError

    params = {"blocking": "false", "force": "true" if force else "false"}
    try:
        api.call("POST", f"/v1/ex/{ex_id}/_stop", params=params)
    except ClientError as err:
        if err.code == 0:
            raise
        # e.g. it ended meanwhile (a terminal execution cannot be stopped): waiting tells.
        print(f"ex {ex_id}: stop refused: {err.message}", file=sys.stderr)
    print(f"ex {ex_id}: {'force ' if force else ''}stop requested")


def _wait(api: Any, ex_ids: Iterable[str], timeout: float) -> list[str]:
    """Poll until each execution is terminal and has no process left; the ones that are not."""
    pending = list(ex_ids)
    deadline = time.monotonic() + timeout
    while True:
        statuses = {ex_id: str(api.call("GET", f"/v1/ex/{ex_id}").get("_status")) for ex_id in pending}
        state = api.call("GET", "/v1/cluster/state")
        running = {
            str(process.get("ex_id"))
            for node in (state.values() if isinstance(state, dict) else ())
            for process in node.get("active") or ()
        }
        for ex_id in [e for e in pending if statuses[e] in TERMINAL_STATUSES and e not in running]:
            print(f"ex {ex_id}: {statuses[ex_id]}")
            pending.remove(ex_id)
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(POLL_INTERVAL)

"""Execution statuses and the transition rule Teraslice enforces on every status write.

Groups (Teraslice 3.18): init ``pending, scheduling, initializing``; running ``recovering,
running, failing, paused, stopping``; terminal ``completed, stopped, rejected, failed,
terminated``. :func:`check_transition` is the single place the rule lives; stores call it
inside their read-modify-write so a refused change stores nothing.

One rule is stricter than Teraslice's (docs/execution-lifecycle.md): a ``stopping`` execution
only becomes ``stopped`` (the master, once nothing of it is left) or ``completed`` (its work
finished before the stop took effect). A controller that starts, recovers or restarts while the
execution is ``stopping`` can therefore not overwrite the stop with ``running``, ``failed`` or
``terminated``; and neither can ``_pause``/``_resume``.
"""

from __future__ import annotations

from enum import StrEnum

from teraslice_k8s.errors import TerasliceError


class ExStatus(StrEnum):
    PENDING = "pending"
    SCHEDULING = "scheduling"
    INITIALIZING = "initializing"
    RECOVERING = "recovering"
    RUNNING = "running"
    FAILING = "failing"
    PAUSED = "paused"
    STOPPING = "stopping"
    COMPLETED = "completed"
    STOPPED = "stopped"
    REJECTED = "rejected"
    FAILED = "failed"
    TERMINATED = "terminated"


INIT_STATUSES = frozenset({ExStatus.PENDING, ExStatus.SCHEDULING, ExStatus.INITIALIZING})
RUNNING_STATUSES = frozenset(
    {ExStatus.RECOVERING, ExStatus.RUNNING, ExStatus.FAILING, ExStatus.PAUSED, ExStatus.STOPPING}
)
TERMINAL_STATUSES = frozenset(
    {ExStatus.COMPLETED, ExStatus.STOPPED, ExStatus.REJECTED, ExStatus.FAILED, ExStatus.TERMINATED}
)
LIVING_STATUSES = INIT_STATUSES | RUNNING_STATUSES
#: What a ``stopping`` execution may still become (besides staying ``stopping``).
STOPPING_EXITS = frozenset({ExStatus.STOPPED, ExStatus.COMPLETED})


class InvalidTransition(TerasliceError):
    """A status write the state machine refuses (HTTP 422 in the API)."""

    def __init__(self, ex_id: str, current: str, target: str, reason: str) -> None:
        self.ex_id, self.current, self.target = ex_id, current, target
        super().__init__(f"Unable to set execution {ex_id} status code to {target}, caused by {reason}")


class InvalidStatus(TerasliceError, ValueError):
    """A status name that is not one of :class:`ExStatus` (HTTP 422 in the API)."""

    def __init__(self, value: object) -> None:
        self.value = value
        super().__init__(f'Invalid Job status: "{value}"')


def parse_status(value: str) -> ExStatus:
    """Return the status named ``value`` or raise :class:`InvalidStatus` (a ``ValueError``)
    with Teraslice's message ``Invalid Job status: "x"``."""
    try:
        return ExStatus(value)
    except ValueError:
        raise InvalidStatus(value) from None


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


def check_transition(ex_id: str, current: str, target: str) -> None:
    """Raise :class:`InvalidTransition` unless ``current -> target`` is allowed.

    Same status: allowed. Running -> init: refused. ``stopping`` -> anything but ``stopped`` or
    ``completed``: refused (the stop wins over every status a starting, recovering or
    restarting controller would write). ``stopped -> completed``: allowed (the execution
    finished before the stop landed). Terminal -> anything else: refused.
    """
    new = parse_status(target)
    cur = parse_status(current)
    if cur == new:
        return
    if cur in RUNNING_STATUSES and new in INIT_STATUSES:
        raise InvalidTransition(ex_id, cur, new, f'Cannot update running job status of "{cur}" to "{new}"')
    if cur == ExStatus.STOPPING and new not in STOPPING_EXITS:
        raise InvalidTransition(
            ex_id,
            cur,
            new,
            f'Cannot update stopping job status of "{cur}" to "{new}": '
            'a stopping execution only becomes "stopped" or "completed"',
        )
    if cur == ExStatus.STOPPED and new == ExStatus.COMPLETED:
        return
    if cur in TERMINAL_STATUSES:
        raise InvalidTransition(ex_id, cur, new, f'Cannot update terminal job status of "{cur}" to "{new}"')

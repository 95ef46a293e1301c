"""The execution state machine (api-and-runtime.md §3.2), checked over all 13 x 13 pairs.

The table is written out literally so that a change of the rule shows up as a diff here:
rows are the current status, columns the target, in this order. ``.`` = allowed,
``R`` = refused as a running -> init change, ``T`` = refused as a change of a terminal status,
``S`` = refused because a ``stopping`` execution only becomes ``stopped`` or ``completed``
(stricter than Teraslice: docs/execution-lifecycle.md).
"""

from __future__ import annotations

import pytest

from teraslice_k8s.models.execution import (
    INIT_STATUSES,
    LIVING_STATUSES,
    RUNNING_STATUSES,
    TERMINAL_STATUSES,
    ExStatus,
    InvalidStatus,
    InvalidTransition,
    check_transition,
    is_terminal,
    parse_status,
)

ORDER = [
    "pending",
    "scheduling",
    "initializing",
    "recovering",
    "running",
    "failing",
    "paused",
    "stopping",
    "completed",
    "stopped",
    "rejected",
    "failed",
    "terminated",
]

#            pen sch ini rec run fai pau sto com std rej fld ter
TABLE = """
pending      .   .   .   .   .   .   .   .   .   .   .   .   .
scheduling   .   .   .   .   .   .   .   .   .   .   .   .   .
initializing .   .   .   .   .   .   .   .   .   .   .   .   .
recovering   R   R   R   .   .   .   .   .   .   .   .   .   .
running      R   R   R   .   .   .   .   .   .   .   .   .   .
failing      R   R   R   .   .   .   .   .   .   .   .   .   .
paused       R   R   R   .   .   .   .   .   .   .   .   .   .
stopping     R   R   R   S   S   S   S   .   .   .   S   S   S
completed    T   T   T   T   T   T   T   T   .   T   T   T   T
stopped      T   T   T   T   T   T   T   T   .   .   T   T   T
rejected     T   T   T   T   T   T   T   T   T   T   .   T   T
failed       T   T   T   T   T   T   T   T   T   T   T   .   T
terminated   T   T   T   T   T   T   T   T   T   T   T   T   .
"""


def _cases() -> list[tuple[str, str, str]]:
    rows = [line.split() for line in TABLE.strip().splitlines()]
    assert [row[0] for row in rows] == ORDER
    return [(row[0], target, mark) for row in rows for target, mark in zip(ORDER, row[1:], strict=True)]


CASES = _cases()


def test_table_covers_every_pair() -> None:
    assert len(CASES) == 169 == len({(c, t) for c, t, _ in CASES})
    assert [s.value for s in ExStatus] == ORDER


@pytest.mark.parametrize(("current", "target", "mark"), CASES)
def test_transition(current: str, target: str, mark: str) -> None:
    if mark == ".":
        check_transition("ex-1", current, target)
        return
    with pytest.raises(InvalidTransition) as caught:
        check_transition("ex-1", current, target)
    group = {"R": "running", "T": "terminal", "S": "stopping"}[mark]
    suffix = ': a stopping execution only becomes "stopped" or "completed"' if mark == "S" else ""
    assert str(caught.value) == (
        f"Unable to set execution ex-1 status code to {target}, caused by "
        f'Cannot update {group} job status of "{current}" to "{target}"{suffix}'
    )
    assert (caught.value.ex_id, caught.value.current, caught.value.target) == ("ex-1", current, target)


@pytest.mark.parametrize(
    ("current", "target"), [("sleeping", "running"), ("running", "sleeping"), ("running", "")]
)
def test_unknown_status_is_refused(current: str, target: str) -> None:
    bad = current if current == "sleeping" else target
    with pytest.raises(InvalidStatus) as caught:
        check_transition("ex-1", current, target)
    assert str(caught.value) == f'Invalid Job status: "{bad}"'
    assert isinstance(caught.value, ValueError)


def test_groups() -> None:
    assert sorted(INIT_STATUSES) == ["initializing", "pending", "scheduling"]
    assert sorted(RUNNING_STATUSES) == ["failing", "paused", "recovering", "running", "stopping"]
    assert sorted(TERMINAL_STATUSES) == ["completed", "failed", "rejected", "stopped", "terminated"]
    assert LIVING_STATUSES == INIT_STATUSES | RUNNING_STATUSES
    assert [s for s in ORDER if is_terminal(s)] == ORDER[8:]
    assert parse_status("running") is ExStatus.RUNNING

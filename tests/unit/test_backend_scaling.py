"""The one worker-count rule every backend scales through (``backend.base.new_worker_total``)."""

from __future__ import annotations

import pytest

from teraslice_k8s.backend.base import BackendError, ScaleAction, new_worker_total


@pytest.mark.parametrize(
    ("current", "action", "count", "total"),
    [
        (2, "add", 3, 5),
        (5, "remove", 2, 3),
        (3, "remove", 3, 0),
        (3, "set", 7, 7),
        (3, "set", 0, 0),
    ],
)
def test_new_total(current: int, action: ScaleAction, count: int, total: int) -> None:
    assert new_worker_total("ex1", current, action, count) == total


def test_removing_more_workers_than_running_is_refused() -> None:
    with pytest.raises(BackendError) as caught:
        new_worker_total("ex1", 2, "remove", 3)
    assert str(caught.value) == (
        "cannot remove 3 workers from execution ex1: it has 2, and the worker count cannot go below 0"
    )


@pytest.mark.parametrize("action", ["add", "remove", "set"])
def test_negative_counts_are_refused(action: ScaleAction) -> None:
    with pytest.raises(BackendError, match="must not be negative, got -1"):
        new_worker_total("ex1", 2, action, -1)

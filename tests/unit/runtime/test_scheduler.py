"""Dispatch, retry, re-dispatch, duplicate and completion rules of the scheduler (no I/O)."""

from __future__ import annotations

from teraslice_k8s.runtime.scheduler import MAX_SLOTS, Outcome, Scheduler
from teraslice_k8s.runtime.slices import Slice


class Sink:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def slice_changed(self, slice_: Slice) -> None:
        self.changes.append((slice_.slice_id, slice_.record()["state"]))


def make(n: int, **request: object) -> list[Slice]:
    return [Slice(f"s{i}", 0, i, {"count": 1, **request}, "ex1") for i in range(n)]


def scheduler(max_retries: int = 2) -> tuple[Scheduler, Sink]:
    sink = Sink()
    return Scheduler(sink, max_retries=max_retries), sink


def join(s: Scheduler, *workers: str) -> None:
    for w in workers:
        s.worker_connected(w)
        s.worker_available(w)


def test_dispatch_pairs_slices_fifo_with_workers_in_availability_order() -> None:
    s, sink = scheduler()
    s.add_slices(make(3))
    join(s, "w2", "w1")
    assert [(w, sl.slice_id) for w, sl in s.assign()] == [("w2", "s0"), ("w1", "s1")]
    assert s.queued == 1
    assert s.active_workers == 2
    assert sink.changes == [
        ("s0", "pending"),
        ("s1", "pending"),
        ("s2", "pending"),
        ("s0", "start"),
        ("s1", "start"),
    ]
    assert s.assign() == []


def test_worker_holds_at_most_max_slots_slices() -> None:
    s, _ = scheduler()
    join(s, "w1")
    s.worker_available("w1", MAX_SLOTS)  # one more than the bound: the excess is ignored
    assert list(s.available) == ["w1"] * MAX_SLOTS
    s.add_slices(make(MAX_SLOTS + 1))
    assert [(w, sl.slice_id) for w, sl in s.assign()] == [("w1", f"s{i}") for i in range(MAX_SLOTS)]
    s.worker_available("w1")  # holds MAX_SLOTS already: ignored
    assert s.assign() == []
    assert s.complete("w1", "s0", error=None) is Outcome.COMPLETED
    s.worker_available("w1", 5)  # room for one only
    assert [(w, sl.slice_id) for w, sl in s.assign()] == [("w1", f"s{MAX_SLOTS}")]
    assert list(s.available) == []


def test_a_count_of_slices_interleaves_with_other_workers_in_request_order() -> None:
    s, _ = scheduler()
    for w in ("w1", "w2"):
        s.worker_connected(w)
    s.worker_available("w1", 2)
    s.worker_available("w2", 3)
    s.worker_available("w1")
    s.add_slices(make(5))
    assert [(w, sl.slice_id) for w, sl in s.assign()] == [
        ("w1", "s0"),
        ("w1", "s1"),
        ("w2", "s2"),
        ("w2", "s3"),
        ("w2", "s4"),
    ]
    assert list(s.available) == ["w1"]


def test_disconnect_requeues_every_slice_the_worker_held_in_order() -> None:
    s, _ = scheduler()
    join(s, "w1")
    s.worker_available("w1")
    s.add_slices(make(3))
    s.assign()
    assert [sl.slice_id for sl in s.worker_disconnected("w1")] == ["s0", "s1"]
    assert [sl.slice_id for sl in s.queue] == ["s0", "s1", "s2"]
    assert list(s.available) == []


def test_request_worker_waits_for_that_worker() -> None:
    s, _ = scheduler()
    pinned = Slice("p", 0, 0, {"request_worker": "w2"}, "ex1")
    s.add_slices([pinned, *make(1)])
    join(s, "w1")
    assert [(w, sl.slice_id) for w, sl in s.assign()] == [("w1", "s0")]
    assert [sl.slice_id for sl in s.queue] == ["p"]
    join(s, "w2")
    assert [(w, sl.slice_id) for w, sl in s.assign()] == [("w2", "p")]


def test_success_completes_and_finishes_when_slicers_are_done() -> None:
    s, sink = scheduler()
    s.add_slices(make(1))
    join(s, "w1")
    s.assign()
    assert not s.finished
    assert s.complete("w1", "s0", error=None, records=7) is Outcome.COMPLETED
    assert not s.finished  # slicers may still produce
    s.slicers_done = True
    assert s.finished
    assert s.counters.processed == 1
    assert s.counters.records == 7
    assert sink.changes[-1] == ("s0", "completed")


def test_failed_slice_is_retried_max_retries_times_then_marked_error() -> None:
    s, sink = scheduler(max_retries=2)
    s.add_slices(make(1))
    join(s, "w1")
    outcomes = []
    for _ in range(3):
        (w, sl), *_ = s.assign()
        outcomes.append(s.complete(w, sl.slice_id, error="boom"))
        s.worker_available(w)
    assert outcomes == [Outcome.RETRY, Outcome.RETRY, Outcome.FAILED]
    assert s.counters.processed == 1
    assert s.counters.failed == 1
    (last,) = [sl for sl in make(1)]
    assert sink.changes[-1] == (last.slice_id, "error")
    s.slicers_done = True
    assert s.finished


def test_retry_then_success_keeps_retry_count_in_the_record() -> None:
    s, _ = scheduler(max_retries=3)
    (sl,) = make(1)
    s.add_slices([sl])
    join(s, "w1", "w2")
    (w, _), *_ = s.assign()
    assert s.complete(w, "s0", error="flaky") is Outcome.RETRY
    (w2, again), *_ = s.assign()
    assert w2 == "w2"
    assert again.message()["retry_count"] == 1
    assert s.complete(w2, "s0", error=None, records=1) is Outcome.COMPLETED
    assert sl.record()["retry_count"] == 1
    assert sl.record()["state"] == "completed"


def test_disconnect_redispatches_in_flight_slice_first() -> None:
    s, _ = scheduler()
    s.add_slices(make(2))
    join(s, "w1")
    (_w, sl), *_ = s.assign()
    assert sl.slice_id == "s0"
    assert s.worker_disconnected("w1") == [sl]
    assert [x.slice_id for x in s.queue] == ["s0", "s1"]
    join(s, "w2")
    assert [(w, x.slice_id) for w, x in s.assign()] == [("w2", "s0")]
    assert s.complete("w2", "s0", error=None, records=5) is Outcome.COMPLETED
    assert s.counters.workers_disconnected == 1
    assert s.counters.records == 5


def test_late_result_after_redispatch_is_counted_once() -> None:
    s, _ = scheduler()
    s.add_slices(make(1))
    join(s, "w1")
    s.assign()
    s.worker_disconnected("w1")
    join(s, "w2")
    s.assign()  # s0 now in flight on w2
    # w1 comes back (same id) and re-sends its result: accepted...
    s.worker_connected("w1")
    assert s.complete("w1", "s0", error=None, records=3) is Outcome.COMPLETED
    # ...and w2's result for the same slice is a duplicate.
    assert s.complete("w2", "s0", error=None, records=3) is Outcome.DUPLICATE
    assert s.counters.records == 3
    assert s.counters.processed == 1
    assert s.counters.workers_reconnected == 1


def test_result_for_requeued_slice_removes_it_from_the_queue() -> None:
    s, _ = scheduler()
    s.add_slices(make(1))
    join(s, "w1")
    s.assign()
    s.worker_disconnected("w1")
    assert s.queued == 1
    s.worker_connected("w1")
    assert s.complete("w1", "s0", error=None, records=1) is Outcome.COMPLETED
    assert s.queued == 0
    s.slicers_done = True
    assert s.finished


def test_slice_lost_more_than_max_retries_plus_one_times_is_an_error() -> None:
    s, sink = scheduler(max_retries=0)
    s.add_slices(make(1))
    for name in ("w1", "w2"):
        join(s, name)
        s.assign()
        s.worker_disconnected(name)
    assert s.queued == 0
    assert s.counters.failed == 1
    assert sink.changes[-1] == ("s0", "error")
    s.slicers_done = True
    assert s.finished


def test_paused_scheduler_assigns_nothing_until_resumed() -> None:
    s, _ = scheduler()
    s.add_slices(make(1))
    join(s, "w1")
    s.paused = True
    assert s.assign() == []
    s.paused = False
    assert len(s.assign()) == 1


def test_dispatch_failure_puts_slice_back_in_front() -> None:
    s, _ = scheduler()
    s.add_slices(make(2))
    join(s, "w1")
    (w, sl), *_ = s.assign()
    s.dispatch_failed(w, sl)
    assert [x.slice_id for x in s.queue] == ["s0", "s1"]
    assert s.active_workers == 0

"""The contract every Store implementation passes (teraslice_k8s.store.base).

A test module subclasses :class:`StoreContract` and provides two fixtures:
``store`` (a fresh, empty store) and ``store_opener`` (a picklable zero-argument callable that
opens another store object on the same data, for re-open, multi-thread and multi-process tests).
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.execution import InvalidStatus, InvalidTransition
from teraslice_k8s.store.base import (
    ExFilter,
    JobFilter,
    Page,
    RecordExists,
    RecordNotFound,
    SliceFilter,
    Store,
)

Opener = Callable[[], Store]

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
STATUSES = [
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
INIT = STATUSES[:3]
RUNNING = STATUSES[3:8]
TERMINAL = STATUSES[8:]
WAIT = 60.0  # seconds: bound of every wait on another thread/process


def refusal(current: str, target: str) -> str | None:
    """api-and-runtime.md §3.2, written out independently: None = allowed, else the reason."""
    if current == target:
        return None
    if current in RUNNING and target in INIT:
        return f'Cannot update running job status of "{current}" to "{target}"'
    if current == "stopping" and target not in ("stopped", "completed"):
        return (
            f'Cannot update stopping job status of "stopping" to "{target}": '
            'a stopping execution only becomes "stopped" or "completed"'
        )
    if current == "stopped" and target == "completed":
        return None
    if current in TERMINAL:
        return f'Cannot update terminal job status of "{current}" to "{target}"'
    return None


def job(job_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": f"job {job_id}",
        "lifecycle": "once",
        "workers": 1,
        "operations": [{"_op": "data_generator", "size": 10}, {"_op": "noop"}],
        "job_id": job_id,
        **fields,
    }


def execution(ex_id: str, job_id: str = "job-1", **fields: Any) -> dict[str, Any]:
    return {**job(job_id), "ex_id": ex_id, "metadata": {}, "_has_errors": False, **fields}


def slices(ex_id: str, count: int, prefix: str = "s", slicer_id: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "slice_id": f"{prefix}-{i:05d}",
            "slicer_id": slicer_id,
            "slicer_order": i,
            "request": '{"count":10}',
            "state": "pending",
            "ex_id": ex_id,
        }
        for i in range(count)
    ]


def ids(records: list[dict[str, Any]], key: str = "job_id") -> list[str]:
    return [r[key] for r in records]


# -- work done in other processes (module level so that "spawn" can import it) --


def _write_slices(opener: Opener, worker: int, count: int, barrier: Any) -> None:
    store = opener()
    try:
        barrier.wait(WAIT)
        batch = slices("ex-mp", count, prefix=f"w{worker}")
        for start in range(0, count, 10):
            store.create_slices(batch[start : start + 10])
        for record in batch:
            store.update_slice(record["slice_id"], {"state": "start"})
            store.update_slice(record["slice_id"], {"state": "completed"})
    finally:
        store.close()


def _race_status(opener: Opener, ex_ids: list[str], target: str, barrier: Any, results: Any) -> None:
    store = opener()
    won = []
    try:
        barrier.wait(WAIT)
        for ex_id in ex_ids:
            try:
                store.set_status(ex_id, target)
                won.append(ex_id)
            except InvalidTransition:
                pass
    finally:
        store.close()
        results.put((target, won))


class StoreContract:
    # -- jobs --

    def test_create_job_stamps_context_and_timestamps(self, store: Store) -> None:
        stored = store.create_job(job("j1", _created="bogus", _context="other"))
        assert stored["_context"] == "job"
        assert TIMESTAMP.fullmatch(stored["_created"])
        assert stored["_updated"] == stored["_created"]
        assert store.get_job("j1") == stored
        assert {k: v for k, v in stored.items() if not k.startswith("_")} == job("j1")

    def test_create_job_does_not_mutate_the_input(self, store: Store) -> None:
        record = job("j1")
        store.create_job(record)
        assert record == job("j1")

    def test_create_job_twice_is_refused(self, store: Store) -> None:
        first = store.create_job(job("j1"))
        with pytest.raises(RecordExists) as caught:
            store.create_job(job("j1", name="other"))
        assert str(caught.value) == "job j1 already exists"
        assert store.get_job("j1") == first

    def test_create_job_without_id_is_invalid(self, store: Store) -> None:
        with pytest.raises(ValidationError) as caught:
            store.create_job({"name": "x"})
        assert caught.value.problems == (Problem("job_id", "is required and must be a non-empty string"),)
        assert store.count_jobs() == 0

    def test_unknown_ids_raise_record_not_found(self, store: Store) -> None:
        cases: list[tuple[Callable[[], object], str]] = [
            (lambda: store.get_job("nope"), "Could not find job nope"),
            (lambda: store.replace_job("nope", job("nope")), "Could not find job nope"),
            (lambda: store.get_execution("nope"), "Could not find execution nope"),
            (lambda: store.update_execution("nope", {"a": 1}), "Could not find execution nope"),
            (lambda: store.set_status("nope", "running"), "Could not find execution nope"),
            (lambda: store.update_slice("nope", {"state": "start"}), "Could not find slice nope"),
        ]
        for call, message in cases:
            with pytest.raises(RecordNotFound) as caught:
                call()
            assert str(caught.value) == message

    def test_replace_job_replaces_whole_record_and_keeps_created(self, store: Store) -> None:
        original = store.create_job(job("j1", slicers=2, active=True))
        body = {"name": "renamed", "operations": [{"_op": "noop"}], "active": False}
        replaced = store.replace_job("j1", body)
        assert replaced == store.get_job("j1")
        assert "slicers" not in replaced and "workers" not in replaced
        assert replaced["name"] == "renamed" and replaced["active"] is False
        assert replaced["job_id"] == "j1" and replaced["_context"] == "job"
        assert replaced["_created"] == original["_created"]
        assert TIMESTAMP.fullmatch(replaced["_updated"])
        assert replaced["_updated"] >= original["_updated"]
        assert ids(store.list_jobs(JobFilter(active=False))) == ["j1"]

    def test_replace_job_with_other_id_is_invalid(self, store: Store) -> None:
        original = store.create_job(job("j1"))
        with pytest.raises(ValidationError) as caught:
            store.replace_job("j1", job("j2"))
        assert caught.value.problems == (Problem("job_id", "does not match the job being replaced (j1)"),)
        assert store.get_job("j1") == original

    def test_job_filters_active_and_deleted(self, store: Store) -> None:
        store.create_job(job("plain"))
        store.create_job(job("on", active=True))
        store.create_job(job("off", active=False))
        store.create_job(job("gone-off", _deleted=True, active=False))
        store.create_job(job("gone-on", _deleted=True, active=True))
        store.create_job(job("undeleted", _deleted=False))
        expected = {
            (None, False): ["off", "on", "plain", "undeleted"],
            (True, False): ["on", "plain", "undeleted"],
            (False, False): ["off"],
            (None, True): ["gone-off", "gone-on"],
            (True, True): ["gone-on"],
            (False, True): ["gone-off"],
        }
        for (active, deleted), job_ids in expected.items():
            flt = JobFilter(active=active, deleted=deleted)
            assert ids(store.list_jobs(flt, Page(sort="job_id:asc"))) == job_ids, flt
            assert store.count_jobs(flt) == len(job_ids), flt

    def test_soft_delete_through_replace_moves_job_to_deleted(self, store: Store) -> None:
        stored = store.create_job(job("j1"))
        deleted = {**stored, "_deleted": True, "_deleted_on": "2024-05-01T12:00:00.000Z", "active": False}
        store.replace_job("j1", deleted)
        assert store.list_jobs() == []
        assert ids(store.list_jobs(JobFilter(deleted=True))) == ["j1"]
        assert store.get_job("j1")["_deleted"] is True

    def test_list_jobs_default_order_is_updated_desc(self, store: Store) -> None:
        for name in ("a", "b", "c"):
            store.create_job(job(name))
        store.replace_job("a", job("a", name="touched"))
        assert ids(store.list_jobs()) == ["a", "c", "b"]

    def test_list_jobs_paging_and_sorting(self, store: Store) -> None:
        for i in range(25):
            store.create_job(job(f"j{i:02d}", workers=i % 5))
        all_asc = [f"j{i:02d}" for i in range(25)]
        pages = [ids(store.list_jobs(page=Page(size=10, from_=f, sort="_created:asc"))) for f in (0, 10, 20)]
        assert pages == [all_asc[:10], all_asc[10:20], all_asc[20:]]
        assert ids(store.list_jobs(page=Page(size=5, from_=3, sort="_created:desc"))) == all_asc[::-1][3:8]
        assert store.list_jobs(page=Page(size=10, from_=30)) == []
        assert store.list_jobs(page=Page(size=0)) == []
        # ties on the first key are broken by the id, in the same direction
        by_workers = ids(store.list_jobs(page=Page(size=100, sort="workers:desc")))
        assert by_workers == sorted(all_asc, key=lambda j: (int(j[1:]) % 5, j), reverse=True)
        two_keys = ids(store.list_jobs(page=Page(size=7, sort="workers:asc,_created:desc")))
        assert two_keys == ["j20", "j15", "j10", "j05", "j00", "j21", "j16"]
        assert ids(store.list_jobs(page=Page(size=3, sort="name"))) == ["j00", "j01", "j02"]

    def test_sort_puts_records_without_the_field_last(self, store: Store) -> None:
        store.create_job(job("a", workers=2))
        store.create_job({k: v for k, v in job("b").items() if k != "workers"})
        store.create_job(job("c", workers=1))
        assert ids(store.list_jobs(page=Page(sort="workers:asc"))) == ["c", "a", "b"]
        assert ids(store.list_jobs(page=Page(sort="workers:desc"))) == ["a", "c", "b"]

    @pytest.mark.parametrize(
        ("page", "problems"),
        [
            (
                Page(sort="name:up"),
                [
                    Problem(
                        "sort",
                        'invalid sort "name:up": expected <field>:asc or <field>:desc, '
                        "separated by commas, for top-level fields",
                    )
                ],
            ),
            (
                Page(sort="a.b:asc"),
                [
                    Problem(
                        "sort",
                        'invalid sort "a.b:asc": expected <field>:asc or <field>:desc, '
                        "separated by commas, for top-level fields",
                    )
                ],
            ),
            (
                Page(sort="_updated:desc;drop"),
                [
                    Problem(
                        "sort",
                        'invalid sort "_updated:desc;drop": expected <field>:asc or <field>:desc, '
                        "separated by commas, for top-level fields",
                    )
                ],
            ),
            (Page(size=-1), [Problem("size", "must be an integer from 0 to 10000")]),
            (Page(size=10001), [Problem("size", "must be an integer from 0 to 10000")]),
            (Page(from_=-5), [Problem("from", "must be a non-negative integer")]),
            (Page(size=100, from_=9950), [Problem("from", "from + size must not exceed 10000")]),
        ],
    )
    def test_bad_paging_is_invalid(self, store: Store, page: Page, problems: list[Problem]) -> None:
        store.create_job(job("j1"))
        for call in (
            lambda: store.list_jobs(page=page),
            lambda: store.list_executions(page=page),
            lambda: store.list_slices(SliceFilter(), page),
        ):
            with pytest.raises(ValidationError) as caught:
                call()
            assert list(caught.value.problems) == problems

    def test_list_jobs_json_is_the_listing_as_json_text(self, store: Store) -> None:
        for i in range(12):
            store.create_job(job(f"j{i:02d}", active=i % 3 != 0, note="ünïcode ✓"))
        for flt, page in [
            (JobFilter(), Page()),
            (JobFilter(active=True), Page(size=4, from_=2, sort="_created:asc")),
            (JobFilter(active=False), Page(sort="workers:desc,name:asc")),
            (JobFilter(deleted=True), Page()),
        ]:
            text = store.list_jobs_json(flt, page)
            assert json.loads(text) == store.list_jobs(flt, page)
        assert store.list_jobs_json(JobFilter(deleted=True)) == "[]"
        with pytest.raises(ValidationError):
            store.list_jobs_json(page=Page(sort="bad:sort:x"))

    def test_list_jobs_json_with_latest_execution_fields(self, store: Store) -> None:
        for name in ("never", "ran", "gone"):
            store.create_job(job(name))
        store.create_execution(execution("ran-1", "ran", _status="failed"))
        store.create_execution(
            execution(
                "ran-2",
                "ran",
                _status="running",
                _has_errors=False,
                relocatable=True,
                workers=4,
                _slicer_stats={"processed": 10, "nested": {"a": [1, 2]}},
                assets=["a", "b"],
                _failureReason=None,
            )
        )
        store.create_execution(execution("gone-1", "gone"))
        store.create_execution(execution("gone-2", "gone", _deleted=True))
        fields = ["ex_id", "_status", "_has_errors", "relocatable", "workers", "_slicer_stats", "assets"]
        fields += ["_failureReason", "missing"]
        listed = json.loads(store.list_jobs_json(page=Page(sort="job_id:asc"), ex_fields=fields))
        assert [(j["job_id"], j["ex"]) for j in listed] == [
            ("gone", {}),
            ("never", {}),
            (
                "ran",
                {
                    "ex_id": "ran-2",
                    "_status": "running",
                    "_has_errors": False,
                    "relocatable": True,
                    "workers": 4,
                    "_slicer_stats": {"processed": 10, "nested": {"a": [1, 2]}},
                    "assets": ["a", "b"],
                    "_failureReason": None,
                },
            ),
        ]
        assert {k: v for k, v in listed[2].items() if k != "ex"} == store.get_job("ran")
        empty_field = json.loads(store.list_jobs_json(page=Page(sort="job_id:asc"), ex_fields=[""]))
        assert [j["ex"] for j in empty_field] == [{}, {}, {}]

    def test_list_executions_json_is_the_listing_as_json_text(self, store: Store) -> None:
        for i in range(5):
            store.create_execution(execution(f"e{i}", "A", _status="running" if i % 2 else "completed"))
        for flt, page in [
            (ExFilter(), Page()),
            (ExFilter(statuses=["running"]), Page(size=1, from_=1, sort="ex_id:asc")),
            (ExFilter(job_id="B"), Page()),
        ]:
            assert json.loads(store.list_executions_json(flt, page)) == store.list_executions(flt, page)

    # -- executions --

    def test_create_execution_stamps_and_defaults_to_pending(self, store: Store) -> None:
        record = execution("e1")
        del record["job_id"]
        with pytest.raises(ValidationError) as caught:
            store.create_execution(record)
        assert caught.value.problems == (Problem("job_id", "is required and must be a non-empty string"),)
        stored = store.create_execution(execution("e1", _context="job", _updated="x"))
        assert stored["_status"] == "pending" and stored["_context"] == "ex"
        assert TIMESTAMP.fullmatch(stored["_created"]) and stored["_updated"] == stored["_created"]
        assert store.get_execution("e1") == stored
        with pytest.raises(RecordExists) as exists:
            store.create_execution(execution("e1"))
        assert str(exists.value) == "execution e1 already exists"

    def test_create_execution_with_unknown_status_is_refused(self, store: Store) -> None:
        with pytest.raises(InvalidStatus) as caught:
            store.create_execution(execution("e1", _status="sleeping"))
        assert str(caught.value) == 'Invalid Job status: "sleeping"'
        assert store.count_executions(ExFilter(deleted=None)) == 0

    def test_update_execution_merges_top_level_fields(self, store: Store) -> None:
        created = store.create_execution(execution("e1", metadata={"a": 1}, _slicer_stats={"processed": 1}))
        updated = store.update_execution(
            "e1", {"metadata": {"b": 2}, "slicer_hostname": "svc.ns", "slicer_port": 45680}
        )
        assert updated == store.get_execution("e1")
        assert updated["metadata"] == {"b": 2}  # replaced whole, not deep-merged
        assert updated["_slicer_stats"] == {"processed": 1}
        assert updated["slicer_hostname"] == "svc.ns" and updated["slicer_port"] == 45680
        assert updated["_status"] == "pending"
        assert updated["_created"] == created["_created"] and updated["_updated"] >= created["_updated"]

    def test_update_execution_cannot_change_status_or_id(self, store: Store) -> None:
        created = store.create_execution(execution("e1"))
        with pytest.raises(ValidationError) as caught:
            store.update_execution("e1", {"_status": "running", "ex_id": "e2"})
        assert caught.value.problems == (
            Problem("_status", "is changed only through set_status"),
            Problem("ex_id", "does not match the execution being updated (e1)"),
        )
        assert store.get_execution("e1") == created

    def test_list_executions_filters(self, store: Store) -> None:
        store.create_execution(execution("a1", "A", _status="completed"))
        store.create_execution(execution("a2", "A", _status="running"))
        store.create_execution(execution("a3", "A", _status="failed", _deleted=True))
        store.create_execution(execution("b1", "B", _status="running"))
        sort = Page(sort="ex_id:asc")

        def listed(flt: ExFilter) -> list[str]:
            assert store.count_executions(flt) == len(store.list_executions(flt, sort))
            return ids(store.list_executions(flt, sort), "ex_id")

        assert listed(ExFilter()) == ["a1", "a2", "b1"]
        assert listed(ExFilter(deleted=None)) == ["a1", "a2", "a3", "b1"]
        assert listed(ExFilter(deleted=True)) == ["a3"]
        assert listed(ExFilter(job_id="A")) == ["a1", "a2"]
        assert listed(ExFilter(job_id="A", deleted=None)) == ["a1", "a2", "a3"]
        assert listed(ExFilter(statuses=["running"])) == ["a2", "b1"]
        assert listed(ExFilter(job_id="A", statuses=("running", "failed"), deleted=None)) == ["a2", "a3"]
        assert listed(ExFilter(statuses=["nonsense"])) == []

    def test_latest_execution_by_created_including_deleted(self, store: Store) -> None:
        assert store.latest_execution("A") is None
        assert store.latest_executions(["A"]) == {}
        store.create_execution(execution("z-first", "A"))
        store.create_execution(execution("a-second", "A", _deleted=True))
        store.create_execution(execution("b1", "B"))
        store.update_execution("z-first", {"touched": True})  # _updated does not matter
        latest = store.latest_execution("A")
        assert latest is not None and latest["ex_id"] == "a-second"
        found = store.latest_executions(["A", "B", "C", "A"])
        assert {k: v["ex_id"] for k, v in found.items()} == {"A": "a-second", "B": "b1"}
        assert found["A"] == store.get_execution("a-second")

    def test_latest_executions_for_many_jobs(self, store: Store) -> None:
        job_ids = [f"job-{i:04d}" for i in range(600)]
        for job_id in job_ids[::3]:
            store.create_execution(execution(f"ex-{job_id}", job_id))
        found = store.latest_executions(job_ids)
        assert sorted(found) == job_ids[::3]
        assert all(found[j]["ex_id"] == f"ex-{j}" for j in found)

    # -- status --

    def test_set_status_writes_status_fields_and_updated(self, store: Store) -> None:
        created = store.create_execution(execution("e1"))
        result = store.set_status("e1", "scheduling")
        assert result == store.get_execution("e1")
        assert result["_status"] == "scheduling" and result["_updated"] >= created["_updated"]
        result = store.set_status("e1", "initializing", {"slicer_hostname": "h.ns", "slicer_port": 45680})
        assert (result["_status"], result["slicer_hostname"], result["slicer_port"]) == (
            "initializing",
            "h.ns",
            45680,
        )
        with pytest.raises(ValidationError):
            store.set_status("e1", "running", {"_status": "failed"})
        assert store.get_execution("e1") == result

    def test_set_status_refusal_changes_nothing(self, store: Store) -> None:
        store.create_execution(execution("e1", _status="running"))
        before = store.get_execution("e1")
        with pytest.raises(InvalidTransition) as caught:
            store.set_status("e1", "pending", {"_failureReason": "should not be stored"})
        assert str(caught.value) == (
            "Unable to set execution e1 status code to pending, caused by "
            'Cannot update running job status of "running" to "pending"'
        )
        assert store.get_execution("e1") == before

    def test_set_status_unknown_status_is_refused(self, store: Store) -> None:
        store.create_execution(execution("e1"))
        before = store.get_execution("e1")
        with pytest.raises(InvalidStatus) as caught:
            store.set_status("e1", "sleeping")
        assert str(caught.value) == 'Invalid Job status: "sleeping"'
        assert store.get_execution("e1") == before

    def test_stopped_then_completed_is_allowed(self, store: Store) -> None:
        store.create_execution(execution("e1", _status="running"))
        store.set_status("e1", "stopping")
        store.set_status("e1", "stopped")
        assert store.set_status("e1", "completed")["_status"] == "completed"
        with pytest.raises(InvalidTransition):
            store.set_status("e1", "stopped")

    def test_every_transition(self, store: Store) -> None:
        pairs = list(itertools.product(STATUSES, STATUSES))
        for n, (current, _target) in enumerate(pairs):
            store.create_execution(execution(f"t{n:03d}", _status=current))
        outcomes: dict[tuple[str, str], str | None] = {}
        for n, (current, target) in enumerate(pairs):
            ex_id = f"t{n:03d}"
            before = store.get_execution(ex_id)
            try:
                after = store.set_status(ex_id, target, {"marker": n})
            except InvalidTransition as error:
                outcomes[current, target] = str(error)
                assert store.get_execution(ex_id) == before
            else:
                outcomes[current, target] = None
                assert (after["_status"], after["marker"]) == (target, n)
                assert after["_updated"] >= before["_updated"]
        expected = {
            (c, t): None
            if refusal(c, t) is None
            else f"Unable to set execution t{n:03d} status code to {t}, caused by {refusal(c, t)}"
            for n, (c, t) in enumerate(pairs)
        }
        assert outcomes == expected
        assert sum(v is None for v in outcomes.values()) == 169 - 15 - (5 * 12 - 1) - 7

    def test_concurrent_set_status_from_threads_has_one_winner(
        self, store: Store, store_opener: Opener
    ) -> None:
        ex_ids = [f"race-{i:02d}" for i in range(30)]
        for ex_id in ex_ids:
            store.create_execution(execution(ex_id, _status="running"))
        barrier = threading.Barrier(2)
        won: dict[str, list[str]] = {"completed": [], "failed": []}
        errors: list[BaseException] = []

        def race(target: str) -> None:
            other = store_opener()
            try:
                barrier.wait(WAIT)
                for ex_id in ex_ids:
                    try:
                        other.set_status(ex_id, target)
                        won[target].append(ex_id)
                    except InvalidTransition:
                        pass
            except BaseException as error:
                errors.append(error)
            finally:
                other.close()

        threads = [threading.Thread(target=race, args=(t,)) for t in ("completed", "failed")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert errors == []
        assert sorted(won["completed"] + won["failed"]) == ex_ids
        for target, winners in won.items():
            for ex_id in winners:
                assert store.get_execution(ex_id)["_status"] == target

    def test_concurrent_set_status_from_processes_has_one_winner(
        self, store: Store, store_opener: Opener
    ) -> None:
        ex_ids = [f"race-{i:02d}" for i in range(30)]
        for ex_id in ex_ids:
            # From running both targets are allowed and each refuses the other afterwards.
            store.create_execution(execution(ex_id, _status="running"))
        ctx = multiprocessing.get_context("spawn")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [
            ctx.Process(target=_race_status, args=(store_opener, ex_ids, target, barrier, results))
            for target in ("stopped", "failed")
        ]
        for proc in procs:
            proc.start()
        outcome = dict(results.get(timeout=WAIT) for _ in procs)
        for proc in procs:
            proc.join(WAIT)
            assert proc.exitcode == 0
        assert sorted(outcome["stopped"] + outcome["failed"]) == ex_ids
        final = {ex_id: store.get_execution(ex_id)["_status"] for ex_id in ex_ids}
        assert final == {e: ("stopped" if e in outcome["stopped"] else "failed") for e in ex_ids}

    def test_concurrent_updates_lose_nothing(self, store: Store, store_opener: Opener) -> None:
        store.create_execution(execution("e1", _status="running"))
        barrier = threading.Barrier(4)
        errors: list[BaseException] = []

        def write(n: int) -> None:
            other = store_opener()
            try:
                barrier.wait(WAIT)
                for i in range(15):
                    if n == 0:
                        other.set_status("e1", "failing" if i % 2 else "running", {"round": i})
                    else:
                        other.update_execution("e1", {f"field_{n}": i})
            except BaseException as error:
                errors.append(error)
            finally:
                other.close()

        threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert errors == []
        final = store.get_execution("e1")
        assert (final["field_1"], final["field_2"], final["field_3"]) == (14, 14, 14)
        assert (final["_status"], final["round"]) == ("running", 14)

    # -- slice state --

    def test_slices_create_update_list_count(self, store: Store) -> None:
        store.create_slices(slices("e1", 12) + slices("e2", 3, prefix="other"))
        store.create_slices([])
        first = store.list_slices(SliceFilter(ex_id="e1"), Page(size=1, sort="slicer_order:asc"))[0]
        assert first["slice_id"] == "s-00000" and first["request"] == '{"count":10}'
        assert TIMESTAMP.fullmatch(first["_created"]) and first["_updated"] == first["_created"]
        for i in range(5):
            store.update_slice(f"s-{i:05d}", {"state": "start"})
        store.update_slice("s-00000", {"state": "completed"})
        store.update_slice("s-00001", {"state": "error", "error": "Error: boom\n    at op", "retry_count": 3})
        counts = {
            state: store.count_slices(SliceFilter(ex_id="e1", states=[state]))
            for state in ("pending", "start", "completed", "error")
        }
        assert counts == {"pending": 7, "start": 3, "completed": 1, "error": 1}
        assert store.count_slices(SliceFilter(ex_id="e2")) == 3
        assert store.count_slices(SliceFilter()) == 15
        errors = store.list_slices(SliceFilter(ex_id="e1", states=["error"]))
        assert len(errors) == 1
        assert {k: errors[0][k] for k in ("slice_id", "state", "error", "retry_count", "slicer_order")} == {
            "slice_id": "s-00001",
            "state": "error",
            "error": "Error: boom\n    at op",
            "retry_count": 3,
            "slicer_order": 1,
        }
        assert TIMESTAMP.fullmatch(errors[0]["_updated"])
        assert errors[0]["_updated"] >= errors[0]["_created"]

    def test_slices_recovery_query(self, store: Store) -> None:
        store.create_slices(
            slices("e1", 6, prefix="a", slicer_id=0) + slices("e1", 4, prefix="b", slicer_id=1)
        )
        store.update_slice("a-00004", {"state": "completed"})
        store.update_slice("b-00001", {"state": "completed"})
        flt = SliceFilter(ex_id="e1", slicer_id=0, exclude_states=["completed"])
        got = store.list_slices(flt, Page(size=5000, sort="slicer_order:desc"))
        assert ids(got, "slice_id") == ["a-00005", "a-00003", "a-00002", "a-00001", "a-00000"]
        assert store.count_slices(SliceFilter(ex_id="e1", slicer_id=1, exclude_states=["completed"])) == 3
        assert store.count_slices(SliceFilter(ex_id="e1", slicer_id=2)) == 0

    def test_create_slices_overwrites_same_id_and_validates(self, store: Store) -> None:
        store.create_slices(slices("e1", 2))
        store.create_slices(slices("e1", 2))
        assert store.count_slices(SliceFilter(ex_id="e1")) == 2
        with pytest.raises(ValidationError) as caught:
            store.create_slices([*slices("e1", 1, prefix="ok"), {"slice_id": "x", "ex_id": "e1"}])
        assert caught.value.problems == (Problem("[1].state", "is required and must be a non-empty string"),)
        assert store.count_slices(SliceFilter(ex_id="e1")) == 2

    def test_update_slice_refuses_bad_fields(self, store: Store) -> None:
        store.create_slices(slices("e1", 1))
        before = store.list_slices(SliceFilter(ex_id="e1"))
        with pytest.raises(ValidationError) as caught:
            store.update_slice("s-00000", {"state": "start", 'x"y': 1, "slice_id": "other"})
        assert caught.value.problems == (Problem("slice_id", "cannot be changed"),)
        with pytest.raises(ValidationError) as caught:
            store.update_slice("s-00000", {"state": "start", 'x"y': 1, "a.b": 2})
        assert caught.value.problems == (
            Problem('x"y', "is not a valid field name"),
            Problem("a.b", "is not a valid field name"),
        )
        with pytest.raises(ValidationError) as caught:
            store.update_slice("s-00000", {"state": ""})
        assert caught.value.problems == (Problem("state", "is required and must be a non-empty string"),)
        assert store.list_slices(SliceFilter(ex_id="e1")) == before

    def test_create_slices_keeps_given_timestamps(self, store: Store) -> None:
        record = {**slices("e1", 1)[0], "_created": "2024-05-01T12:00:01.123Z"}
        store.create_slices([record])
        stored = store.list_slices(SliceFilter(ex_id="e1"))[0]
        assert (stored["_created"], stored["_updated"]) == ("2024-05-01T12:00:01.123Z",) * 2

    # -- analytics --

    def test_analytics_insert_and_count(self, store: Store) -> None:
        record = {
            "@timestamp": "2024-05-01T12:00:02.000Z",
            "ex_id": "e1",
            "job_id": "j1",
            "worker_id": "10.2.3.4__a1b2c3d4",
            "slice_id": "s1",
            "slicer_id": 0,
            "op": "data_generator",
            "state": "completed",
            "order": 0,
            "count": 5000,
            "time": 812,
            "memory": 1048576,
        }
        store.add_analytics([record, {**record, "op": "noop", "order": 1}])
        store.add_analytics([{**record, "ex_id": "e2"}])
        store.add_analytics([])
        assert (store.count_analytics("e1"), store.count_analytics("e2"), store.count_analytics("e3")) == (
            2,
            1,
            0,
        )
        with pytest.raises(ValidationError) as caught:
            store.add_analytics([{"op": "noop"}])
        assert caught.value.problems == (Problem("[0].ex_id", "is required and must be a non-empty string"),)

    # -- durability and processes --

    def test_records_survive_reopening(self, store: Store, store_opener: Opener) -> None:
        jobs = [store.create_job(job(f"j{i}")) for i in range(20)]
        exs = [store.create_execution(execution(f"e{i}", f"j{i}")) for i in range(20)]
        exs[3] = store.set_status("e3", "scheduling", {"note": "kept"})
        store.create_slices(slices("e1", 50))
        store.update_slice("s-00007", {"state": "completed"})
        store.add_analytics([{"ex_id": "e1", "op": "noop"}])
        store.close()
        reopened = store_opener()
        try:
            assert sorted(reopened.list_jobs(page=Page(size=100)), key=lambda r: r["job_id"]) == sorted(
                jobs, key=lambda r: r["job_id"]
            )
            assert [reopened.get_execution(f"e{i}") for i in range(20)] == exs
            assert reopened.count_slices(SliceFilter(ex_id="e1")) == 50
            assert reopened.count_slices(SliceFilter(ex_id="e1", states=["completed"])) == 1
            assert reopened.count_analytics("e1") == 1
        finally:
            reopened.close()

    def test_processes_writing_slices_concurrently(self, store: Store, store_opener: Opener) -> None:
        ctx = multiprocessing.get_context("spawn")
        workers, per_worker = 3, 60
        barrier = ctx.Barrier(workers)
        procs = [
            ctx.Process(target=_write_slices, args=(store_opener, n, per_worker, barrier))
            for n in range(workers)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(WAIT)
        assert [proc.exitcode for proc in procs] == [0] * workers
        total = workers * per_worker
        assert store.count_slices(SliceFilter(ex_id="ex-mp")) == total
        assert store.count_slices(SliceFilter(ex_id="ex-mp", states=["completed"])) == total
        listed = store.list_slices(SliceFilter(ex_id="ex-mp"), Page(size=total, sort="slice_id:asc"))
        assert ids(listed, "slice_id") == sorted(
            f"w{n}-{i:05d}" for n in range(workers) for i in range(per_worker)
        )

"""``_workers`` before the workers exist: the stored count follows the same rule as a backend."""

from __future__ import annotations

from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, RecordingBackend
from .test_lifecycle import make_ex


def test_scaling_a_queued_execution_changes_only_the_stored_count(
    client: ApiClient, service: MasterService, store: SqliteStore, backend: RecordingBackend
) -> None:
    ex_id = make_ex(store, "scheduling", workers=2)
    added = client.post(f"/v1/ex/{ex_id}/_workers", params={"add": "3"})
    assert (added.status_code, added.json()) == (
        200,
        {"message": f"3 workers have been add for execution: {ex_id}"},
    )
    assert store.get_execution(ex_id)["workers"] == 5
    refused = client.post(f"/v1/ex/{ex_id}/_workers", params={"remove": "9"})
    assert (refused.status_code, refused.json()) == (
        409,
        {
            "error": 409,
            "message": f"cannot remove 9 workers from execution {ex_id}: it has 5, "
            "and the worker count cannot go below 0",
        },
    )
    assert store.get_execution(ex_id)["workers"] == 5
    assert backend.calls_of("scale_workers") == []

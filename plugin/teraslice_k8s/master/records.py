"""How the master builds execution records (api-and-runtime.md §2.6); pure functions.

A new execution is the job spec overlaid by the validated config, plus Teraslice's execution
metadata (``pending``, empty ``metadata``/``_slicer_stats``, ``_failureReason: ""``...).
A recovery copies the source execution's config (without its runtime fields), overlays the
current job (job path) and records where it came from.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from teraslice_k8s import TERASLICE_COMPAT_VERSION
from teraslice_k8s.models.execution import ExStatus
from teraslice_k8s.store.base import Record

#: Fields of an execution that belong to one run, not to its config: never copied by recovery.
EX_RUNTIME_KEYS = frozenset(
    {
        "ex_id",
        "_status",
        "_context",
        "_created",
        "_updated",
        "_has_errors",
        "_slicer_stats",
        "_failureReason",
        "_pendingReason",
        "_deleted",
        "_deleted_on",
        "slicer_hostname",
        "slicer_port",
        "recovered_execution",
        "recovered_slice_type",
        "metadata",
    }
)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` recursively (``over`` wins); neither input is mutated."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def new_execution(
    job_id: str, spec: Mapping[str, Any], validated: Mapping[str, Any], extra: Mapping[str, Any] = {}
) -> Record:
    """A ``pending`` execution record with a fresh ``ex_id`` (``_created``/``_updated`` are the
    store's)."""
    record: Record = {**spec, **validated}
    for key in ("slicer_hostname", "slicer_port", "_deleted", "_deleted_on"):
        record.pop(key, None)
    record.update(
        {
            "job_id": job_id,
            "ex_id": str(uuid.uuid4()),
            "metadata": {},
            "_status": ExStatus.PENDING.value,
            "_context": "ex",
            "_has_errors": False,
            "_slicer_stats": {},
            "_failureReason": "",
            "teraslice_version": TERASLICE_COMPAT_VERSION,
            **extra,
        }
    )
    return record


def recovery(
    job_id: str,
    source: Mapping[str, Any],
    overlay: Mapping[str, Any],
    cleanup: str | None,
) -> Record:
    """An execution recovering ``source``: its config with ``overlay`` (the current validated
    job, or nothing for ``/ex/:id/_recover``) deep-merged over it."""
    base = {k: v for k, v in source.items() if k not in EX_RUNTIME_KEYS}
    extra: dict[str, Any] = {"recovered_execution": source["ex_id"]}
    if cleanup:
        extra["recovered_slice_type"] = cleanup
    return new_execution(job_id, {}, deep_merge(base, overlay), extra)

"""Record preparation both stores share, so their stamping and input checks are identical.

Every function returns a new dict (callers' records are never mutated) and raises
:class:`ValidationError` naming the field for a record the store must not accept.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError, join_path
from teraslice_k8s.models.execution import ExStatus, check_transition, parse_status
from teraslice_k8s.models.json_values import value_problems
from teraslice_k8s.store.base import Record
from teraslice_k8s.store.timestamps import StoreClock, utc_now

log = logging.getLogger(__name__)

#: A read-check-write's step: the stored record -> the record to write (may raise to refuse).
Change = Callable[[Record], Record]


def _check_id(record: Mapping[str, Any], key: str, path: str = "") -> Problem | None:
    value = record.get(key)
    if isinstance(value, str) and value:
        return None
    return Problem(join_path(path, key), "is required and must be a non-empty string")


def _raise(problems: Sequence[Problem | None], subject: str) -> None:
    found = [p for p in problems if p is not None]
    if found:
        raise ValidationError(found, subject=subject)


def _check_values(record: Mapping[str, Any]) -> list[Problem]:
    # The master refuses these at the door already; this keeps any other writer (a direct
    # store user) from storing a job that no JSON reader could list again.
    return value_problems(record)


def new_job(record: Mapping[str, Any], clock: StoreClock) -> Record:
    """The job to store: ``record`` + ``_context: "job"``, ``_created`` = ``_updated`` = now.
    Values JSON readers cannot keep exactly (:mod:`teraslice_k8s.models.json_values`) are refused."""
    _raise([_check_id(record, "job_id"), *_check_values(record)], "job record")
    stamp = clock.next()
    return {**record, "_context": "job", "_created": stamp, "_updated": stamp}


def replacement_job(job_id: str, record: Mapping[str, Any], created: Any, clock: StoreClock) -> Record:
    """A job document replacing the stored one: ``record`` + id, context, original ``_created``."""
    if "job_id" in record and record["job_id"] != job_id:
        _raise([Problem("job_id", f"does not match the job being replaced ({job_id})")], "job record")
    _raise(_check_values(record), "job record")
    return {**record, "job_id": job_id, "_context": "job", "_created": created, "_updated": clock.next()}


def new_execution(record: Mapping[str, Any], clock: StoreClock) -> Record:
    """The execution to store: ``_status`` defaults to ``pending`` and must be a known status."""
    _raise([_check_id(record, "ex_id"), _check_id(record, "job_id")], "execution record")
    status = parse_status(record.get("_status", ExStatus.PENDING.value))
    stamp = clock.next()
    return {**record, "_status": status.value, "_context": "ex", "_created": stamp, "_updated": stamp}


def _execution_fields(ex_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check the fields of ``update_execution``/``set_status`` (no ``_status``, no other id)."""
    problems: list[Problem | None] = []
    if "_status" in fields:
        problems.append(Problem("_status", "is changed only through set_status"))
    if "ex_id" in fields and fields["ex_id"] != ex_id:
        problems.append(Problem("ex_id", f"does not match the execution being updated ({ex_id})"))
    _raise(problems, "execution update")
    return dict(fields)


def execution_change(ex_id: str, fields: Mapping[str, Any], clock: StoreClock) -> Change:
    """The change ``update_execution`` applies to the stored execution: ``fields`` are checked
    now (ValidationError before anything is read); ``_updated`` is stamped when it is applied."""
    changes = _execution_fields(ex_id, fields)

    def change(record: Record) -> Record:
        return {**record, **changes, "_updated": clock.next()}

    return change


def status_change(ex_id: str, status: str, fields: Mapping[str, Any] | None, clock: StoreClock) -> Change:
    """The change ``set_status`` applies: ``status`` and ``fields`` are checked now; applying it
    raises :class:`InvalidTransition` when the stored status may not move to ``status``."""
    target = parse_status(status).value
    changes = _execution_fields(ex_id, fields or {})

    def change(record: Record) -> Record:
        check_transition(ex_id, record["_status"], target)
        return {**record, **changes, "_status": target, "_updated": clock.next()}

    return change


def new_slices(records: Sequence[Mapping[str, Any]]) -> list[Record]:
    """State records to insert; ``slice_id``, ``ex_id`` and ``state`` are required,
    ``_created`` defaults to now and ``_updated`` to ``_created``."""
    problems: list[Problem | None] = []
    for index, record in enumerate(records):
        path = join_path("", index)
        problems += [_check_id(record, "slice_id", path), _check_id(record, "ex_id", path)]
        problems.append(_check_id(record, "state", path))
    _raise(problems, "slice records")
    prepared = []
    for record in records:
        created = record.get("_created") or utc_now()
        prepared.append({**record, "_created": created, "_updated": record.get("_updated") or created})
    return prepared


_FIELD_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_@\-]*")


def slice_update(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fields of ``update_slice``: ``_updated`` defaults to now; ``slice_id`` may not change;
    names are plain identifiers (letters, digits, ``_``, ``@``, ``-``)."""
    if "slice_id" in fields:
        _raise([Problem("slice_id", "cannot be changed")], "slice update")
    bad = [key for key in fields if not isinstance(key, str) or not _FIELD_NAME.fullmatch(key)]
    _raise([Problem(str(key), "is not a valid field name") for key in bad], "slice update")
    if "state" in fields:
        _raise([_check_id(fields, "state")], "slice update")
    return {**fields, "_updated": fields.get("_updated") or utc_now()}


def new_analytics(records: Sequence[Mapping[str, Any]]) -> list[Record]:
    """Analytics records to insert; ``ex_id`` is required (it is what they are counted by)."""
    _raise([_check_id(r, "ex_id", join_path("", i)) for i, r in enumerate(records)], "analytics records")
    return [dict(r) for r in records]


def restricted_execution(execution: Mapping[str, Any] | None, fields: Sequence[str]) -> Record:
    """The ``ex`` of ``GET /v1/jobs?ex=``: the listed fields of the latest execution, or ``{}``
    when there is none or it is deleted (Teraslice 3.18)."""
    if execution is None or execution.get("_deleted") is True:
        return {}
    return {key: execution[key] for key in fields if key in execution}


#: ``_context`` of the safe form, by record kind (Teraslice's values).
_CONTEXTS = {"job": "job", "execution": "ex"}
#: How many unreadable records are remembered so each is logged once, not on every listing.
_LOGGED_LIMIT = 1024
_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def safe_form(kind: str, id_field: str, known: Mapping[str, Any], reason: str) -> Record:
    """What a listing shows for a stored record it cannot show as stored: the fields the store
    knows without the document (``known``: its id, and in SQLite the indexed columns such as
    ``_status`` and ``_updated``), its ``_context`` and ``_unreadable`` saying why. Logged
    once per record as a WARNING."""
    record_id = known.get(id_field)
    shown_id = record_id if isinstance(record_id, str) else str(record_id)
    with _logged_lock:
        first = (kind, shown_id) not in _logged
        if first:
            if len(_logged) >= _LOGGED_LIMIT:
                _logged.clear()
            _logged.add((kind, shown_id))
    if first:
        log.warning(
            "stored %s %s cannot be shown as stored (%s): listed in a safe form",
            kind,
            shown_id,
            reason,
        )
    return {**known, id_field: shown_id, "_context": _CONTEXTS.get(kind, kind), "_unreadable": reason}


def readable(doc: Any, kind: str, id_field: str, known: Mapping[str, Any]) -> Record:
    """A stored document as a record to read: JSON text is parsed (SQLite), a parsed document
    (Elasticsearch's ``_source``) is taken as is. A document that is not JSON, nests too deep
    for the parser, is not an object or lacks its id becomes its :func:`safe_form` (``known``:
    what the store knows of it otherwise), so one bad record never breaks a listing."""
    if isinstance(doc, str | bytes):
        try:
            doc = json.loads(doc)
        except RecursionError:
            return safe_form(kind, id_field, known, "the stored document nests too deep to read")
        except ValueError as error:
            return safe_form(kind, id_field, known, f"the stored document is not JSON: {error}")
    if not isinstance(doc, dict):
        return safe_form(kind, id_field, known, "the stored document is not a JSON object")
    if not isinstance(doc.get(id_field), str):
        return safe_form(kind, id_field, known, f"the stored document has no {id_field}")
    return doc

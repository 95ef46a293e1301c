"""Listings one stored record cannot break: ``GET /v1/jobs``, ``/v1/ex`` and the ``/txt`` tables.

The store already shows a record it cannot read (not JSON, not an object, no id) in a safe
form (:func:`teraslice_k8s.store.records.safe_form`). A record it can read may still be one
the response cannot render (nesting beyond what the encoders walk, a value no encoder takes);
such a record is replaced by the same safe form, logged once, and the rest of the listing is
answered as usual. The common case costs one render, as before: records are rendered one by
one only after the whole listing failed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from teraslice_k8s.master import tables
from teraslice_k8s.master.responses import render_json
from teraslice_k8s.store.records import safe_form

#: Record kind -> its id field.
ID_FIELDS = {"job": "job_id", "execution": "ex_id"}
#: Fields of an unrenderable record its safe form keeps (when they are plain strings).
KEPT_FIELDS = {
    "job": ("job_id", "name", "_created", "_updated"),
    "execution": ("ex_id", "job_id", "name", "_status", "_created", "_updated"),
}


def _replacement(record: Any, kind: str, error: Exception) -> dict[str, Any]:
    fields = record if isinstance(record, Mapping) else {}
    known = {key: fields[key] for key in KEPT_FIELDS[kind] if isinstance(fields.get(key), str)}
    reason = f"the stored record cannot be rendered: {type(error).__name__}: {error}"
    shown = safe_form(kind, ID_FIELDS[kind], known, reason[:500])
    attached = fields.get("ex")  # GET /v1/jobs?ex=: keep the execution fields when they render
    if isinstance(attached, Mapping):
        try:
            render_json(attached)
        except Exception:
            attached = {}
        shown["ex"] = attached
    return shown


def renderable(records: Sequence[Any], kind: str, render: Callable[[Any], object]) -> list[Any]:
    """``records`` with every one ``render`` fails on replaced by its safe form."""
    shown: list[Any] = []
    for record in records:
        try:
            render(record)
        except Exception as error:  # whatever breaks one record must not break the listing
            shown.append(_replacement(record, kind, error))
        else:
            shown.append(record)
    return shown


def render_records(records: Sequence[Any], kind: str) -> bytes:
    """``JSON.stringify(records, null, 4)``, unrenderable records in their safe form."""
    try:
        return render_json(records)
    except Exception:
        return render_json(renderable(records, kind, render_json))


def render_table(
    records: Sequence[Mapping[str, Any]],
    kind: str,
    cols: Sequence[str],
    *,
    headers: bool,
) -> str:
    """:func:`tables.render` of ``records``, unrenderable rows in their safe form."""
    try:
        return tables.render(records, cols, headers=headers)
    except Exception:
        shown = renderable(records, kind, lambda record: tables.render([record], cols))
        return tables.render(shown, cols, headers=headers)


def render_record(record: Any, kind: str) -> bytes:
    """One stored record (``GET /v1/jobs/<id>``, ``/v1/ex/<id>``), in its safe form if it
    cannot be rendered."""
    try:
        return render_json(record)
    except Exception as error:
        return render_json(_replacement(record, kind, error))

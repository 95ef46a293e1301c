"""The ``/txt/*`` tables, rendered like Teraslice's ``easy-table`` output (api-and-runtime.md §1.9).

Format: a header row, a row of dashes, one row per item; every cell is left-aligned and padded
to its column's width (the last column too), cells are joined by two spaces, every line ends
with ``\\n``. Values print the way JavaScript's ``'' + value`` would (``true``, ``null``,
``a,b``); a missing field prints ``N/A``. An empty result prints the header, the dashes and one
blank row. ``fields`` (comma or space separated) picks the columns; ``headers=false`` drops the
two header rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

JOB_COLUMNS = ("job_id", "name", "active", "lifecycle", "slicers", "workers", "_created", "_updated")
EX_COLUMNS = (
    "name",
    "lifecycle",
    "slicers",
    "workers",
    "_status",
    "ex_id",
    "job_id",
    "_created",
    "_updated",
)
WORKER_COLUMNS_K8S = ("assignment", "job_id", "ex_id", "node_id", "pod_name", "image")
WORKER_COLUMNS_NATIVE = ("assignment", "job_id", "ex_id", "node_id", "pid")
NODE_COLUMNS = (
    "node_id",
    "state",
    "hostname",
    "total",
    "active",
    "pid",
    "teraslice_version",
    "node_version",
)
CONTROLLER_COLUMNS = (
    "name",
    "job_id",
    "workers_available",
    "workers_active",
    "failed",
    "queued",
    "processed",
)

_MISSING = object()


def js_string(value: Any) -> str:
    """``'' + value`` in JavaScript, for the JSON values records hold."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return str(value)


def columns(fields: str | None, defaults: Sequence[str]) -> list[str]:
    """Teraslice's ``fields`` query: comma and/or space separated names; empty -> defaults."""
    if fields:
        picked = [f for f in re.split(r"[,\s]+", fields) if f]
        if picked:
            return picked
    return list(defaults)


def render(
    items: Sequence[Mapping[str, Any]],
    cols: Sequence[str],
    *,
    headers: bool = True,
    cell: Callable[[Mapping[str, Any], str], Any] | None = None,
) -> str:
    """Render ``items`` as an easy-table text table with the given columns."""
    if items:
        empty = "N/A"
        rows_in: Sequence[Mapping[str, Any]] = items
    else:
        empty, rows_in = "", [{}]

    def value(item: Mapping[str, Any], col: str) -> str:
        raw = cell(item, col) if cell is not None else item.get(col, _MISSING)
        return empty if raw is _MISSING else js_string(raw)

    rows = [[value(item, col) for col in cols] for item in rows_in]
    widths = [max([len(col) if headers else 0] + [len(row[i]) for row in rows]) for i, col in enumerate(cols)]
    lines: list[list[str]] = []
    if headers:
        lines.append(list(cols))
        lines.append(["-" * w for w in widths])
    lines.extend(rows)
    return "".join(
        "  ".join(text.ljust(w) for text, w in zip(line, widths, strict=True)) + "\n" for line in lines
    )


def worker_items(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every ``active`` item of connected nodes, with ``node_id`` and ``hostname`` added."""
    items: list[dict[str, Any]] = []
    for node in state.values():
        if not isinstance(node, Mapping) or node.get("state") != "connected":
            continue
        for worker in node.get("active") or ():
            items.append({**worker, "node_id": node.get("node_id"), "hostname": node.get("hostname")})
    return items


def node_cell(item: Mapping[str, Any], col: str) -> Any:
    """``/txt/nodes`` shows ``active`` as a count."""
    if col == "active":
        return len(item.get("active") or ())
    return item.get(col, _MISSING)

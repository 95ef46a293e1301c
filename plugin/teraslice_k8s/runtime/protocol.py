"""Messages on the controller's websocket ``/worker`` (runtime-internal; JSON text frames).

Worker -> controller:
- ``{"type": "hello", "worker_id": "<host>__<8 chars>", "ex_id"}`` — first frame of every
  connection (a controller refuses a worker of another execution: close code 1008);
- ``{"type": "available", "count"?: n}`` — wants ``n`` (default 1) more slices (Teraslice's
  ``client:available``);
- ``{"type": "complete", "slice_id", "records": n, "analytics": {"time","size","memory"},
  "error": "<stack>" | null, "available": bool | n}`` — a slice result, re-sent after a
  reconnect until acknowledged; ``available`` (true = 1) asks for more slices in the same frame;
- ``{"type": "results", "results": [{"slice_id", "records", "analytics", "error"}, ...],
  "available": n}`` — several results at once (a worker that runs short slices reports them in
  groups, see docs/execution-lifecycle.md "Dispatch");
- ``{"type": "shutdown"}`` — the worker is leaving (after finishing its slice).

Controller -> worker:
- ``{"type": "slice", "slice": {slice_id, slicer_id, slicer_order, request, _created[, retry_count]},
  "recorded": [slice_id, ...]?}`` — a slice, acknowledging the worker's earlier results;
- ``{"type": "slices", "slices": [slice, ...], "recorded": [...]?}`` — several slices for one
  worker at once, to run in order;
- ``{"type": "recorded", "slice_id"}`` — a result was recorded (or was a duplicate), sent alone
  when the result did not ask for more slices;
- ``{"type": "loglevel", "level"}``;
- ``{"type": "shutdown"}`` — the execution is over: finish and exit.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

WORKER_PATH = "/worker"


def encode(message: dict[str, Any]) -> str:
    """Compact JSON text. orjson (a few times faster: every slice is two messages); what it
    refuses (integers beyond 64 bits, non-string keys...) goes through :mod:`json` as before."""
    try:
        return orjson.dumps(message).decode()
    except orjson.JSONEncodeError:
        return json.dumps(message, separators=(",", ":"))


def decode(text: str | bytes) -> dict[str, Any]:
    """The message in ``text``; ValueError when it is not JSON or not a typed object."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = json.loads(text)  # what orjson refuses and json reads (NaN...), or json's error
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError("a message must be a JSON object with a string 'type'")
    return value

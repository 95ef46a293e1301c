"""The controller/worker message codec (orjson, with :mod:`json` for what orjson refuses) and
the fast ``utc_now`` and slice ids (issue 13: they run for every slice) give what the standard
library gave."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime

import pytest

from teraslice_k8s.runtime.protocol import decode, encode
from teraslice_k8s.runtime.slices import new_slice_id
from teraslice_k8s.store.timestamps import format_timestamp, utc_now

MESSAGES = [
    {"type": "available"},
    {
        "type": "slice",
        "slice": {
            "slice_id": "9f0c",
            "slicer_id": 0,
            "slicer_order": 12,
            "request": {"count": 1, "processed": 11, "query": "dé\u00e9 ✓", "nested": [1.5, None, True]},
            "_created": "2026-11-27T10:00:00.000Z",
        },
        "recorded": ["a", "b"],
    },
    {
        "type": "complete",
        "slice_id": "9f0c",
        "records": 1,
        "analytics": {"time": [0, 1], "size": [1, 1], "memory": [0, 4096]},
        "error": "Traceback...\nValueError: x",
        "available": True,
    },
    {"type": "slice", "slice": {"request": {"big": 2**70, "neg": -(2**65)}}},  # beyond orjson
    {"type": "available", "count": 32},
    {"type": "slices", "slices": [{"slice_id": "a", "request": {}}, {"slice_id": "b", "request": {}}]},
    {
        "type": "results",
        "results": [{"slice_id": "a", "records": 1, "analytics": None, "error": None}],
        "available": 2,
    },
]


@pytest.mark.parametrize("message", MESSAGES)
def test_messages_round_trip_and_read_as_json_reads_them(message: dict[str, object]) -> None:
    text = encode(message)
    assert isinstance(text, str)
    assert json.loads(text) == message
    assert decode(text) == message
    assert decode(text.encode()) == message
    assert decode(json.dumps(message)) == message  # what an older peer sends


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"type": 3}', "{}", '{"type": "x"'])
def test_bad_messages_are_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        decode(text)


def test_json_that_only_the_standard_library_reads_still_decodes() -> None:
    assert decode('{"type": "complete", "x": NaN}')["type"] == "complete"


def test_utc_now_is_the_formatted_current_time() -> None:
    for _ in range(2000):  # crosses millisecond (and likely second) boundaries
        before = format_timestamp(datetime.now(UTC))
        now = utc_now()
        after = format_timestamp(datetime.now(UTC))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", now)
        assert before <= now <= after


def test_slice_ids_are_distinct_random_uuids_across_draws() -> None:
    ids = [new_slice_id() for _ in range(3 * 256 + 7)]  # more than one draw of random bytes
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)

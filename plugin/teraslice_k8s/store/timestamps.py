"""Record timestamps: ISO-8601 UTC with milliseconds and a ``Z`` (Teraslice's ``new Date()`` JSON).

Strings in this one format sort chronologically as plain text, which is what both stores rely on
to index and order ``_created``/``_updated`` without parsing them.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


def format_timestamp(moment: datetime) -> str:
    """``2024-05-01T12:00:00.123Z`` for an aware datetime (converted to UTC, truncated to ms)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(value: object) -> datetime | None:
    """The aware datetime of a record timestamp (any ISO-8601 text, ``Z`` included); None for
    anything else (a missing or unreadable ``_updated`` is not an error to the caller)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


#: (second since the epoch, its "YYYY-MM-DDTHH:MM:SS." text): ``utc_now`` formats a second once.
_second_text: tuple[int, str] = (-1, "")


def utc_now() -> str:
    """The current time as a record timestamp (what ``format_timestamp(datetime.now(UTC))``
    gives; the controller stamps every slice change with it, so the date part is formatted once
    per second instead of by ``strftime`` per call)."""
    global _second_text  # noqa: PLW0603 - a one-entry cache; replacing a tuple is atomic
    second, ms = divmod(time.time_ns() // 1_000_000, 1000)
    cached = _second_text
    if cached[0] != second:
        cached = _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
    return f"{cached[1]}{ms:03d}Z"


class StoreClock:
    """Strictly increasing job and execution timestamps of one store object.

    Each call returns a time at least one millisecond after the previous one (or the wall
    clock, when that is later). Two executions of a job created within the same millisecond
    would otherwise tie and "the latest execution" would be ambiguous; likewise the default
    ``_updated:desc`` order follows the order of the writes. Jobs and executions are written a
    few times per execution, so the clock never runs meaningfully ahead. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = datetime.min.replace(tzinfo=UTC)

    def next(self) -> str:
        with self._lock:
            now = datetime.now(UTC)
            now = now.replace(microsecond=now.microsecond // 1000 * 1000)
            if now <= self._last:
                now = self._last + timedelta(milliseconds=1)
            self._last = now
            return format_timestamp(now)

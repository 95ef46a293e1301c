"""Teraslice durations: integer milliseconds or ``"<n> <unit>"`` strings."""

from __future__ import annotations

import re
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_UNIT_MS = {
    **dict.fromkeys(("", "ms", "millisecond", "milliseconds"), 1),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1000),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60_000),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3_600_000),
    **dict.fromkeys(("d", "day", "days"), 86_400_000),
}


def duration_ms(value: Any) -> int:
    """``300000`` -> 300000, ``"5 minutes"`` -> 300000, ``"30s"`` -> 30000; else ValueError."""
    if isinstance(value, bool):
        raise ValueError("must be a duration (ms or '<n> <unit>')")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("must not be negative")
        return int(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and match.group(2).lower() in _UNIT_MS:
            return int(float(match.group(1)) * _UNIT_MS[match.group(2).lower()])
    raise ValueError(f"invalid duration {value!r} (ms or '<n> <unit>')")

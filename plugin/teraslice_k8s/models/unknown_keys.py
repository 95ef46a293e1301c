"""Keys no schema declares, and the known name each most likely misspells.

Teraslice keeps a key its schemas do not declare and ignores it; so do we, but we say so.
An :class:`UnknownKey` is reported as a warning on the accepted job (``kind: unknownKey``,
with the closest known name as a hint), or as a problem when the job is validated strictly.
:func:`unknown_job_keys` finds the job's own unknown top-level keys; the runtime finds those
of operations and APIs against their option schemas (an :data:`OptionKeys` function), using
:class:`UnknownKey` and :func:`closest` for the same wording.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from teraslice_k8s.errors import Problem


@dataclass(frozen=True, slots=True)
class UnknownKey:
    """A key no schema declares: kept (as Teraslice keeps it), reported as a warning, or as
    a problem in strict mode. ``owner`` is ``"job"`` or the operation's name."""

    path: str
    key: str
    owner: str
    suggestion: str | None

    @property
    def what(self) -> str:
        return "a job property" if self.owner == "job" else f"an option of {self.owner}"

    @property
    def hint(self) -> str:
        return f' (did you mean "{self.suggestion}"?)' if self.suggestion else ""

    def problem(self) -> Problem:
        return Problem(self.path, f"is not {self.what}{self.hint}")

    def warning(self) -> dict[str, Any]:
        description = f'"{self.path}" is not {self.what}; it is kept but has no effect{self.hint}'
        if self.owner == "job":
            reason: dict[str, Any] = {"type": "jobProperty"}
        else:
            reason = {"type": "assetOperation", "_op": self.owner}
        reason.update(kind="unknownKey", reason={"field": self.path, "description": description})
        return {"type": "JobValidation", "reason": reason}


def closest(key: str, known: Sequence[str]) -> str | None:
    """The known name ``key`` most likely misspells (difflib), if any is close enough."""
    found = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return found[0] if found else None


#: Finds the unknown keys of ``operations`` and ``apis`` (the runtime's operation schemas).
OptionKeys = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], list[UnknownKey]]


def unknown_job_keys(
    raw: Mapping[str, Any], known: Collection[str], ignored: Collection[str]
) -> list[UnknownKey]:
    """Top-level keys of ``raw`` (strings only, in posted order) that are neither ``known``
    (the job schema's fields) nor ``ignored`` (keys the master sets or replaces)."""
    return [
        UnknownKey(key, key, "job", closest(key, list(known)))
        for key in raw
        if isinstance(key, str) and key not in known and key not in ignored
    ]

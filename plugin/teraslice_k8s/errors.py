"""Errors every layer shares: user-input problems that name the field and the rule.

Bad input (a job, a config file, an API query) is reported as a :class:`ValidationError`
holding one :class:`Problem` per failed rule, each with the dotted/indexed path of the
field (``targets[1].constraint``). Callers render them (CLI: stderr, exit 2; API: the
Teraslice error body with a 4xx) and store or create nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: ``path`` is the field (``""`` for the whole document)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


def join_path(parent: str, child: str | int) -> str:
    """Append a key or list index to a field path (``a`` + ``0`` -> ``a[0]``)."""
    if isinstance(child, int):
        return f"{parent}[{child}]"
    return f"{parent}.{child}" if parent else child


class TerasliceError(Exception):
    """Base class of the package's own errors."""


class ValidationError(TerasliceError, ValueError):
    """Input was rejected; ``problems`` lists every broken rule, in document order."""

    def __init__(self, problems: Iterable[Problem], *, subject: str = "input") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.subject = subject
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return "; ".join(str(p) for p in self.problems) or f"invalid {self.subject}"

    @property
    def lines(self) -> Sequence[str]:
        return [str(p) for p in self.problems]

"""Validation of list parameters shared by every store: ``size``/``from`` paging and ``sort``.

Teraslice passes ``sort`` verbatim to Elasticsearch's URI ``sort`` parameter
(``"_updated:desc"``, ``"name,_created:asc"``); both stores accept exactly that syntax for
top-level fields and reject anything else with a :class:`ValidationError` naming the parameter,
instead of Teraslice's 500. Also: how both stores split a list of ids into ``IN``/``terms`` queries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.store.base import Page

#: Ids per ``IN (...)``/``terms`` query, well under SQLite's bound-parameter limit.
ID_CHUNK = 500

#: Elasticsearch's default ``index.max_result_window``: ``from + size`` may not exceed it.
MAX_RESULT_WINDOW = 10_000

_FIELD = re.compile(r"[A-Za-z_@][A-Za-z0-9_@\-]*")
_KEY = re.compile(r"(?P<field>[^:]+)(?::(?P<order>[^:]*))?")


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ``field:order`` term; ``descending`` is False for ``asc`` (the default)."""

    field: str
    descending: bool


def parse_sort(sort: str) -> tuple[SortKey, ...]:
    """Parse ``"<field>[:asc|desc],..."``; raise ValidationError(``sort``) on anything else."""
    keys: list[SortKey] = []
    for term in sort.split(","):
        match = _KEY.fullmatch(term.strip())
        field = match.group("field") if match else ""
        order = (match.group("order") if match else None) or "asc"
        if not match or not _FIELD.fullmatch(field) or order.lower() not in ("asc", "desc"):
            raise ValidationError(
                [
                    Problem(
                        "sort",
                        f'invalid sort "{sort}": expected <field>:asc or <field>:desc, '
                        "separated by commas, for top-level fields",
                    )
                ],
                subject="sort",
            )
        keys.append(SortKey(field, order.lower() == "desc"))
    return tuple(keys)


def check_page(page: Page) -> tuple[SortKey, ...]:
    """Validate ``size``/``from_`` (Elasticsearch's result window) and return the parsed sort."""
    problems: list[Problem] = []
    size_ok = isinstance(page.size, int) and not isinstance(page.size, bool)
    size_ok = size_ok and 0 <= page.size <= MAX_RESULT_WINDOW
    from_ok = isinstance(page.from_, int) and not isinstance(page.from_, bool)
    if not size_ok:
        problems.append(Problem("size", f"must be an integer from 0 to {MAX_RESULT_WINDOW}"))
    if not from_ok or page.from_ < 0:
        problems.append(Problem("from", "must be a non-negative integer"))
    elif size_ok and page.from_ + page.size > MAX_RESULT_WINDOW:
        problems.append(Problem("from", f"from + size must not exceed {MAX_RESULT_WINDOW}"))
    try:
        keys = parse_sort(page.sort)
    except ValidationError as error:
        problems.extend(error.problems)
        keys = ()
    if problems:
        raise ValidationError(problems, subject="list parameters")
    return keys


def id_chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    """``ids`` without repeats (in first-seen order), in lists of at most :data:`ID_CHUNK`."""
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), ID_CHUNK):
        yield unique[start : start + ID_CHUNK]

"""Job-time checks of a job's ``operations`` and ``apis`` (what the master calls at submit).

:func:`validate_operations` is passed to ``teraslice_k8s.models.job.validate_job`` as its
``op_validator``; it returns one :class:`Problem` per broken rule, each naming the field,
e.g. ``operations[1]._op: unknown operation "foo"`` or
``operations[0].size: must be > 0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from teraslice_k8s.errors import Problem, join_path
from teraslice_k8s.models.schema import problems_from_pydantic
from teraslice_k8s.runtime.operations.base import (
    Operation,
    OpOptions,
    Processor,
    Reader,
    merged_op_config,
)
from teraslice_k8s.runtime.operations.registry import (
    OperationLoadError,
    OperationNotFound,
    get_operation,
)


def options_problems(base: str, exc: pydantic.ValidationError) -> list[Problem]:
    """Pydantic errors as problems under ``base`` (``operations[0]`` + ``.size``), worded like
    every other job field (``must be an integer``), one per field."""
    return problems_from_pydantic(exc, base)


def parse_options(cls: type[Operation], config: Mapping[str, Any]) -> OpOptions:
    """Parse an op config (API keys already merged) with the class's Options model."""
    return cls.Options.model_validate(dict(config))


def validate_operations(
    operations: Sequence[Any], apis: Sequence[Any] | None = None, job: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Check every op config: known ``_op``, reader first, processors after, valid options.

    ``job`` (optional) is the whole job, for ops whose rules depend on it (``lifecycle``).
    """
    problems: list[Problem] = []
    api_list = [a for a in (apis or []) if isinstance(a, Mapping)]
    api_names = {a.get("_name") for a in api_list}
    whole_job: Mapping[str, Any] = job or {"operations": operations, "apis": api_list}
    for index, op in enumerate(operations):
        base = join_path("operations", index)
        if not isinstance(op, Mapping):
            problems.append(Problem(base, "must be an object"))
            continue
        name = op.get("_op")
        if not isinstance(name, str) or not name:
            problems.append(Problem(join_path(base, "_op"), "is required (a non-empty string)"))
            continue
        try:
            cls = get_operation(name)
        except OperationNotFound as exc:
            problems.append(Problem(join_path(base, "_op"), str(exc)))
            continue
        except OperationLoadError as exc:
            problems.append(Problem(join_path(base, "_op"), str(exc)))
            continue
        if index == 0 and not issubclass(cls, Reader):
            problems.append(Problem(join_path(base, "_op"), f'"{name}" is not a reader'))
            continue
        if index > 0 and not issubclass(cls, Processor):
            problems.append(Problem(join_path(base, "_op"), f'"{name}" is not a processor'))
            continue
        api_name = op.get("_api_name")
        if api_name is not None and api_name not in api_names:
            problems.append(
                Problem(join_path(base, "_api_name"), f"Could not find the associated api for {api_name}")
            )
            continue
        try:
            options = parse_options(cls, merged_op_config(op, api_list))
        except pydantic.ValidationError as exc:
            problems.extend(options_problems(base, exc))
            continue
        problems.extend(Problem(base, msg) for msg in cls.validate_job(options, index, whole_job))
    return problems

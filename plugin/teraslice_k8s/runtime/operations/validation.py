"""Job-time checks of a job's ``operations`` and ``apis`` (what the master calls at submit).

:func:`validate_operations` is passed to ``teraslice_k8s.models.job.validate_job`` as its
``op_validator``; it returns one :class:`Problem` per broken rule, each naming the field,
e.g. ``operations[1]._op: unknown operation "foo"`` or
``operations[0].size: must be > 0``. Rules:

- ``_op`` names a known operation that declares its options schema
  (:func:`~teraslice_k8s.runtime.operations.base.declared_options`); ``op@asset`` must name one
  of the job's assets or an asset the built-ins stand in for (:data:`BUILT_IN_ASSETS`);
- the reader comes first, processors after;
- options (the op's keys over those of the API its ``_api_name`` names) match the schema; a
  wrong value that comes from the API is reported at ``apis[j].<option>``;
- ``_dead_letter_action`` (ops and APIs) is ``throw``, ``log``, ``none`` or the ``_name`` of an
  API of the job.

:func:`unknown_option_keys` lists the keys no schema declares (kept, reported as warnings).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from teraslice_k8s.errors import Problem, join_path
from teraslice_k8s.models.schema import problems_from_pydantic
from teraslice_k8s.runtime.operations.asset_ops import asset_operation
from teraslice_k8s.runtime.operations.base import (
    Operation,
    OpOptions,
    OptionsNotDeclared,
    Processor,
    Reader,
    declared_options,
    merged_op_config,
)
from teraslice_k8s.runtime.operations.registry import (
    OperationLoadError,
    OperationNotFound,
    get_operation,
)

#: Teraslice asset names whose operations are built in here (``data_generator@standard``).
BUILT_IN_ASSETS = ("standard", "elasticsearch")
#: ``_dead_letter_action`` values other than an API's ``_name``.
DEAD_LETTER_ACTIONS = ("throw", "log", "none")


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
    for api_index, api in enumerate(api_list):
        problems.extend(_dead_letter_problems(join_path("apis", api_index), api, api_names))
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
        asset_problem = _asset_suffix_problem(name)
        try:
            declared_options(cls)
        except OptionsNotDeclared as exc:
            asset_problem = asset_problem or str(exc)
        if asset_problem:
            problems.append(Problem(join_path(base, "_op"), asset_problem))
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
        problems.extend(_dead_letter_problems(base, op, api_names))
        try:
            options = parse_options(cls, merged_op_config(op, api_list))
        except pydantic.ValidationError as exc:
            problems.extend(_at_source(options_problems(base, exc), base, op, api_list))
            continue
        problems.extend(Problem(base, msg) for msg in cls.validate_job(options, index, whole_job))
    return problems


def _asset_suffix_problem(name: str) -> str | None:
    """``op@asset`` resolved to an installed operation: the asset must be one the built-ins
    stand in for; otherwise the job names an asset it does not have."""
    op, _, ref = name.partition("@")
    if not ref or asset_operation(name) is not None:
        return None
    if ref.partition(":")[0] in BUILT_IN_ASSETS:
        return None
    built_in = ", ".join(BUILT_IN_ASSETS)
    return f'no asset "{ref}" with operation "{op}" (not in the job\'s assets; built in: {built_in})'


def _dead_letter_problems(base: str, config: Mapping[str, Any], api_names: set[Any]) -> list[Problem]:
    action = config.get("_dead_letter_action")
    if action is None or action in DEAD_LETTER_ACTIONS or action in api_names:
        return []
    path = join_path(base, "_dead_letter_action")
    if not isinstance(action, str) or not action:
        return [Problem(path, "must be throw, log, none or the _name of an API")]
    return [Problem(path, f'must be throw, log, none or the _name of an API (no API named "{action}")')]


def _at_source(
    problems: list[Problem], base: str, op: Mapping[str, Any], apis: Sequence[Mapping[str, Any]]
) -> list[Problem]:
    """Option problems of keys the op took from its API point at the API's key instead."""
    api_name = op.get("_api_name")
    api_index = next((i for i, a in enumerate(apis) if api_name and a.get("_name") == api_name), None)
    if api_index is None:
        return problems
    moved = []
    for problem in problems:
        key = problem.path[len(base) + 1 :].split(".", 1)[0].split("[", 1)[0]
        if problem.path.startswith(base + ".") and key not in op and key in apis[api_index]:
            path = join_path("apis", api_index) + problem.path[len(base) :]
            moved.append(Problem(path, problem.message))
        else:
            moved.append(problem)
    return moved

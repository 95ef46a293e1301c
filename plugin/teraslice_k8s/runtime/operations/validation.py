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
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.models.job import ValidatedJob, validate_job
from teraslice_k8s.models.schema import problems_from_pydantic
from teraslice_k8s.models.unknown_keys import UnknownKey, closest
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
    operations: Sequence[Any],
    apis: Sequence[Any] | None = None,
    job: Mapping[str, Any] | None = None,
    connectors: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Problem]:
    """Check every op config: known ``_op``, reader first, processors after, valid options.

    ``job`` (optional) is the whole job, for ops whose rules depend on it (``lifecycle``).
    ``connectors`` (terafoundation's ``{type: {name: config}}``, optional): an op that uses a
    connector must find the one its ``_connection`` names (``default`` when unset).
    """
    problems: list[Problem] = []
    api_list = [a for a in (apis or []) if isinstance(a, Mapping)]
    # only strings: a posted name may be any JSON value (unhashable lists and objects too)
    api_names = {name for a in api_list if isinstance(name := a.get("_name"), str)}
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
        if api_name is not None and not (isinstance(api_name, str) and api_name in api_names):
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
        if connectors is not None and cls.connector_types:
            problems.extend(_connector_problems(base, name, options, cls.connector_types, connectors))
        problems.extend(Problem(base, msg) for msg in cls.validate_job(options, index, whole_job))
    return problems


def _connector_problems(
    base: str,
    op: str,
    options: OpOptions,
    kinds: Sequence[str],
    connectors: Mapping[str, Mapping[str, Any]],
) -> list[Problem]:
    connection = options.connection
    if any(connection in (connectors.get(kind) or {}) for kind in kinds):
        return []
    explicit = "connection" in options.model_fields_set
    if explicit and not any(connection in conns for conns in connectors.values()):
        return []  # an unknown explicit name: the job model already reports it where it is set
    types = " or ".join(kinds)
    return [
        Problem(
            join_path(base, "_connection"),
            f'{op.partition("@")[0]} needs the terafoundation connector "{connection}" of type {types}, '
            "which this cluster does not configure (terafoundation.connectors)",
        )
    ]


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


def _dead_letter_problems(base: str, config: Mapping[str, Any], api_names: set[str]) -> list[Problem]:
    action = config.get("_dead_letter_action")
    if action is None or (isinstance(action, str) and (action in DEAD_LETTER_ACTIONS or action in api_names)):
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


#: Keys every ``apis`` entry may carry besides the options of the operations naming it.
API_COMMON_KEYS = ("_name", "_encoding", "_dead_letter_action", "_connection")


def _option_names(options: type[OpOptions]) -> set[str]:
    names: set[str] = set()
    for name, info in options.model_fields.items():
        names.add(info.alias or name)
    return names


def unknown_option_keys(operations: Sequence[Any], apis: Sequence[Any] | None = None) -> list[UnknownKey]:
    """Keys of operations (and of the APIs they name) that their schema does not declare.

    Operations that cannot be looked up, or declare no schema, are skipped (validation
    reports them). An API's key is unknown when no operation naming the API declares it.
    """
    unknown: list[UnknownKey] = []
    api_list = [a for a in (apis or []) if isinstance(a, Mapping)]
    api_known: dict[int, set[str]] = {}
    api_owner: dict[int, str] = {}
    for index, op in enumerate(operations):
        name = op.get("_op") if isinstance(op, Mapping) else None
        if not isinstance(name, str) or not name:
            continue
        try:
            names = _option_names(declared_options(get_operation(name)))
        except (OperationNotFound, OperationLoadError, OptionsNotDeclared):
            continue
        owner = name.partition("@")[0]
        base = join_path("operations", index)
        unknown.extend(
            UnknownKey(join_path(base, key), key, owner, closest(key, sorted(names)))
            for key in op
            if isinstance(key, str) and key not in names
        )
        api_name = op.get("_api_name")
        for api_index, api in enumerate(api_list):
            if api_name and api.get("_name") == api_name:
                api_known.setdefault(api_index, set(API_COMMON_KEYS)).update(names)
                api_owner.setdefault(api_index, owner)
    for api_index, names in api_known.items():
        base = join_path("apis", api_index)
        unknown.extend(
            UnknownKey(join_path(base, key), key, api_owner[api_index], closest(key, sorted(names)))
            for key in api_list[api_index]
            if isinstance(key, str) and key not in names
        )
    return unknown


def validate_job_spec(raw: Any, config: SysConfig, *, strict: bool = False) -> ValidatedJob:
    """The whole job check every caller uses (master, ``run``, ``render``): the job schema,
    the operations and APIs (:func:`validate_operations`) and unknown keys (warnings, or
    problems when ``strict``)."""
    connectors = config.terafoundation.connectors

    def op_validator(operations: Sequence[Any], apis: Sequence[Any]) -> list[Problem]:
        return validate_operations(operations, apis, connectors=connectors)

    return validate_job(
        raw,
        config,
        op_validator=op_validator,
        option_keys=unknown_option_keys,
        strict=strict,
    )

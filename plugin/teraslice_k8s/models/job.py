"""The Teraslice job definition: validation, defaults and deprecation warnings.

:func:`validate_job` checks a posted job against Teraslice 3.18's job schema (plus the
Kubernetes job properties when the cluster runs on Kubernetes), collects *every* problem as
``<field path>: <rule>`` and raises :class:`~teraslice_k8s.errors.ValidationError`, or
returns a :class:`ValidatedJob` whose ``config`` is the posted job overlaid with defaults:
posted keys first (unknown keys kept verbatim), then the defaults the job did not set.

Values are kept as posted except where Teraslice normalises them: durations
(``probation_window``) become milliseconds, and ``labels`` values that are numbers or
booleans become strings (``1`` -> ``"1"``, ``true`` -> ``"true"``), so every label can be
applied; other value types are refused. Where Teraslice lets a job through that Kubernetes
would then reject, we refuse it up front (docs/compatibility.md): target keys/values,
volume names and paths, external port names and numbers (the field rules, in
:mod:`~teraslice_k8s.models.job_fields`), env var names. Keys no schema declares are kept and
reported (:mod:`~teraslice_k8s.models.unknown_keys`).

:func:`apply_prom_metrics_port` is the submit-time Prometheus rule (adds the ``metrics``
port to ``external_ports``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field
from pydantic import ValidationError as PydanticValidationError

from teraslice_k8s.errors import Problem, ValidationError, join_path
from teraslice_k8s.models.config import EnvName, SysConfig
from teraslice_k8s.models.job_fields import (
    SLICER_PORT,
    ApiConfig,
    EnvValue,
    ExternalPortEntry,
    JobTarget,
    JobVolume,
    LabelKey,
    LabelValue,
    NonNegative,
    Operation,
    StrictModel,
)
from teraslice_k8s.models.pod_override import override_problems
from teraslice_k8s.models.schema import Duration, problems_from_pydantic
from teraslice_k8s.models.unknown_keys import OptionKeys, unknown_job_keys

OVERRIDES_DISABLED_MESSAGE = (
    "The Teraslice master must set 'kubernetes_overrides_enabled: true' to use pod_spec_override in a job."
)
MIXED_RESOURCES_MESSAGE = "cpu/memory can't be mixed with resource settings of the same type."
#: A job's ``env_vars`` may not replace a variable the cluster takes from a Secret.
SECRET_ENV_TAKEN_MESSAGE = (
    "is taken from a Secret by the cluster (teraslice.kubernetes_env_secret_refs) and cannot be set by a job"
)

OpValidator = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], list[Problem]]
#: Keys the master sets on every job record: a posted value is replaced (and reported).
MASTER_SET_KEYS = ("_context", "_created", "_updated")
#: Top-level keys that are not job properties yet never reported as unknown.
IGNORED_KEYS = frozenset({*MASTER_SET_KEYS, "job_id"})


class JobModel(StrictModel):
    """Teraslice's job schema for every cluster type (api-and-runtime.md §2.1)."""

    name: Annotated[str, Field(min_length=1)] = "Custom Job"
    lifecycle: Literal["once", "persistent"] = "once"
    workers: Annotated[int, Field(ge=1)] = Field(default_factory=lambda: min(os.cpu_count() or 1, 5))
    slicers: Annotated[int, Field(ge=1)] = 1
    max_retries: Annotated[int, Field(ge=0)] = 3
    probation_window: Duration = 300_000
    analytics: bool = True
    active: bool = True
    assets: list[str] | None = None
    autorecover: bool = False
    operations: list[Operation] = []
    apis: list[ApiConfig] = []
    env_vars: dict[EnvName, EnvValue] = {}
    log_level: Literal["trace", "debug", "info", "warn", "error", "fatal"] | None = None
    stateful: bool = False
    labels: dict[LabelKey, LabelValue] | None = None


class KubernetesJobModel(JobModel):
    """Plus the Kubernetes job properties (api-and-runtime.md §2.2, the seed)."""

    targets: list[JobTarget] = []
    cpu: NonNegative | None = None
    memory: NonNegative | None = None
    cpu_execution_controller: NonNegative | None = None
    memory_execution_controller: NonNegative | None = None
    resources_requests_cpu: NonNegative | None = None
    resources_limits_cpu: NonNegative | None = None
    resources_requests_memory: NonNegative | None = None
    resources_limits_memory: NonNegative | None = None
    ephemeral_storage: bool = False
    external_ports: list[ExternalPortEntry] | None = None
    pod_spec_override: dict[str, Any] = {}
    volumes: list[JobVolume] = []
    kubernetes_image: Annotated[str, Field(min_length=1)] | None = None
    prom_metrics_enabled: bool | None = None
    prom_metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    prom_metrics_add_default: bool | None = None
    relocatable: bool | None = None


def _defaults(kubernetes: bool) -> dict[str, Any]:
    """Teraslice's defaults, in schema order (``workers``: min(CPU count, 5))."""
    values: dict[str, Any] = {
        "name": "Custom Job",
        "lifecycle": "once",
        "workers": min(os.cpu_count() or 1, 5),
        "slicers": 1,
        "max_retries": 3,
        "probation_window": 300_000,
        "analytics": True,
        "active": True,
        "assets": None,
        "autorecover": False,
        "operations": [],
        "apis": [],
        "env_vars": {},
        "log_level": None,
        "stateful": False,
        "labels": None,
    }
    if kubernetes:
        values.update(targets=[], ephemeral_storage=False, pod_spec_override={}, volumes=[])
    return values


@dataclass(frozen=True, slots=True)
class ValidatedJob:
    """A job that passed validation: the defaulted ``config`` and deprecation ``warnings``."""

    config: dict[str, Any]
    warnings: list[dict[str, Any]] = field(default_factory=list)


def _deprecation(name: str, replacement: str) -> dict[str, Any]:
    return {
        "type": "JobValidation",
        "reason": {
            "type": "jobProperty",
            "kind": "deprecation",
            "reason": {
                "field": name,
                "description": f'"{name}" on a job is deprecated and should use "{replacement}" instead',
            },
        },
    }


def _cross_field_problems(job: Mapping[str, Any], config: SysConfig) -> list[Problem]:
    """Rules spanning several fields; run on the raw job, skipping values of the wrong type."""
    problems: list[Problem] = []
    for kind in ("cpu", "memory"):
        news = (f"resources_requests_{kind}", f"resources_limits_{kind}")
        if job.get(kind) is not None and any(job.get(name) is not None for name in news):
            problems.append(Problem(kind, MIXED_RESOURCES_MESSAGE))
        request, limit = (job.get(name) for name in news)
        if (
            all(isinstance(v, int | float) and not isinstance(v, bool) for v in (request, limit))
            and limit
            and request > limit
        ):
            problems.append(Problem(news[0], f"must not be greater than {news[1]}"))
    override = job.get("pod_spec_override")
    if isinstance(override, Mapping) and override and not config.teraslice.kubernetes_overrides_enabled:
        problems.append(Problem("pod_spec_override", OVERRIDES_DISABLED_MESSAGE))
    elif isinstance(override, Mapping):
        problems.extend(override_problems(override))
    env_vars = job.get("env_vars")
    if isinstance(env_vars, Mapping):
        secrets = config.teraslice.kubernetes_env_secret_refs
        problems.extend(
            Problem(join_path("env_vars", name), SECRET_ENV_TAKEN_MESSAGE)
            for name in env_vars
            if name in secrets
        )
    problems.extend(_duplicate_problems(job))
    return problems


def _connection_problems(job: Mapping[str, Any], config: SysConfig) -> list[Problem]:
    """Teraslice's rule: an op's or API's ``_connection`` names a terafoundation connector
    (of any type); otherwise the job would be accepted and fail at its first slice."""
    known = {name for conns in config.terafoundation.connectors.values() for name in conns}
    problems: list[Problem] = []
    for list_key in ("apis", "operations"):
        items = job.get(list_key)
        for index, item in enumerate(items if isinstance(items, list) else []):
            name = item.get("_connection") if isinstance(item, Mapping) else None
            if isinstance(name, str) and name and name not in known:
                path = join_path(join_path(list_key, index), "_connection")
                problems.append(Problem(path, f'no terafoundation connector named "{name}"'))
    return problems


def _duplicate_problems(job: Mapping[str, Any]) -> list[Problem]:
    """Uniqueness rules, and the operations count (a reader and at least one processor)."""
    problems: list[Problem] = []
    operations = job.get("operations", [])
    if isinstance(operations, list) and len(operations) < 2:
        problems.append(Problem("operations", "must have at least 2 items (a reader and a processor)"))
    checks = (("volumes", "name"), ("volumes", "path"), ("apis", "_name"))
    for list_key, item_key in checks:
        items = job.get(list_key)
        seen: set[Any] = set()
        for index, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(item_key) if isinstance(item, Mapping) else None
            if not isinstance(value, str):
                continue
            if value in seen:
                path = join_path(join_path(list_key, index), item_key)
                problems.append(Problem(path, f'duplicate value "{value}"'))
            seen.add(value)
    ports = job.get("external_ports")
    seen_ports: set[Any] = set()
    for index, entry in enumerate(ports if isinstance(ports, list) else []):
        port = entry.get("port") if isinstance(entry, Mapping) else entry
        if type(port) is not int:  # the schema reports other types; a list is not even hashable
            continue
        if port != SLICER_PORT and port in seen_ports:
            problems.append(Problem(join_path("external_ports", index), f"duplicate port {port}"))
        seen_ports.add(port)
    return problems


def _master_set_warning(key: str) -> dict[str, Any]:
    description = f'"{key}" is set by the master; the posted value is replaced'
    reason = {"type": "jobProperty", "kind": "ignored", "reason": {"field": key, "description": description}}
    return {"type": "JobValidation", "reason": reason}


def validate_job(
    raw: Mapping[str, Any],
    config: SysConfig,
    *,
    op_validator: OpValidator | None = None,
    option_keys: OptionKeys | None = None,
    strict: bool = False,
) -> ValidatedJob:
    """Validate ``raw`` against the job schema for ``config``'s cluster type.

    ``op_validator(operations, apis)`` (the runtime's operation registry) is called when
    both lists are well-formed; its problems are reported with the schema's. Keys no schema
    declares (top level, and through ``option_keys`` those of operations and APIs) are kept
    and returned as warnings (``kind: unknownKey``, with the closest known name), or are
    problems when ``strict``; posted ``_context``/``_created``/``_updated`` are reported as
    replaced. Raises :class:`ValidationError` listing every problem; never mutates ``raw``.
    """
    if not isinstance(raw, Mapping):
        raise ValidationError([Problem("", "a job must be a JSON object")], subject="job")
    kubernetes = config.teraslice.is_kubernetes
    model_class = KubernetesJobModel if kubernetes else JobModel
    problems: list[Problem] = []
    model: JobModel | None = None
    try:
        model = model_class.model_validate(raw)
    except PydanticValidationError as exc:
        problems.extend(problems_from_pydantic(exc))
    if kubernetes:
        problems.extend(_cross_field_problems(raw, config))
    else:
        problems.extend(
            _duplicate_problems({"apis": raw.get("apis"), "operations": raw.get("operations", [])})
        )
    operations, apis = raw.get("operations", []), raw.get("apis", [])
    problems.extend(_connection_problems({"apis": apis, "operations": operations}, config))
    lists_ok = _list_of_mappings(operations) and _list_of_mappings(apis)
    if op_validator is not None and lists_ok:
        # One problem per field: the schema may already have named it (a missing ``_op``).
        reported = {problem.path for problem in problems}
        problems.extend(p for p in op_validator(operations, apis) if p.path not in reported)
    unknown = unknown_job_keys(raw, model_class.model_fields, IGNORED_KEYS)
    if option_keys is not None and lists_ok:
        unknown += option_keys(operations, apis)
    if strict:
        problems.extend(key.problem() for key in unknown)
    if problems:
        raise ValidationError(_ordered(problems, raw), subject="job")
    assert model is not None
    job = dict(raw)
    if "probation_window" in job:
        job["probation_window"] = model.probation_window
    if job.get("labels") is not None:
        job["labels"] = dict(model.labels or {})
    for key, value in _defaults(kubernetes).items():
        job.setdefault(key, value)
    warnings = [
        _deprecation(name, f"resources_requests_{name}")
        for name in ("cpu", "memory")
        if kubernetes and raw.get(name) is not None
    ]
    warnings += [key.warning() for key in unknown]
    warnings += [_master_set_warning(key) for key in MASTER_SET_KEYS if key in raw]
    return ValidatedJob(config=job, warnings=warnings)


def _list_of_mappings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value)


def _ordered(problems: list[Problem], raw: Mapping[str, Any]) -> list[Problem]:
    """Document order: by the posted position of each problem's top-level key, then path."""
    position = {key: index for index, key in enumerate(raw)}

    def sort_key(problem: Problem) -> tuple[int, str]:
        top = problem.path.split(".", 1)[0].split("[", 1)[0]
        return position.get(top, len(position)), problem.path

    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=sort_key)


def apply_prom_metrics_port(job: Mapping[str, Any], config: SysConfig) -> dict[str, Any]:
    """Teraslice's submit-time rule (``addExternalPortsToJobSpec``); returns a new dict.

    If the job enables Prometheus metrics (or leaves it unset and terafoundation enables
    them), ``{"name": "metrics", "port": <job or terafoundation port>}`` is appended to
    ``external_ports`` unless an entry already uses that port.
    """
    result = dict(job)
    enabled = job.get("prom_metrics_enabled")
    if enabled is None:
        enabled = config.terafoundation.prom_metrics_enabled
    if enabled is not True:
        return result
    port = job.get("prom_metrics_port") or config.terafoundation.prom_metrics_port
    ports = list(job.get("external_ports") or [])
    used = {entry.get("port") if isinstance(entry, Mapping) else entry for entry in ports}
    if port not in used:
        ports.append({"name": "metrics", "port": port})
    result["external_ports"] = ports
    return result

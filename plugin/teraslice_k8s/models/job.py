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
volume names and paths, external port names and numbers, env var names.

:func:`apply_prom_metrics_port` is the submit-time Prometheus rule (adds the ``metrics``
port to ``external_ports``).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from teraslice_k8s.errors import Problem, ValidationError, join_path
from teraslice_k8s.models.config import EnvName, SysConfig
from teraslice_k8s.models.pod_override import override_problems
from teraslice_k8s.models.schema import (
    Duration,
    Number,
    is_dns_subdomain,
    is_label_value,
    is_port_name,
    is_qualified_name,
    problems_from_pydantic,
)

#: The execution controller's port; jobs may not expose it again.
SLICER_PORT = 45680
#: Volume names and mount paths Teraslice itself puts in every pod.
RESERVED_VOLUME_NAMES = frozenset({"config", "ephemeral-volume"})
RESERVED_MOUNT_PATHS = frozenset({"/app/config", "/ephemeral0"})

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


def _fail(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _label_value(value: Any) -> str:
    # Teraslice calls value.replace() and crashes on non-strings; we stringify scalars the
    # way JavaScript's String() does and refuse the rest.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    if isinstance(value, str):
        if not value:
            raise _fail("label_value", "must not be empty")
        return value
    raise _fail("label_value", "must be a string, number or boolean")


def _no_nul(value: str) -> str:
    # A process environment cannot hold NUL: the pod (or local process) would fail to start.
    if "\x00" in value:
        raise _fail("env_value", "must not contain a NUL character")
    return value


def _non_empty_key(key: str) -> str:
    if not key:
        raise _fail("label_key", "label names must not be empty")
    return key


def _target_key(key: str) -> str:
    if not is_qualified_name(key):
        raise _fail(
            "target_key", 'must be a valid label key (a qualified name such as "zone" or "example.com/zone")'
        )
    return key


def _target_value(value: str) -> str:
    if not value or not is_label_value(value):
        raise _fail(
            "target_value",
            "must be a valid label value (1 to 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)",
        )
    return value


def _claim_name(value: str) -> str:
    if not is_dns_subdomain(value):
        raise _fail(
            "volume_name", "must be a valid PersistentVolumeClaim name (lowercase RFC 1123 subdomain)"
        )
    if value in RESERVED_VOLUME_NAMES:
        raise _fail("volume_name", f'"{value}" is used by Teraslice itself')
    return value


def _mount_path(value: str) -> str:
    if not value.startswith("/"):
        raise _fail("volume_path", "must be an absolute path")
    if value.rstrip("/") in RESERVED_MOUNT_PATHS:
        raise _fail("volume_path", f'"{value}" is used by Teraslice itself')
    return value


def _port_number(value: int) -> int:
    if not 1 <= value <= 65535:
        raise _fail("port", "must be a port number between 1 and 65535")
    if value == SLICER_PORT:
        raise _fail("port", f"{SLICER_PORT} is reserved for the execution controller")
    return value


def _port_name(value: str) -> str:
    if not is_port_name(value):
        raise _fail(
            "port_name",
            "must be a valid port name (at most 15 lowercase letters, digits and '-', with a letter)",
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="allow")


PortNumber = Annotated[int, AfterValidator(_port_number)]


class JobTarget(_Strict):
    key: Annotated[str, AfterValidator(_target_key)]
    value: Annotated[str, AfterValidator(_target_value)]
    constraint: Literal["required", "preferred", "accepted"] = "required"


class JobVolume(_Strict):
    name: Annotated[str, AfterValidator(_claim_name)]
    path: Annotated[str, AfterValidator(_mount_path)]


class ExternalPort(_Strict):
    name: Annotated[str, AfterValidator(_port_name)]
    port: PortNumber


def _external_port_kind(value: Any) -> str | None:
    # Pick the union member up front: one message per entry instead of one per member.
    if isinstance(value, int) and not isinstance(value, bool):
        return "<number>"
    return "<object>" if isinstance(value, Mapping) else None


ExternalPortEntry = Annotated[
    Annotated[PortNumber, Tag("<number>")] | Annotated[ExternalPort, Tag("<object>")],
    Discriminator(
        _external_port_kind,
        custom_error_type="external_port",
        custom_error_message="must be a port number or an object {name, port}",
    ),
]


class Operation(_Strict):
    op: Annotated[str, Field(alias="_op", min_length=1)]


class ApiConfig(_Strict):
    """An ``apis`` entry's common keys (§2.3); its other keys are options of the operations
    naming it in ``_api_name`` and are checked with their schemas."""

    name: Annotated[str, Field(alias="_name", min_length=1)]
    encoding: Literal["json", "raw"] = Field("json", alias="_encoding")
    dead_letter_action: Annotated[str, Field(alias="_dead_letter_action", min_length=1)] = "throw"
    connection: Annotated[str, Field(alias="_connection", min_length=1)] = "default"


NonNegative = Annotated[Number, Field(ge=0)]
LabelValue = Annotated[str, BeforeValidator(_label_value)]


class JobModel(_Strict):
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
    env_vars: dict[EnvName, Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]] = {}
    log_level: Literal["trace", "debug", "info", "warn", "error", "fatal"] | None = None
    stateful: bool = False
    labels: dict[Annotated[str, AfterValidator(_non_empty_key)], LabelValue] | None = None


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


def unknown_job_keys(raw: Mapping[str, Any], kubernetes: bool) -> list[UnknownKey]:
    """Top-level keys of ``raw`` the job schema of the cluster type does not declare."""
    model_class = KubernetesJobModel if kubernetes else JobModel
    known = list(model_class.model_fields)
    ignored = {*MASTER_SET_KEYS, "job_id"}
    return [
        UnknownKey(key, key, "job", closest(key, known))
        for key in raw
        if isinstance(key, str) and key not in model_class.model_fields and key not in ignored
    ]


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
    unknown = unknown_job_keys(raw, kubernetes)
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

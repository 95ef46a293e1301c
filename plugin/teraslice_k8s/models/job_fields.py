"""The job's field rules: value validators and the small strict models of list entries.

Each validator checks one field's value where Teraslice lets a job through that Kubernetes
would then reject, and we refuse it up front (docs/compatibility.md): target keys/values,
volume names and paths, external port names and numbers, label values, env var values. A
refused value raises ``PydanticCustomError(<kind>, <rule>)``, so pydantic reports it under the
field's path (``targets[0].key: must be a valid label key ...``); an accepted value comes back
unchanged, except ``labels`` values that are numbers or booleans, which become strings the way
JavaScript's ``String()`` writes them (``1`` -> ``"1"``, ``true`` -> ``"true"``).

The entry models (:class:`JobTarget`, :class:`JobVolume`, :class:`ExternalPort`,
:class:`Operation`, :class:`ApiConfig`) are strict, frozen and keep unknown keys
(``extra="allow"``), like every model of the job (:class:`StrictModel`). The job models that
use them are in :mod:`teraslice_k8s.models.job`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from teraslice_k8s.models.schema import (
    Number,
    is_dns_subdomain,
    is_label_value,
    is_port_name,
    is_qualified_name,
)

#: The execution controller's port (health, worker messaging, master commands); jobs may not
#: expose it again.
SLICER_PORT = 45680
#: Volume names and mount paths Teraslice itself puts in every pod.
RESERVED_VOLUME_NAMES = frozenset({"config", "ephemeral-volume"})
RESERVED_MOUNT_PATHS = frozenset({"/app/config", "/ephemeral0"})


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


class StrictModel(BaseModel):
    """The base of every job model: strict types, frozen, unknown keys kept."""

    model_config = ConfigDict(strict=True, frozen=True, extra="allow")


PortNumber = Annotated[int, AfterValidator(_port_number)]


class JobTarget(StrictModel):
    key: Annotated[str, AfterValidator(_target_key)]
    value: Annotated[str, AfterValidator(_target_value)]
    constraint: Literal["required", "preferred", "accepted"] = "required"


class JobVolume(StrictModel):
    name: Annotated[str, AfterValidator(_claim_name)]
    path: Annotated[str, AfterValidator(_mount_path)]


class ExternalPort(StrictModel):
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


class Operation(StrictModel):
    op: Annotated[str, Field(alias="_op", min_length=1)]


class ApiConfig(StrictModel):
    """An ``apis`` entry's common keys (§2.3); its other keys are options of the operations
    naming it in ``_api_name`` and are checked with their schemas."""

    name: Annotated[str, Field(alias="_name", min_length=1)]
    encoding: Literal["json", "raw"] = Field("json", alias="_encoding")
    dead_letter_action: Annotated[str, Field(alias="_dead_letter_action", min_length=1)] = "throw"
    connection: Annotated[str, Field(alias="_connection", min_length=1)] = "default"


NonNegative = Annotated[Number, Field(ge=0)]
LabelValue = Annotated[str, BeforeValidator(_label_value)]
#: A ``labels`` name: any non-empty string (the render makes it a valid label key).
LabelKey = Annotated[str, AfterValidator(_non_empty_key)]
#: An ``env_vars`` value: a non-empty string without NUL.
EnvValue = Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]

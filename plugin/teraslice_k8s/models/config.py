"""The cluster config (``teraslice.yaml``): a ``teraslice:`` and a ``terafoundation:`` section.

:func:`parse_config` validates a mapping (already loaded from YAML) into a frozen
:class:`SysConfig`; :func:`load_config` reads the file first. Wrong types or values raise
:class:`~teraslice_k8s.errors.ValidationError` listing every problem with its key path
(``teraslice.kubernetes_worker_antiaffinity: must be a boolean``). Unknown keys in either
section are kept (``model_extra``), as Teraslice passes them through.

Environment references (ours; how the chart keeps secrets out of ConfigMaps): before
validation, :func:`load_config` (and :func:`parse_config` when given ``environ``) replaces
``${NAME}`` in every string value with the environment variable ``NAME``
(:func:`~teraslice_k8s.models.config_env.substitute_env`, which states the rules).
``teraslice.kubernetes_env_secret_refs`` (:class:`SecretKeyRef`) lists the
variables the master passes on to execution-controller and worker pods from Secrets.

Defaults are Teraslice 3.18's schema defaults, with these differences (docs/compatibility.md):

- ``kubernetes_image`` defaults to :data:`DEFAULT_IMAGE` (our single image; the chart mirrors it).
- ``cluster_manager_type`` defaults to ``local`` (local processes, the embedded default);
  Teraslice's ``native`` is accepted as a synonym of ``local``; ``kubernetes`` and
  ``kubernetesV2`` both select the Kubernetes backend.
- ``storage`` is ours: where jobs, executions and state live (SQLite file or Elasticsearch).
- ``env_vars`` names must be valid environment variable names and must not be one of the
  variables Teraslice sets itself (``NODE_TYPE``, ``EX``, ``POD_IP``).
- ``kubernetes_env_secret_refs`` is ours (the same name rules; a name may not also be in
  ``env_vars``).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config_env import ENV_NAME_RE, substitute_env
from teraslice_k8s.models.schema import (
    ConfigSection,
    Duration,
    Number,
    is_dns_label,
    is_dns_subdomain,
    parse_byte_size,
    problems_from_pydantic,
)
from teraslice_k8s.models.terafoundation import TerafoundationConfig

#: Image of the execution controller and worker pods unless config or job say otherwise.
#: ``charts/teraslice`` mirrors this value; keep them in step.
DEFAULT_IMAGE = "teraslice-k8s:0.1.0"
#: Execution-controller resources when neither the job nor the config sets a usable value.
DEFAULT_CPU_EXECUTION_CONTROLLER = 0.5
DEFAULT_MEMORY_EXECUTION_CONTROLLER = 512_000_000
#: Env variables the pods get from Teraslice itself; users may not redefine them.
RESERVED_ENV_NAMES = frozenset({"NODE_TYPE", "EX", "POD_IP"})

KUBERNETES_MANAGERS = frozenset({"kubernetes", "kubernetesV2"})
_INDEX_NAME_FORBIDDEN = re.compile(r'[\\/*?"<>|#]')
#: A Secret data key (apimachinery ``IsConfigMapKey``).
_SECRET_KEY_RE = re.compile(r"[-._a-zA-Z0-9]+\Z")


def check_env_name(name: str) -> str:
    """Validate one ``env_vars`` name (shared by the config and the job model)."""
    if name in RESERVED_ENV_NAMES:
        raise ValueError("is set by Teraslice and cannot be overridden")
    if not ENV_NAME_RE.match(name):
        raise ValueError("must be a valid environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)")
    return name


#: An ``env_vars`` key; errors are reported at ``env_vars.<name>``.
EnvName = Annotated[str, AfterValidator(check_env_name)]


@lru_cache(maxsize=1)
def _first_ipv4() -> str:
    # Teraslice's default `hostname`: the first non-internal IPv4. A UDP "connect" sends
    # nothing; it only asks the kernel which source address it would use.
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("10.255.255.255", 1))
            return str(sock.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class Target(ConfigSection):
    """A ``{key, value}`` node-label target (``execution_controller_targets``)."""

    key: Annotated[str, Field(min_length=1)]
    value: Annotated[str, Field(min_length=1)]


class SecretKeyRef(BaseModel):
    """One ``kubernetes_env_secret_refs`` entry: the Secret ``name`` and data ``key`` of a variable.

    Becomes ``{name: VAR, valueFrom: {secretKeyRef: {name, key[, optional]}}}`` in the
    execution-controller and worker containers. Unknown fields are refused (a typo such as
    ``optinal`` would otherwise silently make a pod wait for a missing Secret).
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    name: str
    key: str
    optional: bool | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not is_dns_subdomain(value):
            raise ValueError("must be a valid Kubernetes Secret name (lowercase RFC 1123 subdomain)")
        return value

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        if len(value) > 253 or not _SECRET_KEY_RE.match(value) or value in (".", ".."):
            raise ValueError("must be a valid Secret key (1 to 253 of [-._a-zA-Z0-9], not . or ..)")
        return value


class StateConfig(ConfigSection):
    connection: str = "default"


class IndexRollover(ConfigSection):
    state: Literal["daily", "monthly", "yearly"] = "monthly"
    analytics: Literal["daily", "monthly", "yearly"] = "monthly"


class StorageConfig(ConfigSection):
    """Ours: where the master keeps jobs, executions and slice state.

    ``type`` defaults to ``sqlite`` for local clusters and ``elasticsearch`` otherwise;
    ``connection`` names a terafoundation ``elasticsearch-next``/``elasticsearch`` connector.
    """

    type: Literal["elasticsearch", "sqlite"] | None = None
    path: str = "./teraslice-state.sqlite"
    connection: str = "default"
    #: How long a starting process retries an unreachable Elasticsearch (or one answering 5xx)
    #: before it gives up with an error; one warning line per attempt meanwhile.
    startup_timeout: Duration = 120_000


def _default_index_settings() -> dict[str, dict[str, int]]:
    names = ("analytics", "assets", "jobs", "execution", "state")
    return {name: {"number_of_shards": 5, "number_of_replicas": 1} for name in names}


class TerasliceConfig(ConfigSection):
    """The ``teraslice:`` section (Teraslice 3.18 schema plus ``storage``)."""

    name: str = "teracluster"
    cluster_manager_type: Literal["kubernetes", "kubernetesV2", "local"] = "local"
    master: bool = False
    master_hostname: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 5678
    hostname: str = Field(default_factory=_first_ipv4)
    workers: Annotated[int, Field(ge=0)] = Field(default_factory=lambda: os.cpu_count() or 1)
    assets_directory: str | list[str] = Field(default_factory=lambda: str(Path.cwd() / "assets"))
    assets_volume: str | None = None
    autoload_directory: str = Field(default_factory=lambda: str(Path.cwd() / "autoload"))
    state: StateConfig = StateConfig()
    storage: StorageConfig = StorageConfig()
    index_settings: dict[str, dict[str, int]] = Field(default_factory=_default_index_settings)
    index_rollover_frequency: IndexRollover = IndexRollover()
    api_response_timeout: Duration = 300_000
    #: Ours: the master logs one line per API request (``--access-log`` switches it on too).
    api_access_log: bool = False
    shutdown_timeout: Duration = 60_000
    action_timeout: Duration = 120_000
    network_latency_buffer: Duration = 15_000
    node_disconnect_timeout: Duration = 300_000
    worker_disconnect_timeout: Duration = 300_000
    slicer_timeout: Duration = 180_000
    node_state_interval: Duration = 5_000
    analytics_rate: Duration = 60_000
    slicer_allocation_attempts: Annotated[int, Field(ge=1)] = 3
    slicer_port_range: str = "45679:46678"
    env_vars: dict[EnvName, str] = {}
    cpu: Annotated[Number, Field(ge=0)] | None = None
    memory: Annotated[Number, Field(ge=0)] | None = None
    cpu_execution_controller: Annotated[Number, Field(ge=0)] = DEFAULT_CPU_EXECUTION_CONTROLLER
    memory_execution_controller: Annotated[Number, Field(ge=0)] = DEFAULT_MEMORY_EXECUTION_CONTROLLER
    ephemeral_storage: bool = False
    execution_controller_targets: list[Target] | None = None
    kubernetes_image: Annotated[str, Field(min_length=1)] = DEFAULT_IMAGE
    kubernetes_namespace: Annotated[str, Field(min_length=1)] = "default"
    kubernetes_config_map_name: Annotated[str, Field(min_length=1)] = "teraslice-worker"
    kubernetes_image_pull_secret: str | None = None
    kubernetes_priority_class_name: str | None = None
    kubernetes_overrides_enabled: bool = False
    kubernetes_worker_antiaffinity: bool = False
    kubernetes_api_poll_delay: Duration = 1_000
    #: Ours: env var name -> Secret key, passed to execution-controller and worker pods.
    kubernetes_env_secret_refs: dict[EnvName, SecretKeyRef] = {}
    asset_storage_connection_type: str = "elasticsearch-next"
    asset_storage_connection: str = "default"
    asset_storage_bucket: str | None = None
    #: Ours: false turns ``POST /assets`` off (clusters that allow only image-baked operations).
    assets_upload_enabled: bool = True
    #: Ours: job and operation keys no schema declares refuse the job (422) instead of being
    #: kept with a warning (``POST /jobs?strict=true`` and the CLI's ``--strict`` per request).
    strict_job_keys: bool = False
    #: Largest request body the API reads (``"100mb"``, bytes as an integer): 413 beyond it.
    api_payload_limit: int | str = "100mb"

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if data.get("cluster_manager_type") == "native":
            data["cluster_manager_type"] = "local"
        storage = data.get("storage")
        if storage is None or (isinstance(storage, Mapping) and storage.get("type") is None):
            kind = data.get("cluster_manager_type", "local")
            default = "sqlite" if kind == "local" else "elasticsearch"
            data["storage"] = {**(storage or {}), "type": default}
        return data

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        # Teraslice's `elasticsearch_Name` format: the name prefixes every state index.
        if not value or len(value) > 255:
            raise ValueError("must be 1 to 255 characters long")
        if value != value.lower():
            raise ValueError("must be lowercase")
        if value[0] in "-_+":
            raise ValueError("must not start with -, _ or +")
        if _INDEX_NAME_FORBIDDEN.search(value):
            raise ValueError('must not contain any of \\ / * ? " < > | #')
        return value

    @field_validator("api_payload_limit")
    @classmethod
    def _check_payload_limit(cls, value: int | str) -> int | str:
        parse_byte_size(value)
        return value

    @field_validator("slicer_port_range")
    @classmethod
    def _check_port_range(cls, value: str) -> str:
        match = re.fullmatch(r"(\d+):(\d+)", value)
        if not match or not 1 <= int(match.group(1)) < int(match.group(2)) <= 65535:
            raise ValueError('must look like "45679:46678" (first < last <= 65535)')
        return value

    @field_validator(
        "assets_volume",
        "kubernetes_config_map_name",
        "kubernetes_image_pull_secret",
        "kubernetes_priority_class_name",
    )
    @classmethod
    def _check_object_name(cls, value: str | None) -> str | None:
        # "" means unset (Teraslice tests use it); anything else must be a usable object name.
        if value and not is_dns_subdomain(value):
            raise ValueError("must be a valid Kubernetes object name (lowercase RFC 1123 subdomain)")
        return value

    @field_validator("kubernetes_env_secret_refs")
    @classmethod
    def _check_secret_refs(
        cls, value: dict[str, SecretKeyRef], info: ValidationInfo
    ) -> dict[str, SecretKeyRef]:
        # One source per variable: otherwise which value a pod sees would depend on env order.
        both = [name for name in value if name in (info.data.get("env_vars") or {})]
        if both:
            names = ", ".join(both)
            raise ValueError(
                f"must not repeat a name of teraslice.env_vars ({names}); set a variable in one place"
            )
        return value

    @field_validator("kubernetes_namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        if not is_dns_label(value):
            raise ValueError("must be a valid Kubernetes namespace name (lowercase RFC 1123 label)")
        return value

    @property
    def is_kubernetes(self) -> bool:
        return self.cluster_manager_type in KUBERNETES_MANAGERS

    @property
    def payload_limit_bytes(self) -> int:
        return parse_byte_size(self.api_payload_limit)

    @property
    def slicer_ports(self) -> tuple[int, int]:
        first, last = self.slicer_port_range.split(":")
        return int(first), int(last)


class SysConfig(ConfigSection):
    """The whole config file. Build it with :func:`parse_config` / :func:`load_config`."""

    teraslice: TerasliceConfig = TerasliceConfig()
    terafoundation: TerafoundationConfig = TerafoundationConfig()


def parse_config(data: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None) -> SysConfig:
    """Validate ``data`` (the parsed YAML document) or raise ``ValidationError``.

    With ``environ``, ``${NAME}`` references are substituted from it first
    (:func:`~teraslice_k8s.models.config_env.substitute_env`); without, ``data`` is taken as
    already resolved and a ``${...}`` stays literal (in-process configs, and tests of the chart's raw output).
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValidationError([Problem("", "the config file must hold a mapping")], subject="config")
    if environ is not None:
        data = substitute_env(data, environ)
    try:
        # Sections given as null mean "all defaults", as an empty YAML section does.
        return SysConfig.model_validate({k: ({} if v is None else v) for k, v in data.items()})
    except PydanticValidationError as exc:
        raise ValidationError(problems_from_pydantic(exc), subject="config") from None


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> SysConfig:
    """Read and validate a ``teraslice.yaml``; unreadable or malformed files raise ValidationError.

    ``${NAME}`` references are substituted from ``environ`` (default: ``os.environ``, read
    when called) before validation.
    """
    try:
        # From the open file, not its text: YAML errors then name the file instead of
        # "<unicode string>".
        with Path(path).open(encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except OSError as exc:
        raise ValidationError(
            [Problem("", f"cannot read {path}: {exc.strerror}")], subject="config"
        ) from None
    except yaml.YAMLError as exc:
        raise ValidationError([Problem("", f"{path} is not valid YAML: {exc}")], subject="config") from None
    return parse_config(data, os.environ if environ is None else environ)

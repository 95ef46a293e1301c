"""Everything a manifest template needs, computed up front: :func:`build_context`.

Pure and deterministic: (execution record, cluster config, which manifest, owner) -> an
immutable :class:`RenderContext`. Every Teraslice rule about *values* lives here (k8s-backend.md
§2.1 and §5): names and labels (via :mod:`.names`), image precedence, resources, env (``EX``,
``NODE_OPTIONS``, ``env_vars``, Secret references), volumes, targets, anti-affinity, ports,
priority class, pull secret, owner reference. Templates only place these values.

The parts that depend only on the cluster config (config and assets volumes, pull secret,
controller targets, anti-affinity, Secret-backed env, grace period, instance label) are
computed once per :class:`SysConfig` object (a small identity-keyed cache that holds the
config, so a different config never sees another's parts) and shared between contexts:
contexts are read-only.

Differences from Teraslice (docs/compatibility.md): the controller falls back to 0.5 CPU /
512000000 bytes instead of ``-1``; a resource map that would be empty is omitted; env names
are unique (Teraslice's own variables win; user ``NODE_OPTIONS`` replaces the computed
one); ``teraslice.kubernetes_env_secret_refs`` (ours) become ``secretKeyRef`` entries after
all value entries, a Secret-backed ``NODE_OPTIONS`` replaces the computed one, and a job
``env_vars`` name that is Secret-backed is refused (``ValidationError`` at
``env_vars.<NAME>``), never silently replaced; external ports carry ``protocol: TCP`` as
the seed shows; volume names are valid pod volume names even when the claim name has dots.
"""

from __future__ import annotations

import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.kubernetes import names as n
from teraslice_k8s.kubernetes.jsontext import js_json_bytes, js_number
from teraslice_k8s.models.config import (
    DEFAULT_CPU_EXECUTION_CONTROLLER,
    DEFAULT_MEMORY_EXECUTION_CONTROLLER,
    RESERVED_ENV_NAMES,
    SecretKeyRef,
    SysConfig,
    TerasliceConfig,
)
from teraslice_k8s.models.job import SECRET_ENV_TAKEN_MESSAGE
from teraslice_k8s.models.job_fields import SLICER_PORT

ManifestKind = Literal["job", "service", "deployment"]
_COMPONENT: dict[ManifestKind, n.Component] = {
    "job": "execution_controller",
    "service": "execution_controller",
    "deployment": "worker",
}


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """The execution-controller Job that owns the Service and the worker Deployment."""

    name: str
    uid: str


class PodContext(NamedTuple):
    """The pod template of the Job or the Deployment (read-only: containers and entries are shared).

    A typed named tuple (immutable, and three times cheaper to build than a frozen dataclass).
    """

    labels: dict[str, str]
    image: str
    ports: tuple[dict[str, Any], ...]
    volume_mounts: tuple[dict[str, Any], ...]
    env: tuple[dict[str, Any], ...]
    resources: dict[str, dict[str, int | float]] | None
    volumes: tuple[dict[str, Any], ...]
    termination_grace_period_seconds: int
    readiness_probe: bool
    affinity: dict[str, Any] | None
    tolerations: tuple[dict[str, str], ...] | None
    image_pull_secrets: tuple[dict[str, str], ...] | None
    priority_class_name: str | None
    pod_spec_override: dict[str, Any] | None


class RenderContext(NamedTuple):
    """One manifest's values; ``pod`` is ``None`` for the Service (an immutable typed tuple).

    The template variables come first and ``kind``/``pod`` last (``render`` zips the fields).
    """

    name: str
    namespace: str
    labels: dict[str, str]
    owner_references: tuple[dict[str, Any], ...] | None
    selector: dict[str, str]
    replicas: int | None
    kind: ManifestKind
    pod: PodContext | None


def truthy(value: Any) -> bool:
    """JavaScript truthiness for JSON values (``0``, ``""``, ``null``, ``false``, NaN are unset)."""
    # Exact-type fast paths first: this runs ~20 times per manifest.
    kind = type(value)
    if kind is str or kind is int:  # exact types: Python's truthiness is JavaScript's here
        return bool(value)
    if value is None or value is False:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (0, "")


def encode_execution(execution: Mapping[str, Any]) -> str:
    """``EX``: base64 of the execution's JSON exactly as Teraslice's ``JSON.stringify`` writes it."""
    return binascii.b2a_base64(js_json_bytes(execution), newline=False).decode("ascii")  # = b64encode


def max_old_space(memory: int | float) -> int:
    """Teraslice's ``getMaxOldSpace``: 90% of the memory in MiB, JS-rounded."""
    return math.floor(0.9 * (memory / 1024 / 1024) + 0.5)


@dataclass(frozen=True, slots=True)
class _Cluster:
    """The parts of every pod that depend only on the cluster config (shared, read-only)."""

    instance_label: str
    config_volume: dict[str, Any]
    config_mount: dict[str, Any]
    assets: tuple[dict[str, Any], dict[str, Any]] | None  # (volume, mount)
    secret_env: tuple[dict[str, Any], ...]
    controller_required: tuple[dict[str, Any], ...]
    controller_tolerations: tuple[dict[str, Any], ...]
    anti_affinity: dict[str, Any] | None
    termination_grace_period_seconds: int
    image_pull_secrets: tuple[dict[str, str], ...] | None


# id(config) -> (config, parts). Holding the config keeps its id from being reused by another
# object while the entry exists, so an id hit is always the same (frozen) config.
_CLUSTERS: dict[int, tuple[SysConfig, _Cluster]] = {}
_CLUSTERS_MAX = 8


def _cluster(config: SysConfig) -> _Cluster:
    entry = _CLUSTERS.get(id(config))
    if entry is not None and entry[0] is config:
        return entry[1]
    ts = config.teraslice
    instance = n.cluster_name_label(ts.name)
    assets: tuple[dict[str, Any], dict[str, Any]] | None = None
    if isinstance(ts.assets_directory, str) and ts.assets_directory:
        if ts.assets_volume:
            name = n.volume_name(ts.assets_volume)
            volume: dict[str, Any] = {"name": name, "persistentVolumeClaim": {"claimName": ts.assets_volume}}
        else:
            name = "assets"
            volume = {"name": name, "emptyDir": {}}
        assets = (volume, {"name": name, "mountPath": ts.assets_directory})
    anti_affinity = None
    if ts.kubernetes_worker_antiaffinity:
        match = [
            {"key": n.NAME_LABEL, "operator": "In", "values": [n.APP_NAME]},
            {"key": n.INSTANCE_LABEL, "operator": "In", "values": [instance]},
        ]
        term = {"labelSelector": {"matchExpressions": match}, "topologyKey": "kubernetes.io/hostname"}
        anti_affinity = {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "podAffinityTerm": term}]
        }
    targets = ts.execution_controller_targets or []
    parts = _Cluster(
        instance_label=instance,
        config_volume={
            "name": "config",
            "configMap": {
                "name": ts.kubernetes_config_map_name,
                "items": [{"key": "teraslice.yaml", "path": "teraslice.yaml"}],
            },
        },
        config_mount={"mountPath": "/app/config", "name": "config"},
        assets=assets,
        secret_env=tuple(
            {"name": name, "valueFrom": {"secretKeyRef": _secret_key_ref(ref)}}
            for name, ref in ts.kubernetes_env_secret_refs.items()
        ),
        controller_required=tuple(_expression(target.key, target.value) for target in targets),
        controller_tolerations=tuple(_toleration(target.key, target.value) for target in targets),
        anti_affinity=anti_affinity,
        termination_grace_period_seconds=math.floor(ts.shutdown_timeout / 1000 + 0.5),
        image_pull_secrets=({"name": ts.kubernetes_image_pull_secret},)
        if ts.kubernetes_image_pull_secret
        else None,
    )
    if len(_CLUSTERS) >= _CLUSTERS_MAX:
        _CLUSTERS.pop(next(iter(_CLUSTERS)))  # oldest first; a master has one config
    _CLUSTERS[id(config)] = (config, parts)
    return parts


def _amount(value: Any) -> Any:
    """A resource amount as ``JSON.stringify`` prints it (an int, the common case, unchanged)."""
    return value if type(value) is int else js_number(value)


def _worker_resources(ex: Mapping[str, Any], ts: TerasliceConfig) -> tuple[dict[str, Any], Any]:
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    _worker_resource(ex, "cpu", ts.cpu, requests, limits)
    max_memory = _worker_resource(ex, "memory", ts.memory, requests, limits)
    resources: dict[str, Any] = {}
    if requests:  # Teraslice leaves an empty map here; we omit it
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources, max_memory


_NEW_METHOD_KEYS: dict[str, tuple[str, str]] = {
    name: (f"resources_requests_{name}", f"resources_limits_{name}") for name in ("cpu", "memory")
}


def _worker_resource(
    ex: Mapping[str, Any], name: str, cluster_value: Any, requests: dict[str, Any], limits: dict[str, Any]
) -> Any:
    """Set ``requests[name]``/``limits[name]`` by Teraslice's precedence; the limit in effect.

    The new method (``resources_requests_<name>``/``resources_limits_<name>``) wins; else the
    old ``<name>`` of the job, else of the cluster, as both request and limit. The returned
    limit (``None`` when unset) is what ``NODE_OPTIONS`` is derived from for memory.
    """
    request_key, limit_key = _NEW_METHOD_KEYS[name]
    request, limit = ex.get(request_key), ex.get(limit_key)
    request_set, limit_set = truthy(request), truthy(limit)
    if request_set or limit_set:
        if request_set:
            requests[name] = _amount(request)
        if limit_set:
            limits[name] = _amount(limit)
        return limit
    value = ex.get(name)
    value = value if truthy(value) else cluster_value
    if not truthy(value):
        return None
    requests[name] = limits[name] = _amount(value)
    return value


def _controller_resources(ex: Mapping[str, Any], ts: TerasliceConfig) -> tuple[dict[str, Any], Any]:
    # Teraslice: `job || config || -1`; we fall back to the documented defaults instead of -1.
    cpu = ex.get("cpu_execution_controller")
    if not truthy(cpu):
        cpu = ts.cpu_execution_controller
        cpu = cpu if truthy(cpu) else DEFAULT_CPU_EXECUTION_CONTROLLER
    memory = ex.get("memory_execution_controller")
    if not truthy(memory):
        memory = ts.memory_execution_controller
        memory = memory if truthy(memory) else DEFAULT_MEMORY_EXECUTION_CONTROLLER
    amounts = {"cpu": _amount(cpu), "memory": _amount(memory)}
    return {"requests": amounts, "limits": dict(amounts)}, memory


# Shared by every pod (contexts are read-only; the manifest is parsed from their JSON text).
_POD_IP_ENV: dict[str, Any] = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _env(
    node_type: str, execution: Mapping[str, Any], ts: TerasliceConfig, cluster: _Cluster, max_memory: Any
) -> tuple[dict[str, Any], ...]:
    secrets = ts.kubernetes_env_secret_refs
    job_env = execution.get("env_vars") or {}
    if secrets and job_env:
        # validate_job refuses these at submit; a stored job validated before the setting
        # changed must still not override a Secret, so the render refuses it too.
        taken = [Problem(f"env_vars.{name}", SECRET_ENV_TAKEN_MESSAGE) for name in job_env if name in secrets]
        if taken:
            raise ValidationError(taken, subject="job")
    env: list[dict[str, Any]] = [
        {"name": "NODE_TYPE", "value": node_type},
        {"name": "EX", "value": encode_execution(execution)},
        _POD_IP_ENV,
    ]
    extra: dict[str, Any] = {}
    if truthy(max_memory) and max_memory > -1 and "NODE_OPTIONS" not in secrets:
        extra["NODE_OPTIONS"] = f"--max-old-space-size={max_old_space(max_memory)}"
    extra.update(ts.env_vars)
    extra.update(job_env)
    for key, value in extra.items():
        if key not in RESERVED_ENV_NAMES:
            env.append({"name": key, "value": value if isinstance(value, str) else json.dumps(value)})
    env.extend(cluster.secret_env)
    return tuple(env)


def _secret_key_ref(ref: SecretKeyRef) -> dict[str, Any]:
    reference: dict[str, Any] = {"name": ref.name, "key": ref.key}
    if ref.optional is not None:
        reference["optional"] = ref.optional
    return reference


def _label_text(key: Any, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(js_number(value))
    raise ValidationError(
        [Problem(f"labels.{key}", "must be a string, number or boolean")], subject="execution"
    )


def _volumes(
    execution: Mapping[str, Any], cluster: _Cluster
) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    volumes: list[dict[str, Any]] = [cluster.config_volume]
    mounts: list[dict[str, Any]] = [cluster.config_mount]
    for volume in execution.get("volumes") or ():
        name = n.volume_name(volume["name"])
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": volume["name"]}})
        mounts.append({"name": name, "mountPath": volume["path"]})
    if cluster.assets is not None:
        volumes.append(cluster.assets[0])
        mounts.append(cluster.assets[1])
    if truthy(execution.get("ephemeral_storage")):
        mounts.append({"name": "ephemeral-volume", "mountPath": "/ephemeral0"})
        volumes.append({"name": "ephemeral-volume", "emptyDir": {}})
    return tuple(volumes), tuple(mounts)


def _ports(execution: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    ports: list[dict[str, Any]] = [{"containerPort": SLICER_PORT}]
    for entry in execution.get("external_ports") or []:
        if type(entry) is dict or isinstance(entry, Mapping):
            ports.append({"containerPort": entry["port"], "name": entry["name"], "protocol": "TCP"})
        else:
            ports.append({"containerPort": entry, "protocol": "TCP"})
    return tuple(ports)


def _expression(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "operator": "In", "values": [value]}


def _toleration(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}


def _scheduling(
    execution: Mapping[str, Any], cluster: _Cluster, kind: ManifestKind
) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...] | None]:
    required: list[dict[str, Any]] = []
    preferred: list[dict[str, Any]] = []
    tolerations: list[dict[str, Any]] = []
    for target in execution.get("targets") or ():
        constraint = target.get("constraint", "required")
        if constraint == "required":
            required.append(_expression(target["key"], target["value"]))
        elif constraint == "preferred":
            preferred.append(
                {
                    "weight": 1,
                    "preference": {"matchExpressions": [_expression(target["key"], target["value"])]},
                }
            )
        elif constraint == "accepted":
            tolerations.append(_toleration(target["key"], target["value"]))
    if kind == "job":
        required.extend(cluster.controller_required)
        tolerations.extend(cluster.controller_tolerations)
    affinity: dict[str, Any] = {}
    node: dict[str, Any] = {}
    if required:
        node["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchExpressions": required}]
        }
    if preferred:
        node["preferredDuringSchedulingIgnoredDuringExecution"] = preferred
    if node:
        affinity["nodeAffinity"] = node
    if kind == "deployment" and cluster.anti_affinity is not None:
        affinity["podAntiAffinity"] = cluster.anti_affinity
    return affinity or None, tuple(tolerations) or None


def _pod(
    execution: Mapping[str, Any],
    ts: TerasliceConfig,
    cluster: _Cluster,
    kind: ManifestKind,
    labels: dict[str, str],
) -> PodContext:
    controller = kind == "job"
    stateful = truthy(execution.get("stateful"))
    priority = ts.kubernetes_priority_class_name if (controller or stateful) else None
    pod_labels = labels  # shared with the object's metadata: contexts are read-only
    if stateful and ts.kubernetes_priority_class_name:
        pod_labels = {**labels, n.STATEFUL_LABEL: "true"}
    if controller:
        resources, max_memory = _controller_resources(execution, ts)
        ex_for_env: Mapping[str, Any] = {**execution, "slicer_port": SLICER_PORT}
    else:
        resources, max_memory = _worker_resources(execution, ts)
        # orjson encodes dicts only; a dict is read, never changed, so it needs no copy
        ex_for_env = execution if type(execution) is dict else dict(execution)
    volumes, mounts = _volumes(execution, cluster)
    affinity, tolerations = _scheduling(execution, cluster, kind)
    override = execution.get("pod_spec_override")
    return PodContext(
        labels=pod_labels,
        image=execution.get("kubernetes_image") or ts.kubernetes_image,
        ports=_ports(execution),
        volume_mounts=mounts,
        env=_env(_COMPONENT[kind], ex_for_env, ts, cluster, max_memory),
        resources=resources or None,
        volumes=volumes,
        termination_grace_period_seconds=cluster.termination_grace_period_seconds,
        readiness_probe=controller,
        affinity=affinity,
        tolerations=tolerations,
        image_pull_secrets=cluster.image_pull_secrets,
        priority_class_name=priority or None,
        pod_spec_override=dict(override) if override and isinstance(override, Mapping) else None,
    )


def build_context(
    execution: Mapping[str, Any],
    config: SysConfig,
    kind: ManifestKind,
    owner: OwnerRef | None = None,
) -> RenderContext:
    """The values of one manifest. ``owner`` is required for the Service and the Deployment.

    The Job's ``EX`` is the execution plus ``slicer_port: 45680`` (Teraslice's
    ``allocateSlicer``); the Deployment's ``EX`` is the execution exactly as given (the
    master passes the record updated with ``slicer_hostname``/``slicer_port``).
    """
    ex_id, job_id = execution.get("ex_id"), execution.get("job_id")
    if not (ex_id and job_id):
        missing = [
            Problem(key, "is required") for key, value in (("ex_id", ex_id), ("job_id", job_id)) if not value
        ]
        raise ValidationError(missing, subject="execution")
    if kind != "job" and owner is None:
        raise ValueError(f"a {kind} needs the owner reference of the execution-controller Job")
    job_id = str(job_id)
    names = n.resource_names(str(execution.get("name", "")), job_id)
    component = _COMPONENT[kind]
    ex_id_label = n.label_value(str(ex_id))
    job_id_label = n.label_value(job_id)
    owners = None
    if owner is not None:
        # Teraslice's reference: not the controller, no blocking; deleting the Job removes both.
        reference = {
            "apiVersion": "batch/v1",
            "controller": False,
            "blockOwnerDeletion": False,
            "kind": "Job",
            "name": owner.name,
            "uid": owner.uid,
        }
        owners = (reference,)
    ts = config.teraslice
    namespace = ts.kubernetes_namespace
    if kind == "service":
        labels = {
            n.NAME_LABEL: n.APP_NAME,
            n.COMPONENT_LABEL: component,
            n.EX_ID_LABEL: ex_id_label,
            n.JOB_ID_LABEL: job_id_label,
        }
        selector = {n.COMPONENT_LABEL: component, n.EX_ID_LABEL: ex_id_label}
        return RenderContext(names.service, namespace, labels, owners, selector, None, kind, None)
    cluster = _cluster(config)
    labels = {
        n.NAME_LABEL: n.APP_NAME,
        n.COMPONENT_LABEL: component,
        n.EX_ID_LABEL: ex_id_label,
        n.JOB_ID_LABEL: job_id_label,
        n.JOB_NAME_LABEL: names.job_name_label,
        n.INSTANCE_LABEL: cluster.instance_label,
    }
    user = execution.get("labels")
    if user and isinstance(user, Mapping):  # the cheap test first: most jobs have none
        texts = {str(k): v if type(v) is str else _label_text(k, v) for k, v in user.items()}
        labels.update(n.job_labels(texts))
    if kind == "job":
        labels[n.JOB_LABEL_PREFIX + "relocatable"] = "true" if execution.get("relocatable") else "false"
        name, replicas = names.job, None
    else:
        name, replicas = names.deployment, int(execution.get("workers", 1))
    selector = {n.NAME_LABEL: n.APP_NAME, n.COMPONENT_LABEL: component, n.EX_ID_LABEL: ex_id_label}
    pod = _pod(execution, ts, cluster, kind, labels)
    return RenderContext(name, namespace, labels, owners, selector, replicas, kind, pod)

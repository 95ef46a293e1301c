"""The pod template of the execution-controller Job or the worker Deployment: :func:`build_pod`.

Pure: (execution record, cluster settings, its :class:`ClusterParts`, which component, the
object's labels) -> an immutable :class:`PodContext` whose values the templates only place.
The Teraslice rules applied here (k8s-backend.md §2.1 and §5):

- image: the job's ``kubernetes_image``, else the cluster's;
- env: ``NODE_TYPE``, ``EX`` (:func:`encode_execution`; the controller's execution gets
  ``slicer_port: 45680``), ``POD_IP``, then ``NODE_OPTIONS`` (from the memory limit), the
  cluster's ``env_vars`` and the job's ``env_vars``, then the Secret-backed entries;
- resources (:mod:`.pod_resources`), volumes and mounts (config, job volumes, assets,
  ephemeral storage), ports (the slicer port, then ``external_ports``);
- scheduling: the job's ``targets`` as required/preferred node affinity or tolerations, plus
  the cluster's controller targets on the Job and the anti-affinity on the Deployment;
- priority class on the controller and on stateful workers (which also get the stateful
  label), grace period, pull secret, readiness probe on the controller, ``pod_spec_override``.

Differences from Teraslice (docs/compatibility.md): env names are unique (Teraslice's own
variables win; user ``NODE_OPTIONS`` replaces the computed one); Secret-backed entries come
after all value entries, a Secret-backed ``NODE_OPTIONS`` replaces the computed one, and a job
``env_vars`` name that is Secret-backed is refused (``ValidationError`` at
``env_vars.<NAME>``), never silently replaced; external ports carry ``protocol: TCP`` as the
seed shows; volume names are valid pod volume names even when the claim name has dots.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.kubernetes import names as n
from teraslice_k8s.kubernetes.cluster_parts import ClusterParts, no_schedule_toleration, node_expression
from teraslice_k8s.kubernetes.jsontext import js_json_bytes
from teraslice_k8s.kubernetes.pod_resources import (
    controller_resources,
    max_old_space,
    truthy,
    worker_resources,
)
from teraslice_k8s.models.config import RESERVED_ENV_NAMES, TerasliceConfig
from teraslice_k8s.models.job import SECRET_ENV_TAKEN_MESSAGE
from teraslice_k8s.models.job_fields import SLICER_PORT


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


def encode_execution(execution: Mapping[str, Any]) -> str:
    """``EX``: base64 of the execution's JSON exactly as Teraslice's ``JSON.stringify`` writes it."""
    return binascii.b2a_base64(js_json_bytes(execution), newline=False).decode("ascii")  # = b64encode


# Shared by every pod (contexts are read-only; the manifest is parsed from their JSON text).
_POD_IP_ENV: dict[str, Any] = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


def _env(
    node_type: str, execution: Mapping[str, Any], ts: TerasliceConfig, cluster: ClusterParts, max_memory: Any
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


def _volumes(
    execution: Mapping[str, Any], cluster: ClusterParts
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


def _scheduling(
    execution: Mapping[str, Any], cluster: ClusterParts, controller: bool
) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...] | None]:
    required: list[dict[str, Any]] = []
    preferred: list[dict[str, Any]] = []
    tolerations: list[dict[str, Any]] = []
    for target in execution.get("targets") or ():
        constraint = target.get("constraint", "required")
        if constraint == "required":
            required.append(node_expression(target["key"], target["value"]))
        elif constraint == "preferred":
            preferred.append(
                {
                    "weight": 1,
                    "preference": {"matchExpressions": [node_expression(target["key"], target["value"])]},
                }
            )
        elif constraint == "accepted":
            tolerations.append(no_schedule_toleration(target["key"], target["value"]))
    if controller:
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
    if not controller and cluster.anti_affinity is not None:
        affinity["podAntiAffinity"] = cluster.anti_affinity
    return affinity or None, tuple(tolerations) or None


def build_pod(
    execution: Mapping[str, Any],
    ts: TerasliceConfig,
    cluster: ClusterParts,
    component: n.Component,
    labels: dict[str, str],
) -> PodContext:
    """The pod of ``component``'s object (the controller Job or the worker Deployment).

    ``labels`` are the object's own and are shared with the pod where they are the same
    (contexts are read-only); ``cluster`` is :func:`~.cluster_parts.cluster_parts` of the config.
    """
    controller = component == "execution_controller"
    stateful = truthy(execution.get("stateful"))
    priority = ts.kubernetes_priority_class_name if (controller or stateful) else None
    pod_labels = labels  # shared with the object's metadata: contexts are read-only
    if stateful and ts.kubernetes_priority_class_name:
        pod_labels = {**labels, n.STATEFUL_LABEL: "true"}
    if controller:
        resources, max_memory = controller_resources(execution, ts)
        ex_for_env: Mapping[str, Any] = {**execution, "slicer_port": SLICER_PORT}
    else:
        resources, max_memory = worker_resources(execution, ts)
        # orjson encodes dicts only; a dict is read, never changed, so it needs no copy
        ex_for_env = execution if type(execution) is dict else dict(execution)
    volumes, mounts = _volumes(execution, cluster)
    affinity, tolerations = _scheduling(execution, cluster, controller)
    override = execution.get("pod_spec_override")
    return PodContext(
        labels=pod_labels,
        image=execution.get("kubernetes_image") or ts.kubernetes_image,
        ports=_ports(execution),
        volume_mounts=mounts,
        env=_env(component, ex_for_env, ts, cluster, max_memory),
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

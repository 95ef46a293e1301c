"""The parts of every execution's pods that depend only on the cluster config.

:func:`cluster_parts` computes them once per :class:`SysConfig` object and shares them between
render contexts: the instance label, the config and assets volumes and mounts, the
Secret-backed env entries (``teraslice.kubernetes_env_secret_refs``, as ``secretKeyRef``), the
execution controller's node targets and tolerations, the workers' anti-affinity, the
termination grace period (``shutdown_timeout``, JS-rounded to seconds) and the image pull
secret. The cache is small and identity-keyed and holds the config itself, so a different
config never sees another's parts. The parts are read-only: contexts built from them must not
change them.

:func:`node_expression` and :func:`no_schedule_toleration` are Teraslice's shapes for one
node target (``key In [value]``, and ``key Equal value: NoSchedule``), shared with the
per-execution targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from teraslice_k8s.kubernetes import names as n
from teraslice_k8s.models.config import SecretKeyRef, SysConfig


@dataclass(frozen=True, slots=True)
class ClusterParts:
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
_CLUSTERS: dict[int, tuple[SysConfig, ClusterParts]] = {}
_CLUSTERS_MAX = 8


def cluster_parts(config: SysConfig) -> ClusterParts:
    """The shared parts for ``config`` (computed on the first call for this config object)."""
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
    parts = ClusterParts(
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
        controller_required=tuple(node_expression(target.key, target.value) for target in targets),
        controller_tolerations=tuple(no_schedule_toleration(target.key, target.value) for target in targets),
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


def _secret_key_ref(ref: SecretKeyRef) -> dict[str, Any]:
    reference: dict[str, Any] = {"name": ref.name, "key": ref.key}
    if ref.optional is not None:
        reference["optional"] = ref.optional
    return reference


def node_expression(key: str, value: Any) -> dict[str, Any]:
    """A node selector requirement: the node's label ``key`` is ``value``."""
    return {"key": key, "operator": "In", "values": [value]}


def no_schedule_toleration(key: str, value: Any) -> dict[str, Any]:
    """A toleration of the taint ``key=value:NoSchedule``."""
    return {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}

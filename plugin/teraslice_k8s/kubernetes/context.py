"""Everything a manifest template needs, computed up front: :func:`build_context`.

Pure and deterministic: (execution record, cluster config, which manifest, owner) -> an
immutable :class:`RenderContext`. Every Teraslice rule about *values* lives in this module and
the ones it composes (k8s-backend.md §2.1 and §5); templates only place them. Here: the
object's name, namespace, labels (via :mod:`.names`: Teraslice's, the job's ``labels``, the
``relocatable`` label on the Job), selector, replicas and the owner reference of the Service
and the Deployment. The pod template is :mod:`.pod_context`'s (image, env, resources,
volumes, targets, anti-affinity, ports, priority class, pull secret), over the parts that
depend only on the cluster config, computed once per :class:`SysConfig` object and shared
between contexts (:mod:`.cluster_parts`): contexts are read-only.

A job label value that is a number or boolean is written as JavaScript writes it; any other
type is refused (``ValidationError`` at ``labels.<key>``). The differences from Teraslice
(docs/compatibility.md) are at the pod level, listed in :mod:`.pod_context` and
:mod:`.pod_resources`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.kubernetes import names as n
from teraslice_k8s.kubernetes.cluster_parts import cluster_parts
from teraslice_k8s.kubernetes.jsontext import js_number
from teraslice_k8s.kubernetes.pod_context import PodContext, build_pod
from teraslice_k8s.models.config import SysConfig

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
    cluster = cluster_parts(config)
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
    pod = build_pod(execution, ts, cluster, component, labels)
    return RenderContext(name, namespace, labels, owners, selector, replicas, kind, pod)

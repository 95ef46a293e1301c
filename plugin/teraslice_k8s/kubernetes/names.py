"""Every Kubernetes name and label value the manifests use, always valid (kubespawner-slug style).

Guarantees, for *any* input string (quotes, newlines, emoji, 300 characters...):

- :func:`resource_names` returns object names that are RFC 1123 labels (also usable as
  container names) and a Service name that is an RFC 1035 label: at most 63 characters,
  ``[a-z0-9-]``, never starting or ending with ``-``, no ``.``.
- :func:`label_value`, :func:`job_name_label`, :func:`cluster_name_label` and
  :func:`job_labels` return valid label values/keys (at most 63 characters,
  ``[A-Za-z0-9._-]``, starting and ending alphanumeric, or empty for values).
- Teraslice 3.18's own result is returned unchanged whenever it is valid (so names match
  Teraslice's: ``ts-exc-<jobNameLabel[:35]>-<job_id[:13]>``, ``svc-``..., ``ts-wkr-``...).
  Only when it would be invalid is it replaced by a readable slug plus ``-`` and the first
  10 hex digits of the SHA-256 of the *original* input, so two different inputs never share
  a replaced name (up to a 40-bit hash collision), however long their common prefix.
- :func:`job_labels` never lets two user label keys land on the same Kubernetes key: when
  several keys sanitise to the same name, a key that needed no change keeps it and every
  changed key gets the hash suffix (Teraslice silently overwrote one with the other).

Teraslice's algorithms (k8s-backend.md §2.2) count UTF-16 code units, so a character outside
the Basic Multilingual Plane (an emoji) becomes *two* replacement characters; we do the same.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, Literal

from teraslice_k8s.models.schema import is_dns_1035_label, is_dns_label, is_label_value

Component = Literal["execution_controller", "worker"]

NAME_LABEL: Final = "app.kubernetes.io/name"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
EX_ID_LABEL: Final = "teraslice.terascope.io/exId"
JOB_ID_LABEL: Final = "teraslice.terascope.io/jobId"
JOB_NAME_LABEL: Final = "teraslice.terascope.io/jobName"
JOB_LABEL_PREFIX: Final = "job.teraslice.terascope.io/"
STATEFUL_LABEL: Final = "job-property.teraslice.terascope.io/stateful"
APP_NAME: Final = "teraslice"

_HASH_LENGTH = 10
_NOT_JOB_NAME_CHAR = re.compile(r"[^a-zA-Z0-9\-.]")
_NOT_CLUSTER_CHAR = re.compile(r"[^a-zA-Z0-9_\-.]")
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9\-._]")
_EDGE_JUNK = re.compile(r"\A[^A-Za-z0-9]+|[^A-Za-z0-9]+\Z")


def _short_hash(*parts: str) -> str:
    # "\x00" cannot be confused with content; surrogatepass accepts lone surrogates from JSON.
    data = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:_HASH_LENGTH]


def _js_replace(pattern: re.Pattern[str], replacement: str, text: str) -> str:
    """``text.replace(/pattern/g, replacement)`` counting UTF-16 code units like JavaScript."""
    return pattern.sub(lambda m: replacement * (2 if ord(m.group()) > 0xFFFF else 1), text)


def _with_hash(sanitized: str, original: str, limit: int = 63) -> str:
    """A valid label value: ``sanitized`` cut and trimmed to alphanumeric edges, plus a hash."""
    slug = _EDGE_JUNK.sub("", sanitized[: limit - _HASH_LENGTH - 1])
    digest = _short_hash(original)
    return f"{slug}-{digest}" if slug else digest


def teraslice_job_name_label(name: str) -> str:
    """Teraslice's ``jobNameLabel`` exactly (may be invalid: e.g. end in ``-`` after the cut)."""
    label = _js_replace(_NOT_JOB_NAME_CHAR, "-", name.lower())
    if label and not ("a" <= label[0] <= "z"):
        label = "a" + label[1:]
    if label and not (label[-1].isascii() and label[-1].isalnum()):
        label = label[:-1] + "0"
    return label[:63]


@lru_cache(maxsize=4096)
def job_name_label(name: str) -> str:
    """Value of the ``teraslice.terascope.io/jobName`` label."""
    label = teraslice_job_name_label(name)
    return label if is_label_value(label) else _with_hash(label.replace(".", "-"), name)


@lru_cache(maxsize=256)
def cluster_name_label(name: str) -> str:
    """Value of ``app.kubernetes.io/instance`` (Teraslice: non ``[a-zA-Z0-9_-.]`` -> ``_``, cut to 63)."""
    label = _js_replace(_NOT_CLUSTER_CHAR, "_", name)[:63]
    return label if is_label_value(label) else _with_hash(label, name)


@lru_cache(maxsize=4096)
def label_value(value: str) -> str:
    """Any string as a label value: unchanged when valid (ids, UUIDs), else slug + hash."""
    if is_label_value(value):
        return value
    return _with_hash(_js_replace(_NOT_LABEL_CHAR, "-", value), value)


def _teraslice_label_part(text: str) -> str:
    return _js_replace(_NOT_LABEL_CHAR, "-", text)[:63]


def job_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """The job's ``labels`` as Kubernetes labels; see :func:`_job_labels` (cached per label set)."""
    return dict(_job_labels(tuple(labels.items())))


@lru_cache(maxsize=1024)
def _job_labels(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The job's ``labels`` as ``job.teraslice.terascope.io/<key>: <value>``, in order.

    Keys and values are sanitised as Teraslice does (other characters -> ``-``, cut to
    63); a result that is still invalid, or a key that would collide with another one,
    gets the hash suffix instead.
    """
    labels = dict(items)
    sanitized = {key: _teraslice_label_part(key) for key in labels}
    owners: dict[str, list[str]] = {}
    for key, name in sanitized.items():
        owners.setdefault(name, []).append(key)
    result: dict[str, str] = {}
    for key, value in labels.items():
        name = sanitized[key]
        clash = len(owners[name]) > 1 and name != key
        if clash or not (name and is_label_value(name)):
            name = _with_hash(name, key)
        text = _teraslice_label_part(value)
        result[JOB_LABEL_PREFIX + name] = text if is_label_value(text) else _with_hash(text, value)
    return tuple(result.items())


@dataclass(frozen=True, slots=True)
class Names:
    """The per-execution object names (Teraslice: per job: job name + job-id prefix)."""

    job_name_label: str
    #: execution-controller Job (and its container)
    job: str
    #: execution-controller Service (``svc-`` + ``job``)
    service: str
    #: worker Deployment (and its container)
    deployment: str


@lru_cache(maxsize=4096)
def resource_names(job_name: str, job_id: str) -> Names:
    """Names for a job's objects; see the module docstring for the guarantees."""
    teraslice_label = teraslice_job_name_label(job_name)
    core = f"{teraslice_label[:35]}-{job_id[:13]}"
    if not (is_dns_label(f"ts-exc-{core}") and is_dns_1035_label(f"svc-ts-exc-{core}")):
        # "svc-ts-exc-" (11) + 26 + "-" + 13 + "-" + 10 = 62 characters at most.
        slug = teraslice_label.replace(".", "-")[:26]
        job_part = re.sub(r"[^a-z0-9-]", "-", job_id.lower())[:13]
        core = f"{slug}-{job_part}-{_short_hash(job_name, job_id)}"
        core = re.sub(r"-{2,}", "-", core).strip("-")
    controller = f"ts-exc-{core}"
    return Names(
        job_name_label=job_name_label(job_name),
        job=controller,
        service=f"svc-{controller}",
        deployment=f"ts-wkr-{core}",
    )


@lru_cache(maxsize=1024)
def volume_name(claim_name: str) -> str:
    """A pod volume name (RFC 1123 label) for a PVC called ``claim_name`` (a subdomain)."""
    if is_dns_label(claim_name):
        return claim_name
    slug = re.sub(r"[^a-z0-9-]", "-", claim_name.lower())
    return _with_hash(slug, claim_name).lower()


def selector_for(component: Component, ex_id: str) -> str:
    """Label selector of one execution's controller or worker objects (Teraslice's)."""
    return f"{COMPONENT_LABEL}={component},{EX_ID_LABEL}={label_value(ex_id)}"


def job_selector(job_id: str, component: Component | None = None) -> str:
    """Selector of every object of a job (orphan check), optionally of one component."""
    selector = f"{JOB_ID_LABEL}={label_value(job_id)}"
    return f"{COMPONENT_LABEL}={component},{selector}" if component else selector


def cluster_selector(cluster_name: str) -> str:
    """Selector of every pod of the cluster (cluster-state polling, anti-affinity)."""
    return f"{NAME_LABEL}={APP_NAME},{INSTANCE_LABEL}={cluster_name_label(cluster_name)}"

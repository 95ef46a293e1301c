"""Job validation as the master uses it: a callable from a posted spec to the validated config.

The master never validates by itself: :func:`job_validator` wraps
``teraslice_k8s.models.job.validate_job`` (the job schema) with the runtime's operation
validator (``teraslice_k8s.runtime.operations.validate_operations``: unknown ``_op``, bad op
options, defaults filled). Both are imported when the validator is built, keeping the
master's layering ``master -> runtime -> models``.

Contract of a :data:`JobValidator`: it never mutates its input; it returns a
:class:`ValidatedJob` or raises :class:`teraslice_k8s.errors.ValidationError` naming every
broken rule by field path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from teraslice_k8s.master.assets import AssetService
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.models.job import ValidatedJob

__all__ = ["JOB_METADATA_KEYS", "JobValidator", "SpecPreparer", "ValidatedJob", "job_spec", "job_validator"]

#: Keys of a stored job record that are metadata, not part of the job spec.
JOB_METADATA_KEYS = frozenset({"job_id", "_context", "_created", "_updated", "_deleted", "_deleted_on"})


class JobValidator(Protocol):
    """``validate(spec, strict=None)``: ``strict`` makes unknown keys problems (None: the
    cluster's ``teraslice.strict_job_keys``)."""

    def __call__(self, spec: Mapping[str, Any], *, strict: bool | None = None) -> ValidatedJob: ...


#: Adds the Prometheus metrics port to ``external_ports`` (Teraslice persists it in the job).
SpecPreparer = Callable[[Mapping[str, Any]], dict[str, Any]]


def job_spec(record: Mapping[str, Any]) -> dict[str, Any]:
    """The job spec of a stored job record (metadata keys removed)."""
    return {k: v for k, v in record.items() if k not in JOB_METADATA_KEYS}


def job_validator(config: SysConfig, assets: AssetService | None = None) -> JobValidator:
    """Build the validator for one cluster ``config`` from the models' and runtime's functions.

    With ``assets``, the job's ``assets`` entries are resolved to ids first (a 404
    :class:`~teraslice_k8s.master.errors.ApiError` when one matches nothing), those assets are
    loaded, and the operations are looked up and validated with them in scope; the validated
    config then holds the resolved ids (what the execution record and its processes get)."""
    from teraslice_k8s.runtime.operations.asset_ops import asset_scope
    from teraslice_k8s.runtime.operations.validation import validate_job_spec

    default_strict = config.teraslice.strict_job_keys

    def validate(spec: Mapping[str, Any], *, strict: bool | None = None) -> ValidatedJob:
        strict_keys = default_strict if strict is None else strict
        entries = spec.get("assets")
        if assets is None or not (isinstance(entries, list) and all(isinstance(e, str) for e in entries)):
            return validate_job_spec(spec, config, strict=strict_keys)
        ids = assets.resolve(entries)
        with asset_scope(assets.load(ids)):
            validated = validate_job_spec(spec, config, strict=strict_keys)
        validated.config["assets"] = ids
        return validated

    return validate


def spec_preparer(config: SysConfig) -> SpecPreparer:
    """Teraslice's submit step 3: append the metrics port to ``external_ports`` when enabled."""
    from teraslice_k8s.models.job import apply_prom_metrics_port

    def prepare(spec: Mapping[str, Any]) -> dict[str, Any]:
        return apply_prom_metrics_port(spec, config)

    return prepare

"""``teraslice-k8s render``: print the manifests the master would create for one execution.

    teraslice-k8s render --config teraslice.yaml --job job.json [--job-id ID] [--ex-id ID]
    teraslice-k8s render --config teraslice.yaml --execution execution.json
        [--output yaml|json] [--owner-uid UID]

Output: the execution-controller Job, its Service and the worker Deployment, as YAML
documents in that order, or (``--output json``) one JSON list. Invalid input (config, job,
execution): exit 2, one ``<field path>: <rule>`` line per problem on stderr, nothing on stdout.

``--job`` simulates a submit: the job is validated (schema and operations) and the
Prometheus port rule applied, then an execution record is built like the master's (status
``scheduling``). Without ``--job-id``/``--ex-id`` the ids are UUID5s of the job's canonical
JSON, so the same job always renders the same manifests. ``--execution`` takes a stored
execution record (job fields plus ``job_id`` and ``ex_id``) as it is.

No Job exists offline, so the ownerReferences carry the controller Job's name and a uid
that is ``--owner-uid`` or else a deterministic UUID5 of ``<namespace>/<Job name>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from teraslice_k8s import TERASLICE_COMPAT_VERSION
from teraslice_k8s.cli.output import description
from teraslice_k8s.errors import Problem, ValidationError

EXIT_OK, EXIT_INVALID = 0, 2


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print an execution's Kubernetes manifests (Job, Service, Deployment)",
        description=description(__doc__),
    )
    parser.add_argument("--config", required=True, help="cluster config file (teraslice.yaml)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--job", help="job definition (JSON), validated like a submit")
    source.add_argument("--execution", help="stored execution record (JSON) with job_id and ex_id")
    parser.add_argument("--job-id", help="job id (default: UUID5 of the job's JSON; --job only)")
    parser.add_argument("--ex-id", help="execution id (default: UUID5 of the job id; --job only)")
    parser.add_argument("--owner-uid", help="uid of the controller Job for ownerReferences")
    parser.add_argument("--output", choices=("yaml", "json"), default="yaml", help="output format (yaml)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse a --job with keys no schema declares (they are warnings otherwise)",
    )
    parser.set_defaults(handler=run)


def _read_json(path: str, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationError(
            [Problem("", f"cannot read {what} {path}: {exc.strerror}")], subject=what
        ) from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            [Problem("", f"{what} {path} is not valid JSON: {exc}")], subject=what
        ) from None


def default_job_id(job: Mapping[str, Any]) -> str:
    """A deterministic job id for offline rendering: UUID5 of the job's canonical JSON."""
    canonical = json.dumps(job, sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"teraslice-k8s:job:{canonical}"))


def default_ex_id(job_id: str) -> str:
    """A deterministic execution id for offline rendering: UUID5 of the job id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"teraslice-k8s:ex:{job_id}"))


def execution_from_job(job: Mapping[str, Any], job_id: str, ex_id: str) -> dict[str, Any]:
    """The execution record the master would hold when it creates the controller Job."""
    record = {key: value for key, value in job.items() if key not in ("slicer_hostname", "slicer_port")}
    record.update(
        job_id=job_id,
        ex_id=ex_id,
        metadata={},
        _status="scheduling",
        _context="ex",
        _has_errors=False,
        _slicer_stats={},
        _failureReason="",
        teraslice_version=TERASLICE_COMPAT_VERSION,
    )
    return record


def build_execution(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    """Read ``--job`` (validate, simulate submit) or ``--execution`` into an execution record."""
    from teraslice_k8s.cli.output import print_warnings
    from teraslice_k8s.models.job import apply_prom_metrics_port
    from teraslice_k8s.runtime.operations.validation import validate_job_spec

    if args.execution:
        if args.job_id or args.ex_id:
            raise ValidationError([Problem("", "--job-id/--ex-id only apply to --job")], subject="arguments")
        record = _read_json(args.execution, "execution")
        if not isinstance(record, Mapping):
            raise ValidationError([Problem("", "an execution must be a JSON object")], subject="execution")
        missing = [
            Problem(key, "is required") for key in ("job_id", "ex_id") if not isinstance(record.get(key), str)
        ]
        if missing:
            raise ValidationError(missing, subject="execution")
        validate_job_spec(record, config)
        return dict(record)
    raw = _read_json(args.job, "job")
    validated = validate_job_spec(raw, config, strict=getattr(args, "strict", False))
    print_warnings(validated.warnings, f"{args.job}: ")
    job = apply_prom_metrics_port(validated.config, config)
    job_id = args.job_id or default_job_id(raw)
    return execution_from_job(job, job_id, args.ex_id or default_ex_id(job_id))


def manifests_to_yaml(manifests: list[dict[str, Any]]) -> str:
    """YAML documents that load back to exactly ``manifests``.

    Non-ASCII is escaped (``allow_unicode=False``): PyYAML writes NEL, LINE SEPARATOR and
    PARAGRAPH SEPARATOR raw otherwise, and reading them back turns them into line breaks.
    """
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump_all(manifests, Dumper=dumper, sort_keys=False, allow_unicode=False, width=120)


def run(args: argparse.Namespace) -> int:
    from teraslice_k8s.kubernetes.render import OwnerRef, default_owner, render_execution
    from teraslice_k8s.models.config import load_config

    try:
        config = load_config(args.config)
        if not config.teraslice.is_kubernetes:
            message = "must be kubernetes or kubernetesV2 to render Kubernetes manifests"
            raise ValidationError([Problem("teraslice.cluster_manager_type", message)], subject="config")
        execution = build_execution(args, config)
        owner = default_owner(execution, config)
        if args.owner_uid:
            owner = OwnerRef(owner.name, args.owner_uid)
        manifests = render_execution(execution, config, owner)
    except ValidationError as exc:
        for line in exc.lines:
            print(f"{exc.subject}: {line}" if line else exc.subject, file=sys.stderr)
        return EXIT_INVALID
    if args.output == "json":
        sys.stdout.write(json.dumps(manifests, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(manifests_to_yaml(manifests))
    return EXIT_OK

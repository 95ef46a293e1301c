"""Property tests: hostile strings anywhere a user can put one.

For job names, cluster names, labels, env values, targets and volume names made of quotes,
newlines, ``{{``, ``#``, ``: ``, NEL, emoji, unicode and 300-character runs (and Secret
references with hostile Secret names), either the input is refused with field-path
problems, or all three manifests render and: the output parses
(JSON and YAML), values round-trip exactly (EX payload, env values, target keys/values, claim
names), no key appears that the input did not ask for, and every name and label is valid.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from teraslice_k8s.cli.render import manifests_to_yaml
from teraslice_k8s.errors import ValidationError
from teraslice_k8s.kubernetes.render import render_execution
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.models.job import validate_job
from teraslice_k8s.models.schema import is_dns_1035_label, is_dns_label, is_label_value, is_qualified_name

from .cases import EX_ID, JOB_ID, OWNER

HOSTILE = [
    '"', "'", "\\", "\n", "\r\n", "{{", "}}", "{% if %}", "#", ": ", "- ", "---", "\x85", "\u2028", "😀",
    "É", "ß", "İ", "*alias", "&anchor", "null", "yes", "~", "$&", "\t", "\x00", "a" * 300,
]  # fmt: skip
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.lists(st.sampled_from([*HOSTILE, "a", "Z", "0", "-", ".", "_", "/"]), min_size=1, max_size=12).map(
        "".join
    ),
    st.text(min_size=1, max_size=300),
)
label_value_text = st.from_regex(r"\A[a-z0-9]([-a-z0-9_.]{0,20}[a-z0-9])?\Z")
claim_name = st.from_regex(r"\A[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?\Z")
secret_key = st.from_regex(r"\A[-._a-zA-Z0-9]{1,40}\Z").filter(lambda s: s not in (".", ".."))
# Cluster names the config accepts (lowercase, none of \ / * ? " < > | #, no leading - _ +),
# still full of quotes, newlines, template syntax and emoji.
cluster_name = (
    st.one_of(hostile_text, st.text(min_size=1, max_size=300))
    .map(lambda s: "".join(c for c in s.lower() if c not in '\\/*?"<>|#').lstrip("-_+"))
    .filter(lambda s: bool(s) and s == s.lower())
)


def mostly_valid(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Valid three times out of four, so most examples get past validation to the renderer."""
    return st.one_of(valid, valid, valid, hostile_text)


NEWEST = kv_utils.latest_version()
STANDARD_LABELS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/component",
    "teraslice.terascope.io/exId",
    "teraslice.terascope.io/jobId",
    "teraslice.terascope.io/jobName",
    "app.kubernetes.io/instance",
}


@st.composite
def inputs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    teraslice: dict[str, Any] = {"cluster_manager_type": "kubernetes", "name": draw(cluster_name)}
    if draw(st.booleans()):
        ref = {"name": draw(mostly_valid(claim_name)), "key": draw(secret_key)}
        teraslice["kubernetes_env_secret_refs"] = {"HOSTILE_SECRET": ref}
    job: dict[str, Any] = {
        "name": draw(hostile_text),
        "operations": [{"_op": "data_generator", "size": 10}, {"_op": "noop"}],
        "env_vars": {"HOSTILE": draw(hostile_text)},
        "labels": draw(st.dictionaries(hostile_text, hostile_text, max_size=3)),
        "targets": [
            {
                "key": draw(mostly_valid(label_value_text)),
                "value": draw(mostly_valid(label_value_text)),
                "constraint": draw(st.sampled_from(["required", "preferred", "accepted"])),
            }
            for _ in range(draw(st.integers(0, 2)))
        ],
        "volumes": [{"name": draw(mostly_valid(claim_name)), "path": "/data"}],
    }
    return teraslice, job


def expected_pod_keys(job: dict[str, Any], config: SysConfig, controller: bool) -> set[str]:
    keys = {"containers", "volumes", "terminationGracePeriodSeconds", "securityContext"}
    constraints = {t["constraint"] for t in job["targets"]}
    if controller:
        keys.add("restartPolicy")
    if constraints & {"required", "preferred"}:
        keys.add("affinity")
    if "accepted" in constraints:
        keys.add("tolerations")
    assert not config.teraslice.kubernetes_image_pull_secret
    return keys


def check_manifest(doc: dict[str, Any], job: dict[str, Any], config: SysConfig) -> None:
    assert json.loads(json.dumps(doc)) == doc
    assert yaml.load(manifests_to_yaml([doc]), Loader=yaml.CSafeLoader) == doc
    meta = doc["metadata"]
    for key, value in meta["labels"].items():
        assert is_qualified_name(key), key
        assert is_label_value(value), value
    if doc["kind"] == "Service":
        assert set(doc) == {"kind", "apiVersion", "metadata", "spec"}
        assert set(doc["spec"]) == {"selector", "ports"}
        assert is_dns_1035_label(meta["name"])
        return
    assert is_dns_label(meta["name"])
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}
    user_labels = {k for k in meta["labels"] if k.startswith("job.teraslice.terascope.io/")}
    expected_user = len(job["labels"]) + (doc["kind"] == "Job")
    assert set(meta["labels"]) - user_labels == STANDARD_LABELS and len(user_labels) == expected_user
    pod = doc["spec"]["template"]["spec"]
    assert set(pod) == expected_pod_keys(job, config, doc["kind"] == "Job")
    (container,) = pod["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert len(env) == len(container["env"]), "duplicate env names"
    assert env["HOSTILE"]["value"] == job["env_vars"]["HOSTILE"]
    refs = config.teraslice.kubernetes_env_secret_refs
    if refs:
        ref = refs["HOSTILE_SECRET"]
        secret = {"secretKeyRef": {"name": ref.name, "key": ref.key}}
        assert container["env"][-1] == {"name": "HOSTILE_SECRET", "valueFrom": secret}
    payload = json.loads(base64.b64decode(env["EX"]["value"]).decode("utf-8"))
    assert payload["name"] == job["name"] and payload["env_vars"] == job["env_vars"]
    assert payload["labels"] == job["labels"] and payload["targets"] == job["targets"]
    for volume in pod["volumes"]:
        assert is_dns_label(volume["name"])
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == [v["name"] for v in job["volumes"]]
    text = json.dumps(pod.get("affinity", {})) + json.dumps(pod.get("tolerations", []))
    for target in job["targets"]:
        assert json.dumps(target["key"]) in text and json.dumps(target["value"]) in text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs())
def test_hostile_inputs_render_safely_or_are_refused(
    cached_k8s_schemas: None, data: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    teraslice, raw = data
    try:
        config = parse_config({"teraslice": teraslice})
    except ValidationError as exc:
        allowed = ("teraslice.name: ", "teraslice.kubernetes_env_secret_refs.HOSTILE_SECRET.")
        assert all(line.startswith(allowed) for line in exc.lines)
        event("cluster config refused")
        assume(False)
        return
    try:
        job = validate_job(raw, config).config
    except ValidationError as exc:
        assert exc.problems and all(p.path and p.message for p in exc.problems)
        event("job refused")
        return
    event("rendered")
    record = {**job, "job_id": JOB_ID, "ex_id": EX_ID}
    manifests = render_execution(record, config, OWNER)
    assert [m["kind"] for m in manifests] == ["Job", "Service", "Deployment"]
    for manifest in manifests:
        check_manifest(manifest, job, config)
        kubernetes_validate.validate(manifest, NEWEST, strict=True)


@settings(max_examples=100, deadline=None)
@given(name=hostile_text, cluster=hostile_text, value=hostile_text)
def test_names_and_labels_always_valid(name: str, cluster: str, value: str) -> None:
    from teraslice_k8s.kubernetes.names import cluster_name_label, job_labels, label_value, resource_names

    names = resource_names(name, value)
    assert is_dns_label(names.job) and is_dns_label(names.deployment) and is_dns_1035_label(names.service)
    assert is_label_value(names.job_name_label) and is_label_value(cluster_name_label(cluster))
    assert is_label_value(label_value(value))
    for key, label in job_labels({name: value, cluster: value}).items():
        assert is_qualified_name(key) and is_label_value(label)

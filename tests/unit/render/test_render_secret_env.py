"""``teraslice.kubernetes_env_secret_refs``: Secret-backed env in the controller Job and worker
Deployment (whole manifests against golden files), and the rules that keep a job from replacing
a Secret-backed variable with a plain value."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.kubernetes.render import (
    render_controller_job,
    render_controller_service,
    render_execution,
    render_worker_deployment,
    worker_execution,
)
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.models.job import validate_job

from .cases import EX_ID, JOB_ID, OWNER, config, container, execution
from .conftest import Golden

#: What the chart writes for Elasticsearch credentials plus a user `secretEnv` entry.
CHART_REFS: dict[str, Any] = {
    "TERASLICE_ES_PASSWORD": {"name": "ts-teraslice-elasticsearch", "key": "password"},
    "TERASLICE_ES_USERNAME": {"name": "ts-teraslice-elasticsearch", "key": "username"},
    "KAFKA_TOKEN": {"name": "kafka-credentials", "key": "token", "optional": True},
}

SECRET_ENV = [
    {"name": "TERASLICE_ES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "ts-teraslice-elasticsearch", "key": "password"}}},  # noqa: E501
    {"name": "TERASLICE_ES_USERNAME", "valueFrom": {"secretKeyRef": {"name": "ts-teraslice-elasticsearch", "key": "username"}}},  # noqa: E501
    {"name": "KAFKA_TOKEN", "valueFrom": {"secretKeyRef": {"name": "kafka-credentials", "key": "token", "optional": True}}},  # noqa: E501
]  # fmt: skip

CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # Teraslice's own fixture (cluster and job env_vars, no memory) plus the chart's references.
    "secret-env-teraslice-fixture": ({"kubernetes_env_secret_refs": CHART_REFS}, {}),
    # A computed NODE_OPTIONS (job memory) and a Secret-backed NODE_OPTIONS on another cluster.
    "secret-env-memory": (
        {"kubernetes_env_secret_refs": CHART_REFS, "env_vars": {"TZ": "UTC"}},
        {"memory": 2147483648, "env_vars": {"EXAMPLE": "job"}},
    ),
    "secret-env-node-options-from-secret": (
        {"kubernetes_env_secret_refs": {"NODE_OPTIONS": {"name": "node-flags", "key": "options"}}},
        {"memory": 2147483648, "env_vars": {}},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_secret_env_golden(case: str, golden: Golden) -> None:
    settings, fields = CASES[case]
    cfg = config(**copy.deepcopy(settings))
    record = execution(**copy.deepcopy(fields))
    before = copy.deepcopy(record)
    manifests = render_execution(record, cfg, OWNER)
    assert record == before, "render must not mutate its input"
    golden.check(case, manifests)


def test_secret_refs_follow_every_value_entry_in_both_pods() -> None:
    cfg = config(kubernetes_env_secret_refs=CHART_REFS)
    record = execution(memory=2147483648)
    for manifest in (
        render_controller_job(record, cfg),
        render_worker_deployment(worker_execution(record, cfg), cfg, OWNER),
    ):
        env = container(manifest)["env"]
        names = [item["name"] for item in env]
        assert names[:3] == ["NODE_TYPE", "EX", "POD_IP"]
        assert names[3:6] == ["NODE_OPTIONS", "FOO", "EXAMPLE"]
        assert env[6:] == SECRET_ENV
    service = render_controller_service(record, cfg, OWNER)
    assert "TERASLICE_ES" not in str(service)


def test_secret_backed_node_options_replaces_the_computed_one() -> None:
    cfg = config(kubernetes_env_secret_refs={"NODE_OPTIONS": {"name": "node-flags", "key": "options"}})
    env = container(render_controller_job(execution(memory=2147483648), cfg))["env"]
    node_options = [item for item in env if item["name"] == "NODE_OPTIONS"]
    assert node_options == [
        {"name": "NODE_OPTIONS", "valueFrom": {"secretKeyRef": {"name": "node-flags", "key": "options"}}}
    ]


def test_without_refs_the_env_is_unchanged() -> None:
    env = container(render_controller_job(execution(), config()))["env"]
    assert [item["name"] for item in env] == ["NODE_TYPE", "EX", "POD_IP", "NODE_OPTIONS", "FOO", "EXAMPLE"]
    assert all("secretKeyRef" not in item.get("valueFrom", {}) for item in env)


@pytest.mark.parametrize("render", ["job", "deployment"])
def test_a_job_cannot_replace_a_secret_backed_variable(render: str) -> None:
    cfg = config(kubernetes_env_secret_refs=CHART_REFS)
    record = execution(env_vars={"TERASLICE_ES_PASSWORD": "plain", "FOO": "x", "KAFKA_TOKEN": "t"})
    with pytest.raises(ValidationError) as info:
        if render == "job":
            render_controller_job(record, cfg)
        else:
            render_worker_deployment(worker_execution(record, cfg), cfg, OWNER)
    assert list(info.value.lines) == [
        "env_vars.TERASLICE_ES_PASSWORD: is taken from a Secret by the cluster "
        "(teraslice.kubernetes_env_secret_refs) and cannot be set by a job",
        "env_vars.KAFKA_TOKEN: is taken from a Secret by the cluster "
        "(teraslice.kubernetes_env_secret_refs) and cannot be set by a job",
    ]


def test_validated_job_renders_with_chart_like_config() -> None:
    cfg = parse_config(
        {
            "teraslice": {
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_namespace": "ts-dev1",
                "kubernetes_env_secret_refs": CHART_REFS,
            }
        }
    )
    job = validate_job(
        {
            "name": "secrets",
            "workers": 1,
            "operations": [{"_op": "data_generator", "size": 1}, {"_op": "noop"}],
        },
        cfg,
    ).config
    manifests = render_execution({**job, "job_id": JOB_ID, "ex_id": EX_ID}, cfg, OWNER)
    for manifest in (manifests[0], manifests[2]):
        assert container(manifest)["env"][-3:] == SECRET_ENV

"""Job validation: defaults and key order, warnings, prometheus rule, one test per rule."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.models.job import OVERRIDES_DISABLED_MESSAGE, apply_prom_metrics_port, validate_job

K8S = parse_config({"teraslice": {"cluster_manager_type": "kubernetesV2"}})
K8S_OVERRIDES = parse_config(
    {"teraslice": {"cluster_manager_type": "kubernetes", "kubernetes_overrides_enabled": True}}
)
LOCAL = parse_config({"teraslice": {"cluster_manager_type": "local"}})
OPS = [{"_op": "data_generator", "size": 10}, {"_op": "noop"}]


def job(**fields: Any) -> dict[str, Any]:
    return {"name": "j", "operations": copy.deepcopy(OPS), **fields}


def problems(raw: dict[str, Any], config: SysConfig = K8S) -> list[str]:
    with pytest.raises(ValidationError) as info:
        validate_job(raw, config)
    return list(info.value.lines)


def test_posted_keys_first_then_defaults_unknown_kept() -> None:
    raw = {"operations": OPS, "zz_custom": [1], "name": "n", "workers": 3}
    config = validate_job(raw, K8S).config
    assert list(config)[:4] == ["operations", "zz_custom", "name", "workers"]
    assert config["zz_custom"] == [1]
    assert list(config)[4:] == [
        "lifecycle", "slicers", "max_retries", "probation_window", "analytics", "active", "assets",
        "autorecover", "apis", "env_vars", "log_level", "stateful", "labels",
        "targets", "ephemeral_storage", "pod_spec_override", "volumes",
    ]  # fmt: skip
    assert (
        config["lifecycle"] == "once" and config["max_retries"] == 3 and config["probation_window"] == 300000
    )


def test_local_cluster_has_no_kubernetes_defaults_and_keeps_their_keys() -> None:
    config = validate_job(job(targets="anything"), LOCAL).config
    assert config["targets"] == "anything"
    assert "pod_spec_override" not in config and "volumes" not in config


def test_input_is_not_mutated_and_values_normalised() -> None:
    raw = job(labels={"a": 1, "b": True, "c": 2.0, "d": 0.5, "e": "x"}, probation_window="2 minutes")
    before = copy.deepcopy(raw)
    config = validate_job(raw, K8S).config
    assert raw == before
    assert config["labels"] == {"a": "1", "b": "true", "c": "2", "d": "0.5", "e": "x"}
    assert config["probation_window"] == 120000


def test_deprecation_warnings_for_old_resources() -> None:
    result = validate_job(job(cpu=1, memory=2), K8S)
    assert result.warnings == [
        {
            "type": "JobValidation",
            "reason": {
                "type": "jobProperty",
                "kind": "deprecation",
                "reason": {
                    "field": field,
                    "description": f'"{field}" on a job is deprecated and should use "resources_requests_{field}" instead',  # noqa: E501
                },
            },
        }
        for field in ("cpu", "memory")
    ]
    assert validate_job(job(), K8S).warnings == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "name: must not be empty"),
        ({"name": 5}, "name: must be a string"),
        ({"lifecycle": "forever"}, "lifecycle: must be one of once, persistent"),
        ({"workers": 0}, "workers: must be >= 1"),
        ({"workers": 1.5}, "workers: must be an integer"),
        ({"slicers": 0}, "slicers: must be >= 1"),
        ({"max_retries": -1}, "max_retries: must be >= 0"),
        (
            {"probation_window": "later"},
            'probation_window: must be a duration: milliseconds or a string like "1 minute"',
        ),
        ({"analytics": "true"}, "analytics: must be a boolean"),
        ({"assets": "standard"}, "assets: must be an array"),
        (
            {"operations": [{"_op": "noop"}]},
            "operations: must have at least 2 items (a reader and a processor)",
        ),
        ({"operations": [{"_op": "a"}, {"size": 1}]}, "operations[1]._op: is required"),
        ({"operations": [{"_op": "a"}, {"_op": 3}]}, "operations[1]._op: must be a string"),
        ({"operations": [{"_op": "a"}, "noop"]}, "operations[1]: must be an object"),
        ({"apis": [{"_name": "x"}, {"_name": "x"}]}, 'apis[1]._name: duplicate value "x"'),
        ({"apis": [{}]}, "apis[0]._name: is required"),
        ({"env_vars": {"A": 1}}, "env_vars.A: must be a string"),
        ({"env_vars": {"A": ""}}, "env_vars.A: must not be empty"),
        (
            {"env_vars": {"NODE_TYPE": "x"}},
            "env_vars.NODE_TYPE: is set by Teraslice and cannot be overridden",
        ),
        (
            {"env_vars": {"A B": "x"}},
            "env_vars.A B: must be a valid environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)",
        ),
        ({"log_level": "loud"}, "log_level: must be one of trace, debug, info, warn, error, fatal"),
        ({"stateful": 1}, "stateful: must be a boolean"),
        ({"labels": ["a"]}, "labels: must be an object"),
        ({"labels": {"a": None}}, "labels.a: must be a string, number or boolean"),
        ({"labels": {"a": {"b": 1}}}, "labels.a: must be a string, number or boolean"),
        ({"labels": {"a": ""}}, "labels.a: must not be empty"),
        ({"targets": {"key": "a"}}, "targets: must be an array"),
        ({"targets": [{"value": "west"}]}, "targets[0].key: is required"),
        ({"targets": [{"key": "zone", "value": 42}]}, "targets[0].value: must be a string"),
        (
            {
                "targets": [
                    {"key": "zone", "value": "west"},
                    {"key": "zone", "value": "west", "constraint": "Required"},
                ]
            },
            "targets[1].constraint: must be one of required, preferred, accepted",
        ),
        (
            {"targets": [{"key": "bad key", "value": "west"}]},
            'targets[0].key: must be a valid label key (a qualified name such as "zone" or "example.com/zone")',  # noqa: E501
        ),
        (
            {"targets": [{"key": "zone", "value": "west coast"}]},
            "targets[0].value: must be a valid label value (1 to 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)",
        ),
        ({"cpu": "1"}, "cpu: must be a number"),
        ({"memory": -5}, "memory: must be >= 0"),
        ({"cpu_execution_controller": True}, "cpu_execution_controller: must be a number"),
        ({"resources_limits_memory": "1Gi"}, "resources_limits_memory: must be a number"),
        (
            {"cpu": 1, "resources_requests_cpu": 1},
            "cpu: cpu/memory can't be mixed with resource settings of the same type.",
        ),
        (
            {"memory": 1, "resources_limits_memory": 1},
            "memory: cpu/memory can't be mixed with resource settings of the same type.",
        ),
        (
            {"resources_requests_cpu": 2, "resources_limits_cpu": 1},
            "resources_requests_cpu: must not be greater than resources_limits_cpu",
        ),
        ({"ephemeral_storage": "yes"}, "ephemeral_storage: must be a boolean"),
        ({"external_ports": [45680]}, "external_ports[0]: 45680 is reserved for the execution controller"),
        (
            {"external_ports": [{"name": "slicer", "port": 45680}]},
            "external_ports[0].port: 45680 is reserved for the execution controller",
        ),
        ({"external_ports": [0]}, "external_ports[0]: must be a port number between 1 and 65535"),
        ({"external_ports": ["9090"]}, "external_ports[0]: must be a port number or an object {name, port}"),
        ({"external_ports": [{"port": 1}]}, "external_ports[0].name: is required"),
        (
            {"external_ports": [{"name": "Metrics_Port", "port": 1}]},
            "external_ports[0].name: must be a valid port name (at most 15 lowercase letters, digits and '-', "  # noqa: E501
            "with a letter)",
        ),
        ({"external_ports": [9090, {"name": "m", "port": 9090}]}, "external_ports[1]: duplicate port 9090"),
        ({"pod_spec_override": []}, "pod_spec_override: must be an object"),
        ({"pod_spec_override": {"initContainers": []}}, f"pod_spec_override: {OVERRIDES_DISABLED_MESSAGE}"),
        ({"volumes": [{"name": "data"}]}, "volumes[0].path: is required"),
        ({"volumes": [{"path": "/data"}]}, "volumes[0].name: is required"),
        (
            {"volumes": [{"name": "Data_1", "path": "/data"}]},
            "volumes[0].name: must be a valid PersistentVolumeClaim name (lowercase RFC 1123 subdomain)",
        ),
        (
            {"volumes": [{"name": "config", "path": "/data"}]},
            'volumes[0].name: "config" is used by Teraslice itself',
        ),
        ({"volumes": [{"name": "d", "path": "data"}]}, "volumes[0].path: must be an absolute path"),
        (
            {"volumes": [{"name": "d", "path": "/app/config"}]},
            'volumes[0].path: "/app/config" is used by Teraslice itself',
        ),
        (
            {"volumes": [{"name": "d", "path": "/a"}, {"name": "d", "path": "/b"}]},
            'volumes[1].name: duplicate value "d"',
        ),
        (
            {"volumes": [{"name": "d", "path": "/a"}, {"name": "e", "path": "/a"}]},
            'volumes[1].path: duplicate value "/a"',
        ),
        ({"kubernetes_image": ""}, "kubernetes_image: must not be empty"),
        ({"prom_metrics_enabled": "true"}, "prom_metrics_enabled: must be a boolean"),
        ({"prom_metrics_port": 0}, "prom_metrics_port: must be >= 1"),
    ],
)
def test_each_job_rule_has_its_message(fields: dict[str, Any], message: str) -> None:
    assert problems(job(**fields)) == [message]


def test_override_items_of_named_lists_need_names() -> None:
    raw = job(
        pod_spec_override={
            "containers": [{"image": "x"}, {"image": "y"}],
            "volumes": [{"name": "v", "emptyDir": {}}],
        }
    )
    assert problems(raw, K8S_OVERRIDES) == [
        "pod_spec_override.containers[1]: must be an object with a name (these lists merge by name; only "
        'containers[0] may omit it, to address the main container, or name it "teraslice")'
    ]
    assert validate_job(job(pod_spec_override={"initContainers": []}), K8S_OVERRIDES).config[
        "pod_spec_override"
    ] == {"initContainers": []}


def test_every_problem_is_reported_in_document_order() -> None:
    raw = {
        "name": "",
        "targets": [{"key": "zone", "value": "west"}, {"key": "k", "value": "v", "constraint": "sometimes"}],
        "operations": [{"_op": "a"}],
        "cpu": 1,
        "resources_limits_cpu": 2,
    }
    assert problems(raw) == [
        "name: must not be empty",
        "targets[1].constraint: must be one of required, preferred, accepted",
        "operations: must have at least 2 items (a reader and a processor)",
        "cpu: cpu/memory can't be mixed with resource settings of the same type.",
    ]


def test_op_validator_problems_are_merged() -> None:
    calls: list[tuple[Any, Any]] = []

    def op_validator(ops: Sequence[Mapping[str, Any]], apis: Sequence[Mapping[str, Any]]) -> list[Problem]:
        calls.append((ops, apis))
        return [Problem("operations[0].size", "must be a number")]

    with pytest.raises(ValidationError) as info:
        validate_job(job(workers=0), K8S, op_validator=op_validator)
    assert info.value.lines == ["operations[0].size: must be a number", "workers: must be >= 1"]
    assert calls == [(OPS, [])]


@pytest.mark.parametrize("config", [K8S, LOCAL], ids=["kubernetes", "local"])
def test_operations_are_required(config: SysConfig) -> None:
    assert problems({"name": "x"}, config) == [
        "operations: must have at least 2 items (a reader and a processor)"
    ]


def test_not_an_object() -> None:
    with pytest.raises(ValidationError, match="a job must be a JSON object"):
        validate_job([], K8S)  # type: ignore[arg-type]


PROM = parse_config(
    {"teraslice": {"cluster_manager_type": "kubernetesV2"}, "terafoundation": {"prom_metrics_enabled": True}}
)


@pytest.mark.parametrize(
    ("fields", "config", "ports"),
    [
        ({}, K8S, None),
        ({"prom_metrics_enabled": True}, K8S, [{"name": "metrics", "port": 3333}]),
        ({"prom_metrics_enabled": True, "prom_metrics_port": 9100}, K8S, [{"name": "metrics", "port": 9100}]),
        ({}, PROM, [{"name": "metrics", "port": 3333}]),
        ({"prom_metrics_enabled": False}, PROM, None),
        ({"external_ports": [9090]}, PROM, [9090, {"name": "metrics", "port": 3333}]),
        ({"external_ports": [3333]}, PROM, [3333]),
        ({"external_ports": [{"name": "m", "port": 3333}]}, PROM, [{"name": "m", "port": 3333}]),
    ],
)
def test_apply_prom_metrics_port(fields: dict[str, Any], config: SysConfig, ports: list[Any] | None) -> None:
    raw = job(**fields)
    before = copy.deepcopy(raw)
    result = apply_prom_metrics_port(raw, config)
    assert raw == before
    assert result.get("external_ports") == ports
    if ports is not None and "external_ports" in raw:
        assert result["external_ports"] is not raw["external_ports"]


def test_secret_backed_env_names_are_refused_at_submit() -> None:
    secrets = parse_config(
        {
            "teraslice": {
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_env_secret_refs": {"ES_PASSWORD": {"name": "es-creds", "key": "password"}},
            }
        }
    )
    assert problems(job(env_vars={"TZ": "UTC", "ES_PASSWORD": "guess"}), secrets) == [
        "env_vars.ES_PASSWORD: is taken from a Secret by the cluster "
        "(teraslice.kubernetes_env_secret_refs) and cannot be set by a job"
    ]
    assert validate_job(job(env_vars={"TZ": "UTC"}), secrets).config["env_vars"] == {"TZ": "UTC"}

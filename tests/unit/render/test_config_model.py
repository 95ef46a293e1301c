"""Cluster config: defaults, normalisation, and one test per validation rule (exact messages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.models.config import DEFAULT_IMAGE, load_config, parse_config


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        parse_config(data)
    return list(info.value.lines)


def test_defaults_follow_teraslice_except_image_and_manager() -> None:
    ts = parse_config({}).teraslice
    assert ts.name == "teracluster"
    assert ts.cluster_manager_type == "local"
    assert ts.kubernetes_image == DEFAULT_IMAGE == "teraslice-k8s:0.1.0"
    assert ts.kubernetes_namespace == "default"
    assert ts.kubernetes_config_map_name == "teraslice-worker"
    assert (ts.cpu_execution_controller, ts.memory_execution_controller) == (0.5, 512000000)
    assert (ts.shutdown_timeout, ts.node_state_interval, ts.kubernetes_api_poll_delay) == (60000, 5000, 1000)
    assert (ts.action_timeout, ts.network_latency_buffer, ts.slicer_timeout) == (120000, 15000, 180000)
    assert (ts.worker_disconnect_timeout, ts.analytics_rate, ts.port) == (300000, 60000, 5678)
    assert ts.slicer_ports == (45679, 46678)
    assert ts.kubernetes_overrides_enabled is False and ts.kubernetes_worker_antiaffinity is False
    assert ts.execution_controller_targets is None and ts.cpu is None and ts.memory is None
    assert ts.storage.type == "sqlite" and ts.storage.path == "./teraslice-state.sqlite"
    tf = parse_config({}).terafoundation
    assert (tf.prom_metrics_enabled, tf.prom_metrics_port, tf.prom_metrics_add_default) == (False, 3333, True)
    assert tf.log_level == "info" and tf.connectors == {}


@pytest.mark.parametrize(
    ("manager", "storage"),
    [
        ("local", "sqlite"),
        ("native", "sqlite"),
        ("kubernetes", "elasticsearch"),
        ("kubernetesV2", "elasticsearch"),
    ],
)
def test_manager_types_and_storage_default(manager: str, storage: str) -> None:
    ts = parse_config({"teraslice": {"cluster_manager_type": manager}}).teraslice
    assert ts.storage.type == storage
    assert ts.is_kubernetes is (storage == "elasticsearch")
    assert ts.cluster_manager_type == ("local" if manager == "native" else manager)


def test_durations_accept_teraslice_strings() -> None:
    ts = parse_config(
        {
            "teraslice": {
                "shutdown_timeout": "1 minute",
                "slicer_timeout": "30 seconds",
                "action_timeout": "500ms",
            }
        }
    ).teraslice
    assert (ts.shutdown_timeout, ts.slicer_timeout, ts.action_timeout) == (60000, 30000, 500)
    assert parse_config({"teraslice": {"node_state_interval": "2000"}}).teraslice.node_state_interval == 2000


def test_unknown_keys_are_kept_and_connectors_keep_fields() -> None:
    config = parse_config(
        {
            "teraslice": {"my_setting": {"a": 1}},
            "terafoundation": {
                "connectors": {
                    "elasticsearch-next": {"default": {"node": ["http://es:9200"], "sniff": False}}
                }
            },
            "other": 1,
        }
    )
    assert config.teraslice.model_extra == {"my_setting": {"a": 1}}
    connection = config.terafoundation.connection("default")
    assert connection is not None and connection.node == ["http://es:9200"]
    assert connection.model_extra == {"sniff": False}
    assert config.terafoundation.connection("missing") is None


def test_config_is_frozen() -> None:
    config = parse_config({})
    with pytest.raises(Exception, match="frozen"):
        config.teraslice.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("teraslice", "message"),
    [
        (
            {"kubernetes_worker_antiaffinity": "yes"},
            "teraslice.kubernetes_worker_antiaffinity: must be a boolean",
        ),
        ({"kubernetes_overrides_enabled": 1}, "teraslice.kubernetes_overrides_enabled: must be a boolean"),
        (
            {"cluster_manager_type": "yarn"},
            "teraslice.cluster_manager_type: must be one of kubernetes, kubernetesV2, local",
        ),
        ({"cpu_execution_controller": "1"}, "teraslice.cpu_execution_controller: must be a number"),
        ({"memory_execution_controller": -1}, "teraslice.memory_execution_controller: must be >= 0"),
        ({"cpu": True}, "teraslice.cpu: must be a number"),
        ({"port": 70000}, "teraslice.port: must be <= 65535"),
        ({"workers": 1.5}, "teraslice.workers: must be an integer"),
        (
            {"shutdown_timeout": "soon"},
            'teraslice.shutdown_timeout: must be a duration: milliseconds or a string like "1 minute"',
        ),
        (
            {"execution_controller_targets": [{"key": 1, "value": "a"}]},
            "teraslice.execution_controller_targets[0].key: must be a string",
        ),
        (
            {"execution_controller_targets": [{"key": "a"}]},
            "teraslice.execution_controller_targets[0].value: is required",
        ),
        (
            {"execution_controller_targets": {"key": "a"}},
            "teraslice.execution_controller_targets: must be an array",
        ),
        ({"env_vars": {"EX": "x"}}, "teraslice.env_vars.EX: is set by Teraslice and cannot be overridden"),
        (
            {"env_vars": {"1A": "x"}},
            "teraslice.env_vars.1A: must be a valid environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)",
        ),
        ({"env_vars": {"A": 1}}, "teraslice.env_vars.A: must be a string"),
        ({"name": "Teracluster"}, "teraslice.name: must be lowercase"),
        ({"name": "_x"}, "teraslice.name: must not start with -, _ or +"),
        ({"name": "a*b"}, 'teraslice.name: must not contain any of \\ / * ? " < > | #'),
        ({"name": ""}, "teraslice.name: must be 1 to 255 characters long"),
        (
            {"kubernetes_namespace": "Ns_1"},
            "teraslice.kubernetes_namespace: must be a valid Kubernetes namespace name (lowercase RFC 1123 label)",  # noqa: E501
        ),
        ({"kubernetes_image": ""}, "teraslice.kubernetes_image: must not be empty"),
        (
            {"kubernetes_config_map_name": "My Map"},
            "teraslice.kubernetes_config_map_name: must be a valid Kubernetes object name (lowercase RFC 1123 subdomain)",  # noqa: E501
        ),
        (
            {"assets_volume": "a_b"},
            "teraslice.assets_volume: must be a valid Kubernetes object name (lowercase RFC 1123 subdomain)",
        ),
        (
            {"slicer_port_range": "5:4"},
            'teraslice.slicer_port_range: must look like "45679:46678" (first < last <= 65535)',
        ),
        ({"storage": {"type": "mysql"}}, "teraslice.storage.type: must be one of elasticsearch, sqlite"),
        (
            {"index_rollover_frequency": {"state": "hourly"}},
            "teraslice.index_rollover_frequency.state: must be one of daily, monthly, yearly",
        ),
    ],
)
def test_each_config_rule_names_the_key(teraslice: dict[str, Any], message: str) -> None:
    assert problems({"teraslice": teraslice}) == [message]


def test_terafoundation_rules() -> None:
    assert problems({"terafoundation": {"prom_metrics_port": "3333"}}) == [
        "terafoundation.prom_metrics_port: must be an integer"
    ]
    assert problems({"terafoundation": {"connectors": {"elasticsearch-next": {"default": {"node": 5}}}}}) == [
        "terafoundation.connectors.elasticsearch-next.default.node: must be a string"
    ]


def test_every_problem_is_listed() -> None:
    lines = problems({"teraslice": {"kubernetes_worker_antiaffinity": "yes", "port": "x"}})
    assert sorted(lines) == [
        "teraslice.kubernetes_worker_antiaffinity: must be a boolean",
        "teraslice.port: must be an integer",
    ]


def test_load_config_reads_yaml_and_reports_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "teraslice.yaml"
    path.write_text("teraslice:\n  name: ts-dev1\n  cluster_manager_type: kubernetesV2\nterafoundation:\n")
    assert load_config(path).teraslice.name == "ts-dev1"
    path.write_text("teraslice: [")
    with pytest.raises(ValidationError, match="is not valid YAML"):
        load_config(path)
    with pytest.raises(ValidationError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    path.write_text("- a\n")
    with pytest.raises(ValidationError, match="the config file must hold a mapping"):
        load_config(path)


# --- ${NAME} environment references and kubernetes_env_secret_refs ---

ES_CONFIG: dict[str, Any] = {
    "terafoundation": {
        "connectors": {
            "elasticsearch-next": {
                "default": {
                    "node": ["http://es:9200"],
                    "username": "${TERASLICE_ES_USERNAME}",
                    "password": "${TERASLICE_ES_PASSWORD}",
                }
            }
        }
    }
}


def test_references_are_substituted_from_environ() -> None:
    environ = {"TERASLICE_ES_USERNAME": "elastic", "TERASLICE_ES_PASSWORD": "p@ss ${NOT_AGAIN} $${x}"}
    connection = parse_config(ES_CONFIG, environ).terafoundation.connection("default")
    assert connection is not None
    assert (connection.username, connection.password) == ("elastic", "p@ss ${NOT_AGAIN} $${x}")
    assert "p@ss" not in repr(connection), "the password must stay out of reprs"


def test_unset_variables_are_listed_with_their_key_path() -> None:
    with pytest.raises(ValidationError) as info:
        parse_config(ES_CONFIG, {})
    assert list(info.value.lines) == [
        "terafoundation.connectors.elasticsearch-next.default.username: "
        "environment variable TERASLICE_ES_USERNAME is not set",
        "terafoundation.connectors.elasticsearch-next.default.password: "
        "environment variable TERASLICE_ES_PASSWORD is not set",
    ]


def test_substitution_reaches_every_string_value_but_no_key() -> None:
    data = {
        "teraslice": {
            "name": "${A}-${A}",
            "assets_directory": ["/x/${B}", "$${literal}", "$$keep"],
            "${A}": "${B}",
            "shutdown_timeout": "${T}",
            "port": 5678,
        }
    }
    ts = parse_config(data, {"A": "ts", "B": "b", "T": "2 minutes"}).teraslice
    assert ts.name == "ts-ts"
    assert ts.assets_directory == ["/x/b", "${literal}", "$$keep"]
    assert ts.model_extra == {"${A}": "b"}
    assert ts.shutdown_timeout == 120000, "substitution happens before type validation"


def test_substituted_values_stay_strings() -> None:
    with pytest.raises(ValidationError) as info:
        parse_config({"teraslice": {"port": "${PORT}"}}, {"PORT": "5678"})
    assert list(info.value.lines) == ["teraslice.port: must be an integer"]


def test_malformed_references_are_refused() -> None:
    data = {
        "teraslice": {"name": "a${", "hostname": "${1x}", "execution_controller_targets": [{"key": "${}"}]}
    }
    with pytest.raises(ValidationError) as info:
        parse_config(data, {})
    assert list(info.value.lines) == [
        "teraslice.name: unclosed ${: write ${NAME}, or $${ for a literal ${",
        "teraslice.hostname: ${1x} does not name an environment variable; write $${ for a literal ${",
        "teraslice.execution_controller_targets[0].key: ${} does not name an environment variable; "
        "write $${ for a literal ${",
    ]


def test_without_environ_parse_config_keeps_references_literal() -> None:
    connection = parse_config(ES_CONFIG).terafoundation.connection("default")
    assert connection is not None and connection.password == "${TERASLICE_ES_PASSWORD}"


def test_load_config_substitutes_from_os_environ_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "teraslice.yaml"
    path.write_text("teraslice:\n  name: ${CLUSTER}\n")
    assert load_config(path, {"CLUSTER": "from-mapping"}).teraslice.name == "from-mapping"
    monkeypatch.setenv("CLUSTER", "from-os")
    assert load_config(path).teraslice.name == "from-os"
    monkeypatch.delenv("CLUSTER")
    with pytest.raises(ValidationError) as info:
        load_config(path)
    assert list(info.value.lines) == ["teraslice.name: environment variable CLUSTER is not set"]


def test_secret_refs_are_typed() -> None:
    refs = {
        "TERASLICE_ES_PASSWORD": {"name": "es-creds", "key": "password"},
        "KAFKA.TOKEN": {"name": "kafka", "key": "token.txt", "optional": True},
    }
    ts = parse_config({"teraslice": {"kubernetes_env_secret_refs": refs}}).teraslice
    assert list(ts.kubernetes_env_secret_refs) == ["TERASLICE_ES_PASSWORD", "KAFKA.TOKEN"]
    password = ts.kubernetes_env_secret_refs["TERASLICE_ES_PASSWORD"]
    assert (password.name, password.key, password.optional) == ("es-creds", "password", None)
    assert ts.kubernetes_env_secret_refs["KAFKA.TOKEN"].optional is True
    assert parse_config({}).teraslice.kubernetes_env_secret_refs == {}


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        (
            {"EX": {"name": "s", "key": "k"}},
            "teraslice.kubernetes_env_secret_refs.EX: is set by Teraslice and cannot be overridden",
        ),
        (
            {"1A": {"name": "s", "key": "k"}},
            "teraslice.kubernetes_env_secret_refs.1A: must be a valid environment variable name "
            "([-._a-zA-Z][-._a-zA-Z0-9]*)",
        ),
        (
            {"A": {"name": "My_Secret", "key": "k"}},
            "teraslice.kubernetes_env_secret_refs.A.name: must be a valid Kubernetes Secret name "
            "(lowercase RFC 1123 subdomain)",
        ),
        (
            {"A": {"name": "s", "key": "a/b"}},
            "teraslice.kubernetes_env_secret_refs.A.key: must be a valid Secret key "
            "(1 to 253 of [-._a-zA-Z0-9], not . or ..)",
        ),
        (
            {"A": {"name": "s", "key": ".."}},
            "teraslice.kubernetes_env_secret_refs.A.key: must be a valid Secret key "
            "(1 to 253 of [-._a-zA-Z0-9], not . or ..)",
        ),
        ({"A": {"name": "s"}}, "teraslice.kubernetes_env_secret_refs.A.key: is required"),
        (
            {"A": {"name": "s", "key": "k", "optinal": True}},
            "teraslice.kubernetes_env_secret_refs.A.optinal: is not allowed",
        ),
        (
            {"A": {"name": "s", "key": "k", "optional": "yes"}},
            "teraslice.kubernetes_env_secret_refs.A.optional: must be a boolean",
        ),
        ({"A": "s/k"}, "teraslice.kubernetes_env_secret_refs.A: must be an object"),
    ],
)
def test_each_secret_ref_rule_names_the_key(refs: dict[str, Any], message: str) -> None:
    assert problems({"teraslice": {"kubernetes_env_secret_refs": refs}}) == [message]


def test_a_variable_comes_from_one_place() -> None:
    refs = {
        "TZ": {"name": "s", "key": "tz"},
        "B": {"name": "s", "key": "b"},
        "FOO": {"name": "s", "key": "f"},
    }
    assert problems(
        {"teraslice": {"env_vars": {"TZ": "UTC", "FOO": "x"}, "kubernetes_env_secret_refs": refs}}
    ) == [
        "teraslice.kubernetes_env_secret_refs: must not repeat a name of teraslice.env_vars (TZ, FOO); "
        "set a variable in one place"
    ]

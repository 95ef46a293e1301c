"""End to end: the chart's ``${NAME}`` credentials reach the config model, the master process
and every execution-controller and worker pod the master renders.

The master ConfigMap's ``teraslice.yaml`` is written to a file and read with
``load_config(path, environ)``: with the variables the master pod gets from its Secrets the
connector holds the real values; without them the error names each key path and variable.
The config's ``kubernetes_env_secret_refs`` then render into the controller Job and the
worker Deployment as exactly the ``secretKeyRef`` entries the master container has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.kubernetes.render import render_execution
from teraslice_k8s.models.config import SysConfig, load_config, parse_config
from teraslice_k8s.models.job import validate_job

from .helm_render import Rendered, container, render

ES_PATH = "terafoundation.connectors.elasticsearch-next.default"
CREDENTIALS = {"TERASLICE_ES_USERNAME": "elastic", "TERASLICE_ES_PASSWORD": "s3cret: $${not} #1"}
#: (case, values-examples files, Secret the chart points the credentials at)
CASES = [
    ("default", (), "ts-teraslice-elasticsearch"),
    ("production", ("production.yaml",), "es-teraslice-credentials"),
]


def rendered(examples: tuple[str, ...]) -> Rendered:
    return render(examples=examples, api_versions=("monitoring.coreos.com/v1",))


def write_config(tmp_path: Path, chart: Rendered, configmap: str = "ts-teraslice-master") -> Path:
    path = tmp_path / "teraslice.yaml"
    path.write_text(chart.get("ConfigMap", configmap)["data"]["teraslice.yaml"], encoding="utf-8")
    return path


def secret_env(env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for item in env if "secretKeyRef" in item.get("valueFrom", {})]


def master_secret_env(chart: Rendered) -> list[dict[str, Any]]:
    return secret_env(container(chart.get("Deployment", "ts-teraslice-master"), "master")["env"])


def by_name(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["name"]: item["valueFrom"]["secretKeyRef"] for item in env}


@pytest.mark.parametrize(("case", "examples", "secret"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("configmap", ["ts-teraslice-master", "ts-teraslice-worker"])
def test_credentials_are_substituted_from_the_environment(
    tmp_path: Path, case: str, examples: tuple[str, ...], secret: str, configmap: str
) -> None:
    chart = rendered(examples)
    raw = chart.config(configmap)["terafoundation"]["connectors"]["elasticsearch-next"]["default"]
    assert (raw["username"], raw["password"]) == ("${TERASLICE_ES_USERNAME}", "${TERASLICE_ES_PASSWORD}")
    config = load_config(write_config(tmp_path, chart, configmap), CREDENTIALS)
    connection = config.terafoundation.connection("default")
    assert connection is not None
    assert (connection.username, connection.password) == ("elastic", "s3cret: $${not} #1")
    assert by_name(master_secret_env(chart)) == {
        "TERASLICE_ES_USERNAME": {"name": secret, "key": "username"},
        "TERASLICE_ES_PASSWORD": {"name": secret, "key": "password"},
    }


@pytest.mark.parametrize(("case", "examples", "secret"), CASES, ids=[c[0] for c in CASES])
def test_missing_credentials_are_a_clear_error(
    tmp_path: Path, case: str, examples: tuple[str, ...], secret: str
) -> None:
    path = write_config(tmp_path, rendered(examples))
    with pytest.raises(ValidationError) as info:
        load_config(path, {"TERASLICE_ES_USERNAME": "elastic"})
    assert list(info.value.lines) == [
        f"{ES_PATH}.password: environment variable TERASLICE_ES_PASSWORD is not set"
    ]
    with pytest.raises(ValidationError) as info:
        load_config(path, {})
    assert str(info.value).count("is not set") == 2


def test_load_config_reads_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, rendered(()))
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    connection = load_config(path).terafoundation.connection("default")
    assert connection is not None and connection.password == CREDENTIALS["TERASLICE_ES_PASSWORD"]


def render_job_pods(config: SysConfig) -> list[dict[str, Any]]:
    operations = [{"_op": "data_generator", "size": 1}, {"_op": "noop"}]
    job = validate_job({"name": "creds", "workers": 1, "operations": operations}, config).config
    manifests = render_execution({**job, "job_id": "1" * 36, "ex_id": "2" * 36}, config)
    return [m for m in manifests if m["kind"] in ("Job", "Deployment")]


@pytest.mark.parametrize(("case", "examples", "secret"), CASES, ids=[c[0] for c in CASES])
def test_job_pods_get_the_masters_secret_env(
    tmp_path: Path, case: str, examples: tuple[str, ...], secret: str
) -> None:
    chart = rendered(examples)
    config = load_config(write_config(tmp_path, chart), CREDENTIALS)
    expected = by_name(master_secret_env(chart))
    pods = render_job_pods(config)
    assert [pod["kind"] for pod in pods] == ["Job", "Deployment"]
    for pod in pods:
        env = pod["spec"]["template"]["spec"]["containers"][0]["env"]
        assert by_name(secret_env(env)) == expected
        assert secret_env(env) == env[-2:], "Secret entries come after Teraslice's own env"
        assert "s3cret" not in yaml.safe_dump(pod), "no credential value in a manifest"


def test_user_secret_env_reaches_config_and_job_pods(tmp_path: Path) -> None:
    values = {
        "secretEnv": [{"name": "KAFKA_TOKEN", "secretName": "kafka-credentials", "key": "token"}],
        "terafoundation": {
            "connectors": {"kafka": {"default": {"brokers": ["kafka:9092"], "token": "${KAFKA_TOKEN}"}}}
        },
    }
    chart = render(values=values)
    environ = {**CREDENTIALS, "KAFKA_TOKEN": "tok"}
    config = load_config(write_config(tmp_path, chart), environ)
    kafka = config.terafoundation.connectors["kafka"]["default"]
    assert kafka.model_extra == {"brokers": ["kafka:9092"], "token": "tok"}
    refs = config.teraslice.kubernetes_env_secret_refs
    assert (refs["KAFKA_TOKEN"].name, refs["KAFKA_TOKEN"].key) == ("kafka-credentials", "token")
    assert by_name(master_secret_env(chart))["KAFKA_TOKEN"] == {"name": "kafka-credentials", "key": "token"}
    for pod in render_job_pods(config):
        env = pod["spec"]["template"]["spec"]["containers"][0]["env"]
        assert by_name(secret_env(env))["KAFKA_TOKEN"] == {"name": "kafka-credentials", "key": "token"}
    with pytest.raises(ValidationError) as info:
        load_config(write_config(tmp_path, chart), CREDENTIALS)
    assert list(info.value.lines) == [
        "terafoundation.connectors.kafka.default.token: environment variable KAFKA_TOKEN is not set"
    ]


def test_without_credentials_the_chart_config_needs_no_environment(tmp_path: Path) -> None:
    chart = render(sets=("elasticsearch.security.enabled=false",))
    config = load_config(write_config(tmp_path, chart), {})
    assert config.teraslice.kubernetes_env_secret_refs == {}
    assert master_secret_env(chart) == []
    for pod in render_job_pods(config):
        assert secret_env(pod["spec"]["template"]["spec"]["containers"][0]["env"]) == []
    assert parse_config(chart.config("ts-teraslice-master"), {}).teraslice.name == "ts"

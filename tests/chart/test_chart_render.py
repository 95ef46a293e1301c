"""What ``helm template`` produces: whole manifests against golden files, then the facts that
tie the objects together (names, labels, namespaces, the two teraslice.yaml documents)."""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from teraslice_k8s.kubernetes.names import cluster_name_label

from .helm_render import (
    CLUSTER_SCOPED,
    EXAMPLES,
    NAMESPACE,
    HelmError,
    Rendered,
    container,
    render,
)

GOLDEN = Path(__file__).parent / "golden"
MONITORING = ("monitoring.coreos.com/v1",)
#: (golden file, values examples): the defaults and every example, with the monitoring API present.
CASES = [("default", ())] + [(Path(e).stem, (e,)) for e in EXAMPLES]


def _normalised(rendered: Rendered) -> list[dict[str, Any]]:
    """The documents with the one random value (a generated Elasticsearch password) masked."""
    docs = copy.deepcopy(list(rendered.docs))
    for doc in docs:
        if doc["kind"] == "Secret" and doc["metadata"]["name"].endswith("-elasticsearch"):
            doc["data"]["password"] = "<generated>"
    return docs


def test_every_values_example_is_covered() -> None:
    assert {"minikube.yaml", "kind.yaml", "production.yaml", "isolated-namespace.yaml"} <= set(EXAMPLES)


@pytest.mark.parametrize(("golden", "examples"), CASES, ids=[c[0] for c in CASES])
def test_render_matches_golden(golden: str, examples: tuple[str, ...]) -> None:
    docs = _normalised(render(examples=examples, api_versions=MONITORING))
    path = GOLDEN / f"{golden}.yaml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=True))
    assert path.exists(), f"{path} missing: run with UPDATE_GOLDEN=1 and review the diff"
    assert docs == list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize(("golden", "examples"), CASES, ids=[c[0] for c in CASES])
def test_objects_are_namespaced_labelled_and_unique(golden: str, examples: tuple[str, ...]) -> None:
    rendered = render(examples=examples, api_versions=MONITORING)
    assert len(set(rendered.names())) == len(rendered.docs), rendered.names()
    for doc in rendered.docs:
        meta = doc["metadata"]
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in meta
        else:
            assert meta["namespace"] == NAMESPACE, (doc["kind"], meta["name"])
        labels = meta["labels"]
        assert labels["app.kubernetes.io/part-of"] == "teraslice"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/name"] in {"teraslice", "elasticsearch"}


@pytest.mark.parametrize(("golden", "examples"), CASES, ids=[c[0] for c in CASES])
def test_master_config_points_at_this_release(golden: str, examples: tuple[str, ...]) -> None:
    rendered = render(examples=examples)
    master_cm = rendered.get("ConfigMap", "ts-teraslice-master")
    config = rendered.config("ts-teraslice-master")
    ts = config["teraslice"]
    assert ts["kubernetes_namespace"] == NAMESPACE
    assert ts["cluster_manager_type"] == "kubernetesV2"
    assert ts["master"] is True
    assert ts["port"] == 5678
    # The worker ConfigMap it names exists and holds the same settings with master: false.
    worker = rendered.config(ts["kubernetes_config_map_name"])
    assert worker["teraslice"] == {**ts, "master": False}
    assert worker["terafoundation"] == config["terafoundation"]
    # master_hostname is the DNS name of the master Service, which serves the configured port.
    service = rendered.get("Service", "ts-teraslice-master")
    assert ts["master_hostname"] == f"ts-teraslice-master.{NAMESPACE}.svc.cluster.local"
    api_port = service["spec"]["ports"][0]
    assert (api_port["name"], api_port["port"], api_port["targetPort"]) == ("api", 5678, "api")
    # The cluster name is the instance label of the master.
    deployment = rendered.get("Deployment", "ts-teraslice-master")
    instance = deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"]
    assert instance == cluster_name_label(ts["name"])
    assert master_cm["metadata"]["labels"]["app.kubernetes.io/instance"] == instance
    assert ts["storage"] == {"type": "elasticsearch", "connection": "default"}
    assert ts["assets_directory"] == "/app/assets"
    assert set(config["terafoundation"]) >= {
        "prom_metrics_enabled",
        "prom_metrics_port",
        "prom_metrics_add_default",
        "log_level",
        "connectors",
    }


def test_default_config_is_exactly_the_chart_settings() -> None:
    config = render().config("ts-teraslice-master")
    assert config == {
        "terafoundation": {
            "connectors": {
                "elasticsearch-next": {
                    "default": {
                        "node": [f"http://ts-teraslice-elasticsearch.{NAMESPACE}.svc.cluster.local:9200"],
                        "username": "${TERASLICE_ES_USERNAME}",
                        "password": "${TERASLICE_ES_PASSWORD}",
                    }
                }
            },
            "log_level": "info",
            "prom_metrics_add_default": True,
            "prom_metrics_enabled": False,
            "prom_metrics_port": 3333,
        },
        "teraslice": {
            "assets_directory": "/app/assets",
            "cluster_manager_type": "kubernetesV2",
            "cpu_execution_controller": 0.5,
            "kubernetes_api_poll_delay": 1000,
            "kubernetes_config_map_name": "ts-teraslice-worker",
            "kubernetes_env_secret_refs": {
                "TERASLICE_ES_PASSWORD": {"key": "password", "name": "ts-teraslice-elasticsearch"},
                "TERASLICE_ES_USERNAME": {"key": "username", "name": "ts-teraslice-elasticsearch"},
            },
            "kubernetes_image": "teraslice-k8s:0.1.0",
            "kubernetes_namespace": NAMESPACE,
            "kubernetes_overrides_enabled": False,
            "kubernetes_worker_antiaffinity": False,
            "master": True,
            "master_hostname": f"ts-teraslice-master.{NAMESPACE}.svc.cluster.local",
            "memory_execution_controller": 512000000,
            "name": "ts",
            "port": 5678,
            "storage": {"connection": "default", "type": "elasticsearch"},
        },
    }


def test_default_objects() -> None:
    assert render().names() == [
        ("ConfigMap", "ts-teraslice-master"),
        ("ConfigMap", "ts-teraslice-worker"),
        ("Deployment", "ts-teraslice-master"),
        ("Job", "ts-teraslice-master-stop-executions"),
        ("NetworkPolicy", "ts-teraslice-elasticsearch"),
        ("NetworkPolicy", "ts-teraslice-master"),
        ("NetworkPolicy", "ts-teraslice-master-stop-executions"),
        ("NetworkPolicy", "ts-teraslice-master-test"),
        ("Pod", "ts-teraslice-master-test-api"),
        ("Role", f"ts-teraslice-master-role-{NAMESPACE}"),
        ("RoleBinding", f"ts-teraslice-master-{NAMESPACE}"),
        ("Secret", "ts-teraslice-elasticsearch"),
        ("Service", "ts-teraslice-elasticsearch"),
        ("Service", "ts-teraslice-master"),
        ("ServiceAccount", "ts-teraslice-master-service-account"),
        ("StatefulSet", "ts-teraslice-elasticsearch"),
    ]


def test_release_named_teraslice_gets_the_seed_names() -> None:
    rendered = render(release="teraslice")
    names = rendered.names()
    assert ("Service", "teraslice-master") in names
    assert ("ConfigMap", "teraslice-worker") in names
    assert ("Role", f"teraslice-master-role-{NAMESPACE}") in names
    assert ("RoleBinding", f"teraslice-master-{NAMESPACE}") in names


def test_master_deployment() -> None:
    rendered = render()
    deployment = rendered.get("Deployment", "ts-teraslice-master")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    selector = {"app.kubernetes.io/name": "teraslice", "app.kubernetes.io/instance": "ts"}
    assert spec["selector"]["matchLabels"] == {**selector, "app.kubernetes.io/component": "master"}
    pod = spec["template"]
    # clusterName: the master label the clustering document asks for (sanitised cluster name).
    assert pod["metadata"]["labels"] == {
        **selector,
        "app.kubernetes.io/component": "master",
        "clusterName": "ts",
    }
    pod_spec = pod["spec"]
    account = rendered.get("ServiceAccount", "ts-teraslice-master-service-account")
    assert pod_spec["serviceAccountName"] == account["metadata"]["name"]
    assert pod_spec["automountServiceAccountToken"] is True
    assert pod_spec["securityContext"]["runAsUser"] == 10001
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    master = container(deployment, "master")
    assert master["image"] == "teraslice-k8s:0.1.0"
    assert master["securityContext"]["readOnlyRootFilesystem"] is True
    assert master["securityContext"]["runAsUser"] == 10001
    env = {e["name"]: e for e in master["env"]}
    assert env["NODE_TYPE"]["value"] == "master"
    assert env["TERAFOUNDATION_CONFIG"]["value"] == "/app/config/teraslice.yaml"
    assert env["TERASLICE_ES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "ts-teraslice-elasticsearch",
        "key": "password",
    }
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert master[probe]["httpGet"] == {"path": "/", "port": "api"}
    assert master["ports"] == [{"name": "api", "containerPort": 5678, "protocol": "TCP"}]
    mounts = {m["mountPath"]: m["name"] for m in master["volumeMounts"]}
    assert mounts == {"/app/config": "config", "/app/assets": "assets", "/tmp": "tmp"}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "ts-teraslice-master"
    assert volumes["assets"] == {"name": "assets", "emptyDir": {}}
    assert "resources" in master and master["resources"]["limits"]


def test_checksum_follows_the_master_config() -> None:
    def checksum(rendered: Rendered) -> str:
        deployment = rendered.get("Deployment", "ts-teraslice-master")
        value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    base = render()
    changed = render(sets=["logLevel=debug"])
    assert checksum(base) != checksum(changed)
    assert checksum(base) == checksum(render())
    # It is the sha256 of the teraslice.yaml the master mounts (without the trailing newline).
    content = base.get("ConfigMap", "ts-teraslice-master")["data"]["teraslice.yaml"]
    assert checksum(base) == hashlib.sha256(content.rstrip("\n").encode()).hexdigest()


@pytest.mark.parametrize(
    "name",
    [
        "ts-dev1",
        "team a:ingest.v2",
        ".edge!",
        "x" * 80,
        "a\U0001f680b",
        "\u00fcn\u00efc\u00f6d\u00e9",
        "\u00e9" * 70,
    ],
)
def test_instance_label_is_the_one_the_master_computes(name: str) -> None:
    """The seed's rule, and Python's slug+hash fallback where that rule gives an invalid label."""
    rendered = render(values={"clusterName": name})
    expected = cluster_name_label(name)
    for doc in rendered.docs:
        if doc["metadata"]["labels"]["app.kubernetes.io/name"] == "teraslice":
            assert doc["metadata"]["labels"]["app.kubernetes.io/instance"] == expected, doc["kind"]
    deployment = rendered.get("Deployment", "ts-teraslice-master")
    assert deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/instance"] == expected
    assert rendered.config("ts-teraslice-master")["teraslice"]["name"] == name


def test_instance_label_examples() -> None:
    assert cluster_name_label("team a:ingest.v2") == "team_a_ingest.v2"
    label = render(values={"clusterName": ".edge!"}).get("Service", "ts-teraslice-master")["metadata"][
        "labels"
    ]
    assert label["app.kubernetes.io/instance"] == "edge-" + hashlib.sha256(b".edge!").hexdigest()[:10]


def test_isolated_namespace_uses_admin_created_rbac() -> None:
    rendered = render(examples=["isolated-namespace.yaml"])
    kinds = {kind for kind, _ in rendered.names()}
    assert not kinds & {"ServiceAccount", "Role", "RoleBinding"}
    pod_spec = rendered.get("Deployment", "ts-teraslice-master")["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == "master-service-account"
    assert rendered.config("ts-teraslice-master")["teraslice"]["name"] == "ts-dev1"


def test_rbac_without_service_account_binds_the_named_account() -> None:
    rendered = render(values={"serviceAccount": {"create": False, "name": "admin-made"}})
    binding = rendered.get("RoleBinding", f"ts-teraslice-master-{NAMESPACE}")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "admin-made", "namespace": NAMESPACE}]
    assert binding["roleRef"] == {
        "kind": "Role",
        "name": f"ts-teraslice-master-role-{NAMESPACE}",
        "apiGroup": "rbac.authorization.k8s.io",
    }


def test_service_account_name_is_required_when_not_created() -> None:
    with pytest.raises(HelmError) as error:
        render(values={"serviceAccount": {"create": False}})
    assert "serviceAccount.name is required when serviceAccount.create=false" in error.value.output


def test_minikube_node_ports() -> None:
    rendered = render(examples=["minikube.yaml"])
    master = rendered.get("Service", "ts-teraslice-master")["spec"]
    assert master["type"] == "NodePort"
    assert master["ports"][0]["nodePort"] == 30678
    es = rendered.get("Service", "ts-teraslice-elasticsearch")["spec"]
    assert es["type"] == "NodePort"
    assert es["ports"][0]["nodePort"] == 30200
    # Security off: no Secret, no credentials in the config or the pods.
    assert not rendered.of_kind("Secret")
    connection = rendered.config("ts-teraslice-master")["terafoundation"]["connectors"]["elasticsearch-next"]
    assert connection == {
        "default": {"node": [f"http://ts-teraslice-elasticsearch.{NAMESPACE}.svc.cluster.local:9200"]}
    }
    assert "kubernetes_env_secret_refs" not in rendered.config("ts-teraslice-master")["teraslice"]


def test_production_settings_reach_the_config() -> None:
    rendered = render(examples=["production.yaml"], api_versions=MONITORING)
    config = rendered.config("ts-teraslice-master")
    ts = config["teraslice"]
    assert config["terafoundation"]["connectors"]["elasticsearch-next"]["default"] == {
        "node": ["https://es-1.data.example.com:9200", "https://es-2.data.example.com:9200"],
        "username": "${TERASLICE_ES_USERNAME}",
        "password": "${TERASLICE_ES_PASSWORD}",
    }
    assert ts["kubernetes_env_secret_refs"] == {
        "TERASLICE_ES_USERNAME": {"name": "es-teraslice-credentials", "key": "username"},
        "TERASLICE_ES_PASSWORD": {"name": "es-teraslice-credentials", "key": "password"},
    }
    assert not [n for n in rendered.names() if "elasticsearch" in n[1]]
    priority = rendered.get("PriorityClass", f"ts-teraslice-{NAMESPACE}")
    assert ts["kubernetes_priority_class_name"] == priority["metadata"]["name"]
    pod_spec = rendered.get("Deployment", "ts-teraslice-master")["spec"]["template"]["spec"]
    assert pod_spec["priorityClassName"] == priority["metadata"]["name"]
    claim = rendered.get("PersistentVolumeClaim", "ts-teraslice-assets")
    assert ts["assets_volume"] == claim["metadata"]["name"]
    assert {"name": "assets", "persistentVolumeClaim": {"claimName": "ts-teraslice-assets"}} in pod_spec[
        "volumes"
    ]
    assert ts["kubernetes_image"] == "registry.example.com/data/teraslice-k8s:0.1.0"
    assert ts["kubernetes_image_pull_secret"] == "registry-example-com"
    assert pod_spec["imagePullSecrets"] == [{"name": "registry-example-com"}]
    assert ts["kubernetes_worker_antiaffinity"] is True
    assert ts["kubernetes_overrides_enabled"] is False
    assert ts["execution_controller_targets"] == [{"key": "node-pool", "value": "teraslice-controllers"}]
    assert ts["cpu_execution_controller"] == 1
    assert ts["memory_execution_controller"] == 1073741824
    assert ts["env_vars"] == {"TZ": "UTC"}
    assert ts["shutdown_timeout"] == 60000
    assert ts["index_settings"] == {"state": {"number_of_shards": 5, "number_of_replicas": 1}}
    assert config["terafoundation"]["prom_metrics_enabled"] is True
    assert config["terafoundation"]["prom_metrics_display_url"] == "https://teraslice.data.example.com/"
    monitor = rendered.get("ServiceMonitor", "ts-teraslice-master")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pod_monitor = rendered.get("PodMonitor", "ts-teraslice-job-metrics")
    assert pod_monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "teraslice",
        "app.kubernetes.io/instance": "teraslice-prod",
    }


def test_monitors_need_the_monitoring_api() -> None:
    kinds = {kind for kind, _ in render(examples=["production.yaml"]).names()}
    assert not kinds & {"ServiceMonitor", "PodMonitor"}


def test_free_form_teraslice_block_is_deep_merged_and_wins() -> None:
    rendered = render(
        values={
            "teraslice": {
                "kubernetes_image": "custom:1",
                "storage": {"connection": "other"},
                "slicer_timeout": 1,
            },
            "terafoundation": {"connectors": {"kafka": {"default": {"brokers": ["k:9092"]}}}},
        }
    )
    config = rendered.config("ts-teraslice-master")
    assert config["teraslice"]["kubernetes_image"] == "custom:1"
    assert config["teraslice"]["storage"] == {"type": "elasticsearch", "connection": "other"}
    assert config["teraslice"]["slicer_timeout"] == 1
    assert set(config["terafoundation"]["connectors"]) == {"elasticsearch-next", "kafka"}


@pytest.mark.parametrize(
    "key", ["kubernetes_namespace", "kubernetes_config_map_name", "master_hostname", "master"]
)
def test_chart_owned_keys_cannot_be_overridden(key: str) -> None:
    with pytest.raises(HelmError) as error:
        render(values={"teraslice": {key: "x"}})
    assert f"teraslice.{key} is set by the chart" in error.value.output


def test_external_elasticsearch_needs_a_url() -> None:
    with pytest.raises(HelmError) as error:
        render(values={"elasticsearch": {"enabled": False}})
    assert "elasticsearch.external.nodes must list at least one URL" in error.value.output


def test_secret_env_reaches_master_and_job_pods() -> None:
    rendered = render(values={"secretEnv": [{"name": "S3_SECRET", "secretName": "s3", "key": "secret"}]})
    master = container(rendered.get("Deployment", "ts-teraslice-master"), "master")
    env = {e["name"]: e for e in master["env"]}
    assert env["S3_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "s3", "key": "secret"}
    refs = rendered.config("ts-teraslice-worker")["teraslice"]["kubernetes_env_secret_refs"]
    assert refs["S3_SECRET"] == {"name": "s3", "key": "secret"}


def test_elasticsearch_statefulset() -> None:
    rendered = render(sets=["elasticsearch.persistence.enabled=true"])
    sts = rendered.get("StatefulSet", "ts-teraslice-elasticsearch")
    es = container(sts, "elasticsearch")
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in es["env"]}
    assert env["discovery.type"] == "single-node"
    assert env["ES_JAVA_OPTS"] == "-Xms512m -Xmx512m"
    assert env["xpack.security.enabled"] == "true"
    assert env["ELASTIC_PASSWORD"] == {
        "secretKeyRef": {"name": "ts-teraslice-elasticsearch", "key": "password"}
    }
    assert es["image"] == "docker.elastic.co/elasticsearch/elasticsearch:9.3.0"
    assert es["resources"]["limits"]["memory"] == "1536Mi"
    template = sts["spec"]["volumeClaimTemplates"][0]
    assert template["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "data" not in {v["name"] for v in sts["spec"]["template"]["spec"]["volumes"]}
    # The master's pods and this pod never share the name label (cluster state counts teraslice pods).
    assert sts["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "elasticsearch"


def test_elasticsearch_existing_secret_replaces_the_generated_one() -> None:
    rendered = render(sets=["elasticsearch.auth.existingSecret=es-admin"])
    assert not rendered.of_kind("Secret")
    es = container(rendered.get("StatefulSet", "ts-teraslice-elasticsearch"), "elasticsearch")
    env = {e["name"]: e.get("valueFrom") for e in es["env"]}
    assert env["ELASTIC_PASSWORD"] == {"secretKeyRef": {"name": "es-admin", "key": "password"}}


def test_helm_test_pod_checks_clustering_type() -> None:
    pod = render(sets=["clusterName=prod-1"]).get("Pod", "ts-teraslice-master-test-api")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    test = container(pod, "test-api")
    assert test["image"] == "teraslice-k8s:0.1.0"
    assert "clustering_type" in test["command"][2]
    env = {e["name"]: e["value"] for e in test["env"]}
    assert env == {
        "TERASLICE_URL": f"http://ts-teraslice-master.{NAMESPACE}.svc.cluster.local:5678/",
        "TERASLICE_NAME": "prod-1",
    }
    assert test["securityContext"]["readOnlyRootFilesystem"] is True


def test_optional_objects_are_off_by_default() -> None:
    kinds = {kind for kind, _ in render().names()}
    assert not kinds & {"PriorityClass", "PodDisruptionBudget", "PersistentVolumeClaim", "ServiceMonitor"}
    on = render(sets=["pdb.create=true", "networkPolicy.enabled=false"])
    assert on.get("PodDisruptionBudget", "ts-teraslice-master")["spec"]["maxUnavailable"] == 0
    assert not on.of_kind("NetworkPolicy")

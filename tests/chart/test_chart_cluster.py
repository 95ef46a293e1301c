"""The chart on a real cluster (kind in GitHub CI): install, ``helm test`` (the test pod calls
``GET /`` and checks ``clustering_type``), and the ServiceAccount may make exactly the calls in
``RBAC_RULES``.

Runs only when ``TEST_KUBECONFIG`` is set. ``TEST_CHART_IMAGE`` names an image of this project the
cluster already has (default ``teraslice-k8s:dev``, what the workflow builds and `kind load`s).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from teraslice_k8s.kubernetes.api import RBAC_RULES, load_client_configuration

from .helm_render import CHART, EXAMPLES_DIR, run_helm

KUBECONFIG = os.environ.get("TEST_KUBECONFIG")
IMAGE = os.environ.get("TEST_CHART_IMAGE", "teraslice-k8s:dev")

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not KUBECONFIG, reason="TEST_KUBECONFIG is not set: no real cluster to install into"),
]


@pytest.fixture(scope="module")
def release() -> Iterator[str]:
    """The chart installed with values-examples/kind.yaml into a fresh namespace."""
    assert KUBECONFIG
    namespace = f"ts-chart-{uuid.uuid4().hex[:8]}"
    repository, _, tag = IMAGE.rpartition(":")
    base = ["--kubeconfig", KUBECONFIG, "--namespace", namespace]
    run_helm(
        [
            "install", "teraslice", str(CHART), *base, "--create-namespace", "--wait", "--timeout", "10m",
            "--values", str(EXAMPLES_DIR / "kind.yaml"),
            "--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}",
        ]
    )  # fmt: skip
    try:
        yield namespace
    finally:
        run_helm(["uninstall", "teraslice", *base, "--wait"])
        from kubernetes import client

        with client.ApiClient(load_client_configuration(kubeconfig=KUBECONFIG)) as api:
            client.CoreV1Api(api).delete_namespace(namespace)


def test_helm_test_passes(release: str) -> None:
    assert KUBECONFIG
    output = run_helm(["test", "teraslice", "--kubeconfig", KUBECONFIG, "--namespace", release, "--logs"])
    assert "Phase:          Succeeded" in output
    assert "clustering_type" in output


def _allowed(namespace: str, group: str, resource: str, verb: str) -> bool:
    from kubernetes import client

    # A SubjectAccessReview names a subresource separately ("services/proxy" -> services + proxy).
    resource, _, subresource = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{namespace}:teraslice-master-service-account",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
            "resourceAttributes": {
                "namespace": namespace,
                "group": group,
                "resource": resource,
                "subresource": subresource,
                "verb": verb,
            },
        },
    }
    with client.ApiClient(load_client_configuration(kubeconfig=KUBECONFIG)) as api:
        result = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(result.status.allowed)


def test_service_account_may_make_exactly_the_declared_calls(release: str) -> None:
    verbs = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
    granted = {
        (group, resource, verb)
        for rule in RBAC_RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    for group, resource in {(g, r) for g, r, _ in granted} | {("", "secrets")}:
        for verb in verbs:
            expected = (group, resource, verb) in granted
            assert _allowed(release, group, resource, verb) is expected, (group, resource, verb)

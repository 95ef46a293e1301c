"""The Role grants exactly the API calls the Python package declares (``RBAC_RULES``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from teraslice_k8s.kubernetes.api import RBAC_RULES

from .helm_render import CHART, NAMESPACE, render


def _grants(rules: Iterable[Mapping[str, Any]]) -> set[tuple[str, str, str]]:
    """Rules flattened to (apiGroup, resource, verb) triples, so grouping and order do not matter."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_rendered_role_equals_rbac_rules() -> None:
    role = render().get("Role", f"ts-teraslice-master-role-{NAMESPACE}")
    assert _grants(role["rules"]) == _grants(RBAC_RULES)
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"])


def test_values_rules_mirror_rbac_rules_rule_by_rule() -> None:
    """values.yaml keeps the package's grouping too, so a reader can compare them side by side."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    expected = [{key: list(value) for key, value in rule.items()} for rule in RBAC_RULES]
    assert values["rbac"]["rules"] == expected


def test_role_is_bound_to_the_master_service_account() -> None:
    rendered = render()
    binding = rendered.get("RoleBinding", f"ts-teraslice-master-{NAMESPACE}")
    account = rendered.get("ServiceAccount", "ts-teraslice-master-service-account")
    assert binding["roleRef"]["name"] == f"ts-teraslice-master-role-{NAMESPACE}"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
    ]
    # Only the master pod mounts the token; the account does not hand it to other pods.
    assert account["automountServiceAccountToken"] is False


def test_rbac_create_false_renders_no_role() -> None:
    kinds = {kind for kind, _ in render(sets=["rbac.create=false"]).names()}
    assert not kinds & {"Role", "RoleBinding"}
    assert "ServiceAccount" in kinds

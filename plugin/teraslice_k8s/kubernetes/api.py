"""The only module that imports the ``kubernetes`` client (see its docstring once complete).

``RBAC_RULES`` lists exactly the API verbs this module calls; the chart's Role must grant
exactly these (``tests/chart`` checks both directions).
"""

from __future__ import annotations

from typing import Final

#: (apiGroup, resource) -> verbs this module uses. Keep in sync with the calls below;
#: the chart renders its Role from the same data (values are checked by tests/chart).
RBAC_RULES: Final[tuple[dict[str, tuple[str, ...]], ...]] = (
    # pods: cluster state (list/watch), force stop (delete), failure reasons (get)
    {"apiGroups": ("",), "resources": ("pods",), "verbs": ("get", "list", "watch", "delete")},
    # the execution controller Service
    {"apiGroups": ("",), "resources": ("services",), "verbs": ("get", "list", "create", "delete")},
    # the worker ConfigMap must exist before an execution starts
    {"apiGroups": ("",), "resources": ("configmaps",), "verbs": ("get",)},
    # worker Deployments: create, scale (patch), track (list/watch), stop (delete)
    {
        "apiGroups": ("apps",),
        "resources": ("deployments",),
        "verbs": ("get", "list", "watch", "create", "patch", "delete"),
    },
    # force stop removes worker ReplicaSets before their Deployment
    {"apiGroups": ("apps",), "resources": ("replicasets",), "verbs": ("list", "delete")},
    # execution controller Jobs
    {
        "apiGroups": ("batch",),
        "resources": ("jobs",),
        "verbs": ("get", "list", "watch", "create", "delete"),
    },
)

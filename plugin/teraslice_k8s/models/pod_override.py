"""What a job's ``pod_spec_override`` may say, checked at submit without rendering anything.

One override is overlaid on BOTH pod specs of an execution (the controller Job's and the worker
Deployment's), whose main containers are named differently (``ts-exc-…`` / ``ts-wkr-…``). So the
main container is addressed the same way in both pods, never by its generated name:

- ``containers[0]`` **without** a ``name`` (what Teraslice users write: lodash merges index 0
  into the Teraslice container), or
- an item named :data:`MAIN_CONTAINER_ALIAS` (``"teraslice"``) at any position.

Every other ``containers`` / ``initContainers`` / ``volumes`` item needs a ``name`` (these lists
merge by name: a new name adds a sidecar / volume, an existing one is merged into it). Names
starting with ``ts-exc-`` or ``ts-wkr-`` are reserved (aiming at one pod's main container by name
would add a second, image-less container to the other pod).

An override must not break what every Teraslice pod needs: the main container's ``image`` may be
changed but not removed or emptied, its ``volumeMounts`` not nulled, and neither the config mount
(``volumeMounts`` item ``config``) nor the config volume (``volumes`` item ``config``) may be
overridden; ``containers`` and ``volumes`` themselves cannot be ``null``. :func:`override_problems`
lists each broken rule with its path; the render-time merge
(``teraslice_k8s.kubernetes.overrides.merge_pod_spec``) applies the same addressing and re-checks
the merged pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from teraslice_k8s.errors import Problem, join_path

#: The name that addresses the main (Teraslice) container of both pods in an override.
MAIN_CONTAINER_ALIAS = "teraslice"
#: Prefixes of the generated main container names (the controller's and the workers').
RESERVED_CONTAINER_PREFIXES = ("ts-exc-", "ts-wkr-")
#: Name of the config volume and of its mount in the main container.
CONFIG_VOLUME = "config"
#: Lists whose items merge by name.
NAMED_LISTS = ("containers", "initContainers", "volumes")

NAME_REQUIRED = (
    "must be an object with a name (these lists merge by name; only containers[0] may omit it, "
    f'to address the main container, or name it "{MAIN_CONTAINER_ALIAS}")'
)
RESERVED_NAME = (
    "is reserved for the main containers, which are named differently in the two pods; "
    f'address the main container of both pods as containers[0] without a name or as "{MAIN_CONTAINER_ALIAS}"'
)
CONFIG_VOLUME_MANAGED = "the config volume is managed by Teraslice and cannot be overridden"
CONFIG_MOUNT_MANAGED = "the config mount (/app/config) is managed by Teraslice and cannot be overridden"
IMAGE_REQUIRED = "the main container's image can be changed but not removed: must be a non-empty string"
MOUNTS_NOT_NULL = "must not be null: the main container needs its config mount (/app/config)"
LIST_NOT_NULL = "must not be null: every pod needs its main container and its config volume"


def is_main_container_item(index: int, item: Any) -> bool:
    """True if ``containers[index]`` of an override addresses the main container."""
    if not isinstance(item, Mapping):
        return False
    return item.get("name") == MAIN_CONTAINER_ALIAS or (index == 0 and "name" not in item)


def _main_container_problems(path: str, item: Mapping[str, Any]) -> list[Problem]:
    problems = []
    if "image" in item and not (isinstance(item["image"], str) and item["image"].strip()):
        problems.append(Problem(join_path(path, "image"), IMAGE_REQUIRED))
    mounts = item.get("volumeMounts", [])
    if mounts is None:
        problems.append(Problem(join_path(path, "volumeMounts"), MOUNTS_NOT_NULL))
    elif isinstance(mounts, list):
        for index, mount in enumerate(mounts):
            if isinstance(mount, Mapping) and mount.get("name") == CONFIG_VOLUME:
                problems.append(
                    Problem(join_path(join_path(path, "volumeMounts"), index), CONFIG_MOUNT_MANAGED)
                )
    return problems


def override_problems(override: Mapping[str, Any]) -> list[Problem]:
    """Every rule of the module docstring that ``override`` breaks, with its path."""
    problems: list[Problem] = []
    for key in ("containers", "volumes"):
        if key in override and override[key] is None:
            problems.append(Problem(join_path("pod_spec_override", key), LIST_NOT_NULL))
    for key in NAMED_LISTS:
        items = override.get(key)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            path = join_path(join_path("pod_spec_override", key), index)
            if key == "containers" and is_main_container_item(index, item):
                problems.extend(_main_container_problems(path, item))
                continue
            name = item.get("name") if isinstance(item, Mapping) else None
            if not (isinstance(name, str) and name):
                problems.append(Problem(path, NAME_REQUIRED))
            elif key != "volumes" and name.startswith(RESERVED_CONTAINER_PREFIXES):
                problems.append(Problem(join_path(path, "name"), RESERVED_NAME))
            elif key == "volumes" and name == CONFIG_VOLUME:
                problems.append(Problem(path, CONFIG_VOLUME_MANAGED))
    return problems

"""``pod_spec_override``: overlay a job's pod-spec fragment on a rendered pod spec.

Rules of :func:`merge_pod_spec` (Teraslice uses lodash ``merge``, which merges lists index
by index and so can overwrite the Teraslice container or the config volume; we do better,
docs/compatibility.md):

- dicts merge deeply, key by key; a key only in the override is added (after the base keys);
- a list whose override items are *all* objects with a string ``name`` (containers,
  initContainers, volumes, volumeMounts, env, ports, imagePullSecrets...) merges by name:
  an item whose name exists in the base is merged into it (deeply, same rules), others are
  appended; base items are never removed or reordered;
- any other list, scalar or ``null`` replaces the base value;
- the result never shares structure with the inputs, and the inputs are never mutated;
- the main container is addressed as ``containers[0]`` without a name or by the alias
  ``"teraslice"`` (:mod:`teraslice_k8s.models.pod_override`): such an item is merged into the
  pod's own main container, so one override reaches the main container of both pods;
- the main container and the config volume can never be dropped or broken: if the merged spec
  lost a base container or volume (possible only by replacing the whole list with unnamed items
  or ``null``), or the main container lost its image or its config mount, or the config volume
  changed, :class:`ValidationError` is raised at the path that did it. Submit-time validation
  (``override_problems``) refuses the same overrides earlier; this is the render-time guard.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.pod_override import (
    CONFIG_MOUNT_MANAGED,
    CONFIG_VOLUME,
    CONFIG_VOLUME_MANAGED,
    IMAGE_REQUIRED,
    is_main_container_item,
)

#: Lists of the pod spec whose base items must survive any override.
PROTECTED_LISTS = ("containers", "volumes")


def _all_named(items: list[Any]) -> bool:
    return all(isinstance(item, Mapping) and isinstance(item.get("name"), str) for item in items)


def _merge_named(base: list[Any], override: list[Any]) -> list[Any]:
    result = [copy.deepcopy(item) for item in base]
    index = {
        item["name"]: position
        for position, item in enumerate(result)
        if isinstance(item, Mapping) and isinstance(item.get("name"), str)
    }
    for item in override:
        position = index.get(item["name"])
        if position is None:
            index[item["name"]] = len(result)
            result.append(copy.deepcopy(item))
        else:
            result[position] = _merge_value(result[position], item)
    return result


def _merge_value(base: Any, override: Any) -> Any:
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        return _merge_dicts(base, override)
    if isinstance(base, list) and isinstance(override, list) and override and _all_named(override):
        return _merge_named(base, override)
    if isinstance(base, list) and isinstance(override, list) and not override and _all_named(base) and base:
        # An empty list of a named list adds nothing (merging by name never removes).
        return copy.deepcopy(base)
    return copy.deepcopy(override)


def _merge_dicts(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for key, value in base.items():
        merged[key] = _merge_value(value, override[key]) if key in override else copy.deepcopy(value)
    for key, value in override.items():
        if key not in base:
            merged[key] = copy.deepcopy(value)
    return merged


def _names(items: Any) -> set[str]:
    if not isinstance(items, list):
        return set()
    return {item["name"] for item in items if isinstance(item, Mapping) and isinstance(item.get("name"), str)}


def _address_main_container(base: Mapping[str, Any], override: Mapping[str, Any]) -> Mapping[str, Any]:
    """``override`` with its main-container items renamed to ``base``'s main container."""
    containers, base_containers = override.get("containers"), base.get("containers")
    if not (isinstance(containers, list) and isinstance(base_containers, list) and base_containers):
        return override
    main_name = base_containers[0].get("name") if isinstance(base_containers[0], Mapping) else None
    if not isinstance(main_name, str):
        return override
    renamed = [
        {**item, "name": main_name} if is_main_container_item(index, item) else item
        for index, item in enumerate(containers)
    ]
    return {**override, "containers": renamed}


def _named(items: Any, name: str) -> Mapping[str, Any] | None:
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and item.get("name") == name:
                return item
    return None


def _broken_main_parts(base: Mapping[str, Any], merged: Mapping[str, Any]) -> list[Problem]:
    """The main container's image and config mount, and the config volume, as the base has them."""
    problems = []
    base_main = (base.get("containers") or [None])[0]
    if isinstance(base_main, Mapping) and isinstance(base_main.get("name"), str):
        main = _named(merged.get("containers"), base_main["name"]) or {}
        path = "pod_spec_override.containers[0]"
        image = main.get("image")
        if not (isinstance(image, str) and image.strip()):
            problems.append(Problem(f"{path}.image", IMAGE_REQUIRED))
        base_mount = _named(base_main.get("volumeMounts"), CONFIG_VOLUME)
        if base_mount is not None and _named(main.get("volumeMounts"), CONFIG_VOLUME) != base_mount:
            problems.append(Problem(f"{path}.volumeMounts", CONFIG_MOUNT_MANAGED))
    base_volume = _named(base.get("volumes"), CONFIG_VOLUME)
    if base_volume is not None and _named(merged.get("volumes"), CONFIG_VOLUME) != base_volume:
        problems.append(Problem("pod_spec_override.volumes", CONFIG_VOLUME_MANAGED))
    return problems


def merge_pod_spec(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` overlaid with ``override`` (rules in the module docstring)."""
    merged = _merge_dicts(base, _address_main_container(base, override))
    problems = [
        Problem(
            f"pod_spec_override.{key}",
            f"must not remove {', '.join(sorted(_names(base.get(key)) - _names(merged.get(key))))}; "
            "give every item a name (these lists merge by name)",
        )
        for key in PROTECTED_LISTS
        if _names(base.get(key)) - _names(merged.get(key))
    ]
    if not problems:
        problems = _broken_main_parts(base, merged)
    if problems:
        raise ValidationError(problems, subject="pod_spec_override")
    return merged

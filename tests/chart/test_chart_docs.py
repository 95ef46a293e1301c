"""charts/teraslice/README.md documents every value with its type and default, and the schema
types every value (so neither can drift from values.yaml)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import yaml

from .helm_render import CHART

VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
ROW = re.compile(r"^\| `(?P<key>[A-Za-z0-9_.]+)` \| (?P<type>[^|]+) \| `(?P<default>.*)` \| (?P<text>.+) \|$")


def _readme_rows() -> dict[str, dict[str, str]]:
    text = (CHART / "README.md").read_text()
    section = text.split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            match = ROW.match(line)
            assert match, f"malformed README row: {line}"
            rows[match["key"]] = match.groupdict()
    return rows


def _leaves(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, (*path, key))
    else:
        yield path


def _lookup(tree: Any, key: str) -> Any:
    for part in key.split("."):
        tree = tree[part]
    return tree


def _schema_type(key: str) -> str:
    node = SCHEMA
    for part in key.split("."):
        node = node["properties"][part]
    kind = node.get("type") or ("string" if "enum" in node else None)
    if kind is None:
        kind = [option["type"] for option in node["oneOf"]]
    return " or ".join(kind) if isinstance(kind, list) else str(kind)


def test_every_value_is_documented() -> None:
    documented = set(_readme_rows())
    undocumented = [
        ".".join(leaf)
        for leaf in _leaves(VALUES)
        if not any(".".join(leaf[:n]) in documented for n in range(1, len(leaf) + 1))
    ]
    assert undocumented == []


def test_documented_defaults_and_types_are_the_real_ones() -> None:
    for key, row in _readme_rows().items():
        assert json.loads(row["default"]) == _lookup(VALUES, key), key
        assert row["type"].strip() == _schema_type(key), key
        assert len(row["text"]) > 10, key


def test_schema_covers_exactly_the_values() -> None:
    """Every closed schema object (additionalProperties: false) has exactly the keys of values.yaml."""

    def check(node: dict[str, Any], values: dict[str, Any], path: str) -> None:
        if node.get("additionalProperties") is not False:
            return  # an open Kubernetes object (resources, probes, security contexts): typed as a whole
        assert set(node["properties"]) - {"global"} == set(values), path or "(root)"
        for key, child in values.items():
            if isinstance(child, dict):
                check(node["properties"][key], child, f"{path}{key}.")

    check(SCHEMA, VALUES, "")
    assert SCHEMA["additionalProperties"] is False

"""Response bodies are ``JSON.stringify(body, null, 4)`` (Express's ``json spaces: 4``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teraslice_k8s.master.responses import render_json

# JSON values without floats: Python's json module writes them exactly as JSON.stringify does.
_SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@given(_VALUES)
@settings(max_examples=500, deadline=None)
def test_pretty_json_is_express_json_spaces_4(value: Any) -> None:
    # Python's json with indent=4 is JSON.stringify(v, null, 4) for these values; strings with
    # newlines, NULs and runs of spaces must not disturb the re-indentation.
    assert render_json(value) == json.dumps(value, indent=4, ensure_ascii=False).encode("utf-8")


def test_nested_and_empty_containers() -> None:
    body = {"a": [1, {"b": []}, {}], "c": {"d": {"e": "  \n  \x00"}}}
    assert render_json(body) == (
        b'{\n    "a": [\n        1,\n        {\n            "b": []\n        },\n        {}\n    ],\n'
        b'    "c": {\n        "d": {\n            "e": "  \\n  \\u0000"\n        }\n    }\n}'
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"cpu": 5.0}, b'{\n    "cpu": 5\n}'),  # JSON.stringify prints integral numbers without .0
        ([1e16, 1e-6, 0.5], b"[\n    10000000000000000,\n    0.000001,\n    0.5\n]"),
        ({"x": float("nan")}, b'{\n    "x": null\n}'),
        ("plain", b'"plain"'),
    ],
)
def test_numbers_as_javascript_prints_them(value: Any, text: bytes) -> None:
    assert render_json(value) == text


def test_values_orjson_refuses_keep_the_javascript_rules() -> None:
    # Beyond-64-bit integers print exactly, only lone surrogates are escaped, UTF-8 stays.
    body = {"lone": "\ud800é", "big": 2**70, "rate": 0.00001, "t": 1.5e-7, "é": [2.0**60]}
    assert (
        render_json(body)
        == (
            '{\n    "lone": "\\ud800é",\n    "big": 1180591620717411303424,\n    "rate": 0.00001,\n'
            '    "t": 1.5e-7,\n    "é": [\n        1152921504606847000\n    ]\n}'
        ).encode()
    )
    assert json.loads(render_json(body)) == {**body, "é": [1152921504606847000]}


def test_nesting_deeper_than_orjson_allows_still_renders() -> None:
    deep: list[Any] = []
    for _ in range(300):
        deep = [deep]
    text = render_json({"deep": deep})
    assert text.startswith(b'{\n    "deep": [\n        [\n') and json.loads(text) == {"deep": deep}

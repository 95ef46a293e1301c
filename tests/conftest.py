"""Shared pytest configuration for every test folder.

``--update-golden`` is registered here (as well as in the folders that use it) because pytest
only reads options from conftest files loaded before it parses the command line; this makes
``pytest --update-golden`` work from the repository root.
"""

from __future__ import annotations

import contextlib

import pytest

# The session's real cluster (`k8s_cluster`) and per-test namespaces (`k8s_namespace`), for the
# tests marked `cluster` in every folder; nothing starts unless a test asks for them.
from support.k8s_real import k8s_cluster, k8s_namespace  # noqa: F401


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # a folder conftest may register it too
        parser.addoption(
            "--update-golden",
            action="store_true",
            default=False,
            help="rewrite golden files from the current code instead of comparing",
        )

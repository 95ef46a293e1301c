"""Pytest fixtures around the Kubernetes emulator, shared by integration and e2e tests.

Import them into a folder's ``conftest.py`` (``from support.k8s_fixtures import k8s_emulator``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.k8s_emulator import EmulatorThread


@pytest.fixture
def k8s_emulator() -> Iterator[EmulatorThread]:
    """A fresh emulator on a random local port (``.url``), stopped after the test."""
    with EmulatorThread() as emulator:
        yield emulator

"""Fixtures for the integration tests: the Kubernetes emulator over real HTTP and friends."""

from support.k8s_fixtures import (
    api,
    backend,
    config,
    emulator,
    events,
    execution,
    k8s_emulator,
    make_api,
    make_backend,
    sleeps,
)

__all__ = [
    "api",
    "backend",
    "config",
    "emulator",
    "events",
    "execution",
    "k8s_emulator",
    "make_api",
    "make_backend",
    "sleeps",
]

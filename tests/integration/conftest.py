"""Fixtures for the integration tests (Kubernetes emulator over real HTTP)."""

from support.k8s_fixtures import k8s_emulator

__all__ = ["k8s_emulator"]

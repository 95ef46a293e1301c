"""Tests on a real cluster: the session's control plane and per-test namespaces come from
``support.k8s_real`` (registered in ``tests/conftest.py``, shared with ``tests/chart``)."""

"""``python -m teraslice_k8s.cli``."""

from teraslice_k8s.cli import entrypoint

entrypoint()

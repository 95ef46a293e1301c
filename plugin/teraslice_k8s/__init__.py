"""teraslice-k8s: a Teraslice-compatible data-processing platform for Kubernetes."""

__version__ = "0.1.0"
#: The Teraslice release whose API, labels and job schema this package matches.
TERASLICE_COMPAT_VERSION = "v3.18.0"

"""Operations: the API (:mod:`.base`), the entry-point registry and job-time validation."""

from teraslice_k8s.runtime.operations.validation import validate_operations

__all__ = ["validate_operations"]

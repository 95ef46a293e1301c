"""Options of ``counter``."""

from __future__ import annotations

from pydantic import Field

from teraslice_k8s.runtime.operations.base import OpOptions


class CounterOptions(OpOptions):
    total: int = Field(1000, gt=0, description="how many records in all")
    per_slice: int = Field(100, gt=0, description="records per slice")

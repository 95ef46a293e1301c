"""Options of ``uppercase``: validated when the job is submitted."""

from __future__ import annotations

from pydantic import Field

from teraslice_k8s.runtime.operations.base import OpOptions


class UppercaseOptions(OpOptions):
    fields: list[str] = Field(default=["url"], min_length=1, description="record fields to upper-case")

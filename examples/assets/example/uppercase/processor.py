"""``uppercase``: upper-cases the string values of some fields of every record."""

from __future__ import annotations

from typing import ClassVar

from teraslice_k8s.runtime.operations.base import Batch, OpOptions, Processor, SliceRequest

from .schema import UppercaseOptions


class Uppercase(Processor):
    # schema.py's model becomes this operation's options anyway; naming it here types them.
    Options: ClassVar[type[OpOptions]] = UppercaseOptions
    options: UppercaseOptions

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        fields = self.options.fields
        for record in batch:
            for field in fields:
                value = record.get(field)
                if isinstance(value, str):
                    record[field] = value.upper()
        return batch

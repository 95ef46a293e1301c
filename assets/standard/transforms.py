"""The six ts-transforms operations: not implemented yet. Each is registered with options that
always fail, so a job naming one is refused at submit (``operations[i]: <op> (ts-transforms)
is not implemented yet ...``) instead of as an unknown operation."""

from __future__ import annotations

from typing import ClassVar

from pydantic import model_validator

from teraslice_k8s.runtime.operations.base import Batch, OpOptions, Processor, SliceRequest

TRANSFORM_OPS = ("extraction", "match", "output", "post_process", "selection", "transform")


class NotImplementedOptions(OpOptions):
    @model_validator(mode="after")
    def _refuse(self) -> NotImplementedOptions:
        raise ValueError(
            f"{self.op.split('@', 1)[0]} is a ts-transforms operation of the standard asset, "
            "which is not implemented yet (docs/standard-asset.md)"
        )


class NotImplementedTransform(Processor):
    Options: ClassVar[type[OpOptions]] = NotImplementedOptions

    @classmethod
    def named(cls, name: str) -> type[NotImplementedTransform]:
        return type(f"NotImplemented_{name}", (cls,), {"__module__": cls.__module__})

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        raise NotImplementedError(f"{self.options.op} is not implemented")

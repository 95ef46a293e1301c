"""Instantiates a job's operations: the reader (index 0) and the processors after it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.runtime.operations.base import OpContext, Processor, Reader, merged_op_config
from teraslice_k8s.runtime.operations.registry import get_operation, op_name
from teraslice_k8s.runtime.operations.validation import parse_options, validate_operations


def check_operations(execution: Mapping[str, Any]) -> None:
    """Raise ValidationError if the execution's operations are not runnable."""
    problems = validate_operations(execution.get("operations") or [], execution.get("apis") or [], execution)
    if problems:
        raise ValidationError(problems, subject="execution")


def build_reader(execution: Mapping[str, Any], context: OpContext) -> Reader:
    op = execution["operations"][0]
    cls = get_operation(op["_op"])
    reader = cls(context, parse_options(cls, merged_op_config(op, execution.get("apis") or [])))
    assert isinstance(reader, Reader)
    return reader


def build_processors(execution: Mapping[str, Any], context: OpContext) -> list[Processor]:
    out: list[Processor] = []
    for op in execution["operations"][1:]:
        cls = get_operation(op["_op"])
        proc = cls(context, parse_options(cls, merged_op_config(op, execution.get("apis") or [])))
        assert isinstance(proc, Processor)
        out.append(proc)
    return out


def operation_names(execution: Mapping[str, Any]) -> list[str]:
    return [op_name(str(op.get("_op", ""))) for op in execution.get("operations") or []]

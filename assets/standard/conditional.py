"""drop_field_conditional and count_by_field (map processors)."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_validator

from teraslice_k8s.runtime.metrics import ScrapeCounter
from teraslice_k8s.runtime.operations.base import Batch, OpOptions, SliceRequest

from ._lib import MapProcessor, compile_js_regex, each_record, js_text, json_text, required_string
from .validators import VALIDATORS

RequiredString = Annotated[str, BeforeValidator(required_string)]
_REGEX_FORM = re.compile(r"^/(.*)/([a-z]*)$", re.DOTALL)


class DropFieldConditionalOptions(OpOptions):
    field: RequiredString = Field(None, validate_default=True)  # type: ignore[assignment]
    regex: Any = None
    validation_method: Any = None
    validation_args: Any = None
    invert: bool = False

    @model_validator(mode="after")
    def _whole(self) -> DropFieldConditionalOptions:
        regex, method, args = self.regex, self.validation_method, self.validation_args
        if regex is None and method is None:
            raise ValueError("Config must have a regex or validation_method")
        if regex is not None and method is not None:
            raise ValueError("Must choose either a regex or validation method, cannot use both")
        if args is not None and method is None:
            raise ValueError("Must have a validation method if validation_args are present")
        if regex is not None:
            if not isinstance(regex, str):
                raise ValueError(f"Regex must be a string value received {js_text(regex)}")
            match = _REGEX_FORM.match(regex)
            if not match:
                raise ValueError(f"regex must be in formate of /REGEX/Flags, received {regex}")
            for flag in match.group(2):
                if flag not in "dgimsuy":
                    raise ValueError(
                        f"Acceptable regex flags are d or g or i or m or s or u or y, received {flag}"
                    )
        if method is not None and method not in VALIDATORS:
            raise ValueError(
                f"{js_text(method)} is not a valid function, "
                "only FieldValidation methods from data-mate are valid"
            )
        if args is not None and not isinstance(args, Mapping):
            raise ValueError(f"Validation args must be an object, received {js_text(args)}")
        return self


class DropFieldConditional(MapProcessor):
    Options: ClassVar[type[OpOptions]] = DropFieldConditionalOptions
    options: DropFieldConditionalOptions

    async def initialize(self) -> None:
        opts = self.options
        self._pattern = compile_js_regex(opts.regex) if opts.regex is not None else None
        self._validator = VALIDATORS[opts.validation_method] if opts.validation_method else None

    def _drop(self, record: Any) -> Any:
        opts = self.options
        value = record.get(opts.field)
        if self._pattern is not None:
            if not isinstance(value, str):
                raise TypeError(f"drop_field_conditional: {opts.field} is not a string: {js_text(value)}")
            hit = bool(self._pattern.search(value))
        else:
            assert self._validator is not None
            hit = bool(self._validator(value, opts.validation_args))
        if hit != opts.invert:
            record.pop(opts.field, None)
        return record

    def map(self, record: Any) -> Any:
        return each_record(record, self._drop)


class CountByFieldOptions(OpOptions):
    field: RequiredString = Field(None, validate_default=True)  # type: ignore[assignment]
    collect_metrics: bool = False


class CountByField(MapProcessor):
    """Records pass through; with ``collect_metrics`` the values of ``field`` are counted
    process-wide under their label, the value's ``JSON.stringify`` (``100`` and ``"100"``
    differ; a missing field is ``undefined``), also when the process has no metrics.

    When it has (``OpContext.metrics``), ``initialize`` registers the counter
    ``teraslice_job_<_op>_count_total`` (help ``<_op> value field count``; labels: the
    process's default labels, ``value``, ``field``, ``op_name``), and every scrape adds each
    pending count to its series and resets it to 0 (Teraslice's collect callback)."""

    Options: ClassVar[type[OpOptions]] = CountByFieldOptions
    options: CountByFieldOptions
    #: label -> {"count": pending, "field"}, shared by every count_by_field of the process and
    #: keyed by the label only (the field is that of the first instance that saw it), as in
    #: Teraslice. Changed under :attr:`lock`: scrapes run on the metrics server's thread.
    counts: ClassVar[dict[str, dict[str, Any]]] = {}
    lock: ClassVar[threading.Lock] = threading.Lock()

    async def initialize(self) -> None:
        metrics = self.context.metrics
        if not self.options.collect_metrics or metrics is None:
            return
        op = self.options.op
        defaults = metrics.default_labels

        def collect(counter: ScrapeCounter) -> None:
            with CountByField.lock:
                pending = [
                    (label, entry["field"], entry["count"]) for label, entry in CountByField.counts.items()
                ]
                for entry in CountByField.counts.values():
                    entry["count"] = 0
            for label, field, count in pending:
                counter.inc({**defaults, "value": label, "field": field, "op_name": op}, count)

        metrics.add_counter(
            f"{op}_count_total", f"{op} value field count", [*defaults, "value", "field", "op_name"], collect
        )

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        if self.options.collect_metrics:
            name = self.options.field
            seen = Counter(json_label(r[name]) if name in r else "undefined" for r in batch)
            with CountByField.lock:
                for label, count in seen.items():
                    entry = CountByField.counts.setdefault(label, {"count": 0, "field": name})
                    entry["count"] += count
        return list(batch)

    def map(self, record: Any) -> Any:
        return record


def json_label(value: Any) -> str:
    """JavaScript's ``JSON.stringify`` of a value (non-finite numbers are ``null``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    return json_text(value)

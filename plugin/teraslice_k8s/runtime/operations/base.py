"""The operation API: what a reader (slicer + fetcher) and a processor implement.

A job's first operation is a :class:`Reader`; the execution controller asks it for a
:class:`Slicer` and workers ask it for a fetcher (:meth:`Reader.fetch`). Every later operation
is a :class:`Processor`.

**Options schema (required).** Every operation class declares its options as ``Options``, a
subclass of :class:`OpOptions` (a pydantic model in strict mode: ``"5"`` is not a number,
``1`` is not a boolean), with Teraslice's option names, types, defaults and ranges; an
operation without one (``Options`` left as :class:`OpOptions` itself) is refused at submit
(:func:`declared_options`). Unknown keys are kept (Teraslice's validator keeps them too) and
reported as warnings; wrong values become field-path problems at submit time
(``operations[0].size: must be > 0``, see :mod:`teraslice_k8s.runtime.operations.validation`).
An operation without options declares an empty subclass (``class NoopOptions(OpOptions): pass``).

Operations receive and return *batches*: lists of records (usually dicts). They are called
once per slice, so per-slice overhead (a coroutine call) is fine but per-record work must stay
cheap: ``data_generator -> noop`` must sustain 100,000 records/s per worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from teraslice_k8s.runtime.metrics import JobMetrics

#: One slice request as produced by a slicer (JSON-serialisable).
SliceRequest = dict[str, Any]
Batch = list[Any]


def _date_string(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise PydanticCustomError("date", 'must be a date string (ISO 8601, e.g. "2024-05-01T00:00:00Z")')


#: A date option: an ISO 8601 string (``"2024-05-01"``, ``"2024-05-01T12:00:00.000Z"``).
DateString = Annotated[datetime, BeforeValidator(_date_string)]


class OpOptions(BaseModel):
    """Keys every operation config may carry (Teraslice's common op keys, §2.3).

    Subclass it to declare an operation's options (see the module docstring). Strict: JSON
    values are taken as they are (no ``"5"`` -> 5, ``1`` -> True, ``5.0`` -> 5).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, strict=True)

    op: str = Field(alias="_op", min_length=1)
    encoding: Literal["json", "raw"] = Field("json", alias="_encoding")
    dead_letter_action: str = Field("throw", alias="_dead_letter_action", min_length=1)
    connection: str = Field("default", alias="_connection", min_length=1)
    api_name: str | None = Field(None, alias="_api_name", min_length=1)


class OptionsNotDeclared(TypeError):
    """An operation class that does not declare its options schema."""


def declared_options(cls: type[Operation]) -> type[OpOptions]:
    """The options model ``cls`` declares (``cls.Options``), or :class:`OptionsNotDeclared`
    when it declares none (``Options`` is :class:`OpOptions` itself or not a subclass of it):
    every operation, built in, installed or from an asset, must declare one."""
    options = getattr(cls, "Options", None)
    if not (isinstance(options, type) and issubclass(options, OpOptions)) or options is OpOptions:
        raise OptionsNotDeclared(
            f"{cls.__module__}.{cls.__qualname__} declares no options schema "
            "(Options = a subclass of OpOptions, docs/operations.md)"
        )
    return options


@dataclass(slots=True)
class OpContext:
    """What an operation may use at runtime, in the execution controller or a worker.

    ``execution`` is the execution record (validated job + ids); ``connectors`` is
    terafoundation's ``{type: {name: config}}``; ``set_metadata`` stores a value under the
    execution record's ``metadata`` (slicers only; a no-op in workers).

    ``metrics`` is the process's Prometheus metrics
    (:class:`~teraslice_k8s.runtime.metrics.JobMetrics`: ``add_counter``, ``default_labels``)
    when the job, or terafoundation, sets ``prom_metrics_enabled``, else None: Teraslice's
    ``context.apis.foundation.promMetrics``. It is set before ``initialize``, where
    operations register their metrics; an operation must work the same without it.
    """

    execution: Mapping[str, Any]
    connectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    worker_id: str = ""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("teraslice_k8s.op"))
    set_metadata: Callable[[str, Any], None] = field(default=lambda _key, _value: None)
    metrics: JobMetrics | None = None

    @property
    def lifecycle(self) -> str:
        return str(self.execution.get("lifecycle", "once"))

    @property
    def operations(self) -> Sequence[Mapping[str, Any]]:
        ops: Sequence[Mapping[str, Any]] = self.execution.get("operations", [])
        return ops

    @property
    def apis(self) -> Sequence[Mapping[str, Any]]:
        apis: Sequence[Mapping[str, Any]] = self.execution.get("apis", []) or []
        return apis

    def connection_config(self, kinds: Sequence[str], name: str) -> tuple[str, Mapping[str, Any]]:
        """The terafoundation connector ``name`` of the first of ``kinds`` that has it, with its
        config path (``terafoundation.connectors.<kind>.<name>``, for error messages)."""
        for kind in kinds:
            conns = self.connectors.get(kind) or {}
            if name in conns:
                found: Mapping[str, Any] = conns[name]
                return f"terafoundation.connectors.{kind}.{name}", found
        raise LookupError(f'no terafoundation connector "{name}" of type {" or ".join(kinds)}')


def merged_op_config(op: Mapping[str, Any], apis: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The op config with its API's keys underneath (op-level keys win), like Teraslice v5 ops."""
    api_name = op.get("_api_name")
    merged: dict[str, Any] = {}
    if api_name:
        for api in apis:
            if api.get("_name") == api_name:
                merged.update({k: v for k, v in api.items() if k != "_name"})
                break
    merged.update(op)
    return merged


class Operation:
    """Common base: holds the parsed options and the context."""

    #: The pydantic model of this operation's options (subclasses narrow it).
    Options: ClassVar[type[OpOptions]] = OpOptions
    #: Terafoundation connector types this operation reads its ``_connection`` from (empty:
    #: it uses none). At submit the named connector (``default`` when unset) must exist.
    connector_types: ClassVar[tuple[str, ...]] = ()

    def __init__(self, context: OpContext, options: OpOptions) -> None:
        self.context = context
        self.options = options

    @classmethod
    def validate_job(cls, options: OpOptions, index: int, job: Mapping[str, Any]) -> list[str]:
        """Whole-job checks beyond the options model; return messages (path = the op)."""
        return []

    async def initialize(self) -> None:
        """Open clients etc.; runs once per process before the first slice."""

    async def shutdown(self) -> None:
        """Flush and close; runs once when the process stops."""


class Slicer:
    """Produces slice requests in the execution controller.

    :meth:`slice` returns one request, a list of requests (subslices), or ``None``: for
    ``once`` jobs ``None`` means this slicer is done; for ``persistent`` jobs it means "nothing
    right now" and the controller polls again later.
    """

    #: Whether :meth:`initialize` can resume from recovery data (``_recover``).
    recoverable: ClassVar[bool] = False

    async def initialize(self, recovery: Sequence[Mapping[str, Any]] = ()) -> None:
        """``recovery`` is ``[{"slicer_id", "lastSlice"}]`` (Teraslice's recovery data)."""

    async def slice(self) -> SliceRequest | list[SliceRequest] | None:
        raise NotImplementedError

    def max_queue_length(self, workers: int) -> int:
        """How many slices the controller may keep queued for this slicer."""
        return 10000


class Reader(Operation):
    """The first operation: makes slicers (EC) and fetches a slice's records (worker)."""

    def make_slicers(self, count: int) -> list[Slicer]:
        """``count`` parallel slicers (job ``slicers``); index = ``slicer_id``."""
        raise NotImplementedError

    async def fetch(self, request: SliceRequest) -> Batch:
        raise NotImplementedError


class Processor(Operation):
    """Every operation after the reader: transforms the batch."""

    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        raise NotImplementedError

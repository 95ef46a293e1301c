"""Run operations without a cluster: the harness behind ``teraslice-k8s ops run`` and a
pytest-friendly API for people writing their own operations (docs/operations.md).

:func:`run_ops` runs a list of processor configs the way a worker runs a job's processors:

1. the configs are checked exactly as at submit (the same
   :func:`~teraslice_k8s.runtime.operations.validation.validate_operations`, behind a stand-in
   reader, so problems name ``operations[i]`` of *your* list); a problem raises
   :class:`OpsError`;
2. each operation is built from its parsed options and ``initialize()``\\ d;
3. every slice goes through every processor in order (``process(batch, request)``);
4. with ``flush=True``, Teraslice's shutdown flush (``runtime/flush.py``) runs after the slices;
5. ``shutdown()`` runs on every operation, also after a failure.

A failing ``initialize``, slice or flush raises :class:`OpsError` with the error's message.
Operations are looked up in ``assets`` (loaded with :func:`load_asset`, in that order), then in
the installed operations (the built-ins and the ``teraslice_k8s.operations`` entry points).
:func:`standard_asset` is the repository's ``assets/standard`` source tree when this package
runs from a checkout, else the standard bundle in ``./autoload`` (the image's ``/app/autoload``).

Records: :func:`record` / :func:`from_json` make ``DataEntity`` objects (``{"data", "metadata"}``,
``{"raw", "metadata"}`` for raw UTF-8 bytes, ``{"window": [...], "metadata"}`` for a
``DataWindow``); :func:`to_json` is the reverse, without ``_createTime`` (it differs per run).

Example (pytest)::

    from teraslice_k8s.testing import run_ops, record

    def test_my_op():
        result = run_ops([{"_op": "set_key", "field": "id"}], input=[record({"id": 1})])
        assert result.json()["output"] == [{"data": {"id": 1}, "metadata": {"_key": 1}}]
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from teraslice_k8s.runtime.assets import unpack
from teraslice_k8s.runtime.data_entity import CREATE_TIME, DataEntity, DataWindow
from teraslice_k8s.runtime.flush import flush
from teraslice_k8s.runtime.metrics import JobMetrics
from teraslice_k8s.runtime.operations.asset_ops import LoadedAsset, asset_scope, import_asset
from teraslice_k8s.runtime.operations.base import Batch, OpContext, Operation, Processor, merged_op_config
from teraslice_k8s.runtime.operations.registry import get_operation
from teraslice_k8s.runtime.operations.validation import parse_options, validate_operations

#: The import id of the repository's ``assets/standard`` (shared with tests/unit/standard, so
#: the source tree is imported once per process).
STANDARD_SOURCE_ID = "standard-source-tree"
#: The stand-in reader validation needs in front of the processors (never run).
_READER = {"_op": "data_generator"}


class OpsError(Exception):
    """An operation rejected its config, or ``initialize``, a slice or the flush failed."""


class CaseError(ValueError):
    """A record or case document does not have the expected shape (not an operation's fault)."""


@dataclass
class Result:
    """What :func:`run_ops` returns: the records of each slice, of the flush, and all of them."""

    slices: list[Batch]
    flushed: Batch | None = None
    #: Whether the run was given ``slices`` (else ``input``): decides the ``json()`` keys.
    sliced: bool = False
    output: Batch = field(init=False)

    def __post_init__(self) -> None:
        self.output = [r for batch in self.slices for r in batch] + list(self.flushed or [])

    def json(self) -> dict[str, Any]:
        """The answer ``ops run`` prints: ``output``, plus ``slices`` and ``flushed`` when asked."""
        answer: dict[str, Any] = {"output": [to_json(r) for r in self.output]}
        if self.sliced:
            answer["slices"] = [[to_json(r) for r in batch] for batch in self.slices]
        if self.flushed is not None:
            answer["flushed"] = [to_json(r) for r in self.flushed]
        return answer


# -- records -----------------------------------------------------------------------------------


def record(data: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None) -> DataEntity:
    """A DataEntity with body ``data`` and ``metadata`` (``_createTime`` set now unless given)."""
    return DataEntity(data or {}, metadata)


def from_json(value: Any, where: str = "record") -> DataEntity:
    """A record from its JSON form: ``{"data": {...}, "metadata": {...}}``, ``{"raw": "<text>",
    "metadata"}`` (raw bytes = the UTF-8 text, empty body) or ``{"window": [<record>...],
    "metadata"}`` (a DataWindow). :class:`CaseError` names ``where`` for anything else."""
    if not isinstance(value, Mapping):
        raise CaseError(f"{where}: must be an object with data, raw or window")
    unknown = sorted(set(value) - {"data", "raw", "window", "metadata"})
    kinds = [k for k in ("data", "raw", "window") if k in value]
    if unknown or len(kinds) > 1:
        raise CaseError(f"{where}: takes data, raw or window (one of them) and metadata; got {sorted(value)}")
    metadata = value.get("metadata")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, Mapping):
        raise CaseError(f"{where}.metadata: must be an object")
    if "window" in value:
        records = value["window"]
        if not isinstance(records, list):
            raise CaseError(f"{where}.window: must be a list of records")
        return DataWindow([from_json(r, f"{where}.window[{i}]") for i, r in enumerate(records)], metadata)
    if "raw" in value:
        if not isinstance(value["raw"], str):
            raise CaseError(f"{where}.raw: must be a string (the record's raw bytes as UTF-8 text)")
        return DataEntity.from_raw(value["raw"], metadata)
    data = value.get("data", {})
    if not isinstance(data, Mapping):
        raise CaseError(f"{where}.data: must be an object")
    return DataEntity(data, metadata)


def to_json(value: Any) -> Any:
    """A record as ``ops run`` shows it: ``{"data", "metadata"}`` (``"raw"`` too when it has raw
    bytes), a DataWindow as ``{"window": [...], "metadata"}``; metadata without ``_createTime``.
    A plain dict has empty metadata; values JSON cannot hold are shown as their ``str``."""
    if isinstance(value, DataWindow):
        return {"window": [to_json(r) for r in value.as_array()], "metadata": _meta(value)}
    if isinstance(value, DataEntity):
        shown: dict[str, Any] = {"data": _plain(dict(value)), "metadata": _meta(value)}
        raw = value._raw
        if raw is not None:
            shown["raw"] = raw.decode("utf-8", "replace")
        return shown
    if isinstance(value, Mapping):
        return {"data": _plain(dict(value)), "metadata": {}}
    return {"data": _plain(value), "metadata": {}}


def _meta(entity: DataEntity) -> dict[str, Any]:
    meta: dict[str, Any] = _plain({k: v for k, v in entity.get_metadata().items() if k != CREATE_TIME})
    return meta


def _plain(value: Any) -> Any:
    """``value`` as JSON data (records nested in a body become their bodies)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


# -- assets ------------------------------------------------------------------------------------


#: The standard asset's source tree in a checkout (an editable install runs from it).
STANDARD_SOURCE = Path(__file__).resolve().parents[2] / "assets" / "standard"


def standard_asset() -> LoadedAsset | None:
    """The standard asset without a master: the checkout's ``assets/standard``, else the bundle
    in ``./autoload`` (the master's default ``autoload_directory``; ``/app/autoload`` in the
    image, whose working directory is ``/app``), else None."""
    if (STANDARD_SOURCE / "asset.json").is_file():
        return import_asset(STANDARD_SOURCE_ID, STANDARD_SOURCE)
    bundles = sorted(Path.cwd().glob("autoload/standard-v*-bundle.zip"))
    return load_asset(bundles[-1]) if bundles else None


def load_asset(path: str | Path) -> LoadedAsset:
    """An asset from an unpacked bundle directory (holding ``asset.json``) or a bundle ``.zip``
    (unpacked into a temporary directory, removed when the process exits)."""
    where = Path(path).resolve()
    asset_id = "local-" + hashlib.sha1(str(where).encode()).hexdigest()[:12]
    if where.is_file():
        root = Path(tempfile.mkdtemp(prefix="teraslice-k8s-ops-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        return import_asset(asset_id, unpack(where.read_bytes(), root, asset_id))
    if not (where / "asset.json").is_file():
        raise CaseError(f"{path}: not an asset bundle (no asset.json in it, and not a .zip)")
    return import_asset(asset_id, where)


def select_assets(names: Sequence[str] | None, available: Sequence[LoadedAsset]) -> list[LoadedAsset]:
    """The ``available`` assets a case's ``assets`` names (``name`` or ``name:version``, in its
    order); all of them when ``names`` is None. :class:`OpsError` for a name none has."""
    if names is None:
        return list(available)
    chosen: list[LoadedAsset] = []
    for name in names:
        base = name.partition(":")[0]
        found = [a for a in available if base in (a.name, a.id)]
        if not found:
            have = ", ".join(sorted({a.name for a in available})) or "none"
            raise OpsError(
                f'asset "{name}" is not loaded (loaded: {have}; add its directory with --asset DIR)'
            )
        chosen.extend(a for a in found if a not in chosen)
    return chosen


# -- running -----------------------------------------------------------------------------------


def run_ops(
    operations: Sequence[Mapping[str, Any]],
    input: Sequence[Any] | None = None,
    *,
    slices: Sequence[Sequence[Any]] | None = None,
    flush: bool = False,
    assets: Sequence[LoadedAsset] | None = None,
    apis: Sequence[Mapping[str, Any]] = (),
    connectors: Mapping[str, Mapping[str, Any]] | None = None,
    metrics: JobMetrics | None = None,
) -> Result:
    """Run ``operations`` over ``input`` (one slice) or ``slices`` (in order), then the shutdown
    flush when ``flush``; see the module docstring. Records may be DataEntities or plain dicts
    (wrapped as DataEntities, as a fetcher's are). ``assets`` default: :func:`standard_asset`.
    ``metrics``: the process metrics the operations see as ``OpContext.metrics`` (default
    None, as with ``prom_metrics_enabled: false``); pass a :class:`JobMetrics` and read its
    ``registry`` (``prometheus_client.generate_latest``) to see what they export.
    Not for use inside a running event loop (use :func:`arun_ops`)."""
    return asyncio.run(
        arun_ops(
            operations,
            input=input,
            slices=slices,
            flush=flush,
            assets=assets,
            apis=apis,
            connectors=connectors,
            metrics=metrics,
        )
    )


async def arun_ops(
    operations: Sequence[Mapping[str, Any]],
    input: Sequence[Any] | None = None,
    *,
    slices: Sequence[Sequence[Any]] | None = None,
    flush: bool = False,
    assets: Sequence[LoadedAsset] | None = None,
    apis: Sequence[Mapping[str, Any]] = (),
    connectors: Mapping[str, Mapping[str, Any]] | None = None,
    metrics: JobMetrics | None = None,
) -> Result:
    """:func:`run_ops` for async tests."""
    if (input is None) == (slices is None):
        raise CaseError("give either input (one slice) or slices")
    batches = [list(input or [])] if slices is None else [list(s) for s in slices]
    if assets is None:
        standard = standard_asset()
        assets = [standard] if standard else []
    with asset_scope(assets):  # the run too: APIs and senders are looked up at initialize
        processors = build(operations, apis, connectors, metrics)
        return await _run(processors, batches, flush, sliced=slices is not None)


def build(
    operations: Sequence[Mapping[str, Any]],
    apis: Sequence[Mapping[str, Any]] = (),
    connectors: Mapping[str, Mapping[str, Any]] | None = None,
    metrics: JobMetrics | None = None,
) -> list[Processor]:
    """Validate ``operations`` as at submit and build them (assets already in scope)."""
    job = {"operations": [_READER, *operations], "apis": list(apis)}
    problems = validate_operations(job["operations"], job["apis"], job, connectors=connectors)
    if problems:
        raise OpsError("; ".join(_renumber(str(p)) for p in problems))
    context = OpContext(job, connectors or {}, worker_id="ops-run", metrics=metrics)
    built: list[Processor] = []
    for op in operations:
        cls: type[Operation] = get_operation(str(op["_op"]))
        proc = cls(context, parse_options(cls, merged_op_config(op, job["apis"])))
        assert isinstance(proc, Processor)  # validation refuses anything else
        built.append(proc)
    return built


def _renumber(message: str) -> str:
    """``operations[i+1]`` (behind the stand-in reader) -> ``operations[i]``."""
    head, sep, rest = message.partition("operations[")
    if not sep:
        return message
    number, _, tail = rest.partition("]")
    return f"{head}operations[{int(number) - 1}]{tail}" if number.isdigit() else message


async def _run(processors: list[Processor], batches: list[Batch], with_flush: bool, sliced: bool) -> Result:
    outputs: list[Batch] = []
    flushed: Batch | None = None
    started: list[Processor] = []
    try:
        for proc in processors:
            await _step(proc.initialize(), f"{proc.options.op}: initialize failed")
            started.append(proc)
        for index, batch in enumerate(batches):
            records = [r if isinstance(r, DataEntity) else DataEntity.make(r) for r in batch]
            for proc in processors:
                records = await _step(proc.process(records, {}), f"slice {index} failed in {proc.options.op}")
            outputs.append(records)
        if with_flush:
            flushed = await _step(flush(processors), "the shutdown flush failed")
    finally:
        for proc in reversed(started):
            await proc.shutdown()
    return Result(outputs, flushed, sliced)


async def _step(awaitable: Any, context: str) -> Any:
    try:
        return await awaitable
    except Exception as exc:
        raise OpsError(str(exc) or f"{context}: {type(exc).__name__}") from exc

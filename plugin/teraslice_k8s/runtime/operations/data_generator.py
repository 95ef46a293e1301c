"""``data_generator``: Teraslice's standard-asset reader that makes up records.

Slicer (EC): ``once`` jobs produce ``{"count": n, "processed": total_so_far}`` requests until
``size`` records were requested (the last slice is shortened), then ``None``; ``persistent``
jobs produce slices of the per-slice count forever. Per-slice count (Teraslice's rule): the
last operation's ``size`` if it has one, else the ``size`` of the API its ``_api_name``
names, else ``size`` — unless the extension option ``slice_size`` is set, which wins.
The slicer is recoverable: it resumes after ``lastSlice.processed``.

Fetcher (worker): ``count`` records shaped like the standard asset's default schema
(``ip, userAgent, url, uuid, created, ipv6, location, bytes``). Generation draws raw bits from
one ``random.Random`` per slice (seeded from ``seed`` and the slice's ``processed`` offset when
``seed`` is set, so output is reproducible whichever worker runs it) and formats with cheap
string operations: no per-record object models.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import random
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from teraslice_k8s.runtime.operations.base import (
    Batch,
    DateString,
    OpContext,
    OpOptions,
    Reader,
    Slicer,
    SliceRequest,
)

_OCTETS = [str(i) for i in range(256)]
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.67",
    "curl/8.7.1",
)
_HOSTS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")
_TLDS = ("com", "net", "org", "io", "info", "biz")
_PATHS = ("", "index.html", "about", "products", "search", "cart", "blog/post", "api/v1/items")
_URLS = tuple(f"http://{h}.{t}/{p}" for h in _HOSTS for t in _TLDS for p in _PATHS)
_MAX_BYTES = 5_000_000


class DataGeneratorOptions(OpOptions):
    size: int = Field(5000, gt=0, description="once: total records; persistent: records per slice")
    slice_size: int | None = Field(None, gt=0, description="records per slice (extension)")
    json_schema: str | None = None
    start: DateString | None = None
    end: DateString | None = None
    format: Literal["dateNow", "isoBetween", "utcDate", "utcBetween"] | None = None
    stress_test: bool = False
    delay: float = Field(0, ge=0, le=86_400, description="seconds to sleep per slice (at most a day)")
    date_key: str = Field("created", min_length=1)
    set_id: Literal["base64url", "hexadecimal", "HEXADECIMAL"] | None = None
    id_start_key: str | None = None
    seed: int | None = None

    @model_validator(mode="after")
    def _rules(self) -> DataGeneratorOptions:
        if self.json_schema is not None:
            raise ValueError("json_schema (custom mocker schemas) is not supported by teraslice-k8s")
        if self.stress_test and self.delay:
            raise ValueError("delay is not allowed together with stress_test")
        if self.id_start_key is not None and self.set_id is None:
            raise ValueError("id_start_key requires set_id")
        if self.format in ("isoBetween", "utcBetween") and (self.start is None or self.end is None):
            raise ValueError(f"format {self.format} requires start and end")
        if self.start and self.end and self.start >= self.end:
            raise ValueError("start must be before end")
        return self


def slice_count(options: DataGeneratorOptions, execution: Mapping[str, Any]) -> int:
    """Records per slice (see the module docstring for the rule)."""
    if options.slice_size:
        return options.slice_size
    ops: Sequence[Mapping[str, Any]] = execution.get("operations") or []
    last = ops[-1] if ops else {}
    if len(ops) > 1 and isinstance(last.get("size"), int) and last["size"] > 0:
        return int(last["size"])
    api_name = last.get("_api_name") if len(ops) > 1 else None
    if api_name:
        for api in execution.get("apis") or []:
            if api.get("_name") == api_name and isinstance(api.get("size"), int) and api["size"] > 0:
                return int(api["size"])
    return options.size


class DataGeneratorSlicer(Slicer):
    recoverable: ClassVar[bool] = True

    def __init__(self, total: int | None, per_slice: int) -> None:
        #: ``None`` = persistent (endless).
        self.total = total
        self.per_slice = per_slice
        self.processed = 0

    async def initialize(self, recovery: Sequence[Mapping[str, Any]] = ()) -> None:
        for item in recovery:
            last = item.get("lastSlice") or {}
            request = last.get("request", last) if isinstance(last, Mapping) else {}
            if isinstance(request, str):
                import json

                request = json.loads(request)
            self.processed = max(
                self.processed, int(request.get("processed", 0)) + int(request.get("count", 0))
            )

    async def slice(self) -> SliceRequest | None:
        if self.total is None:
            request = {"count": self.per_slice, "processed": self.processed}
            self.processed += self.per_slice
            return request
        remaining = self.total - self.processed
        if remaining <= 0:
            return None
        count = min(self.per_slice, remaining)
        request = {"count": count, "processed": self.processed}
        self.processed += count
        return request

    def max_queue_length(self, workers: int) -> int:
        return max(3 * workers, 3)


class _DateSource:
    """Formats the date field; caches per millisecond for the ``now`` formats."""

    def __init__(self, options: DataGeneratorOptions) -> None:
        self.format = options.format or "dateNow"
        self.start = options.start.timestamp() if options.start else 0.0
        self.end = options.end.timestamp() if options.end else 0.0
        self._last_ms = -1
        self._last = ""

    def now(self) -> str:
        now = time.time()
        ms = int(now * 1000)
        if ms != self._last_ms:
            self._last_ms = ms
            if self.format == "utcDate":
                self._last = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
                self._last = self._last.replace("+00:00", "Z")
            else:  # dateNow: local time with offset, like moment's YYYY-MM-DDTHH:mm:ss.SSSZ
                self._last = datetime.fromtimestamp(now).astimezone().isoformat(timespec="milliseconds")
        return self._last

    def between(self, rng: random.Random) -> str:
        ts = self.start + rng.random() * (self.end - self.start)
        if self.format == "utcBetween":
            return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


class DataGenerator(Reader):
    Options: ClassVar[type[OpOptions]] = DataGeneratorOptions
    options: DataGeneratorOptions

    def __init__(self, context: OpContext, options: OpOptions) -> None:
        super().__init__(context, options)
        self._rng = random.Random()

    def make_slicers(self, count: int) -> list[Slicer]:
        per_slice = slice_count(self.options, self.context.execution)
        if self.context.lifecycle == "persistent":
            return [DataGeneratorSlicer(None, per_slice)]
        # Several slicers would each generate ``size``; Teraslice's data_generator is single-slicer.
        return [DataGeneratorSlicer(self.options.size, per_slice)]

    async def fetch(self, request: SliceRequest) -> Batch:
        count = int(request.get("count", 0))
        if self.options.delay:
            await asyncio.sleep(self.options.delay)
        seed = self.options.seed
        rng = self._rng if seed is None else random.Random(seed * 1000003 ^ int(request.get("processed", 0)))
        if self.options.stress_test:
            one = generate(1, rng, self.options)[0]
            return [dict(one) for _ in range(count)]
        return generate(count, rng, self.options)


def _coordinate_table(span: int, size: int) -> tuple[str, ...]:
    step = 2 * span / size
    return tuple(f"{-span + i * step + (i * 7919 % 1000) / 1e5:.5f}" for i in range(size))


_LATS = _coordinate_table(90, 4096)
_LONS = _coordinate_table(180, 4096)
#: Random bytes consumed per record: 4 ip, 16 uuid, 16 ipv6, 3 bytes, 1 agent, 1 url, 3 location.
_STRIDE = 44


def generate(count: int, rng: random.Random, options: DataGeneratorOptions) -> list[dict[str, Any]]:
    """``count`` records of the default schema.

    One ``randbytes`` draw (and one ``hex()``) per slice feeds every field; the hot loop only
    slices strings and indexes tables (locations come from 4096x4096 precomputed pairs), which
    keeps generation well above 100,000 records/s per worker.
    """
    # The records hold only strings and ints, so they cannot form cycles; pausing the cyclic
    # GC while allocating them doubles throughput (its passes would scan every new dict).
    paused = gc.isenabled()
    gc.disable()
    try:
        return _generate(count, rng, options)
    finally:
        if paused:
            gc.enable()


def _generate(count: int, rng: random.Random, options: DataGeneratorOptions) -> list[dict[str, Any]]:
    blob = rng.randbytes(count * _STRIDE)
    hx = blob.hex()
    octets = _OCTETS
    agents = _USER_AGENTS
    n_agents = len(agents)
    urls = _URLS
    n_urls = len(urls)
    lats, lons = _LATS, _LONS
    variant = "89ab"
    dates = _DateSource(options)
    between = dates.format in ("isoBetween", "utcBetween")
    date_key = options.date_key
    set_id = options.set_id
    id_prefix = options.id_start_key or ""
    out: list[dict[str, Any]] = []
    append = out.append
    now = dates.now()
    for i in range(count):
        o = i * _STRIDE
        h = 2 * o
        if not i & 1023:
            now = dates.now()
        record: dict[str, Any] = {
            "ip": f"{octets[blob[o]]}.{octets[blob[o + 1]]}.{octets[blob[o + 2]]}.{octets[blob[o + 3]]}",
            "userAgent": agents[blob[o + 39] % n_agents],
            "url": urls[blob[o + 40] % n_urls],
            "uuid": f"{hx[h + 8 : h + 16]}-{hx[h + 16 : h + 20]}-4{hx[h + 21 : h + 24]}-"
            f"{variant[blob[o + 12] & 3]}{hx[h + 25 : h + 28]}-{hx[h + 28 : h + 40]}",
            date_key: dates.between(rng) if between else now,
            "ipv6": f"{hx[h + 40 : h + 44]}:{hx[h + 44 : h + 48]}:{hx[h + 48 : h + 52]}:"
            f"{hx[h + 52 : h + 56]}:{hx[h + 56 : h + 60]}:{hx[h + 60 : h + 64]}:"
            f"{hx[h + 64 : h + 68]}:{hx[h + 68 : h + 72]}",
            "location": f"{lats[(blob[o + 41] << 4 | blob[o + 42] >> 4)]}, "
            f"{lons[((blob[o + 42] & 15) << 8) | blob[o + 43]]}",
            "bytes": (blob[o + 36] << 16 | blob[o + 37] << 8 | blob[o + 38]) % _MAX_BYTES,
        }
        if set_id is not None:
            record["id"] = id_prefix + _make_id(rng.getrandbits(128), set_id)
        append(record)
    return out


def _make_id(value: int, kind: str) -> str:
    raw = value.to_bytes(16, "big")
    if kind == "base64url":
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return raw.hex().upper() if kind == "HEXADECIMAL" else raw.hex()

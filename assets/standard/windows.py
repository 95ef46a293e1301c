"""Stateful batchers that emit DataWindows: window, accumulate, accumulate_by_key."""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from teraslice_k8s.runtime.data_entity import DataWindow
from teraslice_k8s.runtime.operations.base import OpOptions

from ._lib import BatchProcessor, get_time, js_text, map_key, type_of

log = logging.getLogger("teraslice_k8s.standard.window")


def _now_ms() -> int:
    return int(time.time() * 1000)


class WindowOptions(OpOptions):
    time_field: str = Field("@timestamp", min_length=1)
    window_time_setting: Literal["event", "clock"] = "event"
    window_length: Any = 30000
    window_type: Literal["tumbling", "sliding"] = "tumbling"
    sliding_window_interval: Any = 0
    event_window_expiration: Any = 0

    @field_validator("window_length", mode="before")
    @classmethod
    def _length(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("window_size must be an integer greater than 0")
        return value

    @field_validator("sliding_window_interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("window_size must be an integer greater than 0")
        return value

    @field_validator("event_window_expiration", mode="before")
    @classmethod
    def _expiration(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("event_window_expiration must be an integer greater than or equal to 0")
        return value


class Window(BatchProcessor):
    """Tumbling or sliding time windows (event or clock time), emitted as DataWindows."""

    Options: ClassVar[type[OpOptions]] = WindowOptions
    options: WindowOptions

    async def initialize(self) -> None:
        self.windows: dict[int, DataWindow] = {}
        self.current_time: int | None = None

    def _close_expired(self, results: list[Any]) -> None:
        if self.current_time is None:
            return
        length = self.options.window_length
        for start in [s for s in self.windows if self.current_time - s > length]:
            results.append(self.windows.pop(start))

    def on_batch(self, batch: list[Any]) -> list[Any]:
        opts = self.options
        clock = opts.window_time_setting == "clock"
        results: list[Any] = []
        for record in batch:
            value = record.get(opts.time_field)
            if not value:
                continue  # a falsy time: the record is skipped (Teraslice's code)
            if clock:
                self.current_time = _now_ms()
            else:
                found = get_time(value)
                if found is False:
                    log.warning('could not create a window time from value: "%s"', js_text(value))
                else:
                    self.current_time = int(found)
            self._close_expired(results)
            if self.current_time is not None and (
                not self.windows
                or (
                    opts.window_type == "sliding"
                    and self.current_time - max(self.windows) >= opts.sliding_window_interval
                )
            ):
                self.windows.setdefault(self.current_time, DataWindow.make_window())
            for window in self.windows.values():
                window.set(record)
        if clock:
            self.current_time = _now_ms()
            self._close_expired(results)
        elif not batch:
            now = _now_ms()
            expiration = opts.event_window_expiration
            for start in [s for s, w in self.windows.items() if now - w.get_create_time() > expiration]:
                results.append(self.windows.pop(start))
        if self.flushing:
            results.extend(self.windows.values())
            self.windows.clear()
        return results

    async def on_flush_start(self) -> None:
        self.flushing = True


def _number(name: str, minimum: float | None = None) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"Invalid parameter {name}, must be of type number, got {type_of(value)}")
        if minimum is not None and value < minimum:
            raise ValueError(f"Invalid parameter {name}, this value must be >= {int(minimum)}")
        return value

    return check


class AccumulateOptions(OpOptions):
    empty_after: Any = 10
    flush_data_on_shutdown: Any = False

    @field_validator("empty_after", mode="before")
    @classmethod
    def _empty_after(cls, value: Any) -> Any:
        return _number("empty_after", 0)(value)

    @field_validator("flush_data_on_shutdown", mode="before")
    @classmethod
    def _flush(cls, value: Any) -> Any:
        if not isinstance(value, bool):
            raise ValueError(
                f"Invalid parameter flush_data_on_shutdown, expected boolean, got {type_of(value)}"
            )
        return value


class Accumulate(BatchProcessor):
    """Buffers records until ``empty_after`` empty slices in a row, then emits one DataWindow."""

    Options: ClassVar[type[OpOptions]] = AccumulateOptions
    options: AccumulateOptions

    async def initialize(self) -> None:
        self.buffer: list[Any] = []
        self.empty_count = 0

    def on_batch(self, batch: list[Any]) -> list[Any]:
        if batch:
            self.buffer.extend(batch)
            self.empty_count = 0
        else:
            self.empty_count += 1
        if (self.empty_count >= self.options.empty_after or self.flushing) and self.buffer:
            window = DataWindow.make_window(None, self.buffer)
            self.buffer = []
            return [window]
        return []

    async def on_flush_start(self) -> None:
        self.flushing = bool(self.options.flush_data_on_shutdown)


class AccumulateByKeyOptions(OpOptions):
    empty_after: int | float = 10
    key_field: str | None = None
    batch_return: bool = False
    batch_size: Any = 1000
    flush_data_on_shutdown: bool = False

    @field_validator("batch_size", mode="before")
    @classmethod
    def _batch_size(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("batch size must be an integer greater then 0")
        return value


class AccumulateByKey(BatchProcessor):
    """One bucket (DataWindow with ``_key``) per key; released like ``accumulate``."""

    Options: ClassVar[type[OpOptions]] = AccumulateByKeyOptions
    options: AccumulateByKeyOptions

    async def initialize(self) -> None:
        self.buckets: dict[Any, DataWindow] = {}
        self.empty_count = 0

    def _add(self, batch: list[Any]) -> None:
        field = self.options.key_field
        for record in batch:
            if field:
                key = record.get(field, _UNDEFINED)
            else:
                meta = record.get_metadata() if hasattr(record, "get_metadata") else {}
                key = meta.get("_key", _UNDEFINED)
            if key is _UNDEFINED:
                continue
            marker = map_key(key)
            bucket = self.buckets.get(marker)
            if bucket is None:
                bucket = self.buckets[marker] = DataWindow.make_window(key)
            bucket.set(record)

    def on_batch(self, batch: list[Any]) -> list[Any]:
        if batch:
            self._add(batch)
            self.empty_count = 0
        else:
            self.empty_count += 1
        ready = (self.empty_count >= self.options.empty_after and self.buckets) or self.flushing
        if not ready:
            return []
        if not self.options.batch_return:
            out = list(self.buckets.values())
            self.buckets.clear()
            return out
        out, total = [], 0
        for marker in list(self.buckets):
            if total >= self.options.batch_size:
                break
            window = self.buckets.pop(marker)
            out.append(window)
            total += len(window.as_array())
        return out

    async def on_flush_start(self) -> None:
        self.flushing = bool(self.options.flush_data_on_shutdown)


_UNDEFINED = object()

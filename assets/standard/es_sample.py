"""sample_exact_es_percent: sample_exact with the percentage read from an Elasticsearch document
(``_source.percent``) at start and every ``window_ms`` after."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from typing import Any, ClassVar

from pydantic import Field, field_validator

from teraslice_k8s.runtime.connectors import ES_CONNECTOR_TYPES, elasticsearch_client
from teraslice_k8s.runtime.data_entity import type_of
from teraslice_k8s.runtime.operations.base import OpOptions

from ._lib import BatchProcessor, js_text

log = logging.getLogger("teraslice_k8s.standard.sample_exact_es_percent")


class SampleExactEsPercentOptions(OpOptions):
    es_connection: Any = Field("default", alias="connection")
    index: Any = Field(None, validate_default=True)
    document_id: Any = Field(None, validate_default=True)
    window_ms: Any = 300_000
    seed: int | None = Field(None, description="ours: seed the shuffle (tests)")

    @field_validator("es_connection", mode="before")
    @classmethod
    def _connection(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("This field is optional but if specified it must be of type string")
        return value or "default"

    @field_validator("index", mode="before")
    @classmethod
    def _index(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be of type string")
        if not value:
            raise ValueError("must not be an empty string")
        if any("A" <= c <= "Z" for c in value):
            raise ValueError("must be lowercase")
        return value

    @field_validator("document_id", mode="before")
    @classmethod
    def _document(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("window_ms", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 100 <= value <= 3_600_000:
            raise ValueError("must be a number between 100 and 3,600,000 milliseconds (1 hour).")
        return value


class SampleExactEsPercent(BatchProcessor):
    Options: ClassVar[type[OpOptions]] = SampleExactEsPercentOptions
    options: SampleExactEsPercentOptions
    connector_types: ClassVar[tuple[str, ...]] = tuple(ES_CONNECTOR_TYPES)

    async def initialize(self) -> None:
        self._random = random.Random(self.options.seed)
        self.percentage = 0.0
        self._es: Any = None
        await self.refresh()
        self._timer = asyncio.ensure_future(self._refresh_loop())

    def _client(self) -> Any:
        if self._es is None:
            path, config = self.context.connection_config(ES_CONNECTOR_TYPES, self.options.es_connection)
            self._es = elasticsearch_client(config, path)
        return self._es

    def fetch_percent(self) -> float:
        opts = self.options
        from elasticsearch import NotFoundError

        try:
            doc = self._client().get(index=opts.index, id=opts.document_id)
        except NotFoundError as err:
            raise LookupError(
                f"The document with id {opts.document_id} was not found in index {opts.index} of "
                f"elasticsearch-next connection {opts.es_connection}."
            ) from err
        percent = (doc.get("_source") or {}).get("percent")
        if isinstance(percent, str):
            try:
                percent = float(percent)
            except ValueError as err:
                raise ValueError(
                    "Percent could not be converted from a string to a number:"
                    f"_id: {opts.document_id}, percent: {percent}"
                ) from err
        elif isinstance(percent, bool) or not isinstance(percent, int | float):
            raise TypeError(
                f"Expected percent to be of type number or string, found {type_of(percent)}. "
                f"_id: {opts.document_id}, percent: {js_text(percent)}"
            )
        if not 0 <= percent <= 100 or math.isnan(percent):
            raise ValueError(f"Percent must be a number between 0 and 100, received {js_text(percent)}.")
        return float(percent) / 100

    async def refresh(self) -> None:
        try:
            self.percentage = await asyncio.to_thread(self.fetch_percent)
        except Exception as err:
            if self.percentage:
                log.warning("keeping sample percentage %s: %s", self.percentage * 100, err)
                return
            opts = self.options
            raise RuntimeError(
                f"SampleExactESPercentage failed to retrieve percentage from index {opts.index} of "
                f"elasticsearch-next connection {opts.es_connection}: {err}"
            ) from err

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.window_ms / 1000)
            try:
                await self.refresh()
            except RuntimeError as err:
                log.error("%s", err)

    def on_batch(self, batch: list[Any]) -> list[Any]:
        self._random.shuffle(batch)
        keep = math.floor(len(batch) * self.percentage)
        log.info(
            "Keeping %d record sample size of %d original records (%s%%)",
            keep,
            len(batch),
            js_text(self.percentage * 100),
        )
        return batch[:keep]

    async def shutdown(self) -> None:
        timer = getattr(self, "_timer", None)
        if timer is not None:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
        if getattr(self, "_es", None) is not None:
            self._es.close()
        await super().shutdown()

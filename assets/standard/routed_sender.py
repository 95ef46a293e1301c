"""routed_sender: sends each record to the sender of its ``standard:route`` (made by the job API
``_api_name``, e.g. ``elasticsearch_sender_api``) and returns the batch unchanged."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, field_validator

from teraslice_k8s.runtime.data_entity import ROUTE, DataEntity, type_of
from teraslice_k8s.runtime.operations.apis import OperationAPI, RouteSender, make_api
from teraslice_k8s.runtime.operations.base import OpOptions

from ._lib import BatchProcessor, required_string


def _routing(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise ValueError("Invalid parameter routing, it must be an object")
    if not value or not any(value.values()):
        raise ValueError("Invalid parameter routing, it must have keys and values set")
    if "*" in value and "**" in value:
        raise ValueError('routing cannot specify "*" and "**"')
    return value


class RoutedSenderOptions(OpOptions):
    api_name: Annotated[str, BeforeValidator(required_string)] = Field(  # type: ignore[assignment]
        None, alias="_api_name", validate_default=True
    )
    routing: Annotated[dict[str, Any], BeforeValidator(_routing)] = Field(None, validate_default=True)  # type: ignore[assignment]
    size: Any = 10000
    concurrency: Any = 10

    @field_validator("size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Invalid size parameter for routed_sender opConfig, it must be a number")
        if value <= 0:
            raise ValueError("Invalid size parameter for routed_sender, it must be greater than zero")
        return int(value)

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"Invalid parameter concurrency, must be a number, was given {type_of(value)}")
        if value <= 0:
            raise ValueError("Invalid parameter concurrency, it must be a positive integer greater than zero")
        return int(value)


class RoutedSender(BatchProcessor):
    Options: ClassVar[type[OpOptions]] = RoutedSenderOptions
    options: RoutedSenderOptions

    @classmethod
    def validate_job(cls, options: OpOptions, index: int, job: Mapping[str, Any]) -> list[str]:
        assert isinstance(options, RoutedSenderOptions)
        names = {api.get("_name") for api in job.get("apis") or [] if isinstance(api, Mapping)}
        if options.api_name not in names:
            return [
                f"Invalid parameter _api_name: {options.api_name}, could not find corresponding api "
                "on the job configuration"
            ]
        return []

    async def initialize(self) -> None:
        #: route -> connection name (a key "a,A" gives both routes).
        self.routes: dict[str, str] = {}
        for key, connection in self.options.routing.items():
            for route in key.split(","):
                self.routes[route.strip()] = connection
        self.api: OperationAPI = make_api(self.context, self.options.api_name)
        self.senders: dict[str, RouteSender] = {}
        self.verified: set[str] = set()
        if "**" in self.routes:
            self._sender("**")

    def _sender(self, route: str) -> RouteSender:
        sender = self.senders.get(route)
        if sender is None:
            sender = self.api.create(route, {"_key": route, "_connection": self.routes[route]})
            self.senders[route] = sender
        return sender

    def _route(self, batch: list[Any]) -> dict[str, list[Any]]:
        queues: dict[str, list[Any]] = {}
        routes = self.routes
        for record in batch:
            route = record.get_metadata(ROUTE) if isinstance(record, DataEntity) else None
            if route is not None and route in routes:
                target = route
            elif "*" in routes:
                target = "*"
            elif "**" in routes:
                if route is None or route == "":
                    self.dead_letter.reject(
                        record, ValueError("No data route was specified in record metadata")
                    )
                    continue
                sender = self._sender("**")
                verify = getattr(sender, "verify", None)
                if verify is not None and route not in self.verified:
                    verify(route)
                    self.verified.add(route)
                target = "**"
            elif route is None:
                self.dead_letter.reject(record, ValueError("No route was specified in record metadata"))
                continue
            else:
                self.dead_letter.reject(
                    record, ValueError(f"Invalid connection route: {route} was not found in routing")
                )
                continue
            queues.setdefault(target, []).append(record)
        return queues

    async def process(self, batch: list[Any], request: Any) -> list[Any]:
        queues = self._route(batch)
        limit = asyncio.Semaphore(self.options.concurrency)
        size = self.options.size

        async def send(route: str, chunk: list[Any]) -> None:
            sender = self._sender(route)
            async with limit:
                await asyncio.to_thread(sender.send, chunk)

        jobs = [
            send(route, records[i : i + size])
            for route, records in queues.items()
            for i in range(0, len(records), size)
        ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise RuntimeError("; ".join(f"{type(e).__name__}: {e}" for e in errors))
        return batch

    async def shutdown(self) -> None:
        await super().shutdown()
        api = getattr(self, "api", None)
        if api is not None:
            api.shutdown()

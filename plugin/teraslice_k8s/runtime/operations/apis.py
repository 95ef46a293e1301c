"""Operation APIs: the objects a job's ``apis[]`` entries become in a worker (Teraslice's APIs).

A job lists APIs as ``{"_name": "<type>[:<tag>]", ...settings}``; an operation names one with
``_api_name`` (``routed_sender``) or ``_dead_letter_action`` (dead-letter queue). The part of
``_name`` before the first ``:`` is the API **type**, looked up in :data:`API_TYPES`
(built in: ``elasticsearch_sender_api``; an asset or a package adds its own with
:func:`register_api`). Each operation that uses an API gets its own instance
(:func:`make_api`), built from the entry's settings.

An API implements what its users need:

- ``create(route, overrides) -> RouteSender`` — a *sender factory* for ``routed_sender``
  (Teraslice's RouteSenderAPI): ``overrides`` are ``{"_key": <route>, "_connection":
  <connection>}``; the sender has ``send(records) -> int | None`` and optionally
  ``verify(route)``;
- ``dead_letter(record, error)`` — a *dead-letter queue* for ``_dead_letter_action: <name>``.

Calls are synchronous (operations run them with ``asyncio.to_thread`` where they do I/O).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from teraslice_k8s.runtime.operations.base import OpContext


class APIError(LookupError):
    """A job API that cannot be found or does not do what is asked of it."""


@runtime_checkable
class RouteSender(Protocol):
    """What ``routed_sender`` sends a route's records to."""

    def send(self, records: Sequence[Any]) -> int | None: ...


class OperationAPI:
    """Base of API types: ``name`` is the entry's ``_name``, ``config`` its settings."""

    def __init__(self, context: OpContext, name: str, config: Mapping[str, Any]) -> None:
        self.context = context
        self.name = name
        self.config = dict(config)

    def create(self, route: str, overrides: Mapping[str, Any]) -> RouteSender:
        raise APIError(f'API "{self.name}" cannot create senders')

    def dead_letter(self, record: Any, error: BaseException) -> None:
        raise APIError(f'API "{self.name}" cannot take dead letters')

    def shutdown(self) -> None:
        """Close clients (called once by the operation that made the API)."""


#: API types by name (``_name`` up to its first ``:``).
API_TYPES: dict[str, type[OperationAPI]] = {}


def register_api(type_name: str, cls: type[OperationAPI]) -> None:
    API_TYPES[type_name] = cls


def api_config(context: OpContext, name: str) -> Mapping[str, Any]:
    for api in context.apis:
        if api.get("_name") == name:
            return api
    raise APIError(
        f"Invalid parameter _api_name: {name}, could not find corresponding api on the job configuration"
    )


def make_api(context: OpContext, name: str) -> OperationAPI:
    """A new instance of the job's API ``name`` (an ``apis[]`` entry's ``_name``)."""
    config = api_config(context, name)
    type_name = name.split(":", 1)[0]
    if type_name not in API_TYPES:
        # Built-ins register on import; the import is here so runtime start-up stays light.
        from teraslice_k8s.runtime.operations import elasticsearch_api  # noqa: F401
    cls = API_TYPES.get(type_name)
    if cls is None:
        known = ", ".join(sorted(API_TYPES)) or "none"
        raise APIError(f'API "{name}": unknown API type "{type_name}" (known: {known})')
    settings = {k: v for k, v in config.items() if k != "_name"}
    return cls(context, name, settings)

"""``elasticsearch_sender_api``: the Elasticsearch sender as a job API (Teraslice's
elasticsearch asset), for ``routed_sender`` and as a dead-letter queue.

Settings are ``elasticsearch_bulk``'s (``index``, ``size``, ``create``, ``max_retries_429``,
``_connection``). ``create(route, {"_key": route, "_connection": conn})`` makes a sender on the
connection ``conn`` that writes each record to ``<index>-<standard:route>`` (Teraslice's
sender does the same when it is made with a ``_key``); records keep their ``_key`` as the
document id. As a dead-letter queue it writes ``{"record": <body or text>, "error":
<message>}`` to ``index`` (ours: Teraslice's dead-letter APIs live in other assets).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from teraslice_k8s.runtime.operations.apis import OperationAPI, register_api
from teraslice_k8s.runtime.operations.elasticsearch import ElasticsearchBulk


class ElasticsearchSender:
    """One route's sender: an ``elasticsearch_bulk`` writer on the route's connection."""

    def __init__(self, bulk: ElasticsearchBulk) -> None:
        self.bulk = bulk

    def send(self, records: Sequence[Any]) -> int:
        if records:
            self.bulk._send_all(list(records))
        return len(records)

    def close(self) -> None:
        if self.bulk._es is not None:
            self.bulk._es.close()


class ElasticsearchSenderAPI(OperationAPI):
    def __init__(self, context: Any, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(context, name, config)
        self._senders: list[ElasticsearchSender] = []
        self._dlq: ElasticsearchSender | None = None

    def _bulk(self, overrides: Mapping[str, Any]) -> ElasticsearchBulk:
        config = {"_op": "elasticsearch_bulk", **self.config, **overrides}
        config.pop("_key", None)
        return ElasticsearchBulk(self.context, ElasticsearchBulk.Options.model_validate(config))

    def create(self, route: str, overrides: Mapping[str, Any]) -> ElasticsearchSender:
        bulk = self._bulk({k: v for k, v in overrides.items() if k == "_connection"})
        bulk.routed = bool(overrides.get("_key"))
        sender = ElasticsearchSender(bulk)
        self._senders.append(sender)
        return sender

    def dead_letter(self, record: Any, error: BaseException) -> None:
        if self._dlq is None:
            self._dlq = ElasticsearchSender(self._bulk({}))
            self._senders.append(self._dlq)
        if isinstance(record, bytes | bytearray):
            body: Any = bytes(record).decode("utf-8", "replace")
        else:
            body = dict(record) if isinstance(record, Mapping) else str(record)
        self._dlq.send([{"record": body, "error": str(error)}])

    def shutdown(self) -> None:
        for sender in self._senders:
            sender.close()


register_api("elasticsearch_sender_api", ElasticsearchSenderAPI)

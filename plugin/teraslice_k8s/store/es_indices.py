"""Start-up of the Elasticsearch store: its indices, created when missing, once the cluster answers.

:func:`ensure_indices` is idempotent (an index that exists, or that another process creates
first, is left as it is) and creates each index with an explicit ``dynamic: false`` mapping of
the index's fields and the shard/replica counts of ``teraslice.index_settings`` (Teraslice's
5/1 otherwise). It waits for a cluster that is unreachable or answers 5xx, up to
``startup_timeout``, with one warning line per attempt that names the nodes and the OS error in
one short line; a 4xx fails at once.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterator, Mapping, Sequence

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, Elasticsearch

from teraslice_k8s.store.base import StoreError
from teraslice_k8s.store.es_schema import Index

# Start-up lines log under the store's logger, as they did before this module existed: they
# are the store's story (the master's log shows them as ``store.elasticsearch``).
log = logging.getLogger("teraslice_k8s.store.elasticsearch")

#: ``[Errno 111] Connection refused`` inside a connection error's nested text.
_OS_ERROR = re.compile(r"\[Errno -?\d+\] [^)'\"]+")


def ensure_indices(
    client: Elasticsearch,
    indices: Sequence[Index],
    index_settings: Mapping[str, Mapping[str, int]],
    startup_timeout: float,
) -> None:
    """Create the missing ``indices`` (in order); while Elasticsearch is unreachable or answers
    5xx, retry every 2-4 s (Teraslice's jittered start-up delay) with one warning line per
    attempt, and give up with a :class:`StoreError` once ``startup_timeout`` seconds have
    passed. A 4xx other than "already exists" fails at once."""
    started = time.monotonic()
    deadline = started + startup_timeout
    attempt = 0
    for index in indices:
        settings = dict(index_settings.get(index.settings_key, {}))
        index_body = {
            "number_of_shards": settings.get("number_of_shards", 5),
            "number_of_replicas": settings.get("number_of_replicas", 1),
        }
        mappings = {"dynamic": False, "properties": dict(index.fields)}
        while True:
            attempt += 1
            try:
                if not client.indices.exists(index=index.name):
                    client.indices.create(index=index.name, settings={"index": index_body}, mappings=mappings)
                break
            except ApiError as error:
                if error.meta.status == 400 and error.error == "resource_already_exists_exception":
                    break
                if error.meta.status < 500:
                    raise StoreError(f"cannot create index {index.name}: {error}") from error
                failure: Exception = error
            except (TransportConnectionError, ConnectionTimeout) as error:
                failure = error
            left = deadline - time.monotonic()
            if left <= 0:
                what = "create index" if isinstance(failure, ApiError) else "reach Elasticsearch to create"
                raise StoreError(
                    f"cannot {what} {index.name}: {_describe(client, failure)} (gave up after "
                    f"{time.monotonic() - started:.0f} s, {_attempts(attempt)}: "
                    "teraslice.storage.startup_timeout)"
                ) from failure
            log.warning(
                "Elasticsearch not ready for index %s (attempt %d, %s); retrying for up to %.0f s more",
                index.name,
                attempt,
                _describe(client, failure),
                left,
            )
            time.sleep(min(random.uniform(2.0, 4.0), left))


def _describe(client: Elasticsearch, error: Exception) -> str:
    """A start-up failure in one short line: the nodes and the OS error when there is one
    (the client's text nests the whole urllib3 chain: 250 characters per line)."""
    if isinstance(error, ApiError):
        return _one_line(error)
    found = next(filter(None, (_OS_ERROR.search(text) for text in _chain_texts(error))), None)
    detail = found.group(0).strip() if found else _one_line(error)
    try:
        nodes = ", ".join(str(node.base_url) for node in client.transport.node_pool.all())
    except AttributeError:  # not a client we can ask
        return detail
    return f"{nodes}: {detail}"


def _one_line(error: Exception) -> str:
    """An error as one short line: the client's messages can embed a whole urllib3 chain."""
    text = " ".join(str(error).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _chain_texts(error: BaseException) -> Iterator[str]:
    """The texts of ``error``, the errors it wraps (``errors``) and its causes."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        todo.extend(e for e in getattr(current, "errors", ()) if isinstance(e, BaseException))
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _attempts(count: int) -> str:
    return f"{count} attempt" + ("s" if count > 1 else "")

"""An HTTP emulator of the few Elasticsearch endpoints the Elasticsearch store calls.

No Elasticsearch server can be installed here (docs: tooling notes §7), so the store's code
(request shapes, response parsing, conflict and not-found handling, refresh handling) is
exercised against this emulator through the real ``elasticsearch`` client over real HTTP. It
is not an authority on Elasticsearch semantics: the same contract suite runs against a real
server whenever ``TEST_ELASTICSEARCH_URL`` is set (CI's service container).

What it models: indices with mappings (``exists``/``create``/``delete``), documents with
``_seq_no``/``_primary_term`` (``if_seq_no`` conflicts, ``op_type=create`` conflicts), partial
``_update`` (deep merge, ``document_missing_exception``), ``_bulk`` (``index``/``create``/``delete``),
``_search`` (``bool`` filter/must_not, ``term``, ``terms``, ``match_all``; ``sort`` with missing
last; ``from``/``size``; ``collapse``), ``_count``, ``_cat/indices`` (the JSON form: ``index``,
``docs.count``) and near-real-time visibility: searches see
documents only after a refresh (``refresh=true|wait_for`` on a write, or ``_refresh``), while
``GET`` by id is real-time, as in Elasticsearch.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class _Index:
    mappings: dict[str, Any]
    docs: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)  # id -> (source, seq_no)
    visible: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq_no: int = -1
    auto_id: int = 0
    deletes: int = 0  # index_total is seq_no + 1 (every write takes one)
    refreshes: int = 0

    def refresh(self) -> None:
        self.visible = {doc_id: source for doc_id, (source, _seq) in self.docs.items()}
        self.refreshes += 1

    def stats(self) -> dict[str, Any]:
        """``_stats`` of one shard copy: the counters the store's records_version reads."""
        return {
            "indexing": {"index_total": self.seq_no + 1, "delete_total": self.deletes},
            "refresh": {"total": self.refreshes, "external_total": self.refreshes},
        }


class _Error(Exception):
    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.body = (
            status,
            {
                "error": {"type": kind, "reason": reason, "root_cause": [{"type": kind, "reason": reason}]},
                "status": status,
            },
        )


def _deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class Emulator:
    """State of the emulated cluster; thread-safe (one lock, held per request)."""

    def __init__(self) -> None:
        self.indices: dict[str, _Index] = {}
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []

    def _index(self, name: str) -> _Index:
        if name not in self.indices:
            raise _Error(404, "index_not_found_exception", f"no such index [{name}]")
        return self.indices[name]

    def _write(
        self,
        index_name: str,
        doc_id: str | None,
        source: dict[str, Any],
        *,
        create: bool = False,
        if_seq_no: int | None = None,
    ) -> dict[str, Any]:
        index = self._index(index_name)
        if doc_id is None:
            index.auto_id += 1
            doc_id = f"auto-{index.auto_id}"
        current = index.docs.get(doc_id)
        if create and current is not None:
            raise _Error(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, document already exists",
            )
        if if_seq_no is not None and (current is None or current[1] != if_seq_no):
            raise _Error(
                409,
                "version_conflict_engine_exception",
                f"[{doc_id}]: version conflict, required seqNo [{if_seq_no}]",
            )
        index.seq_no += 1
        index.docs[doc_id] = (copy.deepcopy(source), index.seq_no)
        return {
            "_index": index_name,
            "_id": doc_id,
            "_seq_no": index.seq_no,
            "_primary_term": 1,
            "result": "updated" if current else "created",
            "_version": 1,
        }

    # -- query evaluation --

    def _field_type(self, index: _Index, name: str) -> str | None:
        props = index.mappings.get("properties", {})
        base, _, sub = name.partition(".")
        mapping = props.get(base)
        if mapping is None:
            return None
        if sub:
            return str(mapping.get("fields", {}).get(sub, {}).get("type"))
        return str(mapping.get("type", "object"))

    def _values(self, source: dict[str, Any], name: str) -> list[Any]:
        value = source.get(name.partition(".")[0])
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def _term(self, index: _Index, source: dict[str, Any], name: str, wanted: Any) -> bool:
        kind = self._field_type(index, name)
        if kind is None:
            return False
        values = self._values(source, name)
        if kind == "keyword":

            def text(value: Any) -> str:
                return str(value).lower() if isinstance(value, bool) else str(value)

            return any(text(v) == text(wanted) for v in values)
        return any(v == wanted for v in values)

    def _matches(self, index: _Index, source: dict[str, Any], query: dict[str, Any]) -> bool:
        ((kind, spec),) = query.items()
        if kind == "match_all":
            return True
        if kind == "term":
            ((name, wanted),) = spec.items()
            wanted = wanted["value"] if isinstance(wanted, dict) else wanted
            return self._term(index, source, name, wanted)
        if kind == "terms":
            ((name, options),) = spec.items()
            return any(self._term(index, source, name, option) for option in options)
        if kind == "bool":
            return all(self._matches(index, source, q) for q in spec.get("filter", [])) and not any(
                self._matches(index, source, q) for q in spec.get("must_not", [])
            )
        raise _Error(400, "parsing_exception", f"unknown query [{kind}]")

    def _sorted(
        self, index: _Index, hits: list[tuple[str, dict[str, Any]]], sort: list[dict[str, Any]]
    ) -> list[tuple[str, dict[str, Any]]]:
        for clause in reversed(sort):
            ((name, options),) = clause.items()
            if self._field_type(index, name) in (None, "text", "object"):
                raise _Error(400, "search_phase_execution_exception", f"cannot sort on [{name}]")
            descending = options.get("order") == "desc"

            def key(hit: tuple[str, dict[str, Any]], name: str = name) -> Any:
                values = self._values(hit[1], name)
                return min(values) if values else None

            present = [h for h in hits if key(h) is not None]
            missing = [h for h in hits if key(h) is None]
            hits = sorted(present, key=key, reverse=descending) + missing
        return hits

    def search(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._index(name)
        query = body.get("query", {"match_all": {}})
        hits = [(i, s) for i, s in index.visible.items() if self._matches(index, s, query)]
        hits = self._sorted(index, hits, body.get("sort", []))
        if "collapse" in body:
            seen: set[Any] = set()
            collapsed = []
            for hit in hits:
                value = tuple(self._values(hit[1], body["collapse"]["field"]))
                if value not in seen:
                    seen.add(value)
                    collapsed.append(hit)
            hits = collapsed
        start = int(body.get("from", 0))
        page = hits[start : start + int(body.get("size", 10))]
        return {
            "took": 1,
            "timed_out": False,
            "hits": {"hits": [{"_index": name, "_id": i, "_source": copy.deepcopy(s)} for i, s in page]},
        }

    def count(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        index = self._index(name)
        query = body.get("query", {"match_all": {}})
        return {"count": sum(self._matches(index, s, query) for s in index.visible.values())}

    # -- request dispatch --

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        refresh = query.get("refresh") in ("true", "wait_for", "")
        data = json.loads(body) if body and parts[-1:] != ["_bulk"] else {}
        if parts == ["_bulk"]:
            return 200, self.bulk(body, refresh)
        if parts == ["_cat", "indices"] and method == "GET":  # as ?format=json gives it
            listed = sorted(self.indices.items())
            return 200, [{"index": name, "docs.count": str(len(index.visible))} for name, index in listed]
        name = parts[0]
        if len(parts) == 1:
            if method == "HEAD":
                return (200 if name in self.indices else 404), None
            if method == "PUT":
                if name in self.indices:
                    raise _Error(400, "resource_already_exists_exception", f"index [{name}] already exists")
                self.indices[name] = _Index(mappings=data.get("mappings", {}))
                return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}
            if method == "DELETE":
                self._index(name)
                del self.indices[name]
                return 200, {"acknowledged": True}
        if parts[1] == "_stats":  # GET /<index>[,<index>...]/_stats[/<metrics>]
            shards = [self._index(n).stats() for n in unquote(name).split(",")]
            total = {
                group: {key: sum(s[group][key] for s in shards) for key in shards[0][group]}
                for group in shards[0]
            }
            return 200, {"_all": {"primaries": total, "total": total}, "indices": {}}
        index = self._index(name)
        action = parts[1]
        if action == "_refresh":
            index.refresh()
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        if action == "_search":
            return 200, self.search(name, data)
        if action == "_count":
            return 200, self.count(name, data)
        doc_id = parts[2]
        if action == "_doc" and method == "DELETE":  # the asset store deletes by id
            if doc_id not in index.docs:
                return 404, {"_index": name, "_id": doc_id, "result": "not_found"}
            del index.docs[doc_id]
            index.deletes += 1
            if refresh:
                index.refresh()
            return 200, {"_index": name, "_id": doc_id, "result": "deleted"}
        if action == "_doc" and method == "GET":
            if doc_id not in index.docs:
                return 404, {"_index": name, "_id": doc_id, "found": False}
            source, seq_no = index.docs[doc_id]
            return 200, {
                "_index": name,
                "_id": doc_id,
                "found": True,
                "_seq_no": seq_no,
                "_primary_term": 1,
                "_source": copy.deepcopy(source),
            }
        if action in ("_doc", "_create") and method in ("PUT", "POST"):
            seq = query.get("if_seq_no")
            result = self._write(
                name,
                doc_id,
                data,
                create=action == "_create" or query.get("op_type") == "create",
                if_seq_no=int(seq) if seq is not None else None,
            )
            if refresh:
                index.refresh()
            return (201 if result["result"] == "created" else 200), result
        if action == "_update" and method == "POST":
            if doc_id not in index.docs:
                raise _Error(404, "document_missing_exception", f"[{doc_id}]: document missing")
            result = self._write(name, doc_id, _deep_merge(index.docs[doc_id][0], data["doc"]))
            if refresh:
                index.refresh()
            return 200, result
        raise _Error(405, "unsupported", f"{method} {path}")

    def bulk(self, body: bytes, refresh: bool) -> dict[str, Any]:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items, errors = [], False
        touched = set()
        pairs: list[tuple[dict[str, Any], Any]] = []
        while lines:  # a delete action has no source line
            action_line = lines.pop(0)
            pairs.append((action_line, None if "delete" in action_line else lines.pop(0)))
        for action_line, source in pairs:
            ((action, meta),) = action_line.items()
            if action == "delete":
                index = self.indices.get(meta["_index"])
                found = index is not None and index.docs.pop(meta["_id"], None) is not None
                items.append({action: {"_id": meta["_id"], "status": 200 if found else 404}})
                errors = errors or not found
                if index is not None:
                    touched.add(meta["_index"])
                continue
            # Elasticsearch creates a missing index on a bulk write (action.auto_create_index).
            self.indices.setdefault(meta["_index"], _Index(mappings={}))
            try:
                result = self._write(meta["_index"], meta.get("_id"), source, create=action == "create")
                items.append({action: {**result, "status": 201}})
                touched.add(meta["_index"])
            except _Error as error:
                errors = True
                items.append(
                    {action: {"_id": meta.get("_id"), "status": error.status, "error": error.body["error"]}}
                )
        if refresh:
            for name in touched:
                self.indices[name].refresh()
        return {"took": 1, "errors": errors, "items": items}


def _handler(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *_args: Any) -> None:  # keep test output clean
            return

        def _serve(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            accept = self.headers.get("Accept", "")
            with emulator.lock:
                emulator.requests.append((self.command, url.path))
                try:
                    if "compatible-with=9" in accept:
                        raise _Error(400, "media_type_header_exception", "Accept version must be 8 or 7")
                    status, payload = emulator.handle(self.command, url.path, query, body)
                except _Error as error:
                    status, payload = error.status, error.body
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", "application/vnd.elasticsearch+json;compatible-with=8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

    return Handler


@contextmanager
def running_emulator() -> Iterator[tuple[str, Emulator]]:
    """Serve a fresh emulator on a free localhost port; yields (url, emulator)."""
    emulator = Emulator()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(emulator))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", emulator
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main(argv: list[str] | None = None) -> int:
    """Serve one emulator until SIGTERM/SIGINT: ``python es_emulator.py [--host H] [--port P]``.

    The default host is ``$POD_IP`` (else ``$TSK_POD_IP``, the process kubelet's name for it,
    else 127.0.0.1), so the real-cluster tests can run it as the chart's Elasticsearch image:
    each pod gets its own loopback address, and the Service name resolves to it.
    """
    import argparse
    import os
    import signal

    parser = argparse.ArgumentParser(description="Elasticsearch emulator for tests")
    parser.add_argument(
        "--host", default=os.environ.get("POD_IP") or os.environ.get("TSK_POD_IP") or "127.0.0.1"
    )
    parser.add_argument("--port", type=int, default=9200)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer((args.host, args.port), _handler(Emulator()))
    server.daemon_threads = True

    def stop(_signum: int, _frame: Any) -> None:
        # shutdown() waits for serve_forever to return, so it must run on another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"es_emulator listening on http://{args.host}:{args.port}", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

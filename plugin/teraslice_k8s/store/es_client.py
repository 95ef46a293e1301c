"""Elasticsearch clients for terafoundation-style connector settings, shared by the state store
and the runtime's operations so that both speak the same REST dialect.

Server compatibility: the official client sends ``compatible-with=<client major>`` media types;
an Elasticsearch 8 server refuses ``compatible-with=9``. Clients built here therefore ask for
version 8 compatibility, which Elasticsearch 8 and 9 servers both accept. OpenSearch is not
supported by the official client.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode
from elastic_transport._models import DEFAULT, DefaultType
from elastic_transport._node import NodeApiResponse
from elasticsearch import Elasticsearch

_COMPAT_FROM = re.compile(r"compatible-with=\d+")


class _Compat8Node(Urllib3HttpNode):
    """HTTP node asking for Elasticsearch 8 REST compatibility (accepted by 8.x and 9.x servers)."""

    def perform_request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        if headers is not None:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                if name in headers:
                    headers[name] = _COMPAT_FROM.sub("compatible-with=8", headers[name])
        return super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )


def make_client(
    nodes: str | Sequence[str],
    *,
    username: str | None = None,
    password: str | None = None,
    ca_certificate: str | None = None,
    request_timeout: float = 120.0,
    max_retries: int = 3,
) -> Elasticsearch:
    """An Elasticsearch client for terafoundation-style ``node`` URLs (``host:port`` gets
    ``http://``), with basic auth and a PEM CA when given, speaking 8.x-compatible REST."""
    urls = [nodes] if isinstance(nodes, str) else list(nodes)
    urls = [url if "://" in url else f"http://{url}" for url in urls]
    options: dict[str, Any] = {}
    if username is not None or password is not None:
        options["basic_auth"] = (username or "", password or "")
    if ca_certificate:
        options["ssl_context"] = ssl.create_default_context(cadata=ca_certificate)
    return Elasticsearch(
        urls,
        node_class=_Compat8Node,
        request_timeout=request_timeout,
        max_retries=max_retries,
        retry_on_timeout=True,
        **options,
    )

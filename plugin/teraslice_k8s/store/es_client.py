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
from collections.abc import Mapping, Sequence
from typing import Any

from elastic_transport import HttpHeaders, Urllib3HttpNode
from elastic_transport._models import DEFAULT, DefaultType
from elastic_transport._node import NodeApiResponse
from elasticsearch import Elasticsearch

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.schema import parse_duration

DEFAULT_NODE = "http://127.0.0.1:9200"
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


def connector_client(path: str, connector: Mapping[str, Any]) -> Elasticsearch:
    """A client for one terafoundation Elasticsearch connector's settings.

    Keys (terafoundation's names): ``node`` (or ``host``; a URL or a list, default
    ``http://127.0.0.1:9200``), ``username``/``password`` or ``auth: {username, password}``
    (each set key wins over ``auth``'s; empty means unset), ``caCertificate`` (PEM, string or list),
    ``requestTimeout`` (duration, default 2 minutes), ``maxRetries`` (default 3). A bad value
    raises :class:`ValidationError` naming ``<path>.<key>``; nothing is connected yet.
    """
    return make_client(**connector_options(path, connector))


def connector_options(path: str, connector: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`make_client`'s arguments for ``connector`` (see :func:`connector_client`)."""

    def invalid(key: str, message: str) -> ValidationError:
        return ValidationError([Problem(f"{path}.{key}", message)], subject="config")

    node_key = "node" if connector.get("node") else "host"  # an empty node falls back too
    nodes = connector.get(node_key) or DEFAULT_NODE
    if not (isinstance(nodes, str) or (isinstance(nodes, list) and all(isinstance(n, str) for n in nodes))):
        raise invalid(node_key, "must be a URL or a list of URLs")
    options: dict[str, Any] = {"nodes": nodes}
    auth = connector.get("auth")
    if auth is not None and (not isinstance(auth, Mapping) or not {"username", "password"} <= auth.keys()):
        raise invalid("auth", "must be a mapping with username and password")
    # Each of username/password: the connector's own key when set, else the auth mapping's.
    for key in ("username", "password"):
        value = connector.get(key) or (auth or {}).get(key)
        if value:
            options[key] = value
    ca = connector.get("caCertificate")
    if ca is not None:
        if isinstance(ca, list) and all(isinstance(c, str) for c in ca):
            ca = "\n".join(ca)
        if not isinstance(ca, str):
            raise invalid("caCertificate", "must be a PEM string or a list of PEM strings")
        options["ca_certificate"] = ca
    if "requestTimeout" in connector:
        try:
            options["request_timeout"] = parse_duration(connector["requestTimeout"]) / 1000
        except ValueError as error:
            raise invalid("requestTimeout", str(error)) from None
    retries = connector.get("maxRetries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise invalid("maxRetries", "must be a non-negative integer")
    options["max_retries"] = retries
    return options

"""The ``terafoundation:`` section of the cluster config: connections by connector type and
name (client-specific fields kept as extras), logging and Prometheus settings.

:meth:`TerafoundationConfig.connection` finds a connection by name among connector types, in
order; :data:`ELASTICSEARCH_CONNECTOR_TYPES` are the types that reach Elasticsearch. Validated
as part of :class:`~teraslice_k8s.models.config.SysConfig` (``parse_config``), which reports
wrong values with their key path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from teraslice_k8s.models.schema import ConfigSection


class ConnectionConfig(ConfigSection):
    """One terafoundation connection; client-specific fields are kept as extras."""

    node: str | list[str] | None = None
    username: str | None = None
    password: str | None = Field(default=None, repr=False)  # keep secrets out of logged reprs


#: Connector types that reach Elasticsearch, in lookup order. Teraslice names the connector
#: ``elasticsearch-next``; the Kubernetes clustering document spells it ``elasticsearch_next``
#: ("terafoundation.connectors.elasticsearch_next.default.node"), so both are accepted.
ELASTICSEARCH_CONNECTOR_TYPES: tuple[str, ...] = ("elasticsearch-next", "elasticsearch_next", "elasticsearch")


class TerafoundationConfig(ConfigSection):
    """The ``terafoundation:`` section."""

    connectors: dict[str, dict[str, ConnectionConfig]] = {}
    log_level: str | list[dict[str, str]] = "info"
    logging: list[str] = ["console"]
    log_path: str = Field(default_factory=lambda: str(Path.cwd()))
    workers: Annotated[int, Field(ge=0)] = Field(default_factory=lambda: os.cpu_count() or 1)
    prom_metrics_enabled: bool = False
    prom_metrics_port: Annotated[int, Field(ge=1, le=65535)] = 3333
    prom_metrics_add_default: bool = True
    prom_metrics_display_url: str = ""
    #: Ours: ``text`` lines or ``json`` (bunyan records, Teraslice's format) for every process;
    #: ``--log-format`` and ``$TERASLICE_LOG_FORMAT`` override it.
    log_format: Literal["text", "json"] = "text"

    def connection(
        self, name: str, types: tuple[str, ...] = ELASTICSEARCH_CONNECTOR_TYPES
    ) -> ConnectionConfig | None:
        """The first connection called ``name`` among connector ``types`` (in that order)."""
        found = self.connection_type(name, types)
        return None if found is None else self.connectors[found][name]

    def connection_type(
        self, name: str, types: tuple[str, ...] = ELASTICSEARCH_CONNECTOR_TYPES
    ) -> str | None:
        """The first of ``types`` that has a connection called ``name``, or None."""
        return next((kind for kind in types if name in self.connectors.get(kind, {})), None)

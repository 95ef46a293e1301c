"""``teraslice-k8s master --config teraslice.yaml``: serve the Teraslice API (default port 5678).

The backend follows ``teraslice.cluster_manager_type``: ``kubernetes``/``kubernetesV2`` create
a controller Job, Service and worker Deployment per execution (in-cluster credentials inside a
pod, else the kubeconfig: ``--kubeconfig``/``--context``, ``$KUBECONFIG`` or ``~/.kube/config``;
``--kube-api-url`` talks plain HTTP to e.g. ``kubectl proxy``); ``local`` runs them as local
processes. The store is the one the config names (SQLite by default in local mode).

Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 1 when the master cannot start,
2 for an invalid config (field paths on stderr).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from teraslice_k8s.cli.output import description
from teraslice_k8s.logs import FORMAT_ENV, FORMATS, LEVEL_NAMES


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "master",
        help="serve the Teraslice-compatible master API",
        description=description(__doc__),
    )
    parser.add_argument("--config", "-c", required=True, help="the cluster config file (teraslice.yaml)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default: teraslice.port, 5678)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (outside a pod; default $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--kube-api-url", help="plain Kubernetes API URL without credentials (kubectl proxy)")
    parser.add_argument(
        "--log-level",
        choices=(*LEVEL_NAMES, "warning"),
        help="log level (default: terafoundation.log_level, info)",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        help=f"text lines or json (bunyan) records, also for the processes it starts "
        f"(default: ${FORMAT_ENV}, terafoundation.log_format, text)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per API request (default: teraslice.api_access_log, off)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from teraslice_k8s import logs
    from teraslice_k8s.cli.output import config_error_lines
    from teraslice_k8s.errors import TerasliceError, ValidationError
    from teraslice_k8s.master.server import MasterServer, build_service
    from teraslice_k8s.models.config import load_config

    try:
        config = load_config(args.config)
    except ValidationError as err:
        for line in config_error_lines(args.config, err):
            print(line, file=sys.stderr)
        return 2
    if args.log_format:
        # The execution controllers and workers the local backend starts inherit it.
        os.environ[FORMAT_ENV] = args.log_format
    configured_level = config.terafoundation.log_level
    access_log = args.access_log or config.teraslice.api_access_log
    logs.configure(
        args.log_level or (configured_level if isinstance(configured_level, str) else "info"),
        assignment="cluster_master",
        fmt=logs.resolve_format(args.log_format, config.terafoundation.log_format),
        name=config.teraslice.name,
        access_log=access_log,
    )
    log = logging.getLogger(__name__)
    port = args.port if args.port is not None else config.teraslice.port
    try:
        service = build_service(
            config,
            config_path=args.config,
            kubeconfig=args.kubeconfig,
            kube_context=args.context,
            kube_api_url=args.kube_api_url,
        )
    except ValidationError as err:
        for line in config_error_lines(args.config, err):
            print(line, file=sys.stderr)
        return 2
    except (TerasliceError, OSError) as err:
        log.error("cannot start the master: %s", err)
        return 1
    try:
        server = MasterServer(service, args.host, port, access_log=access_log)
    except OSError as err:
        service.close()
        log.error("cannot listen on %s:%s: %s", args.host, port, err)
        return 1
    log.info(
        "teraslice master %s (%s) listening on %s:%s",
        config.teraslice.name,
        config.teraslice.cluster_manager_type,
        args.host,
        server.port,
    )
    try:
        server.run()
    except TerasliceError as err:
        log.error("the master stopped: %s", err)
        return 1
    log.info("teraslice master %s stopped", config.teraslice.name)
    return 0

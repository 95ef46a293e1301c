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
import sys
from typing import Any

LOG_LEVELS = ("debug", "info", "warning", "error")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "master",
        help="serve the Teraslice-compatible master API",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("--config", "-c", required=True, help="teraslice.yaml")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port (default: teraslice.port, 5678)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (outside a pod; default $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument("--kube-api-url", help="plain Kubernetes API URL without credentials (kubectl proxy)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from teraslice_k8s.errors import TerasliceError, ValidationError
    from teraslice_k8s.master.server import MasterServer, build_service
    from teraslice_k8s.models.config import load_config

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except ValidationError as err:
        for line in err.lines:
            print(f"{args.config}: {line}", file=sys.stderr)
        return 2
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
        for line in err.lines:
            print(f"{args.config}: {line}", file=sys.stderr)
        return 2
    except (TerasliceError, OSError) as err:
        print(f"cannot start the master: {err}", file=sys.stderr)
        return 1
    try:
        server = MasterServer(service, args.host, port, log_level=args.log_level)
    except OSError as err:
        service.close()
        print(f"cannot listen on {args.host}:{port}: {err}", file=sys.stderr)
        return 1
    logging.getLogger(__name__).info(
        "teraslice master %s (%s) listening on %s:%s",
        config.teraslice.name,
        config.teraslice.cluster_manager_type,
        args.host,
        server.port,
    )
    try:
        server.run()
    except TerasliceError as err:
        print(f"the master stopped: {err}", file=sys.stderr)
        return 1
    return 0

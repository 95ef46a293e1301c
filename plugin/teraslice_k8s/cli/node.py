"""``teraslice-k8s node``: the process a pod runs, chosen by ``NODE_TYPE``.

``execution_controller`` and ``worker`` run :func:`teraslice_k8s.runtime.node.main` (env:
``EX``, ``TERAFOUNDATION_CONFIG``, ``POD_IP``; see there); ``master`` runs
``teraslice-k8s master`` with ``--config``, else ``$TERAFOUNDATION_CONFIG``, else
``/app/config/teraslice.yaml``. ``python -m teraslice_k8s`` with ``NODE_TYPE`` set comes here.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

NODE_TYPES = ("execution_controller", "worker", "master")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "node",
        help="run the process named by NODE_TYPE (execution_controller, worker, master)",
        description="Run the process named by the NODE_TYPE environment variable.",
    )
    parser.add_argument(
        "--config", help="config file (default: $TERAFOUNDATION_CONFIG or /app/config/teraslice.yaml)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    node_type = os.environ.get("NODE_TYPE", "")
    if node_type == "master":
        from teraslice_k8s.cli import main
        from teraslice_k8s.runtime.node import DEFAULT_CONFIG

        config = args.config or os.environ.get("TERAFOUNDATION_CONFIG") or DEFAULT_CONFIG
        return main(["master", "--config", config])
    if node_type not in NODE_TYPES:
        print(f"NODE_TYPE: must be one of {', '.join(NODE_TYPES)} (got {node_type!r})", file=sys.stderr)
        return 2
    from teraslice_k8s.runtime.node import main as node_main

    return node_main(config_path=args.config)

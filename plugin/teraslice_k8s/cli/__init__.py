"""The ``teraslice-k8s`` console script.

Each subcommand lives in its own module here and exposes ``register(subparsers)``, which adds
its parser and sets ``handler`` (a ``(argparse.Namespace) -> int`` returning the exit code).
Modules import their heavy dependencies inside the handler so ``--help`` stays fast.

Exit codes: 0 success, 1 the operation failed, 2 invalid input (messages on stderr), 3 ``ops run``:
an operation refused its config or failed (the error as JSON on stdout), 141 the
reader of stdout went away (as tools killed by SIGPIPE; no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from teraslice_k8s import __version__

#: Subcommand modules, in ``--help`` order. A module that is missing is a packaging bug.
COMMAND_MODULES = ("render", "master", "run", "node", "client", "assets", "ops")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="teraslice-k8s",
        description="Teraslice-compatible data processing on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"teraslice_k8s.cli.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    code: int = handler(args)
    return code


def entrypoint(argv: Sequence[str] | None = None) -> None:
    """The console script: :func:`main`, ending quietly when stdout's reader goes away
    (``teraslice-k8s ex list --json | head -3``)."""
    from teraslice_k8s.cli.output import exit_on_closed_stdout

    sys.exit(exit_on_closed_stdout(lambda: main(argv)))

"""Logging of runtime processes: Teraslice level names mapped onto Python's."""

from __future__ import annotations

import logging
import sys

LEVELS = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}


def py_level(level: str) -> int:
    return LEVELS.get(level.lower(), logging.INFO)


def set_level(level: str) -> None:
    logging.getLogger("teraslice_k8s").setLevel(py_level(level))


def configure(level: str, role: str) -> None:
    """Log lines to stderr: ``<time> <role> <level> <logger>: <message>``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s {role} %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("teraslice_k8s")
    root.handlers[:] = [handler]
    root.propagate = False
    set_level(level)

"""One logging set-up for every role: master, execution controller, worker and ``run``.

:func:`configure` installs a single handler on the root logger (stderr) with one of two formats:

- ``text``: ``<time> <LEVEL> <assignment>[<ex_id prefix>] <module>: <message>``, e.g.
  ``2025-01-02T03:04:05.678Z INFO cluster_master master.service: job ... registered``;
- ``json``: one bunyan record per line, Teraslice's log format (``name`` = cluster name,
  ``hostname``, ``pid``, the context fields ``assignment``/``module``/``ex_id``/``job_id``/
  ``worker_id``, numeric ``level`` 10 trace .. 60 fatal, ``msg``, ``time`` ISO-8601 UTC with
  milliseconds, ``v: 0``; an exception goes in ``err`` as bunyan's ``{message, name, stack}``),
  so ``bunyan`` and other Teraslice log tooling read it unchanged.

The format is ``--log-format``, else ``$TERASLICE_LOG_FORMAT``, else the config's
``terafoundation.log_format``, else ``text`` (:func:`resolve_format`). Levels use Teraslice's
names (``trace debug info warn error fatal``).

Third-party libraries are kept quiet unless the level is ``trace``: HTTP clients, the Kubernetes
client and uvicorn log warnings only (uvicorn's access log only when switched on), the
Elasticsearch transport errors only (its per-request retries would repeat every line the store
logs itself). Their warnings never carry a traceback: the exception's one-line text is appended
instead.

Imports only the standard library, so every layer may use it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

#: Teraslice (bunyan) level names -> Python levels. ``warning`` is accepted as ``warn``.
LEVELS: dict[str, int] = {
    "trace": 5,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
#: The level names a command line offers.
LEVEL_NAMES = ("trace", "debug", "info", "warn", "error", "fatal")
FORMATS = ("text", "json")
FORMAT_ENV = "TERASLICE_LOG_FORMAT"
#: Bunyan's numeric levels; Python levels in between round up to the next bunyan level.
_BUNYAN = ((5, 10), (logging.DEBUG, 20), (logging.INFO, 30), (logging.WARNING, 40), (logging.ERROR, 50))
_TEXT_NAMES = ((5, "TRACE"), (logging.DEBUG, "DEBUG"), (logging.INFO, "INFO"), (logging.WARNING, "WARN"))
#: Record attributes a call may pass with ``extra=`` that become bunyan fields.
CONTEXT_KEYS = ("assignment", "ex_id", "job_id", "worker_id", "slice_id")
#: Third-party loggers and the level they log at (unless the level is ``trace``).
QUIET: dict[str, int] = {
    "elastic_transport": logging.ERROR,
    "elasticsearch": logging.WARNING,
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "urllib3": logging.WARNING,
    "kubernetes": logging.WARNING,
    "websockets": logging.WARNING,
    "asyncio": logging.WARNING,
    "botocore": logging.WARNING,
    "boto3": logging.WARNING,
    "s3transfer": logging.WARNING,
    "uvicorn": logging.WARNING,
    "uvicorn.error": logging.WARNING,
    "uvicorn.access": logging.WARNING,
}
_PACKAGE = "teraslice_k8s"

#: The process's context fields (``name``, ``assignment``, ``ex_id``...), see :func:`configure`.
_context: dict[str, Any] = {"name": "teracluster"}
_settings: dict[str, bool] = {"access_log": False}


def py_level(level: str) -> int:
    """A Teraslice level name as a Python level (unknown names: info)."""
    return LEVELS.get(str(level).lower(), logging.INFO)


def bunyan_level(levelno: int) -> int:
    """A Python level as bunyan's 10/20/30/40/50/60."""
    return next((bunyan for limit, bunyan in _BUNYAN if levelno <= limit), 60)


def level_name(levelno: int) -> str:
    return next(
        (name for limit, name in _TEXT_NAMES if levelno <= limit), "ERROR" if levelno < 50 else "FATAL"
    )


def resolve_format(
    explicit: str | None = None, configured: str | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """``explicit`` (a command line), else ``$TERASLICE_LOG_FORMAT``, else ``configured`` (the
    config file), else ``text``. An unknown name raises ValueError naming where it came from."""
    env = os.environ if environ is None else environ
    for source, value in (
        ("--log-format", explicit),
        (FORMAT_ENV, env.get(FORMAT_ENV)),
        ("terafoundation.log_format", configured),
    ):
        if value:
            if value not in FORMATS:
                raise ValueError(f"{source}: must be one of {', '.join(FORMATS)} (got {value!r})")
            return value
    return "text"


def iso_time(created: float) -> str:
    """``2025-01-02T03:04:05.678Z`` (bunyan's ``time``)."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _module(record: logging.LogRecord) -> str:
    name = record.name
    return name[len(_PACKAGE) + 1 :] if name.startswith(_PACKAGE + ".") else name


def _third_party(record: logging.LogRecord) -> bool:
    return not (record.name == _PACKAGE or record.name.startswith(_PACKAGE + "."))


def _one_line_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _exception(record: logging.LogRecord) -> tuple[BaseException | None, bool]:
    """The record's exception and whether to show it in full: not for a third-party record
    below ERROR (a client's retry warning would print a traceback at every attempt)."""
    if not record.exc_info or record.exc_info[1] is None:
        return None, False
    return record.exc_info[1], not (_third_party(record) and record.levelno < logging.ERROR)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <assignment>[<ex_id[:8]>] <module>: <message>``."""

    def format(self, record: logging.LogRecord) -> str:
        role = str(getattr(record, "assignment", None) or _context.get("assignment", "teraslice"))
        ex_id = getattr(record, "ex_id", None) or _context.get("ex_id")
        if ex_id and role in ("execution_controller", "worker"):
            role = f"{role}[{str(ex_id)[:8]}]"
        message = record.getMessage()
        exc, full = _exception(record)
        if exc is not None:
            if full:
                message = message + "\n" + "".join(traceback.format_exception(exc)).rstrip()
            else:
                message = f"{message}: {_one_line_error(exc)}"
        return f"{iso_time(record.created)} {level_name(record.levelno)} {role} {_module(record)}: {message}"


class BunyanFormatter(logging.Formatter):
    """One JSON object per record in bunyan's field order (core fields, context, level, msg,
    time, v)."""

    def __init__(self) -> None:
        super().__init__()
        self.hostname = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "name": _context.get("name", "teracluster"),
            "hostname": self.hostname,
            "pid": record.process,
        }
        out["assignment"] = _context.get("assignment")
        # Teraslice's module: the logger (LogRecord.module is the file name: not that).
        out["module"] = _module(record)
        for key in CONTEXT_KEYS:
            value = getattr(record, key, None)
            if value is None:
                value = _context.get(key)
            if value is not None:
                out[key] = value
        out["level"] = bunyan_level(record.levelno)
        message = record.getMessage()
        exc, full = _exception(record)
        if exc is not None:
            if not full:
                message = f"{message}: {_one_line_error(exc)}"
            else:
                out["err"] = {
                    "message": str(exc),
                    "name": type(exc).__name__,
                    "stack": "".join(traceback.format_exception(exc)).rstrip(),
                }
        out["msg"] = message
        out["time"] = iso_time(record.created)
        out["v"] = 0
        # Compact, as JSON.stringify writes bunyan's lines.
        return json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so :func:`configure` replaces only its own."""


def formatter(fmt: str) -> logging.Formatter:
    return BunyanFormatter() if fmt == "json" else TextFormatter()


def configure(
    level: str = "info",
    *,
    assignment: str,
    fmt: str = "text",
    name: str | None = None,
    context: Mapping[str, Any] | None = None,
    access_log: bool = False,
    stream: IO[str] | None = None,
) -> None:
    """Log to ``stream`` (stderr) at ``level`` in ``fmt`` for this process.

    ``assignment``: Teraslice's role name (``cluster_master``, ``execution_controller``,
    ``worker``, ``run``); ``name``: the cluster name (bunyan's ``name``); ``context``: more
    fields for every record (``ex_id``, ``job_id``, ``worker_id``); ``access_log``: let
    uvicorn's access log through at INFO. Idempotent: a second call replaces the first's handler
    (handlers others installed, such as pytest's, are left alone).
    """
    _context.clear()
    _context.update({"name": name or "teracluster", "assignment": assignment, **(context or {})})
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    # uvicorn's own logging set-up (its default dictConfig, run by any uvicorn.Config without
    # log_config=None earlier in this process) gives its loggers their own handlers and stops
    # them propagating, so their lines would bypass (or double) ours.
    for uvicorn_name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(uvicorn_name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
        uvicorn_logger.disabled = False
    package = logging.getLogger(_PACKAGE)
    # Before this module existed the package logger had its own handler and did not propagate.
    package.handlers[:] = [h for h in package.handlers if not isinstance(h, logging.StreamHandler)]
    package.propagate = True
    _settings["access_log"] = access_log
    set_level(level)


def set_context(**fields: Any) -> None:
    """Add fields every later record carries (e.g. ``worker_id`` once it is known)."""
    _context.update({k: v for k, v in fields.items() if v is not None})


def set_level(level: str) -> None:
    """Change the level at run time (``POST /jobs/:id/_settings?log_level=``)."""
    value = py_level(level)
    logging.getLogger().setLevel(value)
    logging.getLogger(_PACKAGE).setLevel(value)
    for logger_name, quiet in QUIET.items():
        logging.getLogger(logger_name).setLevel(value if value < logging.DEBUG else max(value, quiet))
    if _settings["access_log"]:
        logging.getLogger("uvicorn.access").setLevel(min(value, logging.INFO))

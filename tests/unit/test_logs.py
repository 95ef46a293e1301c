"""teraslice_k8s.logs: one format for every role; bunyan JSON that Teraslice's tooling reads;
third-party loggers quiet at INFO and never printing a retry traceback."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from collections.abc import Iterator

import pytest

from teraslice_k8s import logs

#: 2025-01-02T03:04:05.678Z
CREATED = 1735787045.678


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    # leave no handler of ours behind for the next test
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logs._Handler)]:
        root.removeHandler(handler)
    logs.set_level("warn")


def emit(name: str, level: int, msg: str, *args: object, exc: BaseException | None = None) -> None:
    logger = logging.getLogger(name)
    record = logger.makeRecord(
        name, level, "file.py", 1, msg, args, (type(exc), exc, exc.__traceback__) if exc else None
    )
    record.created = CREATED
    if logger.isEnabledFor(level):  # what Logger.log checks before handle()
        logger.handle(record)


def failure() -> ValueError:
    try:
        raise ValueError("bad thing\nsecond line")
    except ValueError as exc:
        return exc


def test_text_lines(stream: io.StringIO) -> None:
    logs.configure("info", assignment="worker", context={"ex_id": "0123456789abcdef"}, stream=stream)
    emit("teraslice_k8s.runtime.worker", logging.INFO, "worker %s joined", "w1")
    emit("teraslice_k8s.runtime.worker", logging.DEBUG, "not shown")
    emit("teraslice_k8s.runtime.worker", logging.WARNING, "careful")
    assert stream.getvalue().splitlines() == [
        "2025-01-02T03:04:05.678Z INFO worker[01234567] runtime.worker: worker w1 joined",
        "2025-01-02T03:04:05.678Z WARN worker[01234567] runtime.worker: careful",
    ]


def test_bunyan_records(stream: io.StringIO) -> None:
    logs.configure(
        "trace",
        assignment="execution_controller",
        fmt="json",
        name="ts-dev1",
        context={"ex_id": "ex-1", "job_id": "job-1"},
        stream=stream,
    )
    for level in (5, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        emit("teraslice_k8s.runtime.execution_controller", level, "level %d", level)
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[2] == {
        "name": "ts-dev1",
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "assignment": "execution_controller",
        "module": "runtime.execution_controller",
        "ex_id": "ex-1",
        "job_id": "job-1",
        "level": 30,
        "msg": "level 20",
        "time": "2025-01-02T03:04:05.678Z",
        "v": 0,
    }
    # bunyan's field order and compact separators, as JSON.stringify writes them
    assert lines[2].startswith('{"name":"ts-dev1","hostname":')
    assert [r["level"] for r in records] == [10, 20, 30, 40, 50, 60]


def test_bunyan_error_field(stream: io.StringIO) -> None:
    logs.configure("info", assignment="worker", fmt="json", stream=stream)
    logs.set_context(worker_id="host__abc")
    exc = failure()
    emit("teraslice_k8s.runtime.worker", logging.ERROR, "slice %s failed", "s1", exc=exc)
    record = json.loads(stream.getvalue())
    assert record["worker_id"] == "host__abc"
    assert record["msg"] == "slice s1 failed"
    assert record["err"]["name"] == "ValueError"
    assert record["err"]["message"] == "bad thing\nsecond line"
    assert record["err"]["stack"].startswith("Traceback (most recent call last):\n")
    assert record["err"]["stack"].endswith("ValueError: bad thing\nsecond line")


def test_third_party_is_quiet_at_info_and_never_prints_a_retry_traceback(stream: io.StringIO) -> None:
    logs.configure("info", assignment="cluster_master", stream=stream)
    emit("elastic_transport.transport", logging.INFO, "POST http://es:9200/_bulk [status:200]")
    emit("elastic_transport.transport", logging.WARNING, "Retrying request after failure", exc=failure())
    emit("httpx", logging.INFO, "HTTP Request: GET http://x")
    emit("uvicorn.access", logging.INFO, '%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", "/v1", "1.1", 200)
    emit("urllib3.connectionpool", logging.WARNING, "Retrying after connection broken", exc=failure())
    emit("elastic_transport.transport", logging.ERROR, "gave up")
    assert stream.getvalue().splitlines() == [
        "2025-01-02T03:04:05.678Z WARN cluster_master urllib3.connectionpool: "
        "Retrying after connection broken: ValueError: bad thing",
        "2025-01-02T03:04:05.678Z ERROR cluster_master elastic_transport.transport: gave up",
    ]


def test_access_log_switch(stream: io.StringIO) -> None:
    logs.configure("info", assignment="cluster_master", access_log=True, stream=stream)
    emit("uvicorn.access", logging.INFO, '%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", "/v1", "1.1", 200)
    assert stream.getvalue() == (
        '2025-01-02T03:04:05.678Z INFO cluster_master uvicorn.access: 1.2.3.4 - "GET /v1 HTTP/1.1" 200\n'
    )


def test_trace_lets_third_party_debug_through(stream: io.StringIO) -> None:
    logs.configure("trace", assignment="cluster_master", stream=stream)
    emit("httpx", logging.DEBUG, "details")
    assert stream.getvalue().endswith("DEBUG cluster_master httpx: details\n")


def test_configure_twice_keeps_one_handler_and_others_handlers(stream: io.StringIO) -> None:
    other = logging.NullHandler()
    logging.getLogger().addHandler(other)
    try:
        logs.configure("info", assignment="run", stream=io.StringIO())
        logs.configure("info", assignment="run", stream=stream)
        ours = [h for h in logging.getLogger().handlers if isinstance(h, logs._Handler)]
        assert len(ours) == 1 and other in logging.getLogger().handlers
        emit("teraslice_k8s.cli.run", logging.INFO, "once")
        assert stream.getvalue().count("once") == 1
    finally:
        logging.getLogger().removeHandler(other)


def test_format_precedence() -> None:
    assert logs.resolve_format(None, None, {}) == "text"
    assert logs.resolve_format(None, "json", {}) == "json"
    assert logs.resolve_format(None, "json", {logs.FORMAT_ENV: "text"}) == "text"
    assert logs.resolve_format("json", "text", {logs.FORMAT_ENV: "text"}) == "json"
    with pytest.raises(ValueError, match=r"^TERASLICE_LOG_FORMAT: must be one of text, json \(got 'xml'\)$"):
        logs.resolve_format(None, None, {logs.FORMAT_ENV: "xml"})


def test_level_names() -> None:
    assert [logs.py_level(n) for n in logs.LEVEL_NAMES] == [5, 10, 20, 30, 40, 50]
    assert logs.py_level("warning") == logging.WARNING


def test_access_log_goes_through_ours_after_uvicorn_configured_itself(stream: io.StringIO) -> None:
    """uvicorn's default dictConfig (any earlier uvicorn.Config without log_config=None) gives its
    loggers their own handlers and propagate=False; configure() takes them back."""
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    logging.config.dictConfig(LOGGING_CONFIG)
    logs.configure("info", assignment="cluster_master", access_log=True, stream=stream)
    emit("uvicorn.access", logging.INFO, '%s - "%s %s HTTP/%s" %d', "1.2.3.4", "GET", "/v1", "1.1", 200)
    assert stream.getvalue() == (
        '2025-01-02T03:04:05.678Z INFO cluster_master uvicorn.access: 1.2.3.4 - "GET /v1 HTTP/1.1" 200\n'
    )

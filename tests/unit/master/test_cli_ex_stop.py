"""``teraslice-k8s ex stop EX... | --all`` (the chart's uninstall hook) against a running master."""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from teraslice_k8s.cli import client as client_cli
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import job_spec, settle


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="teraslice-k8s")
    client_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def _start(service: MasterService, name: str) -> str:
    ex_id: str = service.submit_job(job_spec(name=name, lifecycle="persistent"), start=True)["ex_id"]
    return ex_id


def test_stop_all_stops_every_living_execution_and_waits(
    master_url: str, service: MasterService, store: SqliteStore, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, done = _start(service, "a"), _start(service, "b"), _start(service, "c")
    settle(service)
    assert cli("ex", "stop", done, "--url", master_url) == 0
    capsys.readouterr()

    assert cli("ex", "stop", "--all", "--url", master_url) == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(out) == sorted(
        [
            f"ex {first}: stop requested",
            f"ex {second}: stop requested",
            f"ex {first}: stopped",
            f"ex {second}: stopped",
        ]
    )
    assert {ex: store.get_execution(ex)["_status"] for ex in (first, second, done)} == dict.fromkeys(
        (first, second, done), "stopped"
    )

    assert cli("ex", "stop", "--all", "--url", master_url) == 0
    assert capsys.readouterr().out == "no execution to stop\n"


def test_ids_or_all_not_both(master_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("ex", "stop", "--url", master_url) == 2
    assert cli("ex", "stop", "some-id", "--all", "--url", master_url) == 2
    assert capsys.readouterr().err == "error: name execution ids or --all (not both)\n" * 2


def test_unreachable_master_fails_unless_unreachable_ok(capsys: pytest.CaptureFixture[str]) -> None:
    url = "http://127.0.0.1:9"  # discard port: nothing listens
    assert cli("ex", "stop", "--all", "--url", url) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot reach the master at {url}: ")
    assert cli("ex", "stop", "--all", "--url", url, "--unreachable-ok") == 0
    err = capsys.readouterr().err
    assert err.startswith(f"warning: cannot reach the master at {url}: ")
    assert err.endswith(
        "; no execution was stopped. Their Jobs, Deployments and Services stay until you delete them "
        "(or their namespace).\n"
    )


class _FailingMaster(BaseHTTPRequestHandler):
    """Answers GET / but fails every other request, as a master whose store is down does."""

    def log_message(self, *_args: object) -> None:
        return

    def do_GET(self) -> None:
        ok = self.path == "/"
        body = b'{"name": "ts"}' if ok else b'{"error": 500, "message": "the store is unavailable"}'
        self.send_response(200 if ok else 500)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_failing_master_is_warned_about_with_unreachable_ok(capsys: pytest.CaptureFixture[str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FailingMaster)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        assert cli("ex", "stop", "--all", "--url", url) == 1
        assert capsys.readouterr().err == "error 500: the store is unavailable\n"
        assert cli("ex", "stop", "--all", "--url", url, "--unreachable-ok") == 0
        assert capsys.readouterr().err == (
            "warning: the master answered 500: the store is unavailable; no execution was stopped. "
            "Their Jobs, Deployments and Services stay until you delete them (or their namespace).\n"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

"""tests/support/js_client: values come back through JSON, rejections and a missing node or
package fail loudly (never a skip)."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.js_client import JsClientError, JsClientMissing, run_js

NOWHERE = "http://127.0.0.1:9"  # nothing listens there; these scripts send no request


def test_the_return_value_and_args_round_trip_through_json() -> None:
    got = run_js(
        NOWHERE,
        "return {args, kinds: [typeof client.jobs.submit, typeof client.cluster.state]};",
        args=[1, "x"],
    )
    assert got == {"args": [1, "x"], "kinds": ["function", "function"]}
    assert run_js(NOWHERE, "return;") is None


def test_a_rejection_raises_with_the_clients_code() -> None:
    with pytest.raises(JsClientError) as err:
        run_js(NOWHERE, "const e = new Error('nope'); e.code = 409; throw e;")
    assert (err.value.message, err.value.code) == ("nope", 409)
    assert "nope" in err.value.stack


def test_wait_for_is_bounded() -> None:
    with pytest.raises(JsClientError) as err:
        run_js(NOWHERE, "await waitFor(() => false, {timeoutMs: 50, intervalMs: 10, what: 'never'});")
    assert err.value.message == "timed out waiting for never"


def test_a_broken_script_is_an_error_with_nodes_output() -> None:
    with pytest.raises(AssertionError, match="SyntaxError"):
        run_js(NOWHERE, "return ((;")


def test_a_missing_package_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TERASLICE_CLIENT_JS_DIR", str(tmp_path))
    with pytest.raises(JsClientMissing, match="teraslice-client-js is not installed"):
        run_js(NOWHERE, "return 1;")


def test_a_missing_node_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JsClientMissing, match="node is not on PATH"):
        run_js(NOWHERE, "return 1;")

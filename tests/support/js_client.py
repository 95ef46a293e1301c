"""Drive a master with Teraslice's own JavaScript client (``teraslice-client-js``, from npm).

``bash ci/install-tools.sh`` installs the client pinned by ``ci/js-client/package-lock.json`` into
``.tools/js-client/`` (``TERASLICE_CLIENT_JS_DIR`` overrides that folder). A missing ``node`` or
package is an error (:class:`JsClientMissing`), never a skip.

API::

    run_js(master_url, script_body, args=None, timeout=120.0) -> Any

``script_body`` is the body of an ``async`` JavaScript function. In scope:

- ``client``: ``new TerasliceClient({host: master_url})``, with ``client.cluster`` (``state()``,
  ``stats()``, ``slicers()``, ``txt(type)``), ``client.jobs`` (``submit(spec, shouldNotStart)``
  resolving to a ``Job``, ``list(status)``, ``wrap(jobId)``) and, on a ``Job``, ``id()``,
  ``spec()``, ``status()``, ``ex()``, ``start()``, ``stop(qs)``, ``pause()``, ``resume()``,
  ``recover(qs)``, ``workers()``, ``changeWorkers(action, n)``, ``errors()``,
  ``waitForStatus(status, intervalMs, timeoutMs)``;
- ``TerasliceClient``: the client class (another instance: ``new TerasliceClient({host})``);
- ``args``: the JSON value passed as ``args`` (``null`` by default);
- ``waitFor(fn, {timeoutMs = 60000, intervalMs = 100, what})``: bounded polling; resolves to
  the first truthy value ``await fn()`` returns, rejects with ``timed out waiting for <what>``.

Whatever the function returns is sent back through JSON (``undefined`` becomes ``None``). A
rejection (e.g. a 4xx/5xx answer: the client rejects with ``error.code`` = the HTTP status) raises
:class:`JsClientError` carrying ``message``, ``code`` and the JavaScript stack. Example::

    workers = run_js(url, "return (await client.jobs.wrap(args.job_id).workers()).length",
                     args={"job_id": job_id})

Each call is one ``node`` process (about 0.2 s); ``console.log`` in the script goes to the
test's captured output, not into the result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
#: Where ci/install-tools.sh runs ``npm ci`` for ci/js-client/.
DEFAULT_DIR = ROOT / ".tools" / "js-client"
PACKAGE = "teraslice-client-js"
#: The version pinned in ci/js-client/package.json (checked at each call, so a stale install fails).
VERSION = "0.1.0"

_PRELUDE = """
'use strict';
const fs = require('fs');
const TerasliceClient = require(process.env.TS_JS_CLIENT_LIB);
const client = new TerasliceClient({ host: process.env.TS_MASTER_URL });
const args = JSON.parse(process.env.TS_JS_ARGS);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(fn, { timeoutMs = 60000, intervalMs = 100, what = 'a condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
        const value = await fn();
        if (value) return value;
        if (Date.now() >= deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(intervalMs);
    }
}
const report = (result) => fs.writeFileSync(process.env.TS_JS_RESULT, JSON.stringify(result));
(async () => {
"""

_EPILOGUE = """
})().then(
    (value) => report({ ok: true, value: value === undefined ? null : value }),
    (err) => {
        const e = err || {};
        report({ ok: false, message: String(e.message || e), code: e.code === undefined ? null : e.code,
                 stack: String(e.stack || '') });
        process.exitCode = 1;
    },
);
"""


class JsClientMissing(RuntimeError):
    """node or teraslice-client-js is not installed (run ``bash ci/install-tools.sh``)."""


class JsClientError(RuntimeError):
    """The script rejected (``code``: the client's ``error.code``, an HTTP status for API errors)."""

    def __init__(self, message: str, code: Any, stack: str) -> None:
        super().__init__(f"{message} (code {code!r})\n{stack}")
        self.message = message
        self.code = code
        self.stack = stack


def package_dir() -> Path:
    """The installed package folder; raises :class:`JsClientMissing` when it is not there."""
    base = Path(os.environ.get("TERASLICE_CLIENT_JS_DIR") or DEFAULT_DIR)
    pkg = base / "node_modules" / PACKAGE
    manifest = pkg / "package.json"
    if not manifest.is_file():
        raise JsClientMissing(f"{PACKAGE} is not installed in {base}: run `bash ci/install-tools.sh`")
    version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    if version != VERSION:
        raise JsClientMissing(f"{PACKAGE} {version} is installed in {base}, {VERSION} is pinned")
    return pkg


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise JsClientMissing("node is not on PATH: the teraslice-client-js tests need Node.js")
    return node


def run_js(master_url: str, script_body: str, args: Any = None, timeout: float = 120.0) -> Any:
    """Run ``script_body`` against ``master_url`` with the JS client; its return value, via JSON.

    Raises :class:`JsClientError` when the script rejects, :class:`JsClientMissing` when node or
    the package is missing, ``AssertionError`` when node dies without a result (syntax error...),
    ``subprocess.TimeoutExpired`` after ``timeout`` seconds.
    """
    lib = package_dir() / "lib" / "index.js"
    node = node_binary()
    with tempfile.TemporaryDirectory(prefix="ts-js-") as tmp:
        result_path = Path(tmp) / "result.json"
        env = {
            **os.environ,
            "TS_JS_CLIENT_LIB": str(lib),
            "TS_MASTER_URL": master_url,
            "TS_JS_ARGS": json.dumps(args),
            "TS_JS_RESULT": str(result_path),
        }
        proc = subprocess.run(
            [node, "-"],
            input=(_PRELUDE + script_body + _EPILOGUE).encode(),
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if proc.stdout:
            print(proc.stdout.decode(errors="replace"), end="")  # the script's console.log
        if not result_path.exists():
            stderr = proc.stderr.decode(errors="replace")
            raise AssertionError(f"node exited with {proc.returncode} without a result:\n{stderr}")
        result = json.loads(result_path.read_text(encoding="utf-8"))
    if not result["ok"]:
        raise JsClientError(result["message"], result["code"], result["stack"])
    return result["value"]

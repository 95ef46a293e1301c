"""End to end on the local backend: the example asset uploaded with teraslice-client-js, a job
using its operations run by real controller and worker processes, then the asset deleted."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.js_client import JsClientError, run_js
from support.local_master import local_master, wait_for
from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.models.asset import asset_id

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "examples" / "assets" / "example"
JOB: dict[str, Any] = {
    "name": "asset-counter",
    "lifecycle": "once",
    "workers": 2,
    "analytics": True,
    "assets": ["example:1.x"],
    "operations": [
        {"_op": "counter@example", "total": 1000, "per_slice": 100},
        {"_op": "uppercase", "fields": ["name"]},
        {"_op": "delay", "ms": 100},
    ],
}


def test_asset_upload_run_and_delete_with_the_js_client(tmp_path: Path) -> None:
    name, data = build_bundle(EXAMPLE)
    bundle = tmp_path / name
    bundle.write_bytes(data)
    new_id = asset_id(data)
    assets_dir = tmp_path / "assets"
    with local_master(
        tmp_path, assets_directory=str(assets_dir), autoload_directory=str(tmp_path / "autoload")
    ) as master:
        uploaded = run_js(
            master.url,
            "return await client.assets.post(fs.readFileSync(args.zip), true);",
            args={"zip": str(bundle)},
        )
        assert uploaded == {"asset_id": new_id, "_id": new_id}
        table = run_js(master.url, "return await client.cluster.txt('assets');")
        assert table.splitlines()[2].split()[:3] == ["example", "1.0.0", new_id]
        listed = httpx.get(f"{master.url}/v1/assets").json()
        assert [(a["name"], a["version"], a["id"]) for a in listed] == [("example", "1.0.0", new_id)]

        ex_id = run_js(
            master.url,
            """
            const job = await client.jobs.submit(args.job);
            return await job.ex();
            """,
            args={"job": JOB},
        )
        # While it runs, the execution's processes report the asset they loaded.
        wait_for(
            lambda: any(
                new_id in (item.get("assets") or [])
                for node in httpx.get(f"{master.url}/v1/cluster/state").json().values()
                for item in node.get("active", [])
            ),
            "the asset in /v1/cluster/state",
        )
        ex = wait_for(
            lambda: (r := httpx.get(f"{master.url}/v1/ex/{ex_id}").json())["_status"] == "completed" and r,
            "the execution to complete",
            timeout=120,
        )
        assert ex["assets"] == [new_id]
        assert ex["_slicer_stats"]["processed"] == 10
        assert ex["_slicer_stats"]["failed"] == 0
        assert ex["_slicer_stats"]["records"] == 1000
        # Every record went through the asset's processor (analytics: records per op).
        conn = sqlite3.connect(tmp_path / "state.sqlite")
        docs = [
            json.loads(row[0]) for row in conn.execute("SELECT doc FROM analytics WHERE ex_id = ?", (ex_id,))
        ]
        conn.close()
        assert sum(d["count"] for d in docs if d["op"] == "uppercase") == 1000
        assert (assets_dir / new_id / "uppercase" / "processor.py").is_file()
        # Every process says in its own log what it loaded (logging is set up before the
        # assets load, so these lines are no longer lost).
        logs = sorted((tmp_path / "logs" / ex_id).glob("*.log"))
        assert logs[0].name == "execution_controller.log" and len(logs) >= 2
        for log_file in logs:
            # runtime.assets' own line (it was logged before logging was set up, and lost)
            assert re.search(
                rf"asset {new_id} \(example@[^)]+\) loaded: operations ", log_file.read_text()
            ), log_file.name

        removed = run_js(master.url, "return await client.assets.delete(args.id, true);", args={"id": new_id})
        assert removed == {"asset_id": new_id, "_id": new_id}
        assert not (assets_dir / new_id).exists()
        with pytest.raises(JsClientError) as caught:
            run_js(master.url, "return await client.jobs.submit(args.job);", args={"job": JOB})
        assert (caught.value.code, caught.value.message) == (404, 'No assets found for "example:1.x"')

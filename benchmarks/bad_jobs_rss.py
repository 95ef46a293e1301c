"""Master memory under hostile job bodies (issue 9): RSS after N bad submissions, after GC.

Serves a real master (uvicorn, local cluster manager, SQLite in a temporary directory) in
this process, submits N bodies cycling through the issue's kinds of bad input (integers
beyond 64 bits, NaN, arrays 1,000-100,000 deep, wrong option types, typos, unknown
operations and assets, malformed JSON, wrong content types, 1 MB strings), in bursts with
pauses so the API's worker threads come and go as they do in production, then collects
garbage and prints the process's RSS: at start, after a warm-up, and after each quarter.
A leak shows as RSS growing with N; the figure before the fix was 74 -> 252 MB over 573
requests. Prints figures; asserts nothing.

Usage: ``.venv/bin/python benchmarks/bad_jobs_rss.py [--requests N] [--pause S]``.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import tempfile
import time
from pathlib import Path

import httpx

from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.models.config import parse_config


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def gen(**options: object) -> dict[str, object]:
    return {"name": "bad", "operations": [{"_op": "data_generator", **options}, {"_op": "noop"}]}


def bodies() -> list[tuple[bytes, str]]:
    """(body, content type) of every kind of bad submission."""
    as_json = [
        gen(size="str"),
        gen(size=True),
        gen(stress_test="yes"),
        gen(start=12),
        gen(delay=1e12),
        gen(sise=10),
        {**gen(), "wokers": 1},
        {"name": "x", "operations": [{"_op": "noop@nosuchasset"}, {"_op": "noop"}]},
        gen(_dead_letter_action="nosuchapi"),
        {"name": "x", "operations": [{"_op": "elasticsearch_reader", "index": "a"}, {"_op": "noop"}]},
        {**gen(), "env_vars": {"A": "x\x00y"}},
        {**gen(), "pad": "x" * 1_000_000, "workers": "many"},  # 1 MB, refused
    ]
    raw = [(json.dumps(b).encode(), "application/json") for b in as_json]
    raw += [
        (
            b'{"name":"x","operations":[{"_op":"data_generator","size":' + b"1" * 30 + b'},{"_op":"noop"}]}',
            "",
        ),
        (b'{"name":"x","operations":[{"_op":"data_generator","size":NaN},{"_op":"noop"}]}', ""),
        (b'{"name": ', ""),
        (b"<job/>", "text/xml"),
    ]
    for depth in (1_000, 5_000, 20_000, 100_000):
        raw.append((b'{"name":"x","x":' + b"[" * depth + b"]" * depth + b',"operations":[]}', ""))
    return [(body, kind or "application/json") for body, kind in raw]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--pause", type=float, default=11.0, help="pause between bursts (s)")
    parser.add_argument("--bursts", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(
            {
                "teraslice": {
                    "name": "rss",
                    "cluster_manager_type": "local",
                    "assets_directory": str(Path(tmp) / "assets"),
                    "storage": {"type": "sqlite", "path": str(Path(tmp) / "state.sqlite")},
                }
            }
        )
        service = build_service(config)
        server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
        url = server.start()
        kinds = bodies()
        statuses: collections.Counter[int] = collections.Counter()
        gc.collect()
        print(f"RSS at start: {rss_mb():.1f} MB")
        per_burst = max(1, args.requests // args.bursts)
        sent = 0
        with httpx.Client(base_url=url, timeout=120) as http:
            for burst in range(args.bursts):
                for _ in range(per_burst):
                    body, media = kinds[sent % len(kinds)]
                    response = http.post(
                        "/v1/jobs?start=false", content=body, headers={"content-type": media}
                    )
                    statuses[response.status_code] += 1
                    sent += 1
                assert http.get("/v1/jobs").status_code == 200
                gc.collect()
                print(f"RSS after {sent} bad submissions (burst {burst + 1}), after GC: {rss_mb():.1f} MB")
                if burst + 1 < args.bursts:
                    time.sleep(args.pause)  # idle worker threads end; new ones start next burst
        print("statuses:", dict(sorted(statuses.items())))
        server.stop()
        service.close()


if __name__ == "__main__":
    main()

"""Standard asset operations: records/s of each on 10,000-record slices, one core (issue 17).

Targets: >= 500,000 records/s for the per-record operations (filter, set_field, drop_field,
copy_field, set_key, key/hash/field routers) and >= 200,000 for dedupe, sort, group_by,
count_unique, add_key. Records come from data_generator (seeded); each operation gets fresh
copies (DataEntities where it needs metadata) so every run does the same work.

Usage: ``.venv/bin/python benchmarks/ops.py [--records N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from pathlib import Path
from typing import Any

from teraslice_k8s.runtime.data_entity import DataEntity
from teraslice_k8s.runtime.operations.asset_ops import import_asset
from teraslice_k8s.runtime.operations.base import OpContext
from teraslice_k8s.runtime.operations.data_generator import DataGeneratorOptions, generate

BUNDLE = Path(__file__).parents[1] / "assets" / "standard"
PER_RECORD = 500_000
PER_BATCH = 200_000

CASES: list[tuple[dict[str, Any], int, bool]] = [
    ({"_op": "filter", "field": "bytes", "value": 5000}, PER_RECORD, False),
    ({"_op": "set_field", "field": "tag", "value": "x"}, PER_RECORD, False),
    ({"_op": "drop_field", "field": "ipv6"}, PER_RECORD, False),
    ({"_op": "copy_field", "source": "ip", "destination": "ip2"}, PER_RECORD, False),
    ({"_op": "set_key", "field": "uuid"}, PER_RECORD, True),
    ({"_op": "key_router", "use": 1, "from": "beginning"}, PER_RECORD, True),
    ({"_op": "hash_router", "partitions": 16}, PER_RECORD, True),
    ({"_op": "field_router", "fields": ["bytes"]}, PER_RECORD, True),
    ({"_op": "dedupe", "field": "bytes"}, PER_BATCH, False),
    ({"_op": "sort", "field": "bytes"}, PER_BATCH, False),
    ({"_op": "group_by", "field": "bytes"}, PER_BATCH, False),
    ({"_op": "count_unique", "field": "bytes", "is_meta_field": False}, PER_BATCH, False),
    ({"_op": "add_key", "key_fields": ["ip", "uuid"]}, PER_BATCH, False),
    # The default: every field, in UTF-16 order (the job of tests/e2e/test_standard_asset_local.py).
    ({"_op": "add_key"}, PER_BATCH, False),
]


async def measure(config: dict[str, Any], records: list[dict[str, Any]], keyed: bool, rounds: int) -> float:
    ops = import_asset("bench-standard", BUNDLE).operations
    cls = ops[config["_op"]]
    op = cls(OpContext({}), cls.Options.model_validate(config))
    await op.initialize()
    best = float("inf")
    for _ in range(rounds):
        batch: list[Any] = (
            [DataEntity(r, {"_key": r["uuid"]}) for r in records] if keyed else [dict(r) for r in records]
        )
        start = time.perf_counter()
        await op.process(batch, {})  # type: ignore[attr-defined]
        best = min(best, time.perf_counter() - start)
    return len(records) / best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    options = DataGeneratorOptions.model_validate({"_op": "data_generator", "seed": 1})
    records = generate(args.records, random.Random(1), options)
    print(f"{'operation':<16} {'records/s':>12} {'target':>10}  ok")
    for config, target, keyed in CASES:
        rate = await measure(config, records, keyed, args.rounds)
        name = config["_op"] + (" (all)" if config == {"_op": "add_key"} else "")
        print(f"{name:<16} {rate:>12,.0f} {target:>10,}  {'yes' if rate >= target else 'NO'}")


if __name__ == "__main__":
    asyncio.run(main())

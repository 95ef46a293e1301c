"""``teraslice-k8s ops run CASE.json``: run processors on given records as a worker would, without
a cluster, and print what they returned as JSON (docs/operations.md).

CASE: ``{"operations": [<op config>...], "input": [<record>...]}`` (one slice) or ``"slices":
[[<record>...]...]``, optionally ``"flush": true`` (the shutdown flush after the slices),
``"assets": ["standard", ...]`` (which loaded assets to look operations up in; default all),
``"apis": [...]`` (the job's APIs), ``"connectors"`` (terafoundation's) and ``"description"``.
A record: ``{"data": {...}, "metadata": {...}}``, ``{"raw": "<text>", "metadata"}`` or
``{"window": [<record>...], "metadata"}``. The answer: ``{"output": [...]}`` plus ``"slices"``
and ``"flushed"`` when given/asked; ``{"error": "<message>"}`` and exit status 3 when an
operation refuses its config or initialize, a slice or the flush fails; exit 2 for a CASE that
is not a case (message on stderr). What operations print (``stdout``, ``debug_routes``) goes to
stderr, so stdout holds only the answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Exit status when an operation refused its config or failed.
EXIT_OPS_FAILED = 3
CASE_KEYS = {"operations", "input", "slices", "flush", "assets", "apis", "connectors", "description"}


def register(sub: Any) -> None:
    from teraslice_k8s.cli.output import description

    ops = sub.add_parser("ops", help="try operations on records without a cluster")
    ops_sub = ops.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = ops_sub.add_parser(
        "run", help="run processors on a CASE file's records and print JSON", description=description(__doc__)
    )
    p.add_argument("case", help='CASE.json ("-": stdin)')
    p.add_argument(
        "--asset",
        action="append",
        default=[],
        metavar="PATH",
        help="an asset's unpacked directory or bundle zip to take operations from (repeatable; "
        "default: the standard asset from the checkout or ./autoload)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from teraslice_k8s import testing

    try:
        case = _read_case(args.case)
        available = [testing.load_asset(path) for path in args.asset]
        if not args.asset:
            standard = testing.standard_asset()
            available = [standard] if standard else []
        assets = testing.select_assets(case.get("assets"), available)
        records = _records(case)
        # stdout is the answer: what operations print (stdout, debug_routes) goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            result = testing.run_ops(
                case["operations"],
                input=records if "input" in case else None,
                slices=records if "slices" in case else None,
                flush=bool(case.get("flush", False)),
                assets=assets,
                apis=case.get("apis") or [],
                connectors=case.get("connectors"),
            )
    except testing.CaseError as exc:
        print(f"{args.case}: {exc}", file=sys.stderr)
        return 2
    except testing.OpsError as exc:
        _print({"error": str(exc)})
        return EXIT_OPS_FAILED
    _print(result.json())
    return 0


def _print(answer: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")


def _read_case(path: str) -> dict[str, Any]:
    from teraslice_k8s.testing import CaseError

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        case = json.loads(text)
    except OSError as exc:
        raise CaseError(f"cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise CaseError(f"not valid JSON: {exc}") from None
    if not isinstance(case, dict):
        raise CaseError("must be a JSON object")
    unknown = sorted(set(case) - CASE_KEYS)
    if unknown:
        raise CaseError(f"unknown keys {unknown} (a case takes {', '.join(sorted(CASE_KEYS))})")
    ops = case.get("operations")
    if not isinstance(ops, list) or not ops:
        raise CaseError("operations: must be a non-empty list of op configs")
    if ("input" in case) == ("slices" in case):
        raise CaseError("give either input (the records of one slice) or slices (lists of records)")
    for key, kind in (("flush", bool), ("assets", list), ("apis", list), ("connectors", dict)):
        if key in case and not isinstance(case[key], kind):
            raise CaseError(f"{key}: must be a {'boolean' if kind is bool else kind.__name__}")
    return case


def _records(case: Mapping[str, Any]) -> list[Any]:
    from teraslice_k8s.testing import CaseError, from_json

    if "input" in case:
        if not isinstance(case["input"], list):
            raise CaseError("input: must be a list of records")
        return [from_json(r, f"input[{i}]") for i, r in enumerate(case["input"])]
    if not isinstance(case["slices"], list) or not all(isinstance(s, list) for s in case["slices"]):
        raise CaseError("slices: must be a list of lists of records")
    return [
        [from_json(r, f"slices[{i}][{j}]") for j, r in enumerate(batch)]
        for i, batch in enumerate(case["slices"])
    ]

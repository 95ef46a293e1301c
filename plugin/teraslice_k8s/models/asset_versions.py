"""Which stored asset a job's ``assets`` entry means: Teraslice's rules (§6.4), as pure functions.

An entry is a 40-hex asset id, ``name`` (= ``name:latest``) or ``name:<semver range>``
(npm's range syntax: ``2.1.x``, ``^1.2``, ``>=1 <2``...). Among the stored records of that
name whose version satisfies the range (npm semantics, as Teraslice's ``semver.satisfies``
with ``loose``: a prerelease only matches a range naming a prerelease of the same
``major.minor.patch``), the compatible ones are kept and the highest version wins.

Compatible = ``node_version`` (if set) <= the Node major the master reports, and
``python_version`` (if set) has this interpreter's major and a minor <= its minor, and
``platform``/``arch`` (if set) equal this machine's Node-style values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nodesemver

from teraslice_k8s.models.asset import NODE_MAJOR, AssetRejected, node_arch, node_platform, python_version

ASSET_ID = re.compile(r"[0-9a-f]{40}")
Record = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Runtime:
    """What an asset must be compatible with (defaults: this process)."""

    node_major: int = NODE_MAJOR
    python: str = ""
    platform: str = ""
    arch: str = ""

    @classmethod
    def here(cls) -> Runtime:
        return cls(NODE_MAJOR, python_version(), node_platform(), node_arch())


def split_entry(entry: str) -> tuple[str, str]:
    """``name:range`` -> (name, range); a missing range is ``""`` (latest)."""
    name, _, version = entry.partition(":")
    return name, version


def to_range(version: str, entry: str) -> str:
    """Teraslice's ``toSemverRange``: empty/``latest`` -> ``*``; else a valid npm range."""
    version = version.strip()
    if not version or version == "latest":
        return "*"
    if nodesemver.valid_range(version, loose=True) is None:
        raise AssetRejected(400, f'Version "{version}" is not a valid semver range (assets entry "{entry}")')
    return version.lstrip("v")


def incompatibility(record: Record, runtime: Runtime) -> list[str]:
    """The fields that make ``record`` unusable here (empty = compatible)."""
    reasons: list[str] = []
    node = record.get("node_version")
    if isinstance(node, int) and not isinstance(node, bool) and node > runtime.node_major:
        reasons.append("node_version")
    py = record.get("python_version")
    if isinstance(py, str) and runtime.python and not _python_ok(py, runtime.python):
        reasons.append("python_version")
    if record.get("platform") is not None and record.get("platform") != runtime.platform:
        reasons.append("platform")
    if record.get("arch") is not None and record.get("arch") != runtime.arch:
        reasons.append("arch")
    return reasons


def _python_ok(wanted: str, running: str) -> bool:
    try:
        w_major, w_minor = (int(p) for p in wanted.split("."))
        r_major, r_minor = (int(p) for p in running.split("."))
    except ValueError:
        return False
    return w_major == r_major and w_minor <= r_minor


def _by_version_desc(a: Record, b: Record) -> int:
    return int(nodesemver.rcompare(a["version"], b["version"], loose=True))


def _satisfying(records: Sequence[Record], name: str, version_range: str) -> list[Record]:
    found = [
        r
        for r in records
        if r.get("name") == name
        and isinstance(r.get("version"), str)
        and nodesemver.satisfies(r["version"], version_range, loose=True)
    ]
    return sorted(found, key=functools.cmp_to_key(_by_version_desc))


def _join_or(items: Sequence[str]) -> str:
    unique = list(dict.fromkeys(items))
    if len(unique) <= 1:
        return "".join(unique)
    return ", ".join(unique[:-1]) + " or " + unique[-1]


def pick(records: Sequence[Record], entry: str, runtime: Runtime | None = None) -> str:
    """The id ``entry`` (``name[:range]``) resolves to among ``records`` (the stored records of
    that name). Raises :class:`AssetRejected` 404 with Teraslice's messages."""
    runtime = runtime or Runtime.here()
    name, version = split_entry(entry)
    candidates = _satisfying(records, name, to_range(version, entry))
    if not candidates:
        raise AssetRejected(404, f'No assets found for "{entry}"')
    for record in candidates:
        if not incompatibility(record, runtime):
            return str(record["id"])
    reasons = [reason for record in candidates[:3] for reason in incompatibility(record, runtime)]
    suffix = f", due to a potential {_join_or(reasons)} mismatch" if reasons else ""
    raise AssetRejected(404, f'No asset found for "{entry}"{suffix}')


def resolve_entries(
    entries: Sequence[Any],
    by_id: Callable[[str], bool],
    by_name: Callable[[str], Sequence[Record]],
    runtime: Runtime | None = None,
) -> list[str]:
    """Resolve a job's ``assets`` list to ids (duplicates removed, order kept).

    ``by_id(id)`` tells whether exactly one record has that id; ``by_name(name)`` returns
    every stored record of that name. A 40-hex entry with a record is used as is; anything
    else is looked up as ``name[:range]``."""
    ids: list[str] = []
    for index, entry in enumerate(dict.fromkeys(e for e in entries)):
        if not isinstance(entry, str) or not entry:
            raise AssetRejected(400, f"assets[{index}]: must be a non-empty string")
        if ASSET_ID.fullmatch(entry) and by_id(entry):
            found = entry
        else:
            found = pick(by_name(split_entry(entry)[0]), entry, runtime)
        if found not in ids:
            ids.append(found)
    return ids

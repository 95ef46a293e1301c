"""Resolution of a job's ``assets`` entries (Teraslice's rules, §6.4)."""

from __future__ import annotations

from typing import Any

import pytest

from teraslice_k8s.models.asset import AssetRejected
from teraslice_k8s.models.asset_versions import Runtime, pick, resolve_entries

HERE = Runtime(node_major=22, python="3.11", platform="linux", arch="x64")


def rec(version: str, ident: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": ident or version, "name": "std", "version": version, **extra}


RECORDS = [rec("1.0.0"), rec("1.2.0"), rec("1.10.1"), rec("2.0.0"), rec("2.1.0-rc.1"), rec("0.9.0")]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("std", "2.0.0"),  # latest release: highest version, prereleases left out
        ("std:latest", "2.0.0"),
        ("std:1.x", "1.10.1"),  # semver order, not text order
        ("std:^1.2.0", "1.10.1"),
        ("std:~1.2", "1.2.0"),
        ("std:1.0.0", "1.0.0"),
        ("std:>=0.9.0 <1.0.0", "0.9.0"),
        ("std:v2.0.0", "2.0.0"),
        ("std:2.1.0-rc.1", "2.1.0-rc.1"),  # a prerelease matches a range naming it
        ("std:>=2.1.0-rc.0", "2.1.0-rc.1"),
    ],
)
def test_ranges(entry: str, expected: str) -> None:
    assert pick(RECORDS, entry, HERE) == expected


def failure(records: list[dict[str, Any]], entry: str) -> tuple[int, str]:
    with pytest.raises(AssetRejected) as caught:
        pick(records, entry, HERE)
    return caught.value.status, caught.value.message


def test_no_match_messages() -> None:
    assert failure(RECORDS, "std:3.x") == (404, 'No assets found for "std:3.x"')
    assert failure([], "other") == (404, 'No assets found for "other"')
    assert failure(RECORDS, "std:not a range!") == (
        400,
        'Version "not a range!" is not a valid semver range (assets entry "std:not a range!")',
    )


def test_incompatible_assets_are_skipped_and_named() -> None:
    records = [
        rec("3.0.0", "a", node_version=24),
        rec("2.0.0", "b", platform="darwin", arch="arm64"),
        rec("1.0.0", "c", python_version="3.12"),
        rec("0.5.0", "d", python_version="3.10", platform="linux", arch="x64", node_version=18),
    ]
    assert pick(records, "std", HERE) == "d"
    assert failure(records[:3], "std") == (
        404,
        'No asset found for "std", due to a potential '
        "node_version, platform, arch or python_version mismatch",
    )
    assert failure(records[:1], "std") == (
        404,
        'No asset found for "std", due to a potential node_version mismatch',
    )
    # another Python major is never compatible
    assert failure([rec("1.0.0", python_version="2.7")], "std") == (
        404,
        'No asset found for "std", due to a potential python_version mismatch',
    )


def test_entries_resolve_ids_names_and_drop_duplicates() -> None:
    stored = {"a" * 40: rec("1.0.0", "a" * 40)}

    def by_name(name: str) -> list[dict[str, Any]]:
        return [rec("1.0.0", "a" * 40), rec("1.1.0", "b" * 40)] if name == "std" else []

    ids = resolve_entries(["a" * 40, "std", "std:1.1.0", "std"], stored.__contains__, by_name, HERE)
    assert ids == ["a" * 40, "b" * 40]
    # a 40-hex entry that is not a stored id is looked up as a name (and fails like one)
    with pytest.raises(AssetRejected) as caught:
        resolve_entries(["c" * 40], stored.__contains__, by_name, HERE)
    assert caught.value.message == f'No assets found for "{"c" * 40}"'

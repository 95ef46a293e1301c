"""Asset bundles: the id, the manifest rules, the zip safety checks and ``assets build``."""

from __future__ import annotations

import base64
import io
import json
import stat
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.cli import main
from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.models.asset import (
    AssetRejected,
    BundleLimits,
    asset_id,
    asset_record,
    bundle_filename,
    inspect_bundle,
)

EXAMPLE = Path(__file__).parents[3] / "examples" / "assets" / "example"
#: A stored zip holding only asset.json {"name":"known","version":"0.1.0"}; its id was computed
#: with Node (Buffer.toString('base64') then crypto sha1), as Teraslice's assets service does.
KNOWN_ZIP = base64.b64decode(
    "UEsDBBQAAAAAAAAAIQDN2jloIgAAACIAAAAKAAAAYXNzZXQuanNvbnsibmFtZSI6Imtub3duIiwidmVyc2lvbiI6IjAuMS4wIn1Q"
    "SwECFAMUAAAAAAAAACEAzdo5aCIAAAAiAAAACgAAAAAAAAAAAAAAgAEAAAAAYXNzZXQuanNvblBLBQYAAAAAAQABADgAAABKAAAA"
    "AAA="
)
KNOWN_ID = "3d1a4d0590b36d19c159d684ce7d69ceb6c329e1"
PY = f"{sys.version_info.major}.{sys.version_info.minor}"


def make_zip(entries: dict[str, Any], modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            data = json.dumps(content) if isinstance(content, dict) else content
            archive.writestr(info, data)
    return buffer.getvalue()


def rejected(data: bytes, limits: BundleLimits | None = None) -> tuple[int, str]:
    with pytest.raises(AssetRejected) as caught:
        inspect_bundle(data, limits or BundleLimits())
    return caught.value.status, caught.value.message


def test_id_is_sha1_of_the_base64_text_of_the_zip() -> None:
    assert asset_id(KNOWN_ZIP) == KNOWN_ID
    assert inspect_bundle(KNOWN_ZIP) == {"id": KNOWN_ID, "name": "known", "version": "0.1.0"}


def test_record_copies_the_manifest_and_normalises_like_teraslice() -> None:
    manifest = {
        "name": "standard",
        "version": "v2.1.2",
        "description": "d",
        "node_version": "22.12.0",
        "platform": False,
        "arch": "",
        "python_version": None,
        "minimum_teraslice_version": "3.0.0",
        "extra": {"kept": True},
    }
    assert asset_record(manifest, "i" * 40) == {
        "id": "i" * 40,
        "name": "standard",
        "version": "2.1.2",
        "description": "d",
        "node_version": 22,
        "minimum_teraslice_version": "3.0.0",
        "extra": {"kept": True},
    }


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"other.json": {}}, (422, "asset.json was not found in root directory of asset bundle")),
        (
            {"sub/asset.json": {"name": "a", "version": "1.0.0"}},
            (422, "asset.json was not found in root directory of asset bundle"),
        ),
        (
            {"asset.json": "{not json"},
            (422, "Failure parsing asset.json, please ensure that's it formatted correctly"),
        ),
        ({"asset.json": {"version": "1.0.0"}}, (422, "Missing name")),
        ({"asset.json": {"name": "a", "version": "1.0"}}, (422, 'Invalid version "1.0"')),
        ({"asset.json": {"name": "a"}}, (422, "Invalid version null")),
        (
            {"asset.json": {"name": "a:b", "version": "1.0.0"}},
            (
                422,
                "Invalid name \"a:b\": must be 1 to 100 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
            ),
        ),
        (
            {"asset.json": {"name": "a", "version": "1.0.0", "python_version": "3"}},
            (422, 'Invalid python_version "3": must be "<major>.<minor>"'),
        ),
        (
            {"asset.json": {"name": "a", "version": "1.0.0", "minimum_teraslice_version": "3.19.0"}},
            (422, "Asset requires teraslice version 3.19.0 or greater."),
        ),
    ],
)
def test_manifest_errors(entries: dict[str, Any], expected: tuple[int, str]) -> None:
    assert rejected(make_zip(entries)) == expected


def test_non_zip_body_is_refused() -> None:
    assert rejected(b"not a zip at all") == (400, "Failed to save asset. File type not recognized as zip.")


@pytest.mark.parametrize("name", ["../evil.py", "a/../../evil.py", "/etc/evil", "C:/evil", "a\\..\\evil"])
def test_zip_slip_entries_are_refused(name: str) -> None:
    data = make_zip({"asset.json": {"name": "a", "version": "1.0.0"}, name: "x"})
    assert rejected(data) == (422, f'asset bundle entry "{name}" has an unsafe path')


def test_symlink_entries_are_refused() -> None:
    data = make_zip(
        {"asset.json": {"name": "a", "version": "1.0.0"}, "link": "/etc/passwd"},
        modes={"link": stat.S_IFLNK | 0o777},
    )
    assert rejected(data) == (422, 'asset bundle entry "link" is a symbolic link')


def test_size_and_file_count_limits() -> None:
    data = make_zip({"asset.json": {"name": "a", "version": "1.0.0"}, "big": b"0" * 5000})
    assert rejected(data, BundleLimits(max_unpacked_bytes=4096)) == (
        422,
        "asset bundle unpacks to more than the limit of 4096 bytes",
    )
    many = make_zip({"asset.json": {"name": "a", "version": "1.0.0"}, **{f"f{i}": "x" for i in range(5)}})
    assert rejected(many, BundleLimits(max_files=5)) == (
        422,
        "asset bundle has 6 entries, more than the limit of 5",
    )


def test_build_is_reproducible_and_named_like_teraslice_cli() -> None:
    name, data = build_bundle(EXAMPLE)
    assert name == f"example-v1.0.0-py{PY}-bundle.zip" == bundle_filename("example", "1.0.0")
    assert build_bundle(EXAMPLE) == (name, data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == [
            "asset.json",
            "counter/fetcher.py",
            "counter/schema.py",
            "counter/slicer.py",
            "uppercase/processor.py",
            "uppercase/schema.py",
        ]
        manifest = json.loads(archive.read("asset.json"))
    assert manifest == {
        "name": "example",
        "version": "1.0.0",
        "description": "Example asset: an upper-casing transform and a counting reader",
        "minimum_teraslice_version": "3.0.0",
        "python_version": PY,
    }


def test_cli_build_writes_the_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["assets", "build", str(EXAMPLE), "--output", str(tmp_path)]) == 0
    written = tmp_path / f"example-v1.0.0-py{PY}-bundle.zip"
    assert capsys.readouterr().out == f"{written}\n"
    assert written.read_bytes() == build_bundle(EXAMPLE)[1]


def test_cli_build_refuses_a_directory_without_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["assets", "build", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: no asset.json (nor asset/asset.json) found\n"

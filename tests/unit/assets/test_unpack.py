"""Unpacking into assets_directory/<id>: atomic, idempotent, safe when processes race, and
refusing bundles whose zip directory lies."""

from __future__ import annotations

import io
import struct
import threading
import zipfile
from pathlib import Path

import pytest

from teraslice_k8s.models.asset import AssetRejected, asset_id
from teraslice_k8s.runtime.assets import load_assets, remove_unpacked, unpack


def bundle(extra: bytes = b"print('hi')\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("asset.json", '{"name": "u", "version": "1.0.0"}')
        archive.writestr("op/extra.py", extra)
    return buffer.getvalue()


def test_unpack_is_atomic_and_idempotent(tmp_path: Path) -> None:
    data = bundle()
    target = unpack(data, tmp_path, asset_id(data))
    assert target == tmp_path / asset_id(data)
    assert (target / "op" / "extra.py").read_bytes() == b"print('hi')\n"
    assert unpack(b"not used: already there", tmp_path, asset_id(data)) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == [asset_id(data)]  # no staging left
    remove_unpacked(tmp_path, asset_id(data))
    assert list(tmp_path.iterdir()) == []


def test_racing_unpacks_leave_one_copy(tmp_path: Path) -> None:
    data = bundle(b"x" * 200_000)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            unpack(data, tmp_path, asset_id(data))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [asset_id(data)]
    assert (tmp_path / asset_id(data) / "op" / "extra.py").stat().st_size == 200_000


def test_a_zip_that_understates_its_sizes_is_refused_with_nothing_left(tmp_path: Path) -> None:
    data = bytearray(bundle(b"0" * 100_000))
    # Rewrite the declared uncompressed size of op/extra.py (local header and central directory)
    # to 10 bytes: the inflated data then no longer matches and nothing may be kept.
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (found := data.find(signature, start)) >= 0:
            name_at = found + (30 if signature == b"PK\x03\x04" else 46)
            if data[name_at : name_at + 11] == b"op/extra.py":
                struct.pack_into("<I", data, found + offset, 10)
            start = found + 4
    with pytest.raises(AssetRejected) as caught:
        unpack(bytes(data), tmp_path, "forged")
    assert caught.value.status == 422
    assert list(tmp_path.iterdir()) == []


def test_load_assets_fetches_only_missing_ones(tmp_path: Path) -> None:
    example = Path(__file__).parents[3] / "examples" / "assets" / "example"
    from teraslice_k8s.cli.assets import build_bundle

    data = build_bundle(example)[1]
    fetched: list[str] = []

    def fetch(ident: str) -> bytes:
        fetched.append(ident)
        return data

    first = load_assets([asset_id(data)], fetch, tmp_path)
    again = load_assets([asset_id(data)], fetch, tmp_path)
    assert fetched == [asset_id(data)]
    assert first == again
    assert sorted(first[0].operations) == ["counter", "uppercase"]

"""Asset routes (§1.7): upload, list, /txt, delete, autoload, and assets at job submit, on SQLite."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.assets import AssetService
from teraslice_k8s.master.controller_client import ControllerClient
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator
from teraslice_k8s.models.asset import BundleLimits, asset_id
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.assets import AssetStore
from teraslice_k8s.store.sqlite import SqliteStore
from teraslice_k8s.store.sqlite_assets import SqliteAssetIndex

from .fakes import ApiClient, FakeControllers, RecordingBackend

EXAMPLE = Path(__file__).parents[3] / "examples" / "assets" / "example"
ZIP = {"Content-Type": "application/octet-stream"}
PREFIXES = ("", "/v1")


def make_zip(entries: dict[str, Any], modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, json.dumps(content) if isinstance(content, dict) else content)
    return buffer.getvalue()


def manifest(**extra: Any) -> dict[str, Any]:
    return {"name": "other", "version": "1.0.0", **extra}


class Harness:
    def __init__(self, tmp_path: Path, config: SysConfig, **options: Any) -> None:
        self.dir = tmp_path / "assets"
        self.autoload = tmp_path / "autoload"
        self.store = SqliteStore(tmp_path / "state.sqlite")
        self.asset_store = AssetStore(SqliteAssetIndex(tmp_path / "state.sqlite"))
        self.assets = AssetService(
            self.asset_store,
            self.dir,
            autoload_dir=self.autoload,
            limits=options.pop("limits", BundleLimits()),
            **options,
        )
        self.service = MasterService(
            self.store,
            RecordingBackend(),
            MasterSettings.from_config(config),
            job_validator(config, self.assets),
            controllers=ControllerClient(transport=FakeControllers().transport()),
            assets=self.assets,
        )
        self.client = ApiClient(create_app(self.service))

    def upload(self, data: bytes, prefix: str = "/v1", **params: str) -> Any:
        return self.client.post(f"{prefix}/assets", content=data, headers=ZIP, params=params)

    def written(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir()) if self.dir.exists() else []

    def close(self) -> None:
        self.client.close()
        self.service.allocator.close()
        self.service.lifecycle.close()
        self.service.controllers.close()
        self.asset_store.close()
        self.store.close()


@pytest.fixture
def harness(tmp_path: Path, config: SysConfig) -> Iterator[Harness]:
    opened = Harness(tmp_path, config)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def example() -> bytes:
    return build_bundle(EXAMPLE)[1]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_upload_201_then_200_and_listing(harness: Harness, example: bytes, prefix: str) -> None:
    first = harness.upload(example, prefix, blocking="true")
    new_id = asset_id(example)
    assert (first.status_code, first.json()) == (201, {"asset_id": new_id, "_id": new_id})
    again = harness.upload(example, prefix)
    assert (again.status_code, again.json()) == (200, {"asset_id": new_id, "_id": new_id})
    listed = harness.client.get(f"{prefix}/assets").json()
    assert listed == [
        {
            "_created": listed[0]["_created"],
            "name": "example",
            "version": "1.0.0",
            "description": "Example asset: an upper-casing transform and a counting reader",
            "python_version": listed[0]["python_version"],
            "id": new_id,
        }
    ]
    assert harness.client.get(f"{prefix}/assets/example").json() == listed
    assert harness.client.get(f"{prefix}/assets/example/1.0.0").json() == listed
    assert harness.client.get(f"{prefix}/assets/example/2.0.0").json() == []
    assert harness.written() == [new_id]
    assert (harness.dir / new_id / "uppercase" / "processor.py").is_file()


def test_txt_assets_table(harness: Harness, example: bytes) -> None:
    harness.upload(example)
    created = harness.client.get("/v1/assets").json()[0]["_created"]
    text = harness.client.get("/txt/assets").text
    lines = text.splitlines()
    assert lines[0].split() == list(
        ("name", "version", "id", "_created", "description", "node_version", "platform", "arch")
    )
    assert lines[2].split("  ")[0] == "example"
    assert asset_id(example) in lines[2] and created in lines[2]
    # description cut at 30 characters; absent fields print N/A
    assert lines[2].rstrip().endswith("Example asset: an upper-casing  N/A           N/A       N/A")
    # an empty listing is the header and one blank row, as easy-table prints it
    empty = harness.client.get("/txt/assets/nothing").text.splitlines()
    assert [line.strip() for line in empty[2:]] == [""]
    assert harness.client.get("/v1/txt/assets").status_code == 405


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"definitely not a zip", 400, "Failed to save asset. File type not recognized as zip."),
        (make_zip({"a.json": {}}), 422, "asset.json was not found in root directory of asset bundle"),
        (
            make_zip({"asset.json": "{"}),
            422,
            "Failure parsing asset.json, please ensure that's it formatted correctly",
        ),
        (make_zip({"asset.json": {"version": "1.0.0"}}), 422, "Missing name"),
        (make_zip({"asset.json": manifest(version="one")}), 422, 'Invalid version "one"'),
        (
            make_zip({"asset.json": manifest(minimum_teraslice_version="4.0.0")}),
            422,
            "Asset requires teraslice version 4.0.0 or greater.",
        ),
        (
            make_zip({"asset.json": manifest(), "../../escape.py": "x"}),
            422,
            'asset bundle entry "../../escape.py" has an unsafe path',
        ),
        (
            make_zip({"asset.json": manifest(), "op/link": "/etc"}, {"op/link": stat.S_IFLNK | 0o777}),
            422,
            'asset bundle entry "op/link" is a symbolic link',
        ),
    ],
)
@pytest.mark.parametrize("blocking", ["true", "false"])
def test_upload_errors_write_nothing(
    harness: Harness, data: bytes, status: int, message: str, blocking: str
) -> None:
    response = harness.upload(data, blocking=blocking)
    assert (response.status_code, response.json()) == (status, {"error": status, "message": message})
    assert harness.client.get("/v1/assets").json() == []
    assert harness.written() == []


def test_size_bomb_and_file_count_write_nothing(tmp_path: Path, config: SysConfig) -> None:
    small = Harness(tmp_path, config, limits=BundleLimits(max_files=3, max_unpacked_bytes=10_000))
    bomb = make_zip({"asset.json": manifest(), "zeros": b"\0" * 1_000_000})
    assert len(bomb) < 10_000
    response = small.upload(bomb)
    assert response.json() == {
        "error": 422,
        "message": "asset bundle unpacks to more than the limit of 10000 bytes",
    }
    many = small.upload(make_zip({"asset.json": manifest(), "a": "", "b": "", "c": ""}))
    assert many.json() == {"error": 422, "message": "asset bundle has 4 entries, more than the limit of 3"}
    assert small.client.get("/v1/assets").json() == []
    assert small.written() == []
    small.close()


def test_same_name_and_version_is_409(harness: Harness) -> None:
    assert harness.upload(make_zip({"asset.json": manifest(platform="linux")})).status_code == 201
    response = harness.upload(make_zip({"asset.json": manifest(platform="linux", description="new")}))
    assert response.status_code == 409
    assert response.json()["message"] == (
        'Asset name:"other" AND version:"1.0.0" AND platform:"linux" already exists, '
        "please increment the version and send again"
    )
    assert len(harness.client.get("/v1/assets").json()) == 1


def test_json_bodies_are_refused(harness: Harness, example: bytes) -> None:
    for media in ("application/json", "application/x-www-form-urlencoded"):
        response = harness.client.post("/v1/assets", content=example, headers={"Content-Type": media})
        assert response.json() == {"error": 400, "message": "/asset endpoints do not accept json"}


def test_payload_limit_is_413(tmp_path: Path, config: SysConfig, example: bytes) -> None:
    limited = Harness(tmp_path, config, payload_limit=1000)
    response = limited.upload(example + b"\0" * 1000)
    assert response.json() == {"error": 413, "message": "request entity too large (limit 1000 bytes)"}
    assert limited.written() == []
    limited.close()


def test_uploads_can_be_disabled(tmp_path: Path, config: SysConfig, example: bytes) -> None:
    off = Harness(tmp_path, config, upload_enabled=False)
    response = off.upload(example)
    assert response.json() == {
        "error": 403,
        "message": "asset uploads are disabled on this cluster (teraslice.assets_upload_enabled)",
    }
    off.close()


@pytest.mark.parametrize("prefix", PREFIXES)
def test_delete(harness: Harness, example: bytes, prefix: str) -> None:
    new_id = asset_id(example)
    short = harness.client.delete(f"{prefix}/assets/abc")
    assert short.json() == {
        "error": 400,
        "message": "asset abc is not formatted correctly, please provide the full asset_id",
    }
    missing = harness.client.delete(f"{prefix}/assets/{'0' * 40}")
    assert missing.json() == {"error": 404, "message": f"Unable to find asset {'0' * 40}"}
    harness.upload(example)
    deleted = harness.client.delete(f"{prefix}/assets/{new_id}")
    assert (deleted.status_code, deleted.json()) == (200, {"asset_id": new_id, "_id": new_id})
    assert harness.client.get("/v1/assets").json() == []
    assert harness.written() == []


def test_autoload_at_start(harness: Harness, example: bytes) -> None:
    harness.autoload.mkdir()
    (harness.autoload / "a.zip").write_bytes(example)
    (harness.autoload / "b.zip").write_bytes(example)  # identical: ignored
    (harness.autoload / "readme.txt").write_text("not a bundle")
    harness.assets.start()
    harness.assets.start()  # a restart finds them stored
    assert [a["id"] for a in harness.client.get("/v1/assets").json()] == [asset_id(example)]


# -- jobs naming assets -------------------------------------------------------------------


def job(assets: list[str], ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "with-assets", "workers": 1, "assets": assets, "operations": ops}


GEN = {"_op": "data_generator", "size": 10}


def test_submit_resolves_assets_and_validates_their_options(harness: Harness, example: bytes) -> None:
    harness.upload(example)
    new_id = asset_id(example)
    ok = harness.client.post(
        "/v1/jobs", json=job(["example:1.x", "standard"], [GEN, {"_op": "uppercase@example"}])
    )
    assert ok.status_code == 200, ok.text
    ex = harness.store.get_execution(ok.json()["ex_id"])
    assert ex["assets"] == [new_id]
    assert harness.store.get_job(ok.json()["job_id"])["assets"] == ["example:1.x", "standard"]

    bad = harness.client.post("/v1/jobs", json=job(["example"], [GEN, {"_op": "uppercase", "fields": []}]))
    assert bad.status_code == 422
    assert bad.json()["problems"] == ["operations[1].fields: must have at least 1 items"]

    unknown = harness.client.post("/v1/jobs", json=job(["example"], [GEN, {"_op": "nope@example"}]))
    assert unknown.json()["problems"] == ['operations[1]._op: unknown operation "nope@example"']

    # Without the asset in the job, its operations do not exist.
    without = harness.client.post("/v1/jobs", json=job([], [GEN, {"_op": "uppercase"}]))
    assert without.json()["problems"] == ['operations[1]._op: unknown operation "uppercase"']


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("nope", 'No assets found for "nope"'),
        ("example:2.x", 'No assets found for "example:2.x"'),
        ("f" * 40, f'No assets found for "{"f" * 40}"'),
    ],
)
def test_unresolvable_assets_are_404(harness: Harness, example: bytes, entry: str, message: str) -> None:
    harness.upload(example)
    response = harness.client.post("/v1/jobs", json=job([entry], [GEN, {"_op": "noop"}]))
    assert response.json() == {"error": 404, "message": message}
    assert harness.client.get("/v1/jobs").json() == []


def test_deleted_asset_makes_jobs_naming_it_refused(harness: Harness, example: bytes) -> None:
    harness.upload(example)
    harness.client.delete(f"/v1/assets/{asset_id(example)}")
    response = harness.client.post("/v1/jobs", json=job(["example"], [GEN, {"_op": "uppercase"}]))
    assert response.json() == {"error": 404, "message": 'No assets found for "example"'}

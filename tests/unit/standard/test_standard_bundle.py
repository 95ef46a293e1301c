"""The standard bundle is built by ``teraslice-k8s assets build`` from assets/standard and
reaches users through the image's autoload directory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

from standard_harness import BUNDLE, standard

from teraslice_k8s.runtime.operations.base import declared_options

ROOT = Path(__file__).parents[3]


def test_assets_build_makes_the_standard_bundle(tmp_path: Path) -> None:
    copy = tmp_path / "standard"
    subprocess.run(["cp", "-r", str(BUNDLE), str(copy)], check=True)
    cli = Path(sys.executable).parent / "teraslice-k8s"
    result = subprocess.run(
        [str(cli), "assets", "build", str(copy)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    major, minor = sys.version_info[:2]
    built = copy / "build" / f"standard-v2.1.2-py{major}.{minor}-bundle.zip"
    with zipfile.ZipFile(io.BytesIO(built.read_bytes())) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("asset.json"))
    assert manifest["name"] == "standard" and manifest["version"] == "2.1.2"
    assert "__init__.py" in names and not any("__pycache__" in n for n in names)


def test_every_operation_declares_its_options() -> None:
    ops = standard().operations
    assert len(ops) == 42  # the reference's inventory
    for cls in ops.values():
        declared_options(cls)


def test_the_image_autoloads_the_bundle() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "RUN /opt/teraslice/bin/teraslice-k8s assets build assets/standard" in text
    assert "COPY --from=build /src/assets/standard/build/ /app/autoload/" in text
    assert "WORKDIR /app" in text  # autoload_directory defaults to <cwd>/autoload

"""Render test fixtures and the ``--update-golden`` option (regenerates tests/golden/render/).

pytest only honours options registered by conftest files it loads before parsing the command
line, so ``--update-golden`` works when this folder is named: ``pytest tests/unit/render
--update-golden``. ``UPDATE_GOLDEN=1 pytest`` does the same from anywhere.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate.utils as kv_utils
import pytest
import yaml

from teraslice_k8s.cli.render import manifests_to_yaml

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "golden" / "render"


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # already registered by a parent conftest
        parser.addoption(
            "--update-golden",
            action="store_true",
            default=False,
            help="rewrite tests/golden/*/*.yaml from the current code instead of comparing",
        )


class Golden:
    """Compare rendered manifests with a golden YAML file (or rewrite it with --update-golden)."""

    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, name: str, documents: list[dict[str, Any]]) -> None:
        path = GOLDEN_DIR / f"{name}.yaml"
        text = manifests_to_yaml(documents)
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            return
        assert path.exists(), f"{path} is missing; run pytest --update-golden and review the diff"
        expected = list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader))
        assert documents == expected, (
            f"manifests differ from {path.name} (pytest --update-golden rewrites it)"
        )
        # Key order is part of the contract (Teraslice's order); compare the text too.
        assert text == path.read_text(encoding="utf-8")


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    option = request.config.getoption("--update-golden", default=False)
    return Golden(bool(option) or os.environ.get("UPDATE_GOLDEN") == "1")


@pytest.fixture(scope="session")
def cached_k8s_schemas() -> Iterator[None]:
    """Memoise kubernetes_validate's schema-file reader for the session.

    ``kubernetes_validate.validate`` re-reads and re-parses the large schema files on every
    call; with this, validating hundreds of manifests against every version takes seconds
    instead of minutes. Validation itself is unchanged.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kv_utils, "schema_contents", functools.lru_cache(maxsize=None)(kv_utils.schema_contents)
        )
        yield

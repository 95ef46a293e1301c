"""Every teraslice.yaml the chart renders is accepted by the master's config model, with the
values the chart meant (``teraslice_k8s.models.config.parse_config``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from teraslice_k8s.models.config import DEFAULT_IMAGE, parse_config

from .helm_render import CHART, EXAMPLES, NAMESPACE, render

CASES = [("default", ())] + [(Path(e).stem, (e,)) for e in EXAMPLES]


@pytest.mark.parametrize(("case", "examples"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("configmap", ["ts-teraslice-master", "ts-teraslice-worker"])
def test_rendered_config_parses(case: str, examples: tuple[str, ...], configmap: str) -> None:
    rendered = render(examples=examples, api_versions=("monitoring.coreos.com/v1",))
    config = parse_config(rendered.config(configmap))
    ts = config.teraslice
    assert ts.is_kubernetes
    assert ts.master is (configmap == "ts-teraslice-master")
    assert ts.kubernetes_namespace == NAMESPACE
    assert ts.kubernetes_config_map_name == "ts-teraslice-worker"
    assert ts.master_hostname == f"ts-teraslice-master.{NAMESPACE}.svc.cluster.local"
    assert ts.port == 5678
    assert ts.storage.type == "elasticsearch"
    connection = config.terafoundation.connection(ts.storage.connection)
    assert connection is not None and connection.node


def test_chart_default_image_is_the_config_default() -> None:
    chart = (CHART / "Chart.yaml").read_text()
    assert 'appVersion: "0.1.0"' in chart
    config = parse_config(render().config("ts-teraslice-master"))
    assert config.teraslice.kubernetes_image == DEFAULT_IMAGE == "teraslice-k8s:0.1.0"


def test_typed_values_arrive_typed() -> None:
    config = parse_config(render(examples=["production.yaml"]).config("ts-teraslice-master"))
    ts = config.teraslice
    assert ts.cpu_execution_controller == 1
    assert ts.memory_execution_controller == 1073741824
    assert ts.kubernetes_worker_antiaffinity is True
    assert ts.kubernetes_api_poll_delay == 1000
    assert ts.execution_controller_targets is not None
    assert [(t.key, t.value) for t in ts.execution_controller_targets] == [
        ("node-pool", "teraslice-controllers")
    ]
    assert ts.assets_volume == "ts-teraslice-assets"
    assert config.terafoundation.prom_metrics_enabled is True

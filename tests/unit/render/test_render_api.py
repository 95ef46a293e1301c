"""The render module's contract: one quoting filter, strict templates, checks, helpers, EX."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import jinja2
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from teraslice_k8s.kubernetes import jsontext
from teraslice_k8s.kubernetes import render as render_module
from teraslice_k8s.kubernetes.context import build_context
from teraslice_k8s.kubernetes.jsontext import js_json_bytes, parse, quote
from teraslice_k8s.kubernetes.pod_context import encode_execution
from teraslice_k8s.kubernetes.render import (
    OwnerRef,
    RenderError,
    cluster_selector,
    default_owner,
    execution_names,
    job_selector,
    render_controller_job,
    render_execution,
    render_worker_deployment,
    selector_for,
    service_hostname,
    worker_execution,
)

from .cases import EX_ID, JOB_ID, OWNER, config, container, decode_ex, env_value, execution

TEMPLATES = Path(render_module.__file__).parent / "templates"


def test_every_template_value_goes_through_the_one_filter() -> None:
    expressions = []
    for path in TEMPLATES.glob("*.j2"):
        expressions += re.findall(r"{{(.*?)}}", path.read_text())
    assert expressions
    assert [e for e in expressions if not re.fullmatch(r" [\w.]+ \| q ", e)] == []


def test_strict_undefined_raises() -> None:
    template = render_module._ENV.from_string('{"a": {{ missing | q }}}')
    with pytest.raises(jinja2.UndefinedError, match="'missing' is undefined"):
        template.render()


def test_environment_settings() -> None:
    env = render_module._ENV
    assert env.undefined is jinja2.StrictUndefined
    assert env.autoescape is False
    assert set(env.filters) >= {"q"}
    assert env.globals == {}  # _render builds the Context without globals


def test_quote_filter_is_json() -> None:
    assert render_module._ENV.filters["q"] is quote
    assert quote('a"b\n{{c}}') == '"a\\"b\\n{{c}}"'
    assert quote({"k": [1, 0.5, None, True], "t": ("x",)}) == '{"k":[1,0.5,null,true],"t":["x"]}'
    assert quote("é😀\x85") == '"é😀\x85"'
    assert parse(quote("é😀\x85\ud800")) == "é😀\x85\ud800"
    assert parse(quote(2**70)) == 2**70
    with pytest.raises(TypeError, match="set cannot enter a manifest"):
        quote({1, 2})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"a": 1.0, "b": [2.0, 0.5]}, b'{"a":1,"b":[2,0.5]}'),
        (1e16, b"10000000000000000"),
        (1e20, b"100000000000000000000"),
        (1e21, b"1e+21"),
        (1e-6, b"0.000001"),
        (-2.5e-6, b"-0.0000025"),
        (1e-7, b"1e-7"),
        (float("nan"), b"null"),
        (-0.0, b"0"),
        ({"s": "v1.0", "id": "b15e-1"}, b'{"s":"v1.0","id":"b15e-1"}'),
        ({"a": "\ud800é"}, '{"a":"\\ud800é"}'.encode()),  # only the lone surrogate is escaped
        (1.7982254339115437e20, b"179822543391154370000"),  # shortest digits, zero-padded
        (2.0**60, b"1152921504606847000"),
        ({"big": 2**64, 1: 0.5}, b'{"big":18446744073709551616,"1":0.5}'),
    ],
)
def test_ex_numbers_as_json_stringify(value: Any, text: bytes) -> None:
    assert js_json_bytes(value) == text


def test_wrong_template_output_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = render_module._ENV.from_string('{"apiVersion": "v1", "kind": "Secret", "metadata": {}}')
    monkeypatch.setitem(render_module._COMPILED, "execution_controller_job.json.j2", bad)
    with pytest.raises(RenderError, match="did not produce one batch/v1 Job named ts-exc-"):
        render_controller_job(execution(), config())
    monkeypatch.setitem(
        render_module._COMPILED, "execution_controller_job.json.j2", render_module._ENV.from_string("[1,")
    )
    with pytest.raises(RenderError, match="produced invalid JSON"):
        render_controller_job(execution(), config())


def test_context_is_frozen() -> None:
    ctx = build_context(execution(), config(), "job")
    with pytest.raises(AttributeError):  # an immutable named tuple
        ctx.name = "x"  # type: ignore[misc]


def test_missing_ids_are_reported() -> None:
    from teraslice_k8s.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        render_controller_job({"name": "x"}, config())
    assert info.value.lines == ["ex_id: is required", "job_id: is required"]


def test_ex_is_js_json_of_the_execution() -> None:
    record = execution(size=1.0, ratio=0.5, nested={"list": [2.0, 3]}, text="é😀")
    manifest = render_controller_job(record, config())
    raw = base64.b64decode(env_value(manifest, "EX")).decode("utf-8")
    assert '"size":1,' in raw and '"ratio":0.5' in raw and '"list":[2,3]' in raw and "é😀" in raw
    assert decode_ex(manifest) == {**record, "slicer_port": 45680}
    assert encode_execution({"a": "\ud800"}) == base64.b64encode(b'{"a":"\\ud800"}').decode()


def test_env_names_are_unique_and_node_options_rule() -> None:
    record = execution(env_vars={"NODE_OPTIONS": "--inspect", "EX": "nope", "FOO": "baz"})
    manifest = render_controller_job(record, config())
    names = [item["name"] for item in container(manifest)["env"]]
    assert names == ["NODE_TYPE", "EX", "POD_IP", "NODE_OPTIONS", "FOO", "EXAMPLE"]
    assert env_value(manifest, "NODE_OPTIONS") == "--inspect"


def test_controller_never_gets_minus_one() -> None:
    manifest = render_controller_job(
        execution(), config(cpu_execution_controller=0, memory_execution_controller=0)
    )
    amounts = {"cpu": 0.5, "memory": 512000000}
    assert container(manifest)["resources"] == {"requests": amounts, "limits": amounts}


def test_limits_only_memory_omits_empty_requests() -> None:
    manifest = render_worker_deployment(execution(resources_limits_memory=536870912), config(), OWNER)
    assert container(manifest)["resources"] == {"limits": {"memory": 536870912}}
    assert env_value(manifest, "NODE_OPTIONS") == "--max-old-space-size=461"


def test_volume_with_dots_gets_valid_volume_name() -> None:
    manifest = render_worker_deployment(
        execution(volumes=[{"name": "data.v1", "path": "/d"}]), config(), OWNER
    )
    spec = manifest["spec"]["template"]["spec"]
    assert spec["volumes"][1] == {
        "name": "data-v1-4c610ff1ae",
        "persistentVolumeClaim": {"claimName": "data.v1"},
    }
    assert container(manifest)["volumeMounts"][1] == {"name": "data-v1-4c610ff1ae", "mountPath": "/d"}


def test_names_and_helpers() -> None:
    record, conf = execution(), config()
    names = execution_names(record)
    assert (names.job, names.service, names.deployment) == (
        "ts-exc-example-data-generator-job-7ba9afb0-417a",
        "svc-ts-exc-example-data-generator-job-7ba9afb0-417a",
        "ts-wkr-example-data-generator-job-7ba9afb0-417a",
    )
    assert service_hostname(record, conf) == "svc-ts-exc-example-data-generator-job-7ba9afb0-417a.ts-dev1"
    worker = worker_execution(record, conf)
    assert worker == {**record, "_status": "initializing", "slicer_port": 45680,
                      "slicer_hostname": service_hostname(record, conf)}  # fmt: skip
    assert record == execution(), "worker_execution copies"
    owner = default_owner(record, conf)
    assert owner == default_owner(execution(), conf) == OwnerRef(names.job, owner.uid)
    assert re.fullmatch(r"[0-9a-f-]{36}", owner.uid)
    assert selector_for("execution_controller", EX_ID) == (
        f"app.kubernetes.io/component=execution_controller,teraslice.terascope.io/exId={EX_ID}"
    )
    assert job_selector(JOB_ID) == f"teraslice.terascope.io/jobId={JOB_ID}"
    assert (
        cluster_selector(conf.teraslice.name)
        == "app.kubernetes.io/name=teraslice,app.kubernetes.io/instance=ts-dev1"
    )


def test_render_execution_order_owner_and_worker_ex() -> None:
    manifests = render_execution(execution(), config())
    assert [m["kind"] for m in manifests] == ["Job", "Service", "Deployment"]
    owner = default_owner(execution(), config())
    for manifest in manifests[1:]:
        ref = manifest["metadata"]["ownerReferences"][0]
        assert (ref["name"], ref["uid"]) == (owner.name, owner.uid)
    assert decode_ex(manifests[2])["_status"] == "initializing"


def test_deployment_selector_matches_its_pods() -> None:
    manifest: dict[str, Any] = render_worker_deployment(execution(labels={"a": "b"}), config(), OWNER)
    match = manifest["spec"]["selector"]["matchLabels"]
    labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert match.items() <= labels.items()
    assert selector_for("worker", EX_ID) == ",".join(
        f"{k}={v}" for k, v in match.items() if "component" in k or "exId" in k
    )


def test_pasted_partials_render_what_jinja_include_renders() -> None:
    # The loader pastes `{% include "_pod_template.json.j2" %}`; Jinja's own include must agree.
    plain = jinja2.Environment(
        loader=jinja2.PackageLoader("teraslice_k8s.kubernetes", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    plain.filters["q"] = quote
    owner = OwnerRef("ts-exc-x", "5f1b7a9e-0000-4000-8000-000000000000")
    for kind, name in [("job", "execution_controller_job"), ("deployment", "worker_deployment")]:
        ctx = build_context(execution(), config(), kind, owner)  # type: ignore[arg-type]
        variables = render_module.template_variables(ctx)
        pasted = render_module._ENV.get_template(f"{name}.json.j2")
        source = render_module._PartialsLoader().get_source(render_module._ENV, f"{name}.json.j2")[0]
        assert "{% include" not in source and '"readinessProbe"' in source
        assert parse(pasted.render(variables)) == parse(
            plain.get_template(f"{name}.json.j2").render(variables)
        )


def test_a_partial_that_sets_variables_is_not_pasted(monkeypatch: pytest.MonkeyPatch) -> None:
    loader = render_module._PartialsLoader()
    sources = {"main.j2": '{"a": {% include "_part.j2" %}}', "_part.j2": "{% set x = 1 %}{{ x | q }}"}
    monkeypatch.setattr(loader._package, "get_source", lambda env, name: (sources[name], name, lambda: True))
    with pytest.raises(jinja2.TemplateNotFound, match=r"_part\.j2 cannot be pasted into main\.j2"):
        loader.get_source(render_module._ENV, "main.j2")


def test_template_variables_are_the_context_fields() -> None:
    ctx = build_context(execution(), config(), "job")
    variables = render_module.template_variables(ctx)
    assert variables["name"] == ctx.name and variables["labels"] is ctx.labels
    assert ctx.pod is not None and variables["pod_env"] is ctx.pod.env
    assert set(variables) == {
        *(f for f in ctx._fields if f not in ("kind", "pod")),
        *(f"pod_{f}" for f in ctx.pod._fields),
    }


@given(st.floats(), st.text(max_size=20))
@settings(max_examples=2000, deadline=None)
def test_ex_fast_path_never_skips_a_float_js_writes_differently(value: float, text: str) -> None:
    # js_json_bytes skips the exact walk when orjson's text has no ".0", "+" or "e-6".
    record = {"x": value, "items": [value, {"t": text}], "text": text}
    assert js_json_bytes(record) == orjson.dumps(jsontext._js_value(record))


@pytest.mark.parametrize("value", [1e-6, 9.999999999999999e-6, -5.5e-6, 1e16, 9.9e20, 123.0, -0.0])
def test_ex_fast_path_boundaries(value: float) -> None:
    assert js_json_bytes({"x": value}) == orjson.dumps({"x": jsontext._js_value(value)})

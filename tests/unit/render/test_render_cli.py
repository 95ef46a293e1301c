"""``teraslice-k8s render``: outputs, exit codes, stderr, and every example job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from teraslice_k8s.cli import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
CONFIG = str(EXAMPLES / "teraslice.yaml")
OVERRIDES_CONFIG = str(EXAMPLES / "teraslice-overrides.yaml")
JOB = str(EXAMPLES / "jobs" / "k8s-labels.json")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["render", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("job_file", sorted((EXAMPLES / "jobs").glob("k8s-*.json")), ids=lambda p: p.stem)
def test_every_example_job_renders(job_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = OVERRIDES_CONFIG if "override" in job_file.name else CONFIG
    code, out, err = run(capsys, "--config", config, "--job", str(job_file))
    # render prints the job's validation warnings (the old resource fields are deprecated)
    deprecated = ("cpu", "memory") if job_file.stem == "k8s-resources-old" else ()
    expected_err = "".join(
        f'warning: {job_file}: "{name}" on a job is deprecated and should use "resources_requests_{name}" '
        "instead\n"
        for name in deprecated
    )
    assert (code, err) == (0, expected_err)
    docs = list(yaml.safe_load_all(out))
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("batch/v1", "Job"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
    ]


def test_yaml_and_json_outputs_agree_and_are_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    _, yaml_out, _ = run(capsys, "--config", CONFIG, "--job", JOB)
    _, yaml_again, _ = run(capsys, "--config", CONFIG, "--job", JOB)
    code, json_out, err = run(capsys, "--config", CONFIG, "--job", JOB, "--output", "json")
    assert (code, err) == (0, "")
    assert yaml_out == yaml_again
    assert json.loads(json_out) == list(yaml.safe_load_all(yaml_out))


def test_ids_and_owner_uid_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "--config", CONFIG, "--job", JOB, "--job-id", "11111111-2222-3333-4444-555555555555",
        "--ex-id", "ex-1", "--owner-uid", "uid-from-api", "--output", "json",
    )  # fmt: skip
    job, service, deployment = json.loads(out)
    assert code == 0
    assert job["metadata"]["name"] == "ts-exc-k8s-labels-11111111-2222"
    assert job["metadata"]["labels"]["teraslice.terascope.io/exId"] == "ex-1"
    for doc in (service, deployment):
        assert doc["metadata"]["ownerReferences"][0]["uid"] == "uid-from-api"
        assert doc["metadata"]["ownerReferences"][0]["name"] == job["metadata"]["name"]


def test_execution_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = json.loads(Path(JOB).read_text())
    record.update(job_id="7ba9afb0-417a-4936-adc5-b15e31d1edd1", ex_id="e76a0278", _status="pending")
    path = tmp_path / "execution.json"
    path.write_text(json.dumps(record))
    code, out, err = run(capsys, "--config", CONFIG, "--execution", str(path), "--output", "json")
    assert (code, err) == (0, "")
    job = json.loads(out)[0]
    assert job["metadata"]["name"] == "ts-exc-k8s-labels-7ba9afb0-417a"
    assert job["metadata"]["labels"]["teraslice.terascope.io/exId"] == "e76a0278"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {
                "job.json": {
                    "name": "x",
                    "operations": [{"_op": "noop"}],
                    "targets": [{"key": "zone", "value": "w", "constraint": "x"}],
                }
            },
            [
                "job: operations: must have at least 2 items (a reader and a processor)",
                'job: operations[0]._op: "noop" is not a reader',
                "job: targets[0].constraint: must be one of required, preferred, accepted",
            ],
        ),
        ({"job.json": "{not json"}, None),
        (
            {
                "job.json": {
                    "operations": [{"_op": "data_generator"}, {"_op": "noop"}],
                    "pod_spec_override": {"a": 1},
                }
            },
            [
                "job: pod_spec_override: The Teraslice master must set 'kubernetes_overrides_enabled: true' "
                "to use pod_spec_override in a job."
            ],
        ),
        (
            {"job.json": {"operations": [{"_op": "no_such_op"}, {"_op": "noop"}]}},
            None,
        ),
    ],
)
def test_invalid_job_exits_2_with_field_paths(
    files: dict[str, object], expected: list[str] | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, body in files.items():
        (tmp_path / name).write_text(body if isinstance(body, str) else json.dumps(body))
    code, out, err = run(capsys, "--config", CONFIG, "--job", str(tmp_path / "job.json"))
    assert code == 2 and out == ""
    if expected is not None:
        assert err.splitlines() == expected
    else:
        assert err.startswith("job: ") and err.strip()


def test_invalid_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "teraslice.yaml"
    path.write_text(
        "teraslice:\n  kubernetes_worker_antiaffinity: maybe\n  cluster_manager_type: kubernetes\n"
    )
    code, out, err = run(capsys, "--config", str(path), "--job", JOB)
    assert (code, out) == (2, "")
    assert err.splitlines() == ["config: teraslice.kubernetes_worker_antiaffinity: must be a boolean"]
    code, out, err = run(capsys, "--config", str(tmp_path / "missing.yaml"), "--job", JOB)
    assert (code, out) == (2, "") and err.startswith("config: cannot read ")


def test_execution_needs_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "execution.json"
    path.write_text(Path(JOB).read_text())
    code, out, err = run(capsys, "--config", CONFIG, "--execution", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == ["execution: job_id: is required", "execution: ex_id: is required"]


def test_job_and_execution_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["render", "--config", CONFIG, "--job", JOB, "--execution", JOB])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_local_cluster_config_cannot_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "teraslice.yaml"
    path.write_text("teraslice:\n  name: local1\n")
    code, out, err = run(capsys, "--config", str(path), "--job", JOB)
    assert (code, out) == (2, "")
    rule = "must be kubernetes or kubernetesV2 to render Kubernetes manifests"
    assert err.splitlines() == [f"config: teraslice.cluster_manager_type: {rule}"]

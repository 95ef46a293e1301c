"""Names and labels: Teraslice's table where its result is valid, our fixed outputs otherwise."""

from __future__ import annotations

import pytest

from teraslice_k8s.kubernetes.names import (
    cluster_name_label,
    cluster_selector,
    job_labels,
    job_name_label,
    job_selector,
    label_value,
    resource_names,
    selector_for,
    teraslice_job_name_label,
    volume_name,
)
from teraslice_k8s.models.schema import is_dns_1035_label, is_dns_label, is_label_value

JOB_ID = "7ba9afb0-417a-4936-adc5-b15e31d1edd1"


@pytest.mark.parametrize(
    ("name", "label", "deployment"),
    [
        # k8s-backend.md §2.2, where Teraslice's names are valid: identical output.
        ("aa", "aa", "ts-wkr-aa-7ba9afb0-417a"),
        ("00", "a0", "ts-wkr-a0-7ba9afb0-417a"),
        ("a", "a", "ts-wkr-a-7ba9afb0-417a"),
        ("0", "a", "ts-wkr-a-7ba9afb0-417a"),
        ("-job-", "ajob0", "ts-wkr-ajob0-7ba9afb0-417a"),
        ("-JOB-", "ajob0", "ts-wkr-ajob0-7ba9afb0-417a"),
        ("teraslice-JOB-name", "teraslice-job-name", "ts-wkr-teraslice-job-name-7ba9afb0-417a"),
        (
            "example-data-generator-job",
            "example-data-generator-job",
            "ts-wkr-example-data-generator-job-7ba9afb0-417a",
        ),
        ("x😀y", "x--y", "ts-wkr-x--y-7ba9afb0-417a"),
        ("ÉTÉ job", "at--job", "ts-wkr-at--job-7ba9afb0-417a"),
        # Teraslice's label is valid but its names contain "." (invalid container/Service names).
        ("My Job_v2.0", "my-job-v2.0", "ts-wkr-my-job-v2-0-7ba9afb0-417a-137f80f1d0"),
        ("job.name.", "job.name0", "ts-wkr-job-name0-7ba9afb0-417a-0062b09e47"),
        # Teraslice's label ends in "-" after the cut (invalid); its name is valid and kept.
        ("a" * 62 + "-b", "a" * 52 + "-0a2ffb188d", "ts-wkr-" + "a" * 35 + "-7ba9afb0-417a"),
    ],
)
def test_job_names_table(name: str, label: str, deployment: str) -> None:
    names = resource_names(name, JOB_ID)
    assert job_name_label(name) == label
    assert names.job_name_label == label
    assert names.deployment == deployment
    assert names.job == deployment.replace("ts-wkr-", "ts-exc-", 1)
    assert names.service == "svc-" + names.job


def test_teraslice_algorithm_kept_verbatim_for_reference() -> None:
    assert teraslice_job_name_label("a" * 62 + "-b") == "a" * 62 + "-"
    assert teraslice_job_name_label("job.name.") == "job.name0"
    assert teraslice_job_name_label("😀") == "a0"


@pytest.mark.parametrize(
    ("name", "job_id"),
    [
        ("a" * 300, JOB_ID),
        ("..--..", JOB_ID),
        ("x", "Not_A-UUID.at.all"),
        ("ok", ""),
        ("", JOB_ID),
        ("line\nbreak: {{ x }}", JOB_ID),
    ],
)
def test_names_always_valid(name: str, job_id: str) -> None:
    names = resource_names(name, job_id)
    assert is_dns_label(names.job) and is_dns_label(names.deployment)
    assert is_dns_1035_label(names.service)
    assert is_label_value(names.job_name_label)


def test_truncation_never_collides() -> None:
    # Same 35-character prefix and job id: Teraslice would give both the same name.
    first = resource_names("a.b" + "c" * 40 + "1", JOB_ID)
    second = resource_names("a.b" + "c" * 40 + "2", JOB_ID)
    assert first.job != second.job
    assert job_name_label("b" * 62 + "-x") != job_name_label("b" * 62 + "-y")


@pytest.mark.parametrize(
    ("name", "label"),
    [("ts-dev1", "ts-dev1"), ("my cluster:1", "my_cluster_1"), ("a:", "a-bfc622d4a6"), ("x" * 70, "x" * 63)],
)
def test_cluster_name_label(name: str, label: str) -> None:
    assert cluster_name_label(name) == label


def test_job_labels_teraslice_case_31_and_fixes() -> None:
    # k8s-backend.md §10.3 case 31: 'key 1' -> key-1; 64-char key cut to 63; 'key2%' would end in '-'.
    key64 = "abcdefghij" * 6 + "j123"
    result = job_labels({"key 1": "value1", "key2%": "value2", key64: "v"})
    assert result == {
        "job.teraslice.terascope.io/key-1": "value1",
        "job.teraslice.terascope.io/key2-2b62a860e4": "value2",
        "job.teraslice.terascope.io/" + key64[:63]: "v",
    }


def test_job_labels_collisions_get_hashes() -> None:
    result = job_labels({"a b": "1", "a-b": "2", "a/b": "3"})
    assert result == {
        "job.teraslice.terascope.io/a-b-c8687a08aa": "1",
        "job.teraslice.terascope.io/a-b": "2",
        "job.teraslice.terascope.io/a-b-c14cddc033": "3",
    }


def test_label_values_sanitised() -> None:
    assert job_labels({"k": "hello world"}) == {"job.teraslice.terascope.io/k": "hello-world"}
    assert job_labels({"k": "end."})["job.teraslice.terascope.io/k"] == "end-2e18562d37"
    assert label_value("e76a0278-d9bc-4d78-bf14-431bcd97528c") == "e76a0278-d9bc-4d78-bf14-431bcd97528c"
    assert label_value("-bad id-") == "bad-id-10e1078d07"


def test_volume_names() -> None:
    assert volume_name("teraslice-data1") == "teraslice-data1"
    assert volume_name("data.v1") == "data-v1-4c610ff1ae"
    assert is_dns_label(volume_name("a" * 200))


def test_selectors() -> None:
    assert (
        selector_for("worker", "e76") == "app.kubernetes.io/component=worker,teraslice.terascope.io/exId=e76"
    )
    assert job_selector("j1") == "teraslice.terascope.io/jobId=j1"
    assert (
        job_selector("j1", "execution_controller")
        == "app.kubernetes.io/component=execution_controller,teraslice.terascope.io/jobId=j1"
    )
    assert (
        cluster_selector("my cluster")
        == "app.kubernetes.io/name=teraslice,app.kubernetes.io/instance=my_cluster"
    )

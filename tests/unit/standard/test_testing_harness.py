"""``teraslice_k8s.testing`` (the harness behind ``ops run``, for people writing operations) and
``ops run``'s handling of its inputs: assets from a directory or a bundle zip, the case's
``assets``, malformed cases (exit 2), failures in initialize (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from teraslice_k8s import testing
from teraslice_k8s.cli import main
from teraslice_k8s.runtime.data_entity import DataEntity, DataWindow
from teraslice_k8s.testing import CaseError, OpsError, arun_ops, from_json, record, run_ops, to_json

ROOT = Path(__file__).parents[3]
EXAMPLE_ASSET = ROOT / "examples" / "assets" / "example"


def run_cli(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: object, *options: str
) -> tuple[int, str, str]:
    path = tmp_path / "case.json"
    path.write_text(case if isinstance(case, str) else json.dumps(case))
    code = main(["ops", "run", str(path), *options])
    out = capsys.readouterr()
    return code, out.out, out.err


# -- the Python API --------------------------------------------------------------------------


def test_run_ops_one_slice_as_a_user_test_would() -> None:
    result = run_ops(
        [{"_op": "set_key", "field": "id"}, {"_op": "dedupe"}],
        input=[record({"id": 1}), record({"id": 2}), {"id": 1, "plain": True}],
    )
    assert result.json() == {
        "output": [{"data": {"id": 1}, "metadata": {"_key": 1}}, {"data": {"id": 2}, "metadata": {"_key": 2}}]
    }
    assert all(isinstance(r, DataEntity) for r in result.output)
    assert result.slices == [result.output] and result.flushed is None


def test_run_ops_slices_and_flush_keep_state_across_slices() -> None:
    result = run_ops(
        [
            {"_op": "accumulate", "empty_after": 5, "flush_data_on_shutdown": True},
            {"_op": "data_window_to_array"},
        ],
        slices=[[record({"n": 1})], [], [record({"n": 2})]],
        flush=True,
    )
    assert result.json() == {
        "output": [{"data": {"n": 1}, "metadata": {}}, {"data": {"n": 2}, "metadata": {}}],
        "slices": [[], [], []],
        "flushed": [{"data": {"n": 1}, "metadata": {}}, {"data": {"n": 2}, "metadata": {}}],
    }


async def test_arun_ops_in_an_async_test() -> None:
    result = await arun_ops([{"_op": "hash_router", "partitions": 4}], input=[record({}, {"_key": "bacon"})])
    assert to_json(result.output[0]) == {"data": {}, "metadata": {"_key": "bacon", "standard:route": "0"}}


def test_config_problems_name_the_op_of_the_list_given() -> None:
    with pytest.raises(OpsError) as err:
        run_ops([{"_op": "noop"}, {"_op": "sort"}], input=[])
    assert str(err.value) == "operations[1].field: This field is required and must be of type string"
    with pytest.raises(OpsError, match=r'^operations\[0\]._op: unknown operation "nope"$'):
        run_ops([{"_op": "nope"}], input=[])
    with pytest.raises(OpsError, match=r'^operations\[0\]._op: "data_generator" is not a processor$'):
        run_ops([{"_op": "data_generator"}], input=[])


def test_without_assets_only_the_installed_operations() -> None:
    assert run_ops([{"_op": "noop"}], input=[{"a": 1}], assets=[]).json() == {
        "output": [{"data": {"a": 1}, "metadata": {}}]
    }
    with pytest.raises(OpsError, match='unknown operation "set_key"'):
        run_ops([{"_op": "set_key"}], input=[], assets=[])


def test_records_to_and_from_json() -> None:
    window = from_json({"window": [{"data": {"a": 1}, "metadata": {"_key": "x"}}], "metadata": {"_key": "w"}})
    assert isinstance(window, DataWindow) and window.get_metadata("_key") == "w"
    assert to_json(window) == {
        "window": [{"data": {"a": 1}, "metadata": {"_key": "x"}}],
        "metadata": {"_key": "w"},
    }
    raw = from_json({"raw": '{"a": 1}', "metadata": {"k": 1}})
    assert raw.get_raw_data() == b'{"a": 1}'
    assert to_json(raw) == {"data": {}, "metadata": {"k": 1}, "raw": '{"a": 1}'}
    for bad, message in [
        ([], "input[0]: must be an object with data, raw or window"),
        (
            {"data": {}, "raw": ""},
            "input[0]: takes data, raw or window (one of them) and metadata; got ['data', 'raw']",
        ),
        ({"data": 5}, "input[0].data: must be an object"),
        ({"raw": 5}, "input[0].raw: must be a string (the record's raw bytes as UTF-8 text)"),
        ({"data": {}, "metadata": []}, "input[0].metadata: must be an object"),
    ]:
        with pytest.raises(CaseError) as err:
            from_json(bad, "input[0]")
        assert str(err.value) == message


# -- the command -----------------------------------------------------------------------------


def test_asset_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    case = {"operations": [{"_op": "uppercase", "fields": ["a"]}], "input": [{"data": {"a": "x", "b": "y"}}]}
    code, out, err = run_cli(capsys, tmp_path, case, "--asset", str(EXAMPLE_ASSET))
    assert (code, json.loads(out)) == (0, {"output": [{"data": {"a": "X", "b": "y"}, "metadata": {}}]}), err
    # --asset replaces the default (the standard asset): its operations are not found then
    code, out, _ = run_cli(
        capsys, tmp_path, {**case, "operations": [{"_op": "set_key"}]}, "--asset", str(EXAMPLE_ASSET)
    )
    assert (code, json.loads(out)) == (3, {"error": 'operations[0]._op: unknown operation "set_key"'})


def test_asset_bundle_zip(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["assets", "build", str(EXAMPLE_ASSET), "--output", str(tmp_path / "build")]) == 0
    (bundle,) = (tmp_path / "build").glob("*.zip")
    capsys.readouterr()
    case = {"operations": [{"_op": "uppercase@example", "fields": ["a"]}], "input": [{"data": {"a": "x"}}]}
    code, out, err = run_cli(capsys, tmp_path, case, "--asset", str(bundle))
    assert (code, json.loads(out)) == (0, {"output": [{"data": {"a": "X"}, "metadata": {}}]}), err


def test_case_assets_choose_among_the_loaded(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    case = {
        "operations": [{"_op": "set_key", "field": "a"}],
        "input": [{"data": {"a": 1}}],
        "assets": ["standard:2.1.x"],
    }
    code, out, _ = run_cli(capsys, tmp_path, case)
    assert (code, json.loads(out)) == (0, {"output": [{"data": {"a": 1}, "metadata": {"_key": 1}}]})
    code, out, _ = run_cli(capsys, tmp_path, {**case, "assets": ["elasticsearch"]})
    assert (code, json.loads(out)) == (
        3,
        {
            "error": 'asset "elasticsearch" is not loaded '
            "(loaded: standard; add its directory with --asset DIR)"
        },
    )
    code, out, _ = run_cli(capsys, tmp_path, {**case, "assets": []})
    assert (code, json.loads(out)) == (3, {"error": 'operations[0]._op: unknown operation "set_key"'})


def test_job_level_checks_as_at_submit(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    case = {
        "operations": [{"_op": "routed_sender", "_api_name": "nope", "routing": {"a": "default"}}],
        "input": [],
    }
    code, out, _ = run_cli(capsys, tmp_path, case)
    assert code == 3
    assert json.loads(out) == {"error": "operations[0]._api_name: Could not find the associated api for nope"}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("{", "not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ([], "must be a JSON object"),
        ({"operations": [], "input": []}, "operations: must be a non-empty list of op configs"),
        (
            {"operations": [{"_op": "noop"}]},
            "give either input (the records of one slice) or slices (lists of records)",
        ),
        (
            {"operations": [{"_op": "noop"}], "input": [], "slices": []},
            "give either input (the records of one slice) or slices (lists of records)",
        ),
        ({"operations": [{"_op": "noop"}], "input": [], "flush": 1}, "flush: must be a boolean"),
        (
            {"operations": [{"_op": "noop"}], "input": [], "expect": 1},
            "unknown keys ['expect'] (a case takes apis, assets, connectors, description, flush, "
            "input, operations, slices)",
        ),
        ({"operations": [{"_op": "noop"}], "slices": [{}]}, "slices: must be a list of lists of records"),
        (
            {"operations": [{"_op": "noop"}], "slices": [[{"dat": {}}]]},
            "slices[0][0]: takes data, raw or window (one of them) and metadata; got ['dat']",
        ),
    ],
)
def test_malformed_case_is_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: object, message: str
) -> None:
    code, out, err = run_cli(capsys, tmp_path, case)
    assert (code, out, err) == (2, "", f"{tmp_path / 'case.json'}: {message}\n")


def test_missing_case_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["ops", "run", str(tmp_path / "none.json")]) == 2
    assert capsys.readouterr().err == f"{tmp_path / 'none.json'}: cannot read: No such file or directory\n"


def test_standard_asset_from_the_autoload_directory_without_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As in the image: no source tree, the bundle in ./autoload (the master's default)."""
    assert (
        main(["assets", "build", str(testing.STANDARD_SOURCE), "--output", str(tmp_path / "autoload")]) == 0
    )
    monkeypatch.setattr(testing, "STANDARD_SOURCE", tmp_path / "no-checkout")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    asset = testing.standard_asset()
    assert asset is not None and (asset.name, asset.version) == ("standard", "2.1.2")
    assert asset.path != ROOT / "assets" / "standard"
    result = run_ops([{"_op": "set_key", "field": "a"}], input=[record({"a": 1})], assets=[asset])
    assert result.json() == {"output": [{"data": {"a": 1}, "metadata": {"_key": 1}}]}
    monkeypatch.chdir(tmp_path / "autoload")  # no autoload/ below: only the installed operations
    assert testing.standard_asset() is None

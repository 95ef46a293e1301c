"""The random operations (add_short_id, sample_exact, sample_random) beyond their seeded examples:
laws that hold for any seed and any draw, checked on CASE documents run through ``teraslice-k8s
ops run`` (Hypothesis makes the cases), and distributions checked against binomial bounds with
fixed seeds (so they are exact, repeatable runs, never flaky)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import string
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from teraslice_k8s.cli import main
from teraslice_k8s.testing import record, run_ops

#: add_short_id's dictionaries and their alphabets (the reference's library names, §2.4).
ALPHABETS = {
    "number": string.digits,
    "alpha": string.ascii_letters,
    "alpha_lower": string.ascii_lowercase,
    "alpha_upper": string.ascii_uppercase,
    "alphanum": string.digits + string.ascii_letters,
    "alphanum_lower": string.digits + string.ascii_lowercase,
    "alphanum_upper": string.digits + string.ascii_uppercase,
    "hex": "0123456789abcdef",
}
SEEDS = st.none() | st.integers(0, 2**32)
#: Record bodies (``case_records`` adds an ``i`` telling them apart, and a ``_key``).
BODIES = st.fixed_dictionaries({"x": st.none() | st.integers() | st.text(max_size=5)})


def ops_run(case: dict[str, Any]) -> dict[str, Any]:
    """``teraslice-k8s ops run CASE.json`` in this process: the JSON it printed (exit 0)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.json"
        path.write_text(json.dumps(case))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["ops", "run", str(path)])
    assert code == 0, out.getvalue()
    answer: dict[str, Any] = json.loads(out.getvalue())
    return answer


def case_records(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"data": {"i": i, **body}, "metadata": {"_key": f"k{i}"}} for i, body in enumerate(bodies)]


def binomial_bounds(n: int, p: float, sigmas: float = 5.0) -> tuple[float, float]:
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return mean - sigmas * sd, mean + sigmas * sd


# -- add_short_id ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(ALPHABETS)),
    st.integers(2, 16),
    SEEDS,
    st.lists(BODIES | st.fixed_dictionaries({"id": st.integers()}), max_size=30),
)
def test_add_short_id_sets_an_id_of_length_from_the_alphabet_and_nothing_else(
    dictionary: str, length: int, seed: int | None, bodies: list[dict[str, Any]]
) -> None:
    op = {"_op": "add_short_id", "field": "id", "length": length, "dictionary": dictionary, "seed": seed}
    records = case_records(bodies)
    output = ops_run({"operations": [op], "input": records})["output"]
    assert len(output) == len(records)
    for before, after in zip(records, output, strict=True):
        short_id = after["data"]["id"]  # set, and an existing "id" overwritten
        assert len(short_id) == length and set(short_id) <= set(ALPHABETS[dictionary])
        assert {k: v for k, v in after["data"].items() if k != "id"} == {
            k: v for k, v in before["data"].items() if k != "id"
        }
        assert after["metadata"] == before["metadata"]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32), st.lists(BODIES, min_size=1, max_size=10))
def test_add_short_id_reproduces_its_ids_with_a_seed_and_reaches_inside_windows(
    seed: int, bodies: list[dict[str, Any]]
) -> None:
    op = {"_op": "add_short_id", "field": "sid", "seed": seed}
    flat = ops_run({"operations": [op], "input": case_records(bodies)})["output"]
    window = ops_run({"operations": [op], "input": [{"window": case_records(bodies), "metadata": {}}]})
    assert [r["data"]["sid"] for r in flat] == [r["data"]["sid"] for r in window["output"][0]["window"]]


def test_add_short_id_draws_each_character_uniformly() -> None:
    # 2,000 ids of 16 hex characters (seeded): each of the 16 characters about 2,000 times.
    op = {"_op": "add_short_id", "field": "id", "length": 16, "dictionary": "hex", "seed": 17}
    output = run_ops([op], input=[record({}) for _ in range(2000)]).output
    counts = Counter("".join(r["id"] for r in output))
    low, high = binomial_bounds(2000 * 16, 1 / 16)
    assert sorted(counts) == sorted(ALPHABETS["hex"])
    assert all(low <= n <= high for n in counts.values()), counts
    assert len({r["id"] for r in output}) == 2000  # 16**16 ids: a repeat would be a broken generator


# -- sample_exact ------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(BODIES, max_size=120),
    st.integers(0, 100) | st.floats(0, 100, allow_nan=False),
    SEEDS,
)
def test_sample_exact_keeps_exactly_floor_n_p_of_the_records_unchanged(
    bodies: list[dict[str, Any]], percent: float, seed: int | None
) -> None:
    records = case_records(bodies)
    op = {"_op": "sample_exact", "percent_kept": percent, "seed": seed}
    output = ops_run({"operations": [op], "input": records})["output"]
    assert len(output) == math.floor(len(records) * percent / 100)
    # A subset: every record kept whole (body and metadata), none twice.
    indexes = [r["data"]["i"] for r in output]
    assert len(set(indexes)) == len(indexes)
    assert all(records[r["data"]["i"]] == r for r in output)
    if percent == 100:
        assert sorted(indexes) == list(range(len(records)))  # a permutation


@settings(max_examples=20, deadline=None)
@given(st.lists(BODIES, max_size=40), st.integers(0, 100), st.integers(0, 2**32))
def test_sample_exact_is_reproducible_with_a_seed(
    bodies: list[dict[str, Any]], percent: int, seed: int
) -> None:
    case = {
        "operations": [{"_op": "sample_exact", "percent_kept": percent, "seed": seed}],
        "slices": [case_records(bodies), case_records(bodies)],
    }
    assert ops_run(case) == ops_run(case)


def test_sample_exact_keeps_each_record_and_puts_each_first_equally_often() -> None:
    # 2,000 slices of 10 records at 50 % (seeded): each record kept ~1,000 times; at 100 % each
    # record comes first in ~1/10 of the slices (the output order is a shuffle).
    slices = [[record({"i": i}) for i in range(10)] for _ in range(2000)]
    half = run_ops([{"_op": "sample_exact", "percent_kept": 50, "seed": 3}], slices=slices)
    assert all(len(batch) == 5 for batch in half.slices)
    kept = Counter(r["i"] for r in half.output)
    low, high = binomial_bounds(2000, 0.5)
    assert sorted(kept) == list(range(10)) and all(low <= n <= high for n in kept.values()), kept
    slices = [[record({"i": i}) for i in range(10)] for _ in range(2000)]
    full = run_ops([{"_op": "sample_exact", "seed": 4}], slices=slices)
    first = Counter(batch[0]["i"] for batch in full.slices)
    low, high = binomial_bounds(2000, 0.1)
    assert sorted(first) == list(range(10)) and all(low <= n <= high for n in first.values()), first


# -- sample_random -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(BODIES, max_size=120),
    st.integers(0, 100) | st.floats(0, 100, allow_nan=False),
    SEEDS,
)
def test_sample_random_keeps_a_subsequence_in_order(
    bodies: list[dict[str, Any]], probability: float, seed: int | None
) -> None:
    records = case_records(bodies)
    op = {"_op": "sample_random", "probability_to_keep": probability, "seed": seed}
    output = ops_run({"operations": [op], "input": records})["output"]
    indexes = [r["data"]["i"] for r in output]
    assert indexes == sorted(set(indexes))  # in input order, none twice
    assert all(records[r["data"]["i"]] == r for r in output)  # kept whole
    if probability < 1:  # a draw from 1..100 is never below 1
        assert output == []
    if probability == 100:
        assert output == records


def test_sample_random_keeps_floor_p_percent_within_binomial_bounds() -> None:
    # Each record is kept when a draw from 1..100 is <= p: with probability floor(p) / 100
    # (99.5 keeps like 99, 0.5 keeps nothing). 10,000 records per probability, seeded.
    runs = [(1, 0.01, 1), (25, 0.25, 2), (50, 0.5, 3), (99.5, 0.99, 4), (0.5, 0.0, 5)]
    for probability, rate, seed in runs:
        op = {"_op": "sample_random", "probability_to_keep": probability, "seed": seed}
        kept = len(run_ops([op], input=[record({"i": i}) for i in range(10_000)]).output)
        low, high = binomial_bounds(10_000, rate)
        assert low <= kept <= high, (probability, kept)

"""The input domain recorded in a signature and the data plane's out-of-domain flags."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.matrix import float_matrix
from modelpilot.models.signature import (
    MIN_ROWS_FOR_NO_NULLS,
    InputDomain,
    Signature,
    infer_signature,
)
from modelpilot.predictions.domain_fields import parse_domain_fields
from modelpilot.serving.domain import flag_batch, flag_rows

EXAMPLE = pd.DataFrame({"age": [20, 60, 35], "income": [1.0, 3.0, 2.0], "plan": ["a", "b", "a"]})


def test_signature_records_ranges_and_categories_and_round_trips_through_json() -> None:
    signature = infer_signature(EXAMPLE)
    stored = signature.to_dict()
    assert stored["domain"] == {
        "ranges": {"age": [20.0, 60.0], "income": [1.0, 3.0]},
        "categories": {"plan": ["a", "b"]},
        "never_null": [],  # three rows prove nothing about missing values
        "rows": 3,
        "source": "input example",
    }
    loaded = Signature.from_dict(stored)
    assert loaded.domain == signature.domain
    assert loaded.domain is not None and loaded.domain.columns == ("age", "income", "plan")


def test_a_signature_stored_before_domains_loads_without_one() -> None:
    old = infer_signature(EXAMPLE).to_dict()
    del old["domain"]
    loaded = Signature.from_dict(old)
    assert loaded.domain is None
    assert loaded == infer_signature(EXAMPLE)  # the domain does not change what is accepted


def test_a_domain_stored_before_null_checks_loads_with_none() -> None:
    old = infer_signature(EXAMPLE).to_dict()
    old["domain"] = {"ranges": {"age": [20.0, 60.0]}, "categories": {"plan": ["a"]}}
    domain = Signature.from_dict(old).domain
    assert domain is not None
    assert (domain.never_null, domain.rows, domain.source) == (frozenset(), 0, "input example")
    flags = flag_rows(domain, [[None, math.nan, None], [90, 2.0, "a"]], all_numeric=False)
    assert flags.fields == [None, None]


def test_an_example_of_enough_rows_records_its_columns_without_nulls() -> None:
    frame = pd.DataFrame({"x": range(MIN_ROWS_FOR_NO_NULLS), "y": [1.0, None] * 50})
    domain = infer_signature(frame).domain
    assert domain is not None and domain.never_null == {"x"}
    short = infer_signature(frame.head(MIN_ROWS_FOR_NO_NULLS - 1)).domain
    assert short is not None and short.never_null == frozenset()


def test_far_outside_means_beyond_min_or_max_by_more_than_the_range() -> None:
    domain = infer_signature(EXAMPLE).domain
    assert domain is not None
    rows: list[list[object]] = [
        [-20, 2.0, "a"],  # exactly one range (40) below the minimum: inside
        [100, 2.0, "b"],  # exactly one range above the maximum: inside
        [-21, 2.0, "a"],
        [20, 5.5, "a"],  # income range 2: above 5 is outside
        [20, math.nan, None],  # missing values are never outside
        [101, 9.0, "c"],
    ]
    flags = flag_rows(domain, rows, all_numeric=False)
    assert flags.is_outside.tolist() == [False, False, True, True, False, True]
    assert flags.fields == [
        None,
        None,
        "age:out_of_range",
        "income:out_of_range",
        None,
        "age:out_of_range,income:out_of_range,plan:unseen_category",
    ]
    assert flags.count == 3
    assert flags.values == (
        ("age", "out_of_range", 2),
        ("income", "out_of_range", 2),
        ("plan", "unseen_category", 1),
    )


def test_a_constant_column_allows_its_magnitude_either_side() -> None:
    domain = InputDomain(("rate",), {"rate": (5.0, 5.0)})
    flags = flag_rows(domain, [[0.0], [10.0], [-0.5], [10.5]], all_numeric=True)
    assert flags.is_outside.tolist() == [False, False, True, True]
    assert flags.matrix is not None and flags.matrix.shape == (4, 1)


def test_a_null_is_flagged_only_in_columns_the_reference_never_left_empty() -> None:
    domain = InputDomain(
        ("a", "b", "c", "d"),
        {"a": (0.0, 1.0), "b": (0.0, 1.0)},
        {"c": frozenset({"x"})},
        never_null=frozenset({"a", "c"}),
    )
    rows: list[list[object]] = [[math.nan, math.nan, None, None], [0.5, 0.5, "x", None]]
    flags = flag_rows(domain, rows, all_numeric=False)
    assert flags.fields == ["a:unexpected_null,c:unexpected_null", None]
    numeric = InputDomain(("a", "b"), {"a": (0.0, 1.0)}, never_null=frozenset({"a", "b"}))
    flags = flag_rows(numeric, [[math.nan, 0.0], [9.0, math.nan], [0.5, 1e9]], all_numeric=True)
    assert flags.fields == ["a:unexpected_null", "a:out_of_range,b:unexpected_null", None]
    assert flags.values == (("a", "out_of_range", 1), ("a", "unexpected_null", 1),
                            ("b", "unexpected_null", 1))  # fmt: skip


# -- properties ------------------------------------------------------------------------------

finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
CATEGORIES = ["a", "b", "c", "d", "e"]


@st.composite
def domains(draw: st.DrawFn) -> InputDomain:
    """Number columns n0.. and, unless all-numeric, a last category column 'cat'; any of
    them may be in ``never_null``."""
    ranges = {}
    for i in range(draw(st.integers(1, 5))):
        lo, hi = sorted((draw(finite), draw(finite)))
        ranges[f"n{i}"] = (lo, hi)
    categories = {}
    if draw(st.booleans()):
        categories["cat"] = frozenset(draw(st.sets(st.sampled_from(CATEGORIES), min_size=1)))
    columns = (*ranges, *categories)
    never_null = frozenset(draw(st.sets(st.sampled_from(columns))))
    return InputDomain(columns, ranges, categories, never_null)


def _limits(domain: InputDomain, name: str) -> tuple[float, float]:
    lo, hi = domain.ranges[name]
    margin = hi - lo if hi > lo else max(abs(lo), 1.0)
    return lo - margin, hi + margin


def _inside(domain: InputDomain, data: st.DataObject) -> list[object]:
    """A row inside the domain; missing values only where the reference had some."""
    row: list[object] = []
    for name in domain.columns:
        if name not in domain.never_null and data.draw(st.booleans()):
            row.append(None if name == "cat" else math.nan)
        elif name == "cat":
            row.append(data.draw(st.sampled_from(sorted(domain.categories["cat"]))))
        else:
            row.append(data.draw(st.floats(*_limits(domain, name))))
    return row


@given(domains(), st.data())
def test_values_inside_the_domain_are_never_flagged(
    domain: InputDomain, data: st.DataObject
) -> None:
    rows = [_inside(domain, data) for _ in range(data.draw(st.integers(1, 8)))]
    flags = flag_rows(domain, rows, all_numeric="cat" not in domain.columns)
    assert flags.count == 0 and not flags.is_outside.any() and flags.values == ()
    assert flags.fields == [None] * len(rows)


@given(domains(), st.data())
def test_values_beyond_the_margin_unseen_or_unexpectedly_missing_are_always_flagged(
    domain: InputDomain, data: st.DataObject
) -> None:
    column = data.draw(st.integers(0, len(domain.columns) - 1))
    name = domain.columns[column]
    bad: object
    if name in domain.never_null and data.draw(st.booleans()):
        bad, kind = (None if name == "cat" else math.nan), "unexpected_null"
    elif name == "cat":
        unseen = [c for c in CATEGORIES if c not in domain.categories["cat"]]
        bad, kind = data.draw(st.sampled_from([*unseen, "zz"])), "unseen_category"
    else:
        low, high = _limits(domain, name)
        step = data.draw(st.floats(1e-6, 1e6)) * max(1.0, abs(high) + abs(low))
        bad, kind = data.draw(st.sampled_from([high + step, low - step])), "out_of_range"
    rows = [_inside(domain, data) for _ in range(data.draw(st.integers(1, 4)))]
    target = data.draw(st.integers(0, len(rows) - 1))
    rows[target][column] = bad
    flags = flag_rows(domain, rows, all_numeric="cat" not in domain.columns)
    assert flags.is_outside.tolist() == [i == target for i in range(len(rows))]
    assert parse_domain_fields(flags.fields[target]) == [(name, kind)]
    assert flags.count == 1 and flags.values == ((name, kind, 1),)


@given(domains(), st.data())
def test_a_batchs_flags_from_its_matrix_are_the_rows_flags(
    domain: InputDomain, data: st.DataObject
) -> None:
    """The data plane flags an all-numeric model's batch from the matrix it predicted on, with
    a shortcut for the usual all-inside batch: the same flags as flag_rows on the rows,
    whether the rows are inside, outside, or missing values."""
    if "cat" in domain.columns:
        return
    rows = [_inside(domain, data) for _ in range(data.draw(st.integers(1, 6)))]
    if data.draw(st.booleans()):  # one value somewhere far outside, or missing
        row, column = (
            data.draw(st.integers(0, len(rows) - 1)),
            data.draw(st.integers(0, len(domain.columns) - 1)),
        )
        low, high = _limits(domain, domain.columns[column])
        rows[row][column] = data.draw(
            st.sampled_from([math.nan, high + abs(high) + 1, low - abs(low) - 1])
        )
    runtime: Any = SimpleNamespace(
        model=SimpleNamespace(signature=SimpleNamespace(domain=domain)), all_numeric=True
    )
    batch: Any = [SimpleNamespace(rows=[row]) for row in rows]
    matrix = float_matrix(rows)
    got, expected = flag_batch(runtime, batch, matrix), flag_rows(domain, rows, all_numeric=True)
    assert got is not None
    assert got.is_outside.tolist() == expected.is_outside.tolist()
    assert (got.fields, got.count, got.values) == (expected.fields, expected.count, expected.values)
    assert got.matrix is matrix  # the log reuses it


@given(
    st.lists(
        st.lists(
            st.one_of(st.floats(allow_nan=True), st.integers(-(2**62), 2**62), st.booleans()),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_float_matrix_is_what_numpy_makes_of_the_rows(rows: list[list[Any]]) -> None:
    expected = np.array(rows, dtype=np.float64)
    got = float_matrix(rows)
    assert got.dtype == np.float64 and got.shape == expected.shape and got.flags.writeable
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(float_matrix([tuple(r) for r in rows]), expected, equal_nan=True)


def test_float_matrix_reads_a_missing_number_and_refuses_ragged_rows() -> None:
    assert np.isnan(float_matrix([[None, 1.0]])[0, 0])  # as np.array reads None
    for ragged in ([[1.0, 2.0], [3.0]], [[1.0], [2.0, 3.0]]):
        with pytest.raises(ValueError):
            float_matrix(ragged)

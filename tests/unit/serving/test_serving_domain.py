"""The input domain recorded in a signature and the data plane's out-of-domain flags."""

from __future__ import annotations

import math

import pandas as pd

from modelpilot.models.signature import InputDomain, Signature, infer_signature
from modelpilot.serving.domain import flag_rows

EXAMPLE = pd.DataFrame({"age": [20, 60, 35], "income": [1.0, 3.0, 2.0], "plan": ["a", "b", "a"]})


def test_signature_records_ranges_and_categories_and_round_trips_through_json() -> None:
    signature = infer_signature(EXAMPLE)
    stored = signature.to_dict()
    assert stored["domain"] == {
        "ranges": {"age": [20.0, 60.0], "income": [1.0, 3.0]},
        "categories": {"plan": ["a", "b"]},
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
    assert flags.fields == [None, None, "age", "income", None, "age,income,plan"]
    assert flags.count == 3


def test_a_constant_column_allows_its_magnitude_either_side() -> None:
    domain = InputDomain(("rate",), {"rate": (5.0, 5.0)})
    flags = flag_rows(domain, [[0.0], [10.0], [-0.5], [10.5]], all_numeric=True)
    assert flags.is_outside.tolist() == [False, False, True, True]
    assert flags.matrix is not None and flags.matrix.shape == (4, 1)

"""Request validation compiled from the signature: every failure names field, row, expected, got."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.models.signature import ColumnSpec, Signature
from modelpilot.serving.validation import RequestValidator

SIG = Signature(
    "columns",
    inputs=(
        ColumnSpec("age", "int64"),
        ColumnSpec("income", "float64", nullable=True),
        ColumnSpec("plan", "string"),
        ColumnSpec("active", "bool"),
    ),
)
V = RequestValidator(SIG)
GOOD = {"age": 31, "income": 1.5, "plan": "basic", "active": True}


def test_records_come_back_as_rows_in_signature_order() -> None:
    shuffled = {"plan": "pro", "active": False, "income": 2.0, "age": 5}
    assert V.from_records([GOOD, shuffled]) == [[31, 1.5, "basic", True], [5, 2.0, "pro", False]]


def test_columns_and_matrix_give_the_same_rows_as_records() -> None:
    columns = {k: [v, v] for k, v in GOOD.items()}
    matrix = [list(GOOD.values())] * 2
    assert V.from_columns(columns) == V.from_records([GOOD, GOOD])
    assert V.from_matrix(matrix, [2, 4], "x") == V.from_records([GOOD, GOOD])


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {**GOOD, "age": "31"},
            r"Input 'age' \(row 1\): expected a whole number \(int64\); got '31'",
        ),
        ({**GOOD, "age": 1.5}, r"Input 'age' \(row 1\): expected a whole number"),
        ({**GOOD, "age": True}, r"Input 'age' \(row 1\).*got True"),
        (
            {**GOOD, "income": math.inf},
            r"Input 'income' \(row 1\): expected a finite number or null",
        ),
        ({**GOOD, "plan": 3}, r"Input 'plan' \(row 1\): expected a string \(string\); got 3"),
        ({**GOOD, "active": 1}, r"Input 'active' \(row 1\): expected true or false"),
        ({"age": 1, "income": 1.0, "plan": "x"}, r"Wrong columns in record 1: missing 'active'"),
        ({**GOOD, "zip": "1"}, r"unexpected 'zip'\. Expected exactly: age, income, plan, active"),
    ],
)
def test_bad_values_name_column_row_expected_and_got(
    record: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        V.from_records([GOOD, record])


def test_nullable_floats_become_nan_and_others_refuse_null() -> None:
    (row,) = V.from_records([{**GOOD, "income": None}])
    assert math.isnan(row[1])
    with pytest.raises(InvalidInput, match=r"Input 'age' \(row 0\).*got a missing value \(null\)"):
        V.from_records([{**GOOD, "age": None}])


def test_empty_requests_and_non_objects_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no rows"):
        V.from_records([])
    with pytest.raises(InvalidInput, match=r"Record 0 is 3; expected an object"):
        V.from_records([3])
    with pytest.raises(InvalidInput, match="all of the same length; got lengths"):
        V.from_columns({"age": [1], "income": [1.0, 2.0], "plan": ["a"], "active": [True]})
    with pytest.raises(InvalidInput, match=r"has shape \[1, 3\].*expected \[rows, 4\]"):
        V.from_matrix([[1, 2.0, "a"]], [1, 3], "x")


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "age": st.integers(-(2**53), 2**53),
                "income": st.floats(allow_nan=False, allow_infinity=False) | st.none(),
                "plan": st.text(max_size=5),
                "active": st.booleans(),
            }
        ),
        min_size=1,
        max_size=5,
    )
)
def test_any_valid_record_list_validates_to_its_own_values(
    records: list[dict[str, object]],
) -> None:
    rows = V.from_records(records)
    for record, row in zip(records, rows, strict=True):
        assert row[0] == record["age"] and row[2] == record["plan"] and row[3] == record["active"]
        assert (math.isnan(row[1]) and record["income"] is None) or row[1] == record["income"]
    assert V.from_columns({k: [r[k] for r in records] for k in GOOD}) == rows


@given(st.sampled_from(["age", "income", "plan", "active"]), st.integers(0, 3))
def test_a_bad_value_anywhere_is_reported_at_its_row(column: str, bad_row: int) -> None:
    records = [dict(GOOD) for _ in range(4)]
    records[bad_row][column] = [1]  # a list is never a valid scalar
    with pytest.raises(InvalidInput, match=rf"Input '{column}' \(row {bad_row}\)") as info:
        V.from_records(records)
    assert info.value.field == column


FLOATS = Signature(
    "columns",
    inputs=(
        ColumnSpec("a", "float64"),
        ColumnSpec("b", "float64", nullable=True),
        ColumnSpec("c", "float32"),
    ),
)
ANY_SCALAR = (
    st.floats()
    | st.integers()
    | st.integers(-(2**1100), 2**1100)
    | st.sampled_from([None, True, "1.5", 1e308, -1e308, [1.0]])
)


@given(st.lists(st.fixed_dictionaries({"a": ANY_SCALAR, "b": ANY_SCALAR, "c": ANY_SCALAR})))
def test_the_fast_all_float_path_accepts_and_refuses_exactly_what_the_checkers_do(
    records: list[dict[str, object]],
) -> None:
    fast = RequestValidator(FLOATS)
    slow = RequestValidator(FLOATS)
    slow.all_float = False  # force the per-value checkers
    columns = {name: [r[name] for r in records] for name in ("a", "b", "c")}
    outcomes = []
    for validator in (fast, slow):
        for parse, data in ((validator.from_records, records), (validator.from_columns, columns)):
            try:
                outcomes.append(("rows", repr(parse(data))))  # type: ignore[operator]
            except InvalidInput as exc:
                outcomes.append(("error", exc.message))
    assert outcomes[:2] == outcomes[2:]


def test_numbers_a_model_input_cannot_hold_are_refused_by_name() -> None:
    with pytest.raises(
        InvalidInput, match=r"Input 'age' \(row 0\): expected a whole number within int64"
    ):
        V.from_records([{**GOOD, "age": 2**63}])
    with pytest.raises(
        InvalidInput, match=r"Input 'a' \(row 0\): expected a finite number within float64"
    ):
        RequestValidator(FLOATS).from_records([{"a": 10**400, "b": 1.0, "c": 1.0}])


JSON_SCALAR = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**64 - 1)
    | st.sampled_from([None, True, False, "1.5", "true", 1e308, -1e308, [1.0], {"x": 1}])
)


@given(st.lists(st.fixed_dictionaries({"a": JSON_SCALAR, "b": JSON_SCALAR, "c": JSON_SCALAR})))
def test_json_records_take_the_summing_path_with_the_checkers_outcome(
    records: list[dict[str, object]],
) -> None:
    """The data plane sums a JSON row exactly (orjson's integers fit in 64 bits) instead of
    with fsum; whatever the body, the rows or the error are the per-value checkers' own."""
    parsed = orjson.loads(orjson.dumps(records))
    slow = RequestValidator(FLOATS)
    slow.all_float = False
    outcomes = []
    for validator, from_json in ((RequestValidator(FLOATS), True), (slow, False)):
        try:
            outcomes.append(("rows", repr(validator.from_records(parsed, from_json=from_json))))
        except InvalidInput as exc:
            outcomes.append(("error", exc.message))
    assert outcomes[0] == outcomes[1]

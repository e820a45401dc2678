"""Personal data in an input example: each kind found, ordinary features left alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelpilot.models.pii import detect_pii, is_luhn_valid

# Opaque column names: each kind must be found by its values alone.
BY_VALUES = pd.DataFrame(
    {
        "c1": ["ada@example.org", "grace.hopper@navy.mil", "x@y.co"],
        "c2": ["+1 415 555 0100", "(212) 555-0199", "+44 20 7946 0958"],
        "c3": ["078-05-1120", "219-09-9999", "457-55-5462"],
        "c4": ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009"],
        "c5": ["10 Downing Street", "1600 Pennsylvania Avenue NW", "221B Baker St"],
        "c6": ["192.168.0.1", "10.0.0.7", "2001:db8::1"],
        "tenure": [3, 14, 27],
    }
)

BY_NAMES = pd.DataFrame(
    {
        "customerEmail": ["a"],
        "phone_number": ["a"],
        "SSN": [1],
        "credit_card": ["a"],
        "first_name": ["a"],
        "last_name": ["a"],
        "name": ["a"],
        "street_address": ["a"],
        "zip_code": [1],
        "client_ip": ["a"],
    }
)


def test_each_kind_is_found_by_its_values_with_a_suggested_policy() -> None:
    found = {f.column: (f.kind, f.found_by, f.suggested_action) for f in detect_pii(BY_VALUES)}
    assert found == {
        "c1": ("email", "values", "hash"),
        "c2": ("phone", "values", "hash"),
        "c3": ("national_id", "values", "drop"),
        "c4": ("card_number", "values", "drop"),
        "c5": ("address", "values", "redact"),
        "c6": ("ip_address", "values", "hash"),
    }


def test_each_kind_is_found_by_its_column_name() -> None:
    found = {f.column: f.kind for f in detect_pii(BY_NAMES)}
    assert found == {
        "customerEmail": "email",
        "phone_number": "phone",
        "SSN": "national_id",
        "credit_card": "card_number",
        "first_name": "person_name",
        "last_name": "person_name",
        "name": "person_name",
        "street_address": "address",
        "zip_code": "address",
        "client_ip": "ip_address",
    }


def test_records_examples_are_checked_like_frames() -> None:
    (finding,) = detect_pii([{"contact": "ada@example.org", "age": 36}])
    assert (finding.column, finding.kind) == ("contact", "email")
    assert str(finding) == (
        "input 'contact' looks like email (by its values); suggested log policy: hash"
    )


def test_an_ordinary_numeric_and_categorical_frame_has_no_findings() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, 50),
            "income": rng.normal(50_000, 9_000, 50),
            "account_balance": rng.normal(0, 1e12, 50),  # 16-digit numbers, not cards
            "plan": rng.choice(["basic", "pro", "max"], 50),
            "plan_name": rng.choice(["Basic Plan", "Pro Plan"], 50),
            "signup_day": rng.choice(["2024-01-15", "2023-12-31"], 50),
            "is_mobile": rng.integers(0, 2, 50).astype(bool),
            "dining_out": rng.integers(0, 9, 50),
            "ratio": rng.choice(["1234.5678", "0.25"], 50),
        }
    )
    assert detect_pii(frame) == []


def test_tensor_examples_have_no_column_names_to_flag() -> None:
    assert detect_pii(np.zeros((3, 4))) == []


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float64, np.int64, np.float32, np.int32]),
        shape=st.tuples(st.integers(1, 20), st.integers(1, 6)),
    )
)
def test_random_numeric_frames_give_no_findings(values: np.ndarray) -> None:
    frame = pd.DataFrame(values, columns=[f"f{j}" for j in range(values.shape[1])])
    assert detect_pii(frame) == []


@given(st.lists(st.integers(0, 9), min_size=12, max_size=18))
def test_luhn_valid_numbers_are_cards_and_invalid_ones_are_not(body: list[int]) -> None:
    digits = "".join(map(str, body))
    check = next(d for d in "0123456789" if is_luhn_valid(digits + d))
    wrong = str((int(check) + 1) % 10)
    valid, invalid = digits + check, digits + wrong
    assert is_luhn_valid(valid) and not is_luhn_valid(invalid)
    frame = pd.DataFrame({"c": [valid], "d": [invalid]})
    kinds = {f.column: f.kind for f in detect_pii(frame)}
    assert kinds.get("c") == "card_number"
    assert kinds.get("d") != "card_number"

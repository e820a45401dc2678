"""``--param`` text read against a pipeline's signature, and the cache key's canonical JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import modelpilot as mp
from modelpilot.pipelines.cache import cache_key
from modelpilot.pipelines.params import coerce, params_from_text, parse_assignments
from modelpilot.pipelines.values import ValueRef, canonical_json, check_json


@mp.step
def fit(window: str, n: int, rate: float = 0.1, debug: bool = False) -> int:
    return n


@mp.pipeline
def train(window: str, n: int, rate: float = 0.1, debug: bool = False, extra=None) -> object:  # type: ignore[no-untyped-def]
    return fit(window, n, rate, debug)


def test_cli_params_are_typed_by_the_signature_and_defaults_fill_in() -> None:
    assert params_from_text(train, ["window=30d", "n=3", "debug=yes", "extra=[1, 2]"]) == {
        "window": "30d",
        "n": 3,
        "rate": 0.1,
        "debug": True,
        "extra": [1, 2],
    }


def test_unknown_param_lists_what_the_pipeline_takes() -> None:
    with pytest.raises(mp.InvalidInput, match=r"Unknown param 'windw' for pipeline 'train'; it "
                       r"takes: window, n, rate=0.1, debug=False, extra=None\."):  # fmt: skip
        params_from_text(train, ["windw=30d", "n=3"])


def test_missing_param_says_how_to_give_it() -> None:
    with pytest.raises(mp.InvalidInput, match=r"Missing param 'n' for pipeline 'train': give it "
                       r"with --param n=VALUE"):  # fmt: skip
        params_from_text(train, ["window=30d"])


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["n"], r"--param 'n': expected NAME=VALUE"),
        (["1x=2"], r"--param '1x=2': expected NAME=VALUE with NAME a Python identifier"),
        (["n=1", "n=2"], r"--param n is given twice \('1' and '2'\)"),
    ],
)
def test_malformed_assignments_are_refused(items: list[str], message: str) -> None:
    with pytest.raises(mp.InvalidInput, match=message):
        parse_assignments(items)


@pytest.mark.parametrize(
    ("hint", "text", "message"),
    [
        (int, "3.5", r"Param 'x' of pipeline 'p' expects an int; got '3.5'"),
        (float, "inf", r"Param 'x' of pipeline 'p' must be finite"),
        (bool, "maybe", r"expects a bool \(true/false\); got 'maybe'"),
        (list, "{}", r"expects a JSON list; got '\{\}'"),
    ],
)
def test_values_that_do_not_fit_the_annotation_are_refused(
    hint: object, text: str, message: str
) -> None:
    with pytest.raises(mp.InvalidInput, match=message):
        coerce("x", text, hint, "p")


def test_postponed_annotations_and_optionals_are_read() -> None:
    assert coerce("x", "7", "int", "p") == 7
    assert coerce("x", "none", int | None, "p") is None
    assert coerce("x", "data.csv", Path, "p") == Path("data.csv")
    assert coerce("x", "churn@1a2b", "DatasetVersion", "p") == "churn@1a2b"


names = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(st.dictionaries(names, texts, max_size=5))
def test_assignments_round_trip_whatever_the_value_holds(params: dict[str, str]) -> None:
    """Values may contain '=', spaces or nothing at all: the first '=' splits."""
    assert parse_assignments([f"{k}={v}" for k, v in params.items()]) == params


@given(st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.booleans())
def test_typed_values_round_trip_through_their_text(n: int, x: float, flag: bool) -> None:
    assert coerce("n", str(n), int, "p") == n
    assert coerce("x", repr(x), float, "p") == x
    assert coerce("f", str(flag), bool, "p") is flag


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_unannotated_params_read_json_text_back_to_the_value(value: object) -> None:
    read = coerce("v", canonical_json(value), None, "p")
    if isinstance(value, str) and not _is_json(value):
        return  # plain words such as 30d: covered by the example tests
    assert canonical_json(read) == canonical_json(value)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@given(json_values)
def test_canonical_json_survives_a_round_trip_and_ignores_key_order(value: object) -> None:
    text = canonical_json(check_json(value, "v"))
    assert canonical_json(json.loads(text)) == text
    if isinstance(value, dict):
        reordered = dict(reversed(list(value.items())))
        assert canonical_json(reordered) == text


@given(st.dictionaries(names, json_values, max_size=4), st.data())
def test_cache_key_depends_on_input_content_not_order(
    inputs: dict[str, object], data: st.DataObject
) -> None:
    refs = {k: ValueRef(check_json(v, k)) for k, v in inputs.items()}
    key = cache_key("train", "code", refs)
    assert key == cache_key("train", "code", dict(reversed(list(refs.items()))))
    assert key != cache_key("train", "other code", refs)
    if refs:
        name = data.draw(st.sampled_from(sorted(refs)))
        changed = {**refs, name: ValueRef([refs[name].value])}
        assert cache_key("train", "code", changed) != key


def test_non_finite_floats_never_reach_a_cache_key() -> None:
    with pytest.raises(mp.InvalidInput, match="floats must be finite; got nan"):
        check_json({"a": [math.nan]}, "step 'f' argument 'a'")

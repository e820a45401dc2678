"""The run filter language and search_runs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelpilot.errors import InvalidInput
from modelpilot.tracking.search import Clause, parse_filter
from modelpilot.workspace import Workspace

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True).filter(
    lambda s: s.lower() != "and"
)
numbers = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\\'"), max_size=12
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["metrics", "params", "tags"]),
            names,
            st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
            st.one_of(numbers, texts),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_filter_round_trips_through_its_text_form(
    parts: list[tuple[str, str, str, object]],
) -> None:
    rendered = " and ".join(
        f"{p}.{n} {op} {v!r}" if isinstance(v, float) else f"{p}.{n} {op} '{v}'"
        for p, n, op, v in parts
    )
    parsed = parse_filter(rendered)
    assert parsed == [Clause(f"{p}.{n}", op, v) for p, n, op, v in parts]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.auc >", "incomplete clause"),
        ("metrics.auc ~ 3", "unexpected character"),
        ("foo.auc > 3", "unknown prefix 'foo'"),
        ("metrics.auc > 0.9 or metrics.f1 > 1", "expected 'and'"),
        ("bogus > 1", "unknown field 'bogus'"),
    ],
)
def test_bad_filters_point_at_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_filter(text)


def test_search_filters_and_orders_runs(ws: Workspace) -> None:
    for auc, depth in ((0.7, 3), (0.95, 6), (0.92, 8)):
        with ws.start_run("churn"):
            ws.log_params({"max_depth": depth})
            ws.log_metric("auc", auc)
    with ws.start_run("other"):
        ws.log_metric("auc", 0.99)
    frame = ws.search_runs("churn", filter="metrics.auc > 0.9", order_by=["metrics.auc DESC"])
    assert frame["metrics.auc"].tolist() == [0.95, 0.92]
    assert frame["params.max_depth"].tolist() == ["6", "8"]
    numeric_param = ws.search_runs("churn", filter="params.max_depth >= 6")
    assert sorted(numeric_param["metrics.auc"]) == [0.92, 0.95]


def test_search_in_unknown_experiment_lists_existing(ws: Workspace) -> None:
    with ws.start_run("churn"):
        pass
    with pytest.raises(Exception, match="Existing experiments: churn"):
        ws.search_runs("nope")

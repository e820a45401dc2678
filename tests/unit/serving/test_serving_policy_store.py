"""Logging policies in the metadata store (SQLite and PostgreSQL): merge, audit, snapshot."""

from __future__ import annotations

import functools

import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from modelpilot import release
from modelpilot.errors import InvalidInput, NotFound
from modelpilot.predictions.policy_store import (
    get_log_policy,
    list_log_policies,
    load_policy_set,
    set_log_policy,
)
from modelpilot.store.events import list_events
from modelpilot.workspace import Workspace


@pytest.fixture
def people(ws: Workspace) -> Workspace:
    x = pd.DataFrame({"score": [1.0, 2.0, 3.0], "age": [30.0, 40.0, 50.0]})
    mv = ws.log_model(LinearRegression().fit(x, [1.0, 2.0, 3.0]), "people", input_example=x)
    release.create_deployment(ws.store, "people-prod", mv.ref)
    return ws


def test_set_merges_columns_keeps_retention_and_records_an_event(people: Workspace) -> None:
    store = people.store
    set_log_policy(store, "people", {"age": "hash"}, retention_days=30, actor="user:ada")
    stored = set_log_policy(store, "people", {"score": "drop"}, actor="user:bob")
    assert stored.policy.columns == {"age": "hash", "score": "drop"}
    assert stored.policy.retention_days == 30 and stored.actor == "user:bob"
    again = get_log_policy(store, "model", "people")
    assert again is not None and again.policy == stored.policy
    with store.read() as conn:
        events = list_events(conn, "model:people")
    kinds = [(e.kind, e.actor) for e in events if e.kind == "logging_policy.set"]
    assert kinds == [("logging_policy.set", "user:bob"), ("logging_policy.set", "user:ada")]


def test_deployment_policy_is_its_own_row_and_overrides_in_the_snapshot(
    people: Workspace,
) -> None:
    store = people.store
    set_log_policy(store, "people", {"age": "hash"})
    set_log_policy(store, "people", {"age": "drop"}, deployment="people-prod")
    assert [(p.scope, p.name) for p in list_log_policies(store)] == [
        ("model", "people"),
        ("deployment", "people-prod"),
    ]
    policies = load_policy_set(store, ["people"], ["people-prod"])
    assert policies.effective("people", "people-prod").action("age") == "drop"  # type: ignore[union-attr]
    assert policies.effective("people", None).action("age") == "hash"  # type: ignore[union-attr]
    assert not load_policy_set(store, ["other"], [])


def test_unknown_column_deployment_and_bad_retention_are_refused(people: Workspace) -> None:
    store = people.store
    with pytest.raises(InvalidInput, match="Model 'people' has no input 'agee'; its inputs are"):
        set_log_policy(store, "people", {"agee": "hash"})
    with pytest.raises(NotFound, match="no-such"):
        set_log_policy(
            store,
            "people",
            {"age": "hash"},
            deployment="no-such",
            check_deployment=functools.partial(release.get_deployment, store),
        )
    with pytest.raises(InvalidInput, match="greater than or equal to 1"):
        set_log_policy(store, "people", {}, retention_days=0)
    assert get_log_policy(store, "model", "people") is None
    with pytest.raises(NotFound, match="peeple"):  # a typo protects nothing: refused
        set_log_policy(store, "peeple", {}, retention_days=30)
    with pytest.raises(InvalidInput, match="Invalid model name 'people@champion'"):
        set_log_policy(store, "people@champion", {}, retention_days=30)
    assert list_log_policies(store) == []

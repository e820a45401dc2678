"""Deployments: changes, history, audit events and every refused change leaving state as it was."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from modelpilot import release
from modelpilot.errors import Conflict, InvalidInput, NotFound
from modelpilot.release.config import Variant, build_config
from modelpilot.store.events import list_events
from modelpilot.workspace import Workspace


@pytest.fixture
def models(ws: Workspace) -> Workspace:
    """churn/1..3 share a signature; other/1 takes different columns."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(80, 2)), columns=["age", "calls"])
    y = (x["age"] > 0).astype(int)
    for _ in range(3):
        ws.log_model(LogisticRegression().fit(x, y), "churn", input_example=x.head())
    z = x.rename(columns={"calls": "tenure"})
    ws.log_model(LogisticRegression().fit(z, y), "other", input_example=z.head())
    return ws


def test_canary_then_promote_then_rollback_keeps_full_history(models: Workspace) -> None:
    store = models.store
    release.create_deployment(store, "churn-prod", "churn/1", actor="alice")
    dep = release.set_canary(store, "churn-prod", "churn/2", 10, actor="bob", reason="try v2")
    assert [(v.role, v.ref, v.weight) for v in dep.config.variants] == [
        ("stable", "churn/1", 90),
        ("canary", "churn/2", 10),
    ]
    dep = release.promote(store, "churn-prod", actor="bob")
    assert [(v.role, v.ref, v.weight) for v in dep.config.variants] == [("stable", "churn/2", 100)]
    release.set_canary(store, "churn-prod", "churn/3", 25)
    dep = release.rollback(store, "churn-prod", reason="p99 too high")
    assert [(v.role, v.ref, v.weight) for v in dep.config.variants] == [("stable", "churn/2", 100)]
    revisions = release.history(store, "churn-prod")
    assert [r.action for r in revisions] == ["rollback", "canary", "promote", "canary", "create"]
    assert revisions[-1].actor == "alice" and revisions[-2].reason == "try v2"
    assert revisions[0].reason == "p99 too high (back to revision 3)"
    with store.read() as conn:
        kinds = [e.kind for e in list_events(conn, "deployment:churn-prod")]
    assert kinds == [
        "deployment.rollback",
        "deployment.canary",
        "deployment.promote",
        "deployment.canary",
        "deployment.create",
    ]


def test_shadow_and_ab_configurations(models: Workspace) -> None:
    store = models.store
    release.create_deployment(store, "d", "churn/1")
    dep = release.set_shadow(store, "d", "churn/3")
    dep = release.set_ab(store, "d", "churn/2", 50, "user_id")
    roles = {v.role: (v.ref, v.weight) for v in dep.config.variants}
    assert roles == {
        "stable": ("churn/1", 50),
        "challenger": ("churn/2", 50),
        "shadow": ("churn/3", 0),
    }
    assert dep.config.routing_key == "user_id"


def test_unknown_deployment_is_not_found(models: Workspace) -> None:
    with pytest.raises(NotFound, match="No deployment named 'nope'. Deployments: none yet"):
        release.get_deployment(models.store, "nope")


@pytest.mark.parametrize("weight", [-1, 101, 2.5, True])
def test_weight_outside_0_to_100_is_refused_and_nothing_changes(
    models: Workspace, weight: object
) -> None:
    release.create_deployment(models.store, "d", "churn/1")
    with pytest.raises(InvalidInput, match="must be a whole number from 0 to 100"):
        release.set_canary(models.store, "d", "churn/2", weight)  # type: ignore[arg-type]
    assert release.get_deployment(models.store, "d").revision == 1


def test_weights_must_sum_to_100() -> None:
    with pytest.raises(
        InvalidInput, match=r"traffic weights must sum to 100; got 90 \(stable=80, canary=10\)"
    ):
        build_config(
            [
                Variant(name="stable", model="m", version=1, role="stable", weight=80),
                Variant(name="canary", model="m", version=2, role="canary", weight=10),
            ],
            deployment="d",
        )


def test_incompatible_signature_is_refused_naming_the_columns(models: Workspace) -> None:
    release.create_deployment(models.store, "d", "churn/1")
    with pytest.raises(
        InvalidInput, match="column 'calls' is missing; column 'tenure' is not sent"
    ):
        release.set_canary(models.store, "d", "other/1", 10)
    assert release.get_deployment(models.store, "d").config.candidate() is None


def test_promoting_with_no_canary_is_refused(models: Workspace) -> None:
    release.create_deployment(models.store, "d", "churn/1")
    with pytest.raises(InvalidInput, match="has no canary or challenger to promote"):
        release.promote(models.store, "d")


def test_rollback_with_nothing_to_undo_says_so(models: Workspace) -> None:
    release.create_deployment(models.store, "d", "churn/1")
    with pytest.raises(InvalidInput, match="already runs its last stable configuration"):
        release.rollback(models.store, "d")


def test_two_concurrent_changes_one_wins_the_other_conflicts(models: Workspace) -> None:
    store = models.store
    release.create_deployment(store, "d", "churn/1")
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def change(ref: str) -> None:
        barrier.wait()
        try:
            outcomes.append(release.set_canary(store, "d", ref, 10, expected_revision=1))
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=change, args=(ref,)) for ref in ("churn/2", "churn/3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(conflicts) == 1
    assert "based on revision 1, the deployment is now at revision 2" in conflicts[0].message
    assert release.get_deployment(store, "d").revision == 2
    assert len(release.history(store, "d")) == 2


def test_duplicate_or_bad_names_are_refused(models: Workspace) -> None:
    release.create_deployment(models.store, "d", "churn/1")
    with pytest.raises(Conflict, match="already exists"):
        release.create_deployment(models.store, "d", "churn/2")
    with pytest.raises(InvalidInput, match="Invalid deployment name 'Bad Name'"):
        release.create_deployment(models.store, "Bad Name", "churn/1")

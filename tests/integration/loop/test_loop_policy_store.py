"""Stored continuous-training policies on SQLite and PostgreSQL: revisions with actors, the
triggers a policy owns (created, kept, replaced, deleted), audit events in the same
transaction, and every refused policy storing nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import func, select

from modelpilot import release
from modelpilot.errors import Conflict, InvalidInput, NotFound
from modelpilot.loop import get_loop_policy, load_loop_policy, loop_policy_history
from modelpilot.loop import set_loop_policy as set_policy
from modelpilot.pipelines import evaluate_triggers, list_triggers
from modelpilot.pipelines.triggers import define_trigger
from modelpilot.store import Store
from modelpilot.store.events import list_events
from modelpilot.store.schema import ct_policies
from modelpilot.workspace import Workspace

PIPELINE = Path(__file__).parents[1] / "pipelines" / "tiny_pipeline.py"
FIRST = """\
triggers:
  - schedule: "0 3 * * *"
    cooldown: 1h
  - on_alert: drift
    subject: churn-prod
training:
  pipeline: tiny_pipeline.py:tiny
  params: {x: 3}
evaluation: {dataset: churn-test, target: churned, gate: gate.yaml}
"""
SECOND = """\
triggers:
  - schedule: "0 3 * * *"
    cooldown: 2h
    daily_budget: 2
training:
  pipeline: tiny_pipeline.py:tiny
  params: {x: 5}
evaluation: {window: 7d, target: churned, gate: gate.yaml}
require_approval: true
"""
DAY_MS = 86_400_000


@pytest.fixture
def home(ws: Workspace, tmp_path: Path) -> Workspace:
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(40, 2)), columns=["a", "b"])
    ws.log_model(LogisticRegression().fit(x, x["a"] > 0), "churn", input_example=x.head())
    ws.log_dataset(x.assign(churned=x["a"] > 0), name="churn-test")
    release.create_deployment(ws.store, "churn-prod", "churn/1", actor="alice")
    shutil.copy(PIPELINE, tmp_path / "tiny_pipeline.py")
    (tmp_path / "gate.yaml").write_text("latency: {max_p99_ms: 5}\n")
    return ws


def _file(folder: Path, text: str, name: str = "loop.yaml") -> Path:
    (folder / name).write_text(text)
    return folder / name


def _revisions(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(ct_policies)).scalar_one())


def test_set_twice_keeps_revisions_and_brings_owned_triggers_in_line(
    home: Workspace, tmp_path: Path
) -> None:
    store = home.store
    first = set_policy(store, "churn-prod", load_loop_policy(_file(tmp_path, FIRST)),
                       actor="alice", now_ms=10 * DAY_MS)  # fmt: skip
    assert (first.revision, first.actor, first.triggers) == (
        1,
        "alice",
        ("churn-prod.1", "churn-prod.2"),
    )
    made = {t.name: t for t in list_triggers(store)}
    assert made["churn-prod.1"].condition == "schedule 0 3 * * *"
    assert made["churn-prod.1"].cooldown_ms == 3_600_000
    assert made["churn-prod.1"].target == f"{tmp_path.resolve()}/tiny_pipeline.py:tiny"
    assert made["churn-prod.1"].params == ("x=3",)
    assert made["churn-prod.2"].condition == "alert drift on churn-prod"
    # the owned schedule trigger fires training at its next cron time (what `tick` does)
    fired = evaluate_triggers(store, 11 * DAY_MS + 3 * 3_600_000, launch=None)
    assert [(f.trigger_name, f.is_fired) for f in fired] == [("churn-prod.1", True)]

    second = set_policy(store, "churn-prod", load_loop_policy(_file(tmp_path, SECOND)),
                        actor="bob", now_ms=12 * DAY_MS)  # fmt: skip
    assert (second.revision, second.triggers) == (2, ("churn-prod.1",))
    kept = {t.name: t for t in list_triggers(store)}
    assert set(kept) == {"churn-prod.1"}  # the alert trigger the policy dropped is gone
    # same condition: updated in place, so its firing history still counts
    assert kept["churn-prod.1"].id == made["churn-prod.1"].id
    assert (kept["churn-prod.1"].cooldown_ms, kept["churn-prod.1"].daily_budget) == (7_200_000, 2)
    assert kept["churn-prod.1"].params == ("x=5",)

    assert get_loop_policy(store, "churn-prod").policy.require_approval is True
    old = get_loop_policy(store, "churn-prod", revision=1)
    assert old.policy.evaluation.dataset == "churn-test" and old.source == FIRST
    assert [(r.revision, r.actor) for r in loop_policy_history(store, "churn-prod")] == [
        (2, "bob"), (1, "alice"),
    ]  # fmt: skip
    with store.read() as conn:
        kinds = [(e.kind, e.subject) for e in list_events(conn, limit=7)]
    assert kinds[:3] == [
        ("loop_policy.set", "deployment:churn-prod"),
        ("trigger.updated", "trigger:churn-prod.1"),
        ("trigger.deleted", "trigger:churn-prod.2"),
    ]

    # a changed condition replaces the trigger (a new one, with a fresh history)
    third = SECOND.replace('"0 3 * * *"', '"0 4 * * *"')
    set_policy(store, "churn-prod", load_loop_policy(_file(tmp_path, third)),
               actor="bob", now_ms=13 * DAY_MS)  # fmt: skip
    (replaced,) = list_triggers(store)
    assert replaced.condition == "schedule 0 4 * * *" and replaced.id != kept["churn-prod.1"].id
    with pytest.raises(NotFound, match=r"no policy revision 9; its revisions are 1 to 3"):
        get_loop_policy(store, "churn-prod", revision=9)


def test_refused_policies_store_nothing(home: Workspace, tmp_path: Path) -> None:
    store = home.store
    with pytest.raises(NotFound, match=r"No deployment named 'nope'\. Deployments: churn-prod"):
        set_policy(store, "nope", load_loop_policy(_file(tmp_path, FIRST)), actor="a", now_ms=1)
    define_trigger(store, name="churn-prod.2", target=str(tmp_path / "tiny_pipeline.py:tiny"),
                   actor="carol", now_ms=1)  # fmt: skip
    with pytest.raises(Conflict, match=r"trigger 'churn-prod\.2' is taken by a trigger it does"):
        set_policy(store, "churn-prod", load_loop_policy(_file(tmp_path, FIRST)),
                   actor="a", now_ms=1)  # fmt: skip
    missing = _file(tmp_path, FIRST.replace("dataset: churn-test", "dataset: churn-tset"))
    with pytest.raises(NotFound, match=r"loop\.yaml:9: evaluation\.dataset: No dataset named "
                       r"'churn-tset'"):  # fmt: skip
        set_policy(store, "churn-prod", load_loop_policy(missing), actor="a", now_ms=1)
    for old, new in [("tiny_pipeline.py", "gone.py"), (":tiny", ":nada"),
                     ("gate.yaml", "nogate.yaml"), ("cooldown: 1h", "cooldown: 1 hour"),
                     ("0 3 * * *", "0 3 * *"), ("params:", "parms:")]:  # fmt: skip
        with pytest.raises(InvalidInput, match=r"loop\.yaml:\d+: "):
            loaded = load_loop_policy(_file(tmp_path, FIRST.replace(old, new)))
            set_policy(store, "churn-prod", loaded, actor="a", now_ms=1)
    assert _revisions(store) == 0
    assert [t.name for t in list_triggers(store)] == ["churn-prod.2"]  # only carol's
    with pytest.raises(NotFound, match=r"has no continuous-training policy yet"):
        get_loop_policy(store, "churn-prod")
    assert loop_policy_history(store, "churn-prod") == []

"""Stored continuous-training policies: one per deployment, every ``set`` a new revision.

Setting a policy also makes the triggers it names, owned by the policy and named
``<deployment>.<n>`` (the n-th entry of ``triggers``, from 1), so ``modelpilot pipelines
tick`` starts the training pipeline for that deployment. A later revision updates an owned
trigger in place when its condition is unchanged (its firings keep counting against the
cooldown and the budget), replaces it when the condition changed, and deletes the ones it
no longer names. The revision, the trigger changes and their audit events are one
transaction: an invalid policy or a refused change stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, select

from modelpilot.data.service import get_dataset
from modelpilot.errors import Conflict, NotFound, shown
from modelpilot.loop.policy import LoadedPolicy, LoopPolicy, TriggerSpec, where_in_policy
from modelpilot.pipelines.triggers import (
    Trigger,
    created_payload,
    deleted_payload,
    find_trigger,
    insert_trigger,
    remove_trigger,
    update_trigger_limits,
)
from modelpilot.release import service as deployments
from modelpilot.store import Store
from modelpilot.store.events import record_event
from modelpilot.store.schema import ct_policies
from modelpilot.store.schema import deployments as deployments_table


@dataclass(frozen=True)
class PolicyRevision:
    """One stored revision of a deployment's continuous-training policy."""

    deployment: str
    revision: int
    created_ms: int
    actor: str
    source_path: str
    source: str
    policy: LoopPolicy
    triggers: tuple[str, ...]


def trigger_name(deployment: str, index: int) -> str:
    """The name of the trigger a policy owns for its ``index``-th (0-based) trigger entry.

    >>> trigger_name("churn-prod", 0)
    'churn-prod.1'
    """
    return f"{deployment}.{index + 1}"


def set_loop_policy(
    store: Store, deployment: str, loaded: LoadedPolicy, *, actor: str, now_ms: int
) -> PolicyRevision:
    """Store ``loaded`` (checked by :func:`~modelpilot.loop.load_loop_policy`) as the next
    revision of ``deployment``'s policy and bring its owned triggers in line, in one
    transaction. NotFound for an unknown deployment; Conflict when a trigger name the policy
    needs belongs to someone else."""
    deployments.get_deployment(store, deployment)  # NotFound listing the deployments
    policy = loaded.policy
    _check_evaluation_dataset(store, loaded)
    wanted = {trigger_name(deployment, i): spec for i, spec in enumerate(policy.triggers)}
    with store.write() as conn:
        if conn.execute(_exists(deployment)).first() is None:  # deleted meanwhile
            raise NotFound(f"No deployment named {shown(deployment)}.", field="deployment")
        previous = _latest(conn, deployment)
        owned = set(previous.triggers) if previous is not None else set()
        revision = (previous.revision if previous is not None else 0) + 1
        events = _sync_triggers(conn, deployment, wanted, owned, policy, actor, now_ms)
        conn.execute(
            insert(ct_policies).values(
                deployment=deployment, revision=revision, created_ms=now_ms, actor=actor,
                source_path=loaded.path, source=loaded.source, policy=policy.to_dict(),
                triggers=sorted(wanted),
            )
        )  # fmt: skip
        for kind, subject, payload in events:  # events last: see record_event
            record_event(conn, kind, subject, actor, payload)
        record_event(
            conn, "loop_policy.set", f"deployment:{deployment}", actor,
            {"after": {"revision": revision, "triggers": sorted(wanted)},
             "before": {"revision": previous.revision if previous else None}},
        )  # fmt: skip
        row = _revision_row(conn, deployment, revision)
        assert row is not None  # inserted just above, in this transaction
        return _revision(row)


def _check_evaluation_dataset(store: Store, loaded: LoadedPolicy) -> None:
    """The evaluation dataset must exist when the policy is set (a retraining that finds no
    data to judge its candidate on would fail every time, hours later)."""
    name = loaded.policy.evaluation.dataset
    if name is None:
        return
    try:
        get_dataset(store, name)
    except NotFound as exc:
        where = where_in_policy(loaded, ["evaluation", "dataset"])
        raise NotFound(f"{where}: {exc.message}", field="evaluation.dataset") from None


def _sync_triggers(
    conn: Connection,
    deployment: str,
    wanted: dict[str, TriggerSpec],
    owned: set[str],
    policy: LoopPolicy,
    actor: str,
    now_ms: int,
) -> list[tuple[str, str, dict[str, Any]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    target, params = policy.training.pipeline, policy.training.param_texts()
    for name in sorted(owned - set(wanted)):
        found = find_trigger(conn, name)
        if found is not None:
            remove_trigger(conn, found)
            events.append(("trigger.deleted", f"trigger:{name}", deleted_payload(found)))
    for name, spec in wanted.items():
        found = find_trigger(conn, name)
        if found is not None and name not in owned:
            raise Conflict(
                f"Deployment {deployment!r}: the policy's trigger {name!r} is taken by a "
                "trigger it does not own. Delete that trigger (modelpilot pipelines trigger "
                f"delete {name}) or rename it, then set the policy again.",
                field="triggers",
            )
        kind, condition = spec.condition()
        limits = {"cooldown_ms": spec.cooldown_ms, "max_concurrent": spec.max_concurrent}
        limits["daily_budget"] = spec.daily_budget
        if found is not None and (found.kind, found.spec) == (kind, condition):
            update_trigger_limits(conn, found, target=target, params=params, **limits)
            events.append(("trigger.updated", f"trigger:{name}", _updated(found, target, params)))
            continue
        if found is not None:
            remove_trigger(conn, found)
            events.append(("trigger.deleted", f"trigger:{name}", deleted_payload(found)))
        made = insert_trigger(
            conn, name=name, target=target, params=params, kind=kind, spec=condition,
            actor=actor, now_ms=now_ms, **limits,
        )  # fmt: skip
        events.append(("trigger.created", f"trigger:{name}", created_payload(made)))
    return events


def _updated(found: Trigger, target: str, params: list[str]) -> dict[str, Any]:
    return {
        "before": {"target": found.target, "params": list(found.params)},
        "after": {"target": target, "params": params},
    }


def get_loop_policy(store: Store, deployment: str, revision: int | None = None) -> PolicyRevision:
    """The newest (or the given) revision of ``deployment``'s policy; NotFound saying what
    exists."""
    deployments.get_deployment(store, deployment)
    with store.read() as conn:
        latest = _latest(conn, deployment)
        if latest is None:
            raise NotFound(
                f"Deployment {deployment!r} has no continuous-training policy yet. Set one "
                f"with: modelpilot deploy policy set {deployment} --file loop.yaml",
                field="deployment",
            )
        if revision is None:
            return latest
        row = _revision_row(conn, deployment, revision)
    if row is None:
        raise NotFound(
            f"Deployment {deployment!r} has no policy revision {shown(revision)}; its "
            f"revisions are 1 to {latest.revision}.",
            field="revision",
        )
    return _revision(row)


def loop_policy_history(store: Store, deployment: str) -> list[PolicyRevision]:
    """Every revision of ``deployment``'s policy, newest first (empty when none was set)."""
    deployments.get_deployment(store, deployment)
    with store.read() as conn:
        rows = conn.execute(
            select(ct_policies)
            .where(ct_policies.c.deployment == deployment)
            .order_by(ct_policies.c.revision.desc())
        ).all()
    return [_revision(r) for r in rows]


def latest_loop_policies(store: Store) -> list[PolicyRevision]:
    """The newest policy revision of every deployment that has one, by deployment name (what
    the agent acts on each iteration)."""
    newest = (
        select(ct_policies.c.deployment, func.max(ct_policies.c.revision).label("revision"))
        .group_by(ct_policies.c.deployment)
        .subquery()
    )
    query = (
        select(ct_policies)
        .join(
            newest,
            and_(
                ct_policies.c.deployment == newest.c.deployment,
                ct_policies.c.revision == newest.c.revision,
            ),
        )
        .order_by(ct_policies.c.deployment)
    )
    with store.read() as conn:
        rows = conn.execute(query).all()
    return [_revision(r) for r in rows]


def _exists(deployment: str) -> Any:
    return select(deployments_table.c.name).where(deployments_table.c.name == deployment)


def _latest(conn: Connection, deployment: str) -> PolicyRevision | None:
    newest = conn.execute(
        select(func.max(ct_policies.c.revision)).where(ct_policies.c.deployment == deployment)
    ).scalar()
    if newest is None:
        return None
    row = _revision_row(conn, deployment, int(newest))
    return None if row is None else _revision(row)


def _revision_row(conn: Connection, deployment: str, revision: int) -> Row[Any] | None:
    return conn.execute(
        select(ct_policies).where(
            ct_policies.c.deployment == deployment, ct_policies.c.revision == revision
        )
    ).first()


def _revision(row: Row[Any]) -> PolicyRevision:
    return PolicyRevision(
        deployment=row.deployment,
        revision=row.revision,
        created_ms=row.created_ms,
        actor=row.actor,
        source_path=row.source_path,
        source=row.source,
        policy=LoopPolicy.model_validate(row.policy),
        triggers=tuple(row.triggers),
    )


__all__ = [
    "PolicyRevision",
    "get_loop_policy",
    "latest_loop_policies",
    "loop_policy_history",
    "set_loop_policy",
    "trigger_name",
]

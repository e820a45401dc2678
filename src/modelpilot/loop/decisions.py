"""Continuous-training decisions: one record per firing of a policy's trigger, and its steps.

A decision walks::

    training -> evaluating -> [awaiting_approval ->] ready -> canary -> promoted | rolled_back
                   |                   |
                   v                   v
            stopped_at_gate         rejected            (and failed, unchanged, superseded)

Every state it enters is a row of ``loop_steps`` (who, when, why, the evidence) and an audit
event ``loop.<state>``, written in the transaction that moves it. Moves are conditional
UPDATEs on the state the mover read, and the agent working on a decision holds a lease on it
(``owner``, ``lease_until_ms``): two agents never both act on one decision, and when an agent
is killed its lease runs out and another takes the decision over from its recorded state.

>>> LoopState.CANARY.is_final, LoopState.PROMOTED.is_final
(False, True)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.errors import Conflict, InvalidInput, shown
from modelpilot.store import Store
from modelpilot.store.events import record_event
from modelpilot.store.lookup import resolve_prefix
from modelpilot.store.schema import ct_policies, loop_decisions, loop_steps, trigger_firings

_MAX_REASON_CHARS = 4000


class LoopState(StrEnum):
    """Where a decision is (docs/continuous-training.md, The loop's states)."""

    TRAINING = "training"
    EVALUATING = "evaluating"
    AWAITING_APPROVAL = "awaiting_approval"
    READY = "ready"
    CANARY = "canary"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    STOPPED_AT_GATE = "stopped_at_gate"
    REJECTED = "rejected"
    FAILED = "failed"
    UNCHANGED = "unchanged"
    SUPERSEDED = "superseded"

    @property
    def is_final(self) -> bool:
        """True when nothing moves the decision any more."""
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {
        LoopState.PROMOTED,
        LoopState.ROLLED_BACK,
        LoopState.STOPPED_AT_GATE,
        LoopState.REJECTED,
        LoopState.FAILED,
        LoopState.UNCHANGED,
        LoopState.SUPERSEDED,
    }
)
OPEN_STATES = tuple(s.value for s in LoopState if not s.is_final)


@dataclass(frozen=True)
class LoopStep:
    """One state a decision entered."""

    state: LoopState
    at_ms: int
    actor: str
    reason: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class LoopDecision:
    """One pass of the loop for one deployment, started by one trigger firing."""

    id: str
    deployment: str
    policy_revision: int
    firing_id: str
    trigger_name: str
    pipeline_run_id: str | None
    candidate: str | None
    champion: str | None
    state: LoopState
    reason: str
    created_ms: int
    updated_ms: int
    owner: str | None
    lease_until_ms: int | None
    steps: tuple[LoopStep, ...] = ()

    @property
    def short_id(self) -> str:
        """The first 8 characters, what the CLI shows and accepts."""
        return self.id[:8]


def decision_to_json(decision: LoopDecision) -> dict[str, Any]:
    """A decision as JSON (what ``loop show --json`` prints and the server sends)."""
    return {
        "id": decision.id,
        "deployment": decision.deployment,
        "policy_revision": decision.policy_revision,
        "firing_id": decision.firing_id,
        "trigger": decision.trigger_name,
        "pipeline_run_id": decision.pipeline_run_id,
        "candidate": decision.candidate,
        "champion": decision.champion,
        "state": decision.state.value,
        "reason": decision.reason,
        "created_ms": decision.created_ms,
        "updated_ms": decision.updated_ms,
        "owner": decision.owner,
        "lease_until_ms": decision.lease_until_ms,
        "steps": [
            {"state": s.state.value, "at_ms": s.at_ms, "actor": s.actor, "reason": s.reason,
             "evidence": s.evidence}
            for s in decision.steps
        ],
    }  # fmt: skip


def decision_from_json(data: dict[str, Any]) -> LoopDecision:
    """The inverse of :func:`decision_to_json`."""
    return LoopDecision(
        id=data["id"], deployment=data["deployment"], policy_revision=data["policy_revision"],
        firing_id=data["firing_id"], trigger_name=data["trigger"],
        pipeline_run_id=data["pipeline_run_id"], candidate=data["candidate"],
        champion=data["champion"], state=LoopState(data["state"]), reason=data["reason"],
        created_ms=data["created_ms"], updated_ms=data["updated_ms"], owner=data["owner"],
        lease_until_ms=data["lease_until_ms"],
        steps=tuple(
            LoopStep(LoopState(s["state"]), s["at_ms"], s["actor"], s["reason"], s["evidence"])
            for s in data["steps"]
        ),
    )  # fmt: skip


def open_decisions(store: Store, now_ms: int, *, actor: str) -> list[LoopDecision]:
    """A decision (state ``training``) for every fired firing of a policy-owned trigger that
    has none yet; the unique ``firing_id`` makes each firing one decision across agents.

    A firing counts when its trigger is among the ones the deployment's newest policy owns and
    it was decided after the deployment's first policy; returns the decisions this call made.
    """
    with store.read() as conn:
        owners = _trigger_owners(conn)
        if not owners:
            return []
        first_policy = min(since for _, _, since in owners.values())
        taken = select(loop_decisions.c.firing_id)
        rows = conn.execute(
            select(trigger_firings)
            .where(
                trigger_firings.c.decision == "fired",
                trigger_firings.c.trigger_name.in_(sorted(owners)),
                trigger_firings.c.decided_ms >= first_policy,
                trigger_firings.c.id.not_in(taken),
            )
            .order_by(trigger_firings.c.decided_ms, trigger_firings.c.id)
        ).all()
    made = []
    for firing in rows:
        deployment, revision, since = owners[firing.trigger_name]
        if firing.decided_ms < since:
            continue
        decision = _insert_decision(store, firing, deployment, revision, now_ms, actor)
        if decision is not None:
            made.append(decision)
    return made


def _trigger_owners(conn: Connection) -> dict[str, tuple[str, int, int]]:
    """trigger name -> (deployment, newest revision, the deployment's first policy time)."""
    newest = (
        select(ct_policies.c.deployment, func.max(ct_policies.c.revision).label("revision"))
        .group_by(ct_policies.c.deployment)
        .subquery()
    )
    first = (
        select(ct_policies.c.deployment, func.min(ct_policies.c.created_ms).label("since"))
        .group_by(ct_policies.c.deployment)
        .subquery()
    )
    rows = conn.execute(
        select(
            ct_policies.c.deployment, ct_policies.c.revision, ct_policies.c.triggers, first.c.since
        )
        .join(
            newest,
            and_(
                newest.c.deployment == ct_policies.c.deployment,
                newest.c.revision == ct_policies.c.revision,
            ),
        )
        .join(first, first.c.deployment == ct_policies.c.deployment)
    ).all()
    return {
        str(name): (str(row.deployment), int(row.revision), int(row.since))
        for row in rows
        for name in row.triggers
    }


def _insert_decision(
    store: Store, firing: Row[Any], deployment: str, revision: int, now_ms: int, actor: str
) -> LoopDecision | None:
    decision_id = uuid.uuid4().hex
    reason = f"trigger {firing.trigger_name} fired: {firing.reason}"
    evidence = {
        "trigger": firing.trigger_name,
        "firing": firing.id,
        "occurrence": firing.occurrence,
        "pipeline_run": firing.pipeline_run_id,
    }
    try:
        with store.write() as conn:
            conn.execute(
                insert(loop_decisions).values(
                    id=decision_id,
                    deployment=deployment,
                    policy_revision=revision,
                    firing_id=firing.id,
                    trigger_name=firing.trigger_name,
                    pipeline_run_id=firing.pipeline_run_id,
                    state=LoopState.TRAINING.value,
                    reason=reason,
                    created_ms=now_ms,
                    updated_ms=now_ms,
                )
            )
            _record_step(
                conn, decision_id, deployment, LoopState.TRAINING, now_ms, actor, reason, evidence
            )
    except IntegrityError:  # another agent made this firing's decision first
        return None
    return get_decision(store, decision_id)


def claim_decision(
    store: Store, decision_id: str, *, owner: str, now_ms: int, lease_ms: int
) -> LoopDecision | None:
    """Hold ``decision_id`` for ``owner`` until ``now_ms + lease_ms``; None when it is final
    or another owner's lease is still running."""
    with store.write() as conn:
        claimed = conn.execute(
            update(loop_decisions)
            .where(
                loop_decisions.c.id == decision_id,
                loop_decisions.c.state.in_(OPEN_STATES),
                or_(
                    loop_decisions.c.owner.is_(None),
                    loop_decisions.c.owner == owner,
                    loop_decisions.c.lease_until_ms < now_ms,
                ),
            )
            .values(owner=owner, lease_until_ms=now_ms + lease_ms)
        ).rowcount
    return get_decision(store, decision_id) if claimed == 1 else None


def release_decision(store: Store, decision_id: str, *, owner: str) -> None:
    """Give up ``owner``'s lease (another agent may take the decision at once)."""
    with store.write() as conn:
        conn.execute(
            update(loop_decisions)
            .where(loop_decisions.c.id == decision_id, loop_decisions.c.owner == owner)
            .values(owner=None, lease_until_ms=None)
        )


def move_decision(
    store: Store,
    decision: LoopDecision,
    to: LoopState,
    *,
    actor: str,
    reason: str,
    now_ms: int,
    evidence: dict[str, Any] | None = None,
    owner: str | None = None,
    **fields: str | None,
) -> LoopDecision:
    """Move ``decision`` from the state it was read in to ``to`` (with ``fields`` such as
    ``candidate``), recording the step and an audit event in one transaction. Conflict when
    it moved meanwhile or ``owner`` no longer holds it."""
    reason = reason[:_MAX_REASON_CHARS]
    conditions = [
        loop_decisions.c.id == decision.id,
        loop_decisions.c.state == decision.state.value,
    ]
    if owner is not None:
        conditions.append(loop_decisions.c.owner == owner)
    values: dict[str, Any] = {"state": to.value, "reason": reason, "updated_ms": now_ms, **fields}
    if to.is_final:
        values.update(owner=None, lease_until_ms=None)
    with store.write() as conn:
        moved = conn.execute(update(loop_decisions).where(*conditions).values(**values)).rowcount
        if moved != 1:
            raise Conflict(
                f"Decision {decision.short_id} is no longer {decision.state.value} (another "
                "agent or a person moved it); nothing changed.",
                field="decision",
            )
        _record_step(
            conn, decision.id, decision.deployment, to, now_ms, actor, reason, evidence or {}
        )
    return get_decision(store, decision.id)


def approve_decision(
    store: Store, key: str, *, actor: str, now_ms: int, reject: bool = False, reason: str = ""
) -> LoopDecision:
    """A person approves (``ready``: the canary may start) or rejects (``rejected``) a decision
    that is ``awaiting_approval``; Conflict saying its state otherwise."""
    decision = get_decision(store, key)
    if decision.state is not LoopState.AWAITING_APPROVAL:
        raise Conflict(
            f"Decision {decision.short_id} ({decision.deployment}) is {decision.state.value}, "
            "not awaiting_approval; only a decision waiting for approval can be "
            f"{'rejected' if reject else 'approved'}.",
            field="decision",
        )
    to = LoopState.REJECTED if reject else LoopState.READY
    verb = "rejected" if reject else "approved"
    text = f"{verb} by {actor}" + (f": {reason}" if reason else "")
    return move_decision(
        store,
        decision,
        to,
        actor=actor,
        reason=text,
        now_ms=now_ms,
        evidence={"approval": verb, "by": actor, "reason": reason},
    )


def get_decision(store: Store, key: str) -> LoopDecision:
    """A decision with its steps, by id or a unique id prefix."""
    with store.read() as conn:
        return _load(conn, _resolve(conn, key))


def list_decisions(
    store: Store,
    *,
    deployment: str | None = None,
    candidate: str | None = None,
    open_only: bool = False,
    limit: int = 50,
) -> list[LoopDecision]:
    """Decisions, newest first, with their steps."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit must be between 1 and 10000; got {shown(limit)}.", field="limit")
    query = select(loop_decisions.c.id).order_by(
        loop_decisions.c.created_ms.desc(), loop_decisions.c.id
    )
    if deployment is not None:
        query = query.where(loop_decisions.c.deployment == deployment)
    if candidate is not None:
        query = query.where(loop_decisions.c.candidate == candidate)
    if open_only:
        query = query.where(loop_decisions.c.state.in_(OPEN_STATES))
    with store.read() as conn:
        keys = list(conn.execute(query.limit(limit)).scalars())
        return [_load(conn, str(k)) for k in keys]


def _record_step(
    conn: Connection,
    decision_id: str,
    deployment: str,
    state: LoopState,
    now_ms: int,
    actor: str,
    reason: str,
    evidence: dict[str, Any],
) -> None:
    conn.execute(
        insert(loop_steps).values(
            decision_id=decision_id,
            state=state.value,
            at_ms=now_ms,
            actor=actor,
            reason=reason,
            evidence=evidence,
        )
    )
    record_event(  # last: see record_event
        conn,
        f"loop.{state.value}",
        f"deployment:{deployment}",
        actor,
        {"decision": decision_id, "reason": reason, **evidence},
    )


def _resolve(conn: Connection, key: str) -> str:
    return resolve_prefix(conn, loop_decisions.c.id, key, what="loop decision",
                          hint="loop history DEPLOYMENT", field="decision")  # fmt: skip


def _load(conn: Connection, decision_id: str) -> LoopDecision:
    row = conn.execute(select(loop_decisions).where(loop_decisions.c.id == decision_id)).one()
    steps = conn.execute(
        select(loop_steps).where(loop_steps.c.decision_id == decision_id).order_by(loop_steps.c.id)
    ).all()
    return LoopDecision(
        id=row.id,
        deployment=row.deployment,
        policy_revision=row.policy_revision,
        firing_id=row.firing_id,
        trigger_name=row.trigger_name,
        pipeline_run_id=row.pipeline_run_id,
        candidate=row.candidate,
        champion=row.champion,
        state=LoopState(row.state),
        reason=row.reason,
        created_ms=row.created_ms,
        updated_ms=row.updated_ms,
        owner=row.owner,
        lease_until_ms=row.lease_until_ms,
        steps=tuple(
            LoopStep(LoopState(s.state), s.at_ms, s.actor, s.reason, dict(s.evidence or {}))
            for s in steps
        ),
    )


__all__ = [
    "FINAL_STATES",
    "LoopDecision",
    "LoopState",
    "LoopStep",
    "approve_decision",
    "claim_decision",
    "decision_from_json",
    "decision_to_json",
    "get_decision",
    "list_decisions",
    "move_decision",
    "open_decisions",
    "release_decision",
]

"""Deployment operations: create, canary, shadow, A/B, promote, rollback, history.

Every change is one transaction that writes a new revision (the whole configuration, who,
when, why) and an audit event, and bumps the deployment's revision counter only if it still
has the revision the change was based on. Two concurrent changes based on the same revision:
one wins, the other gets a Conflict and nothing of it is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from modelpilot.clock import now_ms
from modelpilot.errors import Conflict, InvalidInput, NotFound, shown
from modelpilot.registry import ModelVersion, get_version
from modelpilot.registry.entities import RETIRED_REASON_TAG, RETIRED_TAG
from modelpilot.release.compat import check_compatible
from modelpilot.release.config import (
    DeploymentConfig,
    Role,
    RolloutPolicy,
    Variant,
    build_config,
    parse_config,
)
from modelpilot.release.entities import Deployment, Revision
from modelpilot.store import Store
from modelpilot.store.events import default_actor, record_event
from modelpilot.store.schema import deployment_revisions, deployments

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9\-]{0,127}")  # fullmatch: '$' accepts a trailing newline


def create_deployment(
    store: Store, name: str, model_ref: str, *, actor: str | None = None, reason: str = "created"
) -> Deployment:
    """A new deployment serving ``model_ref`` (resolved to a fixed version now) at 100%."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"Invalid deployment name {shown(name)}: use lower-case letters, digits and '-', "
            "starting with a letter or digit (e.g. churn-prod).",
            field="name",
        )
    mv = _serveable(get_version(store, model_ref))
    config = build_config([_variant("stable", mv, "stable", 100)], deployment=name)
    created = now_ms()
    with store.write() as conn:
        if (
            conn.execute(select(deployments.c.name).where(deployments.c.name == name)).first()
            is not None
        ):
            raise Conflict(
                f"Deployment {name!r} already exists. Change it with `modelpilot deploy canary "
                f"{name} ...` or pick another name.",
                field="name",
            )
        conn.execute(
            insert(deployments).values(
                name=name, created_ms=created, revision=1, updated_ms=created
            )
        )
        _insert_revision(conn, name, 1, created, actor, "create", reason, True, config, None)
    return get_deployment(store, name)


def get_deployment(store: Store, name: str) -> Deployment:
    """The current revision of a deployment."""
    with store.read() as conn:
        return _current(conn, name)


def list_deployments(store: Store) -> list[Deployment]:
    """Every deployment at its current revision."""
    with store.read() as conn:
        names = list(
            conn.execute(select(deployments.c.name).order_by(deployments.c.name)).scalars()
        )
        return [_current(conn, n) for n in names]


def history(store: Store, name: str) -> list[Revision]:
    """Every revision of a deployment, newest first."""
    with store.read() as conn:
        _current(conn, name)
        rows = conn.execute(
            select(deployment_revisions)
            .where(deployment_revisions.c.deployment == name)
            .order_by(deployment_revisions.c.revision.desc())
        ).all()
    return [
        Revision(
            r.revision,
            r.created_ms,
            r.actor,
            r.action,
            r.reason,
            r.is_stable,
            parse_config(r.config, deployment=name),
        )
        for r in rows
    ]


def set_canary(
    store: Store,
    name: str,
    model_ref: str,
    weight: int,
    *,
    policy: RolloutPolicy | None = None,
    actor: str | None = None,
    reason: str = "",
    expected_revision: int | None = None,
) -> Deployment:
    """Send ``weight``% of traffic to ``model_ref`` as a canary (optionally under a policy)."""
    _check_weight(weight, "canary weight")
    if policy is not None and weight != policy.steps[0]:
        raise InvalidInput(
            f"The canary weight ({weight}%) and the rollout policy's first step "
            f"({policy.steps[0]}%) disagree; start the canary at {policy.steps[0]}%.",
            field="weight",
        )

    def mutate(current: DeploymentConfig, mv: ModelVersion | None) -> DeploymentConfig:
        assert mv is not None
        stable = current.stable
        return build_config(
            [
                stable.model_copy(update={"weight": 100 - weight}),
                _variant("canary", mv, "canary", weight),
                *current.shadows,
            ],
            deployment=name,
            rollout=policy,
            rollout_step=0 if policy else None,
        )

    return _change(
        store,
        name,
        mutate,
        model_ref,
        "canary",
        reason or f"canary {model_ref} at {weight}%",
        actor,
        expected_revision,
    )


def set_ab(
    store: Store,
    name: str,
    model_ref: str,
    split: int,
    key: str,
    *,
    actor: str | None = None,
    reason: str = "",
    expected_revision: int | None = None,
) -> Deployment:
    """A/B test: ``split``% to ``model_ref`` as challenger, sticky by the request field ``key``."""
    _check_weight(split, "A/B split")
    if not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-.]*", key):
        raise InvalidInput(
            f"Routing key {shown(key)} must be a field name such as user_id.", field="key"
        )

    def mutate(current: DeploymentConfig, mv: ModelVersion | None) -> DeploymentConfig:
        assert mv is not None
        return build_config(
            [
                current.stable.model_copy(update={"weight": 100 - split}),
                _variant("challenger", mv, "challenger", split),
                *current.shadows,
            ],
            deployment=name,
            routing_key=key,
        )

    return _change(
        store,
        name,
        mutate,
        model_ref,
        "ab",
        reason or f"A/B {model_ref} at {split}% by {key}",
        actor,
        expected_revision,
    )


def set_shadow(
    store: Store,
    name: str,
    model_ref: str,
    *,
    actor: str | None = None,
    reason: str = "",
    expected_revision: int | None = None,
) -> Deployment:
    """Mirror every request to ``model_ref`` off the hot path; its answers are only logged."""

    def mutate(current: DeploymentConfig, mv: ModelVersion | None) -> DeploymentConfig:
        assert mv is not None
        others = [v for v in current.variants if v.role != "shadow"]
        return current.model_copy(
            update={"variants": (*others, _variant("shadow", mv, "shadow", 0))}
        )

    return _change(
        store,
        name,
        mutate,
        model_ref,
        "shadow",
        reason or f"shadow {model_ref}",
        actor,
        expected_revision,
    )


def set_weight(
    store: Store,
    name: str,
    weight: int,
    *,
    action: str = "set_weight",
    actor: str | None = None,
    reason: str = "",
    expected_revision: int | None = None,
) -> Deployment:
    """Move the candidate (canary/challenger) to ``weight``%, the stable variant to the rest."""
    _check_weight(weight, "weight")

    def mutate(current: DeploymentConfig, _mv: ModelVersion | None) -> DeploymentConfig:
        candidate = _require_candidate(current, name, "change its weight")
        return _reweighted(current, candidate, weight, name, current.rollout_step)

    return _change(
        store, name, mutate, None, action, reason or f"weight {weight}%", actor, expected_revision
    )


def advance_step(
    store: Store,
    name: str,
    *,
    actor: str | None = None,
    reason: str,
    expected_revision: int | None = None,
) -> Deployment:
    """Move a canary under a rollout policy to its next step (the controller calls this; its
    actor is ``controller`` unless one is given, e.g. the token a remote controller uses)."""

    def mutate(current: DeploymentConfig, _mv: ModelVersion | None) -> DeploymentConfig:
        candidate = _require_candidate(current, name, "advance it")
        if current.rollout is None or current.rollout_step is None:
            raise InvalidInput(
                f"Deployment {name!r} has no rollout policy to advance.", field="rollout"
            )
        step = min(current.rollout_step + 1, len(current.rollout.steps) - 1)
        return _reweighted(current, candidate, current.rollout.steps[step], name, step)

    return _change(
        store, name, mutate, None, "advance", reason, actor or "controller", expected_revision
    )


def promote(
    store: Store,
    name: str,
    *,
    actor: str | None = None,
    reason: str = "",
    automatic: bool = False,
    expected_revision: int | None = None,
) -> Deployment:
    """Make the candidate the stable variant at 100%; the revision becomes the rollback target.

    ``automatic``: the rollout controller promotes (recorded as actor ``controller`` when no
    actor is given)."""

    def mutate(current: DeploymentConfig, _mv: ModelVersion | None) -> DeploymentConfig:
        candidate = _require_candidate(current, name, "promote")
        return build_config(
            [
                candidate.model_copy(update={"name": "stable", "role": "stable", "weight": 100}),
                *current.shadows,
            ],
            deployment=name,
        )

    return _change(
        store,
        name,
        mutate,
        None,
        "promote",
        reason or "promoted",
        actor or ("controller" if automatic else None),
        expected_revision,
        mark_stable=True,
    )


def rollback(
    store: Store,
    name: str,
    *,
    actor: str | None = None,
    reason: str = "manual rollback",
    automatic: bool = False,
    expected_revision: int | None = None,
) -> Deployment:
    """Go back at once to the last stable configuration (the last create or promote).

    ``automatic``: the rollout controller rolls back because a guard failed; the revision's
    action is ``auto_rollback`` and a critical ``alert.rollback`` event is written in the same
    transaction (actor ``controller`` when no actor is given)."""
    with store.read() as conn:
        current = _current(conn, name)
        row = conn.execute(
            select(deployment_revisions.c.config, deployment_revisions.c.revision)
            .where(
                deployment_revisions.c.deployment == name,
                deployment_revisions.c.is_stable.is_(True),
            )
            .order_by(deployment_revisions.c.revision.desc())
            .limit(1)
        ).one()
    target = parse_config(row.config, deployment=name)
    if target == current.config:
        raise InvalidInput(
            f"Deployment {name!r} already runs its last stable configuration "
            f"(revision {row.revision}); there is nothing to roll back.",
            field="name",
        )
    action = "auto_rollback" if automatic else "rollback"
    return _change(
        store,
        name,
        lambda _c, _m: target,
        None,
        action,
        f"{reason} (back to revision {row.revision})",
        actor or ("controller" if automatic else None),
        expected_revision,
        mark_stable=True,
        alert={"severity": "critical", "reason": reason} if automatic else None,
    )


def _change(
    store: Store,
    name: str,
    mutate: Callable[[DeploymentConfig, ModelVersion | None], DeploymentConfig],
    model_ref: str | None,
    action: str,
    reason: str,
    actor: str | None,
    expected_revision: int | None,
    *,
    mark_stable: bool = False,
    alert: dict[str, Any] | None = None,
) -> Deployment:
    mv = _serveable(get_version(store, model_ref)) if model_ref is not None else None
    with store.write() as conn:
        current = _current(conn, name)
        if expected_revision is not None and expected_revision != current.revision:
            raise Conflict(
                _conflict_message(name, expected_revision, current.revision), field="revision"
            )
        new_config = mutate(current.config, mv)
        if mv is not None:
            check_compatible(store, name, current.config.stable, mv)
        new_revision = current.revision + 1
        stamp = now_ms()
        result = conn.execute(
            update(deployments)
            .where(deployments.c.name == name, deployments.c.revision == current.revision)
            .values(revision=new_revision, updated_ms=stamp)
        )
        if result.rowcount != 1:  # someone else committed a revision in between (PostgreSQL)
            raise Conflict(
                _conflict_message(name, current.revision, current.revision + 1), field="revision"
            )
        _insert_revision(
            conn,
            name,
            new_revision,
            stamp,
            actor,
            action,
            reason,
            mark_stable,
            new_config,
            current.config,
        )
        if alert is not None:
            record_event(
                conn, "alert.rollback", f"deployment:{name}", actor or default_actor(), alert
            )
    return get_deployment(store, name)


def _serveable(mv: ModelVersion) -> ModelVersion:
    """``mv``, unless it was retired: a retired version never serves again."""
    if mv.is_retired:
        raise Conflict(
            f"{mv.ref} was retired on {mv.tags[RETIRED_TAG]} "
            f"({mv.tags.get(RETIRED_REASON_TAG) or 'no reason given'}) and cannot serve. "
            "Deploy a live version instead (modelpilot models show "
            f"{mv.name}).",
            field="model",
        )
    return mv


def _conflict_message(name: str, based_on: int, now: int) -> str:
    return (
        f"Deployment {name!r} changed while this change was being made: it was based on revision "
        f"{based_on}, the deployment is now at revision {now}. Nothing was changed; check "
        f"`modelpilot deploy status {name}` and retry."
    )


def _insert_revision(
    conn: Connection,
    name: str,
    revision: int,
    stamp: int,
    actor: str | None,
    action: str,
    reason: str,
    is_stable: bool,
    config: DeploymentConfig,
    previous: DeploymentConfig | None,
) -> None:
    who = actor or default_actor()
    payload: dict[str, Any] = config.model_dump(mode="json")
    conn.execute(
        insert(deployment_revisions).values(
            deployment=name,
            revision=revision,
            created_ms=stamp,
            actor=who,
            action=action,
            reason=reason,
            is_stable=is_stable,
            config=payload,
        )
    )
    record_event(
        conn,
        f"deployment.{action}",
        f"deployment:{name}",
        who,
        {
            "revision": revision,
            "reason": reason,
            "before": None if previous is None else _traffic(previous),
            "after": _traffic(config),
        },
    )


def _traffic(config: DeploymentConfig) -> dict[str, str]:
    """What the audit log shows of a configuration: variant -> ``model/version role weight%``."""
    return {v.name: f"{v.ref} {v.role} {v.weight}%" for v in config.variants}


def _current(conn: Connection, name: str) -> Deployment:
    row = conn.execute(select(deployments).where(deployments.c.name == name)).first()
    if row is None:
        names = list(
            conn.execute(
                select(deployments.c.name).order_by(deployments.c.name).limit(20)
            ).scalars()
        )
        raise NotFound(
            f"No deployment named {shown(name)}. Deployments: {', '.join(names) or 'none yet'} "
            f"(create one with: modelpilot deploy create {name} --model <model>@champion).",
            field="deployment",
        )
    config_row = conn.execute(
        select(deployment_revisions.c.config).where(
            deployment_revisions.c.deployment == name,
            deployment_revisions.c.revision == row.revision,
        )
    ).scalar_one()
    return Deployment(name, row.revision, parse_config(config_row, deployment=name), row.updated_ms)


def _variant(name: str, mv: ModelVersion, role: Role, weight: int) -> Variant:
    return Variant(name=name, model=mv.name, version=mv.version, role=role, weight=weight)


def _reweighted(
    current: DeploymentConfig, candidate: Variant, weight: int, name: str, step: int | None
) -> DeploymentConfig:
    """The same variants with the candidate at ``weight``% and the stable one at the rest."""
    variants = [
        v.model_copy(update={"weight": weight if v is candidate else 100 - weight})
        if v.role != "shadow"
        else v
        for v in current.variants
    ]
    return build_config(
        variants,
        deployment=name,
        routing_key=current.routing_key,
        rollout=current.rollout,
        rollout_step=step,
    )


def _require_candidate(config: DeploymentConfig, name: str, what: str) -> Variant:
    candidate = config.candidate()
    if candidate is None:
        raise InvalidInput(
            f"Deployment {name!r} has no canary or challenger to {what}. Start one with "
            f"`modelpilot deploy canary {name} --model <ref> --weight 10`.",
            field="deployment",
        )
    return candidate


def _check_weight(weight: object, what: str) -> None:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidInput(
            f"The {what} must be a whole number from 0 to 100; got {shown(weight)}.", field="weight"
        )

"""Logging policies in the metadata store (table ``logging_policies``): set, read, list, and the
snapshot a server applies. Each change is one transaction with its audit event
(``logging_policy.set``, subject ``model:<name>`` or ``deployment:<name>``).

Called by the CLI and at server start-up and reloads, never per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from pydantic import ValidationError
from sqlalchemy import Connection, Row, insert, select, update

from modelpilot.clock import now_ms
from modelpilot.errors import InvalidInput, shown
from modelpilot.models.signature import Signature
from modelpilot.predictions.log_policy import ACTIONS, Action, LogPolicy, PolicySet
from modelpilot.registry import get_version
from modelpilot.registry.refs import check_model_name
from modelpilot.store import Store
from modelpilot.store.events import default_actor, record_event
from modelpilot.store.schema import logging_policies

Scope = Literal["model", "deployment"]


@dataclass(frozen=True)
class StoredPolicy:
    """A policy as stored: whose it is, who set it last and when."""

    scope: Scope
    name: str
    policy: LogPolicy
    updated_ms: int
    actor: str


def parse_column_actions(items: Sequence[str]) -> dict[str, Action]:
    """``["email=hash", "name=drop"]`` as ``{"email": "hash", "name": "drop"}``.

    >>> parse_column_actions(["email=hash", "name = drop"])
    {'email': 'hash', 'name': 'drop'}
    """
    actions: dict[str, Action] = {}
    for item in items:
        column, sep, action = (part.strip() for part in item.partition("="))
        if not sep or not column or action not in ACTIONS:
            raise InvalidInput(
                f"--column takes COLUMN=ACTION with ACTION one of {', '.join(ACTIONS)}; got "
                f"{shown(item)}. Example: --column email=hash",
                field="column",
            )
        actions[column] = action
    return actions


def set_log_policy(
    store: Store,
    model: str,
    columns: Mapping[str, Action],
    *,
    deployment: str | None = None,
    retention_days: int | None = None,
    actor: str | None = None,
    check_deployment: Callable[[str], object] | None = None,
) -> StoredPolicy:
    """Set column actions (and retention) for ``model``, or for ``deployment`` when given.

    Merges into the stored policy: columns not named keep their action, and retention stays
    unless given. Columns must be inputs of the model's latest version, so a typo cannot
    leave a column logged in the clear. ``check_deployment`` raises NotFound for an unknown
    deployment: ``release.get_deployment`` bound to the store, handed in by the caller because
    the log sits below ``release``.
    """
    _check_columns(store, model, columns)
    scope: Scope = "deployment" if deployment is not None else "model"
    name = deployment if deployment is not None else model
    if deployment is not None and check_deployment is not None:
        check_deployment(deployment)  # NotFound listing the deployments
    who = actor or default_actor()
    with store.write() as conn:
        current = _read(conn, scope, name)
        base = current.policy if current is not None else LogPolicy()
        try:
            policy = LogPolicy(
                columns={**base.columns, **columns},
                retention_days=base.retention_days if retention_days is None else retention_days,
            )
        except ValidationError as exc:
            raise InvalidInput(
                f"Logging policy for {scope} {name!r}: {exc.errors()[0]['msg']}.",
                field="policy",
            ) from None
        stamp = now_ms()
        values = {"policy": policy.model_dump(), "updated_ms": stamp, "actor": who}
        if current is None:
            conn.execute(insert(logging_policies).values(scope=scope, name=name, **values))
        else:
            conn.execute(
                update(logging_policies)
                .where(logging_policies.c.scope == scope, logging_policies.c.name == name)
                .values(**values)
            )
        record_event(
            conn, "logging_policy.set", f"{scope}:{name}", who, {"policy": policy.model_dump()}
        )
    return StoredPolicy(scope, name, policy, stamp, who)


def _check_columns(store: Store, model: str, columns: Mapping[str, Action]) -> None:
    """The model must be registered (a policy for a typo would protect nothing), and each
    column one of its latest version's inputs."""
    check_model_name(model)
    version = get_version(store, model)  # NotFound listing the registered models
    if not columns:
        return
    signature = Signature.from_dict(version.signature)
    inputs = [spec.name for spec in signature.inputs]
    unknown = [c for c in columns if c not in inputs]
    if inputs and unknown:
        raise InvalidInput(
            f"Model {model!r} has no input {unknown[0]!r}; its inputs are: "
            f"{', '.join(inputs)}. Name one of those with --column.",
            field="column",
        )


def get_log_policy(store: Store, scope: Scope, name: str) -> StoredPolicy | None:
    """The stored policy of one model or deployment (None when it has none)."""
    with store.read() as conn:
        return _read(conn, scope, name)


def list_log_policies(store: Store) -> list[StoredPolicy]:
    """Every stored policy, models first, by name."""
    with store.read() as conn:
        rows = conn.execute(
            select(logging_policies).order_by(
                logging_policies.c.scope.desc(), logging_policies.c.name
            )
        ).all()
    return [_stored(row) for row in rows]


def load_policy_set(store: Store, models: Iterable[str], deployments: Iterable[str]) -> PolicySet:
    """The policies of the models and deployments a server serves (one read)."""
    return policy_set_of(list_log_policies(store), models, deployments)


def policy_set_of(
    policies: Iterable[StoredPolicy], models: Iterable[str], deployments: Iterable[str]
) -> PolicySet:
    """The snapshot of ``policies`` a server applies for what it serves.

    >>> stored = StoredPolicy("model", "churn", LogPolicy(columns={"email": "drop"}), 0, "me")
    >>> policy_set_of([stored], ["churn"], []).models["churn"].columns
    {'email': 'drop'}
    """
    wanted = {("model", m) for m in models} | {("deployment", d) for d in deployments}
    stored = [p for p in policies if (p.scope, p.name) in wanted]
    return PolicySet(
        models={p.name: p.policy for p in stored if p.scope == "model"},
        deployments={p.name: p.policy for p in stored if p.scope == "deployment"},
    )


def stored_policy_to_json(stored: StoredPolicy) -> dict[str, Any]:
    """The wire form of a stored policy (``modelpilot server``'s logging-policy routes)."""
    return {
        "scope": stored.scope,
        "name": stored.name,
        "policy": stored.policy.model_dump(),
        "updated_ms": stored.updated_ms,
        "actor": stored.actor,
    }


def stored_policy_from_json(data: Mapping[str, Any]) -> StoredPolicy:
    """The inverse of :func:`stored_policy_to_json`.

    >>> p = StoredPolicy("deployment", "web", LogPolicy(columns={"a": "hash"}), 5, "token:ci")
    >>> stored_policy_from_json(stored_policy_to_json(p)) == p
    True
    """
    scope = data["scope"]
    if scope not in ("model", "deployment"):
        raise InvalidInput(f"Unknown policy scope {shown(scope)}.", field="scope")
    return StoredPolicy(
        cast(Scope, scope),
        str(data["name"]),
        LogPolicy.model_validate(data["policy"]),
        int(data["updated_ms"]),
        str(data["actor"]),
    )


def _read(conn: Connection, scope: Scope, name: str) -> StoredPolicy | None:
    row = conn.execute(
        select(logging_policies).where(
            logging_policies.c.scope == scope, logging_policies.c.name == name
        )
    ).first()
    return None if row is None else _stored(row)


def _stored(row: Row[Any]) -> StoredPolicy:
    policy = LogPolicy.model_validate(row.policy)
    return StoredPolicy(cast(Scope, row.scope), row.name, policy, row.updated_ms, row.actor)

"""Registry operations: register versions, move aliases, resolve references, trace lineage.

Each operation is one transaction with its event row, so the registry and its history never
disagree, and a process killed half-way leaves no half-registered version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.clock import now_ms
from modelpilot.errors import Conflict, InvalidInput, NotFound, shown
from modelpilot.registry.entities import (
    RETIRED_BY_TAG,
    RETIRED_REASON_TAG,
    RETIRED_TAG,
    Event,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
)
from modelpilot.registry.refs import ModelRef, check_alias, check_model_name, parse_ref
from modelpilot.registry.roles import check_dataset_role
from modelpilot.store import Store
from modelpilot.store.events import default_actor, list_events, record_event
from modelpilot.store.schema import (
    model_aliases,
    model_versions,
    registered_models,
    version_datasets,
)
from modelpilot.tracking.validation import check_key, check_text, param_text

_REGISTER_ATTEMPTS = 5


def register_version(
    store: Store,
    name: str,
    *,
    package_digest: str,
    flavor: str,
    signature: Mapping[str, Any],
    run_id: str | None = None,
    datasets: Sequence[tuple[str, str] | VersionDataset] = (),
    metrics: Mapping[str, float] | None = None,
    description: str = "",
    tags: Mapping[str, str] | None = None,
    trusted_types: Sequence[str] = (),
    actor: str | None = None,
) -> ModelVersion:
    """Create the next version of ``name`` (the model is created on first use).

    ``datasets`` holds (name, digest) pairs, which are training data, or VersionDatasets
    with their role. ``trusted_types`` is the registering caller's trust decision (types, or a
    python function's import path, that loading this version may construct); loading reads it
    from this row, never from the package.
    """
    check_model_name(name)
    check_text(description, "model description", "description", multiline=True)
    tags = {check_key(k, "tag"): param_text(k, v, "tag") for k, v in (tags or {}).items()}
    links = [d if isinstance(d, VersionDataset) else VersionDataset(*d) for d in datasets]
    for link in links:
        check_dataset_role(link.role)
    who = actor or default_actor()
    for attempt in range(_REGISTER_ATTEMPTS):
        try:
            with store.write() as conn:
                if (
                    conn.execute(
                        select(registered_models.c.name).where(registered_models.c.name == name)
                    ).first()
                    is None
                ):
                    conn.execute(
                        insert(registered_models).values(
                            name=name, description="", created_ms=now_ms()
                        )
                    )
                latest = conn.execute(
                    select(func.max(model_versions.c.version)).where(
                        model_versions.c.model_name == name
                    )
                ).scalar_one()
                version = int(latest or 0) + 1
                conn.execute(
                    insert(model_versions).values(
                        model_name=name,
                        version=version,
                        created_ms=now_ms(),
                        run_id=run_id,
                        flavor=flavor,
                        package_digest=package_digest,
                        signature=dict(signature),
                        metrics=dict(metrics or {}),
                        description=description,
                        tags=tags,
                        is_deleted=False,
                        trusted_types=list(dict.fromkeys(trusted_types)),
                    )
                )
                for link in {(d.name, d.digest): d for d in links}.values():
                    conn.execute(
                        insert(version_datasets).values(
                            model_name=name,
                            version=version,
                            dataset_name=link.name,
                            dataset_digest=link.digest,
                            role=link.role,
                        )
                    )
                record_event(
                    conn,
                    "model_version.registered",
                    f"model:{name}",
                    who,
                    {
                        "version": version,
                        "run_id": run_id,
                        "package": package_digest,
                        "trusted_types": list(dict.fromkeys(trusted_types)),
                    },
                )
            return get_version(store, f"{name}/{version}")
        except IntegrityError:
            # Two writers picked the same number (PostgreSQL); the loser tries the next one.
            if attempt == _REGISTER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def get_version(store: Store, ref: str | ModelRef) -> ModelVersion:
    """Resolve a reference (``churn/3``, ``churn@champion``, ``churn``) to a version."""
    parsed = parse_ref(ref) if isinstance(ref, str) else ref
    with store.read() as conn:
        return _resolve(conn, parsed)


def _resolve(conn: Connection, ref: ModelRef) -> ModelVersion:
    _require_model(conn, ref.name)
    if ref.alias is not None:
        version = conn.execute(
            select(model_aliases.c.version).where(
                model_aliases.c.model_name == ref.name, model_aliases.c.alias == ref.alias
            )
        ).scalar_one_or_none()
        if version is None:
            aliases = _aliases(conn, ref.name)
            listed = ", ".join(sorted(aliases)) if aliases else "none"
            raise NotFound(
                f"No alias {ref.alias!r} on model {ref.name!r}. Existing aliases: {listed}. "
                f"Set one with: modelpilot models alias set {ref.name} {ref.alias} <version>",
                field="alias",
            )
    elif ref.version is not None:
        version = ref.version
    else:
        version = conn.execute(
            select(func.max(model_versions.c.version)).where(
                model_versions.c.model_name == ref.name, model_versions.c.is_deleted.is_(False)
            )
        ).scalar_one()
        if version is None:
            raise NotFound(f"Model {ref.name!r} has no versions yet.", field="model")
    row = conn.execute(
        select(model_versions).where(
            model_versions.c.model_name == ref.name,
            model_versions.c.version == version,
            model_versions.c.is_deleted.is_(False),
        )
    ).first()
    if row is None:
        raise NotFound(
            f"Model {ref.name!r} has no version {version}. Existing versions: "
            f"{_version_list(conn, ref.name)}.",
            field="version",
        )
    return _entity(conn, row)


def set_alias(
    store: Store, name: str, alias: str, version: int, *, actor: str | None = None
) -> ModelVersion:
    """Point ``alias`` at ``version`` atomically; the move is recorded as an event."""
    check_alias(alias)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(
            f"Version must be a positive integer; got {shown(version)}.", field="version"
        )
    with store.write() as conn:
        _require_model(conn, name)
        tags = _live_tags(
            conn, name, version, f"Cannot point alias {alias!r} at {name}/{version}: "
        )
        _refuse_failed_candidate(tags, name, version, alias)
        if RETIRED_TAG in tags:
            raise Conflict(
                f"Cannot point alias {alias!r} at {name}/{version}: the version was retired "
                f"({tags.get(RETIRED_REASON_TAG) or 'no reason given'}). Alias a live "
                "version instead.",
                field="version",
            )
        previous = _aliases(conn, name).get(alias)
        if previous is None:
            conn.execute(
                insert(model_aliases).values(
                    model_name=name, alias=alias, version=version, updated_ms=now_ms()
                )
            )
        else:
            conn.execute(
                update(model_aliases)
                .where(model_aliases.c.model_name == name, model_aliases.c.alias == alias)
                .values(version=version, updated_ms=now_ms())
            )
        record_event(
            conn,
            "alias.set",
            f"model:{name}",
            actor or default_actor(),
            {"alias": alias, "before": previous, "after": version},
        )
    return get_version(store, f"{name}/{version}")


def _refuse_failed_candidate(tags: Mapping[str, str], name: str, version: int, alias: str) -> None:
    """An optimised candidate that failed its fidelity check is kept to inspect, never aliased
    (``modelpilot optimize`` writes these tags with the version, in one transaction)."""
    if tags.get("optimized_from") and tags.get("fidelity") == "failed":
        raise Conflict(
            f"Cannot point alias {alias!r} at {name}/{version}: it is an optimised candidate of "
            f"{tags['optimized_from']} that failed its fidelity check (agreement "
            f"{tags.get('fidelity.agreement') or 'n/a'}, max |Δp| "
            f"{tags.get('fidelity.max_abs_proba_diff') or 'n/a'}). It is kept for inspection "
            "only; alias the source or a candidate that passed.",
            field="version",
        )


def delete_alias(store: Store, name: str, alias: str, *, actor: str | None = None) -> None:
    """Remove an alias (NotFound when it does not exist)."""
    with store.write() as conn:
        _require_model(conn, name)
        aliases = _aliases(conn, name)
        if alias not in aliases:
            raise NotFound(
                f"No alias {alias!r} on model {name!r}. Existing aliases: "
                f"{', '.join(sorted(aliases)) or 'none'}.",
                field="alias",
            )
        conn.execute(
            model_aliases.delete().where(
                model_aliases.c.model_name == name, model_aliases.c.alias == alias
            )
        )
        record_event(
            conn,
            "alias.deleted",
            f"model:{name}",
            actor or default_actor(),
            {"alias": alias, "before": aliases[alias], "after": None},
        )


def delete_version(store: Store, name: str, version: int, *, actor: str | None = None) -> None:
    """Hide a version; refused while any alias points at it (lineage rows are kept)."""
    with store.write() as conn:
        _require_model(conn, name)
        holders = sorted(a for a, v in _aliases(conn, name).items() if v == version)
        if holders:
            raise Conflict(
                f"Cannot delete {name}/{version}: alias(es) {', '.join(holders)} point at it. Move "
                f"or delete the alias first (modelpilot models alias delete {name} {holders[0]}).",
                field="version",
            )
        result = conn.execute(
            update(model_versions)
            .where(
                model_versions.c.model_name == name,
                model_versions.c.version == version,
                model_versions.c.is_deleted.is_(False),
            )
            .values(is_deleted=True)
        )
        if result.rowcount == 0:
            raise NotFound(f"Model {name!r} has no version {version}.", field="version")
        record_event(
            conn,
            "model_version.deleted",
            f"model:{name}",
            actor or default_actor(),
            {"version": version, "before": "live", "after": "deleted"},
        )


def check_retirable(store: Store, name: str, version: int, *, reason: str) -> str:
    """What :func:`retire_version` refuses, checked without writing (callers that must undo
    other things first, such as deployments trying the version, check before they start).
    Returns the cleaned reason."""
    with store.read() as conn:
        return _check_retirable(conn, name, version, reason)


def _check_retirable(conn: Connection, name: str, version: int, reason: str) -> str:
    text = param_text(RETIRED_REASON_TAG, reason, "tag").strip()
    if not text:
        raise InvalidInput(
            "Say why the version is retired (--reason), e.g. 'superseded by churn/4'.",
            field="reason",
        )
    _require_model(conn, name)
    tags = _live_tags(conn, name, version, "")
    if RETIRED_TAG in tags:
        raise Conflict(
            f"{name}/{version} was already retired on {tags[RETIRED_TAG]} "
            f"({tags.get(RETIRED_REASON_TAG) or 'no reason given'}).",
            field="version",
        )
    holders = sorted(a for a, v in _aliases(conn, name).items() if v == version)
    if holders:
        raise Conflict(
            f"Cannot retire {name}/{version}: alias(es) {', '.join(holders)} point at it. "
            f"Move them to a live version first (modelpilot models alias set {name} "
            f"{holders[0]} <version>).",
            field="version",
        )
    return text


def retire_version(
    store: Store, name: str, version: int, *, reason: str, actor: str | None = None
) -> ModelVersion:
    """Take a version out of service for good: tagged ``retired`` (when, why, who) and an
    audit event, in one transaction. Its records and lineage stay; refused while an alias
    points at it (move the alias first) or when it is already retired. Whether a deployment
    still serves it is the caller's check (the registry never reads deployments)."""
    who = actor or default_actor()
    with store.write() as conn:
        text = _check_retirable(conn, name, version, reason)
        tags = _live_tags(conn, name, version, "")
        stamp = now_ms()
        tags.update({RETIRED_TAG: iso_time(stamp), RETIRED_REASON_TAG: text, RETIRED_BY_TAG: who})
        conn.execute(
            update(model_versions)
            .where(model_versions.c.model_name == name, model_versions.c.version == version)
            .values(tags=tags)
        )
        record_event(
            conn,
            "model_version.retired",
            f"model:{name}",
            who,
            {"version": version, "reason": text, "before": "live", "after": "retired"},
        )
    return get_version(store, f"{name}/{version}")


def iso_time(ms: int) -> str:
    """A stored millisecond time as ISO text in UTC.

    >>> iso_time(0)
    '1970-01-01T00:00:00+00:00'
    """
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def list_models(store: Store) -> list[RegisteredModel]:
    """Every registered model with its newest version and aliases."""
    with store.read() as conn:
        latest = dict(
            conn.execute(
                select(model_versions.c.model_name, func.max(model_versions.c.version))
                .where(model_versions.c.is_deleted.is_(False))
                .group_by(model_versions.c.model_name)
            )
            .tuples()
            .all()
        )
        aliases: dict[str, dict[str, int]] = {}
        for model, alias, version in conn.execute(
            select(model_aliases.c.model_name, model_aliases.c.alias, model_aliases.c.version)
        ).tuples():
            aliases.setdefault(model, {})[alias] = version
        rows = conn.execute(select(registered_models).order_by(registered_models.c.name)).all()
    return [
        RegisteredModel(
            r.name, r.description, r.created_ms, latest.get(r.name), aliases.get(r.name, {})
        )
        for r in rows
    ]


def list_versions(store: Store, name: str) -> list[ModelVersion]:
    """All live versions of a model, newest first."""
    with store.read() as conn:
        _require_model(conn, name)
        rows = conn.execute(
            select(model_versions)
            .where(model_versions.c.model_name == name, model_versions.c.is_deleted.is_(False))
            .order_by(model_versions.c.version.desc())
        ).all()
        return [_entity(conn, r) for r in rows]


def versions_of_run(store: Store, run_id: str) -> list[ModelVersion]:
    """The live versions registered from a run, by model name then version: what a run led
    to (its page's lineage).

    Deleted versions are left out, retired ones kept (they still say where the run went).
    """
    with store.read() as conn:
        rows = conn.execute(
            select(model_versions)
            .where(model_versions.c.run_id == run_id, model_versions.c.is_deleted.is_(False))
            .order_by(model_versions.c.model_name, model_versions.c.version)
        ).all()
        return [_entity(conn, r) for r in rows]


def model_events(store: Store, name: str, limit: int = 100) -> list[Event]:
    """Newest registry events for a model."""
    with store.read() as conn:
        rows = list_events(conn, f"model:{name}", limit)
    return [
        Event(r.id, r.time_ms, r.kind, r.subject, r.actor, r.payload)
        for r in rows
        if r.subject == f"model:{name}"
    ]


def _require_model(conn: Connection, name: str) -> None:
    found = conn.execute(
        select(registered_models.c.name).where(registered_models.c.name == name)
    ).first()
    if found is None:
        names = list(
            conn.execute(
                select(registered_models.c.name).order_by(registered_models.c.name).limit(20)
            ).scalars()
        )
        raise NotFound(
            f"No registered model named {shown(name)}. Registered models: "
            f"{', '.join(names) if names else 'none yet (log one with mp.log_model)'}.",
            field="model",
        )


def _live_tags(conn: Connection, name: str, version: int, context: str) -> dict[str, str]:
    """The tags of a live version; NotFound (after ``context``) listing the versions."""
    row = conn.execute(
        select(model_versions.c.tags).where(
            model_versions.c.model_name == name,
            model_versions.c.version == version,
            model_versions.c.is_deleted.is_(False),
        )
    ).first()
    if row is None:
        raise NotFound(
            f"{context}model {name!r} has no version {version}. Existing versions: "
            f"{_version_list(conn, name)}.",
            field="version",
        )
    return dict(row.tags or {})


def _aliases(conn: Connection, name: str) -> dict[str, int]:
    return dict(
        conn.execute(
            select(model_aliases.c.alias, model_aliases.c.version).where(
                model_aliases.c.model_name == name
            )
        )
        .tuples()
        .all()
    )


def _version_list(conn: Connection, name: str) -> str:
    versions = list(
        conn.execute(
            select(model_versions.c.version)
            .where(model_versions.c.model_name == name, model_versions.c.is_deleted.is_(False))
            .order_by(model_versions.c.version)
        ).scalars()
    )
    return ", ".join(map(str, versions)) if versions else "none"


def _entity(conn: Connection, row: Any) -> ModelVersion:
    aliases = tuple(
        sorted(a for a, v in _aliases(conn, row.model_name).items() if v == row.version)
    )
    links = tuple(
        VersionDataset(*r)
        for r in conn.execute(
            select(
                version_datasets.c.dataset_name,
                version_datasets.c.dataset_digest,
                version_datasets.c.role,
            )
            .where(
                version_datasets.c.model_name == row.model_name,
                version_datasets.c.version == row.version,
            )
            .order_by(version_datasets.c.dataset_name, version_datasets.c.dataset_digest)
        ).tuples()
    )
    return ModelVersion(
        name=row.model_name,
        version=row.version,
        created_ms=row.created_ms,
        run_id=row.run_id,
        flavor=row.flavor,
        package_digest=row.package_digest,
        signature=row.signature,
        metrics=row.metrics,
        description=row.description,
        tags=row.tags,
        aliases=aliases,
        datasets=tuple((d.name, d.digest) for d in links),
        linked_datasets=links,
        trusted_types=tuple(row.trusted_types or ()),
    )

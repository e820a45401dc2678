"""``/api/v1/models`` routes: registry reads (models, versions, aliases, lineage, events,
version records), registering versions and attaching records such as evaluations and gate
verdicts (editor), and alias changes (deployer).

Registrations and alias changes are recorded in the events with the caller's identity
(``token:<name>``) as the actor.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import orjson
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from modelpilot import registry
from modelpilot.artifacts import StagedArtifactStore
from modelpilot.artifacts.base import check_digest
from modelpilot.errors import InvalidInput
from modelpilot.models.package import package_files, read_manifest
from modelpilot.registry.codec import version_to_json
from modelpilot.registry.entities import VersionDataset
from modelpilot.registry.lineage import lineage
from modelpilot.registry.records import add_record, list_records
from modelpilot.server.deps import ArtifactsDep, Deployer, Editor, StoreDep, Viewer, json_response

router = APIRouter(prefix="/api/v1/models", tags=["registry"])


class AliasBody(BaseModel):
    version: int


@router.get("")
def list_models(store: StoreDep, _: Viewer) -> Response:
    """Every registered model with its latest version and aliases."""
    return json_response({"models": [asdict(m) for m in registry.list_models(store)]})


@router.get("/{name}/versions")
def list_versions(name: str, store: StoreDep, _: Viewer) -> Response:
    """Every version of a model."""
    versions = registry.list_versions(store, name)
    return json_response({"versions": [version_to_json(v) for v in versions]})


@router.get("/{name}/versions/{version}")
def get_version(name: str, version: int, store: StoreDep, _: Viewer) -> Response:
    """One version's record (flavor, signature, metrics, aliases, datasets)."""
    return json_response(version_to_json(registry.get_version(store, f"{name}/{version}")))


@router.get("/{name}/versions/{version}/lineage")
def get_lineage(name: str, version: int, store: StoreDep, _: Viewer) -> Response:
    """version -> run -> datasets -> code revision."""
    return json_response(lineage(store, f"{name}/{version}").to_dict())


@router.put("/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasBody, store: StoreDep, who: Deployer) -> Response:
    """Point ``alias`` at a version, atomically."""
    mv = registry.set_alias(store, name, alias, body.version, actor=who.actor)
    return json_response(version_to_json(mv))


@router.delete("/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, store: StoreDep, who: Deployer) -> Response:
    """Remove an alias."""
    registry.delete_alias(store, name, alias, actor=who.actor)
    return json_response({"deleted": alias})


class DatasetLink(BaseModel):
    name: str
    digest: str
    role: str = "training"


class RegisterBody(BaseModel):
    package_digest: str
    flavor: str
    signature: dict[str, Any]
    run_id: str | None = None
    datasets: list[DatasetLink] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    trusted_types: list[str] = Field(default_factory=list)


@router.post("/{name}/versions", status_code=201)
def register_version(
    name: str, body: RegisterBody, store: StoreDep, artifacts: ArtifactsDep, who: Editor
) -> Response:
    """Register the next version of a package whose blobs are already uploaded.

    ``trusted_types`` is recorded exactly as this (editor) caller passes it; the package's
    own manifest is only checked for consistency, never trusted."""
    _check_package(artifacts, body)
    mv = registry.register_version(
        store,
        name,
        package_digest=body.package_digest,
        flavor=body.flavor,
        signature=body.signature,
        run_id=body.run_id,
        datasets=[VersionDataset(d.name, d.digest, d.role) for d in body.datasets],
        metrics=body.metrics,
        description=body.description,
        tags=body.tags,
        trusted_types=body.trusted_types,
        actor=who.actor,
    )
    return json_response(version_to_json(mv), status_code=201)


@router.get("/{name}/latest")
def get_latest(name: str, store: StoreDep, _: Viewer) -> Response:
    """The newest live version of a model."""
    return json_response(version_to_json(registry.get_version(store, name)))


@router.get("/{name}/aliases/{alias}")
def get_by_alias(name: str, alias: str, store: StoreDep, _: Viewer) -> Response:
    """The version an alias points at."""
    return json_response(version_to_json(registry.get_version(store, f"{name}@{alias}")))


@router.get("/{name}/events")
def get_events(name: str, store: StoreDep, _: Viewer, limit: int = 100) -> Response:
    """Newest registry events of a model (registered, alias moves), with their actors."""
    events = registry.model_events(store, name, min(max(limit, 1), 1000))
    return json_response({"events": [asdict(e) for e in events]})


class RecordBody(BaseModel):
    kind: str
    payload: dict[str, Any]
    blob_digest: str | None = None


@router.post("/{name}/versions/{version}/records", status_code=201)
def post_record(
    name: str,
    version: int,
    body: RecordBody,
    store: StoreDep,
    artifacts: ArtifactsDep,
    who: Editor,
) -> Response:
    """Attach a document (evaluation, gate verdict, card fields, note) to a version; its blob,
    if any, must already be uploaded."""
    try:
        orjson.dumps(body.payload)
    except TypeError as exc:  # integers past 64 bits: stored, but never answerable as JSON
        raise InvalidInput(
            f"The record's payload cannot be stored as JSON: {exc}. Send numbers within 64 "
            "bits (large integers as strings).",
            field="payload",
        ) from exc
    if body.blob_digest is not None and not artifacts.exists(check_digest(body.blob_digest)):
        raise InvalidInput(
            f"Blob {body.blob_digest[:12]}… is not on this server; upload it first "
            "(PUT /api/v1/artifacts/{sha256}), then attach the record.",
            field="blob_digest",
        )
    record = add_record(
        store,
        f"{name}/{version}",
        body.kind,
        body.payload,
        blob_digest=body.blob_digest,
        actor=who.actor,
    )
    return json_response(asdict(record), status_code=201)


@router.get("/{name}/versions/{version}/records")
def get_records(
    name: str, version: int, store: StoreDep, _: Viewer, kind: str | None = None
) -> Response:
    """A version's documents, newest first (``?kind=evaluation`` for one kind)."""
    records = list_records(store, f"{name}/{version}", kind)
    return json_response({"records": [asdict(r) for r in records]})


def _check_package(artifacts: StagedArtifactStore, body: RegisterBody) -> None:
    """Refuse a version whose package is not all here, or that disagrees with its manifest."""
    digest = check_digest(body.package_digest)
    if not artifacts.exists(digest):
        raise InvalidInput(
            f"Package {digest[:12]}… is not on this server; upload its blobs first "
            f"(PUT /api/v1/artifacts/{{sha256}}), then register it.",
            field="package_digest",
        )
    manifest = read_manifest(artifacts, digest)
    files = package_files(manifest, digest)
    example = manifest.get("input_example")
    missing = [n for n, d in files.items() if not artifacts.exists(d)]
    if example and not artifacts.exists(check_digest(str(example))):
        missing.append("input example")
    if missing:
        raise InvalidInput(
            f"Package {digest[:12]}… is incomplete on this server: missing "
            f"{', '.join(sorted(missing))}. Upload every blob of the package, then register.",
            field="package_digest",
        )
    if manifest.get("flavor") != body.flavor or manifest.get("signature") != body.signature:
        raise InvalidInput(
            f"Package {digest[:12]}…: flavor/signature in the request ({body.flavor!r}) "
            f"disagree with the package's manifest ({manifest.get('flavor')!r}). Register "
            "what build_package returned.",
            field="flavor",
        )

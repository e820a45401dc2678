"""``/api/v1/models`` routes: registry reads (models, versions, lineage) and alias changes.

Alias changes are recorded in the events with the caller's identity (``token:<name>``) as
the actor.
"""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Response
from pydantic import BaseModel

from modelpilot import registry
from modelpilot.lineage import lineage
from modelpilot.server.deps import Deployer, StoreDep, Viewer, json_response

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
    return json_response({"versions": [asdict(v) for v in registry.list_versions(store, name)]})


@router.get("/{name}/versions/{version}")
def get_version(name: str, version: int, store: StoreDep, _: Viewer) -> Response:
    """One version's record (flavor, signature, metrics, aliases, datasets)."""
    return json_response(asdict(registry.get_version(store, f"{name}/{version}")))


@router.get("/{name}/versions/{version}/lineage")
def get_lineage(name: str, version: int, store: StoreDep, _: Viewer) -> Response:
    """version -> run -> datasets -> code revision."""
    return json_response(lineage(store, f"{name}/{version}").to_dict())


@router.put("/{name}/aliases/{alias}")
def set_alias(name: str, alias: str, body: AliasBody, store: StoreDep, who: Deployer) -> Response:
    """Point ``alias`` at a version, atomically."""
    mv = registry.set_alias(store, name, alias, body.version, actor=who.actor)
    return json_response(asdict(mv))


@router.delete("/{name}/aliases/{alias}")
def delete_alias(name: str, alias: str, store: StoreDep, who: Deployer) -> Response:
    """Remove an alias."""
    registry.delete_alias(store, name, alias, actor=who.actor)
    return json_response({"deleted": alias})

"""``/api/v1/datasets`` routes: record, list and read dataset versions; run inputs.

The client describes a DataFrame (content hash, schema, profile) and uploads its Parquet
bytes first (``PUT /api/v1/artifacts/{sha256}``); recording a Parquet version whose bytes
the server does not hold is refused. A file logged by reference stays on the machine that
logged it, as locally.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from modelpilot.artifacts.base import check_digest
from modelpilot.data import get_dataset, list_datasets
from modelpilot.data.entities import DatasetVersion
from modelpilot.data.service import record_dataset
from modelpilot.errors import InvalidInput
from modelpilot.server.deps import ArtifactsDep, Editor, StoreDep, Viewer, json_response
from modelpilot.tracking import service

router = APIRouter(prefix="/api/v1", tags=["datasets"])


class DatasetBody(BaseModel):
    name: str
    digest: str
    storage: str
    location: str
    num_rows: int
    # "schema" on the wire; renamed here because it would shadow BaseModel.schema
    columns: list[dict[str, Any]] = Field(alias="schema")
    profile: dict[str, Any]
    source: str | None = None


class InputBody(BaseModel):
    name: str
    digest: str
    role: str


@router.post("/datasets")
def log_dataset(body: DatasetBody, store: StoreDep, artifacts: ArtifactsDep, _: Editor) -> Response:
    """Record a dataset version (the same name and digest again return the first record)."""
    check_digest(body.digest)
    if body.storage == "parquet" and not artifacts.exists(check_digest(body.location)):
        raise InvalidInput(
            f"Dataset {body.name!r}: its Parquet bytes ({body.location[:12]}…) are not on this "
            f"server. Upload them first: PUT /api/v1/artifacts/{body.location}.",
            field="location",
        )
    version = DatasetVersion(
        body.name,
        body.digest,
        0,
        body.storage,
        body.location,
        body.num_rows,
        body.columns,
        body.profile,
        body.source,
    )
    return json_response(asdict(record_dataset(store, version)))


@router.get("/datasets")
def get_datasets(store: StoreDep, _: Viewer) -> Response:
    """Every dataset version, newest first."""
    return json_response({"datasets": [asdict(d) for d in list_datasets(store)]})


@router.get("/datasets/{name}")
def get_dataset_version(
    name: str, store: StoreDep, _: Viewer, version: str | None = None
) -> Response:
    """The newest version of ``name``, or the one whose hash starts with ``version``."""
    return json_response(asdict(get_dataset(store, f"{name}@{version}" if version else name)))


@router.post("/runs/{run_id}/inputs")
def record_input(run_id: str, body: InputBody, store: StoreDep, _: Editor) -> Response:
    """Record that a run consumed a dataset version (idempotent); the version must exist."""
    digest = check_digest(body.digest)
    get_dataset(store, f"{body.name}@{digest}")  # NotFound naming what exists, not an FK 500
    service.record_input(store, run_id, body.name, digest, body.role)
    return json_response({"run_id": run_id, **body.model_dump()})

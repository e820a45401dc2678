"""Card routes: a model version's card (viewer), its person-written fields (editor), and a
dataset version's card (viewer).

Cards are assembled here from the server's records with the same functions as in-process
and sent as their JSON; clients render Markdown and HTML from it.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from modelpilot.cards import build_dataset_card, build_model_card, update_card_fields
from modelpilot.server.deps import ArtifactsDep, Editor, StoreDep, Viewer, json_response

router = APIRouter(prefix="/api/v1", tags=["cards"])


class FieldsBody(BaseModel):
    fields: dict[str, str]


@router.get("/models/{name}/versions/{version}/card")
def get_model_card(
    name: str, version: int, store: StoreDep, artifacts: ArtifactsDep, _: Viewer
) -> Response:
    """The model card of a version, as JSON (built from its records now)."""
    return json_response(build_model_card(store, artifacts, f"{name}/{version}").to_dict())


@router.post("/models/{name}/versions/{version}/card/fields")
def post_card_fields(
    name: str, version: int, body: FieldsBody, store: StoreDep, who: Editor
) -> Response:
    """Store person-written card fields (intended_use, limitations, ...); returns them all."""
    merged = update_card_fields(store, f"{name}/{version}", body.fields, actor=who.actor)
    return json_response({"fields": merged})


@router.get("/datasets/{name}/card")
def get_dataset_card(name: str, store: StoreDep, _: Viewer, version: str | None = None) -> Response:
    """The card of a dataset version (the newest without ``?version=``), as JSON."""
    ref = f"{name}@{version}" if version else name
    return json_response(build_dataset_card(store, ref).to_dict())

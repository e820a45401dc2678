"""``/api/v1/tokens`` routes (admin): list, create and revoke API tokens.

The CLI (``modelpilot tokens``) does the same on the store directly, to bootstrap the first
admin token.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from modelpilot.server.auth import Role, create_token, list_tokens, parse_expires_in, revoke_token
from modelpilot.server.deps import Admin, StoreDep, json_response

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


class TokenBody(BaseModel):
    name: str
    role: str
    expires_in: str | None = None


@router.get("")
def get_tokens(store: StoreDep, _: Admin) -> Response:
    """Every token (never a secret or a hash)."""
    return json_response({"tokens": [t.to_json() for t in list_tokens(store)]})


@router.post("", status_code=201)
def post_token(body: TokenBody, store: StoreDep, who: Admin) -> Response:
    """Create a token; the response is the only time its secret is shown."""
    new = create_token(
        store,
        body.name,
        Role.parse(body.role),
        expires_in_ms=parse_expires_in(body.expires_in),
        actor=who.actor,
    )
    return json_response({**new.info.to_json(), "token": new.token}, status_code=201)


@router.delete("/{name}")
def delete_token(name: str, store: StoreDep, who: Admin) -> Response:
    """Revoke a token by name or id."""
    return json_response(revoke_token(store, name, actor=who.actor).to_json())

"""``/api/v1/tokens`` routes (admin): list, create and revoke API tokens; and
``/api/v1/whoami`` (viewer): whose token this is.

The CLI (``modelpilot tokens``) does the same on the store directly, to bootstrap the first
admin token. Model servers following this control plane verify their callers' tokens with
``whoami`` (caching a positive answer briefly).
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from modelpilot.identity import Role, create_token, list_tokens, parse_expires_in, revoke_token
from modelpilot.server.deps import Admin, StoreDep, Viewer, json_response

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])
whoami_router = APIRouter(prefix="/api/v1", tags=["tokens"])


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


@whoami_router.get("/whoami")
def whoami(who: Viewer) -> Response:
    """The caller's token name and role (``no-auth``/admin on a server started --no-auth)."""
    return json_response({"name": who.name, "role": who.role.label})

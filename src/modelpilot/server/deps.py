"""FastAPI dependencies: the caller's role check, the services, and fast JSON responses.

Every ``/api`` route declares the role it needs with one of :data:`Viewer`, :data:`Editor`,
:data:`Deployer` or :data:`Admin`; tests/integration/server/test_server_auth.py walks the route
table and checks that each refuses a missing token and a token one role too low.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from pydantic_core import from_json

from modelpilot.artifacts import ResumableUploads, StagedArtifactStore
from modelpilot.errors import Forbidden, Unavailable
from modelpilot.identity import Authenticator, Identity, Role
from modelpilot.store import Store
from modelpilot.tracking.local import LocalTracking

NO_AUTH_IDENTITY = Identity("no-auth", Role.ADMIN, "no-auth")


class RoleGuard:
    """Dependency: authenticate the request and require at least ``role``."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __call__(self, request: Request) -> Identity:
        authenticator: Authenticator | None = request.app.state.authenticator
        if authenticator is None:
            return NO_AUTH_IDENTITY
        return self.check(authenticator.authenticate(request.headers.get("authorization")), request)

    def check(self, identity: Identity, request: Request) -> Identity:
        """``identity`` when its role suffices for this request, Forbidden otherwise."""
        if identity.role < self.role:
            raise Forbidden(
                f"Token {identity.name!r} has role {identity.role.label}; "
                f"{request.method} {request.url.path} needs {self.role.label} or higher. Ask "
                f"an admin for a token with that role (modelpilot tokens create NAME --role "
                f"{self.role.label})."
            )
        return identity


Viewer = Annotated[Identity, Depends(RoleGuard(Role.VIEWER))]
Editor = Annotated[Identity, Depends(RoleGuard(Role.EDITOR))]
Deployer = Annotated[Identity, Depends(RoleGuard(Role.DEPLOYER))]
Admin = Annotated[Identity, Depends(RoleGuard(Role.ADMIN))]


def get_store(request: Request) -> Store:
    """The server's metadata store."""
    store: Store = request.app.state.store
    return store


def get_tracking(request: Request) -> LocalTracking:
    """The tracking service the routes call (local, on the server's store)."""
    tracking: LocalTracking = request.app.state.tracking
    return tracking


def get_artifacts(request: Request) -> StagedArtifactStore:
    """The server's blob folder (refused with 503 when the app was built without one)."""
    artifacts: StagedArtifactStore | None = request.app.state.artifacts
    if artifacts is None:
        raise Unavailable("This server was started without an artifact store.")
    return artifacts


def get_uploads(request: Request) -> ResumableUploads:
    """The resumable upload sessions of the server's blob folder (503 without one)."""
    uploads: ResumableUploads | None = request.app.state.uploads
    if uploads is None:
        raise Unavailable("This server was started without an artifact store.")
    return uploads


StoreDep = Annotated[Store, Depends(get_store)]
ArtifactsDep = Annotated[StagedArtifactStore, Depends(get_artifacts)]
UploadsDep = Annotated[ResumableUploads, Depends(get_uploads)]
TrackingDep = Annotated[LocalTracking, Depends(get_tracking)]


def json_response(data: Any, status_code: int = 200) -> Response:
    """JSON via orjson: metric histories of 100,000 points would spend seconds in FastAPI's
    generic encoder."""
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")


class FastJsonRequest(Request):
    """A request whose JSON body is parsed by pydantic-core's parser: a 10,000-point metric
    batch parses in a third of the time of the standard library's ``json.loads``.

    Whatever that parser refuses (a lone surrogate escape, a byte-order mark, malformed JSON)
    goes through ``json.loads`` as Starlette would have, so a body gets the same value or the
    same error as before (big integers, NaN and Infinity are read alike by both)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = from_json(body)
            except ValueError:
                self._json = json.loads(body)
        return self._json


class FastJsonRoute(APIRoute):
    """Route class for routers with large JSON bodies (the tracking router): the same route,
    path and body model, read through :class:`FastJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(FastJsonRequest(request.scope, request.receive))

        return route_handler

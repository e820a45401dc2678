"""The control-plane ASGI app: routers, auth, and one mapping from errors to responses.

Every error body is ``{"error": {"type", "message", "field"}}``: the project's error tree
(``http_status`` on each class), request validation (422 naming the field, 400 for a body
that is not JSON), unknown routes, a store that does not answer (503, so clients retry), and
anything unexpected (500 without a traceback; the traceback goes to the server log).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException

from modelpilot.artifacts import ResumableUploads, StagedArtifactStore
from modelpilot.errors import (
    InvalidInput,
    MalformedRequest,
    ModelpilotError,
    Unavailable,
    shown,
)
from modelpilot.identity import Authenticator
from modelpilot.server.api import artifacts as artifact_routes
from modelpilot.server.api import (
    audit,
    cards,
    datasets,
    deployments,
    loop,
    monitoring,
    policies,
    registry,
    tokens,
    tracking,
    uploads,
)
from modelpilot.server.deps import Viewer, json_response
from modelpilot.server.ui import error_page
from modelpilot.server.ui import install as install_dashboard
from modelpilot.store import Store
from modelpilot.tracking.local import LocalTracking
from modelpilot.version import __version__

log = logging.getLogger("modelpilot.server")

ROUTERS: tuple[APIRouter, ...] = (
    tracking.router,
    registry.router,
    datasets.router,
    artifact_routes.router,
    uploads.router,
    deployments.router,
    policies.router,
    cards.router,
    monitoring.router,
    tokens.router,
    audit.router,
    loop.router,
    tokens.whoami_router,
)
_HTTP_TYPES = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed"}


def create_app(
    store: Store,
    *,
    auth: bool = True,
    artifacts: StagedArtifactStore | None = None,
    max_upload_bytes: int = 50 * 2**30,
    home: Path | None = None,
) -> FastAPI:
    """The app over ``store`` and the blob folder ``artifacts``; ``auth=False`` lets every
    request act as admin (a laptop). Uploads larger than ``max_upload_bytes`` (a single
    body, or a resumable upload's declared size) get 413. ``home`` holds the prediction log
    that monitoring jobs read (a data plane's home)."""
    app = FastAPI(
        title="modelpilot control plane",
        version=__version__,
        openapi_url=None,  # served below, behind a token like every /api route
        docs_url=None,
        redoc_url=None,
    )
    app.state.store = store
    app.state.tracking = LocalTracking(store)
    app.state.artifacts = artifacts
    app.state.uploads = ResumableUploads(artifacts) if artifacts is not None else None
    app.state.home = home
    app.state.max_upload_bytes = max_upload_bytes
    app.state.authenticator = Authenticator(store) if auth else None
    for router in ROUTERS:
        app.include_router(router)
    install_dashboard(app, home)
    _add_meta_routes(app)
    _add_error_handlers(app)
    return app


def api_routes(app: FastAPI) -> list[APIRoute]:
    """Every route of the app: the routers' and the app's own (for the role walk in tests)."""
    included = [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]
    return included + [r for r in app.routes if isinstance(r, APIRoute)]


def _add_meta_routes(app: FastAPI) -> None:
    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(_: Viewer) -> Response:
        return json_response(app.openapi())

    @app.get("/health", include_in_schema=False)
    def health() -> Response:
        return json_response({"status": "ok", "version": __version__})


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelpilotError)
    async def on_error(request: Request, exc: ModelpilotError) -> Response:
        return _error_response(request, exc.to_dict(), exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        error = validation_error(exc.errors())
        return _error_response(request, error.to_dict(), error.http_status)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, exc: HTTPException) -> Response:
        kind = _HTTP_TYPES.get(exc.status_code, "ModelpilotError")
        message = (
            f"No route {request.method} {request.url.path}. The API is under /api/v1; see "
            "/api/openapi.json; the dashboard starts at /ui/runs."
            if exc.status_code in (404, 405)
            else str(exc.detail)
        )
        body = {"error": {"type": kind, "message": message, "field": None}}
        return _error_response(request, body, exc.status_code)

    @app.exception_handler(OperationalError)
    async def on_store_down(request: Request, exc: OperationalError) -> Response:
        log.warning("metadata store error: %s", exc)
        error = Unavailable(
            f"The metadata store did not answer ({type(exc.orig).__name__}). Retry shortly; "
            "if it persists, check the store the server runs on."
        )
        return _error_response(request, error.to_dict(), error.http_status)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        body = ModelpilotError(
            f"Internal error while handling {request.method} {request.url.path} "
            f"({type(exc).__name__}); the server log has the details."
        ).to_dict()
        return _error_response(request, body, 500)


def _error_response(request: Request, body: dict[str, Any], status: int) -> Response:
    """The error as JSON for the API, as an HTML page (or the login form) for the dashboard."""
    if request.url.path == "/ui" or request.url.path.startswith("/ui/"):
        error = body["error"]
        return error_page(request, status, str(error["type"]), str(error["message"]))
    return json_response(body, status_code=status)


def validation_error(errors: Any) -> InvalidInput:
    """One InvalidInput naming the first wrong field (400 when the body is not JSON at all)."""
    items = list(errors)
    first = items[0] if items else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        return MalformedRequest(
            f"The request body is not valid JSON: {first.get('msg')}.", field="body"
        )
    field = _field_name(tuple(first.get("loc", ())))
    got = f"; got {shown(first['input'])}" if "input" in first else ""
    more = f" ({len(items) - 1} more problems)" if len(items) > 1 else ""
    return InvalidInput(f"Request field {field!r}: {first.get('msg')}{got}{more}.", field=field)


def _field_name(loc: tuple[Any, ...]) -> str:
    """``('body', 'rows', 0, 1)`` -> ``rows.0.1``; the whole body (not an object, missing) ->
    ``body``. Only the leading location is dropped: a body field may be called ``path``; an
    empty key shows as ``""`` so the field is never blank."""
    rest = loc[1:] if loc and loc[0] in ("body", "query", "path", "header", "cookie") else loc
    if not rest:
        return str(loc[0]) if loc else "body"
    return ".".join(str(p) if str(p) else '""' for p in rest)
